/* An out-of-tree layer with two inputs: `blend`, y = alpha * x0 + (1 - alpha) * x1 elementwise.
 * It shows what a layer of several inputs declares (min_inputs, max_inputs), how build() sees
 * each input's shape (host->input_shape_at) and how the passes read every input and write every
 * input gradient (strata_forward_input, strata_backward_grad_input). Needs a host of plugin ABI
 * 0.3 or later; scale.c builds against any. */
#include <float.h>
#include <stdint.h>

#include <strata/plugin.h>

#include "blend_cl.h" /* blend_cl_source, generated from blend.cl by the Makefile */

static const strata_param blend_params[] = {
	{
		.name = "alpha",
		.type = STRATA_PARAM_FLOAT,
		.default_value = "0.5",
		.min = 0.0,
		.max = 1.0,
		.doc = "weight of the first input; the second gets 1 - alpha",
	},
};

static size_t shape_elements(const strata_shape *shape)
{
	size_t n = 1;

	for (uint32_t i = 0; i < shape->rank; i++)
		n *= (size_t)shape->dims[i];
	return n;
}

static int same_shape(const strata_shape *a, const strata_shape *b)
{
	if (a->rank != b->rank)
		return 0;
	for (uint32_t i = 0; i < a->rank; i++)
		if (a->dims[i] != b->dims[i])
			return 0;
	return 1;
}

static strata_status blend_build(strata_layer *layer, const strata_host *host, const strata_shape *in,
                                 strata_shape *out)
{
	if (!STRATA_HOST_HAS(host, input_shape_at))
		return host->fail(layer, STRATA_ERR_UNSUPPORTED, "blend needs a host of plugin ABI 0.3 (two inputs)");
	const strata_shape *second = host->input_shape_at(layer, 1);
	if (!second || !same_shape(in, second))
		return host->fail(layer, STRATA_ERR_INVALID, "blend's two inputs must have the same shape");
	*out = *in;
	return STRATA_OK;
}

/* y = a * x0 + b * x1 over `batch` samples. */
static strata_status blend_apply(strata_layer *layer, const strata_host *host, strata_tensor *x0, strata_tensor *x1,
                                 strata_tensor *y, uint32_t batch, float a, float b)
{
	size_t n = (size_t)batch * shape_elements(host->input_shape(layer));
	strata_kernel *kernel;

	if (n == 0)
		return STRATA_OK;
	if (n > UINT32_MAX)
		return host->fail(layer, STRATA_ERR_OVERFLOW, "%zu elements exceed the kernel's 32-bit index", n);
	kernel = host->kernel(layer, "blend", "blend_pair", NULL);
	if (!kernel)
		return host->last_status(layer);
	const strata_arg args[] = {
		strata_arg_tensor(x0), strata_arg_tensor(x1), strata_arg_tensor(y),
		strata_arg_uint((uint32_t)n), strata_arg_float(a), strata_arg_float(b),
	};
	return host->launch(layer, kernel, 1, &n, NULL, sizeof(args) / sizeof(args[0]), args);
}

static strata_status blend_forward(strata_layer *layer, const strata_host *host, const strata_forward_args *args)
{
	float alpha = (float)host->param_float(layer, "alpha");

	return blend_apply(layer, host, strata_forward_input(args, 0), strata_forward_input(args, 1), args->output,
	                   args->batch, alpha, 1.0f - alpha);
}

/* dL/dx0 = alpha * dL/dy, dL/dx1 = (1 - alpha) * dL/dy; each written whole (the host sums where a
 * value feeds several layers), and only where the host asks for it. */
static strata_status blend_backward(strata_layer *layer, const strata_host *host, const strata_backward_args *args)
{
	float alpha = (float)host->param_float(layer, "alpha");
	strata_status status = STRATA_OK;

	for (uint32_t i = 0; i < 2 && status == STRATA_OK; i++) {
		strata_tensor *grad = strata_backward_grad_input(args, i);
		if (grad)
			status = blend_apply(layer, host, args->grad_output, args->grad_output, grad, args->batch,
			                     i == 0 ? alpha : 1.0f - alpha, 0.0f);
	}
	return status;
}

static const strata_layer_ops blend_ops = {
	.size = sizeof(strata_layer_ops),
	.type = "blend",
	.class_name = "Blend",
	.name_prefix = "blend",
	.doc = "y = alpha * x0 + (1 - alpha) * x1, elementwise, of two inputs",
	.params = blend_params,
	.n_params = sizeof(blend_params) / sizeof(blend_params[0]),
	.build = blend_build,
	.forward = blend_forward,
	.backward = blend_backward,
	.min_inputs = 2,
	.max_inputs = 2,
};

static strata_status blend_init(const strata_host *host, strata_registry *reg)
{
	strata_status status;

	status = host->register_program(reg, "blend", blend_cl_source, "");
	if (status != STRATA_OK)
		return status;
	return host->register_layer(reg, &blend_ops);
}

static const strata_plugin blend_plugin = {
	.abi_version = STRATA_PLUGIN_ABI_VERSION,
	.size = sizeof(strata_plugin),
	.name = "blend",
	.version = "1.0.0",
	.description = "example out-of-tree plugin with two inputs: y = alpha * x0 + (1 - alpha) * x1",
	.init = blend_init,
};

STRATA_PLUGIN_DEFINE(blend_plugin)
