/* The activation layers with parameters, Keras' classes of keras.layers.activations:
 *  - relu (ReLU): max_value, negative_slope and threshold, as keras.activations.relu computes them;
 *  - leaky_relu (LeakyReLU): negative_slope, 0.3 by default (Keras 3; Keras 2 called it alpha);
 *  - elu (ELU): alpha;
 *  - prelu (PReLU): a learned slope per element of the input's shape, or per group of elements
 *    along Keras' shared_axes, in a weight named "alpha";
 *  - softmax (Softmax): along the last axis, through the host's softmax (plugin.h).
 * Every type is the same shape in and out, over inputs of any rank. */
#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>

#include <strata/plugin.h>

#include "activations_cl.h"
#include "core.h"
#include "shape.h"
#include "tune.h"
#include "weights.h"

/* Terms of PReLU's slope gradient one work-item sums; the rest go to further blocks. */
#define PRELU_BLOCK 64

static const strata_param relu_params[] = {
	{.name = "max_value", .type = STRATA_PARAM_FLOAT, .default_value = "null", .min = 0, .max = INFINITY,
	 .choices = "()", .doc = "largest output, above 0; null for none"},
	{.name = "negative_slope", .type = STRATA_PARAM_FLOAT, .default_value = "0.0", .min = 0, .max = INFINITY,
	 .doc = "slope below the threshold"},
	{.name = "threshold", .type = STRATA_PARAM_FLOAT, .default_value = "0.0", .min = 0, .max = INFINITY,
	 .doc = "inputs up to it give 0 (or the negative slope's line)"},
};

static const strata_param leaky_relu_params[] = {
	{.name = "negative_slope", .type = STRATA_PARAM_FLOAT, .default_value = "0.3", .min = 0, .max = INFINITY,
	 .doc = "slope for inputs below 0"},
	{.name = "alpha", .type = STRATA_PARAM_UNSUPPORTED, .default_value = "0.3",
	 .doc = "Keras 2's name of the slope, deprecated in Keras 3: write negative_slope instead"},
};

static const strata_param elu_params[] = {
	{.name = "alpha", .type = STRATA_PARAM_FLOAT, .default_value = "1.0", .min = -INFINITY, .max = INFINITY,
	 .doc = "scale of the negative part, alpha * (exp(x) - 1)"},
};

static const strata_param prelu_params[] = {
	{.name = "alpha_initializer", .type = STRATA_PARAM_ENUM, .default_value = "zeros",
	 .choices = WEIGHTS_INITIALIZER_CHOICES, .doc = "initializer of the learned slopes"},
	{.name = "alpha_regularizer", .type = STRATA_PARAM_REGULARIZER, .default_value = "null",
	 .doc = "l1/l2 penalty on the slopes, e.g. {l2: 0.01}"},
	{.name = "alpha_constraint", .type = STRATA_PARAM_CONSTRAINT, .default_value = "null",
	 .doc = "applied to the slopes after every update: null, non_neg or max_norm"},
	/* Keras takes a list of any length; the loader takes a fixed count of integers from a plugin
	 * (one integer is repeated), so one or two axes: [1, 2] is one slope per channel of an image. */
	{.name = "shared_axes", .type = STRATA_PARAM_INTS, .default_value = "null", .min = 1, .max = STRATA_MAX_RANK,
	 .count = 0, .doc = "1-based axes sharing one slope, as Keras: [1, 2] for one per channel of an image"},
};

static const strata_param softmax_params[] = {
	{.name = "axis", .type = STRATA_PARAM_UNSUPPORTED, .default_value = "-1",
	 .doc = "only the last axis is supported; put a permute around the layer for another"},
};

/* Elements of one sample, refused past the kernels' int indexing. */
static strata_status same_shape_build(strata_layer *layer, const strata_host *host, const strata_shape *in,
                                      strata_shape *out, int64_t *count)
{
	char buf[96];
	if (in->rank == 0)
		return host->fail(layer, STRATA_ERR_INVALID, "needs an input of rank 1 or more");
	*count = 1;
	for (uint32_t i = 0; i < in->rank; i++)
		if (!shape_mul(*count, in->dims[i], INT_MAX, count))
			return host->fail(layer, STRATA_ERR_OVERFLOW, "input %s is too large",
			                  shape_format(in, buf, sizeof(buf)));
	*out = *in;
	return STRATA_OK;
}

static strata_status elementwise_build(strata_layer *layer, const strata_host *host, const strata_shape *in,
                                       strata_shape *out)
{
	int64_t count;
	return same_shape_build(layer, host, in, out, &count);
}

/* Elements of `batch` samples of the input, refused past the kernels' int indexing. */
static strata_status batch_count(strata_layer *layer, const strata_host *host, uint32_t batch, size_t *n)
{
	const strata_shape *shape = host->input_shape(layer);
	size_t per_sample = 1;
	for (uint32_t i = 0; i < shape->rank; i++)
		per_sample *= (size_t)shape->dims[i];
	*n = (size_t)batch * per_sample;
	return shape_check_batch(layer, host, batch, per_sample);
}

/* ---- relu and leaky_relu: one kernel ------------------------------------------------------------- */

typedef struct relu_options {
	float max_value; /* < 0: none */
	float slope, threshold;
} relu_options;

static relu_options relu_options_of(const strata_layer *layer, const strata_host *host, bool leaky)
{
	if (leaky)
		return (relu_options){.max_value = -1.0f, .slope = (float)host->param_float(layer, "negative_slope")};
	/* max_value is above 0 when given; null reads as 0. */
	double max_value = host->param_float(layer, "max_value");
	return (relu_options){
		.max_value = max_value > 0.0 ? (float)max_value : -1.0f,
		.slope = (float)host->param_float(layer, "negative_slope"),
		.threshold = (float)host->param_float(layer, "threshold"),
	};
}

static strata_status relu_run_forward(strata_layer *layer, const strata_host *host, const strata_forward_args *a,
                                      bool leaky)
{
	size_t n = 0;
	strata_status st = batch_count(layer, host, a->batch, &n);
	if (st != STRATA_OK || n == 0)
		return st;
	strata_kernel *k = host->kernel(layer, "activations", "relu_forward", NULL);
	if (!k)
		return host->last_status(layer);
	relu_options o = relu_options_of(layer, host, leaky);
	strata_arg args[] = {strata_arg_tensor(a->input), strata_arg_tensor(a->output), strata_arg_int((int32_t)n),
	                     strata_arg_float(o.max_value), strata_arg_float(o.slope), strata_arg_float(o.threshold)};
	return host->launch(layer, k, 1, &n, NULL, sizeof(args) / sizeof(args[0]), args);
}

static strata_status relu_run_backward(strata_layer *layer, const strata_host *host,
                                       const strata_backward_args *a, bool leaky)
{
	size_t n = 0;
	strata_status st = batch_count(layer, host, a->batch, &n);
	if (st != STRATA_OK || n == 0 || !a->grad_input)
		return st;
	strata_kernel *k = host->kernel(layer, "activations", "relu_backward", NULL);
	if (!k)
		return host->last_status(layer);
	relu_options o = relu_options_of(layer, host, leaky);
	strata_arg args[] = {strata_arg_tensor(a->input),      strata_arg_tensor(a->grad_output),
	                     strata_arg_tensor(a->grad_input), strata_arg_int((int32_t)n),
	                     strata_arg_float(o.max_value),    strata_arg_float(o.slope),
	                     strata_arg_float(o.threshold)};
	return host->launch(layer, k, 1, &n, NULL, sizeof(args) / sizeof(args[0]), args);
}

static strata_status relu_forward(strata_layer *layer, const strata_host *host, const strata_forward_args *a)
{
	return relu_run_forward(layer, host, a, false);
}

static strata_status relu_backward(strata_layer *layer, const strata_host *host, const strata_backward_args *a)
{
	return relu_run_backward(layer, host, a, false);
}

static strata_status leaky_relu_forward(strata_layer *layer, const strata_host *host, const strata_forward_args *a)
{
	return relu_run_forward(layer, host, a, true);
}

static strata_status leaky_relu_backward(strata_layer *layer, const strata_host *host,
                                         const strata_backward_args *a)
{
	return relu_run_backward(layer, host, a, true);
}

/* ---- elu ------------------------------------------------------------------------------------------ */

static strata_status elu_forward(strata_layer *layer, const strata_host *host, const strata_forward_args *a)
{
	size_t n = 0;
	strata_status st = batch_count(layer, host, a->batch, &n);
	if (st != STRATA_OK || n == 0)
		return st;
	strata_kernel *k = host->kernel(layer, "activations", "elu_forward", NULL);
	if (!k)
		return host->last_status(layer);
	strata_arg args[] = {strata_arg_tensor(a->input), strata_arg_tensor(a->output), strata_arg_int((int32_t)n),
	                     strata_arg_float((float)host->param_float(layer, "alpha"))};
	return host->launch(layer, k, 1, &n, NULL, sizeof(args) / sizeof(args[0]), args);
}

static strata_status elu_backward(strata_layer *layer, const strata_host *host, const strata_backward_args *a)
{
	size_t n = 0;
	strata_status st = batch_count(layer, host, a->batch, &n);
	if (st != STRATA_OK || n == 0 || !a->grad_input)
		return st;
	strata_kernel *k = host->kernel(layer, "activations", "elu_backward", NULL);
	if (!k)
		return host->last_status(layer);
	strata_arg args[] = {strata_arg_tensor(a->input), strata_arg_tensor(a->grad_output),
	                     strata_arg_tensor(a->grad_input), strata_arg_int((int32_t)n),
	                     strata_arg_float((float)host->param_float(layer, "alpha"))};
	return host->launch(layer, k, 1, &n, NULL, sizeof(args) / sizeof(args[0]), args);
}

/* ---- prelu ---------------------------------------------------------------------------------------- */

/* Build()'s result: the sample's shape as four axes (leading 1s), the shared axes as bits of
 * those four, the slopes' count and how many elements of a sample share each. */
typedef struct prelu_plan {
	int32_t dims[4];
	int32_t shared;
	int32_t per_sample, n_alpha, spread;
	uint32_t alpha, partials; /* weight and workspace indices */
} prelu_plan;

static strata_status prelu_build(strata_layer *layer, const strata_host *host, const strata_shape *in,
                                 strata_shape *out)
{
	int64_t count;
	strata_status st = same_shape_build(layer, host, in, out, &count);
	if (st != STRATA_OK)
		return st;
	prelu_plan plan = {.dims = {1, 1, 1, 1}, .per_sample = (int32_t)count};
	uint32_t pad = 4 - in->rank;
	for (uint32_t k = 0; k < in->rank; k++)
		plan.dims[pad + k] = (int32_t)in->dims[k];

	int64_t axes[STRATA_MAX_RANK];
	uint32_t n_axes = host->param_ints(layer, "shared_axes", axes, STRATA_MAX_RANK);
	for (uint32_t i = 0; i < n_axes && i < STRATA_MAX_RANK; i++) {
		if (axes[i] < 1 || axes[i] > (int64_t)in->rank)
			return host->fail_param(layer, "shared_axes", STRATA_ERR_INVALID,
			                        "axis %lld is out of range for rank-%u samples: 1 to %u (axis 0 is the batch)",
			                        (long long)axes[i], in->rank, in->rank);
		plan.shared |= 1 << (pad + (uint32_t)axes[i] - 1);
	}

	/* Keras' alpha: the input's shape with the shared axes 1. */
	strata_weight_desc alpha = {
		.size = sizeof(alpha),
		.name = "alpha",
		.shape = *in,
		.initializer = host->param_string(layer, "alpha_initializer"),
		.constraint = "alpha_constraint",
	};
	plan.n_alpha = 1;
	for (uint32_t k = 0; k < in->rank; k++) {
		if (plan.shared & (1 << (pad + k)))
			alpha.shape.dims[k] = 1;
		plan.n_alpha *= (int32_t)alpha.shape.dims[k];
	}
	plan.spread = plan.n_alpha ? plan.per_sample / plan.n_alpha : 0;
	host->param_regularizer(layer, "alpha_regularizer", &alpha.l1, &alpha.l2);
	if ((st = host->add_weight(layer, &alpha, &plan.alpha)) != STRATA_OK)
		return st;
	/* The partial sums of a batch of n samples: ceil(n spread / PRELU_BLOCK) blocks of n_alpha,
	 * only when that is more than one block. n ceil(spread / PRELU_BLOCK) blocks always suffice;
	 * so does n spread / (PRELU_BLOCK / 2) when there is more than one (ceil(y) < 2y for y > 1),
	 * which is less for small spreads: a 32nd of the input where every element has its slope. */
	size_t per_block = (size_t)plan.n_alpha, spread = (size_t)plan.spread;
	size_t floats = (spread + PRELU_BLOCK - 1) / PRELU_BLOCK * per_block;
	size_t halves = (spread * per_block + PRELU_BLOCK / 2 - 1) / (PRELU_BLOCK / 2);
	if ((st = host->add_workspace(layer, (halves < floats ? halves : floats) * sizeof(float), &plan.partials)) !=
	    STRATA_OK)
		return st;

	prelu_plan *p = malloc(sizeof(*p));
	if (!p)
		return host->fail(layer, STRATA_ERR_NO_MEMORY, "out of memory");
	*p = plan;
	free(host->get_private(layer));
	host->set_private(layer, p);
	return STRATA_OK;
}

static strata_status prelu_forward(strata_layer *layer, const strata_host *host, const strata_forward_args *a)
{
	const prelu_plan *p = host->get_private(layer);
	size_t n = 0;
	strata_status st = batch_count(layer, host, a->batch, &n);
	if (st != STRATA_OK || n == 0)
		return st;
	strata_kernel *k = host->kernel(layer, "activations", "prelu_forward", NULL);
	if (!k)
		return host->last_status(layer);
	strata_arg args[] = {
		strata_arg_tensor(a->input), strata_arg_tensor(host->weight(layer, p->alpha)),
		strata_arg_tensor(a->output), strata_arg_int((int32_t)n), strata_arg_int(p->per_sample),
		strata_arg_int(p->dims[0]), strata_arg_int(p->dims[1]), strata_arg_int(p->dims[2]),
		strata_arg_int(p->dims[3]), strata_arg_int(p->shared),
	};
	return host->launch(layer, k, 1, &n, NULL, sizeof(args) / sizeof(args[0]), args);
}

static strata_status prelu_backward(strata_layer *layer, const strata_host *host, const strata_backward_args *a)
{
	const prelu_plan *p = host->get_private(layer);
	size_t n = 0;
	strata_status st = batch_count(layer, host, a->batch, &n);
	if (st != STRATA_OK)
		return st;
	strata_tensor *dalpha = host->weight_grad(layer, p->alpha);
	if (!dalpha)
		return host->fail(layer, STRATA_ERR_INVALID, "no weight gradients: the session is not prepared for training");
	if (n == 0)
		return core_fill(layer, host, dalpha, 0.0f, (size_t)p->n_alpha);
	if (a->grad_input) {
		strata_kernel *k = host->kernel(layer, "activations", "prelu_backward", NULL);
		if (!k)
			return host->last_status(layer);
		strata_arg args[] = {
			strata_arg_tensor(a->input), strata_arg_tensor(host->weight(layer, p->alpha)),
			strata_arg_tensor(a->grad_output), strata_arg_tensor(a->grad_input), strata_arg_int((int32_t)n),
			strata_arg_int(p->per_sample), strata_arg_int(p->dims[0]), strata_arg_int(p->dims[1]),
			strata_arg_int(p->dims[2]), strata_arg_int(p->dims[3]), strata_arg_int(p->shared),
		};
		if ((st = host->launch(layer, k, 1, &n, NULL, sizeof(args) / sizeof(args[0]), args)) != STRATA_OK)
			return st;
	}
	/* The slopes' gradient: blocks of PRELU_BLOCK terms, then their sums when there are several. */
	size_t reduce = (size_t)a->batch * (size_t)p->spread, blocks = (reduce + PRELU_BLOCK - 1) / PRELU_BLOCK;
	strata_tensor *partials = blocks > 1 ? host->workspace(layer, p->partials) : dalpha;
	strata_kernel *k = host->kernel(layer, "activations", "prelu_alpha_partial", NULL);
	if (!k)
		return host->last_status(layer);
	strata_arg args[] = {
		strata_arg_tensor(a->input), strata_arg_tensor(a->grad_output), strata_arg_tensor(partials),
		strata_arg_int(p->n_alpha), strata_arg_int((int32_t)reduce), strata_arg_int(PRELU_BLOCK),
		strata_arg_int(p->per_sample), strata_arg_int(p->dims[0]), strata_arg_int(p->dims[1]),
		strata_arg_int(p->dims[2]), strata_arg_int(p->dims[3]), strata_arg_int(p->shared),
	};
	if ((st = tune_launch_2d(layer, host, k, (size_t)p->n_alpha, blocks, sizeof(args) / sizeof(args[0]), args)) !=
	        STRATA_OK ||
	    blocks == 1)
		return st;
	if (!(k = host->kernel(layer, "activations", "prelu_alpha_sum", NULL)))
		return host->last_status(layer);
	strata_arg sum_args[] = {strata_arg_tensor(partials), strata_arg_tensor(dalpha), strata_arg_int(p->n_alpha),
	                         strata_arg_int((int32_t)blocks)};
	size_t global = (size_t)p->n_alpha;
	return host->launch(layer, k, 1, &global, NULL, sizeof(sum_args) / sizeof(sum_args[0]), sum_args);
}

static void prelu_destroy(strata_layer *layer, const strata_host *host)
{
	free(host->get_private(layer));
	host->set_private(layer, NULL);
}

/* ---- softmax -------------------------------------------------------------------------------------- */

/* The batch as rows of the last axis. */
static strata_status softmax_rows(strata_layer *layer, const strata_host *host, uint32_t batch, size_t *rows,
                                  size_t *cols)
{
	const strata_shape *shape = host->input_shape(layer);
	size_t n = 0;
	strata_status st = batch_count(layer, host, batch, &n);
	*cols = (size_t)shape->dims[shape->rank - 1];
	*rows = *cols ? n / *cols : 0;
	return st;
}

static strata_status softmax_forward(strata_layer *layer, const strata_host *host, const strata_forward_args *a)
{
	size_t rows, cols;
	strata_status st = softmax_rows(layer, host, a->batch, &rows, &cols);
	if (st != STRATA_OK)
		return st;
	CORE_NEED(layer, host, activation_forward);
	return host->activation_forward(layer, "softmax", a->output, a->input, NULL, rows, cols);
}

/* The softmax Jacobian along each row, from the output. The loss folds a softmax into
 * cross-entropy only for a layer whose `activation` is softmax, which this layer has not: it
 * always gets dLoss/dy. */
static strata_status softmax_backward(strata_layer *layer, const strata_host *host, const strata_backward_args *a)
{
	size_t rows, cols;
	strata_status st = softmax_rows(layer, host, a->batch, &rows, &cols);
	if (st != STRATA_OK || !a->grad_input)
		return st;
	CORE_NEED(layer, host, activation_backward);
	return host->activation_backward(layer, a->activation_folded ? "linear" : "softmax", a->grad_input,
	                                 a->grad_output, a->output, rows, cols);
}

/* ---- registration --------------------------------------------------------------------------------- */

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

static const strata_layer_ops activations_ops[] = {
	{
		.size = sizeof(strata_layer_ops),
		.type = "relu",
		.class_name = "ReLU",
		.name_prefix = "re_lu",
		.doc = "rectified linear unit with Keras' max_value, negative_slope and threshold",
		.params = relu_params,
		.n_params = COUNT(relu_params),
		.build = elementwise_build,
		.forward = relu_forward,
		.backward = relu_backward,
	},
	{
		.size = sizeof(strata_layer_ops),
		.type = "leaky_relu",
		.class_name = "LeakyReLU",
		.name_prefix = "leaky_re_lu",
		.doc = "x for x >= 0, negative_slope * x below, as Keras' LeakyReLU",
		.params = leaky_relu_params,
		.n_params = COUNT(leaky_relu_params),
		.build = elementwise_build,
		.forward = leaky_relu_forward,
		.backward = leaky_relu_backward,
	},
	{
		.size = sizeof(strata_layer_ops),
		.type = "elu",
		.class_name = "ELU",
		.name_prefix = "elu",
		.doc = "exponential linear unit: x for x > 0, alpha * (exp(x) - 1) below, as Keras' ELU",
		.params = elu_params,
		.n_params = COUNT(elu_params),
		.build = elementwise_build,
		.forward = elu_forward,
		.backward = elu_backward,
	},
	{
		.size = sizeof(strata_layer_ops),
		.type = "prelu",
		.class_name = "PReLU",
		.name_prefix = "p_re_lu",
		.doc = "leaky ReLU with learned slopes (weight alpha, the input's shape but shared_axes), as Keras' PReLU",
		.params = prelu_params,
		.n_params = COUNT(prelu_params),
		.build = prelu_build,
		.forward = prelu_forward,
		.backward = prelu_backward,
		.destroy = prelu_destroy,
	},
	{
		.size = sizeof(strata_layer_ops),
		.type = "softmax",
		.class_name = "Softmax",
		.name_prefix = "softmax",
		.doc = "softmax along the last axis, as Keras' Softmax",
		.params = softmax_params,
		.n_params = COUNT(softmax_params),
		.build = elementwise_build,
		.forward = softmax_forward,
		.backward = softmax_backward,
	},
};

static strata_status activations_init(const strata_host *host, strata_registry *reg)
{
	strata_status st = host->register_program(reg, "activations", activations_cl_source, "");
	for (size_t i = 0; st == STRATA_OK && i < COUNT(activations_ops); i++)
		st = host->register_layer(reg, &activations_ops[i]);
	return st;
}

static const strata_plugin activations_plugin = {
	.abi_version = STRATA_PLUGIN_ABI_VERSION,
	.size = sizeof(strata_plugin),
	.name = "activations",
	.version = "1.0.0",
	.description = "Keras' activation layers with parameters: ReLU, LeakyReLU, ELU, PReLU, Softmax",
	.init = activations_init,
};

STRATA_PLUGIN_DEFINE(activations_plugin)
