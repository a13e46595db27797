/* LayerNormalization, as Keras 3's with axis -1: every row of the input (one sample of a vector
 * input, one pixel of an image: each position of each sample) normalized along its last axis by
 * its own mean and biased variance, then scaled by gamma and shifted by beta, both of the last
 * axis's size (Keras' weights, in its order: gamma when `scale`, then beta when `center`). No
 * statistics cross samples, so training and inference compute the same. Forward and the exact
 * backward (layer_normalization.cl); the gradients of gamma and beta are column sums over the
 * rows, reduced deterministically: partial sums per block of rows, then a sum in block order. */
#include <float.h>
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include <strata/plugin.h>

#include "core.h"
#include "layer_normalization_cl.h"
#include "shape.h"
#include "tune.h"

/* Rows per block of the gradient's partial sums: at least this many, more when a batch has so
 * many rows that the final sums would walk more than LN_MAX_BLOCKS blocks. */
#define LN_MIN_BLOCK_ROWS 64u
#define LN_MAX_BLOCKS 4096u
/* Work-items per column of the final sums over the blocks (a work-group each), fewer where the
 * device runs smaller work-groups. */
#define LN_FINISH_WG 16u
/* Rows at least this long get a work-group each (local-memory sums), shorter ones a work-item. */
#define LN_GROUP_COLS 128
/* The work-group size for long rows, and for rows of LN_WIDE_COLS or more. */
#define LN_GROUP_WG 64u
#define LN_WIDE_COLS 1024
#define LN_WIDE_WG 256u

#define LN_INITIALIZERS "glorot_uniform|glorot_normal|he_uniform|he_normal|zeros|ones"

static const strata_param ln_params[] = {
	{.name = "axis", .type = STRATA_PARAM_INT, .default_value = "-1", .min = -(STRATA_MAX_RANK + 1),
	 .max = STRATA_MAX_RANK,
	 .doc = "the normalized axis, the batch being axis 0: only the last one (-1) is supported, no list"},
	{.name = "epsilon", .type = STRATA_PARAM_FLOAT, .default_value = "0.001", .min = 0.0, .max = DBL_MAX,
	 .choices = "(]", .doc = "added to the variance before its square root"},
	{.name = "center", .type = STRATA_PARAM_BOOL, .default_value = "true",
	 .doc = "add a learned offset beta after normalizing"},
	{.name = "scale", .type = STRATA_PARAM_BOOL, .default_value = "true",
	 .doc = "multiply by a learned factor gamma after normalizing"},
	{.name = "rms_scaling", .type = STRATA_PARAM_UNSUPPORTED, .default_value = "false",
	 .doc = "RMS normalization (no centering) is not supported"},
	{.name = "beta_initializer", .type = STRATA_PARAM_ENUM, .default_value = "zeros", .choices = LN_INITIALIZERS,
	 .doc = "initializer of beta"},
	{.name = "gamma_initializer", .type = STRATA_PARAM_ENUM, .default_value = "ones", .choices = LN_INITIALIZERS,
	 .doc = "initializer of gamma"},
	{.name = "beta_regularizer", .type = STRATA_PARAM_REGULARIZER, .default_value = "null",
	 .doc = "l1/l2 penalty on beta, e.g. {l2: 0.0001}"},
	{.name = "gamma_regularizer", .type = STRATA_PARAM_REGULARIZER, .default_value = "null",
	 .doc = "l1/l2 penalty on gamma, e.g. {l2: 0.0001}"},
	{.name = "beta_constraint", .type = STRATA_PARAM_CONSTRAINT, .default_value = "null",
	 .doc = "applied to beta after every update: max_norm, non_neg"},
	{.name = "gamma_constraint", .type = STRATA_PARAM_CONSTRAINT, .default_value = "null",
	 .doc = "applied to gamma after every update: max_norm, non_neg"},
};

typedef struct ln_plan {
	int64_t cols;            /* the normalized (last) axis */
	int64_t rows_per_sample; /* positions of a sample: the product of the other axes */
	bool has_gamma, has_beta;
	uint32_t gamma, beta;        /* weight indices */
	uint32_t ws_stats, ws_partials; /* workspaces */
	float eps;
} ln_plan;

static strata_status ln_build(strata_layer *layer, const strata_host *host, const strata_shape *in,
                              strata_shape *out)
{
	char buf[96];
	if (in->rank < 1)
		return host->fail(layer, STRATA_ERR_INVALID, "LayerNormalization needs an input of rank 1 or more");
	int64_t axis = host->param_int(layer, "axis"), full = (int64_t)in->rank + 1;
	int64_t a = axis < 0 ? axis + full : axis;
	if (a != (int64_t)in->rank)
		return host->fail_param(layer, "axis", STRATA_ERR_INVALID, "axis %lld is %s: LayerNormalization "
		                        "normalizes the last axis only (-1, or %u for these rank-%u samples)",
		                        (long long)axis, a == 0 ? "the batch axis" : a < 0 || a >= full ? "out of range"
		                                                                                        : "not supported",
		                        in->rank, in->rank);
	ln_plan plan = {
		.cols = in->dims[in->rank - 1],
		.rows_per_sample = 1,
		.has_gamma = host->param_bool(layer, "scale"),
		.has_beta = host->param_bool(layer, "center"),
		.eps = (float)host->param_float(layer, "epsilon"),
	};
	int64_t count;
	for (uint32_t d = 0; d + 1 < in->rank; d++)
		if (!shape_mul(plan.rows_per_sample, in->dims[d], INT_MAX, &plan.rows_per_sample))
			return host->fail(layer, STRATA_ERR_OVERFLOW, "input %s is too large", shape_format(in, buf, sizeof(buf)));
	if (plan.cols < 1 || !shape_mul(plan.rows_per_sample, plan.cols, INT_MAX, &count))
		return host->fail(layer, STRATA_ERR_OVERFLOW, "input %s is too large", shape_format(in, buf, sizeof(buf)));
	if (!(plan.eps > 0.0f))
		return host->fail_param(layer, "epsilon", STRATA_ERR_INVALID, "epsilon %g is 0 in float32: it must be "
		                        "above 0", host->param_float(layer, "epsilon"));

	strata_status st;
	strata_weight_desc d = {.size = sizeof(d), .shape = {.rank = 1, .dims = {plan.cols}}};
	if (plan.has_gamma) {
		d.name = "gamma";
		d.initializer = host->param_string(layer, "gamma_initializer");
		host->param_regularizer(layer, "gamma_regularizer", &d.l1, &d.l2);
		d.constraint = "gamma_constraint";
		if ((st = host->add_weight(layer, &d, &plan.gamma)) != STRATA_OK)
			return st;
	}
	if (plan.has_beta) {
		d.name = "beta";
		d.initializer = host->param_string(layer, "beta_initializer");
		host->param_regularizer(layer, "beta_regularizer", &d.l1, &d.l2);
		d.constraint = "beta_constraint";
		if ((st = host->add_weight(layer, &d, &plan.beta)) != STRATA_OK)
			return st;
	}
	/* Per sample: each row's mean and inverse deviation for the backward pass, and the gradients'
	 * partial sums, at most ceil(rows_per_sample / 64) blocks of 2 x cols floats. */
	size_t c = (size_t)plan.cols, rows = (size_t)plan.rows_per_sample;
	size_t blocks = (rows + LN_MIN_BLOCK_ROWS - 1) / LN_MIN_BLOCK_ROWS;
	if (blocks > SIZE_MAX / sizeof(float) / 2 / c)
		return host->fail(layer, STRATA_ERR_OVERFLOW, "the gradients' workspace is too large");
	if ((st = host->add_workspace(layer, 2 * rows * sizeof(float), &plan.ws_stats)) != STRATA_OK ||
	    (st = host->add_workspace(layer, blocks * 2 * c * sizeof(float), &plan.ws_partials)) != STRATA_OK)
		return st;

	ln_plan *p = malloc(sizeof(*p));
	if (!p)
		return host->fail(layer, STRATA_ERR_NO_MEMORY, "out of memory");
	*p = plan;
	free(host->get_private(layer));
	host->set_private(layer, p);
	*out = *in;
	return STRATA_OK;
}

static strata_status ln_rows(strata_layer *layer, const strata_host *host, const ln_plan *p, uint32_t batch,
                             size_t *rows)
{
	strata_status st = shape_check_batch(layer, host, batch, (size_t)(p->rows_per_sample * p->cols));
	*rows = (size_t)batch * (size_t)p->rows_per_sample;
	return st;
}

/* A row kernel, one work-item per short row or a work-group per long one (within what the device
 * runs), reading rows in vectors of the widest width that divides them, and its launch sizes. */
static strata_kernel *ln_row_kernel(strata_layer *layer, const strata_host *host, const ln_plan *p,
                                    const char *name, size_t rows, size_t *global, size_t *local)
{
	size_t wg = p->cols >= LN_WIDE_COLS ? LN_WIDE_WG : p->cols >= LN_GROUP_COLS ? LN_GROUP_WG : 1;
	unsigned vw = tune_vector_width((size_t)p->cols, tune_vw(layer, host));
	char options[48];
	strata_kernel *k = NULL;
	while (wg > 1) {
		snprintf(options, sizeof(options), "-DWG=%zu -DVW=%u", wg, vw);
		if (!(k = host->kernel(layer, "layer_normalization", name, options)))
			return NULL;
		if (host->max_work_group_size(layer, k) >= wg)
			break;
		wg /= 2;
	}
	if (wg > 1) {
		*global = rows * wg;
		*local = wg;
		return k;
	}
	snprintf(options, sizeof(options), "-DWG=1 -DVW=%u", vw);
	if (!(k = host->kernel(layer, "layer_normalization", name, options)))
		return NULL;
	size_t most = host->max_work_group_size(layer, k);
	*local = most >= 64 ? 64 : most ? most : 1;
	*global = rows;
	return k;
}

static strata_status ln_forward(strata_layer *layer, const strata_host *host, const strata_forward_args *args)
{
	const ln_plan *p = host->get_private(layer);
	size_t rows, global, local;
	strata_status st = ln_rows(layer, host, p, args->batch, &rows);
	if (st != STRATA_OK || rows == 0)
		return st;
	strata_kernel *k = ln_row_kernel(layer, host, p, "ln_forward", rows, &global, &local);
	if (!k)
		return host->last_status(layer);
	/* A buffer the kernel does not read stands in for a missing gamma or beta. */
	const strata_arg a[] = {
		strata_arg_tensor(args->input),
		strata_arg_tensor(args->output),
		strata_arg_tensor(p->has_gamma ? host->weight(layer, p->gamma) : args->input),
		strata_arg_tensor(p->has_beta ? host->weight(layer, p->beta) : args->input),
		strata_arg_int((int32_t)rows),
		strata_arg_int((int32_t)p->cols),
		strata_arg_float(p->eps),
		strata_arg_int(p->has_gamma),
		strata_arg_int(p->has_beta),
	};
	return host->launch(layer, k, 1, &global, &local, sizeof(a) / sizeof(a[0]), a);
}

static strata_status ln_backward(strata_layer *layer, const strata_host *host, const strata_backward_args *args)
{
	const ln_plan *p = host->get_private(layer);
	strata_tensor *dgamma = p->has_gamma ? host->weight_grad(layer, p->gamma) : NULL;
	strata_tensor *dbeta = p->has_beta ? host->weight_grad(layer, p->beta) : NULL;
	if ((p->has_gamma && !dgamma) || (p->has_beta && !dbeta))
		return host->fail(layer, STRATA_ERR_INVALID, "no weight gradients: the session is not prepared for "
		                  "training");
	size_t rows, global, local;
	strata_status st = ln_rows(layer, host, p, args->batch, &rows);
	if (st != STRATA_OK)
		return st;
	if (rows == 0) {
		if (dgamma && (st = core_fill(layer, host, dgamma, 0.0f, (size_t)p->cols)) != STRATA_OK)
			return st;
		return dbeta ? core_fill(layer, host, dbeta, 0.0f, (size_t)p->cols) : STRATA_OK;
	}
	if (!dgamma && !dbeta && !args->grad_input)
		return STRATA_OK;
	/* The rows' statistics (always: gamma's gradient reads them) and the input gradient. */
	strata_tensor *stats = host->workspace(layer, p->ws_stats);
	strata_kernel *k = ln_row_kernel(layer, host, p, "ln_backward_rows", rows, &global, &local);
	if (!k)
		return host->last_status(layer);
	const strata_arg a[] = {
		strata_arg_tensor(args->input),
		strata_arg_tensor(args->grad_output),
		strata_arg_tensor(args->grad_input ? args->grad_input : stats),
		strata_arg_tensor(p->has_gamma ? host->weight(layer, p->gamma) : args->input),
		strata_arg_tensor(stats),
		strata_arg_int((int32_t)rows),
		strata_arg_int((int32_t)p->cols),
		strata_arg_float(p->eps),
		strata_arg_int(p->has_gamma),
		strata_arg_int(args->grad_input != NULL),
	};
	if ((st = host->launch(layer, k, 1, &global, &local, sizeof(a) / sizeof(a[0]), a)) != STRATA_OK)
		return st;
	if (!dgamma && !dbeta)
		return STRATA_OK;

	size_t per = (rows + LN_MAX_BLOCKS - 1) / LN_MAX_BLOCKS;
	size_t per_block = per > LN_MIN_BLOCK_ROWS ? per : LN_MIN_BLOCK_ROWS;
	size_t blocks = (rows + per_block - 1) / per_block;
	unsigned vw = tune_vector_width((size_t)p->cols, tune_vw(layer, host));
	char options[32];
	if (!(k = host->kernel(layer, "layer_normalization", "ln_param_partials",
	                       tune_vw_options(options, sizeof(options), vw))))
		return host->last_status(layer);
	strata_tensor *partials = host->workspace(layer, p->ws_partials);
	const strata_arg s[] = {
		strata_arg_tensor(args->input), strata_arg_tensor(args->grad_output), strata_arg_tensor(stats),
		strata_arg_tensor(partials), strata_arg_int((int32_t)rows), strata_arg_int((int32_t)p->cols),
		strata_arg_int((int32_t)per_block),
	};
	if ((st = tune_launch_2d(layer, host, k, (size_t)p->cols / vw, blocks, sizeof(s) / sizeof(s[0]), s)))
		return st;
	size_t fwg = LN_FINISH_WG;
	for (;; fwg /= 2) {
		snprintf(options, sizeof(options), "-DFWG=%zu", fwg);
		if (!(k = host->kernel(layer, "layer_normalization", "ln_param_finish", options)))
			return host->last_status(layer);
		if (fwg == 1 || host->max_work_group_size(layer, k) >= fwg)
			break;
	}
	const strata_arg f[] = {
		strata_arg_tensor(partials),
		strata_arg_tensor(dgamma ? dgamma : partials),
		strata_arg_tensor(dbeta ? dbeta : partials),
		strata_arg_int((int32_t)p->cols),
		strata_arg_int((int32_t)blocks),
		strata_arg_int(dgamma != NULL),
		strata_arg_int(dbeta != NULL),
	};
	global = (size_t)p->cols * fwg;
	local = fwg;
	return host->launch(layer, k, 1, &global, fwg > 1 ? &local : NULL, sizeof(f) / sizeof(f[0]), f);
}

static void ln_destroy(strata_layer *layer, const strata_host *host)
{
	free(host->get_private(layer));
	host->set_private(layer, NULL);
}

static const strata_layer_ops ln_ops = {
	.size = sizeof(strata_layer_ops),
	.type = "layer_normalization",
	.class_name = "LayerNormalization",
	.name_prefix = "layer_normalization",
	.doc = "normalizes each position's last-axis vector by its own mean and variance, as Keras' "
	       "LayerNormalization",
	.params = ln_params,
	.n_params = sizeof(ln_params) / sizeof(ln_params[0]),
	.build = ln_build,
	.forward = ln_forward,
	.backward = ln_backward,
	.destroy = ln_destroy,
};

static strata_status ln_init(const strata_host *host, strata_registry *reg)
{
	strata_status st = host->register_program(reg, "layer_normalization", layer_normalization_cl_source, "");
	return st != STRATA_OK ? st : host->register_layer(reg, &ln_ops);
}

static const strata_plugin ln_plugin = {
	.abi_version = STRATA_PLUGIN_ABI_VERSION,
	.size = sizeof(strata_plugin),
	.name = "layer_normalization",
	.version = "1.0.0",
	.description = "LayerNormalization along the last axis",
	.init = ln_init,
};

STRATA_PLUGIN_DEFINE(ln_plugin)
