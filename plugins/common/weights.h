/* What the weighted layers (conv2d, dense) share: Keras' kernel/bias parameters and the
 * declaration of their "kernel" and "bias" weights. Header-only, like activation.h. */
#ifndef PLUGINS_COMMON_WEIGHTS_H
#define PLUGINS_COMMON_WEIGHTS_H

#include <stdbool.h>

#include <strata/plugin.h>

#include "activation.h"

#define WEIGHTS_INITIALIZER_CHOICES "glorot_uniform|glorot_normal|he_uniform|he_normal|zeros|ones"

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
	 .doc = "l1/l2 penalty on the kernel weights, e.g. {l2: 0.01}"}

/* Indices of a weighted layer's weights and its activation, kept from build() to forward(). */
typedef struct weights_layout {
	uint32_t kernel;
	uint32_t bias;
	bool has_bias;
	int activation;
} weights_layout;

/* Declares "kernel" of `kernel_shape` and, with use_bias, "bias" of (units), from the common
 * parameters, and fills `layout`. */
static inline strata_status weights_declare(strata_layer *layer, const strata_host *host,
                                            const strata_shape *kernel_shape, int64_t units,
                                            weights_layout *layout)
{
	layout->activation = activation_code(host->param_string(layer, "activation"));
	if (layout->activation < 0)
		return host->fail_param(layer, "activation", STRATA_ERR_INVALID, "unknown activation '%s'",
		                        host->param_string(layer, "activation"));

	strata_weight_desc kernel = {
		.size = sizeof(kernel),
		.name = "kernel",
		.shape = *kernel_shape,
		.initializer = host->param_string(layer, "kernel_initializer"),
	};
	host->param_regularizer(layer, "kernel_regularizer", &kernel.l1, &kernel.l2);
	strata_status st = host->add_weight(layer, &kernel, &layout->kernel);
	if (st != STRATA_OK)
		return st;

	layout->has_bias = host->param_bool(layer, "use_bias");
	layout->bias = 0;
	if (!layout->has_bias)
		return STRATA_OK;
	strata_weight_desc bias = {
		.size = sizeof(bias),
		.name = "bias",
		.shape = {.rank = 1, .dims = {units}},
		.initializer = host->param_string(layer, "bias_initializer"),
	};
	return host->add_weight(layer, &bias, &layout->bias);
}

#endif
