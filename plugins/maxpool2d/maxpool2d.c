/* MaxPooling2D: Keras' 2-D max pooling over (H, W, C) inputs; backward, each output's gradient
 * goes to its window's maximum. */
#include <strata/plugin.h>

#include "maxpool2d_cl.h"
#include "pool.h"

static const strata_param maxpool2d_params[] = {
	POOL_PARAMS,
};

static strata_status maxpool2d_build(strata_layer *layer, const strata_host *host, const strata_shape *in,
                                     strata_shape *out)
{
	return pool_build(layer, host, "MaxPooling2D", in, out);
}

static strata_status maxpool2d_forward(strata_layer *layer, const strata_host *host,
                                       const strata_forward_args *args)
{
	strata_tensor *t[] = {args->input, args->output};
	return pool_launch(layer, host, "maxpool2d", "maxpool2d_forward", args->batch, false, t, 2);
}

/* The windows' maxima are found again from the forward pass's input: nothing is kept in
 * between. Windows that do not overlap each write their own cell of the input gradient, once per
 * output; overlapping ones are gathered per input element. */
static strata_status maxpool2d_backward(strata_layer *layer, const strata_host *host,
                                        const strata_backward_args *args)
{
	if (!args->grad_input)
		return STRATA_OK;
	strata_tensor *t[] = {args->input, args->grad_output, args->grad_input};
	const char *name = "maxpool2d_backward_cells";
	bool per_input = pool_overlapping(host->get_private(layer));
	if (per_input)
		name = "maxpool2d_backward";
	return pool_launch(layer, host, "maxpool2d", name, args->batch, per_input, t, 3);
}

static const strata_layer_ops maxpool2d_ops = {
	.size = sizeof(strata_layer_ops),
	.type = "maxpool2d",
	.class_name = "MaxPooling2D",
	.name_prefix = "max_pooling2d",
	.doc = "2-D max pooling over (height, width, channels) inputs, as Keras' MaxPooling2D",
	.params = maxpool2d_params,
	.n_params = sizeof(maxpool2d_params) / sizeof(maxpool2d_params[0]),
	.build = maxpool2d_build,
	.forward = maxpool2d_forward,
	.backward = maxpool2d_backward,
	.destroy = pool_destroy,
};

static strata_status maxpool2d_init(const strata_host *host, strata_registry *reg)
{
	strata_status st = host->register_program(reg, "maxpool2d", maxpool2d_cl_source, "");
	if (st != STRATA_OK)
		return st;
	return host->register_layer(reg, &maxpool2d_ops);
}

static const strata_plugin maxpool2d_plugin = {
	.abi_version = STRATA_PLUGIN_ABI_VERSION,
	.size = sizeof(strata_plugin),
	.name = "maxpool2d",
	.version = "1.0.0",
	.description = "MaxPooling2D layer on the OpenCL device",
	.init = maxpool2d_init,
};

STRATA_PLUGIN_DEFINE(maxpool2d_plugin)
