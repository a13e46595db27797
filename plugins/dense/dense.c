/* Dense: Keras' fully connected layer over the last axis of its input, as one GEMM forward and two
 * backward (common/weights.h). An input of higher rank, (timesteps, features) or (h, w, c), is a
 * matrix of batch x (the other axes) rows, each row mapped alike, as Keras' Dense does. */
#include <limits.h>
#include <stdlib.h>

#include <strata/plugin.h>

#include "activation.h"
#include "shape.h"
#include "weights.h"

typedef struct dense_plan {
	weights_layout weights;
	int64_t inputs, units;
	int64_t rows; /* per sample: the product of the input's axes before the last */
} dense_plan;

static const strata_param dense_params[] = {
	{.name = "units", .type = STRATA_PARAM_INT, .min = 1, .max = INT_MAX,
	 .doc = "number of outputs"},
	WEIGHTS_COMMON_PARAMS,
};

static strata_status dense_build(strata_layer *layer, const strata_host *host, const strata_shape *in,
                                 strata_shape *out)
{
	if (in->rank < 1)
		return host->fail(layer, STRATA_ERR_INVALID, "Dense needs an input of at least one axis");
	dense_plan plan = {.inputs = in->dims[in->rank - 1], .units = host->param_int(layer, "units"), .rows = 1};
	int64_t count;
	if (plan.inputs > INT_MAX || !shape_mul(plan.inputs, plan.units, INT32_MAX, &count))
		return host->fail(layer, STRATA_ERR_OVERFLOW, "a %lld x %lld kernel is too large",
		                  (long long)plan.inputs, (long long)plan.units);
	bool fits = true;
	for (uint32_t a = 0; a + 1 < in->rank && fits; a++)
		fits = shape_mul(plan.rows, in->dims[a], INT32_MAX, &plan.rows);
	if (!fits || !shape_mul(plan.rows, plan.inputs > plan.units ? plan.inputs : plan.units, INT32_MAX, &count))
		return host->fail(layer, STRATA_ERR_OVERFLOW, "a sample of %lld rows of %lld values is too large",
		                  (long long)plan.rows, (long long)plan.inputs);

	strata_shape kshape = {.rank = 2, .dims = {plan.inputs, plan.units}};
	strata_status st = weights_declare(layer, host, &kshape, plan.units, (size_t)plan.rows, &plan.weights);
	if (st != STRATA_OK)
		return st;

	dense_plan *p = malloc(sizeof(*p));
	if (!p)
		return host->fail(layer, STRATA_ERR_NO_MEMORY, "out of memory");
	*p = plan;
	free(host->get_private(layer));
	host->set_private(layer, p);

	*out = *in;
	out->dims[in->rank - 1] = plan.units;
	/* Each row alike: a mask of the steps (Keras' masking) goes through. */
	if (STRATA_HOST_HAS(host, mask_declare))
		return host->mask_declare(layer, STRATA_MASK_PASS);
	return STRATA_OK;
}

static strata_status dense_forward(strata_layer *layer, const strata_host *host,
                                   const strata_forward_args *args)
{
	const dense_plan *p = host->get_private(layer);
	if (args->batch == 0)
		return STRATA_OK;
	size_t widest = p->inputs > p->units ? (size_t)p->inputs : (size_t)p->units;
	strata_status st = shape_check_batch(layer, host, args->batch, widest * (size_t)p->rows);
	if (st != STRATA_OK)
		return st;
	const size_t rows = (size_t)args->batch * (size_t)p->rows;
	strata_gemm g = {
		.size = sizeof(g),
		.m = rows, .n = (size_t)p->units, .k = (size_t)p->inputs,
		.alpha = 1.0f, .beta = 0.0f,
		.a = args->input, .lda = (size_t)p->inputs,
		.b = host->weight(layer, p->weights.kernel), .ldb = (size_t)p->units,
		.c = args->output, .ldc = (size_t)p->units,
	};
	strata_tensor *bias = p->weights.has_bias ? host->weight(layer, p->weights.bias) : NULL;
	return activation_fused_gemm(layer, host, &p->weights.act, &g, bias);
}

static strata_status dense_backward(strata_layer *layer, const strata_host *host,
                                    const strata_backward_args *args)
{
	const dense_plan *p = host->get_private(layer);
	size_t widest = p->inputs > p->units ? (size_t)p->inputs : (size_t)p->units;
	strata_status st = shape_check_batch(layer, host, args->batch, widest * (size_t)p->rows);
	if (st != STRATA_OK)
		return st;
	if (activation_fused_stale(&p->weights.act, args)) {
		strata_forward_args again = activation_forward_again(args);
		if ((st = dense_forward(layer, host, &again)))
			return st;
	}
	weights_grad g = {
		.a = args->input, .y = args->output, .dy = args->grad_output, .d_a = args->grad_input,
		.rows = (size_t)args->batch * (size_t)p->rows, .depth = (size_t)p->inputs, .units = (size_t)p->units,
		.folded = args->activation_folded,
	};
	return weights_backward(layer, host, &p->weights, &g);
}

static void dense_destroy(strata_layer *layer, const strata_host *host)
{
	free(host->get_private(layer));
	host->set_private(layer, NULL);
}

static const strata_layer_ops dense_ops = {
	.size = sizeof(strata_layer_ops),
	.type = "dense",
	.class_name = "Dense",
	.name_prefix = "dense",
	.doc = "fully connected layer over the last axis of its input, as Keras' Dense",
	.params = dense_params,
	.n_params = sizeof(dense_params) / sizeof(dense_params[0]),
	.build = dense_build,
	.forward = dense_forward,
	.backward = dense_backward,
	.destroy = dense_destroy,
};

static strata_status dense_init(const strata_host *host, strata_registry *reg)
{
	return host->register_layer(reg, &dense_ops);
}

static const strata_plugin dense_plugin = {
	.abi_version = STRATA_PLUGIN_ABI_VERSION,
	.size = sizeof(strata_plugin),
	.name = "dense",
	.version = "1.0.0",
	.description = "Dense layer: GEMM and the core bias/activation kernels on the OpenCL device",
	.init = dense_init,
};

STRATA_PLUGIN_DEFINE(dense_plugin)
