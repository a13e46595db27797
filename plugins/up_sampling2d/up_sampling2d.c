/* UpSampling2D: Keras' upsampling of (H, W, C) inputs by integer factors (size), to (H * sh,
 * W * sw, C). `nearest` repeats each pixel sh x sw times (Keras' repeat); `bilinear` interpolates
 * as Keras 3 does, through TensorFlow's resize with half-pixel centers, which gives what
 * PyTorch's interpolate(mode='bilinear', align_corners=False) gives. The backward passes are
 * gathers (up_sampling2d.cl): each input pixel sums what the output pixels that read it send back,
 * in a fixed order, without atomics. No weights. */
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <strata/plugin.h>

#include "shape.h"
#include "tune.h"
#include "up_sampling2d_cl.h"

static const strata_param up_sampling2d_params[] = {
	{.name = "size", .type = STRATA_PARAM_INTS, .default_value = "[2, 2]", .min = 1, .max = INT_MAX, .count = 2,
	 .doc = "upsampling factors of height and width; one int: both"},
	{.name = "data_format", .type = STRATA_PARAM_UNSUPPORTED, .default_value = "channels_last",
	 .doc = "Strata's tensors are channels-last (NHWC) only; transpose channels-first data first"},
	{.name = "interpolation", .type = STRATA_PARAM_ENUM, .default_value = "nearest", .choices = "nearest|bilinear",
	 .doc = "nearest: repeat pixels; bilinear: half-pixel centers as Keras 3 (bicubic, lanczos3/5 left out)"},
};

static strata_status up_sampling2d_build(strata_layer *layer, const strata_host *host, const strata_shape *in,
                                         strata_shape *out)
{
	char buf[96];
	if (in->rank != 3)
		return host->fail(layer, STRATA_ERR_INVALID, "UpSampling2D needs a (height, width, channels) input, got %s",
		                  shape_format(in, buf, sizeof(buf)));
	int64_t size[2];
	if (host->param_ints(layer, "size", size, 2) != 2)
		return host->fail_param(layer, "size", STRATA_ERR_INVALID, "needs 2 values");
	int64_t oh, ow, count, reach;
	/* The kernels index in int: the output, and the rows and columns the backward gathers look
	 * at, up to sh * (h + 1) and sw * (w + 1). */
	if (!shape_mul(in->dims[0], size[0], INT_MAX, &oh) || !shape_mul(in->dims[1], size[1], INT_MAX, &ow) ||
	    !shape_mul(oh, ow, INT_MAX, &count) || !shape_mul(count, in->dims[2], INT_MAX, &count) ||
	    !shape_mul(in->dims[0] + 2, size[0], INT_MAX, &reach) ||
	    !shape_mul(in->dims[1] + 2, size[1], INT_MAX, &reach))
		return host->fail(layer, STRATA_ERR_OVERFLOW, "upsampling the %s input %lld x %lld times is too large",
		                  shape_format(in, buf, sizeof(buf)), (long long)size[0], (long long)size[1]);
	*out = (strata_shape){.rank = 3, .dims = {oh, ow, in->dims[2]}};
	return STRATA_OK;
}

/* Enqueues the `pass` ("forward" or "backward") of the layer's interpolation from src to dst over
 * (vectors of channels, pixels of dst). */
static strata_status up_sampling2d_run(strata_layer *layer, const strata_host *host, const char *pass,
                                       strata_tensor *src, strata_tensor *dst, uint32_t batch)
{
	const strata_shape *in = host->input_shape(layer), *out = host->output_shape(layer);
	int64_t h = in->dims[0], w = in->dims[1], c = in->dims[2];
	strata_status st = shape_check_batch(layer, host, batch, (size_t)(out->dims[0] * out->dims[1] * c));
	if (st != STRATA_OK || batch == 0)
		return st;
	bool bilinear = strcmp(host->param_string(layer, "interpolation"), "bilinear") == 0;
	bool backward = strcmp(pass, "backward") == 0;
	char name[64], options[32];
	snprintf(name, sizeof(name), "up_sampling2d_%s_%s", bilinear ? "bilinear" : "nearest", pass);
	unsigned vw = tune_vector_width((size_t)c, tune_vw(layer, host));
	strata_kernel *k = host->kernel(layer, "up_sampling2d", name, tune_vw_options(options, sizeof(options), vw));
	if (!k)
		return host->last_status(layer);
	int64_t sh = out->dims[0] / h, sw = out->dims[1] / w;
	strata_arg a[10] = {
		strata_arg_tensor(src),
		strata_arg_tensor(dst),
		strata_arg_int((int32_t)batch),
		strata_arg_int((int32_t)h),
		strata_arg_int((int32_t)w),
		strata_arg_int((int32_t)c),
		strata_arg_int((int32_t)sh),
		strata_arg_int((int32_t)sw),
		/* TensorFlow's scale: input size over output size, in float. */
		strata_arg_float((float)h / (float)out->dims[0]),
		strata_arg_float((float)w / (float)out->dims[1]),
	};
	size_t pixels = (size_t)batch * (size_t)(backward ? h * w : out->dims[0] * out->dims[1]);
	return tune_launch_2d(layer, host, k, (size_t)c / vw, pixels, bilinear ? 10 : 8, a);
}

static strata_status up_sampling2d_forward(strata_layer *layer, const strata_host *host,
                                           const strata_forward_args *args)
{
	return up_sampling2d_run(layer, host, "forward", args->input, args->output, args->batch);
}

static strata_status up_sampling2d_backward(strata_layer *layer, const strata_host *host,
                                            const strata_backward_args *args)
{
	if (!args->grad_input)
		return STRATA_OK;
	return up_sampling2d_run(layer, host, "backward", args->grad_output, args->grad_input, args->batch);
}

static const strata_layer_ops up_sampling2d_ops = {
	.size = sizeof(strata_layer_ops),
	.type = "up_sampling2d",
	.class_name = "UpSampling2D",
	.name_prefix = "up_sampling2d",
	.doc = "upsamples (height, width, channels) inputs by integer factors, nearest or bilinear, as Keras' "
	       "UpSampling2D",
	.params = up_sampling2d_params,
	.n_params = sizeof(up_sampling2d_params) / sizeof(up_sampling2d_params[0]),
	.build = up_sampling2d_build,
	.forward = up_sampling2d_forward,
	.backward = up_sampling2d_backward,
};

static strata_status up_sampling2d_init(const strata_host *host, strata_registry *reg)
{
	strata_status st = host->register_program(reg, "up_sampling2d", up_sampling2d_cl_source, "");
	return st != STRATA_OK ? st : host->register_layer(reg, &up_sampling2d_ops);
}

static const strata_plugin up_sampling2d_plugin = {
	.abi_version = STRATA_PLUGIN_ABI_VERSION,
	.size = sizeof(strata_plugin),
	.name = "up_sampling2d",
	.version = "1.0.0",
	.description = "UpSampling2D layer (nearest and bilinear) on the OpenCL device",
	.init = up_sampling2d_init,
};

STRATA_PLUGIN_DEFINE(up_sampling2d_plugin)
