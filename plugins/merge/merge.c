/* The merge layers, Keras' names and semantics: Add, Subtract, Multiply, Average, Maximum, Minimum
 * (element-wise) and Concatenate (along `axis`), and Divide (Strata's, for ONNX's Div: Keras 3 has
 * keras.ops.divide but no layer). One shared object registers all eight types; they differ only in
 * the operation their kernels are built for (merge.cl).
 *
 * The element-wise types broadcast as Keras 3's merge layers do (NumPy's rule over the samples'
 * shapes, aligned on their last axes: a dimension of 1 stretches, a missing leading one counts as
 * 1), so a squeeze-and-excitation block multiplies a (1, 1, C) gate into an (H, W, C) map. An
 * input that broadcasts is expanded into a workspace of the output's size, so the same-shape
 * kernels do the arithmetic; its gradient is computed at the output's size in another workspace
 * and summed over the stretched axes (merge_reduce, in a fixed order: the same numbers every run).
 *
 * A layer with several inputs reads their shapes with host->input_count() and
 * host->input_shape_at() in build(), its inputs with strata_forward_input() and writes their
 * gradients through strata_backward_grad_input(), overwriting each (the host sums gradients where
 * a value feeds several layers, or one layer twice). */
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include <strata/plugin.h>

#include "merge_cl.h"
#include "shape.h"
#include "tune.h"

/* The most tensors one kernel launch reads (merge.cl's N_IN): a layer with more inputs chains
 * launches, each continuing from what the previous one wrote. Eight keeps a kernel's arguments
 * far below the smallest parameter space OpenCL allows (256 bytes for embedded profiles). */
#define MERGE_LAUNCH_INPUTS 8u

typedef enum merge_kind {
	MERGE_ADD,
	MERGE_SUBTRACT,
	MERGE_MULTIPLY,
	MERGE_AVERAGE,
	MERGE_MAXIMUM,
	MERGE_MINIMUM,
	MERGE_CONCATENATE,
	MERGE_DIVIDE,
} merge_kind;

/* The operation codes of merge.cl's merge_fold (-DOP). */
enum { CL_ADD = 0, CL_SUBTRACT = 1, CL_MULTIPLY = 2, CL_MAXIMUM = 3, CL_MINIMUM = 4, CL_DIVIDE = 5 };

static const struct merge_info {
	const char *class_name;
	int op; /* merge_fold's OP for the forward pass */
} merge_info[] = {
	[MERGE_ADD] = {"Add", CL_ADD},
	[MERGE_SUBTRACT] = {"Subtract", CL_SUBTRACT},
	[MERGE_MULTIPLY] = {"Multiply", CL_MULTIPLY},
	[MERGE_AVERAGE] = {"Average", CL_ADD},
	[MERGE_MAXIMUM] = {"Maximum", CL_MAXIMUM},
	[MERGE_MINIMUM] = {"Minimum", CL_MINIMUM},
	[MERGE_CONCATENATE] = {"Concatenate", CL_ADD},
	[MERGE_DIVIDE] = {"Divide", CL_DIVIDE},
};

static const strata_param concatenate_params[] = {
	{.name = "axis", .type = STRATA_PARAM_INT, .default_value = "-1",
	 .min = -(STRATA_MAX_RANK + 1), .max = STRATA_MAX_RANK,
	 .doc = "axis to concatenate along, counting the batch as axis 0 as Keras does (1 is the first "
	        "axis of a sample, -1 the last); the batch axis itself cannot be concatenated"},
};

/* ---- shapes ------------------------------------------------------------------------------------ */

static int64_t merge_elements(const strata_shape *s)
{
	int64_t n = 1;
	for (uint32_t d = 0; d < s->rank; d++)
		n *= s->dims[d];
	return n;
}

/* The per-sample axis (0 .. rank - 1) that Keras' `axis` names for samples of `rank`
 * dimensions, or -1 with the reason refused. */
static int merge_axis(strata_layer *layer, const strata_host *host, uint32_t rank, strata_status *st)
{
	int64_t axis = host->param_int(layer, "axis"), full = (int64_t)rank + 1;
	int64_t a = axis < 0 ? axis + full : axis;
	*st = STRATA_OK;
	if (a == 0)
		*st = host->fail_param(layer, "axis", STRATA_ERR_INVALID,
		                       "axis %lld is the batch axis, which cannot be concatenated; the axes of "
		                       "these rank-%u samples are 1 to %u (or -%u to -1)",
		                       (long long)axis, rank, rank, rank);
	else if (a < 0 || a >= full)
		*st = host->fail_param(layer, "axis", STRATA_ERR_INVALID,
		                       "axis %lld is out of range for rank-%u samples: 1 to %u, or -%u to -1",
		                       (long long)axis, rank, rank, rank);
	return *st == STRATA_OK ? (int)(a - 1) : -1;
}

/* Whether b has a's shape, but on dimension `except` (-1: none). */
static bool merge_same_shape(const strata_shape *a, const strata_shape *b, int except)
{
	if (a->rank != b->rank)
		return false;
	for (uint32_t d = 0; d < a->rank; d++)
		if ((int)d != except && a->dims[d] != b->dims[d])
			return false;
	return true;
}

/* *out = the broadcast of *out and *in (NumPy's rule on the last axes, as Keras 3's merge layers
 * compute their output shape); false where a pair of dimensions differs and neither is 1. */
static bool merge_broadcast(strata_shape *out, const strata_shape *in)
{
	strata_shape r = *out;
	r.rank = out->rank > in->rank ? out->rank : in->rank;
	for (uint32_t d = 0; d < r.rank; d++) {
		int64_t a = d + out->rank >= r.rank ? out->dims[d + out->rank - r.rank] : 1;
		int64_t b = d + in->rank >= r.rank ? in->dims[d + in->rank - r.rank] : 1;
		if (a != b && a != 1 && b != 1)
			return false;
		r.dims[d] = a == 1 ? b : a;
	}
	*out = r;
	return true;
}

/* Whether input k stretches to the output's shape (a different shape: the same element count
 * with another rank is a broadcast of 1s only, which the same-shape kernels take as it is). */
static bool merge_stretched(const strata_host *host, strata_layer *layer, uint32_t k)
{
	return merge_elements(host->input_shape_at(layer, k)) != merge_elements(host->output_shape(layer));
}

/* The workspaces of an element-wise merge with stretched inputs, declared by build() in this
 * order: one per stretched input (its expansion), then one for a gradient at the output's size.
 * Their indices follow from the order, so nothing is kept between calls; build() checks that the
 * host numbered them so. */
static uint32_t merge_expansion_ws(const strata_host *host, strata_layer *layer, uint32_t k)
{
	uint32_t index = 0;
	for (uint32_t j = 0; j < k; j++)
		index += merge_stretched(host, layer, j);
	return index;
}

static strata_status merge_build(strata_layer *layer, const strata_host *host, strata_shape *out, merge_kind kind)
{
	if (!STRATA_HOST_HAS(host, input_count) || !STRATA_HOST_HAS(host, input_shape_at))
		return host->fail(layer, STRATA_ERR_UNSUPPORTED, "%s needs a host with graph models (Strata 0.3 "
		                  "or later)", merge_info[kind].class_name);
	uint32_t n = host->input_count(layer);
	const strata_shape *first = host->input_shape_at(layer, 0);
	if (n < 2 || !first)
		return host->fail(layer, STRATA_ERR_INVALID, "%s merges 2 or more inputs, %u given",
		                  merge_info[kind].class_name, n);
	int axis = -1;
	strata_status st = STRATA_OK;
	if (kind == MERGE_CONCATENATE && (axis = merge_axis(layer, host, first->rank, &st)) < 0)
		return st;
	*out = *first;
	out->dtype = STRATA_DTYPE_FLOAT32;
	for (uint32_t k = 1; k < n; k++) {
		const strata_shape *in = host->input_shape_at(layer, k);
		char a[96], b[96];
		if (!in)
			return host->fail(layer, STRATA_ERR_PLUGIN, "the host gave no shape for input %u of %u", k, n);
		if (kind != MERGE_CONCATENATE) {
			strata_shape before = *out;
			if (!merge_broadcast(out, in))
				return host->fail(layer, STRATA_ERR_INVALID, "input %u has shape %s, which does not broadcast "
				                  "with %s (the inputs before it): each pair of dimensions, aligned on the "
				                  "last, must be equal or one of them 1", k, shape_format(in, a, sizeof(a)),
				                  shape_format(&before, b, sizeof(b)));
			continue;
		}
		if (!merge_same_shape(first, in, axis))
			return host->fail(layer, STRATA_ERR_INVALID, "input %u has shape %s, input 0 has %s; "
			                  "Concatenate needs the same shape but on axis %lld", k, shape_format(in, a, sizeof(a)),
			                  shape_format(first, b, sizeof(b)), (long long)host->param_int(layer, "axis"));
		out->dims[axis] += in->dims[axis];
		if (out->dims[axis] > INT_MAX)
			return host->fail(layer, STRATA_ERR_OVERFLOW, "the concatenated axis is too long");
	}
	if (kind != MERGE_CONCATENATE) {
		int64_t elems = 1;
		for (uint32_t d = 0; d < out->rank; d++)
			if (!shape_mul(elems, out->dims[d], INT_MAX, &elems))
				return host->fail(layer, STRATA_ERR_OVERFLOW, "the broadcast output is too large");
		/* output_shape() is only set after build: the workspaces are declared against *out. */
		size_t bytes = (size_t)elems * sizeof(float);
		uint32_t want = 0, index;
		for (uint32_t k = 0; k < n; k++)
			if (merge_elements(host->input_shape_at(layer, k)) != elems)
				want++;
		for (uint32_t w = 0; want && w <= want; w++) {
			if ((st = host->add_workspace(layer, bytes, &index)) != STRATA_OK)
				return st;
			if (index != w)
				return host->fail(layer, STRATA_ERR_PLUGIN, "the host numbered workspace %u as %u", w, index);
		}
	}
	/* A mask of the steps goes through when every input carries the same one (a bidirectional
	 * layer's two directions); the host drops it otherwise. */
	if (STRATA_HOST_HAS(host, mask_declare))
		return host->mask_declare(layer, STRATA_MASK_PASS);
	return STRATA_OK;
}

/* ---- launches ---------------------------------------------------------------------------------- */

/* Work-items of an elementwise launch over n floats, VW at a time, the last one for the tail. */
static size_t merge_global(size_t n, unsigned vw)
{
	return n / vw + (n % vw != 0);
}

/* out[0..n) = scale * (first OP t[0] OP t[1] ...) over the entries of t but t[skip] (skip >= count:
 * none), left to right, in launches of up to MERGE_LAUNCH_INPUTS tensors: each after the first
 * continues from `out`, and only the last scales. `first` may be `out` (each work-item reads its
 * elements before it writes them). */
static strata_status merge_fold(strata_layer *layer, const strata_host *host, int op, strata_tensor *out,
                                strata_tensor *first, strata_tensor *const *t, uint32_t count, uint32_t skip,
                                float scale, size_t n)
{
	unsigned vw = tune_vw(layer, host);
	size_t global = merge_global(n, vw);
	uint32_t k = 0;
	for (bool first_launch = true;; first_launch = false) {
		strata_arg a[3 + MERGE_LAUNCH_INPUTS];
		uint32_t m = 0;
		a[3 + m++] = strata_arg_tensor(first_launch ? first : out);
		for (; m < MERGE_LAUNCH_INPUTS && k < count; k++)
			if (k != skip)
				a[3 + m++] = strata_arg_tensor(t[k]);
		if (k == skip)
			k++;
		bool last = k >= count;
		a[0] = strata_arg_tensor(out);
		a[1] = strata_arg_int((int32_t)n);
		a[2] = strata_arg_float(last ? scale : 1.0f);
		char options[64];
		snprintf(options, sizeof(options), "-DOP=%d -DN_IN=%u -DVW=%u", op, m, vw);
		strata_kernel *kernel = host->kernel(layer, "merge", "merge_fold", options);
		if (!kernel)
			return host->last_status(layer);
		strata_status st = host->launch(layer, kernel, 1, &global, NULL, 3 + m, a);
		if (st != STRATA_OK || last)
			return st;
	}
}

/* Concatenate: out's rows (rows of out_len floats) from the inputs' rows (len[k] floats each), in
 * launches of up to MERGE_LAUNCH_INPUTS inputs, each filling its own columns. */
static strata_status merge_concat(strata_layer *layer, const strata_host *host, strata_tensor *out,
                                  strata_tensor *const *in, const int32_t *len, uint32_t count, size_t rows,
                                  int32_t out_len)
{
	int32_t col0 = 0;
	for (uint32_t k0 = 0; k0 < count; k0 += MERGE_LAUNCH_INPUTS) {
		uint32_t m = count - k0 < MERGE_LAUNCH_INPUTS ? count - k0 : MERGE_LAUNCH_INPUTS;
		strata_arg a[5 + 2 * MERGE_LAUNCH_INPUTS];
		int32_t cols = 0;
		for (uint32_t j = 0; j < m; j++) {
			a[5 + 2 * j] = strata_arg_tensor(in[k0 + j]);
			a[6 + 2 * j] = strata_arg_int(len[k0 + j]);
			cols += len[k0 + j];
		}
		a[0] = strata_arg_tensor(out);
		a[1] = strata_arg_int((int32_t)rows);
		a[2] = strata_arg_int(out_len);
		a[3] = strata_arg_int(col0);
		a[4] = strata_arg_int(cols);
		char options[32];
		snprintf(options, sizeof(options), "-DN_IN=%u", m);
		strata_kernel *kernel = host->kernel(layer, "merge", "merge_concat", options);
		if (!kernel)
			return host->last_status(layer);
		strata_status st = tune_launch_2d(layer, host, kernel, (size_t)cols, rows, 5 + 2 * m, a);
		if (st != STRATA_OK)
			return st;
		col0 += cols;
	}
	return STRATA_OK;
}

/* Concatenate's layout for `batch` samples: rows (the batch and the axes before `axis`) and each
 * input's floats per row. */
static void merge_concat_layout(strata_layer *layer, const strata_host *host, uint32_t batch, uint32_t n,
                                int32_t *len, size_t *rows, int32_t *out_len)
{
	const strata_shape *s = host->output_shape(layer);
	strata_status st;
	int axis = merge_axis(layer, host, s->rank, &st);
	int64_t outer = batch, inner = 1;
	for (int d = 0; d < axis; d++)
		outer *= s->dims[d];
	for (uint32_t d = (uint32_t)axis + 1; d < s->rank; d++)
		inner *= s->dims[d];
	for (uint32_t k = 0; k < n; k++)
		len[k] = (int32_t)(host->input_shape_at(layer, k)->dims[axis] * inner);
	*rows = (size_t)outer;
	*out_len = (int32_t)(s->dims[axis] * inner);
}

/* The input count and the floats of `batch` outputs, refused past the kernels' int indexing. */
static strata_status merge_count(strata_layer *layer, const strata_host *host, uint32_t batch, uint32_t *n_in,
                                 size_t *n)
{
	size_t per_sample = (size_t)merge_elements(host->output_shape(layer));
	*n_in = host->input_count(layer);
	*n = (size_t)batch * per_sample;
	return shape_check_batch(layer, host, batch, per_sample);
}

/* The tensors of the layer's n inputs, and with `grads` their gradients (NULL where not wanted),
 * in one malloc'd array of 3n: in[0..n), grads[n..2n), and room for the inputs as the kernels
 * read them (merge_expand) at [2n..3n). */
static strata_status merge_tensors(strata_layer *layer, const strata_host *host, uint32_t n,
                                   const strata_forward_args *fw, const strata_backward_args *bw,
                                   strata_tensor ***out)
{
	strata_tensor **t = malloc(3 * (size_t)n * sizeof(*t));
	if (!t)
		return host->fail(layer, STRATA_ERR_NO_MEMORY, "out of memory");
	for (uint32_t k = 0; k < n; k++) {
		t[k] = fw ? strata_forward_input(fw, k) : strata_backward_input(bw, k);
		t[n + k] = bw ? strata_backward_grad_input(bw, k) : NULL;
		t[2 * n + k] = t[k];
		if (!t[k]) {
			free(t);
			return host->fail(layer, STRATA_ERR_PLUGIN, "the host passed no tensor for input %u of %u", k, n);
		}
	}
	*out = t;
	return STRATA_OK;
}

/* ---- broadcasting ------------------------------------------------------------------------------ */

_Static_assert(STRATA_MAX_RANK <= 4, "merge_expand and merge_reduce index samples of up to 4 axes");

/* merge.cl's shape arguments of a stretched input k: the output's 4 dimensions and the input's,
 * both aligned on the last axis and padded with leading 1s, after `n` (the launch's size). */
static void merge_broadcast_args(strata_layer *layer, const strata_host *host, uint32_t k, int32_t n,
                                 strata_arg *a)
{
	const strata_shape *o = host->output_shape(layer), *in = host->input_shape_at(layer, k);
	a[0] = strata_arg_int(n);
	for (uint32_t d = 0; d < 4; d++) {
		a[1 + d] = strata_arg_int(d + o->rank >= 4 ? (int32_t)o->dims[d + o->rank - 4] : 1);
		a[5 + d] = strata_arg_int(d + in->rank >= 4 ? (int32_t)in->dims[d + in->rank - 4] : 1);
	}
}

/* x[k] = input k as the same-shape kernels read it: a stretched input expanded into its workspace
 * (`batch` samples), the others as they are (x[k] is in[k] already). */
static strata_status merge_expand(strata_layer *layer, const strata_host *host, uint32_t batch, uint32_t n_in,
                                  strata_tensor *const *in, strata_tensor **x)
{
	size_t out_elems = (size_t)merge_elements(host->output_shape(layer)) * batch;
	for (uint32_t k = 0; k < n_in; k++) {
		if (!merge_stretched(host, layer, k))
			continue;
		x[k] = host->workspace(layer, merge_expansion_ws(host, layer, k));
		strata_kernel *kernel = host->kernel(layer, "merge", "merge_expand", NULL);
		if (!x[k] || !kernel)
			return x[k] ? host->last_status(layer)
			            : host->fail(layer, STRATA_ERR_PLUGIN, "the host passed no workspace");
		strata_arg a[11];
		a[0] = strata_arg_tensor(x[k]);
		a[1] = strata_arg_tensor(in[k]);
		merge_broadcast_args(layer, host, k, (int32_t)out_elems, a + 2);
		strata_status st = host->launch(layer, kernel, 1, &out_elems, NULL, 11, a);
		if (st != STRATA_OK)
			return st;
	}
	return STRATA_OK;
}

/* Where input k's gradient is computed: its own tensor, or for a stretched input the gradient
 * workspace at the output's size (merge_settle then sums it into the input's). */
static strata_tensor *merge_grad_target(strata_layer *layer, const strata_host *host, uint32_t n_in, uint32_t k,
                                        strata_tensor *grad)
{
	return merge_stretched(host, layer, k) ? host->workspace(layer, merge_expansion_ws(host, layer, n_in)) : grad;
}

/* Input k's gradient from what merge_grad_target gave: for a stretched input, the sums of the
 * workspace over the stretched axes, into grad (`batch` samples of the input's shape). */
static strata_status merge_settle(strata_layer *layer, const strata_host *host, uint32_t batch, uint32_t n_in,
                                  uint32_t k, strata_tensor *grad)
{
	if (!merge_stretched(host, layer, k))
		return STRATA_OK;
	strata_tensor *g = host->workspace(layer, merge_expansion_ws(host, layer, n_in));
	strata_kernel *kernel = host->kernel(layer, "merge", "merge_reduce", NULL);
	if (!g || !kernel)
		return g ? host->last_status(layer) : host->fail(layer, STRATA_ERR_PLUGIN, "the host passed no workspace");
	size_t n = (size_t)merge_elements(host->input_shape_at(layer, k)) * batch;
	strata_arg a[11];
	a[0] = strata_arg_tensor(grad);
	a[1] = strata_arg_tensor(g);
	merge_broadcast_args(layer, host, k, (int32_t)n, a + 2);
	return host->launch(layer, kernel, 1, &n, NULL, 11, a);
}

/* ---- the passes -------------------------------------------------------------------------------- */

static strata_status merge_forward(strata_layer *layer, const strata_host *host, const strata_forward_args *args,
                                   merge_kind kind)
{
	uint32_t n_in;
	size_t n;
	strata_tensor **in;
	strata_status st = merge_count(layer, host, args->batch, &n_in, &n);
	if (st != STRATA_OK || n == 0 || (st = merge_tensors(layer, host, n_in, args, NULL, &in)) != STRATA_OK)
		return st;
	if (kind == MERGE_CONCATENATE) {
		int32_t *len = malloc(n_in * sizeof(*len)), out_len;
		size_t rows;
		if (!len) {
			free(in);
			return host->fail(layer, STRATA_ERR_NO_MEMORY, "out of memory");
		}
		merge_concat_layout(layer, host, args->batch, n_in, len, &rows, &out_len);
		st = merge_concat(layer, host, args->output, in, len, n_in, rows, out_len);
		free(len);
	} else {
		strata_tensor **x = in + 2 * n_in;
		float scale = kind == MERGE_AVERAGE ? 1.0f / (float)n_in : 1.0f;
		st = merge_expand(layer, host, args->batch, n_in, in, x);
		if (st == STRATA_OK)
			st = merge_fold(layer, host, merge_info[kind].op, args->output, x[0], x + 1, n_in - 1, UINT32_MAX,
			                scale, n);
	}
	free(in);
	return st;
}

/* Maximum's and Minimum's gradients: each input in order takes dy where it equals the output and
 * no earlier input did (merge_pick claims those elements of dy, which the host lets a layer
 * overwrite). Stops after the last input whose gradient is wanted. x: the inputs at the output's
 * shape (merge_expand). */
static strata_status merge_pick(strata_layer *layer, const strata_host *host, const strata_backward_args *args,
                                strata_tensor *const *x, strata_tensor *const *grad, uint32_t n_in, size_t n)
{
	uint32_t wanted = 0;
	for (uint32_t k = 0; k < n_in; k++)
		wanted = grad[k] ? k + 1 : wanted;
	unsigned vw = tune_vw(layer, host);
	size_t global = merge_global(n, vw);
	for (uint32_t k = 0; k < wanted; k++) {
		bool write = grad[k] != NULL, claim = k + 1 < wanted;
		strata_tensor *target = write ? merge_grad_target(layer, host, n_in, k, grad[k]) : NULL;
		char options[64];
		snprintf(options, sizeof(options), "-DPICK_WRITE=%d -DPICK_CLAIM=%d -DVW=%u", write, claim, vw);
		strata_kernel *kernel = host->kernel(layer, "merge", "merge_pick", options);
		if (!kernel)
			return host->last_status(layer);
		strata_arg a[] = {
			strata_arg_tensor(write ? target : args->grad_output), strata_arg_tensor(args->grad_output),
			strata_arg_tensor(args->output), strata_arg_tensor(x[k]), strata_arg_int((int32_t)n),
		};
		strata_status st = host->launch(layer, kernel, 1, &global, NULL, sizeof(a) / sizeof(a[0]), a);
		if (st == STRATA_OK && write)
			st = merge_settle(layer, host, args->batch, n_in, k, grad[k]);
		if (st != STRATA_OK)
			return st;
	}
	return STRATA_OK;
}

/* Input k's gradient of an element-wise merge but Maximum and Minimum, at the output's size into
 * `target`, from dy alone (Multiply: and the other inputs, x at the output's shape). */
static strata_status merge_grad_elementwise(strata_layer *layer, const strata_host *host,
                                            const strata_backward_args *args, merge_kind kind,
                                            strata_tensor *const *x, uint32_t n_in, uint32_t k, strata_tensor *target,
                                            size_t n)
{
	strata_tensor *dy = args->grad_output;
	if (kind == MERGE_MULTIPLY) /* dy times the product of the other inputs (not y / x: an input may be 0) */
		return merge_fold(layer, host, CL_MULTIPLY, target, dy, x, n_in, k, 1.0f, n);
	if (kind == MERGE_DIVIDE && k == 0) /* y = a / b: dy / b */
		return merge_fold(layer, host, CL_DIVIDE, target, dy, x + 1, 1, UINT32_MAX, 1.0f, n);
	if (kind == MERGE_DIVIDE) { /* -dy * a / b^2 = -(dy * y) / b */
		strata_status st = merge_fold(layer, host, CL_MULTIPLY, target, dy, &args->output, 1, UINT32_MAX, 1.0f, n);
		return st != STRATA_OK ? st : merge_fold(layer, host, CL_DIVIDE, target, target, x + 1, 1, UINT32_MAX, -1.0f, n);
	}
	float scale = kind == MERGE_AVERAGE                 ? 1.0f / (float)n_in
	              : kind == MERGE_SUBTRACT && k == 1 ? -1.0f
	                                                  : 1.0f;
	return merge_fold(layer, host, CL_ADD, target, dy, NULL, 0, UINT32_MAX, scale, n);
}

/* Every input's gradient but Maximum's and Minimum's: one launch per wanted gradient, and its
 * sums where the input was stretched. */
static strata_status merge_grads(strata_layer *layer, const strata_host *host, const strata_backward_args *args,
                                 merge_kind kind, strata_tensor *const *x, strata_tensor *const *grad,
                                 uint32_t n_in, size_t n, const int32_t *len, size_t rows, int32_t out_len)
{
	strata_tensor *dy = args->grad_output;
	int32_t col0 = 0;
	strata_status st = STRATA_OK;
	for (uint32_t k = 0; k < n_in && st == STRATA_OK; k++) {
		strata_tensor *g = grad[k];
		if (kind == MERGE_CONCATENATE) {
			/* The slice of dy this input filled. */
			if (g) {
				strata_kernel *kernel = host->kernel(layer, "merge", "merge_slice", NULL);
				if (!kernel)
					return host->last_status(layer);
				strata_arg a[] = {
					strata_arg_tensor(g), strata_arg_tensor(dy), strata_arg_int((int32_t)rows),
					strata_arg_int(len[k]), strata_arg_int(out_len), strata_arg_int(col0),
				};
				st = tune_launch_2d(layer, host, kernel, (size_t)len[k], rows, sizeof(a) / sizeof(a[0]), a);
			}
			col0 += len[k];
		} else if (g) {
			st = merge_grad_elementwise(layer, host, args, kind, x, n_in, k,
			                            merge_grad_target(layer, host, n_in, k, g), n);
			if (st == STRATA_OK)
				st = merge_settle(layer, host, args->batch, n_in, k, g);
		}
	}
	return st;
}

static strata_status merge_backward(strata_layer *layer, const strata_host *host, const strata_backward_args *args,
                                    merge_kind kind)
{
	uint32_t n_in;
	size_t n;
	strata_tensor **t;
	strata_status st = merge_count(layer, host, args->batch, &n_in, &n);
	if (st != STRATA_OK || n == 0 || (st = merge_tensors(layer, host, n_in, NULL, args, &t)) != STRATA_OK)
		return st;
	strata_tensor **in = t, **grad = t + n_in, **x = t + 2 * n_in;
	/* The expansions of the forward pass, where the host kept them; else again. */
	if (kind != MERGE_CONCATENATE) {
		if (strata_backward_kept(args)) {
			for (uint32_t k = 0; k < n_in; k++)
				if (merge_stretched(host, layer, k))
					x[k] = host->workspace(layer, merge_expansion_ws(host, layer, k));
		} else {
			st = merge_expand(layer, host, args->batch, n_in, in, x);
		}
	}
	if (st != STRATA_OK) {
		/* reported by merge_expand */
	} else if (kind == MERGE_MAXIMUM || kind == MERGE_MINIMUM) {
		st = merge_pick(layer, host, args, x, grad, n_in, n);
	} else {
		int32_t *len = malloc(n_in * sizeof(*len)), out_len = 0;
		size_t rows = 0;
		if (!len) {
			free(t);
			return host->fail(layer, STRATA_ERR_NO_MEMORY, "out of memory");
		}
		if (kind == MERGE_CONCATENATE)
			merge_concat_layout(layer, host, args->batch, n_in, len, &rows, &out_len);
		st = merge_grads(layer, host, args, kind, x, grad, n_in, n, len, rows, out_len);
		free(len);
	}
	free(t);
	return st;
}

/* ---- the eight types --------------------------------------------------------------------------- */

#define MERGE_CALLBACKS(name, kind)                                                                        \
	static strata_status name##_build(strata_layer *layer, const strata_host *host, const strata_shape *in, \
	                                  strata_shape *out)                                                \
	{                                                                                                   \
		(void)in; /* input 0's shape: merge_build reads every input's */                             \
		return merge_build(layer, host, out, kind);                                                  \
	}                                                                                                   \
	static strata_status name##_forward(strata_layer *layer, const strata_host *host,                   \
	                                    const strata_forward_args *args)                                \
	{                                                                                                   \
		return merge_forward(layer, host, args, kind);                                               \
	}                                                                                                   \
	static strata_status name##_backward(strata_layer *layer, const strata_host *host,                  \
	                                     const strata_backward_args *args)                              \
	{                                                                                                   \
		return merge_backward(layer, host, args, kind);                                              \
	}

MERGE_CALLBACKS(add, MERGE_ADD)
MERGE_CALLBACKS(subtract, MERGE_SUBTRACT)
MERGE_CALLBACKS(multiply, MERGE_MULTIPLY)
MERGE_CALLBACKS(average, MERGE_AVERAGE)
MERGE_CALLBACKS(maximum, MERGE_MAXIMUM)
MERGE_CALLBACKS(minimum, MERGE_MINIMUM)
MERGE_CALLBACKS(concatenate, MERGE_CONCATENATE)
MERGE_CALLBACKS(divide, MERGE_DIVIDE)

#define MERGE_OPS(name, class, doc_text, lo, hi, parameters, count)                                        \
	{                                                                                                   \
		.size = sizeof(strata_layer_ops), .type = #name, .class_name = class, .name_prefix = #name,  \
		.doc = doc_text, .params = parameters, .n_params = count, .build = name##_build,             \
		.forward = name##_forward, .backward = name##_backward, .min_inputs = lo, .max_inputs = hi,  \
	}

static const strata_layer_ops merge_ops[] = {
	MERGE_OPS(add, "Add", "sum of its inputs, element-wise, as Keras' Add", 2, STRATA_INPUTS_ANY, NULL, 0),
	MERGE_OPS(subtract, "Subtract", "input 0 minus input 1, element-wise, as Keras' Subtract", 2, 2, NULL, 0),
	MERGE_OPS(multiply, "Multiply", "product of its inputs, element-wise, as Keras' Multiply", 2,
	          STRATA_INPUTS_ANY, NULL, 0),
	MERGE_OPS(average, "Average", "mean of its inputs, element-wise, as Keras' Average", 2, STRATA_INPUTS_ANY,
	          NULL, 0),
	MERGE_OPS(maximum, "Maximum", "largest of its inputs, element-wise, as Keras' Maximum", 2,
	          STRATA_INPUTS_ANY, NULL, 0),
	MERGE_OPS(minimum, "Minimum", "smallest of its inputs, element-wise, as Keras' Minimum", 2,
	          STRATA_INPUTS_ANY, NULL, 0),
	MERGE_OPS(concatenate, "Concatenate", "its inputs joined along an axis, as Keras' Concatenate", 2,
	          STRATA_INPUTS_ANY, concatenate_params, sizeof(concatenate_params) / sizeof(concatenate_params[0])),
	MERGE_OPS(divide, "Divide", "input 0 divided by input 1, element-wise (keras.ops.divide as a layer; "
	          "Keras has no Divide layer)", 2, 2, NULL, 0),
};

static strata_status merge_init(const strata_host *host, strata_registry *reg)
{
	strata_status st = host->register_program(reg, "merge", merge_cl_source, "");
	for (size_t i = 0; st == STRATA_OK && i < sizeof(merge_ops) / sizeof(merge_ops[0]); i++)
		st = host->register_layer(reg, &merge_ops[i]);
	return st;
}

static const strata_plugin merge_plugin = {
	.abi_version = STRATA_PLUGIN_ABI_VERSION,
	.size = sizeof(strata_plugin),
	.name = "merge",
	.version = "1.0.0",
	.description = "Merge layers: Add, Subtract, Multiply, Average, Maximum, Minimum, Concatenate, Divide",
	.init = merge_init,
};

STRATA_PLUGIN_DEFINE(merge_plugin)
