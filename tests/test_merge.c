/* The merge layers (plugins/merge) and the graph features they need, on the OpenCL device:
 *  - forward: each of the seven types against a host reference, with 2 and 3 inputs (and 10, past
 *    the inputs one kernel launch takes), fed straight from the model's named inputs;
 *  - backward: central finite differences of L = sum(r * y) with respect to the weights of the
 *    layers feeding the merge and to the model's input, so every input gradient the merge writes
 *    is observed through the layer that reads it;
 *  - Maximum's and Minimum's tie rule (the earliest input takes the gradient) exactly, through
 *    two branches that compute bit-identical values;
 *  - a value read by two layers (fan-out) and a layer that shares another's weights, by finite
 *    differences of every weight;
 *  - broadcasting (Keras 3's rule, NumPy's on the samples' shapes): the forward pass against a host
 *    reference that indexes each input by the broadcast rule, and the gradients of stretched
 *    inputs (sums over the stretched axes) by finite differences, a squeeze-and-excitation gate
 *    among them; Divide, same-shape and broadcast;
 *  - the refusals: shapes that do not broadcast, input counts, Concatenate's axis. */
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "support.h"

#include "device/runtime.h"
#include "exec/session.h"
#include "model/model.h"

/* How the finite differences (tests/support.c's ts_fd_*) judge here: the default 1e-2 step, the
 * 1e-2 tolerance relative to each tensor's largest gradient (a product of many branches has small
 * gradients, held to the standard of the large ones), 60 elements of each tensor, a largest
 * gradient of at least 1e-4 (a product of ten branches has small ones, but never zero), and a
 * second backward pass bit-identical to the first. */
static ts_fd_tolerance merge_tolerance(bool kinks)
{
	return (ts_fd_tolerance){.max_checks = 60, .nontrivial = 1e-4, .kinks = kinks, .to_largest = true};
}

static size_t layer_index(const strata_model *m, const char *name)
{
	for (size_t i = 0; i < m->n_layers; i++)
		if (strcmp(m->layers[i].name, name) == 0)
			return i;
	ck_abort_msg("no layer %s", name);
	return 0;
}

/* ---- forward against a host reference ---------------------------------------------------------- */

typedef struct forward_case {
	const char *type;
	uint32_t n_inputs;
	int axis;              /* concatenate only */
	uint32_t rank;
	int64_t dims[3][3];    /* per input (all alike but concatenate's); inputs past 3 repeat the last */
	uint32_t batch;
} forward_case;

static const forward_case forward_cases[] = {
	/* 3 x 4 x 5 = 60 floats a sample: vectors of 16 and a tail; 7: a tail only */
	{"add", 2, 0, 3, {{3, 4, 5}, {3, 4, 5}}, 3},
	{"add", 3, 0, 1, {{7}, {7}, {7}}, 2},
	{"subtract", 2, 0, 3, {{3, 4, 5}, {3, 4, 5}}, 3},
	{"subtract", 2, 0, 1, {{7}, {7}}, 2},
	{"multiply", 2, 0, 1, {{7}, {7}}, 2},
	{"multiply", 3, 0, 3, {{3, 4, 5}, {3, 4, 5}, {3, 4, 5}}, 3},
	{"average", 2, 0, 1, {{7}, {7}}, 2},
	{"average", 3, 0, 3, {{3, 4, 5}, {3, 4, 5}, {3, 4, 5}}, 3},
	{"maximum", 2, 0, 3, {{3, 4, 5}, {3, 4, 5}}, 3},
	{"maximum", 3, 0, 1, {{7}, {7}, {7}}, 2},
	{"minimum", 2, 0, 1, {{7}, {7}}, 2},
	{"minimum", 3, 0, 3, {{3, 4, 5}, {3, 4, 5}, {3, 4, 5}}, 3},
	{"concatenate", 2, -1, 3, {{3, 4, 2}, {3, 4, 5}}, 3},
	{"concatenate", 3, -1, 3, {{3, 4, 2}, {3, 4, 5}, {3, 4, 1}}, 2},
	/* Keras' axis 1: the first axis of a sample (-3 of rank 3) */
	{"concatenate", 2, 1, 3, {{2, 4, 3}, {3, 4, 3}}, 3},
	{"concatenate", 3, -3, 3, {{2, 4, 3}, {1, 4, 3}, {3, 4, 3}}, 2},
	{"concatenate", 2, 2, 3, {{2, 1, 3}, {2, 3, 3}}, 2},
	{"concatenate", 2, 1, 1, {{5}, {2}}, 3},
	/* more inputs than one kernel launch takes (8): chained launches */
	{"add", 10, 0, 1, {{9}, {9}, {9}}, 2},
	{"multiply", 10, 0, 1, {{9}, {9}, {9}}, 2},
	{"average", 10, 0, 1, {{9}, {9}, {9}}, 2},
	{"maximum", 10, 0, 1, {{9}, {9}, {9}}, 2},
	{"minimum", 10, 0, 1, {{9}, {9}, {9}}, 2},
	{"concatenate", 10, -1, 2, {{2, 1}, {2, 3}, {2, 2}}, 2},
};

static const int64_t *case_dims(const forward_case *fc, uint32_t k)
{
	return fc->dims[k < 3 ? k : 2];
}

static size_t dims_elems(const int64_t *d, uint32_t rank)
{
	size_t n = 1;
	for (uint32_t i = 0; i < rank; i++)
		n *= (size_t)d[i];
	return n;
}

/* y[i] of an element-wise merge, folded left to right in float as the kernels do. */
static float reference_elementwise(const char *type, float *const *x, uint32_t n_inputs, size_t i)
{
	float acc = x[0][i];
	for (uint32_t k = 1; k < n_inputs; k++) {
		float v = x[k][i];
		if (!strcmp(type, "add") || !strcmp(type, "average"))
			acc += v;
		else if (!strcmp(type, "subtract"))
			acc -= v;
		else if (!strcmp(type, "multiply"))
			acc *= v;
		else if (!strcmp(type, "maximum"))
			acc = v > acc ? v : acc;
		else
			acc = v < acc ? v : acc;
	}
	return !strcmp(type, "average") ? acc * (1.0f / (float)n_inputs) : acc;
}

START_TEST(test_forward)
{
	const forward_case *fc = &forward_cases[_i];
	char yaml[2048], axis[32] = "";
	size_t used = (size_t)snprintf(yaml, sizeof(yaml), "inputs:\n");
	for (uint32_t k = 0; k < fc->n_inputs; k++) {
		const int64_t *d = case_dims(fc, k);
		used += (size_t)snprintf(yaml + used, sizeof(yaml) - used, "  - {name: in%u, shape: [", k);
		for (uint32_t r = 0; r < fc->rank; r++)
			used += (size_t)snprintf(yaml + used, sizeof(yaml) - used, "%s%lld", r ? ", " : "", (long long)d[r]);
		used += (size_t)snprintf(yaml + used, sizeof(yaml) - used, "]}\n");
	}
	if (!strcmp(fc->type, "concatenate"))
		snprintf(axis, sizeof(axis), ", axis: %d", fc->axis);
	used += (size_t)snprintf(yaml + used, sizeof(yaml) - used, "layers:\n  - {type: %s%s, inputs: [", fc->type,
	                         axis);
	for (uint32_t k = 0; k < fc->n_inputs; k++)
		used += (size_t)snprintf(yaml + used, sizeof(yaml) - used, "%sin%u", k ? ", " : "", k);
	used += (size_t)snprintf(yaml + used, sizeof(yaml) - used, "]}\n");
	ck_assert_uint_lt(used, sizeof(yaml));

	ts_device dev = ts_device_open();
	ts_net net = ts_net_open(&dev, yaml, fc->batch + 1, 1);
	float *x[10];
	size_t count[10];
	for (uint32_t k = 0; k < fc->n_inputs; k++) {
		count[k] = fc->batch * dims_elems(case_dims(fc, k), fc->rank);
		x[k] = ts_floats(count[k]);
		/* Multiply over ten inputs stays O(1) with factors near 1. */
		if (!strcmp(fc->type, "multiply"))
			ts_fill_random(x[k], count[k], 300 + k, 0.5f, 1.5f);
		else
			ts_fill_random(x[k], count[k], 300 + k, -2.0f, 2.0f);
		ts_tensor_write(dev.rt, st_session_value(net.s, k), 0, x[k], count[k]);
	}
	strata_error err = {0};
	strata_status st = st_session_forward_device(net.s, fc->batch, false, &err);
	ck_assert_msg(st == STRATA_OK, "forward: %s", err.message);
	const strata_shape *out = &net.m->layers[0].out;
	size_t per_sample = st_shape_elems(out), n = fc->batch * per_sample;
	float *y = ts_floats(n);
	ts_tensor_read(dev.rt, st_session_output(net.s), y, n);

	if (strcmp(fc->type, "concatenate") != 0) {
		ck_assert_uint_eq(out->rank, fc->rank);
		for (size_t i = 0; i < n; i++) {
			float want = reference_elementwise(fc->type, x, fc->n_inputs, i);
			ck_assert_msg(fabsf(y[i] - want) <= 1e-5f * fmaxf(1.0f, fabsf(want)), "%s y[%zu] = %.9g, want %.9g",
			              fc->type, i, (double)y[i], (double)want);
		}
	} else {
		/* Keras' axis counts the batch as axis 0. */
		uint32_t axis = (uint32_t)(fc->axis < 0 ? fc->axis + (int)fc->rank : fc->axis - 1);
		size_t outer = fc->batch, inner = 1, total = 0;
		for (uint32_t d = 0; d < axis; d++)
			outer *= (size_t)case_dims(fc, 0)[d];
		for (uint32_t d = axis + 1; d < fc->rank; d++)
			inner *= (size_t)case_dims(fc, 0)[d];
		for (uint32_t k = 0; k < fc->n_inputs; k++)
			total += (size_t)case_dims(fc, k)[axis];
		ck_assert_int_eq(out->dims[axis], (int64_t)total);
		ck_assert_uint_eq(n, outer * total * inner);
		size_t i = 0;
		for (size_t o = 0; o < outer; o++)
			for (uint32_t k = 0; k < fc->n_inputs; k++) {
				size_t len = (size_t)case_dims(fc, k)[axis] * inner;
				for (size_t j = 0; j < len; j++, i++)
					ck_assert_msg(y[i] == x[k][o * len + j], "concatenate y[%zu] = %g, want input %u's %g", i,
					              (double)y[i], k, (double)x[k][o * len + j]);
			}
	}
	free(y);
	for (uint32_t k = 0; k < fc->n_inputs; k++)
		free(x[k]);
	ts_net_close(&net);
	ts_device_close(&dev);
}
END_TEST

/* ---- finite differences ------------------------------------------------------------------------ */

/* The input gradient and every weight gradient of the model against finite differences (see
 * merge_tolerance; `kinks` for Maximum and Minimum), biases drawn around `bias_center`. */
static void check_gradients(const char *yaml, uint32_t batch, bool kinks, float bias_center, unsigned seed)
{
	ts_fd f;
	ts_fd_open(&f, yaml, batch, bias_center, seed);
	ts_fd_tolerance tol = merge_tolerance(kinks);
	ts_fd_check_gradients(&f, &tol);
	ts_fd_close(&f);
}


/* ---- each merge type, its inputs' gradients through the dense layers feeding it ----------------- */

typedef struct backward_case {
	const char *type;
	uint32_t n_inputs;
	bool kinks;
	uint32_t batch;
} backward_case;

static const backward_case backward_cases[] = {
	{"add", 2, false, 3},      {"add", 3, false, 3},     {"subtract", 2, false, 3}, {"multiply", 2, false, 3},
	{"multiply", 3, false, 3}, {"average", 2, false, 3}, {"average", 3, false, 3},  {"maximum", 2, true, 3},
	{"maximum", 3, true, 3},   {"minimum", 2, true, 3},  {"minimum", 3, true, 3},
	/* more inputs than one kernel launch takes; a batch where each of ten inputs wins somewhere */
	{"add", 10, false, 3},     {"multiply", 10, false, 3}, {"average", 10, false, 3}, {"maximum", 10, true, 10},
	{"minimum", 10, true, 10},
};

START_TEST(test_backward_elementwise)
{
	const backward_case *bc = &backward_cases[_i];
	char yaml[2048];
	size_t used = (size_t)snprintf(yaml, sizeof(yaml), "inputs: [{name: x, shape: [6]}]\nlayers:\n");
	for (uint32_t k = 0; k < bc->n_inputs; k++)
		used += (size_t)snprintf(yaml + used, sizeof(yaml) - used,
		                         "  - {type: dense, units: 5, name: d%u, inputs: x}\n", k);
	used += (size_t)snprintf(yaml + used, sizeof(yaml) - used, "  - {type: %s, inputs: [", bc->type);
	for (uint32_t k = 0; k < bc->n_inputs; k++)
		used += (size_t)snprintf(yaml + used, sizeof(yaml) - used, "%sd%u", k ? ", " : "", k);
	used += (size_t)snprintf(yaml + used, sizeof(yaml) - used, "]}\n");
	ck_assert_uint_lt(used, sizeof(yaml));
	bool product = !strcmp(bc->type, "multiply") && bc->n_inputs > 3;
	check_gradients(yaml, bc->batch, bc->kinks, product ? 1.0f : 0.0f, 500 + (unsigned)_i);
}
END_TEST

/* Concatenate of conv2d branches: along the channels (-1), and along the first axis of a sample
 * (Keras' axis 1) where the branches' heights differ. */
static const char *const concat_models[] = {
	"inputs: [{name: x, shape: [5, 4, 2]}]\n"
	"layers:\n"
	"  - {type: conv2d, filters: 2, kernel_size: 1, name: a, inputs: x}\n"
	"  - {type: conv2d, filters: 3, kernel_size: 1, name: b, inputs: x}\n"
	"  - {type: concatenate, inputs: [a, b]}\n",
	"inputs: [{name: x, shape: [5, 4, 2]}]\n"
	"layers:\n"
	"  - {type: conv2d, filters: 2, kernel_size: 1, name: a, inputs: x}\n"
	"  - {type: conv2d, filters: 3, kernel_size: [2, 2], name: b, inputs: x, padding: same}\n"
	"  - {type: conv2d, filters: 1, kernel_size: 1, name: c, inputs: x}\n"
	"  - {type: concatenate, axis: -1, inputs: [a, b, c]}\n",
	"inputs: [{name: x, shape: [5, 4, 2]}]\n"
	"layers:\n"
	"  - {type: conv2d, filters: 2, kernel_size: 1, name: a, inputs: x}\n"
	"  - {type: conv2d, filters: 2, kernel_size: [2, 1], name: b, inputs: x}\n"
	"  - {type: concatenate, axis: 1, inputs: [a, b]}\n",
	"inputs: [{name: x, shape: [5, 4, 2]}]\n"
	"layers:\n"
	"  - {type: conv2d, filters: 2, kernel_size: [3, 1], name: a, inputs: x}\n"
	"  - {type: conv2d, filters: 2, kernel_size: 1, name: b, inputs: x}\n"
	"  - {type: conv2d, filters: 2, kernel_size: [2, 1], name: c, inputs: x}\n"
	"  - {type: concatenate, axis: -3, inputs: [a, b, c]}\n",
	/* a concatenation read by a dense layer, and an input concatenated with a layer */
	"inputs: [{name: x, shape: [6]}]\n"
	"layers:\n"
	"  - {type: dense, units: 4, name: a, inputs: x}\n"
	"  - {type: concatenate, inputs: [a, x, a]}\n"
	"  - {type: dense, units: 3, activation: tanh}\n",
};

START_TEST(test_backward_concatenate)
{
	check_gradients(concat_models[_i], 2, false, 0.0f, 600 + (unsigned)_i);
}
END_TEST

/* ---- Maximum's and Minimum's tie rule ------------------------------------------------------------ */

/* p and q compute bit-identical values (the same weights on the same input), so they tie
 * everywhere; u differs. The gradient goes to the first input holding the winning value: p where
 * p wins or ties with q, u where u wins, never q. Checked exactly through the branches' bias
 * gradients (sums over the batch of what each branch received). */
START_TEST(test_ties)
{
	const char *type = _i ? "minimum" : "maximum";
	char yaml[512];
	snprintf(yaml, sizeof(yaml),
	         "inputs: [{name: x, shape: [6]}]\n"
	         "layers:\n"
	         "  - {type: dense, units: 5, name: p, inputs: x}\n"
	         "  - {type: dense, units: 5, name: q, inputs: x}\n"
	         "  - {type: dense, units: 5, name: u, inputs: x}\n"
	         "  - {type: %s, inputs: [p, q, u]}\n",
	         type);
	ts_fd f;
	ts_fd_open(&f, yaml, 4, 0.0f, 700 + (unsigned)_i);
	strata_error err = {0};
	size_t p = layer_index(f.net.m, "p"), q = layer_index(f.net.m, "q"), u = layer_index(f.net.m, "u");
	for (size_t w = 0; w < 2; w++) {
		size_t count = f.net.m->layers[p].weights[w].count;
		float *v = ts_floats(count);
		ck_assert_int_eq(strata_session_read_weight(f.net.s, p, w, v, count, &err), STRATA_OK);
		ck_assert_int_eq(strata_session_write_weight(f.net.s, q, w, v, count, &err), STRATA_OK);
		free(v);
	}
	ts_fd_poison(&f);
	ts_fd_loss(&f);
	size_t n = f.out_count;
	float *yp = ts_floats(n), *yq = ts_floats(n), *yu = ts_floats(n), *g = ts_floats(5);
	ts_tensor_read(f.dev.rt, &f.net.s->binds[p].output, yp, n);
	ts_tensor_read(f.dev.rt, &f.net.s->binds[q].output, yq, n);
	ts_tensor_read(f.dev.rt, &f.net.s->binds[u].output, yu, n);
	for (size_t i = 0; i < n; i++) {
		ck_assert_msg(yp[i] == yq[i], "p and q differ at %zu: %g, %g", i, (double)yp[i], (double)yq[i]);
		bool u_wins = _i ? yu[i] < yp[i] : yu[i] > yp[i];
		ck_assert_msg(f.y[i] == (u_wins ? yu[i] : yp[i]), "%s y[%zu] = %g", type, i, (double)f.y[i]);
	}
	ts_fd_backward(&f, true);
	size_t mixed[2] = {0, 0};
	for (size_t l = 0; l < 3; l++) {
		size_t layer = l == 0 ? p : l == 1 ? q : u;
		ts_tensor_read(f.dev.rt, &f.net.s->binds[layer].grads[1], g, 5);
		for (size_t j = 0; j < 5; j++) {
			double want = 0.0;
			for (size_t b = 0; b < f.batch; b++) {
				size_t i = b * 5 + j;
				bool u_wins = _i ? yu[i] < yp[i] : yu[i] > yp[i];
				mixed[u_wins]++;
				if ((l == 0 && !u_wins) || (l == 2 && u_wins))
					want += f.r[i];
			}
			ck_assert_msg(fabs(g[j] - want) <= 1e-5, "%s: bias gradient of %s[%zu] = %g, want %g", type,
			              f.net.m->layers[layer].name, j, (double)g[j], want);
			if (l == 1)
				ck_assert_msg(g[j] == 0.0f, "%s: q ties with p, which comes first, yet got %g", type,
				              (double)g[j]);
		}
	}
	/* Both branches win somewhere, or the check proves little. */
	ck_assert(mixed[0] > 0 && mixed[1] > 0);
	free(g);
	free(yu);
	free(yq);
	free(yp);
	ts_fd_close(&f);
}
END_TEST

/* ---- fan-out and shared weights ----------------------------------------------------------------- */

static const char *const graph_models[] = {
	/* d read by two layers, which are added: d's gradient is the sum of both */
	"inputs: [{name: x, shape: [6]}]\n"
	"layers:\n"
	"  - {type: dense, units: 5, activation: tanh, name: d, inputs: x}\n"
	"  - {type: dense, units: 4, name: e1, inputs: d}\n"
	"  - {type: dense, units: 4, activation: sigmoid, name: e2, inputs: d}\n"
	"  - {type: add, inputs: [e1, e2]}\n"
	"  - {type: dense, units: 3, activation: tanh}\n",
	/* one value read twice by one layer: Add gives it 2 dy */
	"inputs: [{name: x, shape: [6]}]\n"
	"layers:\n"
	"  - {type: dense, units: 4, activation: tanh, name: a, inputs: x}\n"
	"  - {type: add, inputs: [a, a]}\n"
	"  - {type: dense, units: 3}\n",
	/* ... and Maximum gives it dy once: the copy that comes first wins the tie */
	"inputs: [{name: x, shape: [6]}]\n"
	"layers:\n"
	"  - {type: dense, units: 4, activation: tanh, name: a, inputs: x}\n"
	"  - {type: maximum, inputs: [a, a]}\n"
	"  - {type: dense, units: 3}\n",
	/* Multiply of a value by itself: 2 a dy */
	"inputs: [{name: x, shape: [6]}]\n"
	"layers:\n"
	"  - {type: dense, units: 4, name: a, inputs: x}\n"
	"  - {type: dense, units: 4, name: x2, inputs: x}\n"
	"  - {type: multiply, inputs: [a, a, x2]}\n",
	/* b uses a's weights on another input: the shared weights' gradient is the sum of both uses */
	"inputs: [{name: x, shape: [6]}]\n"
	"layers:\n"
	"  - {type: dense, units: 6, activation: tanh, name: p, inputs: x}\n"
	"  - {type: dense, units: 4, name: a, inputs: x}\n"
	"  - {type: dense, units: 4, name: b, inputs: p, shares: a}\n"
	"  - {type: multiply, inputs: [a, b]}\n"
	"  - {type: dense, units: 3, activation: tanh}\n",
	/* shared conv2d weights in a siamese pair whose outputs are subtracted */
	"inputs: [{name: x, shape: [4, 4, 2]}]\n"
	"layers:\n"
	"  - {type: conv2d, filters: 2, kernel_size: 1, activation: tanh, name: p, inputs: x}\n"
	"  - {type: conv2d, filters: 3, kernel_size: 2, activation: tanh, name: s1, inputs: x}\n"
	"  - {type: conv2d, filters: 3, kernel_size: 2, activation: tanh, name: s2, inputs: p, shares: s1}\n"
	"  - {type: subtract, inputs: [s1, s2]}\n"
	"  - {type: flatten}\n"
	"  - {type: dense, units: 3}\n",
};

START_TEST(test_graph)
{
	check_gradients(graph_models[_i], 3, false, 0.0f, 800 + (unsigned)_i);
}
END_TEST

/* ---- broadcasting -------------------------------------------------------------------------------- */

typedef struct broadcast_case {
	const char *type;
	uint32_t n_inputs;
	uint32_t rank[3];
	int64_t dims[3][4];
	uint32_t rank_out;
	int64_t out[4]; /* the broadcast shape Keras 3 gives */
	uint32_t batch;
} broadcast_case;

static const broadcast_case broadcast_cases[] = {
	{"add", 2, {3, 3}, {{3, 4, 5}, {1, 4, 1}}, 3, {3, 4, 5}, 3},
	{"add", 2, {3, 1}, {{3, 4, 5}, {5}}, 3, {3, 4, 5}, 2},
	{"add", 3, {1, 2, 3}, {{1}, {4, 1}, {2, 1, 3}}, 3, {2, 4, 3}, 2},
	{"subtract", 2, {2, 3}, {{1, 5}, {3, 4, 1}}, 3, {3, 4, 5}, 2},
	{"multiply", 2, {3, 3}, {{4, 4, 6}, {1, 1, 6}}, 3, {4, 4, 6}, 3},
	{"multiply", 3, {1, 1, 1}, {{7}, {1}, {7}}, 1, {7}, 2},
	{"average", 2, {2, 2}, {{3, 1}, {1, 5}}, 2, {3, 5}, 2},
	{"maximum", 2, {4, 1}, {{2, 3, 4, 5}, {1}}, 4, {2, 3, 4, 5}, 2},
	{"minimum", 3, {3, 3, 3}, {{1, 4, 5}, {3, 1, 5}, {3, 4, 1}}, 3, {3, 4, 5}, 2},
	{"divide", 2, {3, 3}, {{3, 4, 5}, {3, 4, 5}}, 3, {3, 4, 5}, 2},
	{"divide", 2, {1, 3}, {{5}, {3, 1, 5}}, 3, {3, 1, 5}, 2},
	{"divide", 2, {3, 1}, {{3, 4, 5}, {1}}, 3, {3, 4, 5}, 2},
};

/* The flat index into a sample of `rank` dims `d` of the output position `pos` (rank_out axes),
 * NumPy's rule: aligned on the last axis, coordinate 0 along a dimension of 1. */
static size_t broadcast_index(const int64_t *d, uint32_t rank, const int64_t *pos, uint32_t rank_out)
{
	size_t index = 0;
	for (uint32_t a = 0; a < rank; a++) {
		int64_t c = pos[rank_out - rank + a];
		index = index * (size_t)d[a] + (size_t)(d[a] == 1 ? 0 : c);
	}
	return index;
}

START_TEST(test_forward_broadcast)
{
	const broadcast_case *bc = &broadcast_cases[_i];
	char yaml[1024];
	size_t used = (size_t)snprintf(yaml, sizeof(yaml), "inputs:\n");
	for (uint32_t k = 0; k < bc->n_inputs; k++) {
		used += (size_t)snprintf(yaml + used, sizeof(yaml) - used, "  - {name: in%u, shape: [", k);
		for (uint32_t r = 0; r < bc->rank[k]; r++)
			used += (size_t)snprintf(yaml + used, sizeof(yaml) - used, "%s%lld", r ? ", " : "",
			                         (long long)bc->dims[k][r]);
		used += (size_t)snprintf(yaml + used, sizeof(yaml) - used, "]}\n");
	}
	used += (size_t)snprintf(yaml + used, sizeof(yaml) - used, "layers:\n  - {type: %s, inputs: [in0, in1%s]}\n",
	                         bc->type, bc->n_inputs == 3 ? ", in2" : "");
	ck_assert_uint_lt(used, sizeof(yaml));

	ts_device dev = ts_device_open();
	ts_net net = ts_net_open(&dev, yaml, bc->batch + 1, 1);
	const strata_shape *out = &net.m->layers[0].out;
	ck_assert_uint_eq(out->rank, bc->rank_out);
	for (uint32_t d = 0; d < bc->rank_out; d++)
		ck_assert_int_eq(out->dims[d], bc->out[d]);
	float *x[3];
	size_t per[3];
	for (uint32_t k = 0; k < bc->n_inputs; k++) {
		per[k] = dims_elems(bc->dims[k], bc->rank[k]);
		x[k] = ts_floats(bc->batch * per[k]);
		/* a divisor away from 0 */
		if (!strcmp(bc->type, "divide") && k == 1)
			ts_fill_random(x[k], bc->batch * per[k], 900 + k, 0.5f, 2.0f);
		else
			ts_fill_random(x[k], bc->batch * per[k], 900 + k, -2.0f, 2.0f);
		ts_tensor_write(dev.rt, st_session_value(net.s, k), 0, x[k], bc->batch * per[k]);
	}
	strata_error err = {0};
	ck_assert_msg(st_session_forward_device(net.s, bc->batch, false, &err) == STRATA_OK, "forward: %s", err.message);
	size_t per_out = dims_elems(bc->out, bc->rank_out), n = bc->batch * per_out;
	float *y = ts_floats(n);
	ts_tensor_read(dev.rt, st_session_output(net.s), y, n);
	for (size_t i = 0; i < n; i++) {
		int64_t pos[4];
		size_t r = i % per_out;
		for (uint32_t a = bc->rank_out; a-- > 0;) {
			pos[a] = (int64_t)(r % (size_t)bc->out[a]);
			r /= (size_t)bc->out[a];
		}
		float v[3];
		for (uint32_t k = 0; k < bc->n_inputs; k++)
			v[k] = x[k][(i / per_out) * per[k] + broadcast_index(bc->dims[k], bc->rank[k], pos, bc->rank_out)];
		float want;
		if (!strcmp(bc->type, "divide")) {
			want = v[0] / v[1];
		} else {
			float *vp[3] = {&v[0], &v[1], &v[2]};
			want = reference_elementwise(bc->type, vp, bc->n_inputs, 0);
		}
		ck_assert_msg(fabsf(y[i] - want) <= 1e-6f * fmaxf(1.0f, fabsf(want)), "%s y[%zu] = %.9g, want %.9g",
		              bc->type, i, (double)y[i], (double)want);
	}
	free(y);
	for (uint32_t k = 0; k < bc->n_inputs; k++)
		free(x[k]);
	ts_net_close(&net);
	ts_device_close(&dev);
}
END_TEST

/* Stretched inputs' gradients, observed through the layers that feed the merge. */
static const char *const broadcast_models[] = {
	/* squeeze and excitation: a (1, 1, 3) gate times the (4, 4, 3) map it was pooled from */
	"inputs: [{name: x, shape: [4, 4, 2]}]\n"
	"layers:\n"
	"  - {type: conv2d, filters: 3, kernel_size: 1, activation: tanh, name: a, inputs: x}\n"
	"  - {type: global_average_pooling2d, keepdims: true, name: g, inputs: a}\n"
	"  - {type: dense, units: 3, activation: sigmoid, name: s, inputs: g}\n"
	"  - {type: multiply, inputs: [a, s]}\n"
	"  - {type: flatten}\n"
	"  - {type: dense, units: 3}\n",
	/* a rank-1 input stretched over a rank-3 one, and a scalar per sample over a vector */
	"inputs: [{name: x, shape: [4, 4, 2]}]\n"
	"layers:\n"
	"  - {type: conv2d, filters: 3, kernel_size: 2, name: a, inputs: x}\n"
	"  - {type: global_max_pooling2d, name: g, inputs: a}\n"
	"  - {type: dense, units: 3, name: d, inputs: g}\n"
	"  - {type: add, name: s, inputs: [a, d]}\n"
	"  - {type: flatten}\n"
	"  - {type: dense, units: 3}\n",
	"inputs: [{name: x, shape: [6]}]\n"
	"layers:\n"
	"  - {type: dense, units: 1, name: one, inputs: x}\n"
	"  - {type: dense, units: 5, name: five, inputs: x}\n"
	"  - {type: subtract, inputs: [one, five]}\n",
	"inputs: [{name: x, shape: [6]}]\n"
	"layers:\n"
	"  - {type: dense, units: 1, name: b, inputs: x}\n"
	"  - {type: dense, units: 5, name: a, inputs: x}\n"
	"  - {type: dense, units: 1, name: c, inputs: x}\n"
	"  - {type: multiply, inputs: [b, a, c]}\n",
	"inputs: [{name: x, shape: [6]}]\n"
	"layers:\n"
	"  - {type: dense, units: 5, name: a, inputs: x}\n"
	"  - {type: dense, units: 1, name: b, inputs: x}\n"
	"  - {type: dense, units: 1, name: c, inputs: x}\n"
	"  - {type: average, inputs: [a, b, c]}\n",
	/* Divide: same shape, a stretched divisor, a stretched dividend (divisors exp(.) > 0) */
	"inputs: [{name: x, shape: [6]}]\n"
	"layers:\n"
	"  - {type: dense, units: 5, name: a, inputs: x}\n"
	"  - {type: dense, units: 5, activation: exponential, name: b, inputs: x}\n"
	"  - {type: divide, inputs: [a, b]}\n",
	"inputs: [{name: x, shape: [6]}]\n"
	"layers:\n"
	"  - {type: dense, units: 5, name: a, inputs: x}\n"
	"  - {type: dense, units: 1, activation: exponential, name: b, inputs: x}\n"
	"  - {type: divide, inputs: [a, b]}\n",
	"inputs: [{name: x, shape: [6]}]\n"
	"layers:\n"
	"  - {type: dense, units: 1, name: a, inputs: x}\n"
	"  - {type: dense, units: 5, activation: exponential, name: b, inputs: x}\n"
	"  - {type: divide, inputs: [a, b]}\n",
};

/* Maximum and Minimum with a stretched input: kinks, so the finite differences skip elements near
 * a tie. */
static const char *const broadcast_kink_models[] = {
	"inputs: [{name: x, shape: [6]}]\n"
	"layers:\n"
	"  - {type: dense, units: 5, name: a, inputs: x}\n"
	"  - {type: dense, units: 1, name: b, inputs: x}\n"
	"  - {type: maximum, inputs: [a, b]}\n",
	"inputs: [{name: x, shape: [6]}]\n"
	"layers:\n"
	"  - {type: dense, units: 1, name: b, inputs: x}\n"
	"  - {type: dense, units: 5, name: a, inputs: x}\n"
	"  - {type: dense, units: 5, name: c, inputs: x}\n"
	"  - {type: minimum, inputs: [b, a, c]}\n",
};

START_TEST(test_backward_broadcast)
{
	check_gradients(broadcast_models[_i], 4, false, 0.0f, 950 + (unsigned)_i);
}
END_TEST

START_TEST(test_backward_broadcast_kinks)
{
	check_gradients(broadcast_kink_models[_i], 6, true, 0.0f, 970 + (unsigned)_i);
}
END_TEST

/* ---- refusals ----------------------------------------------------------------------------------- */

typedef struct refusal_case {
	const char *yaml;
	const char *where;   /* "merge.yaml:LINE:COLUMN: " */
	const char *says[3]; /* further parts of the message */
} refusal_case;

static const refusal_case refusals[] = {
	{"inputs: [{name: x, shape: [6]}]\n"
	 "layers:\n"
	 "  - {type: dense, units: 4, name: a, inputs: x}\n"
	 "  - {type: dense, units: 5, name: b, inputs: x}\n"
	 "  - {type: add, inputs: [a, b]}\n",
	 "merge.yaml:5:5: add_1: ", {"input 1 has shape (5), which does not broadcast with (4)", "equal or one of them 1"}},
	{"inputs: [{name: x, shape: [4, 4, 2]}]\n"
	 "layers:\n"
	 "  - {type: conv2d, filters: 3, kernel_size: 1, name: a, inputs: x}\n"
	 "  - {type: conv2d, filters: 3, kernel_size: 1, name: b, inputs: x}\n"
	 "  - {type: conv2d, filters: 3, kernel_size: 2, name: c, inputs: x}\n"
	 "  - {type: maximum, name: m, inputs: [a, b, c]}\n",
	 "merge.yaml:6:5: m: ", {"input 2 has shape (3, 3, 3), which does not broadcast with (4, 4, 3)"}},
	{"inputs: [{name: x, shape: [4, 4, 2]}]\n"
	 "layers:\n"
	 "  - {type: conv2d, filters: 3, kernel_size: 1, name: a, inputs: x}\n"
	 "  - {type: conv2d, filters: 2, kernel_size: 2, name: b, inputs: x}\n"
	 "  - {type: concatenate, inputs: [a, b]}\n",
	 "merge.yaml:5:5: concatenate_1: ",
	 {"input 1 has shape (3, 3, 2), input 0 has (4, 4, 3)", "same shape but on axis -1"}},
	{"inputs: [{name: x, shape: [6]}, {name: y, shape: [4, 5]}]\n"
	 "layers:\n"
	 "  - {type: multiply, inputs: [x, y]}\n",
	 "merge.yaml:3:5: multiply_1: ", {"input 1 has shape (4, 5), which does not broadcast with (6)"}},
	/* the broadcast of the first two, (2, 3), against the third */
	{"inputs: [{name: x, shape: [1, 3]}, {name: y, shape: [2, 1]}, {name: z, shape: [3, 3]}]\n"
	 "layers:\n"
	 "  - {type: divide, inputs: [x, y]}\n"
	 "  - {type: add, inputs: [x, y, z]}\n",
	 "merge.yaml:4:5: add_1: ", {"input 2 has shape (3, 3), which does not broadcast with (2, 3)"}},
	{"inputs: [{name: x, shape: [6]}]\n"
	 "layers:\n"
	 "  - {type: divide, inputs: [x, x, x]}\n",
	 "merge.yaml:3:28: divide_1: ", {"takes 2 inputs, 3 given"}},
	{"inputs: [{name: x, shape: [6]}]\n"
	 "layers:\n"
	 "  - {type: dense, units: 4, name: a, inputs: x}\n"
	 "  - {type: subtract, inputs: [a, a, a]}\n",
	 "merge.yaml:4:30: subtract_1: ", {"takes 2 inputs, 3 given"}},
	{"inputs: [{name: x, shape: [6]}]\n"
	 "layers:\n"
	 "  - {type: dense, units: 4, name: a, inputs: x}\n"
	 "  - {type: average, inputs: [a]}\n",
	 "merge.yaml:4:29: average_1: ", {"takes 2 or more inputs, 1 given"}},
	{"inputs: [{name: x, shape: [4, 4, 2]}]\n"
	 "layers:\n"
	 "  - {type: concatenate, axis: 0, inputs: [x, x]}\n",
	 "merge.yaml:3:31: concatenate_1: ", {"axis 0 is the batch axis", "cannot be concatenated"}},
	{"inputs: [{name: x, shape: [4, 4, 2]}]\n"
	 "layers:\n"
	 "  - {type: concatenate, axis: -4, inputs: [x, x]}\n",
	 "merge.yaml:3:31: concatenate_1: ", {"axis -4 is the batch axis"}},
	{"inputs: [{name: x, shape: [4, 4, 2]}]\n"
	 "layers:\n"
	 "  - {type: concatenate, axis: 4, inputs: [x, x]}\n",
	 "merge.yaml:3:31: concatenate_1: ", {"axis 4 is out of range for rank-3 samples: 1 to 3, or -3 to -1"}},
	{"inputs: [{name: x, shape: [6]}]\n"
	 "layers:\n"
	 "  - {type: concatenate, axis: 9, inputs: [x, x]}\n",
	 "merge.yaml:3:31: ", {"axis"}},
};

START_TEST(test_refusals)
{
	const refusal_case *rc = &refusals[_i];
	strata_registry *reg = ts_registry();
	strata_model *m = NULL;
	strata_error err = {0};
	strata_status st = strata_model_load_string(reg, rc->yaml, strlen(rc->yaml), "merge.yaml", NULL, &m, &err);
	ck_assert_msg(st == STRATA_ERR_INVALID, "status %s: %s", strata_status_name(st), err.message);
	ck_assert_ptr_null(m);
	ck_assert_msg(strncmp(err.message, rc->where, strlen(rc->where)) == 0, "'%s' does not start with '%s'",
	              err.message, rc->where);
	for (size_t k = 0; k < 3 && rc->says[k]; k++)
		ck_assert_msg(strstr(err.message, rc->says[k]), "'%s' does not say '%s'", err.message, rc->says[k]);
	strata_registry_close(reg);
}
END_TEST

/* The eight types are registered with Keras' class names and name prefixes (Divide: Strata's). */
START_TEST(test_names)
{
	static const char *const types[] = {"add", "subtract", "multiply", "average", "maximum", "minimum",
	                                    "concatenate", "divide"};
	static const char *const classes[] = {"Add", "Subtract", "Multiply", "Average", "Maximum", "Minimum",
	                                      "Concatenate", "Divide"};
	strata_registry *reg = ts_registry();
	for (size_t t = 0; t < 8; t++) {
		char yaml[256];
		/* The class name is accepted as `type:` too; two layers of a type are numbered 1 and 2. */
		snprintf(yaml, sizeof(yaml),
		         "inputs: [{name: x, shape: [3]}, {name: y, shape: [3]}]\n"
		         "layers:\n"
		         "  - {type: %s, inputs: [x, y]}\n"
		         "  - {type: %s, inputs: [x, y]}\n",
		         types[t], classes[t]);
		strata_model *m = ts_model(reg, yaml);
		char want[32];
		snprintf(want, sizeof(want), "%s_1", types[t]);
		ck_assert_str_eq(m->layers[0].name, want);
		snprintf(want, sizeof(want), "%s_2", types[t]);
		ck_assert_str_eq(m->layers[1].name, want);
		ck_assert_str_eq(m->layers[0].type->ops.class_name, classes[t]);
		ck_assert_int_eq(m->layers[0].out.dims[0], t == 6 ? 6 : 3);
		ck_assert_uint_eq(m->layers[0].n_weights, 0);
		strata_model_free(m);
	}
	strata_registry_close(reg);
}
END_TEST

static Suite *merge_suite(void)
{
	Suite *s = suite_create("merge");
	TCase *fw = tcase_create("forward");
	tcase_add_loop_test(fw, test_forward, 0, (int)(sizeof(forward_cases) / sizeof(forward_cases[0])));
	tcase_add_loop_test(fw, test_forward_broadcast, 0, (int)(sizeof(broadcast_cases) / sizeof(broadcast_cases[0])));
	suite_add_tcase(s, fw);

	TCase *bw = tcase_create("backward");
	tcase_add_loop_test(bw, test_backward_elementwise, 0, (int)(sizeof(backward_cases) / sizeof(backward_cases[0])));
	tcase_add_loop_test(bw, test_backward_concatenate, 0, (int)(sizeof(concat_models) / sizeof(concat_models[0])));
	tcase_add_loop_test(bw, test_ties, 0, 2);
	tcase_add_loop_test(bw, test_graph, 0, (int)(sizeof(graph_models) / sizeof(graph_models[0])));
	tcase_add_loop_test(bw, test_backward_broadcast, 0, (int)(sizeof(broadcast_models) / sizeof(broadcast_models[0])));
	tcase_add_loop_test(bw, test_backward_broadcast_kinks, 0,
	                    (int)(sizeof(broadcast_kink_models) / sizeof(broadcast_kink_models[0])));
	suite_add_tcase(s, bw);

	TCase *model = tcase_create("model");
	tcase_add_loop_test(model, test_refusals, 0, (int)(sizeof(refusals) / sizeof(refusals[0])));
	tcase_add_test(model, test_names);
	suite_add_tcase(s, model);
	return s;
}

int main(void)
{
	return ts_run(merge_suite());
}
