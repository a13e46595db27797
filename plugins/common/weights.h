/* What the weighted layers (conv2d, dense) share: Keras' kernel/bias parameters, the
 * declaration of their "kernel" and "bias" weights, and their backward pass. Header-only, like
 * activation.h. */
#ifndef PLUGINS_COMMON_WEIGHTS_H
#define PLUGINS_COMMON_WEIGHTS_H

#include <stdbool.h>
#include <stdint.h>

#include <strata/plugin.h>

#include "activation.h"
#include "core.h"

#define WEIGHTS_INITIALIZER_CHOICES \
	"glorot_uniform|glorot_normal|he_uniform|he_normal|zeros|ones|orthogonal|uniform|random_uniform|normal|random_normal"

/* The strata_param entries every weighted layer declares after its own, with Keras' defaults. */
#define WEIGHTS_COMMON_PARAMS                                                                        \
	{.name = "activation", .type = STRATA_PARAM_ENUM, .default_value = "linear",                     \
	 .choices = ACTIVATION_CHOICES, .doc = "activation applied to the output"},                       \
	{.name = "use_bias", .type = STRATA_PARAM_BOOL, .default_value = "true",                          \
	 .doc = "whether the layer adds a bias vector"},                                                  \
	{.name = "kernel_initializer", .type = STRATA_PARAM_ENUM, .default_value = "glorot_uniform",     \
	 .choices = WEIGHTS_INITIALIZER_CHOICES, .doc = "initializer of the kernel weights"},            \
	{.name = "bias_initializer", .type = STRATA_PARAM_ENUM, .default_value = "zeros",                \
	 .choices = WEIGHTS_INITIALIZER_CHOICES, .doc = "initializer of the bias vector"},               \
	{.name = "kernel_regularizer", .type = STRATA_PARAM_REGULARIZER, .default_value = "null",        \
	 .doc = "l1/l2 penalty on the kernel weights, e.g. {l2: 0.01}"},                                 \
	{.name = "bias_regularizer", .type = STRATA_PARAM_REGULARIZER, .default_value = "null",          \
	 .doc = "l1/l2 penalty on the bias vector"},                                                      \
	{.name = "kernel_constraint", .type = STRATA_PARAM_CONSTRAINT, .default_value = "null",          \
	 .doc = "applied after every update: max_norm, {max_norm: {max_value: 3, axis: [0, 1, 2]}}, non_neg"}, \
	{.name = "bias_constraint", .type = STRATA_PARAM_CONSTRAINT, .default_value = "null",            \
	 .doc = "applied to the bias after every update, as kernel_constraint"}

/* Indices of a weighted layer's weights, workspace and activation, kept from build() to
 * forward(). */
typedef struct weights_layout {
	uint32_t kernel;
	uint32_t bias;
	bool has_bias;
	activation_fused act;   /* the `activation` parameter, and its kept input where it needs one */
	uint32_t partials;      /* workspace of the bias gradient's partial sums, with has_bias */
	size_t rows_per_sample; /* rows of the layer's [rows, units] output per sample */
} weights_layout;

/* Declares "kernel" of `kernel_shape` and, with use_bias, "bias" of (units) and the workspace its
 * gradient needs, from the common parameters, and fills `layout`. The layer's output is a
 * [rows, units] matrix with `rows_per_sample` rows per sample (dense: 1; conv2d: its pixels). */
static inline strata_status weights_declare(strata_layer *layer, const strata_host *host,
                                            const strata_shape *kernel_shape, int64_t units,
                                            size_t rows_per_sample, weights_layout *layout)
{
	if (units <= 0 || (size_t)units > SIZE_MAX / rows_per_sample)
		return host->fail(layer, STRATA_ERR_OVERFLOW, "%lld units of %zu rows are too many", (long long)units,
		                  rows_per_sample);
	strata_status st = activation_fused_declare(layer, host, "activation", rows_per_sample * (size_t)units,
	                                            &layout->act);
	if (st != STRATA_OK)
		return st;

	strata_weight_desc kernel = {
		.size = sizeof(kernel),
		.name = "kernel",
		.shape = *kernel_shape,
		.initializer = host->param_string(layer, "kernel_initializer"),
		.constraint = "kernel_constraint",
	};
	host->param_regularizer(layer, "kernel_regularizer", &kernel.l1, &kernel.l2);
	st = host->add_weight(layer, &kernel, &layout->kernel);
	if (st != STRATA_OK)
		return st;

	layout->has_bias = host->param_bool(layer, "use_bias");
	layout->bias = 0;
	layout->partials = 0;
	layout->rows_per_sample = rows_per_sample;
	if (!layout->has_bias)
		return STRATA_OK;
	strata_weight_desc bias = {
		.size = sizeof(bias),
		.name = "bias",
		.shape = {.rank = 1, .dims = {units}},
		.initializer = host->param_string(layer, "bias_initializer"),
		.constraint = "bias_constraint",
	};
	host->param_regularizer(layer, "bias_regularizer", &bias.l1, &bias.l2);
	if ((st = host->add_weight(layer, &bias, &layout->bias)) != STRATA_OK)
		return st;
	/* A batch of n samples has n * rows_per_sample rows, in at most n times as many blocks. */
	size_t blocks = activation_sum_blocks(rows_per_sample);
	if (units <= 0 || blocks > SIZE_MAX / sizeof(float) / (size_t)units)
		return host->fail(layer, STRATA_ERR_OVERFLOW, "bias gradient workspace too large");
	return host->add_workspace(layer, blocks * (size_t)units * sizeof(float), &layout->partials);
}

/* A weighted layer's forward pass is y = act(a x kernel + bias), a [rows, depth] (dense: the
 * input; conv2d: its im2col matrix), kernel [depth, units], y [rows, units]. With `groups` > 1
 * (a grouped convolution) the kernel is [depth / groups, units] and group k is one such product
 * on column blocks: y[:, k-th units / groups] = a[:, k-th depth / groups] x kernel[:, k-th
 * units / groups]. */
typedef struct weights_grad {
	strata_tensor *a;   /* the forward pass's a */
	const strata_gemm_window *a_window; /* a is images read as their im2col matrix (host->gemm_window) */
	strata_tensor *y;   /* its output */
	strata_tensor *dy;  /* dLoss/dy, overwritten with dLoss/dPreactivation */
	strata_tensor *d_a; /* receives dLoss/da; NULL when nobody needs it. May be `a`. */
	size_t rows, depth, units;
	bool folded;        /* dy already is dLoss/dPreactivation */
	size_t groups;      /* column groups, dividing depth and units; 0 (left out) is 1 */
} weights_grad;

/* The weighted layers' backward pass: dz = dy * act'(y) in place and the bias gradient (column
 * sums of dz) in one pass, the kernel gradient a^T dz and, when asked for, da = dz kernel^T, each
 * GEMM once per group on the group's column blocks. The queue runs in order, so d_a may be a
 * itself: its GEMMs start after the kernel gradient's have read a. */
static inline strata_status weights_backward(strata_layer *layer, const strata_host *host,
                                             const weights_layout *w, const weights_grad *g)
{
	strata_tensor *kernel_grad = host->weight_grad(layer, w->kernel);
	strata_tensor *bias_grad = w->has_bias ? host->weight_grad(layer, w->bias) : NULL;
	if (!kernel_grad || (w->has_bias && !bias_grad))
		return host->fail(layer, STRATA_ERR_INVALID, "no weight gradients: the session is not "
		                  "prepared for training");
	size_t groups = g->groups ? g->groups : 1;
	if (g->depth % groups || g->units % groups)
		return host->fail(layer, STRATA_ERR_PLUGIN, "%zu groups do not divide depth %zu and units %zu", groups,
		                  g->depth, g->units);
	size_t group_depth = g->depth / groups, group_units = g->units / groups;
	strata_status st;
	int code = w->act.code;
	bool folded = g->folded;
	if (g->rows == 0) {
		/* An empty batch contributes nothing, but the gradients are still overwritten. */
		st = core_fill(layer, host, kernel_grad, 0.0f, group_depth * g->units);
		if (st == STRATA_OK && bias_grad)
			st = core_fill(layer, host, bias_grad, 0.0f, g->units);
		return st;
	}
	if (w->act.keeps_input && !folded) {
		/* The derivative from the kept input first; the sums then take dz as final. */
		if ((st = activation_fused_backward(layer, host, &w->act, g->dy, g->dy, g->y, g->rows, g->units, false)))
			return st;
		code = ACTIVATION_LINEAR;
		folded = true;
	}
	if (bias_grad) {
		size_t samples = w->rows_per_sample ? g->rows / w->rows_per_sample : 0;
		size_t capacity = samples * activation_sum_blocks(w->rows_per_sample);
		strata_tensor *partials = host->workspace(layer, w->partials);
		st = activation_backward_sums(layer, host, g->dy, g->y, bias_grad, partials, capacity,
		                              g->rows, g->units, code, folded);
	} else {
		st = activation_backward(layer, host, g->dy, g->dy, g->y, g->rows, g->units, code, folded);
	}
	if (st != STRATA_OK)
		return st;
	strata_gemm dw = {
		.size = sizeof(dw),
		.trans_a = true,
		.m = group_depth, .n = group_units, .k = g->rows,
		.alpha = 1.0f, .beta = 0.0f,
		.a = g->a, .lda = g->depth,
		.b = g->dy, .ldb = g->units,
		.c = kernel_grad, .ldc = g->units,
		.a_window = g->a_window,
	};
	for (size_t k = 0; k < groups; k++) {
		dw.a_offset = k * group_depth;
		dw.b_offset = dw.c_offset = k * group_units;
		if ((st = host->gemm(layer, &dw)) != STRATA_OK)
			return st;
	}
	if (!g->d_a)
		return STRATA_OK;
	strata_gemm da = {
		.size = sizeof(da),
		.trans_b = true,
		.m = g->rows, .n = group_depth, .k = group_units,
		.alpha = 1.0f, .beta = 0.0f,
		.a = g->dy, .lda = g->units,
		.b = host->weight(layer, w->kernel), .ldb = g->units,
		.c = g->d_a, .ldc = g->depth,
	};
	for (size_t k = 0; k < groups; k++) {
		da.a_offset = da.b_offset = k * group_units;
		da.c_offset = k * group_depth;
		if ((st = host->gemm(layer, &da)) != STRATA_OK)
			return st;
	}
	return STRATA_OK;
}

#endif
