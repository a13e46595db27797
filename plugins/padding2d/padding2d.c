/* ZeroPadding2D and Cropping2D: Keras' layers that add rows and columns of zeros around (H, W, C)
 * inputs, or cut them off. Both are the same shift (padding2d.cl) one way or the other: padding's
 * gradient is the crop of dy, cropping's the zero-padded dy. No weights.
 *
 * Keras takes `padding` and `cropping` as an int (every side), a pair (symmetric height, symmetric
 * width) or a pair of pairs ((top, bottom), (left, right)). Strata's loader takes a flat list of
 * integers, so the pair of pairs is written flattened: [top, bottom, left, right]. A host whose
 * plugin.h has STRATA_INTS_ANY (lists of 1 to 4 integers, as many as given) takes all three forms
 * (1, 2 or 4 integers); an older one takes a fixed count, so then an int or the 4 values. */
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>

#include <strata/plugin.h>

#include "padding2d_cl.h"
#include "shape.h"
#include "tune.h"

#ifdef STRATA_INTS_ANY
#define PADDING2D_COUNT STRATA_INTS_ANY
#define PADDING2D_FORMS "an int (every side), [height, width] (each on both sides) or [top, bottom, left, right]"
#else
#define PADDING2D_COUNT 4u
#define PADDING2D_FORMS "an int (every side) or [top, bottom, left, right]"
#endif

#define PADDING2D_DATA_FORMAT                                                                     \
	{.name = "data_format", .type = STRATA_PARAM_UNSUPPORTED, .default_value = "channels_last",   \
	 .doc = "Strata's tensors are channels-last (NHWC) only; transpose channels-first data first"}

static const strata_param zero_padding2d_params[] = {
	{.name = "padding", .type = STRATA_PARAM_INTS, .default_value = "1", .min = 0, .max = INT_MAX,
	 .count = PADDING2D_COUNT,
	 .doc = "rows and columns of zeros added: " PADDING2D_FORMS " (Keras' ((top, bottom), (left, right)) flattened)"},
	PADDING2D_DATA_FORMAT,
};

static const strata_param cropping2d_params[] = {
	{.name = "cropping", .type = STRATA_PARAM_INTS, .default_value = "0", .min = 0, .max = INT_MAX,
	 .count = PADDING2D_COUNT,
	 .doc = "rows and columns cut off: " PADDING2D_FORMS " (Keras' ((top, bottom), (left, right)) flattened)"},
	PADDING2D_DATA_FORMAT,
};

/* The sides (top, bottom, left, right) that parameter `name` gives, or false with the reason
 * recorded in *st. */
static bool padding2d_sides(strata_layer *layer, const strata_host *host, const char *name, int64_t side[4],
                            strata_status *st)
{
	int64_t v[4] = {0, 0, 0, 0};
	uint32_t n = host->param_ints(layer, name, v, 4);
	*st = STRATA_OK;
	if (n == 1) {
		side[0] = side[1] = side[2] = side[3] = v[0];
	} else if (n == 2) {
		side[0] = side[1] = v[0];
		side[2] = side[3] = v[1];
	} else if (n == 4) {
		for (int i = 0; i < 4; i++)
			side[i] = v[i];
	} else {
		*st = host->fail_param(layer, name, STRATA_ERR_INVALID, "'%s' takes %s; got %u integers", name,
		                       PADDING2D_FORMS, n);
		return false;
	}
	return true;
}

static strata_status padding2d_build(strata_layer *layer, const strata_host *host, bool crop,
                                     const strata_shape *in, strata_shape *out)
{
	const char *class_name = crop ? "Cropping2D" : "ZeroPadding2D", *name = crop ? "cropping" : "padding";
	char buf[96];
	if (in->rank != 3)
		return host->fail(layer, STRATA_ERR_INVALID, "%s needs a (height, width, channels) input, got %s",
		                  class_name, shape_format(in, buf, sizeof(buf)));
	int64_t s[4];
	strata_status st;
	if (!padding2d_sides(layer, host, name, s, &st))
		return st;
	int64_t h = in->dims[0], w = in->dims[1], c = in->dims[2], oh, ow;
	if (crop) {
		/* Keras: something must be left of each dimension. */
		if (s[0] + s[1] >= h || s[2] + s[3] >= w)
			return host->fail_param(layer, name, STRATA_ERR_INVALID,
			                        "cropping %lld + %lld rows and %lld + %lld columns leaves nothing of the "
			                        "%s input: each must be smaller than the input's height and width",
			                        (long long)s[0], (long long)s[1], (long long)s[2], (long long)s[3],
			                        shape_format(in, buf, sizeof(buf)));
		oh = h - s[0] - s[1];
		ow = w - s[2] - s[3];
	} else {
		oh = h + s[0] + s[1];
		ow = w + s[2] + s[3];
	}
	int64_t count;
	if (!shape_mul(h, w, INT_MAX, &count) || !shape_mul(count, c, INT_MAX, &count) ||
	    !shape_mul(oh, ow, INT_MAX, &count) || !shape_mul(count, c, INT_MAX, &count))
		return host->fail(layer, STRATA_ERR_OVERFLOW, "%s of the %s input is too large", class_name,
		                  shape_format(in, buf, sizeof(buf)));
	*out = (strata_shape){.rank = 3, .dims = {oh, ow, c}};
	return STRATA_OK;
}

static strata_status zero_padding2d_build(strata_layer *layer, const strata_host *host, const strata_shape *in,
                                          strata_shape *out)
{
	return padding2d_build(layer, host, false, in, out);
}

static strata_status cropping2d_build(strata_layer *layer, const strata_host *host, const strata_shape *in,
                                      strata_shape *out)
{
	return padding2d_build(layer, host, true, in, out);
}

/* dst[b, y, x, :] = src[b, y - top, x - left, :] inside src, else 0, for `batch` samples of the
 * (sh, sw, c) src and the (dh, dw, c) dst. */
static strata_status padding2d_shift(strata_layer *layer, const strata_host *host, strata_tensor *src,
                                     strata_tensor *dst, uint32_t batch, const int64_t *src_dims,
                                     const int64_t *dst_dims, int64_t top, int64_t left)
{
	int64_t c = src_dims[2];
	strata_status st = shape_check_batch(layer, host, batch, (size_t)(src_dims[0] * src_dims[1] * c));
	if (st == STRATA_OK)
		st = shape_check_batch(layer, host, batch, (size_t)(dst_dims[0] * dst_dims[1] * c));
	if (st != STRATA_OK || batch == 0)
		return st;
	unsigned vw = tune_vector_width((size_t)c, tune_vw(layer, host));
	char options[32];
	strata_kernel *k = host->kernel(layer, "padding2d", "padding2d_shift",
	                                tune_vw_options(options, sizeof(options), vw));
	if (!k)
		return host->last_status(layer);
	const strata_arg a[] = {
		strata_arg_tensor(src),
		strata_arg_tensor(dst),
		strata_arg_int((int32_t)batch),
		strata_arg_int((int32_t)src_dims[0]),
		strata_arg_int((int32_t)src_dims[1]),
		strata_arg_int((int32_t)dst_dims[0]),
		strata_arg_int((int32_t)dst_dims[1]),
		strata_arg_int((int32_t)c),
		strata_arg_int((int32_t)top),
		strata_arg_int((int32_t)left),
	};
	size_t pixels = (size_t)batch * (size_t)(dst_dims[0] * dst_dims[1]);
	return tune_launch_2d(layer, host, k, (size_t)c / vw, pixels, sizeof(a) / sizeof(a[0]), a);
}

/* The shift from `src` to `dst`: padding places the input at (top, left) of the output, cropping
 * cuts the output out from there; the backward pass (`backward`) goes the other way. */
static strata_status padding2d_run(strata_layer *layer, const strata_host *host, bool crop, bool backward,
                                   strata_tensor *src, strata_tensor *dst, uint32_t batch)
{
	int64_t s[4];
	strata_status st;
	if (!padding2d_sides(layer, host, crop ? "cropping" : "padding", s, &st))
		return st;
	const int64_t *in = host->input_shape(layer)->dims, *out = host->output_shape(layer)->dims;
	/* Into the larger tensor the offset is positive, out of it negative. */
	int64_t sign = crop == backward ? 1 : -1;
	if (backward)
		return padding2d_shift(layer, host, src, dst, batch, out, in, sign * s[0], sign * s[2]);
	return padding2d_shift(layer, host, src, dst, batch, in, out, sign * s[0], sign * s[2]);
}

static strata_status zero_padding2d_forward(strata_layer *layer, const strata_host *host,
                                            const strata_forward_args *args)
{
	return padding2d_run(layer, host, false, false, args->input, args->output, args->batch);
}

static strata_status zero_padding2d_backward(strata_layer *layer, const strata_host *host,
                                             const strata_backward_args *args)
{
	if (!args->grad_input)
		return STRATA_OK;
	return padding2d_run(layer, host, false, true, args->grad_output, args->grad_input, args->batch);
}

static strata_status cropping2d_forward(strata_layer *layer, const strata_host *host,
                                        const strata_forward_args *args)
{
	return padding2d_run(layer, host, true, false, args->input, args->output, args->batch);
}

static strata_status cropping2d_backward(strata_layer *layer, const strata_host *host,
                                         const strata_backward_args *args)
{
	if (!args->grad_input)
		return STRATA_OK;
	return padding2d_run(layer, host, true, true, args->grad_output, args->grad_input, args->batch);
}

static const strata_layer_ops zero_padding2d_ops = {
	.size = sizeof(strata_layer_ops),
	.type = "zero_padding2d",
	.class_name = "ZeroPadding2D",
	.name_prefix = "zero_padding2d",
	.doc = "adds rows and columns of zeros around (height, width, channels) inputs, as Keras' ZeroPadding2D",
	.params = zero_padding2d_params,
	.n_params = sizeof(zero_padding2d_params) / sizeof(zero_padding2d_params[0]),
	.build = zero_padding2d_build,
	.forward = zero_padding2d_forward,
	.backward = zero_padding2d_backward,
};

static const strata_layer_ops cropping2d_ops = {
	.size = sizeof(strata_layer_ops),
	.type = "cropping2d",
	.class_name = "Cropping2D",
	.name_prefix = "cropping2d",
	.doc = "cuts rows and columns off the edges of (height, width, channels) inputs, as Keras' Cropping2D",
	.params = cropping2d_params,
	.n_params = sizeof(cropping2d_params) / sizeof(cropping2d_params[0]),
	.build = cropping2d_build,
	.forward = cropping2d_forward,
	.backward = cropping2d_backward,
};

static strata_status padding2d_init(const strata_host *host, strata_registry *reg)
{
	strata_status st = host->register_program(reg, "padding2d", padding2d_cl_source, "");
	if (st == STRATA_OK)
		st = host->register_layer(reg, &zero_padding2d_ops);
	if (st == STRATA_OK)
		st = host->register_layer(reg, &cropping2d_ops);
	return st;
}

static const strata_plugin padding2d_plugin = {
	.abi_version = STRATA_PLUGIN_ABI_VERSION,
	.size = sizeof(strata_plugin),
	.name = "padding2d",
	.version = "1.0.0",
	.description = "ZeroPadding2D and Cropping2D layers on the OpenCL device",
	.init = padding2d_init,
};

STRATA_PLUGIN_DEFINE(padding2d_plugin)
