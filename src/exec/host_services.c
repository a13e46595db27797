/* The runtime's shared kernels as declared services of the host table (plugin.h: activation
 * forward and backward, the bias gradient's column sums, copy, fill): the only code that knows
 * the names, argument orders and -D options of cl/core.cl's layer kernels, so plugins need not.
 * Each launch goes through device/launch.c under the layer's name, as host->launch does, and
 * every failure is the layer's error, worded as host->fail words it. */
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "device/runtime.h"
#include "exec/host_api.h"
#include "exec/session.h"

/* Rows of dz a work-item of the bias gradient's sums adds before it stores a partial sum, when
 * the caller's scratch has room (plugin.h: ceil(rows / 64) * cols floats). */
#define COLSUM_ROWS 64u

/* The activations by Keras' name; the index is cl/core.cl's code (ACT_LINEAR ... ACT_MISH). */
enum {
	ACT_LINEAR, ACT_RELU, ACT_SIGMOID, ACT_TANH, ACT_SOFTMAX, ACT_ELU, ACT_SELU, ACT_GELU, ACT_SWISH, ACT_SOFTPLUS,
	ACT_SOFTSIGN, ACT_HARD_SIGMOID, ACT_EXPONENTIAL, ACT_RELU6, ACT_LEAKY_RELU, ACT_HARD_SILU, ACT_MISH,
	ACT_LOG_SOFTMAX, ACT_COUNT
};
static const char *const act_names[ACT_COUNT] = {
	"linear", "relu", "sigmoid", "tanh", "softmax", "elu", "selu", "gelu", "swish", "softplus", "softsign",
	"hard_sigmoid", "exponential", "relu6", "leaky_relu", "hard_silu", "mish", "log_softmax",
};

/* Keras' other names of the same functions. */
static const struct {
	const char *name;
	int code;
} act_aliases[] = {{"silu", ACT_SWISH}, {"hard_swish", ACT_HARD_SILU}};

/* Whose derivative is no function of the output: activation_backward_input only. */
static bool act_needs_input(int code)
{
	return code == ACT_GELU || code == ACT_SWISH || code == ACT_HARD_SILU || code == ACT_MISH;
}

strata_status st_layer_vfail(strata_layer *layer, st_pos pos, strata_status status, const char *fmt, va_list ap)
{
	layer->last_status = status;
	if (!layer->err)
		return status;
	char msg[STRATA_ERROR_MAX / 2];
	vsnprintf(msg, sizeof(msg), fmt, ap);
	return st_fail(layer->err, status, "%s:%u:%u: %s: %s", layer->model->file, pos.line, pos.col, layer->name,
	               msg);
}

strata_status st_layer_fail(strata_layer *layer, strata_status status, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	strata_status st = st_layer_vfail(layer, layer->pos, status, fmt, ap);
	va_end(ap);
	return st;
}

/* What every service checks first: a layer bound to a session. */
static strata_status need_session(strata_layer *layer, const char *service)
{
	if (!layer)
		return STRATA_ERR_PLUGIN;
	if (!layer->session)
		return st_layer_fail(layer, STRATA_ERR_PLUGIN, "%s() called outside a session", service);
	return STRATA_OK;
}

/* The code of activation `name` (NULL is linear). */
static strata_status act_code(strata_layer *layer, const char *service, const char *name, int *code)
{
	*code = ACT_LINEAR;
	if (!name)
		return STRATA_OK;
	for (int i = 0; i < ACT_COUNT; i++)
		if (strcmp(name, act_names[i]) == 0) {
			*code = i;
			return STRATA_OK;
		}
	for (size_t i = 0; i < sizeof(act_aliases) / sizeof(act_aliases[0]); i++)
		if (strcmp(name, act_aliases[i].name) == 0) {
			*code = act_aliases[i].code;
			return STRATA_OK;
		}
	char known[256];
	size_t o = 0;
	for (int i = 0; i < ACT_COUNT && o < sizeof(known); i++)
		o += (size_t)snprintf(known + o, sizeof(known) - o, "%s%s", i ? ", " : "", act_names[i]);
	return st_layer_fail(layer, STRATA_ERR_INVALID, "%s(): unknown activation '%s' (known: %s)", service, name, known);
}

/* The kernels index with int: rows * cols elements must fit. */
static strata_status check_matrix(strata_layer *layer, size_t rows, size_t cols)
{
	if (cols > INT_MAX || (cols != 0 && rows > INT_MAX / cols))
		return st_layer_fail(layer, STRATA_ERR_OVERFLOW, "%zu x %zu activations exceed the kernels' int indexing: lower "
		            "the batch size", rows, cols);
	return STRATA_OK;
}

/* Tensor `what` of a service holds at least `floats` floats. */
static strata_status check_tensor(strata_layer *layer, const char *service, const char *what, const strata_tensor *t,
                                  size_t floats)
{
	if (!t)
		return st_layer_fail(layer, STRATA_ERR_PLUGIN, "%s(): %s is NULL", service, what);
	if (t->bytes / sizeof(float) < floats)
		return st_layer_fail(layer, STRATA_ERR_PLUGIN, "%s(): %s holds %zu floats, %zu needed", service, what,
		            t->bytes / sizeof(float), floats);
	return STRATA_OK;
}

static strata_status get_kernel(strata_layer *layer, const char *name, const char *options, strata_kernel **k)
{
	return layer->last_status = st_kernel_get(layer->session->rt, "core", name, options, k, layer->err);
}

static strata_status launch(strata_layer *layer, strata_kernel *k, uint32_t work_dim, const size_t *global,
                            const size_t *local, uint32_t n_args, const strata_arg *args)
{
	return layer->last_status =
		st_launch(layer->session->rt, layer->name, k, work_dim, global, local, n_args, args, layer->err);
}

/* A 2-D launch over (g0, g1) with a work-group of about the session's "wg" work-items within
 * what the device runs for k: all of dimension 0 when it fits, so a group covers whole rows. */
static strata_status launch_2d(strata_layer *layer, strata_kernel *k, size_t g0, size_t g1, uint32_t n_args,
                               const strata_arg *args)
{
	size_t wg = k->max_work_group_size, want = layer->session->tunables.v[ST_TUNABLE_WG];
	if (wg == 0 || wg > want)
		wg = wg == 0 ? 1 : want;
	size_t global[2] = {g0, g1}, local[2];
	local[0] = g0 < wg ? (g0 ? g0 : 1) : wg;
	local[1] = wg / local[0];
	if (local[1] > g1)
		local[1] = g1 ? g1 : 1;
	return launch(layer, k, 2, global, local, n_args, args);
}

/* A row-wise softmax kernel (one work-group reduces one row in local memory), built with
 * -DSOFTMAX_WG=N for the largest power of two N up to the session's "softmax_wg" that the device
 * runs in one work-group of it, and launched over `rows` rows. */
static strata_status launch_rows(strata_layer *layer, const char *name, size_t rows, uint32_t n_args,
                                 const strata_arg *args)
{
	for (size_t wg = layer->session->tunables.v[ST_TUNABLE_SOFTMAX_WG]; wg >= 1; wg /= 2) {
		char options[64];
		snprintf(options, sizeof(options), "-DSOFTMAX_WG=%zu", wg);
		strata_kernel *k = NULL;
		strata_status st = get_kernel(layer, name, options, &k);
		if (st != STRATA_OK)
			return st;
		if (k->max_work_group_size >= wg) {
			size_t global = rows * wg;
			return launch(layer, k, 1, &global, &wg, n_args, args);
		}
	}
	return st_layer_fail(layer, STRATA_ERR_UNSUPPORTED, "the device runs no %s work-group", name);
}

/* The elementwise kernels of an activation are built for it (-DACT=code): a branch on a kernel
 * argument kept PoCL from vectorizing them (cl/core.cl). */
static const char *act_options(char *buf, size_t size, int code)
{
	snprintf(buf, size, "-DACT=%d", code);
	return buf;
}

strata_status st_host_copy(strata_layer *layer, strata_tensor *dst, strata_tensor *src, size_t n)
{
	strata_status st = need_session(layer, "copy");
	if (st != STRATA_OK || n == 0)
		return st;
	if (n > INT_MAX)
		return st_layer_fail(layer, STRATA_ERR_OVERFLOW, "copying %zu values exceeds the kernels' int indexing: lower the "
		            "batch size", n);
	strata_kernel *k = NULL;
	if ((st = check_tensor(layer, "copy", "dst", dst, n)) || (st = check_tensor(layer, "copy", "src", src, n)) ||
	    (st = get_kernel(layer, "copy", NULL, &k)))
		return st;
	strata_arg args[] = {strata_arg_tensor(dst), strata_arg_tensor(src), strata_arg_int((int32_t)n)};
	return launch(layer, k, 1, &n, NULL, 3, args);
}

strata_status st_host_fill(strata_layer *layer, strata_tensor *dst, float value, size_t n)
{
	strata_status st = need_session(layer, "fill");
	if (st != STRATA_OK || n == 0)
		return st;
	if (n > INT_MAX)
		return st_layer_fail(layer, STRATA_ERR_OVERFLOW, "filling %zu values exceeds the kernels' int indexing: lower the "
		            "batch size", n);
	strata_kernel *k = NULL;
	if ((st = check_tensor(layer, "fill", "dst", dst, n)) || (st = get_kernel(layer, "fill", NULL, &k)))
		return st;
	strata_arg args[] = {strata_arg_tensor(dst), strata_arg_float(value), strata_arg_int((int32_t)n)};
	return launch(layer, k, 1, &n, NULL, 3, args);
}

strata_status st_host_activation_forward(strata_layer *layer, const char *activation, strata_tensor *y,
                                         strata_tensor *x, strata_tensor *bias, size_t rows, size_t cols)
{
	static const char service[] = "activation_forward";
	int code;
	strata_status st = need_session(layer, service);
	if (st || (st = act_code(layer, service, activation, &code)) || (st = check_matrix(layer, rows, cols)) ||
	    rows == 0 || cols == 0)
		return st;
	if ((st = check_tensor(layer, service, "y", y, rows * cols)) ||
	    (st = check_tensor(layer, service, "x", x, rows * cols)) ||
	    (bias && (st = check_tensor(layer, service, "bias", bias, cols))))
		return st;
	bool elementwise = code != ACT_LINEAR && code != ACT_SOFTMAX && code != ACT_LOG_SOFTMAX;
	if (bias || elementwise) {
		/* The activation is built into the kernel; softmax's bias pass is linear. */
		char options[32];
		strata_kernel *k = NULL;
		if ((st = get_kernel(layer, "bias_activation",
		                     act_options(options, sizeof(options), elementwise ? code : ACT_LINEAR), &k)))
			return st;
		/* Without a bias the kernel never reads its bias argument; any valid buffer will do. */
		strata_arg args[] = {
			strata_arg_tensor(y), strata_arg_tensor(x), strata_arg_tensor(bias ? bias : x),
			strata_arg_int((int32_t)rows), strata_arg_int((int32_t)cols), strata_arg_int(bias != NULL),
		};
		if ((st = launch_2d(layer, k, cols, rows, 6, args)))
			return st;
		x = y; /* what remains (softmax, log_softmax) works on the biased values */
	}
	if (code == ACT_SOFTMAX || code == ACT_LOG_SOFTMAX) {
		strata_arg args[] = {
			strata_arg_tensor(y), strata_arg_tensor(x), strata_arg_int((int32_t)rows), strata_arg_int((int32_t)cols),
		};
		return launch_rows(layer, code == ACT_SOFTMAX ? "softmax_rows" : "log_softmax_rows", rows, 4, args);
	}
	return x != y ? st_host_copy(layer, y, x, rows * cols) : STRATA_OK;
}

strata_status st_host_activation_backward(strata_layer *layer, const char *activation, strata_tensor *dz,
                                          strata_tensor *dy, strata_tensor *y, size_t rows, size_t cols)
{
	static const char service[] = "activation_backward";
	int code;
	strata_status st = need_session(layer, service);
	if (st || (st = act_code(layer, service, activation, &code)) || (st = check_matrix(layer, rows, cols)) ||
	    rows == 0 || cols == 0)
		return st;
	size_t n = rows * cols;
	if ((st = check_tensor(layer, service, "dz", dz, n)) || (st = check_tensor(layer, service, "dy", dy, n)))
		return st;
	if (code == ACT_LINEAR)
		return dz == dy ? STRATA_OK : st_host_copy(layer, dz, dy, n);
	if (act_needs_input(code))
		return st_layer_fail(layer, STRATA_ERR_INVALID, "%s(): the derivative of %s is no function of its output; "
		                     "use activation_backward_input() with the activation's input", service, activation);
	if ((st = check_tensor(layer, service, "y", y, n)))
		return st;
	if (code == ACT_SOFTMAX || code == ACT_LOG_SOFTMAX) {
		strata_arg args[] = {
			strata_arg_tensor(dz), strata_arg_tensor(dy), strata_arg_tensor(y), strata_arg_int((int32_t)rows),
			strata_arg_int((int32_t)cols),
		};
		return launch_rows(layer, code == ACT_SOFTMAX ? "softmax_backward_rows" : "log_softmax_backward_rows", rows,
		                   5, args);
	}
	char options[32];
	strata_kernel *k = NULL;
	if ((st = get_kernel(layer, "activation_backward", act_options(options, sizeof(options), code), &k)))
		return st;
	strata_arg args[] = {
		strata_arg_tensor(dz), strata_arg_tensor(dy), strata_arg_tensor(y), strata_arg_int((int32_t)n),
	};
	return launch(layer, k, 1, &n, NULL, 4, args);
}

strata_status st_host_activation_backward_input(strata_layer *layer, const char *activation, strata_tensor *dz,
                                                strata_tensor *dy, strata_tensor *x, strata_tensor *bias, size_t rows,
                                                size_t cols)
{
	static const char service[] = "activation_backward_input";
	int code;
	strata_status st = need_session(layer, service);
	if (st || (st = act_code(layer, service, activation, &code)) || (st = check_matrix(layer, rows, cols)) ||
	    rows == 0 || cols == 0)
		return st;
	if (code == ACT_SOFTMAX || code == ACT_LOG_SOFTMAX)
		return st_layer_fail(layer, STRATA_ERR_INVALID, "%s(): %s's derivative is taken from its output: use "
		                     "activation_backward()", service, act_names[code]);
	size_t n = rows * cols;
	if ((st = check_tensor(layer, service, "dz", dz, n)) || (st = check_tensor(layer, service, "dy", dy, n)) ||
	    (st = check_tensor(layer, service, "x", x, n)) ||
	    (bias && (st = check_tensor(layer, service, "bias", bias, cols))))
		return st;
	if (code == ACT_LINEAR)
		return dz == dy ? STRATA_OK : st_host_copy(layer, dz, dy, n);
	char options[32];
	strata_kernel *k = NULL;
	if ((st = get_kernel(layer, "activation_backward_input", act_options(options, sizeof(options), code), &k)))
		return st;
	/* Without a bias the kernel never reads its bias argument; any valid buffer will do. */
	strata_arg args[] = {
		strata_arg_tensor(dz), strata_arg_tensor(dy), strata_arg_tensor(x), strata_arg_tensor(bias ? bias : x),
		strata_arg_int((int32_t)rows), strata_arg_int((int32_t)cols), strata_arg_int(bias != NULL),
	};
	return launch_2d(layer, k, cols, rows, 7, args);
}

/* The largest power of two <= widest that divides len (1 for an odd len). */
static unsigned vector_width(size_t len, size_t widest)
{
	unsigned vw = 1;
	while (vw * 2 <= widest && len % (vw * 2) == 0)
		vw *= 2;
	return vw;
}

strata_status st_host_column_sums(strata_layer *layer, const char *activation, strata_tensor *sums,
                                  strata_tensor *dz, strata_tensor *y, size_t rows, size_t cols,
                                  strata_tensor *scratch, size_t scratch_floats)
{
	static const char service[] = "column_sums";
	int code;
	strata_status st = need_session(layer, service);
	if (st || (st = act_code(layer, service, activation, &code)) || (st = check_matrix(layer, rows, cols)) ||
	    cols == 0)
		return st;
	if ((st = check_tensor(layer, service, "sums", sums, cols)))
		return st;
	if (rows == 0)
		return st_host_fill(layer, sums, 0.0f, cols);
	size_t capacity = scratch_floats / cols; /* blocks of rows the scratch holds */
	if ((st = check_tensor(layer, service, "dz", dz, rows * cols)) ||
	    (code != ACT_LINEAR && (st = check_tensor(layer, service, "y", y, rows * cols))) ||
	    (capacity > 0 && (st = check_tensor(layer, service, "scratch", scratch, capacity * cols))))
		return st;
	/* Softmax's derivative needs whole rows, without scratch the sums need a final dz, and
	 * bias_grad_partials fuses only relu, sigmoid and tanh (the activations tuned for speed): the
	 * derivative runs first, in place. */
	if (code > ACT_TANH || (capacity == 0 && code != ACT_LINEAR)) {
		if ((st = st_host_activation_backward(layer, activation, dz, dz, y, rows, cols)))
			return st;
		code = ACT_LINEAR;
	}
	strata_kernel *k = NULL;
	size_t blocks = rows;
	strata_tensor *partials = dz; /* without scratch every row is a block of its own */
	if (capacity > 0) {
		/* More rows per work-item when the scratch holds fewer blocks than the default gives. */
		size_t per_item = COLSUM_ROWS;
		if ((rows + per_item - 1) / per_item > capacity)
			per_item = (rows + capacity - 1) / capacity;
		blocks = (rows + per_item - 1) / per_item;
		partials = scratch;
		unsigned vw = vector_width(cols, layer->session->tunables.v[ST_TUNABLE_VW]);
		char options[32];
		snprintf(options, sizeof(options), "-DVW=%u", vw);
		if ((st = get_kernel(layer, "bias_grad_partials", options, &k)))
			return st;
		strata_arg args[] = {
			strata_arg_tensor(dz), strata_arg_tensor(y ? y : dz), strata_arg_tensor(scratch),
			strata_arg_int((int32_t)rows), strata_arg_int((int32_t)cols), strata_arg_int((int32_t)per_item),
			strata_arg_int(code),
		};
		if ((st = launch_2d(layer, k, cols / vw, blocks, 7, args)))
			return st;
	}
	if ((st = get_kernel(layer, "column_sums_finish", NULL, &k)))
		return st;
	strata_arg finish[] = {
		strata_arg_tensor(partials), strata_arg_tensor(sums), strata_arg_int((int32_t)blocks),
		strata_arg_int((int32_t)cols),
	};
	return launch(layer, k, 1, &cols, NULL, 4, finish);
}
