/* AveragePooling2D: Keras' 2-D average pooling over (H, W, C) inputs. With 'same' padding a
 * window's average counts only its positions inside the input, as TensorFlow's. */
#include <strata/plugin.h>

#include "averagepool2d_cl.h"
#include "pool.h"

static const strata_param averagepool2d_params[] = {
	POOL_PARAMS,
};

static strata_status averagepool2d_build(strata_layer *layer, const strata_host *host, const strata_shape *in,
                                         strata_shape *out)
{
	return pool_build(layer, host, "AveragePooling2D", in, out);
}

static strata_status averagepool2d_forward(strata_layer *layer, const strata_host *host,
                                           const strata_forward_args *args)
{
	strata_tensor *t[] = {args->input, args->output};
	return pool_launch(layer, host, "averagepool2d", "averagepool2d_forward", args->batch, false, t, 2);
}

/* Windows that do not overlap each write their own cell of the input gradient; overlapping ones
 * are gathered per input element. */
static strata_status averagepool2d_backward(strata_layer *layer, const strata_host *host,
                                            const strata_backward_args *args)
{
	if (!args->grad_input)
		return STRATA_OK;
	strata_tensor *t[] = {args->grad_output, args->grad_input};
	const char *name = "averagepool2d_backward_cells";
	bool per_input = pool_overlapping(host->get_private(layer));
	if (per_input)
		name = "averagepool2d_backward";
	return pool_launch(layer, host, "averagepool2d", name, args->batch, per_input, t, 2);
}

static const strata_layer_ops averagepool2d_ops = {
	.size = sizeof(strata_layer_ops),
	.type = "averagepool2d",
	.class_name = "AveragePooling2D",
	.name_prefix = "average_pooling2d",
	.doc = "2-D average pooling over (height, width, channels) inputs, as Keras' AveragePooling2D",
	.params = averagepool2d_params,
	.n_params = sizeof(averagepool2d_params) / sizeof(averagepool2d_params[0]),
	.build = averagepool2d_build,
	.forward = averagepool2d_forward,
	.backward = averagepool2d_backward,
	.destroy = pool_destroy,
};

static strata_status averagepool2d_init(const strata_host *host, strata_registry *reg)
{
	strata_status st = host->register_program(reg, "averagepool2d", averagepool2d_cl_source, "");
	if (st != STRATA_OK)
		return st;
	return host->register_layer(reg, &averagepool2d_ops);
}

static const strata_plugin averagepool2d_plugin = {
	.abi_version = STRATA_PLUGIN_ABI_VERSION,
	.size = sizeof(strata_plugin),
	.name = "averagepool2d",
	.version = "1.0.0",
	.description = "AveragePooling2D layer on the OpenCL device",
	.init = averagepool2d_init,
};

STRATA_PLUGIN_DEFINE(averagepool2d_plugin)
