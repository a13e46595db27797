/* Forward passes of the layer plugins on the OpenCL device, each compared with a plain host
 * reference computed in double precision from the same random weights and inputs. */
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "support.h"

#include "model/model.h"
#include "plugin/registry.h"
#include "device/runtime.h"
#include "exec/host_api.h"
#include "exec/session.h"

/* float32 device results against double host references: relative, with an absolute floor for
 * values near zero. */
#define TOLERANCE 1e-4

/* Every activation by Keras' name, the aliases included (issue 14 added those after softmax). */
enum {
	ACT_LINEAR, ACT_RELU, ACT_SIGMOID, ACT_TANH, ACT_SOFTMAX, ACT_ELU, ACT_SELU, ACT_GELU, ACT_SWISH, ACT_SILU,
	ACT_SOFTPLUS, ACT_SOFTSIGN, ACT_HARD_SIGMOID, ACT_EXPONENTIAL, ACT_RELU6, ACT_LEAKY_RELU, ACT_HARD_SILU,
	ACT_HARD_SWISH, ACT_MISH, ACT_LOG_SOFTMAX, ACT_COUNT
};
static const char *const act_names[ACT_COUNT] = {
	"linear", "relu", "sigmoid", "tanh", "softmax", "elu", "selu", "gelu", "swish", "silu", "softplus", "softsign",
	"hard_sigmoid", "exponential", "relu6", "leaky_relu", "hard_silu", "hard_swish", "mish", "log_softmax",
};

/* ---- Running one model ------------------------------------------------------------------------ */

/* Checks the weight's declared shape, then uploads random values and returns them. */
static float *run_random_weight(const ts_net *r, size_t layer, size_t index, const char *name,
                                const strata_shape *shape, unsigned seed, float lo, float hi)
{
	const char *got_name = NULL;
	strata_shape got = {0};
	strata_error err = {0};
	ck_assert_int_eq(strata_session_weight_info(r->s, layer, index, &got_name, &got), STRATA_OK);
	ck_assert_str_eq(got_name, name);
	ck_assert_uint_eq(got.rank, shape->rank);
	size_t count = 1;
	for (uint32_t i = 0; i < shape->rank; i++) {
		ck_assert_msg(got.dims[i] == shape->dims[i], "%s dim %u: got %lld, want %lld", name, i,
		              (long long)got.dims[i], (long long)shape->dims[i]);
		count *= (size_t)shape->dims[i];
	}
	float *w = malloc(count * sizeof(*w));
	ck_assert_ptr_nonnull(w);
	ts_fill_random(w, count, seed, lo, hi);
	strata_status st = strata_session_write_weight(r->s, layer, index, w, count, &err);
	ck_assert_msg(st == STRATA_OK, "write %s: %s", name, err.message);
	return w;
}

static void run_forward(const ts_net *r, const float *in, uint32_t batch, float *out)
{
	strata_error err = {0};
	strata_status st = strata_session_forward(r->s, in, batch, out, &err);
	ck_assert_msg(st == STRATA_OK, "forward: %s", err.message);
}

static void check_output_shape(const ts_net *r, size_t layer, uint32_t rank, const int64_t *dims)
{
	strata_shape s = strata_model_output_shape(r->m, layer);
	ck_assert_uint_eq(s.rank, rank);
	for (uint32_t i = 0; i < rank; i++)
		ck_assert_msg(s.dims[i] == dims[i], "output dim %u: got %lld, want %lld", i,
		              (long long)s.dims[i], (long long)dims[i]);
}

static float *random_floats(size_t n, unsigned seed, float lo, float hi)
{
	float *p = malloc(n * sizeof(*p));
	ck_assert_ptr_nonnull(p);
	ts_fill_random(p, n, seed, lo, hi);
	return p;
}

static void check_close(const char *what, const float *got, const double *want, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		double d = fabs((double)got[i] - want[i]);
		ck_assert_msg(isfinite(got[i]) && d <= TOLERANCE * (1.0 + fabs(want[i])),
		              "%s[%zu]: device %.7g, host %.7g", what, i, (double)got[i], want[i]);
	}
}

/* ---- Host references -------------------------------------------------------------------------- */

/* TensorFlow's output size and leading padding of one windowed dimension. */
static void window_dim(int in, int k, int s, bool same, int *out, int *pad_before)
{
	if (same) {
		*out = (in + s - 1) / s;
		int pad = (*out - 1) * s + k - in;
		*pad_before = pad > 0 ? pad / 2 : 0;
	} else {
		*out = (in - k) / s + 1;
		*pad_before = 0;
	}
}

/* Keras 3's definitions (keras/src/activations/activations.py), in double. */
static double ref_activation_of(double v, int act)
{
	const double selu_alpha = 1.6732632423543772, selu_scale = 1.0507009873554805;
	double hs = fmin(fmax(v / 6.0 + 0.5, 0.0), 1.0); /* hard_sigmoid: relu6(x + 3) / 6 */
	double sp = v > 0 ? v + log1p(exp(-v)) : log1p(exp(v));
	switch (act) {
	case ACT_RELU: return fmax(v, 0.0);
	case ACT_SIGMOID: return 1.0 / (1.0 + exp(-v));
	case ACT_TANH: return tanh(v);
	case ACT_ELU: return v > 0 ? v : expm1(v);
	case ACT_SELU: return selu_scale * (v > 0 ? v : selu_alpha * expm1(v));
	case ACT_GELU: return 0.5 * v * (1.0 + erf(v / sqrt(2.0)));
	case ACT_SWISH:
	case ACT_SILU: return v / (1.0 + exp(-v));
	case ACT_SOFTPLUS: return sp;
	case ACT_SOFTSIGN: return v / (1.0 + fabs(v));
	case ACT_HARD_SIGMOID: return hs;
	case ACT_EXPONENTIAL: return exp(v);
	case ACT_RELU6: return fmin(fmax(v, 0.0), 6.0);
	case ACT_LEAKY_RELU: return v > 0 ? v : 0.2 * v;
	case ACT_HARD_SILU:
	case ACT_HARD_SWISH: return v * hs;
	case ACT_MISH: return v * tanh(sp);
	default: return v;
	}
}

/* Activation in place over rows x cols; softmax along each row. */
static void ref_activation(double *x, size_t rows, size_t cols, int act)
{
	for (size_t r = 0; r < rows; r++) {
		double *row = x + r * cols;
		if (act == ACT_SOFTMAX || act == ACT_LOG_SOFTMAX) {
			double m = row[0], s = 0.0;
			for (size_t j = 1; j < cols; j++)
				m = fmax(m, row[j]);
			for (size_t j = 0; j < cols; j++)
				s += exp(row[j] - m);
			for (size_t j = 0; j < cols; j++)
				row[j] = act == ACT_SOFTMAX ? exp(row[j] - m) / s : row[j] - m - log(s);
			continue;
		}
		for (size_t j = 0; j < cols; j++)
			row[j] = ref_activation_of(row[j], act);
	}
}

typedef struct conv_case {
	int h, w, c;
	int kh, kw, sh, sw;
	bool same;
	int filters;
	bool use_bias;
	int act;
} conv_case;

/* NHWC input, HWIO kernel; out is [n, oh, ow, filters]. */
/* One output value of the convolution, before the activation. */
static double ref_conv2d_at(const conv_case *cc, const float *in, const float *kernel, const float *bias,
                            int b, int oy, int ox, int f, int pt, int pl)
{
	double acc = bias ? bias[f] : 0.0;
	for (int ky = 0; ky < cc->kh; ky++)
		for (int kx = 0; kx < cc->kw; kx++) {
			int y = oy * cc->sh - pt + ky, x = ox * cc->sw - pl + kx;
			if (y < 0 || y >= cc->h || x < 0 || x >= cc->w)
				continue;
			const float *pixel = in + ((b * cc->h + y) * cc->w + x) * cc->c;
			const float *taps = kernel + (ky * cc->kw + kx) * cc->c * cc->filters + f;
			for (int ci = 0; ci < cc->c; ci++)
				acc += (double)pixel[ci] * taps[ci * cc->filters];
		}
	return acc;
}

static void ref_conv2d(const conv_case *cc, int n, const float *in, const float *kernel, const float *bias,
                       int oh, int ow, int pt, int pl, double *out)
{
	for (int b = 0; b < n; b++)
		for (int oy = 0; oy < oh; oy++)
			for (int ox = 0; ox < ow; ox++)
				for (int f = 0; f < cc->filters; f++)
					out[((b * oh + oy) * ow + ox) * cc->filters + f] =
						ref_conv2d_at(cc, in, kernel, bias, b, oy, ox, f, pt, pl);
	ref_activation(out, (size_t)n * oh * ow, (size_t)cc->filters, cc->act);
}

static void ref_dense(int n, int inputs, int units, const float *in, const float *kernel, const float *bias,
                      int act, double *out)
{
	for (int b = 0; b < n; b++)
		for (int u = 0; u < units; u++) {
			double acc = bias ? bias[u] : 0.0;
			for (int i = 0; i < inputs; i++)
				acc += (double)in[b * inputs + i] * kernel[i * units + u];
			out[b * units + u] = acc;
		}
	ref_activation(out, (size_t)n, (size_t)units, act);
}

typedef struct pool_case {
	int h, w, c;
	int ph, pw;
	int sh, sw; /* 0: not given, Keras' None (= pool size) */
	bool same;
	bool default_pool; /* pool_size not given: Keras' default (2, 2) */
} pool_case;

/* Max over the window's positions inside the input; padding never wins. */
static double ref_maxpool_at(const pool_case *pc, const float *in, int b, int oy, int ox, int ci, int pt,
                             int pl)
{
	int sh = pc->sh ? pc->sh : pc->ph, sw = pc->sw ? pc->sw : pc->pw;
	double m = -INFINITY;
	for (int ky = 0; ky < pc->ph; ky++)
		for (int kx = 0; kx < pc->pw; kx++) {
			int y = oy * sh - pt + ky, x = ox * sw - pl + kx;
			if (y >= 0 && y < pc->h && x >= 0 && x < pc->w)
				m = fmax(m, in[((b * pc->h + y) * pc->w + x) * pc->c + ci]);
		}
	return m;
}

static void ref_maxpool(const pool_case *pc, int n, const float *in, int oh, int ow, int pt, int pl,
                        double *out)
{
	for (int b = 0; b < n; b++)
		for (int oy = 0; oy < oh; oy++)
			for (int ox = 0; ox < ow; ox++)
				for (int ci = 0; ci < pc->c; ci++)
					out[((b * oh + oy) * ow + ox) * pc->c + ci] =
						ref_maxpool_at(pc, in, b, oy, ox, ci, pt, pl);
}

static void check_rows_sum_to_one(const float *x, size_t rows, size_t cols)
{
	for (size_t r = 0; r < rows; r++) {
		double s = 0.0;
		for (size_t j = 0; j < cols; j++) {
			ck_assert_msg(x[r * cols + j] >= 0.0f, "softmax row %zu has a negative entry", r);
			s += x[r * cols + j];
		}
		ck_assert_msg(fabs(s - 1.0) < 1e-5, "softmax row %zu sums to %.8f", r, s);
	}
}

/* ---- conv2d ----------------------------------------------------------------------------------- */

static const conv_case conv_cases[] = {
	/* h  w  c  kh kw sh sw same   f  bias   act */
	{5, 5, 1, 3, 3, 1, 1, false, 4, true, ACT_RELU},
	{7, 6, 3, 3, 3, 1, 1, true, 5, true, ACT_LINEAR},
	{9, 7, 2, 3, 2, 2, 2, false, 3, true, ACT_SIGMOID},
	{8, 9, 3, 3, 3, 2, 2, true, 4, false, ACT_TANH},
	{7, 7, 2, 4, 4, 2, 3, true, 6, true, ACT_SOFTMAX},  /* even kernel: more padding bottom/right */
	{6, 5, 3, 1, 1, 1, 1, false, 4, true, ACT_RELU},    /* 1x1: no im2col */
	{11, 13, 1, 5, 3, 3, 2, true, 2, false, ACT_LINEAR},
	{5, 5, 4, 5, 5, 1, 1, false, 3, true, ACT_SOFTMAX}, /* kernel as large as the input: 1x1 output */
	{13, 11, 3, 3, 3, 1, 1, false, 70, false, ACT_SOFTMAX}, /* softmax rows wider than a work-group */
	{6, 7, 2, 2, 2, 1, 1, true, 3, false, ACT_SIGMOID},
	/* channels and filters that are multiples of the kernels' vector widths (16 and 8) */
	{7, 6, 16, 3, 3, 1, 1, true, 32, true, ACT_RELU},
	{9, 8, 8, 3, 3, 2, 2, false, 16, true, ACT_SIGMOID},
	{6, 5, 3, 3, 3, 1, 1, true, 4, true, ACT_SWISH},
	{6, 5, 3, 3, 3, 1, 1, false, 4, true, ACT_SELU},
};

START_TEST(test_conv2d)
{
	const conv_case *cc = &conv_cases[_i];
	const int n = 3;
	char yaml[512];
	snprintf(yaml, sizeof(yaml),
	         "input: {shape: [%d, %d, %d]}\n"
	         "layers:\n"
	         "  - type: conv2d\n"
	         "    filters: %d\n"
	         "    kernel_size: [%d, %d]\n"
	         "    strides: [%d, %d]\n"
	         "    padding: %s\n"
	         "    activation: %s\n"
	         "    use_bias: %s\n",
	         cc->h, cc->w, cc->c, cc->filters, cc->kh, cc->kw, cc->sh, cc->sw,
	         cc->same ? "same" : "valid", act_names[cc->act], cc->use_bias ? "true" : "false");
	int oh, ow, pt, pl;
	window_dim(cc->h, cc->kh, cc->sh, cc->same, &oh, &pt);
	window_dim(cc->w, cc->kw, cc->sw, cc->same, &ow, &pl);

	ts_device dev = ts_device_open();
	ts_net r = ts_net_open(&dev, yaml, n, 1);
	check_output_shape(&r, 0, 3, (int64_t[]){oh, ow, cc->filters});
	ck_assert_uint_eq(strata_session_weight_count(r.s, 0), cc->use_bias ? 2 : 1);
	strata_shape kshape = {.rank = 4, .dims = {cc->kh, cc->kw, cc->c, cc->filters}};
	float *kernel = run_random_weight(&r, 0, 0, "kernel", &kshape, 11 + _i, -0.5f, 0.5f);
	float *bias = NULL;
	if (cc->use_bias) {
		strata_shape bshape = {.rank = 1, .dims = {cc->filters}};
		bias = run_random_weight(&r, 0, 1, "bias", &bshape, 23 + _i, -0.5f, 0.5f);
	}
	size_t in_count = (size_t)n * cc->h * cc->w * cc->c;
	size_t out_count = (size_t)n * oh * ow * cc->filters;
	float *in = random_floats(in_count, 37 + _i, -1.0f, 1.0f);
	float *out = malloc(out_count * sizeof(*out));
	double *want = malloc(out_count * sizeof(*want));
	ck_assert(out && want);

	run_forward(&r, in, n, out);
	ref_conv2d(cc, n, in, kernel, bias, oh, ow, pt, pl, want);
	check_close("conv2d", out, want, out_count);
	if (cc->act == ACT_SOFTMAX)
		check_rows_sum_to_one(out, (size_t)n * oh * ow, (size_t)cc->filters);

	/* A smaller batch than planned reads and writes only its own samples. */
	run_forward(&r, in, 1, out);
	check_close("conv2d batch 1", out, want, out_count / n);

	free(want);
	free(out);
	free(in);
	free(bias);
	free(kernel);
	ts_net_close(&r);
	ts_device_close(&dev);
}
END_TEST

/* ---- dense ------------------------------------------------------------------------------------ */

typedef struct dense_case {
	int inputs, units;
	bool use_bias;
	int act;
	float input_scale; /* large inputs push softmax logits far past exp()'s float range */
	int lead[2];       /* axes before the features (0: none): Dense maps every row of the last axis */
} dense_case;

static const dense_case dense_cases[] = {
	{37, 11, true, ACT_RELU, 1.0f, {0, 0}},
	{20, 10, true, ACT_SOFTMAX, 1.0f, {0, 0}},
	{64, 5, false, ACT_LINEAR, 1.0f, {0, 0}},
	{33, 7, true, ACT_SIGMOID, 4.0f, {0, 0}},
	{15, 9, true, ACT_TANH, 2.0f, {0, 0}},
	{50, 150, true, ACT_SOFTMAX, 100.0f, {0, 0}},
	{1, 3, false, ACT_SOFTMAX, 1.0f, {0, 0}},
	{20, 300, true, ACT_RELU, 1.0f, {0, 0}}, /* rows wider than a work-group */
	{12, 32, true, ACT_TANH, 1.0f, {0, 0}},
	/* the activations of issue 14 fused: gelu and mish keep their input for the backward pass */
	{17, 9, true, ACT_GELU, 3.0f, {0, 0}},
	{17, 9, false, ACT_MISH, 3.0f, {0, 0}},
	{17, 9, true, ACT_ELU, 3.0f, {0, 0}},
	{17, 9, true, ACT_HARD_SIGMOID, 3.0f, {0, 0}},
	/* inputs of rank 2 and 3: (timesteps, features), (h, w, c) */
	{7, 5, true, ACT_RELU, 1.0f, {6, 0}},
	{3, 4, true, ACT_SOFTMAX, 2.0f, {4, 5}},
	{9, 2, false, ACT_TANH, 1.0f, {1, 3}},
};

START_TEST(test_dense)
{
	const dense_case *dc = &dense_cases[_i];
	const int n = 5;
	char yaml[512], lead[32] = "";
	int rank = 1, rows = 1;
	int64_t out_dims[3];
	for (int a = 0; a < 2 && dc->lead[a]; a++) {
		snprintf(lead + strlen(lead), sizeof(lead) - strlen(lead), "%d, ", dc->lead[a]);
		out_dims[rank - 1] = dc->lead[a];
		rows *= dc->lead[a];
		rank++;
	}
	out_dims[rank - 1] = dc->units;
	snprintf(yaml, sizeof(yaml),
	         "input: {shape: [%s%d]}\n"
	         "layers:\n"
	         "  - type: Dense\n"
	         "    units: %d\n"
	         "    activation: %s\n"
	         "    use_bias: %s\n",
	         lead, dc->inputs, dc->units, act_names[dc->act], dc->use_bias ? "true" : "false");
	ts_device dev = ts_device_open();
	ts_net r = ts_net_open(&dev, yaml, n, 1);
	check_output_shape(&r, 0, (uint32_t)rank, out_dims);
	strata_shape kshape = {.rank = 2, .dims = {dc->inputs, dc->units}};
	float *kernel = run_random_weight(&r, 0, 0, "kernel", &kshape, 5 + _i, -1.0f, 1.0f);
	float *bias = NULL;
	if (dc->use_bias) {
		strata_shape bshape = {.rank = 1, .dims = {dc->units}};
		bias = run_random_weight(&r, 0, 1, "bias", &bshape, 7 + _i, -1.0f, 1.0f);
	}
	size_t in_count = (size_t)n * rows * dc->inputs, out_count = (size_t)n * rows * dc->units;
	float *in = random_floats(in_count, 3 + _i, -dc->input_scale, dc->input_scale);
	float *out = malloc(out_count * sizeof(*out));
	double *want = malloc(out_count * sizeof(*want));
	ck_assert(out && want);

	run_forward(&r, in, n, out);
	ref_dense(n * rows, dc->inputs, dc->units, in, kernel, bias, dc->act, want);
	check_close("dense", out, want, out_count);
	if (dc->act == ACT_SOFTMAX)
		check_rows_sum_to_one(out, (size_t)n * rows, (size_t)dc->units);

	free(want);
	free(out);
	free(in);
	free(bias);
	free(kernel);
	ts_net_close(&r);
	ts_device_close(&dev);
}
END_TEST

/* ---- maxpool2d -------------------------------------------------------------------------------- */

static const pool_case pool_cases[] = {
	/* h  w  c  ph pw sh sw same  default_pool */
	{6, 6, 3, 2, 2, 0, 0, false, true},  /* Keras' defaults */
	{7, 7, 2, 2, 2, 0, 0, false, false}, /* odd: the last row and column are dropped */
	{7, 5, 2, 2, 2, 0, 0, true, false},  /* odd, same: a partial window at the bottom/right */
	{9, 8, 3, 3, 3, 2, 2, false, false},
	{9, 8, 3, 3, 3, 2, 2, true, false},
	{11, 7, 1, 3, 3, 2, 2, true, false},
	{6, 7, 2, 2, 3, 1, 1, false, false}, /* overlapping windows */
	{5, 5, 2, 2, 2, 3, 3, true, false},  /* stride larger than the window */
	{8, 8, 16, 2, 2, 0, 0, false, false}, /* channels in vectors of 16 */
	{9, 7, 8, 3, 3, 2, 2, true, false},   /* overlapping, vectors of 8 */
};

START_TEST(test_maxpool2d)
{
	const pool_case *pc = &pool_cases[_i];
	const int n = 2;
	char yaml[512], pool[64] = "", strides[64] = "";
	if (!pc->default_pool)
		snprintf(pool, sizeof(pool), "    pool_size: [%d, %d]\n", pc->ph, pc->pw);
	if (pc->sh)
		snprintf(strides, sizeof(strides), "    strides: [%d, %d]\n", pc->sh, pc->sw);
	snprintf(yaml, sizeof(yaml),
	         "input: {shape: [%d, %d, %d]}\n"
	         "layers:\n"
	         "  - type: maxpool2d\n"
	         "%s%s"
	         "    padding: %s\n",
	         pc->h, pc->w, pc->c, pool, strides, pc->same ? "same" : "valid");
	int oh, ow, pt, pl;
	window_dim(pc->h, pc->ph, pc->sh ? pc->sh : pc->ph, pc->same, &oh, &pt);
	window_dim(pc->w, pc->pw, pc->sw ? pc->sw : pc->pw, pc->same, &ow, &pl);

	ts_device dev = ts_device_open();
	ts_net r = ts_net_open(&dev, yaml, n, 1);
	ck_assert_str_eq(strata_model_layer_name(r.m, 0), "max_pooling2d_1");
	check_output_shape(&r, 0, 3, (int64_t[]){oh, ow, pc->c});
	size_t in_count = (size_t)n * pc->h * pc->w * pc->c, out_count = (size_t)n * oh * ow * pc->c;
	float *in = random_floats(in_count, 17 + _i, -1.0f, 1.0f);
	float *out = malloc(out_count * sizeof(*out));
	double *want = malloc(out_count * sizeof(*want));
	ck_assert(out && want);

	run_forward(&r, in, n, out);
	ref_maxpool(pc, n, in, oh, ow, pt, pl, want);
	check_close("maxpool2d", out, want, out_count);

	free(want);
	free(out);
	free(in);
	ts_net_close(&r);
	ts_device_close(&dev);
}
END_TEST

/* ---- averagepool2d ---------------------------------------------------------------------------- */

/* Mean over the window's positions inside the input: 'same' padding counts no padded position,
 * as TensorFlow's avg_pool. */
static double ref_avgpool_at(const pool_case *pc, const float *in, int b, int oy, int ox, int ci, int pt,
                             int pl)
{
	int sh = pc->sh ? pc->sh : pc->ph, sw = pc->sw ? pc->sw : pc->pw;
	double s = 0.0;
	int count = 0;
	for (int ky = 0; ky < pc->ph; ky++)
		for (int kx = 0; kx < pc->pw; kx++) {
			int y = oy * sh - pt + ky, x = ox * sw - pl + kx;
			if (y >= 0 && y < pc->h && x >= 0 && x < pc->w) {
				s += in[((b * pc->h + y) * pc->w + x) * pc->c + ci];
				count++;
			}
		}
	return s / count;
}

START_TEST(test_averagepool2d)
{
	const pool_case *pc = &pool_cases[_i];
	const int n = 2;
	char yaml[512], pool[64] = "", strides[64] = "";
	if (!pc->default_pool)
		snprintf(pool, sizeof(pool), "    pool_size: [%d, %d]\n", pc->ph, pc->pw);
	if (pc->sh)
		snprintf(strides, sizeof(strides), "    strides: [%d, %d]\n", pc->sh, pc->sw);
	snprintf(yaml, sizeof(yaml),
	         "input: {shape: [%d, %d, %d]}\n"
	         "layers:\n"
	         "  - type: AveragePooling2D\n"
	         "%s%s"
	         "    padding: %s\n",
	         pc->h, pc->w, pc->c, pool, strides, pc->same ? "same" : "valid");
	int oh, ow, pt, pl;
	window_dim(pc->h, pc->ph, pc->sh ? pc->sh : pc->ph, pc->same, &oh, &pt);
	window_dim(pc->w, pc->pw, pc->sw ? pc->sw : pc->pw, pc->same, &ow, &pl);

	ts_device dev = ts_device_open();
	ts_net r = ts_net_open(&dev, yaml, n, 1);
	ck_assert_str_eq(strata_model_layer_name(r.m, 0), "average_pooling2d_1");
	check_output_shape(&r, 0, 3, (int64_t[]){oh, ow, pc->c});
	size_t in_count = (size_t)n * pc->h * pc->w * pc->c, out_count = (size_t)n * oh * ow * pc->c;
	float *in = random_floats(in_count, 19 + _i, -1.0f, 1.0f);
	float *out = malloc(out_count * sizeof(*out));
	double *want = malloc(out_count * sizeof(*want));
	ck_assert(out && want);

	run_forward(&r, in, n, out);
	for (int b = 0; b < n; b++)
		for (int oy = 0; oy < oh; oy++)
			for (int ox = 0; ox < ow; ox++)
				for (int ci = 0; ci < pc->c; ci++)
					want[((b * oh + oy) * ow + ox) * pc->c + ci] =
						ref_avgpool_at(pc, in, b, oy, ox, ci, pt, pl);
	check_close("averagepool2d", out, want, out_count);

	free(want);
	free(out);
	free(in);
	ts_net_close(&r);
	ts_device_close(&dev);
}
END_TEST

/* ---- activation ------------------------------------------------------------------------------- */

/* Every function over an image-shaped input (softmax along the last axis, as Keras') and over a
 * vector; large inputs push softmax past exp()'s float range. */
START_TEST(test_activation)
{
	const int act = _i % ACT_COUNT;
	const bool image = _i / ACT_COUNT == 0;
	/* exp() of 100 is past float's range: the exponential's large inputs stay below 80. */
	const float scale = _i / ACT_COUNT == 2 ? (act == ACT_EXPONENTIAL ? 80.0f : 100.0f) : 4.0f;
	const int n = 3, rows = image ? 3 * 4 : 1, cols = image ? 5 : 9;
	char yaml[256];
	snprintf(yaml, sizeof(yaml), "input: {shape: %s}\nlayers:\n  - {type: activation, activation: %s}\n",
	         image ? "[3, 4, 5]" : "[9]", act_names[act]);
	ts_device dev = ts_device_open();
	ts_net r = ts_net_open(&dev, yaml, n, 1);
	ck_assert_str_eq(strata_model_layer_name(r.m, 0), "activation_1");
	check_output_shape(&r, 0, image ? 3 : 1, image ? (int64_t[]){3, 4, 5} : (int64_t[]){9});
	size_t count = (size_t)n * rows * cols;
	float *in = random_floats(count, 29 + _i, -scale, scale);
	float *out = malloc(count * sizeof(*out));
	double *want = malloc(count * sizeof(*want));
	ck_assert(out && want);
	for (size_t i = 0; i < count; i++)
		want[i] = in[i];
	ref_activation(want, (size_t)n * rows, (size_t)cols, act);

	run_forward(&r, in, n, out);
	check_close("activation", out, want, count);
	if (act == ACT_SOFTMAX)
		check_rows_sum_to_one(out, (size_t)n * rows, (size_t)cols);

	free(want);
	free(out);
	free(in);
	ts_net_close(&r);
	ts_device_close(&dev);
}
END_TEST

/* ---- dropout and flatten ---------------------------------------------------------------------- */

START_TEST(test_dropout_inference_is_identity)
{
	const int n = 4;
	ts_device dev = ts_device_open();
	ts_net r = ts_net_open(&dev, "input: {shape: [5, 6, 3]}\nlayers:\n  - type: dropout\n    rate: 0.5\n", n, 1);
	check_output_shape(&r, 0, 3, (int64_t[]){5, 6, 3});
	size_t count = (size_t)n * 5 * 6 * 3;
	float *in = random_floats(count, 99, -2.0f, 2.0f);
	float *out = malloc(count * sizeof(*out));
	ck_assert_ptr_nonnull(out);
	run_forward(&r, in, n, out);
	for (size_t i = 0; i < count; i++)
		ck_assert_msg(out[i] == in[i], "dropout[%zu]: %g, input %g", i, (double)out[i],
		              (double)in[i]);
	free(out);
	free(in);
	ts_net_close(&r);
	ts_device_close(&dev);
}
END_TEST

/* Runs the dropout layer 0 of r's session in training mode on the input of the last forward
 * pass, through the plugin's own forward() as a trainer will call it, and reads the output. */
static void dropout_train(const ts_net *r, uint32_t batch, uint64_t seed, uint64_t step, float *out, size_t count)
{
	strata_session *s = r->s;
	struct strata_layer *layer = &s->model->layers[0];
	strata_error err = {0};
	strata_forward_args args = {
		.size = sizeof(args), .batch = batch, .training = true, .seed = seed, .step = step,
		.input = &s->input, .output = &s->binds[0].output,
	};
	layer->err = &err;
	strata_status st = layer->type->ops.forward(layer, &st_host_api, &args);
	layer->err = NULL;
	ck_assert_msg(st == STRATA_OK, "training forward: %s", err.message);
	st = st_tensor_read(s->rt, &s->binds[0].output, 0, out, count * sizeof(*out), &err);
	ck_assert_msg(st == STRATA_OK, "read: %s", err.message);
}

START_TEST(test_dropout_training)
{
	const uint32_t n = 7;
	const double rate = 0.3;
	const size_t count = (size_t)n * 25 * 25 * 3; /* not a multiple of the 4 draws per work-item */
	ck_assert_uint_ne(count % 4, 0);
	ts_device dev = ts_device_open();
	ts_net r = ts_net_open(&dev, "input: {shape: [25, 25, 3]}\nlayers:\n  - type: dropout\n    rate: 0.3\n", n, 1);
	float *in = random_floats(count, 5, 0.5f, 1.5f); /* never 0, so a 0 output is a dropped element */
	float *a = malloc(count * sizeof(*a)), *b = malloc(count * sizeof(*b));
	ck_assert(a && b);
	run_forward(&r, in, n, a); /* uploads the input */

	dropout_train(&r, n, 42, 7, a, count);
	size_t dropped = 0;
	for (size_t i = 0; i < count; i++) {
		if (a[i] == 0.0f) {
			dropped++;
			continue;
		}
		double want = in[i] / (1.0 - rate);
		ck_assert_msg(fabs(a[i] - want) <= 1e-6 * want, "kept [%zu]: %g, want %g", i, (double)a[i],
		              want);
	}
	/* 13125 draws: the dropped fraction is within 5 standard deviations (0.02) of the rate. */
	double frac = (double)dropped / (double)count;
	ck_assert_msg(fabs(frac - rate) < 5.0 * sqrt(rate * (1.0 - rate) / (double)count) + 1e-9,
	              "dropped %.4f of the elements, rate %.2f", frac, rate);

	/* Same seed and step: the same mask (a backward pass recomputes it); another step: another. */
	dropout_train(&r, n, 42, 7, b, count);
	ck_assert_msg(memcmp(a, b, count * sizeof(*a)) == 0, "same seed and step gave another mask");
	dropout_train(&r, n, 42, 8, b, count);
	size_t differ = 0;
	for (size_t i = 0; i < count; i++)
		differ += (a[i] == 0.0f) != (b[i] == 0.0f);
	ck_assert_msg(differ > count / 10, "steps 7 and 8 share %zu of %zu mask bits", count - differ,
	              count);
	dropout_train(&r, n, 43, 7, b, count);
	differ = 0;
	for (size_t i = 0; i < count; i++)
		differ += (a[i] == 0.0f) != (b[i] == 0.0f);
	ck_assert_msg(differ > count / 10, "seeds 42 and 43 share %zu of %zu mask bits", count - differ,
	              count);

	free(b);
	free(a);
	free(in);
	ts_net_close(&r);
	ts_device_close(&dev);
}
END_TEST

/* Host reference of the dropout mask: Philox-4x32-10 (Salmon et al., SC'11) of counter
 * (i / 4, 0, step) under key (low word of the seed ^ FNV-1a of the layer's name, high word of the
 * seed); element i is kept when word i % 4 of its block is at least rate * 2^32. */
static void philox4x32_10(uint32_t ctr[4], uint32_t k0, uint32_t k1)
{
	for (int round = 0; round < 10; round++) {
		uint64_t p0 = (uint64_t)0xD2511F53u * ctr[0], p1 = (uint64_t)0xCD9E8D57u * ctr[2];
		uint32_t next[4] = {(uint32_t)(p1 >> 32) ^ ctr[1] ^ k0, (uint32_t)p1,
		                    (uint32_t)(p0 >> 32) ^ ctr[3] ^ k1, (uint32_t)p0};
		memcpy(ctr, next, sizeof(next));
		k0 += 0x9E3779B9u;
		k1 += 0xBB67AE85u;
	}
}

static bool ref_dropout_keeps(const char *name, uint64_t seed, uint64_t step, double rate, size_t i)
{
	uint32_t hash = 2166136261u;
	for (const char *c = name; *c; c++)
		hash = (hash ^ (uint8_t)*c) * 16777619u;
	uint32_t ctr[4] = {(uint32_t)(i / 4), 0, (uint32_t)step, (uint32_t)(step >> 32)};
	philox4x32_10(ctr, (uint32_t)seed ^ hash, (uint32_t)(seed >> 32));
	return ctr[i % 4] >= (uint32_t)ldexp(rate, 32);
}

/* The device draws exactly the reference's mask, element for element, with every word of each
 * Philox block used: seed and step above 32 bits, and a count that leaves a partial last block
 * and a partial last work-item. */
START_TEST(test_dropout_mask_is_philox)
{
	const uint32_t n = 5;
	const double rate = 0.3;
	const uint64_t seed = 0x0000000512345678u, step = 0x0000000300000007u;
	const size_t count = (size_t)n * 13 * 11 * 3;
	ck_assert_uint_ne(count % 4, 0);
	ts_device dev = ts_device_open();
	ts_net r = ts_net_open(&dev, "input: {shape: [13, 11, 3]}\nlayers:\n  - type: dropout\n    rate: 0.3\n", n, 1);
	float *in = random_floats(count, 8, 0.5f, 1.5f); /* never 0, so a 0 output is a dropped element */
	float *out = malloc(count * sizeof(*out));
	ck_assert_ptr_nonnull(out);
	run_forward(&r, in, n, out); /* uploads the input */
	dropout_train(&r, n, seed, step, out, count);
	size_t dropped = 0;
	for (size_t i = 0; i < count; i++) {
		bool keep = ref_dropout_keeps("dropout_1", seed, step, rate, i);
		dropped += !keep;
		ck_assert_msg((out[i] != 0.0f) == keep, "element %zu: device %s it, the reference %s it", i,
		              out[i] != 0.0f ? "kept" : "dropped", keep ? "keeps" : "drops");
	}
	ck_assert_msg(dropped > 0 && dropped < count, "%zu of %zu dropped", dropped, count);
	free(out);
	free(in);
	ts_net_close(&r);
	ts_device_close(&dev);
}
END_TEST

START_TEST(test_flatten_order)
{
	const int n = 2, h = 3, w = 4, c = 5;
	ts_device dev = ts_device_open();
	ts_net r = ts_net_open(&dev, "input: {shape: [3, 4, 5]}\nlayers:\n  - type: Flatten\n", n, 1);
	check_output_shape(&r, 0, 1, (int64_t[]){h * w * c});
	size_t count = (size_t)n * h * w * c;
	float *in = malloc(count * sizeof(*in)), *out = malloc(count * sizeof(*out));
	ck_assert(in && out);
	/* Each value names its own (b, y, x, ci), so any reordering shows. */
	for (int b = 0; b < n; b++)
		for (int y = 0; y < h; y++)
			for (int x = 0; x < w; x++)
				for (int ci = 0; ci < c; ci++) {
					float v = (float)(1000 * b + 100 * y + 10 * x + ci);
					in[((b * h + y) * w + x) * c + ci] = v;
				}
	run_forward(&r, in, n, out);
	/* Keras' Flatten of channels-last data: index (y * W + x) * C + ci within a sample. */
	for (int b = 0; b < n; b++)
		for (int y = 0; y < h; y++)
			for (int x = 0; x < w; x++)
				for (int ci = 0; ci < c; ci++) {
					float got = out[b * h * w * c + (y * w + x) * c + ci];
					ck_assert_msg(got == (float)(1000 * b + 100 * y + 10 * x + ci),
					              "flatten of (%d, %d, %d, %d) is %g", b, y, x, ci,
					              (double)got);
				}
	free(out);
	free(in);
	ts_net_close(&r);
	ts_device_close(&dev);
}
END_TEST

/* ---- the MNIST CNN's layers together ---------------------------------------------------------- */

START_TEST(test_cnn_chain)
{
	const int n = 3;
	const conv_case cc = {10, 10, 1, 3, 3, 1, 1, false, 4, true, ACT_RELU};
	const pool_case pc = {8, 8, 4, 2, 2, 0, 0, false, true};
	const int units = 10, flat = 4 * 4 * 4;
	ts_device dev = ts_device_open();
	ts_net r = ts_net_open(&dev,
	                       "name: chain\n"
	                       "input: {shape: [10, 10, 1]}\n"
	                       "layers:\n"
	                       "  - {type: Conv2D, filters: 4, kernel_size: 3, activation: relu}\n"
	                       "  - {type: MaxPooling2D}\n"
	                       "  - {type: Dropout, rate: 0.25}\n"
	                       "  - {type: Flatten}\n"
	                       "  - {type: Dense, units: 10, activation: softmax}\n",
	                       n, 1);
	check_output_shape(&r, 0, 3, (int64_t[]){8, 8, 4});
	check_output_shape(&r, 1, 3, (int64_t[]){4, 4, 4});
	check_output_shape(&r, 3, 1, (int64_t[]){flat});
	float *ck = run_random_weight(&r, 0, 0, "kernel", &(strata_shape){.rank = 4, .dims = {3, 3, 1, 4}}, 1, -0.5f, 0.5f);
	float *cb = run_random_weight(&r, 0, 1, "bias", &(strata_shape){.rank = 1, .dims = {4}}, 2, -0.5f, 0.5f);
	float *dk = run_random_weight(&r, 4, 0, "kernel", &(strata_shape){.rank = 2, .dims = {flat, units}}, 3, -0.5f, 0.5f);
	float *db = run_random_weight(&r, 4, 1, "bias", &(strata_shape){.rank = 1, .dims = {units}}, 4, -0.5f, 0.5f);
	float *in = random_floats((size_t)n * 100, 5, 0.0f, 1.0f);
	float out[3 * 10];

	double conv[3 * 8 * 8 * 4], pool[3 * 4 * 4 * 4], want[3 * 10];
	float pool_f[3 * 4 * 4 * 4], conv_f[3 * 8 * 8 * 4];
	ref_conv2d(&cc, n, in, ck, cb, 8, 8, 0, 0, conv);
	for (size_t i = 0; i < sizeof(conv_f) / sizeof(conv_f[0]); i++)
		conv_f[i] = (float)conv[i];
	ref_maxpool(&pc, n, conv_f, 4, 4, 0, 0, pool);
	for (size_t i = 0; i < sizeof(pool_f) / sizeof(pool_f[0]); i++)
		pool_f[i] = (float)pool[i];
	ref_dense(n, flat, units, pool_f, dk, db, ACT_SOFTMAX, want);

	run_forward(&r, in, n, out);
	check_close("chain", out, want, (size_t)n * units);
	check_rows_sum_to_one(out, (size_t)n, (size_t)units);

	free(in);
	free(db);
	free(dk);
	free(cb);
	free(ck);
	ts_net_close(&r);
	ts_device_close(&dev);
}
END_TEST

/* ---- models refused at load ------------------------------------------------------------------- */

/* Loads `yaml`, expects STRATA_ERR_INVALID with a message that starts at the 1-based line and
 * column of the first `at` in the text and contains `needle`. */
static void check_refused(const char *yaml, const char *at, const char *needle)
{
	const char *hit = strstr(yaml, at);
	ck_assert_ptr_nonnull(hit);
	unsigned line = 1, col = 1;
	for (const char *p = yaml; p < hit; p++) {
		col = *p == '\n' ? 1 : col + 1;
		line += *p == '\n';
	}
	char prefix[64];
	snprintf(prefix, sizeof(prefix), "test.yaml:%u:%u:", line, col);

	strata_registry *reg = ts_registry();
	strata_model *m = NULL;
	strata_error err = {0};
	strata_status st = strata_model_load_string(reg, yaml, strlen(yaml), "test.yaml", NULL, &m, &err);
	ck_assert_msg(st == STRATA_ERR_INVALID, "status %s (%s)", strata_status_name(st), err.message);
	ck_assert_ptr_null(m);
	ck_assert_msg(strncmp(err.message, prefix, strlen(prefix)) == 0,
	              "message '%s' does not start with '%s'", err.message, prefix);
	ck_assert_msg(strstr(err.message, needle), "message '%s' does not mention '%s'", err.message, needle);
	strata_registry_close(reg);
}

START_TEST(test_conv2d_kernel_larger_than_input)
{
	check_refused("input: {shape: [4, 6, 1]}\n"
	              "layers:\n"
	              "  - type: conv2d\n"
	              "    filters: 2\n"
	              "    kernel_size: [5, 3]\n",
	              "[5, 3]", "larger");
	/* 'same' padding accepts it. */
	strata_registry *reg = ts_registry();
	strata_model *m = ts_model(reg, "input: {shape: [4, 6, 1]}\n"
	                                "layers:\n"
	                                "  - {type: conv2d, filters: 2, kernel_size: [5, 3],"
	                                " padding: same}\n");
	strata_model_free(m);
	strata_registry_close(reg);
}
END_TEST

START_TEST(test_rank_checks)
{
	check_refused("input: {shape: [784]}\n"
	              "layers:\n"
	              "  - type: conv2d\n"
	              "    filters: 2\n"
	              "    kernel_size: 3\n",
	              "type: conv2d", "(height, width, channels)");
	check_refused("input: {shape: [28, 28, 1]}\n"
	              "layers:\n"
	              "  - type: maxpool2d\n"
	              "    pool_size: [29, 2]\n",
	              "[29, 2]", "larger");
	check_refused("input: {shape: [8]}\n"
	              "layers:\n"
	              "  - type: dropout\n"
	              "    rate: 1.0\n",
	              "1.0", "rate");
	check_refused("input: {shape: [8]}\n"
	              "layers:\n"
	              "  - type: averagepool2d\n",
	              "type: averagepool2d", "(height, width, channels)");
	check_refused("input: {shape: [8]}\n"
	              "layers:\n"
	              "  - type: activation\n",
	              "type: activation", "activation");
}
END_TEST

static Suite *layers_forward_suite(void)
{
	Suite *s = suite_create("layers_forward");
	TCase *tc = tcase_create("forward");
	tcase_add_loop_test(tc, test_conv2d, 0, (int)(sizeof(conv_cases) / sizeof(conv_cases[0])));
	tcase_add_loop_test(tc, test_dense, 0, (int)(sizeof(dense_cases) / sizeof(dense_cases[0])));
	tcase_add_loop_test(tc, test_maxpool2d, 0, (int)(sizeof(pool_cases) / sizeof(pool_cases[0])));
	tcase_add_loop_test(tc, test_averagepool2d, 0, (int)(sizeof(pool_cases) / sizeof(pool_cases[0])));
	tcase_add_loop_test(tc, test_activation, 0, 3 * ACT_COUNT);
	tcase_add_test(tc, test_dropout_inference_is_identity);
	tcase_add_test(tc, test_dropout_training);
	tcase_add_test(tc, test_dropout_mask_is_philox);
	tcase_add_test(tc, test_flatten_order);
	tcase_add_test(tc, test_cnn_chain);
	suite_add_tcase(s, tc);

	TCase *refused = tcase_create("refused");
	tcase_add_test(refused, test_conv2d_kernel_larger_than_input);
	tcase_add_test(refused, test_rank_checks);
	suite_add_tcase(s, refused);
	return s;
}

int main(void)
{
	return ts_run(layers_forward_suite());
}
