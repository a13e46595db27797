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

/* The plugins' codes of the activations; the order of the names below is the code. Keras 3's
 * activations by Keras' names (plugin.h lists what each computes). */
enum activation_code {
	ACTIVATION_LINEAR = 0,
	ACTIVATION_RELU = 1,
	ACTIVATION_SIGMOID = 2,
	ACTIVATION_TANH = 3,
	ACTIVATION_SOFTMAX = 4,
	ACTIVATION_ELU,
	ACTIVATION_SELU,
	ACTIVATION_GELU,
	ACTIVATION_SWISH,
	ACTIVATION_SILU, /* swish's other name */
	ACTIVATION_SOFTPLUS,
	ACTIVATION_SOFTSIGN,
	ACTIVATION_HARD_SIGMOID,
	ACTIVATION_EXPONENTIAL,
	ACTIVATION_RELU6,
	ACTIVATION_LEAKY_RELU,
	ACTIVATION_HARD_SILU,
	ACTIVATION_HARD_SWISH, /* hard_silu's other name */
	ACTIVATION_MISH,
	ACTIVATION_LOG_SOFTMAX, /* issue 16: row-wise, as softmax */
	ACTIVATION_COUNT
};

static const char *const activation_names[ACTIVATION_COUNT] = {
	"linear", "relu", "sigmoid", "tanh", "softmax", "elu", "selu", "gelu", "swish", "silu", "softplus",
	"softsign", "hard_sigmoid", "exponential", "relu6", "leaky_relu", "hard_silu", "hard_swish", "mish",
	"log_softmax",
};

/* The ENUM choices for an `activation` parameter, in code order. */
#define ACTIVATION_CHOICES                                                                               \
	"linear|relu|sigmoid|tanh|softmax|elu|selu|gelu|swish|silu|softplus|softsign|hard_sigmoid|exponential|" \
	"relu6|leaky_relu|hard_silu|hard_swish|mish|log_softmax"

/* The code of `name`, or -1 when it names no activation (the loader has already checked the
 * value against ACTIVATION_CHOICES, so -1 means the two lists disagree). */
static inline int activation_code(const char *name)
{
	for (int i = 0; i < ACTIVATION_COUNT; i++)
		if (name && strcmp(name, activation_names[i]) == 0)
			return i;
	return -1;
}

/* Whether the derivative of activation `code` needs its input: it is no function of the output
 * (gelu, swish, hard_silu, mish), so a layer that fuses it keeps the input (activation_fused). */
static inline bool activation_needs_input(int code)
{
	return code == ACTIVATION_GELU || code == ACTIVATION_SWISH || code == ACTIVATION_SILU ||
	       code == ACTIVATION_HARD_SILU || code == ACTIVATION_HARD_SWISH || code == ACTIVATION_MISH;
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

/* dz[rows, cols] = dy * act'(x + bias) from the activation's input x, for every activation but
 * softmax (host->activation_backward_input). dz may be dy. */
static inline strata_status activation_backward_from_input(strata_layer *layer, const strata_host *host,
                                                           strata_tensor *dz, strata_tensor *dy, strata_tensor *x,
                                                           strata_tensor *bias, size_t rows, size_t cols, int code)
{
	if (!STRATA_HOST_HAS(host, activation_backward_input))
		return host->fail(layer, STRATA_ERR_UNSUPPORTED, "the host has no activation_backward_input service "
		                  "(added in 0.4): use a newer Strata");
	const char *name = activation_name(layer, host, code);
	if (!name)
		return STRATA_ERR_INVALID;
	return host->activation_backward_input(layer, name, dz, dy, x, bias, rows, cols);
}

/* A layer's fused activation (the `activation` parameter of dense, conv2d, ...): y = act(z + bias)
 * in place over the layer's [rows, cols] result z. When the derivative needs the input
 * (activation_needs_input), the forward pass keeps z + bias in a workspace of the layer, which the
 * backward pass reads; its contents last from a forward call to the backward call that follows
 * it (strata_backward_kept): when the host says they did not, the layer runs its forward pass
 * again first (activation_fused_stale), which writes the same output bits. */
typedef struct activation_fused {
	int code;
	bool keeps_input; /* activation_needs_input(code): `input` holds z + bias */
	uint32_t input;   /* the workspace index */
} activation_fused;

/* During build(): the activation named by parameter `param` and, when its derivative needs it,
 * the workspace of `floats_per_sample` floats for its input. */
static inline strata_status activation_fused_declare(strata_layer *layer, const strata_host *host, const char *param,
                                                     size_t floats_per_sample, activation_fused *f)
{
	f->code = activation_code(host->param_string(layer, param));
	if (f->code < 0)
		return host->fail_param(layer, param, STRATA_ERR_INVALID, "unknown activation '%s'",
		                        host->param_string(layer, param));
	f->keeps_input = activation_needs_input(f->code);
	f->input = 0;
	if (!f->keeps_input)
		return STRATA_OK;
	if (floats_per_sample > SIZE_MAX / sizeof(float))
		return host->fail(layer, STRATA_ERR_OVERFLOW, "the activation's input is too large");
	return host->add_workspace(layer, floats_per_sample * sizeof(float), &f->input);
}

/* y[rows, cols] = act(y + bias) in place (bias may be NULL), keeping y + bias when needed. */
static inline strata_status activation_fused_forward(strata_layer *layer, const strata_host *host,
                                                     const activation_fused *f, strata_tensor *y, strata_tensor *bias,
                                                     size_t rows, size_t cols)
{
	if (!f->keeps_input)
		return activation_apply(layer, host, y, y, bias, rows, cols, f->code);
	strata_tensor *x = host->workspace(layer, f->input);
	strata_status st = activation_apply(layer, host, x, y, bias, rows, cols, ACTIVATION_LINEAR);
	if (st != STRATA_OK)
		return st;
	return activation_apply(layer, host, y, x, NULL, rows, cols, f->code);
}

/* A layer's GEMM g (C = its output, whole rows) with its bias (NULL: none) and activation f: in
 * one pass where the host fuses them (gemm_bias_activation, 0.5: its CPU GEMM's epilogue), else
 * the GEMM and then activation_fused_forward; the same numbers either way. An activation whose
 * input is kept goes the second way (the kept input is the GEMM's output plus the bias). */
static inline strata_status activation_fused_gemm(strata_layer *layer, const strata_host *host,
                                                  const activation_fused *f, const strata_gemm *g, strata_tensor *bias)
{
	if (!f->keeps_input && STRATA_HOST_HAS(host, gemm_bias_activation)) {
		const char *name = activation_name(layer, host, f->code);
		return name ? host->gemm_bias_activation(layer, g, bias, name) : STRATA_ERR_INVALID;
	}
	strata_status st = host->gemm(layer, g);
	return st != STRATA_OK ? st : activation_fused_forward(layer, host, f, g->c, bias, g->m, g->n);
}

/* Whether the backward pass must run the forward pass again before activation_fused_backward: the
 * kept input is gone. */
static inline bool activation_fused_stale(const activation_fused *f, const strata_backward_args *args)
{
	return f->keeps_input && !strata_backward_kept(args);
}

/* The forward call that a backward call differentiates, for a layer that must run it again
 * (activation_fused_stale): same batch, mode, seed, step, inputs and output tensor. */
static inline strata_forward_args activation_forward_again(const strata_backward_args *args)
{
	strata_tensor *input = strata_backward_input(args, 0);
	bool has_inputs = STRATA_ARGS_HAS(args, strata_backward_args, n_inputs) && args->inputs;
	return (strata_forward_args){
		.size = sizeof(strata_forward_args),
		.batch = args->batch,
		.training = strata_backward_training(args),
		.seed = args->seed,
		.step = args->step,
		.input = input,
		.output = args->output,
		.inputs = has_inputs ? args->inputs : NULL,
		.n_inputs = has_inputs ? args->n_inputs : (input ? 1u : 0u),
		.frozen = strata_backward_frozen(args),
	};
}

/* dz[rows, cols] = dLoss/dPreactivation from dy and the output y (or the kept input); dz may be
 * dy. `folded`: dy already is (the loss fused a softmax). */
static inline strata_status activation_fused_backward(strata_layer *layer, const strata_host *host,
                                                      const activation_fused *f, strata_tensor *dz, strata_tensor *dy,
                                                      strata_tensor *y, size_t rows, size_t cols, bool folded)
{
	if (f->keeps_input && !folded)
		return activation_backward_from_input(layer, host, dz, dy, host->workspace(layer, f->input), NULL, rows,
		                                      cols, f->code);
	return activation_backward(layer, host, dz, dy, y, rows, cols, f->code, folded);
}

#endif
