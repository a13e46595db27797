/* The options of the convolutions (issue 14, point 3): dilation_rate and groups on conv2d, and
 * conv1d (plugins/conv2d), on the OpenCL device:
 *  - forward against a host reference in double: dilation 2 and 3 (and unequal ones), valid and
 *    same, odd sizes and even kernels; groups 2, 4 and as many as the channels, with and without
 *    a bias, with strides, with dilation, on the 1x1 path, channels that fill the kernels' vectors;
 *    conv1d valid, same and causal, strides 2, dilation 2, groups 2; a partial batch after a full;
 *  - conv1d is conv2d over a 1 x steps image: the same weights give the same bits;
 *  - backward: finite differences of small models through every option (the workspaces kept
 *    from the forward pass, a grouped layer's input gradient read by the layer before);
 *  - Keras' parameter counts, kernel shapes and output shapes;
 *  - refusals at the value's FILE:LINE:COLUMN: groups dividing neither the channels nor the
 *    filters, strides > 1 with dilation > 1, a (dilated) kernel larger than the input, a Conv1D
 *    on an image, data_format, bad values. */
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "support.h"

#include "model/model.h"

/* ---- the host reference ------------------------------------------------------------------------ */

enum { VALID = 0, SAME = 1, CAUSAL = 2 };
static const char *const padding_names[] = {"valid", "same", "causal"};

typedef struct conv_case {
	int dims;        /* 2: conv2d over (h, w, c); 1: conv1d over (w, c), h = 1 */
	int h, w, c;
	int kh, kw, sh, sw, dh, dw;
	int padding;
	int groups, filters;
	bool use_bias;
	const char *activation; /* linear, relu, tanh or swish */
} conv_case;

/* One axis as TensorFlow sizes it: the kernel's extent d * (k - 1) + 1; valid: no padding; same:
 * ceil(in / s) with the odd padding element after; causal: all of extent - 1 before. */
static void axis(int in, int k, int s, int d, int padding, int *out, int *pad_before)
{
	int extent = d * (k - 1) + 1;
	if (padding == VALID) {
		*out = (in - extent) / s + 1;
		*pad_before = 0;
	} else if (padding == SAME) {
		*out = (in + s - 1) / s;
		int pad = (*out - 1) * s + extent - in;
		*pad_before = pad > 0 ? pad / 2 : 0;
	} else {
		*out = (in - 1) / s + 1;
		*pad_before = extent - 1;
	}
}

static double activate(double v, const char *act)
{
	if (!strcmp(act, "relu"))
		return v > 0.0 ? v : 0.0;
	if (!strcmp(act, "tanh"))
		return tanh(v);
	if (!strcmp(act, "swish"))
		return v / (1.0 + exp(-v));
	return v;
}

/* NHWC input, kernel (KH, KW, C / G, F); out [n, oh, ow, F]. Output channel f is in group
 * f / (F / G), which reads input channels [g * C / G, (g + 1) * C / G). */
static void reference(const conv_case *cc, int n, const float *in, const float *kernel, const float *bias, int oh,
                      int ow, int pt, int pl, double *out)
{
	int cg = cc->c / cc->groups, fg = cc->filters / cc->groups;
	for (int b = 0; b < n; b++)
		for (int oy = 0; oy < oh; oy++)
			for (int ox = 0; ox < ow; ox++)
				for (int f = 0; f < cc->filters; f++) {
					int g = f / fg;
					double acc = bias ? bias[f] : 0.0;
					for (int ky = 0; ky < cc->kh; ky++)
						for (int kx = 0; kx < cc->kw; kx++) {
							int y = oy * cc->sh - pt + ky * cc->dh, x = ox * cc->sw - pl + kx * cc->dw;
							if (y < 0 || y >= cc->h || x < 0 || x >= cc->w)
								continue;
							const float *pixel = in + ((size_t)(b * cc->h + y) * cc->w + x) * cc->c + g * cg;
							const float *taps = kernel + (size_t)((ky * cc->kw + kx) * cg) * cc->filters + f;
							for (int ci = 0; ci < cg; ci++)
								acc += (double)pixel[ci] * taps[(size_t)ci * cc->filters];
						}
					out[((size_t)(b * oh + oy) * ow + ox) * cc->filters + f] = activate(acc, cc->activation);
				}
}

static const conv_case cases[] = {
	/* dims h  w  c  kh kw sh sw dh dw  padding  G  F  bias  activation */
	/* conv2d, dilation */
	{2, 7, 8, 3, 3, 3, 1, 1, 2, 2, VALID, 1, 4, true, "linear"},
	{2, 9, 11, 2, 3, 3, 1, 1, 3, 3, VALID, 1, 3, true, "relu"},
	{2, 7, 8, 3, 3, 3, 1, 1, 2, 2, SAME, 1, 4, true, "tanh"},
	{2, 9, 7, 2, 3, 3, 1, 1, 3, 3, SAME, 1, 5, false, "linear"},
	{2, 9, 11, 2, 3, 2, 1, 1, 3, 2, SAME, 1, 3, true, "linear"},  /* unequal dilations */
	{2, 8, 9, 3, 2, 2, 1, 1, 3, 3, SAME, 1, 4, true, "linear"},   /* even extent 4: padding 1 before, 2 after */
	{2, 9, 5, 2, 3, 1, 1, 1, 2, 1, VALID, 1, 3, true, "linear"},  /* dilated along the height only */
	{2, 6, 7, 16, 3, 3, 1, 1, 2, 2, SAME, 1, 8, true, "relu"},    /* vectors of 16 channels */
	{2, 5, 5, 2, 3, 3, 1, 1, 2, 2, VALID, 1, 2, true, "linear"},  /* the extent is the input: 1x1 output */
	/* conv2d, groups */
	{2, 6, 6, 4, 3, 3, 1, 1, 1, 1, VALID, 2, 8, true, "linear"},
	{2, 7, 5, 8, 3, 3, 1, 1, 1, 1, SAME, 4, 4, false, "relu"},
	{2, 7, 7, 8, 3, 3, 2, 2, 1, 1, SAME, 4, 12, true, "linear"},  /* with strides */
	{2, 9, 7, 4, 3, 2, 2, 1, 1, 1, VALID, 2, 6, false, "tanh"},
	{2, 5, 6, 6, 1, 1, 1, 1, 1, 1, VALID, 2, 4, true, "linear"},  /* 1x1: the input is the im2col matrix */
	{2, 5, 5, 3, 3, 3, 1, 1, 1, 1, VALID, 3, 6, true, "linear"},  /* one channel per group */
	{2, 6, 6, 32, 3, 3, 1, 1, 1, 1, SAME, 2, 16, true, "linear"}, /* vectors of 16 in each group */
	{2, 9, 9, 4, 3, 3, 1, 1, 2, 2, SAME, 2, 6, true, "swish"},    /* groups and dilation */
	{2, 8, 7, 8, 3, 3, 1, 1, 1, 1, VALID, 4, 8, true, "swish"},
	/* conv1d */
	{1, 1, 10, 4, 1, 3, 1, 1, 1, 1, VALID, 1, 5, true, "linear"},
	{1, 1, 11, 3, 1, 4, 1, 1, 1, 1, SAME, 1, 3, true, "relu"},
	{1, 1, 10, 3, 1, 3, 1, 1, 1, 1, CAUSAL, 1, 2, true, "linear"},
	{1, 1, 11, 4, 1, 3, 1, 2, 1, 1, VALID, 1, 3, true, "linear"},
	{1, 1, 12, 3, 1, 3, 1, 2, 1, 1, SAME, 1, 4, false, "tanh"},
	{1, 1, 11, 3, 1, 3, 1, 2, 1, 1, CAUSAL, 1, 3, true, "linear"},
	{1, 1, 13, 3, 1, 3, 1, 1, 1, 2, VALID, 1, 3, true, "linear"},
	{1, 1, 13, 3, 1, 3, 1, 1, 1, 2, SAME, 1, 2, true, "relu"},
	{1, 1, 13, 4, 1, 3, 1, 1, 1, 2, CAUSAL, 2, 6, true, "linear"},
	{1, 1, 9, 4, 1, 2, 1, 1, 1, 1, VALID, 2, 4, false, "linear"},
	{1, 1, 12, 6, 1, 3, 1, 1, 1, 3, CAUSAL, 3, 3, true, "swish"},
	{1, 1, 10, 16, 1, 3, 1, 1, 1, 1, SAME, 1, 8, true, "linear"},
	{1, 1, 10, 2, 1, 1, 1, 1, 1, 1, VALID, 1, 3, true, "linear"},  /* kernel 1: direct */
	{1, 1, 4, 2, 1, 3, 1, 1, 1, 2, CAUSAL, 1, 3, true, "linear"},  /* extent 5 past the 4 steps */
};

/* The model text of case cc. */
static void case_yaml(const conv_case *cc, char *yaml, size_t size)
{
	if (cc->dims == 2)
		snprintf(yaml, size,
		         "input: {shape: [%d, %d, %d]}\n"
		         "layers:\n"
		         "  - {type: conv2d, filters: %d, kernel_size: [%d, %d], strides: [%d, %d], padding: %s,\n"
		         "     dilation_rate: [%d, %d], groups: %d, use_bias: %s, activation: %s}\n",
		         cc->h, cc->w, cc->c, cc->filters, cc->kh, cc->kw, cc->sh, cc->sw, padding_names[cc->padding], cc->dh,
		         cc->dw, cc->groups, cc->use_bias ? "true" : "false", cc->activation);
	else
		snprintf(yaml, size,
		         "input: {shape: [%d, %d]}\n"
		         "layers:\n"
		         "  - {type: conv1d, filters: %d, kernel_size: %d, strides: %d, padding: %s, dilation_rate: %d,\n"
		         "     groups: %d, use_bias: %s, activation: %s}\n",
		         cc->w, cc->c, cc->filters, cc->kw, cc->sw, padding_names[cc->padding], cc->dw, cc->groups,
		         cc->use_bias ? "true" : "false", cc->activation);
}

/* Writes random values to weight `index` of layer 0, checking its name and shape; returns them. */
static float *random_weight(ts_net *net, size_t index, const char *name, const strata_shape *shape, unsigned seed)
{
	const char *got_name = NULL;
	strata_shape got = {0};
	strata_error err = {0};
	ck_assert_int_eq(strata_session_weight_info(net->s, 0, index, &got_name, &got), STRATA_OK);
	ck_assert_str_eq(got_name, name);
	ck_assert_uint_eq(got.rank, shape->rank);
	size_t count = 1;
	for (uint32_t i = 0; i < shape->rank; i++) {
		ck_assert_msg(got.dims[i] == shape->dims[i], "%s dim %u: got %lld, want %lld", name, i, (long long)got.dims[i],
		              (long long)shape->dims[i]);
		count *= (size_t)shape->dims[i];
	}
	float *w = ts_floats(count);
	ts_fill_random(w, count, seed, -0.5f, 0.5f);
	ck_assert_msg(strata_session_write_weight(net->s, 0, index, w, count, &err) == STRATA_OK, "%s", err.message);
	return w;
}

static void forward(ts_net *net, const float *in, uint32_t batch, float *out)
{
	strata_error err = {0};
	strata_status st = strata_session_forward(net->s, in, batch, out, &err);
	ck_assert_msg(st == STRATA_OK, "forward: %s", err.message);
}

static void check_close(const char *what, const float *got, const double *want, size_t n)
{
	for (size_t i = 0; i < n; i++)
		ck_assert_msg(fabs(got[i] - want[i]) <= 1e-5 * fmax(1.0, fabs(want[i])), "%s[%zu] = %.9g, want %.9g", what, i,
		              (double)got[i], want[i]);
}

START_TEST(test_forward)
{
	const conv_case *cc = &cases[_i];
	const int n = 3;
	char yaml[512];
	case_yaml(cc, yaml, sizeof(yaml));
	int oh, ow, pt, pl;
	axis(cc->h, cc->kh, cc->sh, cc->dh, cc->padding, &oh, &pt);
	axis(cc->w, cc->kw, cc->sw, cc->dw, cc->padding, &ow, &pl);

	ts_device dev = ts_device_open();
	ts_net net = ts_net_open(&dev, yaml, n, 1);
	strata_shape out_shape = strata_model_output_shape(net.m, 0);
	if (cc->dims == 2) {
		ck_assert_uint_eq(out_shape.rank, 3);
		ck_assert_int_eq(out_shape.dims[0], oh);
		ck_assert_int_eq(out_shape.dims[1], ow);
		ck_assert_int_eq(out_shape.dims[2], cc->filters);
	} else {
		ck_assert_uint_eq(out_shape.rank, 2);
		ck_assert_int_eq(out_shape.dims[0], ow);
		ck_assert_int_eq(out_shape.dims[1], cc->filters);
	}
	ck_assert_uint_eq(strata_session_weight_count(net.s, 0), cc->use_bias ? 2 : 1);
	int cg = cc->c / cc->groups;
	strata_shape kshape = cc->dims == 2 ? (strata_shape){.rank = 4, .dims = {cc->kh, cc->kw, cg, cc->filters}}
	                                    : (strata_shape){.rank = 3, .dims = {cc->kw, cg, cc->filters}};
	float *kernel = random_weight(&net, 0, "kernel", &kshape, 11 + (unsigned)_i);
	float *bias = NULL;
	if (cc->use_bias) {
		strata_shape bshape = {.rank = 1, .dims = {cc->filters}};
		bias = random_weight(&net, 1, "bias", &bshape, 23 + (unsigned)_i);
	}
	size_t in_count = (size_t)n * cc->h * cc->w * cc->c, out_count = (size_t)n * oh * ow * cc->filters;
	float *in = ts_floats(in_count), *out = ts_floats(out_count);
	double *want = malloc(out_count * sizeof(*want));
	ck_assert_ptr_nonnull(want);
	ts_fill_random(in, in_count, 37 + (unsigned)_i, -1.0f, 1.0f);

	forward(&net, in, n, out);
	reference(cc, n, in, kernel, bias, oh, ow, pt, pl, want);
	check_close(cc->dims == 2 ? "conv2d" : "conv1d", out, want, out_count);
	/* A smaller batch than planned reads and writes only its own samples. */
	forward(&net, in, 1, out);
	check_close("batch 1", out, want, out_count / n);

	free(want);
	free(out);
	free(in);
	free(bias);
	free(kernel);
	ts_net_close(&net);
	ts_device_close(&dev);
}
END_TEST

/* Conv1D over (steps, C) is Conv2D over the 1 x steps image with the same weights: the same bits,
 * on the plain path (windowed or im2col) and on the general one. */
START_TEST(test_conv1d_is_conv2d)
{
	static const char *const options[][2] = {
		{"kernel_size: 3", "kernel_size: [1, 3]"},
		{"kernel_size: 3, padding: same, strides: 2", "kernel_size: [1, 3], padding: same, strides: [1, 2]"},
		{"kernel_size: 3, dilation_rate: 2, groups: 2", "kernel_size: [1, 3], dilation_rate: [1, 2], groups: 2"},
	};
	const int steps = 11, c = 4, filters = 6, n = 2;
	char yaml1[256], yaml2[256];
	snprintf(yaml1, sizeof(yaml1), "input: {shape: [%d, %d]}\nlayers:\n  - {type: conv1d, filters: %d, %s}\n", steps, c,
	         filters, options[_i][0]);
	snprintf(yaml2, sizeof(yaml2), "input: {shape: [1, %d, %d]}\nlayers:\n  - {type: conv2d, filters: %d, %s}\n",
	         steps, c, filters, options[_i][1]);
	ts_device dev = ts_device_open();
	ts_net a = ts_net_open(&dev, yaml1, n, 1), b = ts_net_open(&dev, yaml2, n, 2);
	strata_shape sa = strata_model_output_shape(a.m, 0), sb = strata_model_output_shape(b.m, 0);
	ck_assert_uint_eq(sa.rank, 2);
	ck_assert_int_eq(sb.dims[0], 1);
	ck_assert_int_eq(sa.dims[0], sb.dims[1]);
	ck_assert_int_eq(sa.dims[1], sb.dims[2]);
	strata_error err = {0};
	for (size_t w = 0; w < 2; w++) {
		size_t count = a.m->layers[0].weights[w].count;
		ck_assert_uint_eq(count, b.m->layers[0].weights[w].count);
		float *v = ts_floats(count);
		ts_fill_random(v, count, 40 + (unsigned)w, -0.5f, 0.5f);
		ck_assert(strata_session_write_weight(a.s, 0, w, v, count, &err) == STRATA_OK);
		ck_assert(strata_session_write_weight(b.s, 0, w, v, count, &err) == STRATA_OK);
		free(v);
	}
	size_t in_count = (size_t)n * steps * c, out_count = (size_t)n * sa.dims[0] * sa.dims[1];
	float *in = ts_floats(in_count), *ya = ts_floats(out_count), *yb = ts_floats(out_count);
	ts_fill_random(in, in_count, 50, -1.0f, 1.0f);
	forward(&a, in, n, ya);
	forward(&b, in, n, yb);
	for (size_t i = 0; i < out_count; i++)
		ck_assert_msg(ya[i] == yb[i], "%s: conv1d y[%zu] = %.9g, conv2d %.9g", options[_i][0], i, (double)ya[i],
		              (double)yb[i]);
	free(yb);
	free(ya);
	free(in);
	ts_net_close(&b);
	ts_net_close(&a);
	ts_device_close(&dev);
}
END_TEST

/* ---- backward: finite differences ------------------------------------------------------------------ */

static const char *const gradient_models[] = {
	/* a dilated conv2d read by a grouped one: the grouped layer's input gradient reaches the
	 * dilated layer's weights */
	"input: {shape: [9, 8, 4]}\n"
	"layers:\n"
	"  - {type: conv2d, filters: 6, kernel_size: 3, dilation_rate: 2, padding: same, activation: tanh}\n"
	"  - {type: conv2d, filters: 4, kernel_size: [3, 2], groups: 2, activation: tanh}\n"
	"  - {type: conv2d, filters: 4, kernel_size: 1, groups: 4, use_bias: false}\n"
	"  - {type: flatten}\n"
	"  - {type: dense, units: 3}\n",
	/* strides with groups, dilation (3, 2) valid */
	"input: {shape: [11, 9, 6]}\n"
	"layers:\n"
	"  - {type: conv2d, filters: 6, kernel_size: 3, strides: 2, padding: same, groups: 3, activation: swish}\n"
	"  - {type: conv2d, filters: 4, kernel_size: 2, dilation_rate: [3, 2], groups: 2}\n"
	"  - {type: flatten}\n"
	"  - {type: dense, units: 3, activation: tanh}\n",
	/* conv1d: causal with dilation and groups, same with strides, valid */
	"input: {shape: [13, 4]}\n"
	"layers:\n"
	"  - {type: conv1d, filters: 6, kernel_size: 3, padding: causal, dilation_rate: 2, groups: 2, activation: tanh}\n"
	"  - {type: conv1d, filters: 4, kernel_size: 3, strides: 2, padding: same, activation: relu}\n"
	"  - {type: conv1d, filters: 3, kernel_size: 2, dilation_rate: 3}\n"
	"  - {type: flatten}\n"
	"  - {type: dense, units: 3}\n",
};

START_TEST(test_gradients)
{
	ts_fd f;
	ts_fd_open(&f, gradient_models[_i], 3, 0.0f, 900 + (unsigned)_i);
	ts_fd_tolerance tol = {.max_checks = 60, .nontrivial = 1e-4, .kinks = true, .to_largest = true};
	ts_fd_check_gradients(&f, &tol);
	ts_fd_close(&f);
}
END_TEST

/* ---- Keras' counts and shapes ------------------------------------------------------------------------ */

typedef struct count_case {
	const char *input, *layer;
	const char *total;     /* "Total params: N\n", Keras' count */
	uint32_t kernel_rank;
	int64_t kernel[4];     /* Keras' kernel shape */
	uint32_t out_rank;
	int64_t out[3];
} count_case;

static const count_case counts[] = {
	/* Conv2D(8, 3, groups=2) on (6, 6, 4): 3*3*2*8 + 8 */
	{"[6, 6, 4]", "{type: conv2d, filters: 8, kernel_size: 3, groups: 2}", "Total params: 152\n", 4, {3, 3, 2, 8}, 3,
	 {4, 4, 8}},
	/* groups 4, no bias: 3*3*1*8 */
	{"[6, 6, 4]", "{type: conv2d, filters: 8, kernel_size: 3, groups: 4, use_bias: false}", "Total params: 72\n", 4,
	 {3, 3, 1, 8}, 3, {4, 4, 8}},
	/* Conv2D(6, 3, dilation_rate=2) on (9, 9, 3): 3*3*3*6 + 6; extent 5: 5x5 */
	{"[9, 9, 3]", "{type: conv2d, filters: 6, kernel_size: 3, dilation_rate: 2}", "Total params: 168\n", 4,
	 {3, 3, 3, 6}, 3, {5, 5, 6}},
	/* dilation (2, 3), same: 3*2*2*4 + 4 */
	{"[7, 8, 2]", "{type: conv2d, filters: 4, kernel_size: [3, 2], dilation_rate: [2, 3], padding: same}",
	 "Total params: 52\n", 4, {3, 2, 2, 4}, 3, {7, 8, 4}},
	/* groups with strides: 3*3*2*6 + 6, ceil(7 / 2) */
	{"[7, 7, 6]", "{type: conv2d, filters: 6, kernel_size: 3, strides: 2, padding: same, groups: 3}",
	 "Total params: 114\n", 4, {3, 3, 2, 6}, 3, {4, 4, 6}},
	/* Conv1D(5, 3) on (10, 4): 3*4*5 + 5 */
	{"[10, 4]", "{type: conv1d, filters: 5, kernel_size: 3}", "Total params: 65\n", 3, {3, 4, 5}, 2, {8, 5}},
	/* causal, dilation 2, groups 2: 3*2*6 + 6, the steps kept */
	{"[10, 4]", "{type: conv1d, filters: 6, kernel_size: 3, padding: causal, dilation_rate: 2, groups: 2}",
	 "Total params: 42\n", 3, {3, 2, 6}, 2, {10, 6}},
	/* same, strides 2: 5*3*4 + 4, ceil(11 / 2) */
	{"[11, 3]", "{type: conv1d, filters: 4, kernel_size: 5, strides: 2, padding: same}", "Total params: 64\n", 3,
	 {5, 3, 4}, 2, {6, 4}},
	/* valid, strides 2: (11 - 3) / 2 + 1; 3*2*3 + 3 */
	{"[11, 2]", "{type: conv1d, filters: 3, kernel_size: [3], strides: [2]}", "Total params: 21\n", 3, {3, 2, 3}, 2,
	 {5, 3}},
	/* valid, dilation 3: 13 - 7 + 1 */
	{"[13, 2]", "{type: conv1d, filters: 2, kernel_size: 3, dilation_rate: 3, use_bias: false}", "Total params: 12\n", 3,
	 {3, 2, 2}, 2, {7, 2}},
};

START_TEST(test_counts)
{
	const count_case *c = &counts[_i];
	char yaml[512];
	snprintf(yaml, sizeof(yaml), "input: {shape: %s}\nlayers:\n  - %s\n", c->input, c->layer);
	strata_registry *reg = ts_registry();
	strata_model *m = ts_model(reg, yaml);
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);
	ck_assert_ptr_nonnull(f);
	strata_model_print_summary(m, f);
	fclose(f);
	ck_assert_msg(strstr(text, c->total) && strstr(text, "Non-trainable params: 0\n"), "summary does not say %s:\n%s",
	              c->total, text);
	const struct strata_layer *l = &m->layers[0];
	ck_assert_str_eq(l->weights[0].name, "kernel");
	ck_assert_uint_eq(l->weights[0].shape.rank, c->kernel_rank);
	for (uint32_t d = 0; d < c->kernel_rank; d++)
		ck_assert_msg(l->weights[0].shape.dims[d] == c->kernel[d], "%s: kernel dim %u is %lld, want %lld", c->layer,
		              d, (long long)l->weights[0].shape.dims[d], (long long)c->kernel[d]);
	strata_shape out = strata_model_output_shape(m, 0);
	ck_assert_uint_eq(out.rank, c->out_rank);
	for (uint32_t d = 0; d < c->out_rank; d++)
		ck_assert_msg(out.dims[d] == c->out[d], "%s: output dim %u is %lld, want %lld", c->layer, d,
		              (long long)out.dims[d], (long long)c->out[d]);
	free(text);
	strata_model_free(m);
	strata_registry_close(reg);
}
END_TEST

/* Keras' class names and layer names; the class name is accepted as `type:`. */
START_TEST(test_names)
{
	strata_registry *reg = ts_registry();
	strata_model *m = ts_model(reg, "inputs: [{name: s, shape: [8, 2]}]\nlayers:\n"
	                                "  - {type: conv1d, filters: 2, kernel_size: 3}\n"
	                                "  - {type: Conv1D, filters: 2, kernel_size: 3}\n");
	ck_assert_str_eq(m->layers[0].name, "conv1d_1");
	ck_assert_str_eq(m->layers[1].name, "conv1d_2");
	ck_assert_str_eq(m->layers[0].type->ops.class_name, "Conv1D");
	strata_model_free(m);
	/* Keras' spelled-out defaults load */
	m = ts_model(reg, "input: {shape: [6, 6, 2]}\nlayers:\n"
	                  "  - {type: conv2d, filters: 2, kernel_size: 3, dilation_rate: [1, 1], groups: 1,"
	                  " data_format: channels_last}\n");
	strata_model_free(m);
	m = ts_model(reg, "input: {shape: [8, 2]}\nlayers:\n"
	                  "  - {type: conv1d, filters: 2, kernel_size: [3], strides: [1], dilation_rate: [1], groups: 1,"
	                  " data_format: channels_last}\n");
	strata_model_free(m);
	strata_registry_close(reg);
}
END_TEST

/* ---- refusals ------------------------------------------------------------------------------------------ */

typedef struct refusal_case {
	const char *input, *layer;
	const char *at;      /* the parameter the message points at ("groups: "), NULL: the layer */
	const char *says[2];
} refusal_case;

static const refusal_case refusals[] = {
	{"[6, 6, 6]", "{type: conv2d, filters: 8, kernel_size: 3, groups: 3}", "groups: ",
	 {"conv2d_1: filters (8) must be divisible by groups (3)"}},
	{"[6, 6, 6]", "{type: conv2d, filters: 8, kernel_size: 3, groups: 4}", "groups: ",
	 {"the input's 6 channels (input (6, 6, 6)) must be divisible by groups (4)"}},
	{"[10, 6]", "{type: conv1d, filters: 4, kernel_size: 3, groups: 4}", "groups: ",
	 {"the input's 6 channels", "divisible by groups (4)"}},
	{"[9, 9, 2]", "{type: conv2d, filters: 2, kernel_size: 3, strides: 2, dilation_rate: 2}", "dilation_rate: ",
	 {"strides > 1 together with dilation_rate > 1 is not supported (as in Keras)",
	  "got strides [2, 2] and dilation_rate [2, 2]"}},
	{"[9, 9, 2]", "{type: conv2d, filters: 2, kernel_size: 3, strides: [1, 2], dilation_rate: [2, 1]}",
	 "dilation_rate: ", {"got strides [1, 2] and dilation_rate [2, 1]"}},
	{"[12, 2]", "{type: conv1d, filters: 2, kernel_size: 3, strides: 2, dilation_rate: 3, padding: causal}",
	 "dilation_rate: ", {"strides > 1 together with dilation_rate > 1", "got strides 2 and dilation_rate 3"}},
	{"[6, 6, 2]", "{type: conv2d, filters: 2, kernel_size: 3, dilation_rate: 3}", "kernel_size: ",
	 {"kernel 3x3 dilated to 7x7 is larger than the 6x6 input with padding 'valid'",
	  "use a smaller kernel_size or dilation_rate or padding: same"}},
	{"[5, 6, 2]", "{type: conv2d, filters: 2, kernel_size: [6, 1]}", "kernel_size: ",
	 {"kernel 6x1 is larger than the 5x6 input with padding 'valid'; use a smaller kernel_size or padding: same"}},
	{"[4, 2]", "{type: conv1d, filters: 2, kernel_size: 5}", "kernel_size: ",
	 {"kernel 5 is longer than the input's 4 steps with padding 'valid'", "padding: same or causal"}},
	{"[6, 2]", "{type: conv1d, filters: 2, kernel_size: 3, dilation_rate: 3}", "kernel_size: ",
	 {"kernel 3 dilated to 7 is longer than the input's 6 steps"}},
	{"[4, 4, 2]", "{type: conv1d, filters: 2, kernel_size: 3}", NULL,
	 {"conv1d_1: Conv1D needs a (steps, channels) input, got (4, 4, 2)"}},
	{"[8, 2]", "{type: conv2d, filters: 2, kernel_size: 3}", NULL,
	 {"Conv2D needs a (height, width, channels) input, got (8, 2)"}},
	{"[8, 2]", "{type: conv1d, filters: 2, kernel_size: 3, data_format: channels_first}", "data_format: ",
	 {"'data_format' is a Keras parameter Strata leaves out", "only channels_last is accepted"}},
	{"[6, 6, 2]", "{type: conv2d, filters: 2, kernel_size: 3, data_format: channels_first}", "data_format: ",
	 {"'data_format' is a Keras parameter Strata leaves out"}},
	{"[8, 2]", "{type: conv1d, filters: 2, kernel_size: 3, padding: full}", "padding: ", {"padding"}},
	{"[8, 2]", "{type: conv2d, filters: 2, kernel_size: 3, padding: causal}", "padding: ", {"padding"}},
	{"[6, 6, 2]", "{type: conv2d, filters: 2, kernel_size: 3, groups: 0}", "groups: ", {"'groups' must be"}},
	{"[6, 6, 2]", "{type: conv2d, filters: 2, kernel_size: 3, dilation_rate: [1, 0]}", "dilation_rate: [1, ",
	 {"dilation_rate"}},
	{"[8, 2]", "{type: conv1d, filters: 2, kernel_size: [3, 3]}", "kernel_size: ", {"kernel_size"}},
};

START_TEST(test_refusals)
{
	const refusal_case *rc = &refusals[_i];
	char yaml[512], where[64];
	snprintf(yaml, sizeof(yaml), "input: {shape: %s}\nlayers:\n  - %s\n", rc->input, rc->layer);
	/* "  - " then the layer: the layer at column 5, a value after its "key: " */
	int column = 5;
	if (rc->at) {
		const char *p = strstr(rc->layer, rc->at);
		ck_assert_ptr_nonnull(p);
		column = 5 + (int)(p - rc->layer) + (int)strlen(rc->at);
	}
	snprintf(where, sizeof(where), "conv.yaml:3:%d: ", column);
	strata_registry *reg = ts_registry();
	strata_model *m = NULL;
	strata_error err = {0};
	strata_status st = strata_model_load_string(reg, yaml, strlen(yaml), "conv.yaml", NULL, &m, &err);
	ck_assert_msg(st == STRATA_ERR_INVALID, "%s: status %s: %s", rc->layer, strata_status_name(st), err.message);
	ck_assert_ptr_null(m);
	ck_assert_msg(strncmp(err.message, where, strlen(where)) == 0, "'%s' does not start with '%s'", err.message, where);
	for (size_t k = 0; k < 2 && rc->says[k]; k++)
		ck_assert_msg(strstr(err.message, rc->says[k]), "'%s' does not say '%s'", err.message, rc->says[k]);
	strata_registry_close(reg);
}
END_TEST

static Suite *conv_options_suite(void)
{
	Suite *s = suite_create("conv_options");
	TCase *fw = tcase_create("forward");
	tcase_add_loop_test(fw, test_forward, 0, (int)(sizeof(cases) / sizeof(cases[0])));
	tcase_add_loop_test(fw, test_conv1d_is_conv2d, 0, 3);
	suite_add_tcase(s, fw);

	TCase *bw = tcase_create("backward");
	tcase_set_timeout(bw, 120);
	tcase_add_loop_test(bw, test_gradients, 0, (int)(sizeof(gradient_models) / sizeof(gradient_models[0])));
	suite_add_tcase(s, bw);

	TCase *model = tcase_create("model");
	tcase_add_loop_test(model, test_counts, 0, (int)(sizeof(counts) / sizeof(counts[0])));
	tcase_add_test(model, test_names);
	tcase_add_loop_test(model, test_refusals, 0, (int)(sizeof(refusals) / sizeof(refusals[0])));
	suite_add_tcase(s, model);
	return s;
}

int main(void)
{
	return ts_run(conv_options_suite());
}
