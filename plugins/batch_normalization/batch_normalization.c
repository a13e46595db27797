/* BatchNormalization, as Keras 3's: each channel (the last axis) normalized by statistics over
 * every other axis of the batch (N x H x W rows for images, N for vectors), then scaled by gamma
 * and shifted by beta.
 *  - Training: the batch mean and biased variance, y = gamma (x - mean) / sqrt(var + eps) + beta,
 *    and the moving statistics updated as Keras 3 does: moving = moving * momentum + batch *
 *    (1 - momentum), the variance being the biased batch variance.
 *  - Inference: the same formula with the moving statistics.
 *  - Backward: the exact gradient of whichever forward pass ran (training: through the batch
 *    statistics; inference: the fixed affine map); gamma's and beta's gradients overwritten.
 * Weights as Keras declares them, in its order: gamma and beta (C) trainable, when `scale` and
 * `center` ask for them, then moving_mean and moving_variance (C), persistent non-trainable state
 * (host->add_state), so `strata summary` counts 4C parameters, 2C of them non-trainable.
 *
 * Reductions over rows are deterministic and parallel: partial results per block of rows in a
 * workspace, then per channel a work-group combines the blocks in a fixed order (strided, then a
 * fixed tree; batch_normalization.cl), never atomics. A training forward
 * pass reads the input twice from memory (statistics, then the normalization) and writes the
 * output once; the variance is a per-block two-pass variance combined by Chan et al.'s update.
 *
 * A frozen layer (`trainable: false`, strata_forward_frozen) runs in inference mode, training or
 * not, as Keras 3's: its moving statistics stay as they are (fine-tuning a model around a frozen
 * one). Not done here: folding an inference-mode BatchNormalization into a preceding convolution
 * (the issue makes it optional). */
#include <float.h>
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <strata/plugin.h>

#include "batch_normalization_cl.h"
#include "core.h"
#include "shape.h"
#include "tune.h"

/* Rows per block of the partial results: at least this many, and more when the batch has so many
 * rows that the per-channel final sums would walk more than BN_MAX_BLOCKS blocks. The workspace is
 * sized for blocks of BN_MIN_BLOCK_ROWS rows, the most blocks a batch can have. */
#define BN_MIN_BLOCK_ROWS 64u
#define BN_MAX_BLOCKS 4096u
/* Work-items per channel of the final sums over the blocks (a work-group each), fewer where the
 * device runs smaller work-groups: a channel's blocks are combined in parallel, so the final sums
 * stay short next to the passes over the data even with few channels and many blocks. */
#define BN_FINISH_WG 16u
/* Rows per work-item of the elementwise kernels (normalization, input gradient): each loads its
 * channels' statistics once for this many rows. */
#define BN_APPLY_ROWS 16u

#define BN_INITIALIZERS "glorot_uniform|glorot_normal|he_uniform|he_normal|zeros|ones"

static const strata_param bn_params[] = {
	{.name = "axis", .type = STRATA_PARAM_INT, .default_value = "-1", .min = -(STRATA_MAX_RANK + 1),
	 .max = STRATA_MAX_RANK,
	 .doc = "the normalized (channels) axis, the batch being axis 0: only the last one (-1) is supported"},
	{.name = "momentum", .type = STRATA_PARAM_FLOAT, .default_value = "0.99", .min = 0.0, .max = 1.0,
	 .doc = "moving statistics after a training step: moving * momentum + batch's * (1 - momentum)"},
	{.name = "epsilon", .type = STRATA_PARAM_FLOAT, .default_value = "0.001", .min = 0.0, .max = DBL_MAX,
	 .choices = "(]", .doc = "added to the variance before its square root"},
	{.name = "center", .type = STRATA_PARAM_BOOL, .default_value = "true",
	 .doc = "add a learned offset beta after normalizing"},
	{.name = "scale", .type = STRATA_PARAM_BOOL, .default_value = "true",
	 .doc = "multiply by a learned factor gamma after normalizing"},
	{.name = "beta_initializer", .type = STRATA_PARAM_ENUM, .default_value = "zeros", .choices = BN_INITIALIZERS,
	 .doc = "initializer of beta"},
	{.name = "gamma_initializer", .type = STRATA_PARAM_ENUM, .default_value = "ones", .choices = BN_INITIALIZERS,
	 .doc = "initializer of gamma"},
	{.name = "moving_mean_initializer", .type = STRATA_PARAM_ENUM, .default_value = "zeros",
	 .choices = BN_INITIALIZERS, .doc = "initializer of the moving mean"},
	{.name = "moving_variance_initializer", .type = STRATA_PARAM_ENUM, .default_value = "ones",
	 .choices = BN_INITIALIZERS, .doc = "initializer of the moving variance"},
	{.name = "beta_regularizer", .type = STRATA_PARAM_REGULARIZER, .default_value = "null",
	 .doc = "l1/l2 penalty on beta, e.g. {l2: 0.0001}"},
	{.name = "gamma_regularizer", .type = STRATA_PARAM_REGULARIZER, .default_value = "null",
	 .doc = "l1/l2 penalty on gamma, e.g. {l2: 0.0001}"},
	{.name = "beta_constraint", .type = STRATA_PARAM_CONSTRAINT, .default_value = "null",
	 .doc = "applied to beta after every update: max_norm, non_neg"},
	{.name = "gamma_constraint", .type = STRATA_PARAM_CONSTRAINT, .default_value = "null",
	 .doc = "applied to gamma after every update: max_norm, non_neg"},
	{.name = "renorm", .type = STRATA_PARAM_UNSUPPORTED, .default_value = "false",
	 .doc = "batch renormalization is not supported"},
	{.name = "renorm_clipping", .type = STRATA_PARAM_UNSUPPORTED, .default_value = "null",
	 .doc = "only used by batch renormalization, which is not supported"},
	{.name = "renorm_momentum", .type = STRATA_PARAM_UNSUPPORTED, .default_value = "0.99",
	 .doc = "only used by batch renormalization, which is not supported"},
	{.name = "synchronized", .type = STRATA_PARAM_UNSUPPORTED, .default_value = "false",
	 .doc = "Strata trains on one device: the statistics are always the whole batch's"},
};

/* What build() decides, kept for the passes. */
typedef struct bn_plan {
	int64_t cols;            /* channels */
	int64_t rows_per_sample; /* positions of a sample: the product of the other axes */
	bool has_gamma, has_beta;
	uint32_t gamma, beta, moving_mean, moving_var; /* weight and state indices */
	uint32_t ws_mean, ws_var, ws_sums, ws_partials;  /* workspaces */
	float momentum, eps;
} bn_plan;

/* Keras' axis (the batch is axis 0; negative counts from the end) must name the last axis. */
static strata_status bn_check_axis(strata_layer *layer, const strata_host *host, const strata_shape *in,
                                   const char *class_name)
{
	int64_t axis = host->param_int(layer, "axis"), full = (int64_t)in->rank + 1;
	int64_t a = axis < 0 ? axis + full : axis;
	if (a == (int64_t)in->rank)
		return STRATA_OK;
	if (a == 0)
		return host->fail_param(layer, "axis", STRATA_ERR_INVALID, "axis %lld is the batch axis; %s normalizes "
		                        "the last axis only (-1, or %u for these rank-%u samples)",
		                        (long long)axis, class_name, in->rank, in->rank);
	if (a < 0 || a >= full)
		return host->fail_param(layer, "axis", STRATA_ERR_INVALID, "axis %lld is out of range for rank-%u "
		                        "samples; %s normalizes the last axis only (-1, or %u)",
		                        (long long)axis, in->rank, class_name, in->rank);
	return host->fail_param(layer, "axis", STRATA_ERR_INVALID, "axis %lld is not supported: %s normalizes "
	                        "the last axis only (-1, or %u for these rank-%u samples; channels last)",
	                        (long long)axis, class_name, in->rank, in->rank);
}

static strata_status bn_vector(strata_layer *layer, const strata_host *host, const char *name, const char *init,
                               const char *regularizer, int64_t cols, bool state, uint32_t *index)
{
	strata_weight_desc d = {
		.size = sizeof(d),
		.name = name,
		.shape = {.rank = 1, .dims = {cols}},
		.initializer = host->param_string(layer, init),
	};
	if (regularizer) {
		host->param_regularizer(layer, regularizer, &d.l1, &d.l2);
		/* gamma_constraint, beta_constraint */
		d.constraint = !strcmp(name, "gamma") ? "gamma_constraint" : "beta_constraint";
	}
	return state ? host->add_state(layer, &d, index) : host->add_weight(layer, &d, index);
}

static strata_status bn_build(strata_layer *layer, const strata_host *host, const strata_shape *in,
                              strata_shape *out)
{
	char buf[96];
	if (!STRATA_HOST_HAS(host, add_state) || !STRATA_HOST_HAS(host, state))
		return host->fail(layer, STRATA_ERR_UNSUPPORTED, "BatchNormalization needs a host with persistent "
		                  "state (Strata 0.3 or later)");
	if (in->rank < 1)
		return host->fail(layer, STRATA_ERR_INVALID, "BatchNormalization needs an input of rank 1 or more");
	strata_status st = bn_check_axis(layer, host, in, "BatchNormalization");
	if (st != STRATA_OK)
		return st;
	bn_plan plan = {
		.cols = in->dims[in->rank - 1],
		.rows_per_sample = 1,
		.has_gamma = host->param_bool(layer, "scale"),
		.has_beta = host->param_bool(layer, "center"),
		.momentum = (float)host->param_float(layer, "momentum"),
		.eps = (float)host->param_float(layer, "epsilon"),
	};
	int64_t count = plan.cols;
	for (uint32_t d = 0; d + 1 < in->rank; d++)
		if (!shape_mul(plan.rows_per_sample, in->dims[d], INT_MAX, &plan.rows_per_sample))
			return host->fail(layer, STRATA_ERR_OVERFLOW, "input %s is too large", shape_format(in, buf, sizeof(buf)));
	if (plan.cols < 1 || !shape_mul(plan.rows_per_sample, plan.cols, INT_MAX, &count))
		return host->fail(layer, STRATA_ERR_OVERFLOW, "input %s is too large", shape_format(in, buf, sizeof(buf)));
	if (!(plan.eps > 0.0f))
		return host->fail_param(layer, "epsilon", STRATA_ERR_INVALID, "epsilon %g is 0 in float32: it must be "
		                        "above 0", host->param_float(layer, "epsilon"));

	/* Keras' order: gamma, beta, moving_mean, moving_variance. */
	if (plan.has_gamma &&
	    (st = bn_vector(layer, host, "gamma", "gamma_initializer", "gamma_regularizer", plan.cols, false,
	                    &plan.gamma)) != STRATA_OK)
		return st;
	if (plan.has_beta &&
	    (st = bn_vector(layer, host, "beta", "beta_initializer", "beta_regularizer", plan.cols, false,
	                    &plan.beta)) != STRATA_OK)
		return st;
	if ((st = bn_vector(layer, host, "moving_mean", "moving_mean_initializer", NULL, plan.cols, true,
	                    &plan.moving_mean)) != STRATA_OK ||
	    (st = bn_vector(layer, host, "moving_variance", "moving_variance_initializer", NULL, plan.cols, true,
	                    &plan.moving_var)) != STRATA_OK)
		return st;

	/* Workspaces, per sample: the batch mean and variance (C each; one sample's room holds them),
	 * the gradient sums (2C), and the partial results of the blocks of rows: a batch of n samples
	 * has at most n * ceil(rows_per_sample / 64) blocks of 2C floats. */
	size_t c = (size_t)plan.cols, blocks = ((size_t)plan.rows_per_sample + BN_MIN_BLOCK_ROWS - 1) / BN_MIN_BLOCK_ROWS;
	if (blocks > SIZE_MAX / sizeof(float) / 2 / c)
		return host->fail(layer, STRATA_ERR_OVERFLOW, "the statistics' workspace is too large");
	if ((st = host->add_workspace(layer, c * sizeof(float), &plan.ws_mean)) != STRATA_OK ||
	    (st = host->add_workspace(layer, c * sizeof(float), &plan.ws_var)) != STRATA_OK ||
	    (st = host->add_workspace(layer, 2 * c * sizeof(float), &plan.ws_sums)) != STRATA_OK ||
	    (st = host->add_workspace(layer, blocks * 2 * c * sizeof(float), &plan.ws_partials)) != STRATA_OK)
		return st;

	bn_plan *p = malloc(sizeof(*p));
	if (!p)
		return host->fail(layer, STRATA_ERR_NO_MEMORY, "out of memory");
	*p = plan;
	free(host->get_private(layer));
	host->set_private(layer, p);
	*out = *in;
	return STRATA_OK;
}

/* The rows of a batch and the rows per block of its partial results. */
static strata_status bn_rows(strata_layer *layer, const strata_host *host, const bn_plan *p, uint32_t batch,
                             size_t *rows, size_t *per_block, size_t *blocks)
{
	strata_status st = shape_check_batch(layer, host, batch, (size_t)(p->rows_per_sample * p->cols));
	if (st != STRATA_OK)
		return st;
	*rows = (size_t)batch * (size_t)p->rows_per_sample;
	size_t per = (*rows + BN_MAX_BLOCKS - 1) / BN_MAX_BLOCKS;
	*per_block = per > BN_MIN_BLOCK_ROWS ? per : BN_MIN_BLOCK_ROWS;
	*blocks = *rows ? (*rows + *per_block - 1) / *per_block : 0;
	return STRATA_OK;
}

/* Launches a final-sum kernel (bn_stats_finish, bn_grad_finish): a work-group of up to
 * BN_FINISH_WG work-items per channel, or one work-item per channel where the device allows no
 * work-groups that large. */
static strata_status bn_launch_finish(strata_layer *layer, const strata_host *host, const char *name, size_t cols,
                                      uint32_t n_args, const strata_arg *args)
{
	size_t fwg = BN_FINISH_WG;
	strata_kernel *k;
	for (;; fwg /= 2) {
		char options[32];
		snprintf(options, sizeof(options), "-DFWG=%zu", fwg);
		if (!(k = host->kernel(layer, "batch_normalization", name, options)))
			return host->last_status(layer);
		if (fwg == 1 || host->max_work_group_size(layer, k) >= fwg)
			break;
	}
	size_t global = cols * fwg, local = fwg;
	return host->launch(layer, k, 1, &global, fwg > 1 ? &local : NULL, n_args, args);
}

/* The kernel `name` built for the widest vector of channels the device's "vw" allows. */
static strata_kernel *bn_kernel(strata_layer *layer, const strata_host *host, const bn_plan *p, const char *name,
                                unsigned *vw)
{
	char options[32];
	*vw = tune_vector_width((size_t)p->cols, tune_vw(layer, host));
	return host->kernel(layer, "batch_normalization", name, tune_vw_options(options, sizeof(options), *vw));
}

/* The batch statistics into the mean and variance workspaces, and with `update` the moving
 * statistics' step. */
static strata_status bn_statistics(strata_layer *layer, const strata_host *host, const bn_plan *p,
                                   strata_tensor *x, size_t rows, size_t per_block, size_t blocks, bool update)
{
	unsigned vw;
	strata_kernel *k = bn_kernel(layer, host, p, "bn_stats_partials", &vw);
	if (!k)
		return host->last_status(layer);
	strata_tensor *partials = host->workspace(layer, p->ws_partials);
	const strata_arg a[] = {
		strata_arg_tensor(x), strata_arg_tensor(partials), strata_arg_int((int32_t)rows),
		strata_arg_int((int32_t)p->cols), strata_arg_int((int32_t)per_block),
	};
	strata_status st = tune_launch_2d(layer, host, k, (size_t)p->cols / vw, blocks, 5, a);
	if (st != STRATA_OK)
		return st;
	const strata_arg f[] = {
		strata_arg_tensor(partials),
		strata_arg_tensor(host->workspace(layer, p->ws_mean)),
		strata_arg_tensor(host->workspace(layer, p->ws_var)),
		strata_arg_tensor(host->state(layer, p->moving_mean)),
		strata_arg_tensor(host->state(layer, p->moving_var)),
		strata_arg_int((int32_t)rows),
		strata_arg_int((int32_t)p->cols),
		strata_arg_int((int32_t)per_block),
		strata_arg_int((int32_t)blocks),
		strata_arg_float(p->momentum),
		strata_arg_int(update ? 1 : 0),
	};
	return bn_launch_finish(layer, host, "bn_stats_finish", (size_t)p->cols, sizeof(f) / sizeof(f[0]), f);
}

/* The statistics a pass uses: the batch's (in the workspaces) while training, the moving ones at
 * inference. */
static void bn_stats_of(strata_layer *layer, const strata_host *host, const bn_plan *p, bool training,
                        strata_tensor **mean, strata_tensor **var)
{
	*mean = training ? host->workspace(layer, p->ws_mean) : host->state(layer, p->moving_mean);
	*var = training ? host->workspace(layer, p->ws_var) : host->state(layer, p->moving_var);
}

static strata_status bn_forward(strata_layer *layer, const strata_host *host, const strata_forward_args *args)
{
	const bn_plan *p = host->get_private(layer);
	size_t rows, per_block, blocks;
	strata_status st = bn_rows(layer, host, p, args->batch, &rows, &per_block, &blocks);
	if (st != STRATA_OK || rows == 0)
		return st;
	bool training = args->training && !strata_forward_frozen(args);
	if (training && (st = bn_statistics(layer, host, p, args->input, rows, per_block, blocks, true)) != STRATA_OK)
		return st;
	strata_tensor *mean, *var;
	bn_stats_of(layer, host, p, training, &mean, &var);
	unsigned vw;
	strata_kernel *k = bn_kernel(layer, host, p, "bn_apply", &vw);
	if (!k)
		return host->last_status(layer);
	/* A buffer the kernel does not read stands in for a missing gamma or beta. */
	const strata_arg a[] = {
		strata_arg_tensor(args->input),
		strata_arg_tensor(args->output),
		strata_arg_tensor(mean),
		strata_arg_tensor(var),
		strata_arg_tensor(p->has_gamma ? host->weight(layer, p->gamma) : mean),
		strata_arg_tensor(p->has_beta ? host->weight(layer, p->beta) : mean),
		strata_arg_int((int32_t)rows),
		strata_arg_int((int32_t)p->cols),
		strata_arg_int((int32_t)BN_APPLY_ROWS),
		strata_arg_float(p->eps),
		strata_arg_int(p->has_gamma),
		strata_arg_int(p->has_beta),
	};
	return tune_launch_2d(layer, host, k, (size_t)p->cols / vw, (rows + BN_APPLY_ROWS - 1) / BN_APPLY_ROWS,
	                      sizeof(a) / sizeof(a[0]), a);
}

static strata_status bn_backward(strata_layer *layer, const strata_host *host, const strata_backward_args *args)
{
	const bn_plan *p = host->get_private(layer);
	bool training = strata_backward_training(args) && !strata_backward_frozen(args);
	strata_tensor *dgamma = p->has_gamma ? host->weight_grad(layer, p->gamma) : NULL;
	strata_tensor *dbeta = p->has_beta ? host->weight_grad(layer, p->beta) : NULL;
	if ((p->has_gamma && !dgamma) || (p->has_beta && !dbeta))
		return host->fail(layer, STRATA_ERR_INVALID, "no weight gradients: the session is not prepared for "
		                  "training");
	size_t rows, per_block, blocks;
	strata_status st = bn_rows(layer, host, p, args->batch, &rows, &per_block, &blocks);
	if (st != STRATA_OK)
		return st;
	if (rows == 0) {
		/* An empty batch contributes nothing, but the gradients are still overwritten. */
		if (dgamma && (st = core_fill(layer, host, dgamma, 0.0f, (size_t)p->cols)) != STRATA_OK)
			return st;
		return dbeta ? core_fill(layer, host, dbeta, 0.0f, (size_t)p->cols) : STRATA_OK;
	}
	/* The training gradient of x needs the sums even without gamma and beta. */
	if (!dgamma && !dbeta && !args->grad_input)
		return STRATA_OK;
	/* The batch statistics of the forward pass: still in the workspaces when the host says so, else
	 * computed again, bit for bit the same, without touching the moving statistics. */
	if (training && !strata_backward_kept(args) &&
	    (st = bn_statistics(layer, host, p, args->input, rows, per_block, blocks, false)) != STRATA_OK)
		return st;
	strata_tensor *mean, *var;
	bn_stats_of(layer, host, p, training, &mean, &var);
	strata_tensor *partials = host->workspace(layer, p->ws_partials), *sums = host->workspace(layer, p->ws_sums);
	bool need_sums = dgamma || dbeta || training;
	unsigned vw;
	strata_kernel *k;
	if (need_sums) {
		if (!(k = bn_kernel(layer, host, p, "bn_grad_partials", &vw)))
			return host->last_status(layer);
		const strata_arg a[] = {
			strata_arg_tensor(args->input), strata_arg_tensor(args->grad_output), strata_arg_tensor(mean),
			strata_arg_tensor(var), strata_arg_tensor(partials), strata_arg_int((int32_t)rows),
			strata_arg_int((int32_t)p->cols), strata_arg_int((int32_t)per_block), strata_arg_float(p->eps),
		};
		if ((st = tune_launch_2d(layer, host, k, (size_t)p->cols / vw, blocks, sizeof(a) / sizeof(a[0]), a)))
			return st;
		const strata_arg f[] = {
			strata_arg_tensor(partials),
			strata_arg_tensor(sums),
			strata_arg_tensor(dgamma ? dgamma : sums),
			strata_arg_tensor(dbeta ? dbeta : sums),
			strata_arg_int((int32_t)p->cols),
			strata_arg_int((int32_t)blocks),
			strata_arg_int(dgamma != NULL),
			strata_arg_int(dbeta != NULL),
		};
		if ((st = bn_launch_finish(layer, host, "bn_grad_finish", (size_t)p->cols, sizeof(f) / sizeof(f[0]), f)))
			return st;
	}
	if (!args->grad_input)
		return STRATA_OK;
	if (!(k = bn_kernel(layer, host, p, "bn_grad_input", &vw)))
		return host->last_status(layer);
	const strata_arg d[] = {
		strata_arg_tensor(args->input),
		strata_arg_tensor(args->grad_output),
		strata_arg_tensor(args->grad_input),
		strata_arg_tensor(mean),
		strata_arg_tensor(var),
		strata_arg_tensor(p->has_gamma ? host->weight(layer, p->gamma) : mean),
		strata_arg_tensor(sums),
		strata_arg_int((int32_t)rows),
		strata_arg_int((int32_t)p->cols),
		strata_arg_int((int32_t)BN_APPLY_ROWS),
		strata_arg_float(p->eps),
		strata_arg_int(p->has_gamma),
		strata_arg_int(training),
	};
	return tune_launch_2d(layer, host, k, (size_t)p->cols / vw, (rows + BN_APPLY_ROWS - 1) / BN_APPLY_ROWS,
	                      sizeof(d) / sizeof(d[0]), d);
}

static void bn_destroy(strata_layer *layer, const strata_host *host)
{
	free(host->get_private(layer));
	host->set_private(layer, NULL);
}

static const strata_layer_ops bn_ops = {
	.size = sizeof(strata_layer_ops),
	.type = "batch_normalization",
	.class_name = "BatchNormalization",
	.name_prefix = "batch_normalization",
	.doc = "normalizes each channel by the batch's statistics while training, the moving ones at inference, "
	       "as Keras' BatchNormalization",
	.params = bn_params,
	.n_params = sizeof(bn_params) / sizeof(bn_params[0]),
	.build = bn_build,
	.forward = bn_forward,
	.backward = bn_backward,
	.destroy = bn_destroy,
};

static strata_status bn_init(const strata_host *host, strata_registry *reg)
{
	strata_status st = host->register_program(reg, "batch_normalization", batch_normalization_cl_source, "");
	return st != STRATA_OK ? st : host->register_layer(reg, &bn_ops);
}

static const strata_plugin bn_plugin = {
	.abi_version = STRATA_PLUGIN_ABI_VERSION,
	.size = sizeof(strata_plugin),
	.name = "batch_normalization",
	.version = "1.0.0",
	.description = "BatchNormalization: batch statistics while training, moving statistics at inference",
	.init = bn_init,
};

STRATA_PLUGIN_DEFINE(bn_plugin)
