/* The recurrent layers of issue 15: simple_rnn (the Elman network), lstm and gru, with Keras'
 * names, defaults, weight layouts and gate orders (LSTM i, f, c, o; GRU z, r, h, reset_after both
 * ways), over an input of (timesteps, features).
 *
 * A sequence runs in few launches: the input projection of every step is one GEMM over all
 * batch x timesteps rows; each step is then one recurrent GEMM (h_prev . recurrent_kernel) and one
 * kernel that adds the biases, applies the gates and writes the state (recurrent.cl; the GRU
 * without reset_after needs a second GEMM and kernel, since its reset gate acts before the
 * candidate's product). Backpropagation through time runs the steps backwards with one kernel and
 * one GEMM each (dh_prev = dPreactivation . recurrent_kernel^T); the weight gradients are then one
 * GEMM each over all steps at once, from the states and preactivation gradients kept per step. */
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <strata/plugin.h>

#include "activation.h"
#include "core.h"
#include "random.h"
#include "recurrent_cl.h"
#include "shape.h"
#include "weights.h"

typedef enum cell_kind { CELL_SIMPLE, CELL_LSTM, CELL_GRU } cell_kind;

/* The activations a recurrent layer takes: those whose derivative is a function of their output
 * (the backward pass reads the kept gate activations), with their codes in cl/core.cl's list, which
 * recurrent.cl's kernels follow. */
#define RNN_ACTIVATIONS "tanh|sigmoid|hard_sigmoid|relu|linear|elu|selu|softplus|softsign|exponential|relu6|leaky_relu"
static const struct {
	const char *name;
	int code;
} rnn_activation_codes[] = {
	{"linear", 0}, {"relu", 1}, {"sigmoid", 2}, {"tanh", 3}, {"elu", 5}, {"selu", 6}, {"softplus", 9},
	{"softsign", 10}, {"hard_sigmoid", 11}, {"exponential", 12}, {"relu6", 13}, {"leaky_relu", 14},
};

typedef struct rnn_plan {
	cell_kind cell;
	int64_t steps, features, units;
	int64_t gates;        /* G: 1, 4 or 3 blocks of units */
	int64_t dg_width;     /* columns of the dg matrix: G*U, or 2*G*U for the GRU with reset_after */
	bool return_sequences, go_backwards, reset_after, has_bias;
	bool input_order;     /* output_in_input_order: step s's state at its time position */
	bool return_state;    /* the output is [sequence or last state, h_T (, c_T)] per sample */
	bool has_init;        /* inputs 1 (and 2): the initial h (and c), Keras' initial_state */
	int64_t states;       /* 1, the LSTM 2: h and c */
	int64_t out_stride;   /* floats of output per sample */
	char options[48];     /* -DACT=.. -DRACT=.. */
	char bias_init[160];  /* LSTM with unit_forget_bias: "X,ones,X,X" */
	uint32_t kernel, recurrent, bias;                  /* weights */
	uint32_t xw, hprev, cache, extra, hu, dh, dc, sums; /* workspaces */
	uint32_t drec;                                      /* workspace: dg . recurrent_kernel^T */
	double rate_in, rate_rec;                           /* dropout, recurrent_dropout */
	uint32_t dmask, xdrop;                              /* with dropout: the input's mask and the dropped input */
	uint32_t rmask, hdrop;                              /* with recurrent_dropout: the state's mask and h_prev dropped */
} rnn_plan;

#define RNN_PARAM_UNITS                                                                              \
	{.name = "units", .type = STRATA_PARAM_INT, .min = 1, .max = 65536, .doc = "size of the state"},  \
	{.name = "activation", .type = STRATA_PARAM_ENUM, .default_value = "tanh", .choices = RNN_ACTIVATIONS, \
	 .doc = "activation of the state (LSTM: of the candidate and of the cell state)"}

#define RNN_PARAM_RECURRENT_ACTIVATION                                                               \
	{.name = "recurrent_activation", .type = STRATA_PARAM_ENUM, .default_value = "sigmoid",          \
	 .choices = RNN_ACTIVATIONS, .doc = "activation of the gates"}

#define RNN_PARAM_WEIGHTS                                                                            \
	{.name = "use_bias", .type = STRATA_PARAM_BOOL, .default_value = "true",                        \
	 .doc = "whether the layer adds bias vectors"},                                                 \
	{.name = "kernel_initializer", .type = STRATA_PARAM_ENUM, .default_value = "glorot_uniform",   \
	 .choices = WEIGHTS_INITIALIZER_CHOICES, .doc = "initializer of the input kernel (features, gates x units)"}, \
	{.name = "recurrent_initializer", .type = STRATA_PARAM_ENUM, .default_value = "orthogonal",     \
	 .choices = WEIGHTS_INITIALIZER_CHOICES, .doc = "initializer of the recurrent kernel (units, gates x units)"}, \
	{.name = "bias_initializer", .type = STRATA_PARAM_ENUM, .default_value = "zeros",              \
	 .choices = WEIGHTS_INITIALIZER_CHOICES, .doc = "initializer of the bias"}

#define RNN_PARAM_REST                                                                               \
	{.name = "kernel_regularizer", .type = STRATA_PARAM_REGULARIZER, .default_value = "null",      \
	 .doc = "l1/l2 penalty on the input kernel, e.g. {l2: 0.01}"},                                \
	{.name = "recurrent_regularizer", .type = STRATA_PARAM_REGULARIZER, .default_value = "null",   \
	 .doc = "l1/l2 penalty on the recurrent kernel"},                                              \
	{.name = "bias_regularizer", .type = STRATA_PARAM_REGULARIZER, .default_value = "null",        \
	 .doc = "l1/l2 penalty on the bias"},                                                          \
	{.name = "kernel_constraint", .type = STRATA_PARAM_CONSTRAINT, .default_value = "null",        \
	 .doc = "applied to the input kernel after every update: max_norm, non_neg"},                \
	{.name = "recurrent_constraint", .type = STRATA_PARAM_CONSTRAINT, .default_value = "null",     \
	 .doc = "applied to the recurrent kernel after every update"},                                 \
	{.name = "bias_constraint", .type = STRATA_PARAM_CONSTRAINT, .default_value = "null",          \
	 .doc = "applied to the bias after every update"},                                             \
	{.name = "dropout", .type = STRATA_PARAM_FLOAT, .default_value = "0", .min = 0, .max = 1,      \
	 .choices = "[)", .doc = "fraction of the input features dropped while training (one mask per sample for every step)"}, \
	{.name = "recurrent_dropout", .type = STRATA_PARAM_FLOAT, .default_value = "0", .min = 0,      \
	 .max = 1, .choices = "[)", .doc = "fraction of the state dropped in the recurrent product while training"}, \
	{.name = "return_sequences", .type = STRATA_PARAM_BOOL, .default_value = "false",              \
	 .doc = "output the state of every step (timesteps, units), not the last one's (units)"},     \
	{.name = "return_state", .type = STRATA_PARAM_BOOL, .default_value = "false",                  \
	 .doc = "also output the final state (LSTM: h and c): read them as NAME_output, NAME_state_h, NAME_state_c"}, \
	{.name = "go_backwards", .type = STRATA_PARAM_BOOL, .default_value = "false",                  \
	 .doc = "run the input backwards; the output sequence is in the order of the steps"},         \
	{.name = "stateful", .type = STRATA_PARAM_UNSUPPORTED, .default_value = "false",               \
	 .doc = "a state carried from one batch to the next is not supported"},                        \
	{.name = "unroll", .type = STRATA_PARAM_BOOL, .default_value = "false",                        \
	 .doc = "no effect (Keras' graph-building choice): every step is one GEMM and one kernel"},    \
	{.name = "seed", .type = STRATA_PARAM_UNSUPPORTED, .default_value = "null",                    \
	 .doc = "dropout follows the run's seed"},                                                     \
	{.name = "output_in_input_order", .type = STRATA_PARAM_BOOL, .default_value = "false",         \
	 .doc = "Strata's (a bidirectional's backward layer): with go_backwards, output the sequence in the input's order"}

static const strata_param simple_params[] = {RNN_PARAM_UNITS, RNN_PARAM_WEIGHTS, RNN_PARAM_REST};

static const strata_param lstm_params[] = {
	RNN_PARAM_UNITS,
	RNN_PARAM_RECURRENT_ACTIVATION,
	RNN_PARAM_WEIGHTS,
	{.name = "unit_forget_bias", .type = STRATA_PARAM_BOOL, .default_value = "true",
	 .doc = "start the forget gate's bias at 1 (and the rest by bias_initializer), as Keras"},
	RNN_PARAM_REST,
};

static const strata_param gru_params[] = {
	RNN_PARAM_UNITS,
	RNN_PARAM_RECURRENT_ACTIVATION,
	RNN_PARAM_WEIGHTS,
	RNN_PARAM_REST,
	{.name = "reset_after", .type = STRATA_PARAM_BOOL, .default_value = "true",
	 .doc = "apply the reset gate after the recurrent product (PyTorch's and cuDNN's GRU; a bias of (2, 3 x units))"},
};

static int rnn_activation(const char *name)
{
	for (size_t i = 0; i < sizeof(rnn_activation_codes) / sizeof(rnn_activation_codes[0]); i++)
		if (name && strcmp(name, rnn_activation_codes[i].name) == 0)
			return rnn_activation_codes[i].code;
	return -1;
}

/* Declares one weight from the layer's `init`, `reg` and `constraint` parameters. */
static strata_status rnn_weight(strata_layer *layer, const strata_host *host, const char *name,
                                const strata_shape *shape, const char *initializer, const char *reg,
                                const char *constraint, uint32_t *index)
{
	strata_weight_desc d = {
		.size = sizeof(d),
		.name = name,
		.shape = *shape,
		.initializer = initializer,
		.constraint = constraint,
	};
	host->param_regularizer(layer, reg, &d.l1, &d.l2);
	return host->add_weight(layer, &d, index);
}

static strata_status rnn_build(strata_layer *layer, const strata_host *host, const strata_shape *in,
                               strata_shape *out, cell_kind cell)
{
	if (in->rank != 2 || in->dtype != STRATA_DTYPE_FLOAT32) {
		char buf[96];
		return host->fail(layer, STRATA_ERR_INVALID, "needs float sequences of (timesteps, features), got %s",
		                  shape_format(in, buf, sizeof(buf)));
	}
	rnn_plan *p = calloc(1, sizeof(*p));
	if (!p)
		return host->fail(layer, STRATA_ERR_NO_MEMORY, "out of memory");
	free(host->get_private(layer));
	host->set_private(layer, p);

	p->cell = cell;
	p->steps = in->dims[0];
	p->features = in->dims[1];
	p->units = host->param_int(layer, "units");
	p->gates = p->cell == CELL_LSTM ? 4 : p->cell == CELL_GRU ? 3 : 1;
	p->reset_after = p->cell == CELL_GRU && host->param_bool(layer, "reset_after");
	p->dg_width = (p->reset_after ? 2 : 1) * p->gates * p->units;
	p->return_sequences = host->param_bool(layer, "return_sequences");
	p->go_backwards = host->param_bool(layer, "go_backwards");
	p->input_order = host->param_bool(layer, "output_in_input_order");
	p->return_state = host->param_bool(layer, "return_state");
	p->states = p->cell == CELL_LSTM ? 2 : 1;
	p->has_bias = host->param_bool(layer, "use_bias");
	p->rate_in = host->param_float(layer, "dropout");
	p->rate_rec = host->param_float(layer, "recurrent_dropout");
	/* Keras' initial_state: the layer's inputs 1 (h0) and, for an LSTM, 2 (c0), (units) each. */
	uint32_t n_in = STRATA_HOST_HAS(host, input_count) ? host->input_count(layer) : 1;
	if (n_in != 1 && n_in != 1 + p->states)
		return host->fail(layer, STRATA_ERR_INVALID, "takes its sequence and, as initial_state, %s: %u inputs given",
		                  p->states == 2 ? "h0 and c0 (3 inputs)" : "h0 (2 inputs)", n_in);
	p->has_init = n_in > 1;
	for (uint32_t i = 1; i < n_in; i++) {
		const strata_shape *s0 = host->input_shape_at(layer, i);
		if (s0->rank != 1 || s0->dims[0] != p->units || s0->dtype != STRATA_DTYPE_FLOAT32) {
			char buf[96];
			return host->fail(layer, STRATA_ERR_INVALID, "initial state %s (input %u) must be (%lld) floats, got %s",
			                  i == 1 ? "h0" : "c0", i, (long long)p->units, shape_format(s0, buf, sizeof(buf)));
		}
	}
	int act = rnn_activation(host->param_string(layer, "activation"));
	int ract = p->cell == CELL_SIMPLE ? 2 : rnn_activation(host->param_string(layer, "recurrent_activation"));
	if (act < 0 || ract < 0)
		return host->fail(layer, STRATA_ERR_PLUGIN, "an activation of the declared choices has no code");
	snprintf(p->options, sizeof(p->options), "-DACT=%d -DRACT=%d", act, ract);

	/* Every index of the kernels is an int: batch x steps x the widest row must fit. */
	int64_t row, all;
	if (p->steps < 1 || p->features < 1 || !shape_mul(p->steps, p->dg_width + p->features, INT32_MAX, &row) ||
	    !shape_mul(p->gates * p->units, p->features > p->units ? p->features : p->units, INT32_MAX, &all))
		return host->fail(layer, STRATA_ERR_OVERFLOW, "%lld steps of %lld features into %lld units are too many",
		                  (long long)p->steps, (long long)p->features, (long long)p->units);

	const int64_t gu = p->gates * p->units;
	strata_shape kshape = {.rank = 2, .dims = {p->features, gu}};
	strata_shape rshape = {.rank = 2, .dims = {p->units, gu}};
	strata_status st = rnn_weight(layer, host, "kernel", &kshape, host->param_string(layer, "kernel_initializer"),
	                              "kernel_regularizer", "kernel_constraint", &p->kernel);
	if (st == STRATA_OK)
		st = rnn_weight(layer, host, "recurrent_kernel", &rshape, host->param_string(layer, "recurrent_initializer"),
		                "recurrent_regularizer", "recurrent_constraint", &p->recurrent);
	if (st == STRATA_OK && p->has_bias) {
		const char *init = host->param_string(layer, "bias_initializer");
		if (p->cell == CELL_LSTM && host->param_bool(layer, "unit_forget_bias")) {
			snprintf(p->bias_init, sizeof(p->bias_init), "%s,ones,%s,%s", init, init, init);
			init = p->bias_init;
		}
		strata_shape bshape = p->reset_after ? (strata_shape){.rank = 2, .dims = {2, gu}}
		                                     : (strata_shape){.rank = 1, .dims = {gu}};
		st = rnn_weight(layer, host, "bias", &bshape, init, "bias_regularizer", "bias_constraint", &p->bias);
	}
	const size_t f = sizeof(float), t = (size_t)p->steps, u = (size_t)p->units;
	if (st == STRATA_OK)
		st = host->add_workspace(layer, t * (size_t)p->dg_width * f, &p->xw);
	if (st == STRATA_OK)
		st = host->add_workspace(layer, t * u * f, &p->hprev);
	if (st == STRATA_OK)
		st = host->add_workspace(layer, t * (size_t)gu * f, &p->cache);
	if (st == STRATA_OK && p->cell != CELL_SIMPLE)
		st = host->add_workspace(layer, t * u * f, &p->extra);
	if (st == STRATA_OK)
		st = host->add_workspace(layer, (size_t)gu * f, &p->hu);
	if (st == STRATA_OK)
		st = host->add_workspace(layer, u * f, &p->dh);
	if (st == STRATA_OK && p->cell == CELL_LSTM)
		st = host->add_workspace(layer, u * f, &p->dc);
	if (st == STRATA_OK && p->has_bias)
		st = host->add_workspace(layer, activation_sum_blocks(t) * (size_t)p->dg_width * f, &p->sums);
	if (st == STRATA_OK)
		st = host->add_workspace(layer, u * f, &p->drec);
	if (st == STRATA_OK && p->rate_in > 0.0)
		st = host->add_workspace(layer, (size_t)p->features * f, &p->dmask);
	if (st == STRATA_OK && p->rate_in > 0.0)
		st = host->add_workspace(layer, t * (size_t)p->features * f, &p->xdrop);
	if (st == STRATA_OK && p->rate_rec > 0.0)
		st = host->add_workspace(layer, u * f, &p->rmask);
	if (st == STRATA_OK && p->rate_rec > 0.0)
		st = host->add_workspace(layer, t * u * f, &p->hdrop);
	if (st != STRATA_OK)
		return st;

	/* A mask skips padded steps; the sequence out keeps it, the last state does not (nor an output
	 * with the states after it: its parts carry none). */
	bool pass = p->return_sequences && !p->return_state;
	if (STRATA_HOST_HAS(host, mask_declare) &&
	    (st = host->mask_declare(layer, pass ? STRATA_MASK_PASS : STRATA_MASK_CONSUME)) != STRATA_OK)
		return st;
	int64_t out_steps = p->return_sequences ? p->steps : 1;
	p->out_stride = (out_steps + (p->return_state ? p->states : 0)) * p->units;
	*out = (strata_shape){.rank = p->return_sequences && !p->return_state ? 2 : 1, .dtype = STRATA_DTYPE_FLOAT32};
	if (out->rank == 2) {
		out->dims[0] = p->steps;
		out->dims[1] = p->units;
	} else {
		out->dims[0] = p->out_stride;
	}
	return STRATA_OK;
}

/* Input 0's mask (Keras' masking: padded steps skipped), or NULL. */
static strata_tensor *rnn_mask(strata_layer *layer, const strata_host *host)
{
	return STRATA_HOST_HAS(host, mask) ? host->mask(layer, 0) : NULL;
}

/* The time position of step s. */
static int rnn_pos(const rnn_plan *p, int64_t s)
{
	return (int)(p->go_backwards ? p->steps - 1 - s : s);
}

/* Where step s's state goes in the output: its row and rows per sample; -1 when it is not output. */
static int rnn_out_row(const rnn_plan *p, int64_t s)
{
	if (p->return_sequences)
		return p->input_order ? rnn_pos(p, s) : (int)s;
	return s == p->steps - 1 ? 0 : -1;
}

/* With return_state, the last step also writes the final state at this row of the output (after
 * the sequence's rows, or the one row of the last state); -1 otherwise. */
static int rnn_state_row(const rnn_plan *p, int64_t s)
{
	return p->return_state && s == p->steps - 1 ? (int)(p->return_sequences ? p->steps : 1) : -1;
}

/* C[m, n] = op(A) op(B) + beta C with the offsets and leading dimensions given. */
static strata_status rnn_gemm(strata_layer *layer, const strata_host *host, bool ta, bool tb, size_t m, size_t n,
                              size_t k, strata_tensor *a, size_t ao, size_t lda, strata_tensor *b, size_t bo,
                              size_t ldb, float beta, strata_tensor *c, size_t co, size_t ldc)
{
	strata_gemm g = {
		.size = sizeof(g), .trans_a = ta, .trans_b = tb, .m = m, .n = n, .k = k, .alpha = 1.0f, .beta = beta,
		.a = a, .a_offset = ao, .lda = lda, .b = b, .b_offset = bo, .ldb = ldb, .c = c, .c_offset = co, .ldc = ldc,
	};
	return host->gemm(layer, &g);
}

/* Launches `name` over (units, batch) with `n` arguments. */
static strata_status rnn_launch(strata_layer *layer, const strata_host *host, const rnn_plan *p, const char *name,
                                uint32_t batch, uint32_t n, const strata_arg *args)
{
	strata_kernel *k = host->kernel(layer, "recurrent", name, p->options);
	if (!k)
		return host->last_status(layer);
	size_t global[2] = {(size_t)p->units, batch};
	return host->launch(layer, k, 2, global, NULL, n, args);
}

/* y = x times the input's dropout mask, per sample and feature, over batch x steps rows. */
static strata_status rnn_apply(strata_layer *layer, const strata_host *host, const rnn_plan *p, strata_tensor *x,
                               strata_tensor *y, strata_tensor *mask, uint32_t batch)
{
	strata_kernel *k = host->kernel(layer, "recurrent", "rnn_apply_mask", p->options);
	if (!k)
		return host->last_status(layer);
	int64_t rows = (int64_t)batch * p->steps;
	strata_arg a[] = {
		strata_arg_tensor(x), strata_arg_tensor(y), strata_arg_tensor(mask), strata_arg_int((int32_t)p->features),
		strata_arg_int((int32_t)rows), strata_arg_int((int32_t)p->steps),
	};
	size_t global[2] = {(size_t)p->features, (size_t)rows};
	return host->launch(layer, k, 2, global, NULL, sizeof(a) / sizeof(a[0]), a);
}

#define ARGS(...) (sizeof((strata_arg[]){__VA_ARGS__}) / sizeof(strata_arg)), (strata_arg[]){__VA_ARGS__}
#define T(x) strata_arg_tensor(x)
#define I(x) strata_arg_int((int32_t)(x))

/* The tensors dropout adds to a pass: the input the projection reads (dropped or as it came),
 * h_prev as the recurrent product reads it (dropped, or hprev itself) and the state's mask. */
typedef struct rnn_drop {
	bool in, rec;
	strata_tensor *x, *hdrop, *rmask, *dmask;
} rnn_drop;

/* Draws the pass's dropout masks (Keras 3: one per sample, the same for every step) and the
 * dropped input, from the run's seed and step: the backward pass draws the same again. */
static strata_status rnn_dropout(strata_layer *layer, const strata_host *host, const rnn_plan *p, bool training,
                                 uint64_t seed, uint64_t step, uint64_t first, uint32_t batch, strata_tensor *input,
                                 rnn_drop *d, bool draw)
{
	d->in = training && p->rate_in > 0.0;
	d->rec = training && p->rate_rec > 0.0;
	d->x = d->in ? host->workspace(layer, p->xdrop) : input;
	d->dmask = d->in ? host->workspace(layer, p->dmask) : NULL;
	d->hdrop = d->rec ? host->workspace(layer, p->hdrop) : host->workspace(layer, p->hprev);
	d->rmask = d->rec ? host->workspace(layer, p->rmask) : d->hdrop; /* a placeholder, not read */
	random_stream rs = random_stream_of(layer, host, seed, step);
	strata_status st = STRATA_OK;
	for (int lane = 0; lane < 2 && draw && st == STRATA_OK; lane++) {
		double rate = lane ? p->rate_rec : p->rate_in;
		if (!(lane ? d->rec : d->in))
			continue;
		double th = ldexp(rate, 32);
		int n = (int)(lane ? p->units : p->features);
		strata_arg a[] = {
			strata_arg_tensor(lane ? d->rmask : d->dmask), strata_arg_int(n), strata_arg_int((int32_t)batch),
			strata_arg_uint((uint32_t)lane), strata_arg_uint(th >= 4294967295.0 ? UINT32_MAX : (uint32_t)th),
			strata_arg_float((float)(1.0 / (1.0 - rate))), strata_arg_uint(rs.key_lo), strata_arg_uint(rs.key_hi),
			strata_arg_uint(rs.step_lo), strata_arg_uint(rs.step_hi), strata_arg_uint((uint32_t)first),
		};
		strata_kernel *k = host->kernel(layer, "recurrent", "rnn_dropout_mask", p->options);
		if (!k)
			return host->last_status(layer);
		size_t global[2] = {(size_t)n, batch};
		st = host->launch(layer, k, 2, global, NULL, sizeof(a) / sizeof(a[0]), a);
	}
	if (st == STRATA_OK && d->in && draw)
		st = rnn_apply(layer, host, p, input, d->x, d->dmask, batch);
	return st;
}

static strata_status rnn_forward(strata_layer *layer, const strata_host *host, const strata_forward_args *args)
{
	const rnn_plan *p = host->get_private(layer);
	const uint32_t batch = args->batch;
	if (batch == 0)
		return STRATA_OK;
	strata_status st = shape_check_batch(layer, host, batch, (size_t)(p->steps * (p->dg_width + p->features)));
	if (st != STRATA_OK)
		return st;
	const size_t b = batch, t = (size_t)p->steps, u = (size_t)p->units, gu = (size_t)(p->gates * p->units);
	const size_t gw = (size_t)p->dg_width;
	strata_tensor *xw = host->workspace(layer, p->xw), *hprev = host->workspace(layer, p->hprev);
	strata_tensor *cache = host->workspace(layer, p->cache), *hu = host->workspace(layer, p->hu);
	strata_tensor *extra = p->cell != CELL_SIMPLE ? host->workspace(layer, p->extra) : NULL;
	strata_tensor *kernel = host->weight(layer, p->kernel), *rec = host->weight(layer, p->recurrent);
	strata_tensor *bias = p->has_bias ? host->weight(layer, p->bias) : xw; /* xw: a placeholder, not read */
	strata_tensor *in = args->input, *out = args->output;
	const int steps = (int)t, units = (int)u;
	strata_tensor *mask = rnn_mask(layer, host);
	const int has_mask = mask != NULL;
	if (!mask)
		mask = xw; /* a placeholder, not read */
	rnn_drop d;
	if ((st = rnn_dropout(layer, host, p, args->training, args->seed, args->step,
	                      strata_forward_sample_offset(args), batch, in, &d, true)) != STRATA_OK)
		return st;
	/* The initial state as the first step's h_prev (c0 read by the LSTM's kernel where prev is -1). */
	strata_tensor *c0 = p->has_init && p->states == 2 ? strata_forward_input(args, 2) : xw;
	if (p->has_init &&
	    (st = rnn_launch(layer, host, p, "rnn_initial", batch,
	                     ARGS(T(strata_forward_input(args, 1)), T(hprev), T(d.hdrop), T(d.rmask), I(d.rec), I(units),
	                          I(batch), I(steps), I(rnn_pos(p, 0))))) != STRATA_OK)
		return st;
	const int out_stride = (int)p->out_stride;

	/* The input projection of every step at once; xw's rows are gw wide (the GRU with reset_after
	 * keeps the backward pass's recurrent half there too). */
	st = rnn_gemm(layer, host, false, false, b * t, gu, (size_t)p->features, d.x, 0, (size_t)p->features, kernel, 0,
	              gu, 0.0f, xw, 0, gw);
	for (int64_t s = 0; s < p->steps && st == STRATA_OK; s++) {
		const int pos = rnn_pos(p, s), first = s == 0 && !p->has_init;
		const int next = s + 1 < p->steps ? rnn_pos(p, s + 1) : -1, prev = s == 0 ? (first ? 0 : -1) : rnn_pos(p, s - 1);
		const int out_row = rnn_out_row(p, s), state_row = rnn_state_row(p, s);
		const bool split = p->cell == CELL_GRU && !p->reset_after;
		if (!first)
			st = rnn_gemm(layer, host, false, false, b, split ? 2 * u : gu, u, d.hdrop, (size_t)pos * u, t * u, rec, 0,
			              gu, 0.0f, hu, 0, gu);
		if (st != STRATA_OK)
			break;
		switch (p->cell) {
		case CELL_SIMPLE:
			st = rnn_launch(layer, host, p, "simple_forward", batch,
			                ARGS(T(xw), T(hu), T(bias), I(p->has_bias), T(hprev), T(cache), T(out), I(units),
			                     I(batch), I(steps), I(pos), I(next), I(out_stride), I(out_row), I(state_row), I(first),
			                     T(mask), I(has_mask), T(d.hdrop), T(d.rmask), I(d.rec)));
			break;
		case CELL_LSTM:
			st = rnn_launch(layer, host, p, "lstm_forward", batch,
			                ARGS(T(xw), T(hu), T(bias), I(p->has_bias), T(hprev), T(cache), T(extra), T(c0), T(out),
			                     I(units), I(batch), I(steps), I(pos), I(prev), I(next), I(out_stride), I(out_row),
			                     I(state_row), I(first), T(mask), I(has_mask), T(d.hdrop), T(d.rmask), I(d.rec)));
			break;
		case CELL_GRU:
			if (p->reset_after) {
				st = rnn_launch(layer, host, p, "gru_forward", batch,
				                ARGS(T(xw), T(hu), T(bias), I(p->has_bias), T(hprev), T(cache), T(extra), T(out),
				                     I(units), I(batch), I(steps), I(pos), I(next), I(out_stride), I(out_row),
				                     I(state_row), I(first), T(mask), I(has_mask), T(d.hdrop), T(d.rmask), I(d.rec)));
				break;
			}
			st = rnn_launch(layer, host, p, "gru_gates", batch,
			                ARGS(T(xw), T(hu), T(bias), I(p->has_bias), T(hprev), T(cache), T(extra), I(units),
			                     I(batch), I(steps), I(pos), I(first), T(d.hdrop), T(d.rmask), I(d.rec)));
			/* (r * h_prev) . U_h into hu's third block */
			if (st == STRATA_OK && !first)
				st = rnn_gemm(layer, host, false, false, b, u, u, extra, (size_t)pos * u, t * u, rec, 2 * u, gu,
				              0.0f, hu, 2 * u, gu);
			if (st == STRATA_OK)
				st = rnn_launch(layer, host, p, "gru_candidate", batch,
				                ARGS(T(xw), T(hu), T(bias), I(p->has_bias), T(hprev), T(cache), T(out), I(units),
				                     I(batch), I(steps), I(pos), I(next), I(out_stride), I(out_row), I(state_row),
				                     I(first), T(mask), I(has_mask), T(d.hdrop), T(d.rmask), I(d.rec)));
			break;
		}
	}
	return st;
}

/* Overwrites every weight gradient with zeros: an empty batch contributes nothing. */
static strata_status rnn_zero_grads(strata_layer *layer, const strata_host *host, const rnn_plan *p)
{
	const size_t gu = (size_t)(p->gates * p->units);
	strata_status st = core_fill(layer, host, host->weight_grad(layer, p->kernel), 0.0f, (size_t)p->features * gu);
	if (st == STRATA_OK)
		st = core_fill(layer, host, host->weight_grad(layer, p->recurrent), 0.0f, (size_t)p->units * gu);
	if (st == STRATA_OK && p->has_bias)
		st = core_fill(layer, host, host->weight_grad(layer, p->bias), 0.0f, (size_t)p->dg_width);
	return st;
}

static strata_status rnn_backward(strata_layer *layer, const strata_host *host, const strata_backward_args *args)
{
	const rnn_plan *p = host->get_private(layer);
	const uint32_t batch = args->batch;
	if (!host->weight_grad(layer, p->kernel))
		return host->fail(layer, STRATA_ERR_INVALID, "no weight gradients: the session is not prepared for training");
	if (batch == 0)
		return rnn_zero_grads(layer, host, p);
	strata_status st;
	if (!strata_backward_kept(args)) {
		/* The gates and states of this batch are gone: compute them again. */
		strata_forward_args again = activation_forward_again(args);
		if ((st = rnn_forward(layer, host, &again)) != STRATA_OK)
			return st;
	}
	const size_t b = batch, t = (size_t)p->steps, u = (size_t)p->units, f = (size_t)p->features;
	const size_t gu = (size_t)(p->gates * p->units), gw = (size_t)p->dg_width;
	strata_tensor *dg = host->workspace(layer, p->xw), *hprev = host->workspace(layer, p->hprev);
	strata_tensor *cache = host->workspace(layer, p->cache), *hu = host->workspace(layer, p->hu);
	strata_tensor *extra = p->cell != CELL_SIMPLE ? host->workspace(layer, p->extra) : NULL;
	strata_tensor *dh = host->workspace(layer, p->dh), *dc = p->cell == CELL_LSTM ? host->workspace(layer, p->dc) : NULL;
	strata_tensor *rec = host->weight(layer, p->recurrent), *dy = args->grad_output;
	const int steps = (int)t, units = (int)u, out_stride = (int)p->out_stride;
	strata_tensor *mask = rnn_mask(layer, host);
	const int has_mask = mask != NULL;
	if (!mask)
		mask = dg; /* a placeholder, not read */
	strata_tensor *c0 = p->has_init && p->states == 2 ? strata_backward_input(args, 2) : dg;

	strata_tensor *drec = host->workspace(layer, p->drec);
	rnn_drop d;
	if ((st = rnn_dropout(layer, host, p, strata_backward_training(args), args->seed, args->step,
	                      strata_backward_sample_offset(args), batch, args->input,
	                      &d, false)) != STRATA_OK)
		return st;
	st = core_fill(layer, host, dh, 0.0f, b * u);
	if (st == STRATA_OK)
		st = core_fill(layer, host, drec, 0.0f, b * u);
	if (st == STRATA_OK && dc)
		st = core_fill(layer, host, dc, 0.0f, b * u);
	for (int64_t s = p->steps - 1; s >= 0 && st == STRATA_OK; s--) {
		const int pos = rnn_pos(p, s), first = s == 0 && !p->has_init;
		const int prev = s == 0 ? (first ? 0 : -1) : rnn_pos(p, s - 1);
		const int out_row = rnn_out_row(p, s), state_row = rnn_state_row(p, s);
		/* The columns of dg whose product with recurrent_kernel^T reaches h_prev, and how many. */
		size_t rec_col = 0, rec_cols = gu;
		switch (p->cell) {
		case CELL_SIMPLE:
			st = rnn_launch(layer, host, p, "simple_backward", batch,
			                ARGS(T(dy), T(dh), T(cache), T(dg), I(units), I(batch), I(steps), I(pos), I(out_stride),
			                     I(out_row), I(state_row), T(mask), I(has_mask), T(drec), T(d.rmask), I(d.rec)));
			break;
		case CELL_LSTM:
			st = rnn_launch(layer, host, p, "lstm_backward", batch,
			                ARGS(T(dy), T(dh), T(dc), T(cache), T(extra), T(c0), T(dg), I(units), I(batch), I(steps),
			                     I(pos), I(prev), I(out_stride), I(out_row), I(state_row), I(first), T(mask), I(has_mask),
			                     T(drec), T(d.rmask), I(d.rec)));
			break;
		case CELL_GRU:
			if (p->reset_after) {
				st = rnn_launch(layer, host, p, "gru_backward", batch,
				                ARGS(T(dy), T(dh), T(hprev), T(cache), T(extra), T(dg), I(units), I(batch),
				                     I(steps), I(pos), I(out_stride), I(out_row), I(state_row), T(mask), I(has_mask),
				                     T(drec), T(d.rmask), I(d.rec)));
				rec_col = gu;
				break;
			}
			st = rnn_launch(layer, host, p, "gru_backward_candidate", batch,
			                ARGS(T(dy), T(dh), T(hprev), T(cache), T(dg), I(units), I(batch), I(steps), I(pos),
			                     I(out_stride), I(out_row), I(state_row), T(mask), I(has_mask), T(drec), T(d.rmask),
			                     I(d.rec)));
			/* d(r * h_prev) = dh~ . U_h^T, into hu */
			if (st == STRATA_OK)
				st = rnn_gemm(layer, host, false, true, b, u, u, dg, (size_t)pos * gw + 2 * u, t * gw, rec, 2 * u, gu,
				              0.0f, hu, 0, u);
			if (st == STRATA_OK)
				st = rnn_launch(layer, host, p, "gru_backward_reset", batch,
				                ARGS(T(hu), T(dh), T(d.hdrop), T(cache), T(dg), I(units), I(batch), I(steps), I(pos),
				                     T(d.rmask), I(d.rec)));
			rec_cols = 2 * u;
			break;
		}
		/* drec = dPreactivation . recurrent_kernel^T, for the step before to add to its dh (times the
		 * state's dropout mask); the first step's h0 is a constant, unless it is an input. */
		if (st == STRATA_OK && !first)
			st = rnn_gemm(layer, host, false, true, b, u, rec_cols, dg, (size_t)pos * gw + rec_col, t * gw, rec, 0, gu,
			              0.0f, drec, 0, u);
	}
	/* The initial states' gradients: h0's what the first step carried back, c0's the LSTM's dc. */
	strata_tensor *gh0 = p->has_init ? strata_backward_grad_input(args, 1) : NULL;
	strata_tensor *gc0 = p->has_init && p->states == 2 ? strata_backward_grad_input(args, 2) : NULL;
	if (st == STRATA_OK && gh0)
		st = rnn_launch(layer, host, p, "rnn_initial_grad", batch,
		                ARGS(T(dh), T(drec), T(d.rmask), I(d.rec), T(gh0), I(units), I(batch)));
	if (st == STRATA_OK && gc0)
		st = core_copy(layer, host, gc0, dc, b * u);
	if (st != STRATA_OK)
		return st;

	/* The weight gradients over all steps at once: recurrent_kernel from the states each step
	 * started from, as the recurrent product read them (dropped with recurrent_dropout; the GRU
	 * without reset_after: r * h_prev for the candidate's block), kernel from the inputs (dropped
	 * with dropout), the bias from the columns of dg. */
	strata_tensor *rec_grad = host->weight_grad(layer, p->recurrent);
	const size_t rows = b * t;
	if (p->cell == CELL_GRU && !p->reset_after) {
		st = rnn_gemm(layer, host, true, false, u, 2 * u, rows, d.hdrop, 0, u, dg, 0, gw, 0.0f, rec_grad, 0, gu);
		if (st == STRATA_OK)
			st = rnn_gemm(layer, host, true, false, u, u, rows, extra, 0, u, dg, 2 * u, gw, 0.0f, rec_grad, 2 * u, gu);
	} else {
		st = rnn_gemm(layer, host, true, false, u, gu, rows, d.hdrop, 0, u, dg, p->reset_after ? gu : 0, gw, 0.0f,
		              rec_grad, 0, gu);
	}
	if (st == STRATA_OK)
		st = rnn_gemm(layer, host, true, false, f, gu, rows, d.x, 0, f, dg, 0, gw, 0.0f,
		              host->weight_grad(layer, p->kernel), 0, gu);
	if (st == STRATA_OK && p->has_bias) {
		CORE_NEED(layer, host, column_sums);
		st = host->column_sums(layer, "linear", host->weight_grad(layer, p->bias), dg, dg, rows, gw,
		                       host->workspace(layer, p->sums), b * activation_sum_blocks(t) * gw);
	}
	if (st == STRATA_OK && args->grad_input)
		st = rnn_gemm(layer, host, false, true, rows, f, gu, dg, 0, gw, host->weight(layer, p->kernel), 0, gu, 0.0f,
		              args->grad_input, 0, f);
	if (st == STRATA_OK && args->grad_input && d.in)
		st = rnn_apply(layer, host, p, args->grad_input, args->grad_input, d.dmask, batch);
	return st;
}

static void rnn_destroy(strata_layer *layer, const strata_host *host)
{
	free(host->get_private(layer));
	host->set_private(layer, NULL);
}

static strata_status simple_build(strata_layer *layer, const strata_host *host, const strata_shape *in,
                                  strata_shape *out)
{
	return rnn_build(layer, host, in, out, CELL_SIMPLE);
}

static strata_status lstm_build(strata_layer *layer, const strata_host *host, const strata_shape *in,
                                strata_shape *out)
{
	return rnn_build(layer, host, in, out, CELL_LSTM);
}

static strata_status gru_build(strata_layer *layer, const strata_host *host, const strata_shape *in,
                               strata_shape *out)
{
	return rnn_build(layer, host, in, out, CELL_GRU);
}

/* ---- rnn_part: one part of a recurrent layer's output with return_state ----------------------
 * The loader puts these after such a layer (model/wrappers.c): NAME_output (the sequence or the
 * last state), NAME_state_h and, for an LSTM, NAME_state_c, each a copy of its stretch of the
 * layer's [output, h_T (, c_T)] per sample; later layers read them, not the layer. */

static const strata_param part_params[] = {
	{.name = "part", .type = STRATA_PARAM_ENUM, .choices = "output|state_h|state_c",
	 .doc = "which part of the recurrent layer's output"},
	{.name = "units", .type = STRATA_PARAM_INT, .min = 1, .max = 65536, .doc = "the recurrent layer's units"},
	{.name = "return_sequences", .type = STRATA_PARAM_BOOL, .default_value = "false",
	 .doc = "whether the recurrent layer returns its sequence: the output part is (timesteps, units)"},
	{.name = "states", .type = STRATA_PARAM_INT, .default_value = "1", .min = 1, .max = 2,
	 .doc = "the states the layer returns: 1 (h), an LSTM's 2 (h and c)"},
};

typedef struct part_plan {
	int64_t len, offset, n; /* floats per sample in and out, and where the part starts */
} part_plan;

static strata_status part_build(strata_layer *layer, const strata_host *host, const strata_shape *in,
                                strata_shape *out)
{
	const char *part = host->param_string(layer, "part");
	int64_t u = host->param_int(layer, "units"), states = host->param_int(layer, "states");
	bool seq = host->param_bool(layer, "return_sequences");
	char buf[96];
	int64_t len = in->rank == 1 ? in->dims[0] : 0, out_len = len - states * u;
	if (in->rank != 1 || in->dtype != STRATA_DTYPE_FLOAT32 || out_len < u || out_len % u != 0 || (!seq && out_len != u))
		return host->fail(layer, STRATA_ERR_INVALID, "reads a recurrent layer's output with return_state (%lld units, "
		                  "%lld states), got %s", (long long)u, (long long)states, shape_format(in, buf, sizeof(buf)));
	part_plan *p = malloc(sizeof(*p));
	if (!p)
		return host->fail(layer, STRATA_ERR_NO_MEMORY, "out of memory");
	free(host->get_private(layer));
	host->set_private(layer, p);
	p->len = len;
	*out = (strata_shape){.rank = 1, .dtype = STRATA_DTYPE_FLOAT32, .dims = {u}};
	if (!strcmp(part, "output")) {
		p->offset = 0;
		p->n = out_len;
		if (seq)
			*out = (strata_shape){.rank = 2, .dtype = STRATA_DTYPE_FLOAT32, .dims = {out_len / u, u}};
	} else if (!strcmp(part, "state_h") || states == 2) {
		p->offset = out_len + (strcmp(part, "state_h") ? u : 0);
		p->n = u;
	} else {
		return host->fail_param(layer, "part", STRATA_ERR_INVALID, "state_c: the layer returns one state (h)");
	}
	return STRATA_OK;
}

static strata_status part_launch(strata_layer *layer, const strata_host *host, const char *name, strata_tensor *a,
                                 strata_tensor *b, size_t width, uint32_t batch)
{
	const part_plan *p = host->get_private(layer);
	strata_kernel *k = host->kernel(layer, "recurrent", name, "-DACT=0 -DRACT=0");
	if (!k)
		return host->last_status(layer);
	strata_arg args[] = {T(a), T(b), I(p->len), I(p->offset), I(p->n), I(batch)};
	size_t global[2] = {width, batch};
	return host->launch(layer, k, 2, global, NULL, 6, args);
}

static strata_status part_forward(strata_layer *layer, const strata_host *host, const strata_forward_args *args)
{
	const part_plan *p = host->get_private(layer);
	strata_status st = shape_check_batch(layer, host, args->batch, (size_t)p->len);
	if (st != STRATA_OK || args->batch == 0)
		return st;
	return part_launch(layer, host, "rnn_part_forward", args->input, args->output, (size_t)p->n, args->batch);
}

static strata_status part_backward(strata_layer *layer, const strata_host *host, const strata_backward_args *args)
{
	const part_plan *p = host->get_private(layer);
	if (!args->grad_input || args->batch == 0)
		return STRATA_OK;
	return part_launch(layer, host, "rnn_part_backward", args->grad_output, args->grad_input, (size_t)p->len,
	                   args->batch);
}

#define RNN_OPS(TYPE, CLASS, PARAMS, BUILD, DOC, INPUTS)                                                    \
	{                                                                                                \
		.size = sizeof(strata_layer_ops), .type = TYPE, .class_name = CLASS, .name_prefix = TYPE,   \
		.doc = DOC, .params = PARAMS, .n_params = sizeof(PARAMS) / sizeof(PARAMS[0]),               \
		.build = BUILD, .forward = rnn_forward, .backward = rnn_backward, .destroy = rnn_destroy, \
		.min_inputs = 1, .max_inputs = INPUTS, .knows_dtypes = true,                                \
	}

static const strata_layer_ops rnn_ops[] = {
	RNN_OPS("simple_rnn", "SimpleRNN", simple_params, simple_build,
	        "the Elman network: h = activation(x kernel + h_prev recurrent_kernel + bias), as Keras' SimpleRNN; "
	        "inputs: the sequence, and h0 as initial_state", 2),
	RNN_OPS("lstm", "LSTM", lstm_params, lstm_build,
	        "long short-term memory, gates i, f, c, o, as Keras' LSTM; inputs: the sequence, and h0, c0 as initial_state", 3),
	RNN_OPS("gru", "GRU", gru_params, gru_build,
	        "gated recurrent unit, gates z, r, h, as Keras' GRU; inputs: the sequence, and h0 as initial_state", 2),
	{
		.size = sizeof(strata_layer_ops), .type = "rnn_part", .class_name = "RNNPart", .name_prefix = "rnn_part",
		.doc = "Strata's: a part of a recurrent layer's output with return_state (the loader adds them)",
		.params = part_params, .n_params = sizeof(part_params) / sizeof(part_params[0]), .build = part_build,
		.forward = part_forward, .backward = part_backward, .destroy = rnn_destroy, .knows_dtypes = true,
	},
};

static strata_status rnn_init(const strata_host *host, strata_registry *reg)
{
	strata_status st = host->register_program(reg, "recurrent", recurrent_cl_source, "");
	for (size_t i = 0; i < sizeof(rnn_ops) / sizeof(rnn_ops[0]) && st == STRATA_OK; i++)
		st = host->register_layer(reg, &rnn_ops[i]);
	return st;
}

static const strata_plugin rnn_plugin = {
	.abi_version = STRATA_PLUGIN_ABI_VERSION,
	.size = sizeof(strata_plugin),
	.name = "recurrent",
	.version = "1.0.0",
	.description = "SimpleRNN, LSTM and GRU: batched input GEMMs, one recurrent GEMM and kernel per step, BPTT",
	.init = rnn_init,
};

STRATA_PLUGIN_DEFINE(rnn_plugin)
