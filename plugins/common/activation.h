/* Activations shared by the layer plugins: the codes they keep, the names the `activation`
 * parameter and the host's services (host->activation_forward, activation_backward and
 * column_sums, plugin.h) take, and thin wrappers of those services. Header-only, so every plugin
 * stays a single self-contained shared object. */
#ifndef PLUGINS_COMMON_ACTIVATION_H
#define PLUGINS_COMMON_ACTIVATION_H

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include <strata/plugin.h>

#include "core.h"
#include "tune.h"

/* The plugins' codes of the activations; the order of the names below is the code. */
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

/* The code of `name`, or -1 when it names no activation (the loader has already checked the
 * value against ACTIVATION_CHOICES, so -1 means the two lists disagree). */
static inline int activation_code(const char *name)
{
	for (int i = 0; i < ACTIVATION_COUNT; i++)
		if (name && strcmp(name, activation_names[i]) == 0)
			return i;
	return -1;
}

/* The host's name of activation `code`, or NULL (with the layer's error) for a code outside the
 * table. */
static inline const char *activation_name(strata_layer *layer, const strata_host *host, int code)
{
	if (code >= 0 && code < ACTIVATION_COUNT)
		return activation_names[code];
	host->fail(layer, STRATA_ERR_INVALID, "unknown activation code %d", code);
	return NULL;
}

/* dst[rows, cols] = act(src + bias[col]) on the device, softmax along each row; `bias` may be
 * NULL and dst may be src (in place). host->activation_forward does the work. */
static inline strata_status activation_apply(strata_layer *layer, const strata_host *host, strata_tensor *dst,
                                             strata_tensor *src, strata_tensor *bias, size_t rows,
                                             size_t cols, int code)
{
	CORE_NEED(layer, host, activation_forward);
	const char *name = activation_name(layer, host, code);
	if (!name)
		return STRATA_ERR_INVALID;
	return host->activation_forward(layer, name, dst, src, bias, rows, cols);
}

/* dz[rows, cols] = dLoss/dPreactivation from dy = dLoss/dy and the activation's output y, on the
 * device: dy * act'(y) elementwise, the softmax Jacobian along each row. dz may be dy (in
 * place); `folded` says dy already is dLoss/dPreactivation (the loss fused the softmax). */
static inline strata_status activation_backward(strata_layer *layer, const strata_host *host,
                                                strata_tensor *dz, strata_tensor *dy, strata_tensor *y,
                                                size_t rows, size_t cols, int code, bool folded)
{
	CORE_NEED(layer, host, activation_backward);
	const char *name = activation_name(layer, host, code);
	if (!name)
		return STRATA_ERR_INVALID;
	return host->activation_backward(layer, folded ? "linear" : name, dz, dy, y, rows, cols);
}

/* Row blocks of TUNE_COLSUM_ROWS rows in `rows` rows: the partial sums activation_backward_sums
 * stores, for sizing its workspace. */
static inline size_t activation_sum_blocks(size_t rows)
{
	return (rows + TUNE_COLSUM_ROWS - 1) / TUNE_COLSUM_ROWS;
}

/* dz[rows, cols] = dLoss/dPreactivation in place from dz = dLoss/dy and the activation's output y,
 * as activation_backward, and sums[cols] = the column sums of the result (a bias gradient):
 * host->column_sums, in one pass over dz that leaves a partial sum per block of rows in
 * `partials`, room for `capacity` blocks of cols floats (activation_sum_blocks(rows) suffice). */
static inline strata_status activation_backward_sums(strata_layer *layer, const strata_host *host,
                                                     strata_tensor *dz, strata_tensor *y, strata_tensor *sums,
                                                     strata_tensor *partials, size_t capacity, size_t rows,
                                                     size_t cols, int code, bool folded)
{
	CORE_NEED(layer, host, column_sums);
	const char *name = activation_name(layer, host, code);
	if (!name)
		return STRATA_ERR_INVALID;
	if (cols != 0 && capacity > SIZE_MAX / cols)
		return host->fail(layer, STRATA_ERR_OVERFLOW, "%zu blocks of %zu partial sums overflow", capacity, cols);
	return host->column_sums(layer, folded ? "linear" : name, sums, dz, y, rows, cols, partials,
	                         capacity * cols);
}

#endif
