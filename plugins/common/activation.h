/* Activations shared by the layer plugins and the runtime's "core" kernels (cl/core.cl): the one
 * place where activation names map to the codes bias_activation understands. Header-only, so
 * every plugin stays a single self-contained shared object. */
#ifndef PLUGINS_COMMON_ACTIVATION_H
#define PLUGINS_COMMON_ACTIVATION_H

#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include <strata/plugin.h>

/* Codes as cl/core.cl defines them (ACT_LINEAR ... ACT_SOFTMAX); the order of the names below
 * is the code. */
enum activation_code {
	ACTIVATION_LINEAR = 0,
	ACTIVATION_RELU = 1,
	ACTIVATION_SIGMOID = 2,
	ACTIVATION_TANH = 3,
	ACTIVATION_SOFTMAX = 4,
	ACTIVATION_COUNT
};

static const char *const activation_names[ACTIVATION_COUNT] = {
	"linear", "relu", "sigmoid", "tanh", "softmax",
};

/* The ENUM choices for an `activation` parameter, in code order. */
#define ACTIVATION_CHOICES "linear|relu|sigmoid|tanh|softmax"

/* Work-items per row for softmax_rows when the device allows it (its SOFTMAX_WG tunable). */
#define ACTIVATION_SOFTMAX_WG 64u

/* The code of `name`, or -1 when it names no activation (the loader has already checked the
 * value against ACTIVATION_CHOICES, so -1 means the two lists disagree). */
static inline int activation_code(const char *name)
{
	for (int i = 0; i < ACTIVATION_COUNT; i++)
		if (name && strcmp(name, activation_names[i]) == 0)
			return i;
	return -1;
}

/* The softmax_rows kernel at the largest power-of-two work-group size, up to
 * ACTIVATION_SOFTMAX_WG, that the device accepts for it. */
static inline strata_status activation_softmax_kernel(strata_layer *layer, const strata_host *host,
                                                      strata_kernel **kernel, size_t *wg)
{
	for (size_t size = ACTIVATION_SOFTMAX_WG; size >= 1; size /= 2) {
		char options[32];
		snprintf(options, sizeof(options), "-DSOFTMAX_WG=%zu", size);
		strata_kernel *k = host->kernel(layer, "core", "softmax_rows", options);
		if (!k)
			return host->last_status(layer);
		if (host->max_work_group_size(layer, k) >= size) {
			*kernel = k;
			*wg = size;
			return STRATA_OK;
		}
	}
	return host->fail(layer, STRATA_ERR_UNSUPPORTED, "the device runs no softmax_rows work-group");
}

/* x[rows, cols] = act(x + bias[col]) in place on the device; `bias` may be NULL. */
static inline strata_status activation_apply(strata_layer *layer, const strata_host *host, strata_tensor *x,
                                             strata_tensor *bias, size_t rows, size_t cols, int code)
{
	if (code < 0 || code >= ACTIVATION_COUNT)
		return host->fail(layer, STRATA_ERR_INVALID, "unknown activation code %d", code);
	if (rows == 0 || cols == 0)
		return STRATA_OK;
	if (cols > INT_MAX || rows > INT_MAX / cols)
		return host->fail(layer, STRATA_ERR_OVERFLOW, "%zu x %zu activations exceed the kernels' int "
		                  "indexing: lower the batch size", rows, cols);
	bool elementwise = code == ACTIVATION_RELU || code == ACTIVATION_SIGMOID || code == ACTIVATION_TANH;
	if (bias || elementwise) {
		strata_kernel *k = host->kernel(layer, "core", "bias_activation", NULL);
		if (!k)
			return host->last_status(layer);
		/* Without a bias the kernel never reads its bias argument; any valid buffer will do. */
		strata_arg args[] = {
			strata_arg_tensor(x), strata_arg_tensor(bias ? bias : x),
			strata_arg_int((int32_t)rows), strata_arg_int((int32_t)cols),
			strata_arg_int(bias != NULL), strata_arg_int(code),
		};
		size_t global = rows * cols;
		uint32_t n_args = (uint32_t)(sizeof(args) / sizeof(args[0]));
		strata_status st = host->launch(layer, k, 1, &global, NULL, n_args, args);
		if (st != STRATA_OK)
			return st;
	}
	if (code == ACTIVATION_SOFTMAX) {
		strata_kernel *k = NULL;
		size_t wg = 0;
		strata_status st = activation_softmax_kernel(layer, host, &k, &wg);
		if (st != STRATA_OK)
			return st;
		strata_arg args[] = {
			strata_arg_tensor(x), strata_arg_int((int32_t)rows), strata_arg_int((int32_t)cols),
		};
		size_t global = rows * wg;
		return host->launch(layer, k, 1, &global, &wg, sizeof(args) / sizeof(args[0]), args);
	}
	return STRATA_OK;
}

#endif
