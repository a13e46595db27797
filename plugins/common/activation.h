/* Activations shared by the layer plugins and the runtime's "core" kernels (cl/core.cl): the one
 * place where activation names map to the codes the core kernels understand, and the forward
 * and backward launches. Header-only, so every plugin stays a single self-contained shared
 * object. */
#ifndef PLUGINS_COMMON_ACTIVATION_H
#define PLUGINS_COMMON_ACTIVATION_H

#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include <strata/plugin.h>

#include "core.h"
#include "tune.h"

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

/* Work-items per row for the row-wise softmax kernels when the device allows it (their
 * SOFTMAX_WG tunable). */
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

static inline strata_status activation_check(strata_layer *layer, const strata_host *host, size_t rows,
                                             size_t cols, int code)
{
	if (code < 0 || code >= ACTIVATION_COUNT)
		return host->fail(layer, STRATA_ERR_INVALID, "unknown activation code %d", code);
	if (cols > INT_MAX || (cols != 0 && rows > INT_MAX / cols))
		return host->fail(layer, STRATA_ERR_OVERFLOW, "%zu x %zu activations exceed the kernels' int "
		                  "indexing: lower the batch size", rows, cols);
	return STRATA_OK;
}

/* dst[rows, cols] = act(src + bias[col]) on the device, softmax along each row; `bias` may be
 * NULL and dst may be src (in place). */
static inline strata_status activation_apply(strata_layer *layer, const strata_host *host, strata_tensor *dst,
                                             strata_tensor *src, strata_tensor *bias, size_t rows,
                                             size_t cols, int code)
{
	strata_status st = activation_check(layer, host, rows, cols, code);
	if (st != STRATA_OK || rows == 0 || cols == 0)
		return st;
	bool elementwise = code == ACTIVATION_RELU || code == ACTIVATION_SIGMOID || code == ACTIVATION_TANH;
	if (bias || elementwise) {
		/* The activation is built into the kernel (see cl/core.cl); softmax's bias pass is linear. */
		char options[32];
		snprintf(options, sizeof(options), "-DACT=%d", elementwise ? code : ACTIVATION_LINEAR);
		strata_kernel *k = host->kernel(layer, "core", "bias_activation", options);
		if (!k)
			return host->last_status(layer);
		/* Without a bias the kernel never reads its bias argument; any valid buffer will do. */
		strata_arg args[] = {
			strata_arg_tensor(dst), strata_arg_tensor(src), strata_arg_tensor(bias ? bias : src),
			strata_arg_int((int32_t)rows), strata_arg_int((int32_t)cols),
			strata_arg_int(bias != NULL),
		};
		if ((st = tune_launch_2d(layer, host, k, cols, rows, sizeof(args) / sizeof(args[0]), args)))
			return st;
		src = dst; /* what remains (softmax) works on the biased values */
	}
	if (code == ACTIVATION_SOFTMAX) {
		strata_kernel *k = NULL;
		size_t wg = 0;
		st = core_kernel_sized(layer, host, "softmax_rows", "SOFTMAX_WG",
		                       tune_value(layer, host, "softmax_wg", ACTIVATION_SOFTMAX_WG), &k,
		                       &wg);
		if (st != STRATA_OK)
			return st;
		strata_arg args[] = {
			strata_arg_tensor(dst), strata_arg_tensor(src), strata_arg_int((int32_t)rows),
			strata_arg_int((int32_t)cols),
		};
		size_t global = rows * wg;
		return host->launch(layer, k, 1, &global, &wg, sizeof(args) / sizeof(args[0]), args);
	}
	if (src != dst)
		return core_copy(layer, host, dst, src, rows * cols);
	return STRATA_OK;
}

/* dz[rows, cols] = dLoss/dPreactivation from dy = dLoss/dy and the activation's output y, on the
 * device: dy * act'(y) elementwise, the softmax Jacobian along each row. dz may be dy (in
 * place); `folded` says dy already is dLoss/dPreactivation (the loss fused the softmax). */
static inline strata_status activation_backward(strata_layer *layer, const strata_host *host,
                                                strata_tensor *dz, strata_tensor *dy, strata_tensor *y,
                                                size_t rows, size_t cols, int code, bool folded)
{
	strata_status st = activation_check(layer, host, rows, cols, code);
	if (st != STRATA_OK || rows == 0 || cols == 0)
		return st;
	if (folded || code == ACTIVATION_LINEAR)
		return dz == dy ? STRATA_OK : core_copy(layer, host, dz, dy, rows * cols);
	if (code == ACTIVATION_SOFTMAX) {
		strata_kernel *k = NULL;
		size_t wg = 0;
		st = core_kernel_sized(layer, host, "softmax_backward_rows", "SOFTMAX_WG",
		                       tune_value(layer, host, "softmax_wg", ACTIVATION_SOFTMAX_WG), &k, &wg);
		if (st != STRATA_OK)
			return st;
		strata_arg args[] = {
			strata_arg_tensor(dz), strata_arg_tensor(dy), strata_arg_tensor(y),
			strata_arg_int((int32_t)rows), strata_arg_int((int32_t)cols),
		};
		size_t global = rows * wg;
		return host->launch(layer, k, 1, &global, &wg, sizeof(args) / sizeof(args[0]), args);
	}
	char options[32];
	snprintf(options, sizeof(options), "-DACT=%d", code);
	strata_kernel *k = host->kernel(layer, "core", "activation_backward", options);
	if (!k)
		return host->last_status(layer);
	strata_arg args[] = {
		strata_arg_tensor(dz), strata_arg_tensor(dy), strata_arg_tensor(y),
		strata_arg_int((int32_t)(rows * cols)),
	};
	size_t global = rows * cols;
	return host->launch(layer, k, 1, &global, NULL, sizeof(args) / sizeof(args[0]), args);
}

/* Row blocks of TUNE_COLSUM_ROWS rows in `rows` rows: the partial sums activation_backward_sums
 * stores, for sizing its workspace. */
static inline size_t activation_sum_blocks(size_t rows)
{
	return (rows + TUNE_COLSUM_ROWS - 1) / TUNE_COLSUM_ROWS;
}

/* dz[rows, cols] = dLoss/dPreactivation in place from dz = dLoss/dy and the activation's output y,
 * as activation_backward, and sums[cols] = the column sums of the result (a bias gradient). The
 * elementwise derivative and the sums share one pass over dz (bias_grad_partials), which leaves
 * a partial sum per block of rows in `partials`, room for `capacity` blocks of cols floats
 * (activation_sum_blocks(rows) suffice); a second small kernel adds them up. */
static inline strata_status activation_backward_sums(strata_layer *layer, const strata_host *host,
                                                     strata_tensor *dz, strata_tensor *y, strata_tensor *sums,
                                                     strata_tensor *partials, size_t capacity, size_t rows,
                                                     size_t cols, int code, bool folded)
{
	strata_status st = activation_check(layer, host, rows, cols, code);
	if (st != STRATA_OK || cols == 0)
		return st;
	if (rows == 0)
		return core_fill(layer, host, sums, 0.0f, cols);
	if (capacity == 0)
		return host->fail(layer, STRATA_ERR_PLUGIN, "no room for the column sums' partial sums");
	/* Softmax's derivative needs whole rows: it runs first, and the sums see a final dz. */
	int act = folded ? ACTIVATION_LINEAR : code;
	if (act == ACTIVATION_SOFTMAX) {
		if ((st = activation_backward(layer, host, dz, dz, y, rows, cols, code, false)))
			return st;
		act = ACTIVATION_LINEAR;
	}
	/* More rows per work-item when the workspace holds fewer blocks than the default gives. */
	size_t per_item = TUNE_COLSUM_ROWS;
	if ((rows + per_item - 1) / per_item > capacity)
		per_item = (rows + capacity - 1) / capacity;
	size_t blocks = (rows + per_item - 1) / per_item;
	unsigned vw = tune_vector_width(cols, tune_vw(layer, host));
	char options[32];
	strata_kernel *k = host->kernel(layer, "core", "bias_grad_partials",
	                                tune_vw_options(options, sizeof(options), vw));
	if (!k)
		return host->last_status(layer);
	strata_arg args[] = {
		strata_arg_tensor(dz), strata_arg_tensor(y), strata_arg_tensor(partials),
		strata_arg_int((int32_t)rows), strata_arg_int((int32_t)cols),
		strata_arg_int((int32_t)per_item), strata_arg_int(act),
	};
	if ((st = tune_launch_2d(layer, host, k, cols / vw, blocks, sizeof(args) / sizeof(args[0]), args)))
		return st;
	if (!(k = host->kernel(layer, "core", "column_sums_finish", NULL)))
		return host->last_status(layer);
	strata_arg finish[] = {
		strata_arg_tensor(partials), strata_arg_tensor(sums), strata_arg_int((int32_t)blocks),
		strata_arg_int((int32_t)cols),
	};
	return host->launch(layer, k, 1, &cols, NULL, sizeof(finish) / sizeof(finish[0]), finish);
}

#endif
