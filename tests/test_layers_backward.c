/* Backward passes of the layer plugins on the OpenCL device. Every gradient (the input's and each
 * weight's) is checked against central finite differences of L = sum(r * y) for a fixed random
 * r, so the backward pass starts from grad_output = r; the fused softmax case (activation_folded)
 * and max pooling's tie rule are checked against host references instead. */
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "support.h"

#include "model/model.h"
#include "device/runtime.h"
#include "exec/session.h"

enum { ACT_LINEAR, ACT_RELU, ACT_SIGMOID, ACT_TANH, ACT_SOFTMAX, ACT_COUNT };
static const char *const act_names[ACT_COUNT] = {"linear", "relu", "sigmoid", "tanh", "softmax"};

typedef enum input_kind {
	INPUT_RANDOM,   /* uniform in [-1, 1) */
	INPUT_DISTINCT, /* a shuffled ladder 0.05 apart: no two within 2 * the 1e-2 step, so no max flips */
	INPUT_NONZERO,  /* uniform in [-1, 1) but at least 0.1 from 0: no relu kinks at the input */
} input_kind;

typedef struct grad_opts {
	uint32_t batch;
	uint64_t step; /* the session's training step (keys dropout masks) */
	input_kind input;
	double eps;    /* 0: the default 1e-2 */
	bool kinks;    /* skip elements that straddle a kink */
} grad_opts;

/* ---- A model under test ----------------------------------------------------------------------- */

/* How the finite differences (tests/support.c's ts_fd_*) judge here: o->eps or the default 1e-2
 * step, the 1e-2 tolerance relative to max(1, |backward|, |differences|) (one layer's gradients
 * are O(1)), 120 elements of each tensor, a largest gradient of at least 1e-3, and a second
 * backward pass within 1e-6 relative of the first. */
static ts_fd_tolerance layer_tolerance(const grad_opts *o)
{
	return (ts_fd_tolerance){.step = o->eps, .max_checks = 120, .nontrivial = 1e-3, .kinks = o->kinks,
	                         .repeat = 1e-6};
}

/* Reshapes x, drawn uniform in [-1, 1), as `kind` says. */
static void shape_input(float *x, size_t n, input_kind kind)
{
	if (kind == INPUT_NONZERO) {
		for (size_t i = 0; i < n; i++)
			x[i] = x[i] < 0.0f ? x[i] - 0.1f : x[i] + 0.1f;
	} else if (kind == INPUT_DISTINCT) {
		/* Rank the random keys: value = rank's rung on a ladder centred on 0. */
		float *key = ts_floats(n);
		memcpy(key, x, n * sizeof(*x));
		for (size_t i = 0; i < n; i++) {
			size_t rank = 0;
			for (size_t j = 0; j < n; j++)
				rank += key[j] < key[i] || (key[j] == key[i] && j < i);
			x[i] = 0.05f * ((float)rank - (float)n / 2.0f);
		}
		free(key);
	}
}

/* ts_fd_open with the options' training step (it keys dropout masks) and kind of input. */
static void fd_open(ts_fd *f, const char *yaml, const grad_opts *o, unsigned seed)
{
	ts_fd_open(f, yaml, o->batch, 0.0f, seed);
	f->net.s->step = o->step;
	if (o->input != INPUT_RANDOM) {
		shape_input(f->x, f->in_count, o->input);
		ts_tensor_write(f->dev.rt, &f->net.s->input, 0, f->x, f->in_count);
	}
}

/* The input gradient and every weight gradient against finite differences (layer_tolerance). */
static void check_gradients(const char *yaml, const grad_opts *o, unsigned seed)
{
	ts_fd f;
	fd_open(&f, yaml, o, seed);
	ts_fd_tolerance tol = layer_tolerance(o);
	ts_fd_check_gradients(&f, &tol);
	ts_fd_close(&f);
}

/* ---- conv2d ----------------------------------------------------------------------------------- */

typedef struct conv_case {
	int h, w, c;
	int kh, kw, sh, sw;
	bool same;
	int filters;
	bool use_bias;
	int act;
} conv_case;

static const conv_case conv_cases[] = {
	/* h  w  c  kh kw sh sw same   f  bias   act */
	{5, 5, 2, 3, 3, 1, 1, false, 3, true, ACT_RELU},
	{6, 5, 2, 3, 3, 1, 1, true, 3, true, ACT_LINEAR},
	{7, 6, 2, 3, 2, 2, 2, false, 2, true, ACT_SIGMOID},  /* strides 2, odd sizes */
	{7, 7, 1, 3, 3, 2, 2, true, 3, false, ACT_TANH},     /* strides 2, same */
	{6, 6, 2, 4, 4, 2, 3, true, 3, true, ACT_SOFTMAX},   /* even kernel: more padding bottom/right */
	{5, 4, 3, 1, 1, 1, 1, false, 4, true, ACT_RELU},     /* 1x1 stride 1: no im2col, no col2im */
	{5, 5, 2, 1, 1, 2, 2, false, 2, true, ACT_TANH},     /* 1x1 strided: unread inputs get 0 */
	{4, 5, 2, 4, 5, 1, 1, false, 2, true, ACT_SOFTMAX},  /* kernel as large as the input */
	{7, 5, 1, 5, 3, 3, 2, true, 2, false, ACT_LINEAR},   /* odd sizes, large strides */
	{5, 6, 2, 2, 2, 1, 1, true, 3, false, ACT_SIGMOID},
	{7, 7, 2, 2, 2, 3, 3, false, 2, true, ACT_RELU},     /* stride past the kernel: gaps */
	{4, 4, 1, 2, 2, 1, 1, false, 70, true, ACT_SOFTMAX}, /* rows wider than a work-group */
	{9, 9, 1, 3, 3, 1, 1, true, 2, true, ACT_LINEAR},    /* rows in several column-sum blocks */
	/* channels and filters that are multiples of the kernels' vector widths (16 and 8) */
	{6, 5, 16, 3, 3, 1, 1, false, 16, true, ACT_RELU},
	{7, 7, 8, 3, 3, 2, 2, true, 8, true, ACT_TANH},
	{12, 12, 1, 3, 3, 1, 1, false, 16, true, ACT_SIGMOID}, /* 16 columns in several blocks */
};

START_TEST(test_conv2d)
{
	const conv_case *cc = &conv_cases[_i];
	char yaml[512];
	snprintf(yaml, sizeof(yaml),
	         "input: {shape: [%d, %d, %d]}\n"
	         "layers:\n"
	         "  - {type: conv2d, filters: %d, kernel_size: [%d, %d], strides: [%d, %d], padding: %s,\n"
	         "     activation: %s, use_bias: %s}\n",
	         cc->h, cc->w, cc->c, cc->filters, cc->kh, cc->kw, cc->sh, cc->sw,
	         cc->same ? "same" : "valid", act_names[cc->act], cc->use_bias ? "true" : "false");
	grad_opts o = {.batch = 2, .input = INPUT_RANDOM, .kinks = cc->act == ACT_RELU};
	check_gradients(yaml, &o, 10 + (unsigned)_i);
}
END_TEST

/* ---- dense ------------------------------------------------------------------------------------ */

typedef struct dense_case {
	int inputs, units;
	bool use_bias;
	int act;
} dense_case;

static const dense_case dense_cases[] = {
	{7, 5, true, ACT_LINEAR},
	{9, 6, true, ACT_RELU},
	{8, 4, true, ACT_SIGMOID},
	{6, 7, true, ACT_TANH},
	{9, 6, true, ACT_SOFTMAX},
	{5, 3, false, ACT_RELU},
	{6, 70, true, ACT_SOFTMAX}, /* rows wider than a work-group */
	{1, 3, false, ACT_TANH},
	{9, 32, true, ACT_RELU}, /* bias sums in vectors of 16 */
};

START_TEST(test_dense)
{
	const dense_case *dc = &dense_cases[_i];
	char yaml[256];
	snprintf(yaml, sizeof(yaml),
	         "input: {shape: [%d]}\n"
	         "layers:\n"
	         "  - {type: dense, units: %d, activation: %s, use_bias: %s}\n",
	         dc->inputs, dc->units, act_names[dc->act], dc->use_bias ? "true" : "false");
	grad_opts o = {.batch = 3, .input = INPUT_RANDOM, .kinks = dc->act == ACT_RELU};
	check_gradients(yaml, &o, 40 + (unsigned)_i);
}
END_TEST

/* ---- pooling ---------------------------------------------------------------------------------- */

typedef struct pool_case {
	int h, w, c;
	int ph, pw;
	int sh, sw; /* 0: Keras' None (= pool size) */
	bool same;
} pool_case;

static const pool_case pool_cases[] = {
	/* h  w  c  ph pw sh sw same */
	{6, 6, 2, 2, 2, 0, 0, false},
	{7, 7, 2, 2, 2, 0, 0, false}, /* odd: the last row and column feed no window */
	{7, 5, 2, 2, 2, 0, 0, true},  /* odd, same: partial windows at the bottom/right */
	{7, 6, 2, 3, 3, 2, 2, true},  /* overlapping, same */
	{6, 7, 2, 2, 3, 1, 1, false}, /* overlapping */
	{6, 6, 1, 3, 3, 1, 1, true},  /* overlapping on every side of the border */
	{5, 5, 2, 2, 2, 3, 3, true},  /* stride past the window */
	{6, 6, 16, 2, 2, 0, 0, false}, /* channels in vectors of 16 */
	{7, 9, 8, 3, 3, 2, 2, false},  /* overlapping, vectors of 8 */
	{8, 7, 8, 2, 2, 3, 3, true},   /* stride past the window, vectors of 8 */
};

static void pool_yaml(char *yaml, size_t size, const char *type, const pool_case *pc)
{
	char strides[48] = "";
	if (pc->sh)
		snprintf(strides, sizeof(strides), ", strides: [%d, %d]", pc->sh, pc->sw);
	snprintf(yaml, size,
	         "input: {shape: [%d, %d, %d]}\n"
	         "layers:\n"
	         "  - {type: %s, pool_size: [%d, %d]%s, padding: %s}\n",
	         pc->h, pc->w, pc->c, type, pc->ph, pc->pw, strides, pc->same ? "same" : "valid");
}

START_TEST(test_maxpool2d)
{
	char yaml[256];
	pool_yaml(yaml, sizeof(yaml), "maxpool2d", &pool_cases[_i]);
	grad_opts o = {.batch = 2, .input = INPUT_DISTINCT, .kinks = true};
	check_gradients(yaml, &o, 60 + (unsigned)_i);
}
END_TEST

START_TEST(test_averagepool2d)
{
	char yaml[256];
	pool_yaml(yaml, sizeof(yaml), "AveragePooling2D", &pool_cases[_i]);
	grad_opts o = {.batch = 2, .input = INPUT_RANDOM};
	check_gradients(yaml, &o, 70 + (unsigned)_i);
}
END_TEST

/* Ties: each window's gradient goes to its first maximum in row-major window order, the one the
 * forward pass reports. Inputs drawn from {0, 0.5, 1} tie everywhere. Overlapping 'same'
 * windows route some elements several gradients (the gather); tiling windows write each cell
 * once (odd sizes leave rows and columns no window reads, a stride past the window leaves gaps),
 * with channels in vectors of 1, 2 and 8. */
typedef struct ties_case {
	int h, w, c, p, s;
	bool same;
} ties_case;

static const ties_case ties_cases[] = {
	{6, 5, 2, 3, 1, true},
	{7, 5, 3, 2, 2, false},
	{7, 8, 8, 2, 3, true},
};

START_TEST(test_maxpool2d_ties)
{
	const ties_case *tc = &ties_cases[_i];
	const int n = 2, h = tc->h, w = tc->w, c = tc->c, p = tc->p, s = tc->s;
	const int oh = tc->same ? (h + s - 1) / s : (h - p) / s + 1;
	const int ow = tc->same ? (w + s - 1) / s : (w - p) / s + 1;
	const int pad_h = tc->same ? (oh - 1) * s + p - h : 0, pad_w = tc->same ? (ow - 1) * s + p - w : 0;
	const int pt = pad_h > 0 ? pad_h / 2 : 0, pl = pad_w > 0 ? pad_w / 2 : 0;
	char yaml[256];
	snprintf(yaml, sizeof(yaml),
	         "input: {shape: [%d, %d, %d]}\n"
	         "layers:\n"
	         "  - {type: maxpool2d, pool_size: %d, strides: %d, padding: %s}\n",
	         h, w, c, p, s, tc->same ? "same" : "valid");
	grad_opts o = {.batch = (uint32_t)n};
	ts_fd f;
	fd_open(&f, yaml, &o, 90 + (unsigned)_i);
	ck_assert_uint_eq(f.out_count, (size_t)n * oh * ow * c);
	for (size_t i = 0; i < f.in_count; i++)
		f.x[i] = 0.5f * floorf((f.x[i] + 1.0f) * 1.5f);
	ts_tensor_write(f.dev.rt, &f.net.s->input, 0, f.x, f.in_count);
	ts_fd_forward(&f);
	ts_fd_poison(&f);
	float *dx = ts_floats(f.in_count);
	ts_tensor_read(f.dev.rt, ts_fd_backward(&f, true), dx, f.in_count);

	double *want = calloc(f.in_count, sizeof(*want));
	ck_assert_ptr_nonnull(want);
	size_t ties = 0;
	for (int b = 0; b < n; b++)
		for (int oy = 0; oy < oh; oy++)
			for (int ox = 0; ox < ow; ox++)
				for (int ci = 0; ci < c; ci++) {
					int at = -1, count = 0;
					float m = -INFINITY;
					for (int y = oy * s - pt; y < oy * s - pt + p; y++)
						for (int x = ox * s - pl; x < ox * s - pl + p; x++) {
							if (y < 0 || y >= h || x < 0 || x >= w)
								continue;
							size_t i = (((size_t)b * h + y) * w + x) * c + ci;
							count += f.x[i] == m;
							if (f.x[i] > m) {
								m = f.x[i];
								at = (int)i;
								count = 1;
							}
						}
					ties += count > 1;
					want[at] += f.r[(((size_t)b * oh + oy) * ow + ox) * c + ci];
				}
	ck_assert_msg(ties > f.out_count / 4, "only %zu of %zu windows tie", ties, f.out_count);
	for (size_t i = 0; i < f.in_count; i++)
		ck_assert_msg(fabs(dx[i] - want[i]) <= 1e-5 * fmax(1.0, fabs(want[i])),
		              "dx[%zu]: device %.7g, host %.7g", i, (double)dx[i], want[i]);
	free(want);
	free(dx);
	ts_fd_close(&f);
}
END_TEST

/* ---- dropout, flatten, activation ------------------------------------------------------------- */

START_TEST(test_dropout_training)
{
	const double rate = 0.4;
	grad_opts o = {.batch = 3, .step = 7, .input = INPUT_NONZERO};
	const char *yaml = "input: {shape: [4, 5, 3]}\nlayers:\n  - {type: dropout, rate: 0.4}\n";
	check_gradients(yaml, &o, 80);

	/* The mask of the backward pass is the forward pass's: dx = r / (1 - rate) where the output
	 * kept the (non-zero) input, 0 where it dropped it. */
	ts_fd f;
	fd_open(&f, yaml, &o, 81);
	ts_fd_forward(&f);
	ts_tensor_read(f.dev.rt, st_session_output(f.net.s), f.y, f.out_count);
	float *dx = ts_floats(f.in_count);
	ts_tensor_read(f.dev.rt, ts_fd_backward(&f, true), dx, f.in_count);
	size_t dropped = 0;
	for (size_t i = 0; i < f.in_count; i++) {
		double want = f.y[i] == 0.0f ? 0.0 : f.r[i] / (1.0 - rate);
		dropped += f.y[i] == 0.0f;
		ck_assert_msg(fabs(dx[i] - want) <= 1e-6 * fmax(1.0, fabs(want)), "dx[%zu]: %g, want %g", i,
		              (double)dx[i], want);
	}
	ck_assert_msg(dropped > 0 && dropped < f.in_count, "%zu of %zu dropped", dropped, f.in_count);
	free(dx);
	ts_fd_close(&f);
}
END_TEST

START_TEST(test_dropout_rate_zero_is_identity)
{
	grad_opts o = {.batch = 2, .step = 3, .input = INPUT_RANDOM};
	ts_fd f;
	fd_open(&f, "input: {shape: [11]}\nlayers:\n  - {type: dropout, rate: 0.0}\n", &o, 85);
	ts_fd_forward(&f);
	float *dx = ts_floats(f.in_count);
	ts_tensor_read(f.dev.rt, ts_fd_backward(&f, true), dx, f.in_count);
	for (size_t i = 0; i < f.in_count; i++)
		ck_assert_msg(dx[i] == f.r[i], "dx[%zu]: %g, want %g", i, (double)dx[i], (double)f.r[i]);
	free(dx);
	ts_fd_close(&f);
}
END_TEST

START_TEST(test_flatten)
{
	grad_opts o = {.batch = 2, .input = INPUT_RANDOM};
	const char *yaml = "input: {shape: [3, 4, 2]}\nlayers:\n  - {type: flatten}\n";
	check_gradients(yaml, &o, 86);
	ts_fd f;
	fd_open(&f, yaml, &o, 87);
	ts_fd_forward(&f);
	float *dx = ts_floats(f.in_count);
	ts_tensor_read(f.dev.rt, ts_fd_backward(&f, true), dx, f.in_count);
	ck_assert_int_eq(memcmp(dx, f.r, f.in_count * sizeof(*dx)), 0);
	free(dx);
	ts_fd_close(&f);
}
END_TEST

START_TEST(test_activation)
{
	const int act = _i % ACT_COUNT;
	const bool image = _i >= ACT_COUNT;
	char yaml[256];
	snprintf(yaml, sizeof(yaml), "input: {shape: %s}\nlayers:\n  - {type: Activation, activation: %s}\n",
	         image ? "[3, 4, 5]" : "[7]", act_names[act]);
	grad_opts o = {.batch = 2, .input = INPUT_NONZERO, .kinks = act == ACT_RELU};
	check_gradients(yaml, &o, 100 + (unsigned)_i);
}
END_TEST

/* Softmax along the last axis of an image-shaped input, as Keras' Activation does. */
START_TEST(test_activation_softmax_axis)
{
	grad_opts o = {.batch = 2, .input = INPUT_RANDOM};
	ts_fd f;
	fd_open(&f, "input: {shape: [2, 3, 4]}\nlayers:\n  - {type: activation, activation: softmax}\n", &o,
	        110);
	ts_fd_forward(&f);
	ts_tensor_read(f.dev.rt, st_session_output(f.net.s), f.y, f.out_count);
	for (size_t row = 0; row < f.out_count / 4; row++) {
		double m = -INFINITY, s = 0.0;
		for (int j = 0; j < 4; j++)
			m = fmax(m, f.x[row * 4 + j]);
		for (int j = 0; j < 4; j++)
			s += exp(f.x[row * 4 + j] - m);
		for (int j = 0; j < 4; j++) {
			double want = exp(f.x[row * 4 + j] - m) / s;
			ck_assert_msg(fabs(f.y[row * 4 + j] - want) <= 1e-6, "softmax[%zu][%d]: %g, want %g", row,
			              j, (double)f.y[row * 4 + j], want);
		}
	}
	ts_fd_close(&f);
}
END_TEST

/* ---- layers together -------------------------------------------------------------------------- */

START_TEST(test_chain_cnn)
{
	/* tanh keeps the convolution smooth; the smaller step makes max flips rare, and the kink
	 * check skips the few left. */
	grad_opts o = {.batch = 2, .step = 5, .input = INPUT_RANDOM, .eps = 1e-3, .kinks = true};
	check_gradients("input: {shape: [8, 8, 1]}\n"
	                "layers:\n"
	                "  - {type: Conv2D, filters: 3, kernel_size: 3, activation: tanh}\n"
	                "  - {type: MaxPooling2D}\n"
	                "  - {type: Dropout, rate: 0.3}\n"
	                "  - {type: Flatten}\n"
	                "  - {type: Dense, units: 5, activation: softmax}\n",
	                &o, 120);
}
END_TEST

START_TEST(test_chain_activation_layers)
{
	grad_opts o = {.batch = 2, .input = INPUT_RANDOM, .kinks = true};
	check_gradients("input: {shape: [6, 6, 2]}\n"
	                "layers:\n"
	                "  - {type: conv2d, filters: 3, kernel_size: 3, padding: same, use_bias: false}\n"
	                "  - {type: activation, activation: relu}\n"
	                "  - {type: averagepool2d, pool_size: 2}\n"
	                "  - {type: flatten}\n"
	                "  - {type: dense, units: 4, activation: sigmoid}\n"
	                "  - {type: activation, activation: softmax}\n",
	                &o, 130);
}
END_TEST

/* ---- the loss's fused softmax (activation_folded) ----------------------------------------------- */

/* With folded = true, grad_output already is dZ: the layer must skip the softmax derivative and
 * give dW = X^T dZ, db = colsum(dZ), dX = dZ W^T exactly (to float rounding). */
static void run_folded(ts_fd *f, float *dx, float *dw, float *db, size_t dw_count, size_t db_count)
{
	strata_error err = {0};
	strata_tensor *dx_t = NULL;
	ts_fd_forward(f);
	ts_tensor_write(f->dev.rt, st_session_output_grad(f->net.s), 0, f->r, f->out_count);
	strata_status st = st_session_backward(f->net.s, f->batch, true, &dx_t, &err);
	ck_assert_msg(st == STRATA_OK, "backward: %s", err.message);
	ts_tensor_read(f->dev.rt, dx_t, dx, f->in_count);
	ts_tensor_read(f->dev.rt, &f->net.s->binds[0].grads[0], dw, dw_count);
	ts_tensor_read(f->dev.rt, &f->net.s->binds[0].grads[1], db, db_count);
}

static void check_ref(const char *what, const float *got, const double *want, size_t n)
{
	for (size_t i = 0; i < n; i++)
		ck_assert_msg(fabs(got[i] - want[i]) <= 1e-5 * fmax(1.0, fabs(want[i])),
		              "%s[%zu]: device %.7g, host %.7g", what, i, (double)got[i], want[i]);
}

START_TEST(test_dense_softmax_folded)
{
	const int n = 4, in = 6, units = 5;
	grad_opts o = {.batch = (uint32_t)n};
	ts_fd f;
	fd_open(&f, "input: {shape: [6]}\nlayers:\n  - {type: dense, units: 5, activation: softmax}\n", &o,
	        140);
	const float *w = f.w[0];
	float dx[4 * 6], dw[6 * 5], db[5];
	run_folded(&f, dx, dw, db, 30, 5);

	double want_dx[4 * 6] = {0}, want_dw[6 * 5] = {0}, want_db[5] = {0};
	for (int b = 0; b < n; b++)
		for (int u = 0; u < units; u++) {
			double dz = f.r[b * units + u];
			want_db[u] += dz;
			for (int i = 0; i < in; i++) {
				want_dw[i * units + u] += (double)f.x[b * in + i] * dz;
				want_dx[b * in + i] += dz * w[i * units + u];
			}
		}
	check_ref("dW", dw, want_dw, 30);
	check_ref("db", db, want_db, 5);
	check_ref("dX", dx, want_dx, 24);
	ts_fd_close(&f);
}
END_TEST

START_TEST(test_conv2d_softmax_folded)
{
	/* 5x6x2 input, 3x3 kernel, stride 2, same: a 3x3 output; TensorFlow pads 2 rows (one on
	 * each side) and 1 column (on the right only). */
	const int n = 2, h = 5, w = 6, c = 2, k = 3, s = 2, filters = 4, oh = 3, ow = 3, pt = 1, pl = 0;
	grad_opts o = {.batch = (uint32_t)n};
	ts_fd f;
	fd_open(&f,
	        "input: {shape: [5, 6, 2]}\n"
	        "layers:\n"
	        "  - {type: conv2d, filters: 4, kernel_size: 3, strides: 2, padding: same,\n"
	        "     activation: softmax}\n",
	        &o, 150);
	const float *kernel = f.w[0];
	enum { DW = 3 * 3 * 2 * 4, DX = 2 * 5 * 6 * 2 };
	float dx[DX], dw[DW], db[4];
	run_folded(&f, dx, dw, db, DW, 4);

	double want_dx[DX] = {0}, want_dw[DW] = {0}, want_db[4] = {0};
	/* Over every output element (b, oy, ox, fi) and every kernel tap (ky, kx, ci) it reads. */
	for (int o_i = 0; o_i < n * oh * ow * filters; o_i++) {
		const int fi = o_i % filters, ox = o_i / filters % ow, oy = o_i / (filters * ow) % oh;
		const int b = o_i / (filters * ow * oh);
		const double dz = f.r[o_i];
		want_db[fi] += dz;
		for (int tap = 0; tap < k * k * c; tap++) {
			const int ci = tap % c, kx = tap / c % k, ky = tap / (c * k);
			const int y = oy * s - pt + ky, x = ox * s - pl + kx;
			if (y < 0 || y >= h || x < 0 || x >= w)
				continue;
			const int xi = ((b * h + y) * w + x) * c + ci, wi = tap * filters + fi; /* NHWC, HWIO */
			want_dw[wi] += (double)f.x[xi] * dz;
			want_dx[xi] += dz * kernel[wi];
		}
	}
	check_ref("dW", dw, want_dw, DW);
	check_ref("db", db, want_db, 4);
	check_ref("dX", dx, want_dx, DX);
	ts_fd_close(&f);
}
END_TEST

static Suite *layers_backward_suite(void)
{
	Suite *s = suite_create("layers_backward");
	TCase *tc = tcase_create("finite_differences");
	tcase_add_loop_test(tc, test_conv2d, 0, (int)(sizeof(conv_cases) / sizeof(conv_cases[0])));
	tcase_add_loop_test(tc, test_dense, 0, (int)(sizeof(dense_cases) / sizeof(dense_cases[0])));
	tcase_add_loop_test(tc, test_maxpool2d, 0, (int)(sizeof(pool_cases) / sizeof(pool_cases[0])));
	tcase_add_loop_test(tc, test_averagepool2d, 0, (int)(sizeof(pool_cases) / sizeof(pool_cases[0])));
	tcase_add_test(tc, test_dropout_training);
	tcase_add_test(tc, test_flatten);
	tcase_add_loop_test(tc, test_activation, 0, 2 * ACT_COUNT);
	tcase_add_test(tc, test_chain_cnn);
	tcase_add_test(tc, test_chain_activation_layers);
	suite_add_tcase(s, tc);

	TCase *ref = tcase_create("references");
	tcase_add_loop_test(ref, test_maxpool2d_ties, 0, (int)(sizeof(ties_cases) / sizeof(ties_cases[0])));
	tcase_add_test(ref, test_dropout_rate_zero_is_identity);
	tcase_add_test(ref, test_activation_softmax_axis);
	tcase_add_test(ref, test_dense_softmax_folded);
	tcase_add_test(ref, test_conv2d_softmax_folded);
	suite_add_tcase(s, ref);
	return s;
}

int main(void)
{
	return ts_run(layers_backward_suite());
}
