/* GlobalAveragePooling2D and GlobalMaxPooling2D: Keras' global pooling over the height and width
 * of (H, W, C) inputs, giving (C), or (1, 1, C) with keepdims. The average sums the pixels in
 * row-major order and divides by their count; the max's gradient goes to each channel's first
 * maximum in row-major order (ties as MaxPooling2D routes them), found again in the backward pass
 * from the forward pass's input, so nothing is kept in between. No weights. */
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>

#include <strata/plugin.h>

#include "global_pooling2d_cl.h"
#include "shape.h"
#include "tune.h"

/* Keras' parameters of both types, in Keras' order. */
static const strata_param global_pooling2d_params[] = {
	{.name = "data_format", .type = STRATA_PARAM_UNSUPPORTED, .default_value = "channels_last",
	 .doc = "Strata's tensors are channels-last (NHWC) only; transpose channels-first data first"},
	{.name = "keepdims", .type = STRATA_PARAM_BOOL, .default_value = "false",
	 .doc = "true: the output keeps the pooled axes, (1, 1, channels) instead of (channels)"},
};

static strata_status global_pooling2d_build(strata_layer *layer, const strata_host *host, const char *class_name,
                                            const strata_shape *in, strata_shape *out)
{
	char buf[96];
	if (in->rank != 3)
		return host->fail(layer, STRATA_ERR_INVALID, "%s needs a (height, width, channels) input, got %s",
		                  class_name, shape_format(in, buf, sizeof(buf)));
	int64_t count;
	if (!shape_mul(in->dims[0], in->dims[1], INT_MAX, &count) || !shape_mul(count, in->dims[2], INT_MAX, &count))
		return host->fail(layer, STRATA_ERR_OVERFLOW, "input %s is too large", shape_format(in, buf, sizeof(buf)));
	int64_t c = in->dims[2];
	if (host->param_bool(layer, "keepdims"))
		*out = (strata_shape){.rank = 3, .dims = {1, 1, c}};
	else
		*out = (strata_shape){.rank = 1, .dims = {c}};
	return STRATA_OK;
}

static strata_status global_average_pooling2d_build(strata_layer *layer, const strata_host *host,
                                                    const strata_shape *in, strata_shape *out)
{
	return global_pooling2d_build(layer, host, "GlobalAveragePooling2D", in, out);
}

static strata_status global_max_pooling2d_build(strata_layer *layer, const strata_host *host,
                                                const strata_shape *in, strata_shape *out)
{
	return global_pooling2d_build(layer, host, "GlobalMaxPooling2D", in, out);
}

/* Enqueues kernel `name` with (tensors..., n, h * w, c) over (vectors of channels, samples), or
 * over (vectors of channels, input pixels) when `per_pixel`, built for the widest vector that
 * divides the channels. */
static strata_status global_pooling2d_launch(strata_layer *layer, const strata_host *host, const char *name,
                                             uint32_t batch, bool per_pixel, strata_tensor *const *tensors,
                                             uint32_t n_tensors)
{
	const strata_shape *in = host->input_shape(layer);
	int64_t hw = in->dims[0] * in->dims[1], c = in->dims[2];
	strata_status st = shape_check_batch(layer, host, batch, (size_t)(hw * c));
	if (st != STRATA_OK || batch == 0)
		return st;
	unsigned vw = tune_vector_width((size_t)c, tune_vw(layer, host));
	char options[32];
	strata_kernel *k = host->kernel(layer, "global_pooling2d", name, tune_vw_options(options, sizeof(options), vw));
	if (!k)
		return host->last_status(layer);
	strata_arg a[6];
	uint32_t n = 0;
	for (uint32_t i = 0; i < n_tensors && i < 3; i++)
		a[n++] = strata_arg_tensor(tensors[i]);
	a[n++] = strata_arg_int((int32_t)batch);
	a[n++] = strata_arg_int((int32_t)hw);
	a[n++] = strata_arg_int((int32_t)c);
	size_t rows = (size_t)batch * (per_pixel ? (size_t)hw : 1u);
	return tune_launch_2d(layer, host, k, (size_t)c / vw, rows, n, a);
}

static strata_status global_average_pooling2d_forward(strata_layer *layer, const strata_host *host,
                                                      const strata_forward_args *args)
{
	strata_tensor *t[] = {args->input, args->output};
	return global_pooling2d_launch(layer, host, "global_average_pooling2d_forward", args->batch, false, t, 2);
}

static strata_status global_average_pooling2d_backward(strata_layer *layer, const strata_host *host,
                                                       const strata_backward_args *args)
{
	if (!args->grad_input)
		return STRATA_OK;
	strata_tensor *t[] = {args->grad_output, args->grad_input};
	return global_pooling2d_launch(layer, host, "global_average_pooling2d_backward", args->batch, true, t, 2);
}

static strata_status global_max_pooling2d_forward(strata_layer *layer, const strata_host *host,
                                                  const strata_forward_args *args)
{
	strata_tensor *t[] = {args->input, args->output};
	return global_pooling2d_launch(layer, host, "global_max_pooling2d_forward", args->batch, false, t, 2);
}

static strata_status global_max_pooling2d_backward(strata_layer *layer, const strata_host *host,
                                                   const strata_backward_args *args)
{
	if (!args->grad_input)
		return STRATA_OK;
	strata_tensor *t[] = {args->input, args->grad_output, args->grad_input};
	return global_pooling2d_launch(layer, host, "global_max_pooling2d_backward", args->batch, false, t, 3);
}

static const strata_layer_ops global_average_pooling2d_ops = {
	.size = sizeof(strata_layer_ops),
	.type = "global_average_pooling2d",
	.class_name = "GlobalAveragePooling2D",
	.name_prefix = "global_average_pooling2d",
	.doc = "the mean over height and width of (height, width, channels) inputs, as Keras' "
	       "GlobalAveragePooling2D",
	.params = global_pooling2d_params,
	.n_params = sizeof(global_pooling2d_params) / sizeof(global_pooling2d_params[0]),
	.build = global_average_pooling2d_build,
	.forward = global_average_pooling2d_forward,
	.backward = global_average_pooling2d_backward,
};

static const strata_layer_ops global_max_pooling2d_ops = {
	.size = sizeof(strata_layer_ops),
	.type = "global_max_pooling2d",
	.class_name = "GlobalMaxPooling2D",
	.name_prefix = "global_max_pooling2d",
	.doc = "the maximum over height and width of (height, width, channels) inputs, as Keras' "
	       "GlobalMaxPooling2D; the gradient goes to each channel's first maximum",
	.params = global_pooling2d_params,
	.n_params = sizeof(global_pooling2d_params) / sizeof(global_pooling2d_params[0]),
	.build = global_max_pooling2d_build,
	.forward = global_max_pooling2d_forward,
	.backward = global_max_pooling2d_backward,
};

static strata_status global_pooling2d_init(const strata_host *host, strata_registry *reg)
{
	strata_status st = host->register_program(reg, "global_pooling2d", global_pooling2d_cl_source, "");
	if (st == STRATA_OK)
		st = host->register_layer(reg, &global_average_pooling2d_ops);
	if (st == STRATA_OK)
		st = host->register_layer(reg, &global_max_pooling2d_ops);
	return st;
}

static const strata_plugin global_pooling2d_plugin = {
	.abi_version = STRATA_PLUGIN_ABI_VERSION,
	.size = sizeof(strata_plugin),
	.name = "global_pooling2d",
	.version = "1.0.0",
	.description = "GlobalAveragePooling2D and GlobalMaxPooling2D layers on the OpenCL device",
	.init = global_pooling2d_init,
};

STRATA_PLUGIN_DEFINE(global_pooling2d_plugin)
