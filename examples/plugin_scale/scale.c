/* An out-of-tree Strata layer plugin: layer type `scale`, y = factor * x + offset elementwise.
 * It links against nothing of Strata's; every service comes from the host function table. */
#include <float.h>
#include <stdint.h>

#include <strata/plugin.h>

#include "scale_cl.h" /* scale_cl_source, generated from scale.cl by the Makefile */

static const strata_param scale_params[] = {
	{
		.name = "factor",
		.type = STRATA_PARAM_FLOAT,
		.default_value = "1.0",
		.min = -FLT_MAX,
		.max = FLT_MAX,
		.doc = "multiplier of every element",
	},
	{
		.name = "offset",
		.type = STRATA_PARAM_FLOAT,
		.default_value = "0.0",
		.min = -FLT_MAX,
		.max = FLT_MAX,
		.doc = "added to every element after the multiplication",
	},
};

static size_t shape_elements(const strata_shape *shape)
{
	size_t n = 1;

	for (uint32_t i = 0; i < shape->rank; i++)
		n *= (size_t)shape->dims[i];
	return n;
}

static strata_status scale_build(strata_layer *layer, const strata_host *host, const strata_shape *in,
                                 strata_shape *out)
{
	if (shape_elements(in) == 0)
		return host->fail(layer, STRATA_ERR_INVALID, "input shape has no elements");
	*out = *in;
	return STRATA_OK;
}

/* dst = factor * src + offset over `batch` samples of the layer's input shape. */
static strata_status scale_apply(strata_layer *layer, const strata_host *host, strata_tensor *src,
                                 strata_tensor *dst, uint32_t batch, float factor, float offset)
{
	size_t n = (size_t)batch * shape_elements(host->input_shape(layer));
	strata_kernel *kernel;

	if (n == 0)
		return STRATA_OK;
	if (n > UINT32_MAX)
		return host->fail(layer, STRATA_ERR_OVERFLOW, "%zu elements exceed the kernel's 32-bit index", n);

	/* Compiled on first use for the current device, then cached by the runtime. */
	kernel = host->kernel(layer, "scale", "scale_affine", NULL);
	if (!kernel)
		return host->last_status(layer);

	const strata_arg args[] = {
		strata_arg_tensor(src),
		strata_arg_tensor(dst),
		strata_arg_uint((uint32_t)n),
		strata_arg_float(factor),
		strata_arg_float(offset),
	};
	return host->launch(layer, kernel, 1, &n, NULL, sizeof(args) / sizeof(args[0]), args);
}

static strata_status scale_forward(strata_layer *layer, const strata_host *host,
                                   const strata_forward_args *args)
{
	float factor = (float)host->param_float(layer, "factor");
	float offset = (float)host->param_float(layer, "offset");

	return scale_apply(layer, host, args->input, args->output, args->batch, factor, offset);
}

/* dL/dx = factor * dL/dy; factor and offset are fixed hyperparameters, not weights. */
static strata_status scale_backward(strata_layer *layer, const strata_host *host,
                                    const strata_backward_args *args)
{
	float factor = (float)host->param_float(layer, "factor");

	if (!args->grad_input)
		return STRATA_OK;
	return scale_apply(layer, host, args->grad_output, args->grad_input, args->batch, factor, 0.0f);
}

static const strata_layer_ops scale_ops = {
	.size = sizeof(strata_layer_ops),
	.type = "scale",
	.class_name = "Scale",
	.name_prefix = "scale",
	.doc = "y = factor * x + offset, elementwise",
	.params = scale_params,
	.n_params = sizeof(scale_params) / sizeof(scale_params[0]),
	.build = scale_build,
	.forward = scale_forward,
	.backward = scale_backward,
};

/* Registers only: no allocation, no device work. */
static strata_status scale_init(const strata_host *host, strata_registry *reg)
{
	strata_status status;

	status = host->register_program(reg, "scale", scale_cl_source, "");
	if (status != STRATA_OK)
		return status;
	return host->register_layer(reg, &scale_ops);
}

static const strata_plugin scale_plugin = {
	.abi_version = STRATA_PLUGIN_ABI_VERSION,
	.size = sizeof(strata_plugin),
	.name = "scale",
	.version = "1.0.0",
	.description = "example out-of-tree plugin: y = factor * x + offset",
	.init = scale_init,
};

STRATA_PLUGIN_DEFINE(scale_plugin)
