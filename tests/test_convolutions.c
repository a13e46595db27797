/* The convolution layers of issue 14 (plugins/depthwise_conv2d: depthwise_conv2d and
 * separable_conv2d; plugins/conv2d_transpose) on the OpenCL device:
 *  - forward against host references in double, written here from the definitions: odd sizes,
 *    strides 1 and 2, both paddings (TensorFlow's 'same', the odd pixel after), depth multipliers
 *    1 to 4 (above 1: the convolution of the input with repeated channels), dilations (with
 *    strides too), with and without bias, fused activations (ones whose derivative needs their
 *    input: gelu, swish),
 *    output_padding, a transposed kernel smaller than its stride; output shapes as Keras';
 *  - backward: the library's gradient check of each case (the layer alone, both modes), finite
 *    differences through small models (the workspaces kept from the forward pass, gradients
 *    bit-identical on a second pass), and the depthwise kernel's gradient against a host
 *    reference on a batch with more rows than the partial sums' block limit;
 *  - Keras' weights (names, shapes, order) and parameter counts in `summary`, constraints;
 *  - refusals: bad shapes and parameters, with the value's FILE:LINE:COLUMN. */
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "support.h"

#include "exec/session.h"
#include "model/model.h"

enum { DW, SEP, CT };
static const char *const type_names[] = {"depthwise_conv2d", "separable_conv2d", "conv2d_transpose"};

typedef struct conv_case {
	int type;
	int64_t in[3];
	int kh, kw, sh, sw, dh, dw;
	bool same;
	int dm;         /* depth_multiplier (DW, SEP) */
	int filters;    /* SEP, CT */
	bool bias;
	const char *act;
	int op[2];      /* CT's output_padding; -1: null */
	int64_t out[3]; /* Keras' output shape, worked out by hand */
	uint32_t batch;
} conv_case;

#define NOP {-1, -1}
static const conv_case cases[] = {
	/* 0: the plain case, odd sizes */
	{DW, {7, 6, 3}, 3, 3, 1, 1, 1, 1, false, 1, 0, true, "linear", NOP, {5, 4, 3}, 3},
	/* stride 2, 'same' (pads 1+1 rows, 0+1 columns), multiplier 2: vectors of 2 multipliers */
	{DW, {8, 9, 5}, 3, 2, 2, 2, 1, 1, true, 2, 0, true, "linear", NOP, {4, 5, 10}, 3},
	/* 16 channels: vectors of 16 channels on CPUs */
	{DW, {5, 5, 16}, 3, 3, 1, 1, 1, 1, true, 1, 0, true, "relu", NOP, {5, 5, 16}, 2},
	/* multiplier 3: vectors of 1; no bias */
	{DW, {6, 7, 2}, 2, 3, 1, 2, 1, 1, false, 3, 0, false, "tanh", NOP, {5, 3, 6}, 3},
	/* dilation, 'same': the window spans 5 */
	{DW, {9, 8, 4}, 3, 3, 1, 1, 2, 2, true, 1, 0, true, "linear", NOP, {9, 8, 4}, 2},
	/* dilation and stride, 'same' (windows 5 x 4: pads 1+2 rows, 1+2 columns); gelu keeps its input */
	{DW, {10, 9, 3}, 3, 2, 2, 2, 2, 3, true, 2, 0, true, "gelu", NOP, {5, 5, 6}, 3},
	/* 1x1 window, stride 2, multiplier 4 (vectors of 4 multipliers), softmax over the 32 channels */
	{DW, {7, 7, 8}, 1, 1, 2, 2, 1, 1, false, 4, 0, true, "softmax", NOP, {4, 4, 32}, 2},
	/* the window is the input */
	{DW, {4, 4, 6}, 4, 4, 1, 1, 1, 1, false, 1, 0, true, "linear", NOP, {1, 1, 6}, 3},
	/* an even window, 'same': the padding all after */
	{DW, {6, 5, 1}, 2, 2, 1, 1, 1, 1, true, 2, 0, true, "sigmoid", NOP, {6, 5, 2}, 3},
	/* 9: SeparableConv2D */
	{SEP, {7, 6, 3}, 3, 3, 1, 1, 1, 1, false, 1, 5, true, "linear", NOP, {5, 4, 5}, 3},
	{SEP, {8, 8, 4}, 3, 3, 2, 2, 1, 1, true, 2, 7, false, "relu", NOP, {4, 4, 7}, 3},
	{SEP, {9, 7, 16}, 2, 3, 1, 1, 2, 2, true, 1, 8, true, "tanh", NOP, {9, 7, 8}, 2},
	{SEP, {5, 6, 3}, 3, 3, 1, 1, 1, 1, true, 3, 4, true, "swish", NOP, {5, 6, 4}, 3},
	/* 13: Conv2DTranspose: valid, (5 - 1) * 2 + 3 */
	{CT, {5, 5, 3}, 3, 3, 2, 2, 1, 1, false, 0, 4, true, "linear", NOP, {11, 11, 4}, 3},
	/* 'same': in * strides; the 3-wide window with stride 1 pads 1 + 1 */
	{CT, {4, 5, 2}, 2, 3, 2, 1, 1, 1, true, 0, 3, true, "sigmoid", NOP, {8, 5, 3}, 3},
	/* 16 filters: vectors of 16 */
	{CT, {3, 4, 8}, 3, 3, 1, 1, 1, 1, true, 0, 16, true, "linear", NOP, {3, 4, 16}, 2},
	/* a kernel smaller than the stride: in * strides, every third row and column the bias alone */
	{CT, {3, 3, 2}, 1, 1, 3, 3, 1, 1, false, 0, 2, true, "linear", NOP, {9, 9, 2}, 3},
	/* an even kernel, 'same': the crop of 1 + 1 */
	{CT, {4, 3, 3}, 4, 4, 2, 2, 1, 1, true, 0, 5, false, "relu", NOP, {8, 6, 5}, 3},
	/* output_padding, valid: (4 - 1) * 2 + 3 + 1 by (3 - 1) * 2 + 3 + 0 */
	{CT, {4, 3, 2}, 3, 3, 2, 2, 1, 1, false, 0, 2, true, "linear", {1, 0}, {10, 7, 2}, 3},
	/* output_padding, 'same': (3 - 1) * 2 + 4 - 2 * 2 + 1 by (4 - 1) * 2 + 4 - 4 + 1 */
	{CT, {3, 4, 2}, 4, 4, 2, 2, 1, 1, true, 0, 3, true, "tanh", {1, 1}, {5, 7, 3}, 3},
	/* dilation 2, stride 2, valid: the window spans 5, 4 * 2 + 3 */
	{CT, {4, 4, 3}, 3, 3, 2, 2, 2, 2, false, 0, 2, true, "linear", NOP, {11, 11, 2}, 2},
	/* dilation along the height, stride along the width, 'same'; swish keeps its input */
	{CT, {5, 4, 2}, 3, 2, 1, 2, 2, 1, true, 0, 3, true, "swish", NOP, {5, 8, 3}, 3},
};
#define N_CASES ((int)(sizeof(cases) / sizeof(cases[0])))

/* ---- helpers ----------------------------------------------------------------------------------- */

static void case_yaml(const conv_case *c, char *yaml, size_t size)
{
	char extra[128] = "";
	if (c->type != CT)
		snprintf(extra, sizeof(extra), ", depth_multiplier: %d", c->dm);
	if (c->type != DW)
		snprintf(extra + strlen(extra), sizeof(extra) - strlen(extra), ", filters: %d", c->filters);
	if (c->op[0] >= 0)
		snprintf(extra + strlen(extra), sizeof(extra) - strlen(extra), ", output_padding: [%d, %d]", c->op[0],
		         c->op[1]);
	snprintf(yaml, size,
	         "input: {shape: [%lld, %lld, %lld]}\nlayers:\n"
	         "  - {type: %s, kernel_size: [%d, %d], strides: [%d, %d], dilation_rate: [%d, %d], padding: %s, "
	         "use_bias: %s, activation: %s%s}\n",
	         (long long)c->in[0], (long long)c->in[1], (long long)c->in[2], type_names[c->type], c->kh, c->kw, c->sh,
	         c->sw, c->dh, c->dw, c->same ? "same" : "valid", c->bias ? "true" : "false", c->act, extra);
}

static int weight_index(strata_session *s, size_t layer, const char *name)
{
	for (size_t w = 0; w < strata_session_weight_count(s, layer); w++) {
		const char *n = NULL;
		ck_assert_int_eq(strata_session_weight_info(s, layer, w, &n, NULL), STRATA_OK);
		if (!strcmp(n, name))
			return (int)w;
	}
	return -1;
}

/* Writes n random values in [lo, hi) to weight `name` of layer 0 and into dst. */
static void set_weight(strata_session *s, const char *name, float *dst, size_t n, unsigned seed, float lo, float hi)
{
	int w = weight_index(s, 0, name);
	ck_assert_msg(w >= 0, "no weight %s", name);
	strata_error err = {0};
	ts_fill_random(dst, n, seed, lo, hi);
	ck_assert_msg(strata_session_write_weight(s, 0, (size_t)w, dst, n, &err) == STRATA_OK, "%s", err.message);
}

static void close_enough(const char *what, size_t i, double got, double want, double tol)
{
	ck_assert_msg(fabs(got - want) <= tol * fmax(1.0, fabs(want)), "%s[%zu] = %.9g, want %.9g (tolerance %g)", what,
	              i, got, want, tol);
}

/* TensorFlow's convolution geometry along one dimension: the output of a window of `extent`
 * with `stride` over `in`, and the padding before it. */
static int64_t tf_window(int64_t in, int64_t extent, int64_t stride, bool same, int64_t *before)
{
	int64_t out = same ? (in + stride - 1) / stride : (in - extent) / stride + 1;
	int64_t total = (out - 1) * stride + extent - in;
	*before = same && total > 0 ? total / 2 : 0;
	return out;
}

static double act_ref(const char *act, double z)
{
	if (!strcmp(act, "relu"))
		return z > 0 ? z : 0;
	if (!strcmp(act, "tanh"))
		return tanh(z);
	if (!strcmp(act, "sigmoid"))
		return 1.0 / (1.0 + exp(-z));
	if (!strcmp(act, "gelu"))
		return 0.5 * z * (1.0 + erf(z / sqrt(2.0)));
	if (!strcmp(act, "swish"))
		return z / (1.0 + exp(-z));
	return z; /* linear; softmax is done per pixel by the caller */
}

/* In place over rows of `cols` values: the activation, softmax along each row. */
static void act_rows(const char *act, double *z, size_t rows, size_t cols)
{
	for (size_t r = 0; r < rows; r++) {
		double *row = z + r * cols;
		if (strcmp(act, "softmax") != 0) {
			for (size_t j = 0; j < cols; j++)
				row[j] = act_ref(act, row[j]);
			continue;
		}
		double m = row[0], s = 0.0;
		for (size_t j = 1; j < cols; j++)
			m = fmax(m, row[j]);
		for (size_t j = 0; j < cols; j++)
			s += exp(row[j] - m);
		for (size_t j = 0; j < cols; j++)
			row[j] = exp(row[j] - m) / s;
	}
}

/* The depthwise convolution by its definition: d[b, oy, ox, c*dm + m] = the sum over the taps of
 * x[b, oy*sh - pt + ky*dh, ox*sw - pl + kx*dw, c] * k[ky, kx, c, m], zero outside the image. */
static void depthwise_ref(const conv_case *c, uint32_t batch, const float *x, const float *k, double *d, int64_t oh,
                          int64_t ow, int64_t pt, int64_t pl)
{
	int64_t h = c->in[0], w = c->in[1], ch = c->in[2], dm = c->dm;
	for (int64_t b = 0; b < batch; b++)
		for (int64_t oy = 0; oy < oh; oy++)
			for (int64_t ox = 0; ox < ow; ox++)
				for (int64_t ci = 0; ci < ch; ci++)
					for (int64_t m = 0; m < dm; m++) {
						double s = 0.0;
						for (int64_t ky = 0; ky < c->kh; ky++)
							for (int64_t kx = 0; kx < c->kw; kx++) {
								int64_t y = oy * c->sh - pt + ky * c->dh, xx = ox * c->sw - pl + kx * c->dw;
								if (y < 0 || y >= h || xx < 0 || xx >= w)
									continue;
								s += (double)x[((b * h + y) * w + xx) * ch + ci] *
								     k[((ky * c->kw + kx) * ch + ci) * dm + m];
							}
						d[((b * oh + oy) * ow + ox) * ch * dm + ci * dm + m] = s;
					}
}

/* ---- forward against host references ------------------------------------------------------------ */

START_TEST(test_forward)
{
	const conv_case *c = &cases[_i];
	char yaml[512];
	case_yaml(c, yaml, sizeof(yaml));
	ts_device dev = ts_device_open();
	ts_net net = ts_net_open(&dev, yaml, c->batch + 1, 1);
	/* Keras' output shape */
	const strata_shape *out = &net.m->layers[0].out;
	ck_assert_uint_eq(out->rank, 3);
	for (int i = 0; i < 3; i++)
		ck_assert_msg(out->dims[i] == c->out[i], "%s: output dimension %d is %lld, Keras gives %lld", yaml, i,
		              (long long)out->dims[i], (long long)c->out[i]);
	int64_t h = c->in[0], w = c->in[1], ch = c->in[2], oh = c->out[0], ow = c->out[1], units = c->out[2];
	int64_t eh = c->dh * (c->kh - 1) + 1, ew = c->dw * (c->kw - 1) + 1, pt, pl;
	size_t n_in = (size_t)(c->batch * h * w * ch), n_out = (size_t)(c->batch * oh * ow * units);
	float *x = ts_floats(n_in), *y = ts_floats(n_out), *bias = ts_floats((size_t)units);
	double *want = calloc(n_out, sizeof(double));
	ck_assert_ptr_nonnull(want);
	ts_fill_random(x, n_in, 10 + (unsigned)_i, -1.0f, 1.0f);
	ts_tensor_write(dev.rt, st_session_value(net.s, 0), 0, x, n_in);
	if (c->bias)
		set_weight(net.s, "bias", bias, (size_t)units, 20 + (unsigned)_i, -0.5f, 0.5f);
	else
		ck_assert_int_lt(weight_index(net.s, 0, "bias"), 0);

	if (c->type == DW || c->type == SEP) {
		ck_assert_int_eq(tf_window(h, eh, c->sh, c->same, &pt), oh);
		ck_assert_int_eq(tf_window(w, ew, c->sw, c->same, &pl), ow);
		int64_t co = ch * c->dm;
		size_t nk = (size_t)(c->kh * c->kw * co);
		float *k = ts_floats(nk);
		set_weight(net.s, "depthwise_kernel", k, nk, 30 + (unsigned)_i, -0.5f, 0.5f);
		double *d = calloc((size_t)(c->batch * oh * ow * co), sizeof(double));
		ck_assert_ptr_nonnull(d);
		depthwise_ref(c, c->batch, x, k, d, oh, ow, pt, pl);
		if (c->type == DW) {
			memcpy(want, d, n_out * sizeof(double));
		} else {
			/* the 1x1 convolution with pointwise_kernel (1, 1, co, filters) */
			float *pk = ts_floats((size_t)(co * units));
			set_weight(net.s, "pointwise_kernel", pk, (size_t)(co * units), 40 + (unsigned)_i, -0.5f, 0.5f);
			for (size_t r = 0; r < n_out / (size_t)units; r++)
				for (int64_t f = 0; f < units; f++) {
					double s = 0.0;
					for (int64_t j = 0; j < co; j++)
						s += d[r * (size_t)co + (size_t)j] * pk[j * units + f];
					want[r * (size_t)units + (size_t)f] = s;
				}
			free(pk);
		}
		free(d);
		free(k);
	} else {
		/* Conv2DTranspose by its definition: input pixel (iy, ix) adds x * kernel[ky, kx, f, c] at
		 * the full output's (iy*sh + ky*dh, ix*sw + kx*dw); the output is the full one from row
		 * pt on, pt the padding before of the convolution from the output back to the input. */
		int64_t back_h = tf_window(oh, eh, c->sh, c->same, &pt), back_w = tf_window(ow, ew, c->sw, c->same, &pl);
		ck_assert_int_eq(back_h, h);
		ck_assert_int_eq(back_w, w);
		size_t nk = (size_t)(c->kh * c->kw * units * ch);
		float *k = ts_floats(nk);
		set_weight(net.s, "kernel", k, nk, 50 + (unsigned)_i, -0.5f, 0.5f);
		for (int64_t b = 0; b < c->batch; b++)
			for (int64_t iy = 0; iy < h; iy++)
				for (int64_t ix = 0; ix < w; ix++)
					for (int64_t ky = 0; ky < c->kh; ky++)
						for (int64_t kx = 0; kx < c->kw; kx++) {
							int64_t oy = iy * c->sh + ky * c->dh - pt, ox = ix * c->sw + kx * c->dw - pl;
							if (oy < 0 || oy >= oh || ox < 0 || ox >= ow)
								continue;
							for (int64_t f = 0; f < units; f++)
								for (int64_t ci = 0; ci < ch; ci++)
									want[((b * oh + oy) * ow + ox) * units + f] +=
										(double)x[((b * h + iy) * w + ix) * ch + ci] *
										k[((ky * c->kw + kx) * units + f) * ch + ci];
						}
		free(k);
	}
	if (c->bias)
		for (size_t i = 0; i < n_out; i++)
			want[i] += bias[i % (size_t)units];
	act_rows(c->act, want, n_out / (size_t)units, (size_t)units);

	strata_error err = {0};
	for (int mode = 0; mode < 2; mode++) {
		ck_assert_msg(st_session_forward_device(net.s, c->batch, mode == 0, &err) == STRATA_OK, "%s", err.message);
		ts_tensor_read(dev.rt, st_session_output(net.s), y, n_out);
		for (size_t i = 0; i < n_out; i++)
			close_enough(type_names[c->type], i, y[i], want[i], 1e-5);
	}
	/* the same bits again */
	float *again = ts_floats(n_out);
	ck_assert_msg(st_session_forward_device(net.s, c->batch, true, &err) == STRATA_OK, "%s", err.message);
	ts_tensor_read(dev.rt, st_session_output(net.s), again, n_out);
	ck_assert_msg(memcmp(y, again, n_out * sizeof(float)) == 0, "a second pass gave other bits");
	free(again);
	free(want);
	free(bias);
	free(y);
	free(x);
	ts_net_close(&net);
	ts_device_close(&dev);
}
END_TEST

/* ---- gradients ------------------------------------------------------------------------------- */

/* The library's check of the layer alone (strata gradcheck), both modes: the input and every
 * weight, each nontrivial. */
START_TEST(test_layer_gradients)
{
	const conv_case *c = &cases[_i];
	char yaml[512];
	case_yaml(c, yaml, sizeof(yaml));
	ts_device dev = ts_device_open();
	ts_net net = ts_net_open(&dev, yaml, c->batch + 1, 1);
	strata_gradcheck_options o = {.size = sizeof(o), .layer = 0, .batch = c->batch, .seed = 60 + (uint64_t)_i,
	                              .mode = STRATA_GRADCHECK_BOTH};
	strata_gradcheck_report rep = {0};
	strata_error err = {0};
	ck_assert_msg(strata_gradcheck(net.s, &o, &rep, &err) == STRATA_OK, "gradcheck: %s", err.message);
	size_t per_mode = 1 + (c->type == SEP ? 2 : 1) + c->bias;
	ck_assert_uint_eq(rep.n_tensors, 2 * per_mode);
	for (size_t t = 0; t < rep.n_tensors; t++) {
		const strata_gradcheck_tensor *g = &rep.tensors[t];
		ck_assert_msg(g->passed, "case %d %s %s: %s (worst %g at %zu: %g vs %g)", _i,
		              g->training ? "training" : "inference", g->name, g->message, g->worst, g->worst_index,
		              g->backward, g->differences);
		ck_assert_msg(g->largest > 1e-3, "case %d %s: the gradient is ~0 (%g)", _i, g->name, g->largest);
	}
	ck_assert(rep.passed);
	strata_gradcheck_report_free(&rep);
	ts_net_close(&net);
	ts_device_close(&dev);
}
END_TEST

/* Finite differences through models: the layers between others (their input gradients wanted),
 * backward passes that find the forward pass's workspaces kept, a second backward pass giving
 * the same bits. */
static const char *const models[] = {
	"input: {shape: [7, 7, 2]}\n"
	"layers:\n"
	"  - {type: depthwise_conv2d, kernel_size: 3, depth_multiplier: 2, padding: same, activation: tanh}\n"
	"  - {type: separable_conv2d, filters: 4, kernel_size: 3, strides: 2, padding: same, activation: gelu}\n"
	"  - {type: conv2d_transpose, filters: 3, kernel_size: 3, strides: 2, padding: same, activation: swish}\n"
	"  - {type: flatten}\n"
	"  - {type: dense, units: 3}\n",
	"input: {shape: [6, 5, 3]}\n"
	"layers:\n"
	"  - {type: conv2d_transpose, filters: 2, kernel_size: 2, strides: 2, activation: sigmoid}\n"
	"  - {type: depthwise_conv2d, kernel_size: 3, dilation_rate: 2, strides: 2, use_bias: false}\n"
	"  - {type: separable_conv2d, filters: 5, kernel_size: [2, 3], depth_multiplier: 3, use_bias: false}\n"
	"  - {type: flatten}\n"
	"  - {type: dense, units: 3, activation: tanh}\n",
	"input: {shape: [5, 5, 4]}\n"
	"layers:\n"
	"  - {type: depthwise_conv2d, kernel_size: 2, strides: 2, padding: same, activation: elu}\n"
	"  - {type: conv2d_transpose, filters: 4, kernel_size: 3, strides: 2, output_padding: 1, dilation_rate: 2}\n"
	"  - {type: flatten}\n"
	"  - {type: dense, units: 2}\n",
};

START_TEST(test_model_gradients)
{
	ts_fd f;
	ts_fd_open(&f, models[_i], 3, 0.0f, 70 + (unsigned)_i);
	ts_fd_tolerance tol = {.max_checks = 60, .nontrivial = 1e-4, .to_largest = true, .repeat = 0.0};
	ts_fd_check_gradients(&f, &tol);
	ts_fd_close(&f);
}
END_TEST

/* The depthwise backward pass against the gradients written out in double from a random dy:
 * dkernel[ky, kx, c, m] = the sum of dy[.., c*dm + m] * x at the tap, dbias the sums of dy, dx
 * the sum over the windows holding each input pixel. The larger case has 17 x 64 x 64 = 69632
 * output rows: more than 1024 blocks of 64, so blocks of 69 rows. */
typedef struct grad_case {
	int64_t in[3];
	int k, s, d, dm;
	bool same;
	uint32_t batch;
} grad_case;

static const grad_case grad_cases[] = {
	{{7, 6, 3}, 3, 2, 1, 2, true, 3},
	{{6, 6, 5}, 2, 1, 2, 1, false, 4},
	{{64, 64, 2}, 3, 1, 1, 1, true, 17},
};

START_TEST(test_depthwise_backward_reference)
{
	const grad_case *gc = &grad_cases[_i];
	conv_case c = {DW, {gc->in[0], gc->in[1], gc->in[2]}, gc->k, gc->k, gc->s, gc->s, gc->d, gc->d, gc->same, gc->dm,
	               0, true, "linear", NOP, {0, 0, 0}, gc->batch};
	int64_t e = gc->d * (gc->k - 1) + 1, pt, pl;
	int64_t h = c.in[0], w = c.in[1], ch = c.in[2], co = ch * gc->dm;
	int64_t oh = tf_window(h, e, gc->s, gc->same, &pt), ow = tf_window(w, e, gc->s, gc->same, &pl);
	char yaml[512];
	case_yaml(&c, yaml, sizeof(yaml));
	ts_device dev = ts_device_open();
	ts_net net = ts_net_open(&dev, yaml, gc->batch, 1);
	strata_error err = {0};
	ck_assert_msg(st_session_enable_training(net.s, &err) == STRATA_OK, "%s", err.message);
	size_t n_in = (size_t)(gc->batch * h * w * ch), n_out = (size_t)(gc->batch * oh * ow * co);
	size_t nk = (size_t)(gc->k * gc->k * co);
	float *x = ts_floats(n_in), *dy = ts_floats(n_out), *k = ts_floats(nk), *b = ts_floats((size_t)co);
	float *dx = ts_floats(n_in), *dk = ts_floats(nk), *db = ts_floats((size_t)co);
	ts_fill_random(x, n_in, 80 + (unsigned)_i, -1.0f, 1.0f);
	ts_fill_random(dy, n_out, 90 + (unsigned)_i, -1.0f, 1.0f);
	ts_tensor_write(dev.rt, st_session_value(net.s, 0), 0, x, n_in);
	set_weight(net.s, "depthwise_kernel", k, nk, 100 + (unsigned)_i, -0.5f, 0.5f);
	set_weight(net.s, "bias", b, (size_t)co, 110 + (unsigned)_i, -0.5f, 0.5f);
	ck_assert_msg(st_session_forward_device(net.s, gc->batch, true, &err) == STRATA_OK, "%s", err.message);
	ts_tensor_write(dev.rt, st_session_output_grad(net.s), 0, dy, n_out);
	strata_tensor *g = NULL;
	ck_assert_msg(st_session_backward(net.s, gc->batch, false, &g, &err) == STRATA_OK, "%s", err.message);
	ts_tensor_read(dev.rt, g, dx, n_in);
	ts_tensor_read(dev.rt, &net.s->binds[0].grads[weight_index(net.s, 0, "depthwise_kernel")], dk, nk);
	ts_tensor_read(dev.rt, &net.s->binds[0].grads[weight_index(net.s, 0, "bias")], db, (size_t)co);

	double *want_dx = calloc(n_in, sizeof(double)), *want_dk = calloc(nk, sizeof(double));
	double *want_db = calloc((size_t)co, sizeof(double));
	ck_assert(want_dx && want_dk && want_db);
	for (int64_t bb = 0; bb < gc->batch; bb++)
		for (int64_t oy = 0; oy < oh; oy++)
			for (int64_t ox = 0; ox < ow; ox++)
				for (int64_t o = 0; o < co; o++) {
					double g_o = dy[((bb * oh + oy) * ow + ox) * co + o];
					int64_t ci = o / gc->dm;
					want_db[o] += g_o;
					for (int64_t ky = 0; ky < gc->k; ky++)
						for (int64_t kx = 0; kx < gc->k; kx++) {
							int64_t y = oy * gc->s - pt + ky * gc->d, xx = ox * gc->s - pl + kx * gc->d;
							if (y < 0 || y >= h || xx < 0 || xx >= w)
								continue;
							size_t xi = (size_t)(((bb * h + y) * w + xx) * ch + ci), ki = (size_t)((ky * gc->k + kx) * co + o);
							want_dk[ki] += g_o * x[xi];
							want_dx[xi] += g_o * k[ki];
						}
				}
	/* sums of up to 69632 terms in float32: a tolerance that grows with the count */
	double tol = gc->batch > 10 ? 2e-4 : 2e-5;
	for (size_t i = 0; i < nk; i++)
		close_enough("dkernel", i, dk[i], want_dk[i], tol);
	for (size_t i = 0; i < (size_t)co; i++)
		close_enough("dbias", i, db[i], want_db[i], tol);
	for (size_t i = 0; i < n_in; i++)
		close_enough("dx", i, dx[i], want_dx[i], 2e-5);
	free(want_db);
	free(want_dk);
	free(want_dx);
	free(db);
	free(dk);
	free(dx);
	free(b);
	free(k);
	free(dy);
	free(x);
	ts_net_close(&net);
	ts_device_close(&dev);
}
END_TEST

/* ---- Keras' weights and counts ------------------------------------------------------------------- */

typedef struct count_case {
	const char *yaml;
	const char *weights; /* layer 0's weights: "name (d0, d1, ...)" each, in order */
	const char *total;
} count_case;

static const count_case counts[] = {
	/* Keras: DepthwiseConv2D(3, depth_multiplier=2) on (8, 8, 3): 3*3*3*2 + 6 = 60 */
	{"input: {shape: [8, 8, 3]}\nlayers:\n  - {type: depthwise_conv2d, kernel_size: 3, depth_multiplier: 2}\n",
	 "depthwise_kernel (3, 3, 3, 2) bias (6)", "Total params: 60\n"},
	/* DepthwiseConv2D((3, 5), use_bias=False) on (8, 8, 4): 3*5*4 = 60 */
	{"input: {shape: [8, 8, 4]}\nlayers:\n  - {type: DepthwiseConv2D, kernel_size: [3, 5], use_bias: false}\n",
	 "depthwise_kernel (3, 5, 4, 1)", "Total params: 60\n"},
	/* SeparableConv2D(16, 3) on (8, 8, 3): 27 + 48 + 16 = 91 */
	{"input: {shape: [8, 8, 3]}\nlayers:\n  - {type: separable_conv2d, filters: 16, kernel_size: 3}\n",
	 "depthwise_kernel (3, 3, 3, 1) pointwise_kernel (1, 1, 3, 16) bias (16)", "Total params: 91\n"},
	/* SeparableConv2D(16, 3, depth_multiplier=2, use_bias=False) on (8, 8, 3): 54 + 96 = 150 */
	{"input: {shape: [8, 8, 3]}\nlayers:\n"
	 "  - {type: SeparableConv2D, filters: 16, kernel_size: 3, depth_multiplier: 2, use_bias: false}\n",
	 "depthwise_kernel (3, 3, 3, 2) pointwise_kernel (1, 1, 6, 16)", "Total params: 150\n"},
	/* Conv2DTranspose(4, 3, strides=2) on (5, 5, 3): 3*3*4*3 + 4 = 112 */
	{"input: {shape: [5, 5, 3]}\nlayers:\n  - {type: conv2d_transpose, filters: 4, kernel_size: 3, strides: 2}\n",
	 "kernel (3, 3, 4, 3) bias (4)", "Total params: 112\n"},
	/* Conv2DTranspose(8, 2, use_bias=False) on (4, 4, 16): 2*2*8*16 = 512 */
	{"input: {shape: [4, 4, 16]}\nlayers:\n"
	 "  - {type: Conv2DTranspose, filters: 8, kernel_size: 2, use_bias: false}\n",
	 "kernel (2, 2, 8, 16)", "Total params: 512\n"},
	/* A MobileNet-style stack on (32, 32, 3): conv 3*3*3*16 = 432, depthwise 9*16 = 144,
	 * pointwise conv 16*32 = 512, depthwise with bias 9*32 + 32 = 320, separable
	 * 9*32 + 32*64 + 64 = 2400, transposed 2*2*8*64 + 8 = 2056: 5864 */
	{"input: {shape: [32, 32, 3]}\nlayers:\n"
	 "  - {type: conv2d, filters: 16, kernel_size: 3, strides: 2, padding: same, use_bias: false}\n"
	 "  - {type: depthwise_conv2d, kernel_size: 3, padding: same, use_bias: false}\n"
	 "  - {type: conv2d, filters: 32, kernel_size: 1, use_bias: false}\n"
	 "  - {type: depthwise_conv2d, kernel_size: 3, strides: 2, padding: same}\n"
	 "  - {type: separable_conv2d, filters: 64, kernel_size: 3, padding: same}\n"
	 "  - {type: conv2d_transpose, filters: 8, kernel_size: 2, strides: 2}\n",
	 NULL, "Total params: 5,864\n"},
};

START_TEST(test_counts)
{
	const count_case *c = &counts[_i];
	strata_registry *reg = ts_registry();
	strata_model *m = ts_model(reg, c->yaml);
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);
	ck_assert_ptr_nonnull(f);
	strata_model_print_summary(m, f);
	fclose(f);
	ck_assert_msg(strstr(text, c->total) && strstr(text, "Non-trainable params: 0\n"),
	              "summary does not say %s:\n%s", c->total, text);
	if (c->weights) {
		const struct strata_layer *l = &m->layers[0];
		char names[256] = "";
		size_t used = 0;
		for (uint32_t w = 0; w < l->n_weights; w++) {
			ck_assert(!l->weights[w].state);
			used += (size_t)snprintf(names + used, sizeof(names) - used, "%s%s (", w ? " " : "", l->weights[w].name);
			for (uint32_t d = 0; d < l->weights[w].shape.rank; d++)
				used += (size_t)snprintf(names + used, sizeof(names) - used, "%s%lld", d ? ", " : "",
				                         (long long)l->weights[w].shape.dims[d]);
			used += (size_t)snprintf(names + used, sizeof(names) - used, ")");
		}
		ck_assert_str_eq(names, c->weights);
	}
	free(text);
	strata_model_free(m);
	strata_registry_close(reg);
}
END_TEST

/* Keras' class names and name prefixes; constraints reach the weights they name. */
START_TEST(test_names_and_constraints)
{
	strata_registry *reg = ts_registry();
	strata_model *m = ts_model(reg, "input: {shape: [6, 6, 2]}\nlayers:\n"
	                                "  - {type: depthwise_conv2d, kernel_size: 3, depthwise_constraint: non_neg}\n"
	                                "  - {type: separable_conv2d, filters: 3, kernel_size: 2, pointwise_constraint: "
	                                "{max_norm: {max_value: 3}}, bias_constraint: non_neg}\n"
	                                "  - {type: conv2d_transpose, filters: 2, kernel_size: 2, "
	                                "kernel_constraint: max_norm}\n"
	                                "  - {type: DepthwiseConv2D, kernel_size: 1, data_format: channels_last}\n");
	ck_assert_str_eq(m->layers[0].name, "depthwise_conv2d_1");
	ck_assert_str_eq(m->layers[1].name, "separable_conv2d_1");
	ck_assert_str_eq(m->layers[2].name, "conv2d_transpose_1");
	ck_assert_str_eq(m->layers[3].name, "depthwise_conv2d_2");
	ck_assert_str_eq(m->layers[0].type->ops.class_name, "DepthwiseConv2D");
	ck_assert_str_eq(m->layers[1].type->ops.class_name, "SeparableConv2D");
	ck_assert_str_eq(m->layers[2].type->ops.class_name, "Conv2DTranspose");
	/* depthwise_kernel and bias; depthwise, pointwise, bias; kernel and bias */
	ck_assert_int_eq(m->layers[0].weights[0].constraint, ST_CONSTRAINT_NON_NEG);
	ck_assert_int_eq(m->layers[0].weights[1].constraint, ST_CONSTRAINT_NONE);
	ck_assert_int_eq(m->layers[1].weights[0].constraint, ST_CONSTRAINT_NONE);
	ck_assert_int_eq(m->layers[1].weights[1].constraint, ST_CONSTRAINT_MAX_NORM);
	ck_assert(fabs(m->layers[1].weights[1].max_value - 3.0) < 1e-12);
	ck_assert_int_eq(m->layers[1].weights[2].constraint, ST_CONSTRAINT_NON_NEG);
	ck_assert_int_eq(m->layers[2].weights[0].constraint, ST_CONSTRAINT_MAX_NORM);
	ck_assert_int_eq(m->layers[2].weights[1].constraint, ST_CONSTRAINT_NONE);
	strata_model_free(m);
	strata_registry_close(reg);
}
END_TEST

/* ---- refusals -------------------------------------------------------------------------------------- */

typedef struct refusal_case {
	const char *input; /* the input shape, YAML */
	const char *layer; /* the layer line, after "  - " */
	const char *where; /* "conv.yaml:3:COLUMN: " */
	const char *says[2];
} refusal_case;

static const refusal_case refusals[] = {
	{"[16]", "{type: depthwise_conv2d, kernel_size: 3}", "conv.yaml:3:5: depthwise_conv2d_1: ",
	 {"DepthwiseConv2D needs a (height, width, channels) input, got (16)"}},
	{"[4, 4, 2]", "{type: depthwise_conv2d, kernel_size: 5}", "conv.yaml:3:43: ",
	 {"the 5x5 window", "larger than the 4x4 input with padding 'valid'"}},
	{"[6, 6, 2]", "{type: depthwise_conv2d, kernel_size: 3, dilation_rate: 3}", "conv.yaml:3:43: ",
	 {"the 7x7 window (kernel 3x3, dilation 3x3)", "larger than the 6x6 input"}},
	{"[4, 4, 2]", "{type: depthwise_conv2d, kernel_size: 3, depth_multiplier: 0}", "conv.yaml:3:64: ",
	 {"'depth_multiplier' must be"}},
	{"[4, 4, 2]", "{type: depthwise_conv2d, kernel_size: 3, data_format: channels_first}", "conv.yaml:3:59: ",
	 {"'data_format' is a Keras parameter Strata leaves out", "channels-last"}},
	{"[4, 4, 2]", "{type: depthwise_conv2d, kernel_size: 3, depthwise_constraint: unit_norm}", "conv.yaml:3:68: ",
	 {"unknown constraint"}},
	{"[4, 4, 2]", "{type: depthwise_conv2d, kernel_size: 3, activation: swishy}", "conv.yaml:3:58: ",
	 {"'activation' must be one of"}},
	{"[4, 4, 2]", "{type: depthwise_conv2d, kernel_size: [3, 3, 3]}", "conv.yaml:3:43: ",
	 {"'kernel_size' must be 2 integers or one integer, got 3"}},
	{"[4, 4, 2]", "{type: separable_conv2d, kernel_size: 3}", "conv.yaml:3:5: ",
	 {"missing required parameter 'filters' in separable_conv2d layer"}},
	{"[4, 4, 2]", "{type: separable_conv2d, filters: 2, kernel_size: 3, strides: 0}", "conv.yaml:3:67: ",
	 {"'strides'"}},
	{"[4, 4]", "{type: separable_conv2d, filters: 2, kernel_size: 3}", "conv.yaml:3:5: separable_conv2d_1: ",
	 {"SeparableConv2D needs a (height, width, channels) input"}},
	{"[4, 4, 2]", "{type: conv2d_transpose, filters: 2, kernel_size: 3, strides: 2, output_padding: 2}",
	 "conv.yaml:3:86: conv2d_transpose_1: ", {"output_padding 2 along the height is not below its stride 2"}},
	{"[4, 4, 2]", "{type: conv2d_transpose, filters: 2, kernel_size: 4, strides: 2, padding: same, output_padding: 0}",
	 "conv.yaml:3:101: ", {"does not map back to the 4x4 input", "output_padding of at least 1"}},
	{"[4, 4, 2]", "{type: conv2d_transpose, filters: 2, kernel_size: 3, data_format: channels_first}",
	 "conv.yaml:3:71: ", {"'data_format' is a Keras parameter Strata leaves out"}},
	{"[4, 4, 2]", "{type: conv2d_transpose, filters: 0, kernel_size: 3}", "conv.yaml:3:39: ", {"'filters' must be"}},
	{"[4, 4, 2]", "{type: conv2d_transpose, filters: 2, kernel_size: 3, output_padding: [1, 2, 3]}",
	 "conv.yaml:3:74: ", {"'output_padding' must be 2 integers or one integer, got 3"}},
};

START_TEST(test_refusals)
{
	const refusal_case *rc = &refusals[_i];
	char yaml[256];
	snprintf(yaml, sizeof(yaml), "input: {shape: %s}\nlayers:\n  - %s\n", rc->input, rc->layer);
	strata_registry *reg = ts_registry();
	strata_model *m = NULL;
	strata_error err = {0};
	strata_status st = strata_model_load_string(reg, yaml, strlen(yaml), "conv.yaml", NULL, &m, &err);
	ck_assert_msg(st == STRATA_ERR_INVALID, "status %s: %s", strata_status_name(st), err.message);
	ck_assert_ptr_null(m);
	ck_assert_msg(strncmp(err.message, rc->where, strlen(rc->where)) == 0, "'%s' does not start with '%s'",
	              err.message, rc->where);
	for (size_t k = 0; k < 2 && rc->says[k]; k++)
		ck_assert_msg(strstr(err.message, rc->says[k]), "'%s' does not say '%s'", err.message, rc->says[k]);
	strata_registry_close(reg);
}
END_TEST

static Suite *convolutions_suite(void)
{
	Suite *s = suite_create("convolutions");
	TCase *fw = tcase_create("forward");
	tcase_add_loop_test(fw, test_forward, 0, N_CASES);
	suite_add_tcase(s, fw);

	TCase *bw = tcase_create("backward");
	tcase_add_loop_test(bw, test_layer_gradients, 0, N_CASES);
	tcase_add_loop_test(bw, test_model_gradients, 0, (int)(sizeof(models) / sizeof(models[0])));
	tcase_add_loop_test(bw, test_depthwise_backward_reference, 0, (int)(sizeof(grad_cases) / sizeof(grad_cases[0])));
	suite_add_tcase(s, bw);

	TCase *model = tcase_create("model");
	tcase_add_loop_test(model, test_counts, 0, (int)(sizeof(counts) / sizeof(counts[0])));
	tcase_add_test(model, test_names_and_constraints);
	tcase_add_loop_test(model, test_refusals, 0, (int)(sizeof(refusals) / sizeof(refusals[0])));
	suite_add_tcase(s, model);
	return s;
}

int main(void)
{
	return ts_run(convolutions_suite());
}
