/* Activation: Keras' Activation layer, an activation function on its own, over any input shape
 * (softmax along the last axis, as Keras'). The core kernels (common/activation.h) do the work. */
#include <limits.h>
#include <stdlib.h>

#include <strata/plugin.h>

#include "activation.h"
#include "shape.h"

/* Build()'s result: the activation and the tensor seen as rows x cols, cols the last axis. */
typedef struct activation_plan {
	int code;
	size_t rows_per_sample, cols;
} activation_plan;

static const strata_param activation_params[] = {
	{.name = "activation", .type = STRATA_PARAM_ENUM, .default_value = NULL,
	 .choices = ACTIVATION_CHOICES, .doc = "the function to apply (softmax: along the last axis)"},
};

static strata_status activation_build(strata_layer *layer, const strata_host *host, const strata_shape *in,
                                      strata_shape *out)
{
	char buf[96];
	activation_plan plan = {.code = activation_code(host->param_string(layer, "activation"))};
	if (plan.code < 0)
		return host->fail_param(layer, "activation", STRATA_ERR_INVALID, "unknown activation '%s'",
		                        host->param_string(layer, "activation"));
	if (in->rank == 0)
		return host->fail(layer, STRATA_ERR_INVALID, "Activation needs an input of rank 1 or more");
	int64_t count = 1;
	for (uint32_t i = 0; i < in->rank; i++)
		if (!shape_mul(count, in->dims[i], INT_MAX, &count))
			return host->fail(layer, STRATA_ERR_OVERFLOW, "input %s is too large",
			                  shape_format(in, buf, sizeof(buf)));
	plan.cols = (size_t)in->dims[in->rank - 1];
	plan.rows_per_sample = (size_t)count / plan.cols;

	activation_plan *p = malloc(sizeof(*p));
	if (!p)
		return host->fail(layer, STRATA_ERR_NO_MEMORY, "out of memory");
	*p = plan;
	free(host->get_private(layer));
	host->set_private(layer, p);
	*out = *in;
	/* Per element: a mask of the steps (Keras' masking) goes through. */
	if (STRATA_HOST_HAS(host, mask_declare))
		return host->mask_declare(layer, STRATA_MASK_PASS);
	return STRATA_OK;
}

/* Rows of `batch` samples, refused past the kernels' int indexing. */
static strata_status activation_rows(strata_layer *layer, const strata_host *host, const activation_plan *p,
                                     uint32_t batch, size_t *rows)
{
	*rows = (size_t)batch * p->rows_per_sample;
	return shape_check_batch(layer, host, batch, p->rows_per_sample * p->cols);
}

static strata_status activation_forward(strata_layer *layer, const strata_host *host,
                                        const strata_forward_args *args)
{
	const activation_plan *p = host->get_private(layer);
	size_t rows = 0;
	strata_status st = activation_rows(layer, host, p, args->batch, &rows);
	if (st != STRATA_OK)
		return st;
	return activation_apply(layer, host, args->output, args->input, NULL, rows, p->cols, p->code);
}

static strata_status activation_layer_backward(strata_layer *layer, const strata_host *host,
                                               const strata_backward_args *args)
{
	const activation_plan *p = host->get_private(layer);
	size_t rows = 0;
	strata_status st = activation_rows(layer, host, p, args->batch, &rows);
	if (st != STRATA_OK || !args->grad_input)
		return st;
	/* gelu, swish, hard_silu, mish: the derivative from the layer's input, which the host keeps. */
	if (activation_needs_input(p->code) && !args->activation_folded)
		return activation_backward_from_input(layer, host, args->grad_input, args->grad_output, args->input, NULL,
		                                      rows, p->cols, p->code);
	return activation_backward(layer, host, args->grad_input, args->grad_output, args->output, rows,
	                           p->cols, p->code, args->activation_folded);
}

static void activation_destroy(strata_layer *layer, const strata_host *host)
{
	free(host->get_private(layer));
	host->set_private(layer, NULL);
}

static const strata_layer_ops activation_ops = {
	.size = sizeof(strata_layer_ops),
	.type = "activation",
	.class_name = "Activation",
	.name_prefix = "activation",
	.doc = "applies an activation function to its input, as Keras' Activation",
	.params = activation_params,
	.n_params = sizeof(activation_params) / sizeof(activation_params[0]),
	.build = activation_build,
	.forward = activation_forward,
	.backward = activation_layer_backward,
	.destroy = activation_destroy,
};

static strata_status activation_init(const strata_host *host, strata_registry *reg)
{
	return host->register_layer(reg, &activation_ops);
}

static const strata_plugin activation_plugin = {
	.abi_version = STRATA_PLUGIN_ABI_VERSION,
	.size = sizeof(strata_plugin),
	.name = "activation",
	.version = "1.0.0",
	.description = "Activation layer: the core activation kernels on the OpenCL device",
	.init = activation_init,
};

STRATA_PLUGIN_DEFINE(activation_plugin)
