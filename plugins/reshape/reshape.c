/* Reshape, Permute and RepeatVector: Keras' layers that rearrange a sample's values. No weights.
 *  - Reshape: the same values in storage (channels-last, row-major) order under target_shape, one
 *    of whose sizes may be -1 (worked out from the others). Both passes are a plain device copy
 *    (host->copy): the plugin ABI has no way to make the output alias the input, so a Reshape costs
 *    one read and one write of the batch each way, as Flatten does.
 *  - Permute: a transpose of the sample's axes (dims: 1-based as in Keras, a permutation of 1 to
 *    the rank), by a kernel; its gradient is the transpose by the inverse permutation.
 *  - RepeatVector: (features) to (n, features); its gradient sums the n rows in order.
 *
 * target_shape and dims are lists of integers: with a host whose plugin.h has STRATA_INTS_ANY
 * (lists of 1 to 4 integers, as many as given) any rank up to 4; an older host takes a fixed
 * count only, so then 3 (the rank of images). */
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include <strata/plugin.h>

#include "core.h"
#include "reshape_cl.h"
#include "shape.h"
#include "tune.h"

#ifdef STRATA_INTS_ANY
#define RESHAPE_COUNT STRATA_INTS_ANY
#define RESHAPE_RANKS "1 to 4 sizes"
#define PERMUTE_RANKS "as many as the input's axes, up to 4"
#else
#define RESHAPE_COUNT 3u
#define RESHAPE_RANKS "3 sizes (this host takes a fixed count)"
#define PERMUTE_RANKS "3 of them: (height, width, channels) inputs (this host takes a fixed count)"
#endif

static const strata_param reshape_params[] = {
	{.name = "target_shape", .type = STRATA_PARAM_INTS, .default_value = NULL, .min = -1, .max = INT_MAX,
	 .count = RESHAPE_COUNT,
	 .doc = "the shape of a sample, batch excluded: " RESHAPE_RANKS "; one may be -1, worked out from the others"},
};

static const strata_param permute_params[] = {
	{.name = "dims", .type = STRATA_PARAM_INTS, .default_value = NULL, .min = 1, .max = STRATA_MAX_RANK,
	 .count = RESHAPE_COUNT,
	 .doc = "the input's axes in their output order, 1-based as in Keras (the batch stays first): " PERMUTE_RANKS},
};

static const strata_param repeat_vector_params[] = {
	{.name = "n", .type = STRATA_PARAM_INT, .default_value = NULL, .min = 1, .max = INT_MAX,
	 .doc = "how many times the input vector is repeated"},
};

static int64_t reshape_elements(const strata_shape *s)
{
	int64_t n = 1;
	for (uint32_t i = 0; i < s->rank; i++)
		n *= s->dims[i];
	return n;
}

/* Whether every sample of the input fits the kernels' int indexing; refused naming the input. */
static strata_status reshape_fits(strata_layer *layer, const strata_host *host, const strata_shape *in)
{
	char buf[96];
	int64_t count = 1;
	for (uint32_t i = 0; i < in->rank; i++)
		if (!shape_mul(count, in->dims[i], INT_MAX, &count))
			return host->fail(layer, STRATA_ERR_OVERFLOW, "input %s is too large", shape_format(in, buf, sizeof(buf)));
	return STRATA_OK;
}

/* ---- Reshape ------------------------------------------------------------------------------------ */

static strata_status reshape_build(strata_layer *layer, const strata_host *host, const strata_shape *in,
                                   strata_shape *out)
{
	char a[96], b[96];
	strata_status st = reshape_fits(layer, host, in);
	if (st != STRATA_OK)
		return st;
	strata_shape t = {.rank = 0};
	uint32_t n = host->param_ints(layer, "target_shape", t.dims, STRATA_MAX_RANK);
	if (n < 1 || n > STRATA_MAX_RANK)
		return host->fail_param(layer, "target_shape", STRATA_ERR_INVALID, "'target_shape' takes 1 to %d sizes, "
		                        "got %u", STRATA_MAX_RANK, n);
	t.rank = n;
	int unknown = -1;
	int64_t known = 1;
	for (uint32_t i = 0; i < n; i++) {
		if (t.dims[i] == -1) {
			if (unknown >= 0)
				return host->fail_param(layer, "target_shape", STRATA_ERR_INVALID,
				                        "target_shape %s has more than one -1: only one size can be worked "
				                        "out from the others", shape_format(&t, a, sizeof(a)));
			unknown = (int)i;
		} else if (t.dims[i] < 1) {
			return host->fail_param(layer, "target_shape", STRATA_ERR_INVALID,
			                        "target_shape %s has size %lld: sizes are positive, or -1 for one worked "
			                        "out from the others", shape_format(&t, a, sizeof(a)), (long long)t.dims[i]);
		} else if (!shape_mul(known, t.dims[i], INT_MAX, &known)) {
			return host->fail_param(layer, "target_shape", STRATA_ERR_OVERFLOW, "target_shape %s is too large",
			                        shape_format(&t, a, sizeof(a)));
		}
	}
	int64_t count = reshape_elements(in);
	if (unknown >= 0) {
		if (count % known != 0)
			return host->fail_param(layer, "target_shape", STRATA_ERR_INVALID,
			                        "target_shape %s cannot hold the %lld values of the %s input: %lld is not "
			                        "a multiple of %lld", shape_format(&t, a, sizeof(a)), (long long)count,
			                        shape_format(in, b, sizeof(b)), (long long)count, (long long)known);
		t.dims[unknown] = count / known;
	} else if (known != count) {
		return host->fail_param(layer, "target_shape", STRATA_ERR_INVALID,
		                        "target_shape %s holds %lld values, the %s input %lld: a reshape keeps the "
		                        "values", shape_format(&t, a, sizeof(a)), (long long)known,
		                        shape_format(in, b, sizeof(b)), (long long)count);
	}
	t.dtype = STRATA_DTYPE_FLOAT32;
	*out = t;
	return STRATA_OK;
}

/* The values of `batch` samples, refused past the kernels' int indexing. */
static strata_status reshape_count(strata_layer *layer, const strata_host *host, uint32_t batch, size_t *n)
{
	size_t per_sample = (size_t)reshape_elements(host->input_shape(layer));
	*n = (size_t)batch * per_sample;
	return shape_check_batch(layer, host, batch, per_sample);
}

static strata_status reshape_forward(strata_layer *layer, const strata_host *host, const strata_forward_args *args)
{
	size_t n = 0;
	strata_status st = reshape_count(layer, host, args->batch, &n);
	return st != STRATA_OK ? st : core_copy(layer, host, args->output, args->input, n);
}

static strata_status reshape_backward(strata_layer *layer, const strata_host *host,
                                      const strata_backward_args *args)
{
	size_t n = 0;
	strata_status st = reshape_count(layer, host, args->batch, &n);
	if (st != STRATA_OK || !args->grad_input)
		return st;
	return core_copy(layer, host, args->grad_input, args->grad_output, n);
}

/* ---- Permute ------------------------------------------------------------------------------------ */

/* The permutation (0-based: output axis i is input axis p[i]) that `dims` gives for the input,
 * or false with the reason recorded in *st. */
static bool permute_axes(strata_layer *layer, const strata_host *host, const strata_shape *in,
                         int p[STRATA_MAX_RANK], strata_status *st)
{
	char a[96], b[96];
	strata_shape d = {.rank = 0};
	uint32_t n = host->param_ints(layer, "dims", d.dims, STRATA_MAX_RANK);
	d.rank = n <= STRATA_MAX_RANK ? n : STRATA_MAX_RANK;
	*st = STRATA_OK;
	if (n != in->rank) {
		*st = host->fail_param(layer, "dims", STRATA_ERR_INVALID,
		                       "dims %s names %u axes, the %s input has %u: dims orders all the axes of a "
		                       "sample, 1 to %u (the batch stays first)", shape_format(&d, a, sizeof(a)), n,
		                       shape_format(in, b, sizeof(b)), in->rank, in->rank);
		return false;
	}
	bool seen[STRATA_MAX_RANK] = {false};
	for (uint32_t i = 0; i < n; i++) {
		int64_t axis = d.dims[i];
		if (axis < 1 || axis > (int64_t)n || seen[axis - 1]) {
			*st = host->fail_param(layer, "dims", STRATA_ERR_INVALID,
			                       "dims %s is not a permutation of 1 to %u: %s %lld", shape_format(&d, a, sizeof(a)),
			                       n, axis < 1 || axis > (int64_t)n ? "there is no axis" : "it repeats axis",
			                       (long long)axis);
			return false;
		}
		seen[axis - 1] = true;
		p[i] = (int)(axis - 1);
	}
	return true;
}

static strata_status permute_build(strata_layer *layer, const strata_host *host, const strata_shape *in,
                                   strata_shape *out)
{
	strata_status st = reshape_fits(layer, host, in);
	int p[STRATA_MAX_RANK];
	if (st != STRATA_OK || !permute_axes(layer, host, in, p, &st))
		return st;
	*out = (strata_shape){.rank = in->rank};
	for (uint32_t i = 0; i < in->rank; i++)
		out->dims[i] = in->dims[p[i]];
	return STRATA_OK;
}

/* dst = src transposed: dst's axis i is src's axis from[i], for `batch` samples of src's shape. */
static strata_status permute_transpose(strata_layer *layer, const strata_host *host, strata_tensor *src,
                                       strata_tensor *dst, uint32_t batch, const strata_shape *src_shape,
                                       const int *from)
{
	uint32_t r = src_shape->rank;
	int64_t sample = reshape_elements(src_shape);
	strata_status st = shape_check_batch(layer, host, batch, (size_t)sample);
	if (st != STRATA_OK || batch == 0)
		return st;
	bool identity = true;
	for (uint32_t i = 0; i < r; i++)
		identity = identity && from[i] == (int)i;
	if (identity)
		return core_copy(layer, host, dst, src, (size_t)batch * (size_t)sample);
	int64_t stride[STRATA_MAX_RANK], dims[4] = {1, 1, 1, 1}, strides[4] = {0, 0, 0, 0};
	stride[r - 1] = 1;
	for (uint32_t i = r - 1; i > 0; i--)
		stride[i - 1] = stride[i] * src_shape->dims[i];
	/* Padded at the front to rank 4 with axes of size 1. */
	for (uint32_t i = 0; i < r; i++) {
		dims[4 - r + i] = src_shape->dims[from[i]];
		strides[4 - r + i] = stride[from[i]];
	}
	strata_kernel *k = host->kernel(layer, "reshape", "permute_transpose", NULL);
	if (!k)
		return host->last_status(layer);
	const strata_arg a[] = {
		strata_arg_tensor(src),          strata_arg_tensor(dst),          strata_arg_int((int32_t)batch),
		strata_arg_int((int32_t)dims[0]), strata_arg_int((int32_t)dims[1]), strata_arg_int((int32_t)dims[2]),
		strata_arg_int((int32_t)dims[3]), strata_arg_int((int32_t)strides[0]), strata_arg_int((int32_t)strides[1]),
		strata_arg_int((int32_t)strides[2]), strata_arg_int((int32_t)strides[3]), strata_arg_int((int32_t)sample),
	};
	size_t rows = (size_t)batch * (size_t)(dims[0] * dims[1] * dims[2]);
	return tune_launch_2d(layer, host, k, (size_t)dims[3], rows, sizeof(a) / sizeof(a[0]), a);
}

static strata_status permute_forward(strata_layer *layer, const strata_host *host, const strata_forward_args *args)
{
	const strata_shape *in = host->input_shape(layer);
	int p[STRATA_MAX_RANK];
	strata_status st;
	if (!permute_axes(layer, host, in, p, &st))
		return st;
	return permute_transpose(layer, host, args->input, args->output, args->batch, in, p);
}

/* dx = dy transposed back: dx's axis p[i] is dy's axis i. */
static strata_status permute_backward(strata_layer *layer, const strata_host *host,
                                      const strata_backward_args *args)
{
	if (!args->grad_input)
		return STRATA_OK;
	const strata_shape *in = host->input_shape(layer);
	int p[STRATA_MAX_RANK], q[STRATA_MAX_RANK];
	strata_status st;
	if (!permute_axes(layer, host, in, p, &st))
		return st;
	for (uint32_t i = 0; i < in->rank; i++)
		q[p[i]] = (int)i;
	return permute_transpose(layer, host, args->grad_output, args->grad_input, args->batch,
	                         host->output_shape(layer), q);
}

/* ---- RepeatVector ------------------------------------------------------------------------------- */

static strata_status repeat_vector_build(strata_layer *layer, const strata_host *host, const strata_shape *in,
                                         strata_shape *out)
{
	char buf[96];
	if (in->rank != 1)
		return host->fail(layer, STRATA_ERR_INVALID, "RepeatVector needs a (features) input, got %s",
		                  shape_format(in, buf, sizeof(buf)));
	int64_t n = host->param_int(layer, "n"), count;
	if (!shape_mul(n, in->dims[0], INT_MAX, &count))
		return host->fail_param(layer, "n", STRATA_ERR_OVERFLOW, "repeating the %s input %lld times is too large",
		                        shape_format(in, buf, sizeof(buf)), (long long)n);
	*out = (strata_shape){.rank = 2, .dims = {n, in->dims[0]}};
	return STRATA_OK;
}

static strata_status repeat_vector_run(strata_layer *layer, const strata_host *host, const char *name,
                                       strata_tensor *src, strata_tensor *dst, uint32_t batch, bool per_repeat)
{
	const strata_shape *out = host->output_shape(layer);
	int64_t repeats = out->dims[0], features = out->dims[1];
	strata_status st = shape_check_batch(layer, host, batch, (size_t)(repeats * features));
	if (st != STRATA_OK || batch == 0)
		return st;
	strata_kernel *k = host->kernel(layer, "reshape", name, NULL);
	if (!k)
		return host->last_status(layer);
	const strata_arg a[] = {
		strata_arg_tensor(src), strata_arg_tensor(dst), strata_arg_int((int32_t)batch),
		strata_arg_int((int32_t)repeats), strata_arg_int((int32_t)features),
	};
	size_t rows = (size_t)batch * (per_repeat ? (size_t)repeats : 1u);
	return tune_launch_2d(layer, host, k, (size_t)features, rows, sizeof(a) / sizeof(a[0]), a);
}

static strata_status repeat_vector_forward(strata_layer *layer, const strata_host *host,
                                           const strata_forward_args *args)
{
	return repeat_vector_run(layer, host, "repeat_vector_forward", args->input, args->output, args->batch, true);
}

static strata_status repeat_vector_backward(strata_layer *layer, const strata_host *host,
                                            const strata_backward_args *args)
{
	if (!args->grad_input)
		return STRATA_OK;
	return repeat_vector_run(layer, host, "repeat_vector_backward", args->grad_output, args->grad_input,
	                         args->batch, false);
}

/* ---- registration ------------------------------------------------------------------------------- */

static const strata_layer_ops reshape_ops = {
	.size = sizeof(strata_layer_ops),
	.type = "reshape",
	.class_name = "Reshape",
	.name_prefix = "reshape",
	.doc = "gives each sample target_shape, its values kept in order, as Keras' Reshape (a device copy)",
	.params = reshape_params,
	.n_params = sizeof(reshape_params) / sizeof(reshape_params[0]),
	.build = reshape_build,
	.forward = reshape_forward,
	.backward = reshape_backward,
};

static const strata_layer_ops permute_ops = {
	.size = sizeof(strata_layer_ops),
	.type = "permute",
	.class_name = "Permute",
	.name_prefix = "permute",
	.doc = "reorders the axes of each sample (a transpose), as Keras' Permute",
	.params = permute_params,
	.n_params = sizeof(permute_params) / sizeof(permute_params[0]),
	.build = permute_build,
	.forward = permute_forward,
	.backward = permute_backward,
};

static const strata_layer_ops repeat_vector_ops = {
	.size = sizeof(strata_layer_ops),
	.type = "repeat_vector",
	.class_name = "RepeatVector",
	.name_prefix = "repeat_vector",
	.doc = "repeats a (features) input n times into (n, features), as Keras' RepeatVector",
	.params = repeat_vector_params,
	.n_params = sizeof(repeat_vector_params) / sizeof(repeat_vector_params[0]),
	.build = repeat_vector_build,
	.forward = repeat_vector_forward,
	.backward = repeat_vector_backward,
};

static strata_status reshape_init(const strata_host *host, strata_registry *reg)
{
	strata_status st = host->register_program(reg, "reshape", reshape_cl_source, "");
	if (st == STRATA_OK)
		st = host->register_layer(reg, &reshape_ops);
	if (st == STRATA_OK)
		st = host->register_layer(reg, &permute_ops);
	if (st == STRATA_OK)
		st = host->register_layer(reg, &repeat_vector_ops);
	return st;
}

static const strata_plugin reshape_plugin = {
	.abi_version = STRATA_PLUGIN_ABI_VERSION,
	.size = sizeof(strata_plugin),
	.name = "reshape",
	.version = "1.0.0",
	.description = "Reshape, Permute and RepeatVector layers on the OpenCL device",
	.init = reshape_init,
};

STRATA_PLUGIN_DEFINE(reshape_plugin)
