/* The host table's declared services over the runtime's shared kernels (plugin.h:
 * activation_forward, activation_backward, column_sums, copy, fill), called through the table as
 * a plugin calls them, on small tensors, each result compared with a host reference in double:
 * every activation forward and backward, the bias gradient's sums with row counts that are not
 * a multiple of the blocks and work-groups, the empty cases, and the errors with their messages. */
#include <limits.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "support.h"

#include "device/runtime.h"
#include "exec/host_api.h"
#include "exec/session.h"
#include "model/model.h"

/* float32 device results against double host references: relative, with a floor near zero. */
#define TOLERANCE 1e-5
/* What the services must leave alone past the range they were given. */
#define SENTINEL -12345.5f
#define PAD 5

enum {
	ACT_LINEAR, ACT_RELU, ACT_SIGMOID, ACT_TANH, ACT_SOFTMAX, ACT_ELU, ACT_SELU, ACT_GELU, ACT_SWISH, ACT_SOFTPLUS,
	ACT_SOFTSIGN, ACT_HARD_SIGMOID, ACT_EXPONENTIAL, ACT_RELU6, ACT_LEAKY_RELU, ACT_HARD_SILU, ACT_MISH,
	ACT_LOG_SOFTMAX, ACT_COUNT
};
static const char *const act_names[ACT_COUNT] = {
	"linear", "relu", "sigmoid", "tanh", "softmax", "elu", "selu", "gelu", "swish", "softplus", "softsign",
	"hard_sigmoid", "exponential", "relu6", "leaky_relu", "hard_silu", "mish", "log_softmax",
};

/* Whose derivative is no function of their output (plugin.h): activation_backward refuses them. */
static bool needs_input(int act)
{
	return act == ACT_GELU || act == ACT_SWISH || act == ACT_HARD_SILU || act == ACT_MISH;
}

/* A session on a one-layer model; its layer is what the services are called for. */
#define MODEL "input: {shape: [4]}\nlayers:\n  - type: flatten\n    name: svc\n"

typedef struct fixture {
	ts_device dev;
	ts_net net;
	strata_layer *layer;
	strata_error err;
	const strata_host *host;
} fixture;

static void fx_open(fixture *f)
{
	memset(f, 0, sizeof(*f));
	f->dev = ts_device_open();
	f->net = ts_net_open(&f->dev, MODEL, 1, 1);
	f->layer = &f->net.m->layers[0];
	f->layer->err = &f->err;
	f->host = &st_host_api;
}

static void fx_close(fixture *f)
{
	f->layer->err = NULL;
	ts_net_close(&f->net);
	ts_device_close(&f->dev);
}

/* A tensor of n floats and PAD more, holding `values` (n of them; NULL: zeros) and SENTINEL after. */
static strata_tensor tensor(fixture *f, const float *values, size_t n)
{
	strata_tensor t = {0};
	strata_error err = {0};
	float *host = malloc((n + PAD) * sizeof(*host));
	ck_assert_ptr_nonnull(host);
	for (size_t i = 0; i < n + PAD; i++)
		host[i] = i < n ? (values ? values[i] : 0.0f) : SENTINEL;
	ck_assert_int_eq(st_tensor_alloc(f->dev.rt, &t, (n + PAD) * sizeof(float), "a test tensor", &err), STRATA_OK);
	ck_assert_msg(st_tensor_write(f->dev.rt, &t, 0, host, (n + PAD) * sizeof(float), &err) == STRATA_OK, "%s",
	              err.message);
	free(host);
	return t;
}

/* The n floats of t, checking that the PAD after them still hold SENTINEL. */
static float *read_back(fixture *f, strata_tensor *t, size_t n, const char *what)
{
	strata_error err = {0};
	float *host = malloc((n + PAD) * sizeof(*host));
	ck_assert_ptr_nonnull(host);
	ck_assert_msg(st_tensor_read(f->dev.rt, t, 0, host, (n + PAD) * sizeof(float), &err) == STRATA_OK, "%s",
	              err.message);
	for (size_t i = n; i < n + PAD; i++)
		ck_assert_msg(host[i] == SENTINEL, "%s: element %zu past the %zu given was written (%g)", what, i, n,
		              (double)host[i]);
	return host;
}

static float *random_floats(size_t n, unsigned seed, float lo, float hi)
{
	float *p = malloc((n ? n : 1) * sizeof(*p));
	ck_assert_ptr_nonnull(p);
	ts_fill_random(p, n, seed, lo, hi);
	return p;
}

static void check_close(const char *what, const float *got, const double *want, size_t n, double tolerance)
{
	for (size_t i = 0; i < n; i++) {
		double d = fabs((double)got[i] - want[i]);
		ck_assert_msg(isfinite(got[i]) && d <= tolerance * (1.0 + fabs(want[i])), "%s[%zu]: device %.9g, host %.9g",
		              what, i, (double)got[i], want[i]);
	}
}

static void check_ok(fixture *f, strata_status st, const char *what)
{
	ck_assert_msg(st == STRATA_OK, "%s: %s (%s)", what, strata_status_name(st), f->err.message);
}

/* The service failed with `status`, recorded it as the layer's last, and said `needle` in a
 * message that names the model file and the layer. */
static void check_error(fixture *f, strata_status st, strata_status status, const char *needle)
{
	ck_assert_msg(st == status, "got %s, want %s (%s)", strata_status_name(st), strata_status_name(status),
	              f->err.message);
	ck_assert_int_eq(f->host->last_status(f->layer), status);
	ck_assert_msg(strstr(f->err.message, needle), "message '%s' lacks '%s'", f->err.message, needle);
	ck_assert_msg(strncmp(f->err.message, "test.yaml:", 10) == 0 && strstr(f->err.message, ": svc: "),
	              "message '%s' does not name the file and the layer", f->err.message);
	f->err.message[0] = '\0';
}

/* ---- Host references -------------------------------------------------------------------------- */

/* Keras 3's definitions (keras/src/activations/activations.py) in double, and their derivatives
 * from the input. */
static double ref_act(double v, int act)
{
	const double selu_alpha = 1.6732632423543772, selu_scale = 1.0507009873554805;
	double hs = fmin(fmax(v / 6.0 + 0.5, 0.0), 1.0), sp = v > 0 ? v + log1p(exp(-v)) : log1p(exp(v));
	switch (act) {
	case ACT_RELU: return fmax(v, 0.0);
	case ACT_SIGMOID: return 1.0 / (1.0 + exp(-v));
	case ACT_TANH: return tanh(v);
	case ACT_ELU: return v > 0 ? v : expm1(v);
	case ACT_SELU: return selu_scale * (v > 0 ? v : selu_alpha * expm1(v));
	case ACT_GELU: return 0.5 * v * (1.0 + erf(v / sqrt(2.0)));
	case ACT_SWISH: return v / (1.0 + exp(-v));
	case ACT_SOFTPLUS: return sp;
	case ACT_SOFTSIGN: return v / (1.0 + fabs(v));
	case ACT_HARD_SIGMOID: return hs;
	case ACT_EXPONENTIAL: return exp(v);
	case ACT_RELU6: return fmin(fmax(v, 0.0), 6.0);
	case ACT_LEAKY_RELU: return v > 0 ? v : 0.2 * v;
	case ACT_HARD_SILU: return v * hs;
	case ACT_MISH: return v * tanh(sp);
	default: return v;
	}
}

static double ref_grad(double v, int act)
{
	const double selu_alpha = 1.6732632423543772, selu_scale = 1.0507009873554805;
	double s = 1.0 / (1.0 + exp(-v)), t = tanh(v > 0 ? v + log1p(exp(-v)) : log1p(exp(v)));
	switch (act) {
	case ACT_RELU: return v > 0 ? 1.0 : 0.0;
	case ACT_SIGMOID: return s * (1.0 - s);
	case ACT_TANH: return 1.0 - tanh(v) * tanh(v);
	case ACT_ELU: return v > 0 ? 1.0 : exp(v);
	case ACT_SELU: return v > 0 ? selu_scale : selu_scale * selu_alpha * exp(v);
	case ACT_GELU: return 0.5 * (1.0 + erf(v / sqrt(2.0))) + v * exp(-0.5 * v * v) / sqrt(2.0 * M_PI);
	case ACT_SWISH: return s + v * s * (1.0 - s);
	case ACT_SOFTPLUS: return s;
	case ACT_SOFTSIGN: return 1.0 / ((1.0 + fabs(v)) * (1.0 + fabs(v)));
	case ACT_HARD_SIGMOID: return v > -3.0 && v < 3.0 ? 1.0 / 6.0 : 0.0;
	case ACT_EXPONENTIAL: return exp(v);
	case ACT_RELU6: return v > 0.0 && v < 6.0 ? 1.0 : 0.0;
	case ACT_LEAKY_RELU: return v > 0 ? 1.0 : 0.2;
	case ACT_HARD_SILU: return v < -3.0 ? 0.0 : v > 3.0 ? 1.0 : v / 3.0 + 0.5;
	case ACT_MISH: return t + v * (1.0 - t * t) * s;
	default: return 1.0;
	}
}

/* y = act(x + bias) over rows x cols, softmax along each row. */
static void ref_forward(const float *x, const float *bias, size_t rows, size_t cols, int act, double *y)
{
	for (size_t r = 0; r < rows; r++) {
		double *row = y + r * cols;
		for (size_t j = 0; j < cols; j++)
			row[j] = (double)x[r * cols + j] + (bias ? (double)bias[j] : 0.0);
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
			row[j] = ref_act(row[j], act);
	}
}

/* dz = dy * act'(x + bias) (bias may be NULL), from the input; softmax's row Jacobian from its
 * output y. */
static void ref_backward(const float *dy, const float *x, const float *bias, const float *y, size_t rows, size_t cols,
                         int act, double *dz)
{
	for (size_t r = 0; r < rows; r++) {
		const float *g = dy + r * cols, *v = y + r * cols;
		double dot = 0.0, sum = 0.0;
		for (size_t j = 0; act == ACT_SOFTMAX && j < cols; j++)
			dot += (double)g[j] * v[j];
		for (size_t j = 0; act == ACT_LOG_SOFTMAX && j < cols; j++)
			sum += g[j];
		for (size_t j = 0; j < cols; j++) {
			double in = (double)x[r * cols + j] + (bias ? bias[j] : 0.0);
			dz[r * cols + j] = act == ACT_SOFTMAX       ? v[j] * (g[j] - dot)
			                   : act == ACT_LOG_SOFTMAX ? g[j] - exp((double)v[j]) * sum
			                                            : g[j] * ref_grad(in, act);
		}
	}
}

/* Outputs of activation `act` to differentiate from: what its forward pass gives (relu: some 0),
 * and the inputs they came from (*x_out, when not NULL). */
static float *activation_outputs_of(size_t rows, size_t cols, int act, unsigned seed, float **x_out)
{
	float *x = random_floats(rows * cols, seed, -3.0f, 3.0f), *y = malloc((rows * cols + 1) * sizeof(*y));
	double *ref = malloc((rows * cols + 1) * sizeof(*ref));
	ck_assert(y && ref);
	ref_forward(x, NULL, rows, cols, act, ref);
	for (size_t i = 0; i < rows * cols; i++)
		y[i] = (float)ref[i];
	free(ref);
	*x_out = x;
	return y;
}

/* ---- The table -------------------------------------------------------------------------------- */

START_TEST(test_table_has_the_services)
{
	fixture f;
	fx_open(&f);
	ck_assert(STRATA_HOST_HAS(f.host, activation_forward));
	ck_assert(STRATA_HOST_HAS(f.host, activation_backward));
	ck_assert(STRATA_HOST_HAS(f.host, column_sums));
	ck_assert(STRATA_HOST_HAS(f.host, copy));
	ck_assert(STRATA_HOST_HAS(f.host, fill));
	ck_assert(STRATA_HOST_HAS(f.host, activation_backward_input));
	ck_assert(STRATA_HOST_HAS(f.host, gemm_bias_activation));
	/* The slots were reserved ones: the table keeps the size of 0.2's (tests/abi/0.2: 14 reserved
	 * slots after gemm_window, the last one gemm_bias_activation's), which a plugin built then knows. */
	ck_assert_uint_eq(f.host->size, sizeof(strata_host));
	ck_assert_uint_eq(sizeof(strata_host), offsetof(strata_host, input_count) + 14 * sizeof(void *));
	/* The old way stays: plugins built before the services launch "core" by name. */
	strata_kernel *k = f.host->kernel(f.layer, "core", "copy", NULL);
	ck_assert_msg(k != NULL, "core/copy: %s", f.err.message);
	fx_close(&f);
}
END_TEST

/* ---- gemm_bias_activation ---------------------------------------------------------------------- */

/* gemm_bias_activation against gemm() then activation_forward(), bit for bit: in the epilogue of
 * Strata's GEMM (linear, relu; a K long enough to split, where gemm_reduce runs the epilogue;
 * an N past the vector blocks, where the scalar path does), and as two passes for the rest. */
START_TEST(test_gemm_bias_activation_as_two_calls)
{
	fixture f;
	fx_open(&f);
	static const struct {
		size_t m, n, k;
		const char *act;
		bool bias;
	} cases[] = {
		{37, 64, 20, "relu", true}, {37, 64, 20, "linear", false}, {37, 64, 20, NULL, true},
		{9, 16, 5000, "relu", true},   /* split: gemm_reduce's epilogue */
		{13, 21, 7, "relu", true},     /* columns past the vector blocks: the scalar path */
		{13, 21, 7, "sigmoid", true},  /* no epilogue for it: two passes */
		{37, 64, 20, "softmax", true}, /* row-wise: two passes */
	};
	for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
		size_t m = cases[c].m, n = cases[c].n, k = cases[c].k;
		const char *act = cases[c].act;
		int with_bias = cases[c].bias;
		float *av = ts_floats(m * k), *bv = ts_floats(k * n), *biasv = ts_floats(n);
		ts_fill_random(av, m * k, 1, -1, 1);
		ts_fill_random(bv, k * n, 2, -1, 1);
		ts_fill_random(biasv, n, 3, -2, 2);
		strata_tensor ta = tensor(&f, av, m * k), tb = tensor(&f, bv, k * n), tbias = tensor(&f, biasv, n);
		strata_tensor fused = tensor(&f, NULL, m * n), two = tensor(&f, NULL, m * n);
		strata_gemm g = {.size = sizeof(g), .m = m, .n = n, .k = k, .alpha = 1.0f, .beta = 0.0f,
		                 .a = &ta, .lda = k, .b = &tb, .ldb = n, .c = &fused, .ldc = n};
		strata_tensor *bias = with_bias ? &tbias : NULL;
		check_ok(&f, f.host->gemm_bias_activation(f.layer, &g, bias, act), "gemm_bias_activation");
		g.c = &two;
		check_ok(&f, f.host->gemm(f.layer, &g), "gemm");
		check_ok(&f, f.host->activation_forward(f.layer, act, &two, &two, bias, m, n), "activation_forward");
		float *x = read_back(&f, &fused, m * n, "fused"), *y = read_back(&f, &two, m * n, "two calls");
		for (size_t i = 0; i < m * n; i++)
			ck_assert_msg(memcmp(&x[i], &y[i], sizeof(float)) == 0,
			              "%zux%zux%zu %s%s: element %zu is %.9g fused, %.9g in two calls", m, n, k,
			              act ? act : "NULL", with_bias ? " with a bias" : "", i, (double)x[i],
			              (double)y[i]);
		free(x);
		free(y);
		free(av);
		free(bv);
		free(biasv);
		st_tensor_release(&ta);
		st_tensor_release(&tb);
		st_tensor_release(&tbias);
		st_tensor_release(&fused);
		st_tensor_release(&two);
	}
	/* C must be whole rows; the bias as wide as C. */
	strata_tensor t = tensor(&f, NULL, 64), small = tensor(&f, NULL, 2);
	strata_gemm g = {.size = sizeof(g), .m = 1, .n = 48, .k = 1, .alpha = 1.0f, .a = &t, .lda = 1, .b = &t, .ldb = 48,
	                 .c = &t, .ldc = 50};
	ck_assert_int_eq(f.host->gemm_bias_activation(f.layer, &g, NULL, "relu"), STRATA_ERR_PLUGIN);
	ck_assert_ptr_nonnull(strstr(f.err.message, "whole rows"));
	g.ldc = 48;
	ck_assert_int_eq(f.host->gemm_bias_activation(f.layer, &g, &small, "relu"), STRATA_ERR_PLUGIN);
	ck_assert_msg(strstr(f.err.message, "floats, 48 needed") != NULL, "%s", f.err.message);
	ck_assert_int_eq(f.host->gemm_bias_activation(f.layer, &g, NULL, "nonesuch"), STRATA_ERR_INVALID);
	st_tensor_release(&t);
	st_tensor_release(&small);
	fx_close(&f);
}
END_TEST

/* ---- activation_forward ------------------------------------------------------------------------ */

static const struct {
	size_t rows, cols;
} shapes[] = {
	{7, 13},  /* odd: no vector width, part work-groups */
	{3, 130}, /* softmax rows wider than its work-group of 64 or 128 */
	{1, 1},
};

/* _i: the activation; every shape, with and without bias, in place and not. */
START_TEST(test_forward)
{
	const int act = _i;
	fixture f;
	fx_open(&f);
	for (size_t s = 0; s < sizeof(shapes) / sizeof(shapes[0]); s++) {
		for (int variant = 0; variant < 4; variant++) {
			bool with_bias = variant & 1, in_place = variant & 2;
			size_t rows = shapes[s].rows, cols = shapes[s].cols, n = rows * cols;
			char what[96];
			snprintf(what, sizeof(what), "%s %zux%zu%s%s", act_names[act], rows, cols, with_bias ? " bias" : "",
			         in_place ? " in place" : "");
			float *x = random_floats(n, 11 + (unsigned)s, -4.0f, 4.0f);
			float *b = random_floats(cols, 23, -1.0f, 1.0f);
			double *want = malloc(n * sizeof(*want));
			ck_assert_ptr_nonnull(want);
			ref_forward(x, with_bias ? b : NULL, rows, cols, act, want);

			strata_tensor tx = tensor(&f, x, n), tb = tensor(&f, b, cols), ty = tensor(&f, NULL, n);
			strata_tensor *out = in_place ? &tx : &ty;
			check_ok(&f, f.host->activation_forward(f.layer, act_names[act], out, &tx, with_bias ? &tb : NULL, rows,
			                                        cols), what);
			float *got = read_back(&f, out, n, what);
			check_close(what, got, want, n, TOLERANCE);
			if (!in_place) {
				/* x is read only */
				float *x_after = read_back(&f, &tx, n, what);
				ck_assert_msg(memcmp(x_after, x, n * sizeof(*x)) == 0, "%s: x changed", what);
				free(x_after);
			}
			if (act == ACT_SOFTMAX)
				for (size_t r = 0; r < rows; r++) {
					double sum = 0.0;
					for (size_t j = 0; j < cols; j++)
						sum += got[r * cols + j];
					ck_assert_msg(fabs(sum - 1.0) < 1e-5, "%s: row %zu sums to %.9g", what, r, sum);
				}
			free(got);
			st_tensor_release(&tx);
			st_tensor_release(&tb);
			st_tensor_release(&ty);
			free(want);
			free(b);
			free(x);
		}
	}
	fx_close(&f);
}
END_TEST

/* NULL names linear: y = x + bias. */
START_TEST(test_forward_null_is_linear)
{
	fixture f;
	fx_open(&f);
	const size_t rows = 5, cols = 6, n = rows * cols;
	float *x = random_floats(n, 3, -2.0f, 2.0f), *b = random_floats(cols, 4, -1.0f, 1.0f);
	double want[5 * 6];
	ref_forward(x, b, rows, cols, ACT_LINEAR, want);
	strata_tensor tx = tensor(&f, x, n), tb = tensor(&f, b, cols), ty = tensor(&f, NULL, n);
	check_ok(&f, f.host->activation_forward(f.layer, NULL, &ty, &tx, &tb, rows, cols), "NULL activation");
	float *got = read_back(&f, &ty, n, "NULL activation");
	check_close("NULL activation", got, want, n, TOLERANCE);
	free(got);
	st_tensor_release(&tx);
	st_tensor_release(&tb);
	st_tensor_release(&ty);
	free(x);
	free(b);
	fx_close(&f);
}
END_TEST

/* ---- activation_backward ----------------------------------------------------------------------- */

START_TEST(test_backward)
{
	const int act = _i;
	fixture f;
	fx_open(&f);
	if (needs_input(act)) {
		/* no function of the output: refused, naming the service that takes the input */
		strata_tensor t = tensor(&f, NULL, 16);
		check_error(&f, f.host->activation_backward(f.layer, act_names[act], &t, &t, &t, 4, 4), STRATA_ERR_INVALID,
		            "use activation_backward_input()");
		st_tensor_release(&t);
		fx_close(&f);
		return;
	}
	for (size_t s = 0; s < sizeof(shapes) / sizeof(shapes[0]); s++) {
		for (int in_place = 0; in_place < 2; in_place++) {
			size_t rows = shapes[s].rows, cols = shapes[s].cols, n = rows * cols;
			char what[96];
			snprintf(what, sizeof(what), "d %s %zux%zu%s", act_names[act], rows, cols, in_place ? " in place" : "");
			float *x = NULL, *y = activation_outputs_of(rows, cols, act, 31 + (unsigned)s, &x);
			float *dy = random_floats(n, 37 + (unsigned)s, -1.0f, 1.0f);
			double *want = malloc(n * sizeof(*want));
			ck_assert_ptr_nonnull(want);
			ref_backward(dy, x, NULL, y, rows, cols, act, want);

			strata_tensor ty = tensor(&f, y, n), tdy = tensor(&f, dy, n), tdz = tensor(&f, NULL, n);
			strata_tensor *dz = in_place ? &tdy : &tdz;
			/* linear never reads y: NULL must do */
			check_ok(&f, f.host->activation_backward(f.layer, act_names[act], dz, &tdy, act == ACT_LINEAR ? NULL : &ty,
			                                         rows, cols), what);
			float *got = read_back(&f, dz, n, what);
			check_close(what, got, want, n, TOLERANCE);
			if (!in_place) {
				float *dy_after = read_back(&f, &tdy, n, what);
				ck_assert_msg(memcmp(dy_after, dy, n * sizeof(*dy)) == 0, "%s: dy changed", what);
				free(dy_after);
			}
			float *y_after = read_back(&f, &ty, n, what);
			ck_assert_msg(memcmp(y_after, y, n * sizeof(*y)) == 0, "%s: y changed", what);
			free(y_after);
			free(got);
			st_tensor_release(&ty);
			st_tensor_release(&tdy);
			st_tensor_release(&tdz);
			free(want);
			free(dy);
			free(y);
			free(x);
		}
	}
	fx_close(&f);
}
END_TEST

/* _i: the activation (every one but softmax and log_softmax): the derivative from the input, with and without a
 * bias, in place and not; the input and bias are only read. */
START_TEST(test_backward_input)
{
	const int act = _i;
	if (act == ACT_SOFTMAX || act == ACT_LOG_SOFTMAX)
		return;
	fixture f;
	fx_open(&f);
	for (size_t s = 0; s < sizeof(shapes) / sizeof(shapes[0]); s++)
		for (int variant = 0; variant < 4; variant++) {
			bool with_bias = variant & 1, in_place = variant & 2;
			size_t rows = shapes[s].rows, cols = shapes[s].cols, n = rows * cols;
			char what[96];
			snprintf(what, sizeof(what), "d %s from x %zux%zu%s%s", act_names[act], rows, cols,
			         with_bias ? " bias" : "", in_place ? " in place" : "");
			float *x = random_floats(n, 61 + (unsigned)s, -4.0f, 4.0f), *b = random_floats(cols, 67, -1.0f, 1.0f);
			float *dy = random_floats(n, 71 + (unsigned)s, -1.0f, 1.0f);
			double *want = malloc(n * sizeof(*want));
			ck_assert_ptr_nonnull(want);
			ref_backward(dy, x, with_bias ? b : NULL, NULL, rows, cols, act, want);
			strata_tensor tx = tensor(&f, x, n), tb = tensor(&f, b, cols), tdy = tensor(&f, dy, n);
			strata_tensor tdz = tensor(&f, NULL, n);
			strata_tensor *dz = in_place ? &tdy : &tdz;
			check_ok(&f, f.host->activation_backward_input(f.layer, act_names[act], dz, &tdy, &tx,
			                                               with_bias ? &tb : NULL, rows, cols), what);
			float *got = read_back(&f, dz, n, what);
			check_close(what, got, want, n, TOLERANCE);
			float *x_after = read_back(&f, &tx, n, what);
			ck_assert_msg(memcmp(x_after, x, n * sizeof(*x)) == 0, "%s: x changed", what);
			free(x_after);
			free(got);
			st_tensor_release(&tx);
			st_tensor_release(&tb);
			st_tensor_release(&tdy);
			st_tensor_release(&tdz);
			free(want);
			free(dy);
			free(b);
			free(x);
		}
	fx_close(&f);
}
END_TEST

/* Keras' other names: silu is swish, hard_swish is hard_silu. */
START_TEST(test_aliases)
{
	fixture f;
	fx_open(&f);
	const size_t n = 9;
	float *x = random_floats(n, 81, -4.0f, 4.0f);
	strata_tensor tx = tensor(&f, x, n), ta = tensor(&f, NULL, n), tb = tensor(&f, NULL, n);
	const char *pairs[2][2] = {{"silu", "swish"}, {"hard_swish", "hard_silu"}};
	for (int p = 0; p < 2; p++) {
		check_ok(&f, f.host->activation_forward(f.layer, pairs[p][0], &ta, &tx, NULL, 1, n), pairs[p][0]);
		check_ok(&f, f.host->activation_forward(f.layer, pairs[p][1], &tb, &tx, NULL, 1, n), pairs[p][1]);
		float *a = read_back(&f, &ta, n, pairs[p][0]), *b = read_back(&f, &tb, n, pairs[p][1]);
		ck_assert_msg(memcmp(a, b, n * sizeof(*a)) == 0, "%s differs from %s", pairs[p][0], pairs[p][1]);
		free(a);
		free(b);
	}
	st_tensor_release(&tx);
	st_tensor_release(&ta);
	st_tensor_release(&tb);
	free(x);
	fx_close(&f);
}
END_TEST

/* ---- column_sums ------------------------------------------------------------------------------- */

/* Row counts around the 64-row blocks and the work-groups, and column counts of each vector width. */
static const size_t sum_rows[] = {1, 63, 64, 65, 130, 1000};
static const size_t sum_cols[] = {1, 3, 16, 37};

enum { SCRATCH_FULL, SCRATCH_ONE_BLOCK, SCRATCH_TWO_BLOCKS, SCRATCH_NONE, SCRATCH_KINDS };
static const char *const scratch_names[SCRATCH_KINDS] = {"full scratch", "one block", "two blocks", "no scratch"};

/* _i: the activation; every shape and scratch size. */
START_TEST(test_column_sums)
{
	const int act = _i;
	fixture f;
	fx_open(&f);
	if (needs_input(act)) {
		strata_tensor t = tensor(&f, NULL, 16), sums = tensor(&f, NULL, 4);
		check_error(&f, f.host->column_sums(f.layer, act_names[act], &sums, &t, &t, 4, 4, NULL, 0),
		            STRATA_ERR_INVALID, "use activation_backward_input()");
		st_tensor_release(&t);
		st_tensor_release(&sums);
		fx_close(&f);
		return;
	}
	for (size_t ri = 0; ri < sizeof(sum_rows) / sizeof(sum_rows[0]); ri++)
		for (size_t ci = 0; ci < sizeof(sum_cols) / sizeof(sum_cols[0]); ci++)
			for (int kind = 0; kind < SCRATCH_KINDS; kind++) {
				size_t rows = sum_rows[ri], cols = sum_cols[ci], n = rows * cols;
				char what[128];
				snprintf(what, sizeof(what), "sums %s %zux%zu, %s", act_names[act], rows, cols, scratch_names[kind]);
				float *x = NULL, *y = activation_outputs_of(rows, cols, act, 41 + (unsigned)(ri * 7 + ci), &x);
				float *dy = random_floats(n, 43 + (unsigned)(ri * 7 + ci), -1.0f, 1.0f);
				double *dz = malloc(n * sizeof(*dz)), want[37] = {0}, scale[37] = {0};
				ck_assert_ptr_nonnull(dz);
				ref_backward(dy, x, NULL, y, rows, cols, act, dz);
				for (size_t r = 0; r < rows; r++)
					for (size_t j = 0; j < cols; j++) {
						want[j] += dz[r * cols + j];
						scale[j] += fabs(dz[r * cols + j]);
					}
				size_t blocks = kind == SCRATCH_FULL ? (rows + 63) / 64 : kind == SCRATCH_ONE_BLOCK ? 1
				                : kind == SCRATCH_TWO_BLOCKS ? 2 : 0;
				strata_tensor ty = tensor(&f, y, n), tdz = tensor(&f, dy, n), tsums = tensor(&f, NULL, cols);
				strata_tensor tscratch = tensor(&f, NULL, blocks * cols);
				check_ok(&f, f.host->column_sums(f.layer, act_names[act], &tsums, &tdz, act == ACT_LINEAR ? NULL : &ty,
				                                 rows, cols, blocks ? &tscratch : NULL, blocks * cols), what);
				/* dz became dLoss/dPreactivation in place */
				float *got_dz = read_back(&f, &tdz, n, what);
				check_close(what, got_dz, dz, n, TOLERANCE);
				float *got = read_back(&f, &tsums, cols, what);
				for (size_t j = 0; j < cols; j++)
					ck_assert_msg(isfinite(got[j]) && fabs(got[j] - want[j]) <= 2e-6 * (1.0 + scale[j]),
					              "%s: sum %zu: device %.9g, host %.9g", what, j, (double)got[j], want[j]);
				free(read_back(&f, &tscratch, blocks * cols, what)); /* nothing written past the room given */
				free(got);
				free(got_dz);
				st_tensor_release(&ty);
				st_tensor_release(&tdz);
				st_tensor_release(&tsums);
				st_tensor_release(&tscratch);
				free(dz);
				free(dy);
				free(y);
				free(x);
			}
	fx_close(&f);
}
END_TEST

/* No rows: the sums are overwritten with zeros, dz and y untouched (NULL). */
START_TEST(test_column_sums_of_no_rows)
{
	fixture f;
	fx_open(&f);
	const float ones[7] = {1, 1, 1, 1, 1, 1, 1};
	strata_tensor tsums = tensor(&f, ones, 7);
	check_ok(&f, f.host->column_sums(f.layer, "tanh", &tsums, NULL, NULL, 0, 7, NULL, 0), "no rows");
	float *got = read_back(&f, &tsums, 7, "no rows");
	for (size_t j = 0; j < 7; j++)
		ck_assert_msg(got[j] == 0.0f, "sum %zu of no rows: %g", j, (double)got[j]);
	free(got);
	/* no columns: nothing at all */
	check_ok(&f, f.host->column_sums(f.layer, "relu", NULL, NULL, NULL, 5, 0, NULL, 0), "no columns");
	st_tensor_release(&tsums);
	fx_close(&f);
}
END_TEST

/* ---- copy and fill ------------------------------------------------------------------------------ */

START_TEST(test_copy_and_fill)
{
	fixture f;
	fx_open(&f);
	const size_t n = 1001;
	float *src = random_floats(n, 51, -10.0f, 10.0f);
	strata_tensor ts = tensor(&f, src, n), td = tensor(&f, NULL, n);
	check_ok(&f, f.host->copy(f.layer, &td, &ts, n), "copy");
	float *got = read_back(&f, &td, n, "copy");
	ck_assert_msg(memcmp(got, src, n * sizeof(*src)) == 0, "copy differs from its source");
	free(got);

	check_ok(&f, f.host->fill(f.layer, &td, 2.5f, 37), "fill");
	got = read_back(&f, &td, n, "fill");
	for (size_t i = 0; i < n; i++)
		ck_assert_msg(got[i] == (i < 37 ? 2.5f : src[i]), "after fill [%zu]: %g", i, (double)got[i]);
	free(got);

	/* n = 0: nothing happens, tensors unread (NULL) or untouched */
	check_ok(&f, f.host->copy(f.layer, NULL, NULL, 0), "copy of 0");
	check_ok(&f, f.host->fill(f.layer, NULL, 1.0f, 0), "fill of 0");
	check_ok(&f, f.host->copy(f.layer, &td, &ts, 0), "copy of 0");
	check_ok(&f, f.host->fill(f.layer, &ts, 7.0f, 0), "fill of 0");
	check_ok(&f, f.host->activation_forward(f.layer, "softmax", &td, &ts, NULL, 0, 5), "forward of 0 rows");
	check_ok(&f, f.host->activation_forward(f.layer, "relu", &td, &ts, NULL, 5, 0), "forward of 0 columns");
	check_ok(&f, f.host->activation_backward(f.layer, "sigmoid", &td, &ts, &ts, 0, 5), "backward of 0 rows");
	got = read_back(&f, &ts, n, "source after the empty calls");
	ck_assert_msg(memcmp(got, src, n * sizeof(*src)) == 0, "an empty call changed the source");
	free(got);
	got = read_back(&f, &td, n, "destination after the empty calls");
	for (size_t i = 0; i < n; i++)
		ck_assert_msg(got[i] == (i < 37 ? 2.5f : src[i]), "after the empty calls [%zu]: %g", i, (double)got[i]);
	free(got);
	st_tensor_release(&ts);
	st_tensor_release(&td);
	free(src);
	fx_close(&f);
}
END_TEST

/* ---- Profile ------------------------------------------------------------------------------------ */

/* The services' launches are timed under the layer's name, as its own launches are. */
START_TEST(test_profile_names_the_layer)
{
	fixture f;
	memset(&f, 0, sizeof(f));
	f.dev.reg = ts_registry();
	strata_runtime_options opts = {.size = sizeof(opts), .profile = true};
	opts.device = getenv("STRATA_TEST_DEVICE");
	ck_assert_msg(strata_runtime_create(f.dev.reg, &opts, &f.dev.rt, &f.err) == STRATA_OK, "%s", f.err.message);
	f.net = ts_net_open(&f.dev, MODEL, 1, 1);
	f.layer = &f.net.m->layers[0];
	f.layer->err = &f.err;
	f.host = &st_host_api;
	float x[12];
	ts_fill_random(x, 12, 61, -1.0f, 1.0f);
	strata_tensor tx = tensor(&f, x, 12);
	check_ok(&f, f.host->activation_forward(f.layer, "softmax", &tx, &tx, NULL, 3, 4), "softmax");
	check_ok(&f, st_finish(f.dev.rt, &f.err), "finish");
	bool found = false;
	for (size_t i = 0; i < f.dev.rt->n_totals; i++)
		found |= strcmp(f.dev.rt->totals[i].label, "svc") == 0 && strcmp(f.dev.rt->totals[i].kernel, "softmax_rows") == 0;
	ck_assert_msg(found, "no softmax_rows launch of layer svc in the profile");
	st_tensor_release(&tx);
	fx_close(&f);
}
END_TEST

/* ---- Errors ------------------------------------------------------------------------------------- */

START_TEST(test_unknown_activation)
{
	fixture f;
	fx_open(&f);
	strata_tensor t = tensor(&f, NULL, 16);
	/* refused before anything else, even with nothing to compute */
	check_error(&f, f.host->activation_forward(f.layer, "gelu_tanh", &t, &t, NULL, 4, 4), STRATA_ERR_INVALID,
	            "activation_forward(): unknown activation 'gelu_tanh' (known: linear, relu, sigmoid, tanh, softmax, elu, "
	            "selu, gelu, swish, softplus, softsign, hard_sigmoid, exponential, relu6, leaky_relu, hard_silu, mish, "
	            "log_softmax)");
	check_error(&f, f.host->activation_forward(f.layer, "Relu", &t, &t, NULL, 0, 4), STRATA_ERR_INVALID,
	            "unknown activation 'Relu'");
	check_error(&f, f.host->activation_backward(f.layer, "Swish", &t, &t, &t, 4, 4), STRATA_ERR_INVALID,
	            "activation_backward(): unknown activation 'Swish'");
	check_error(&f, f.host->activation_backward_input(f.layer, "softmax", &t, &t, &t, NULL, 4, 4), STRATA_ERR_INVALID,
	            "activation_backward_input(): softmax's derivative is taken from its output");
	check_error(&f, f.host->column_sums(f.layer, "", &t, &t, &t, 4, 4, NULL, 0), STRATA_ERR_INVALID,
	            "column_sums(): unknown activation ''");
	st_tensor_release(&t);
	fx_close(&f);
}
END_TEST

START_TEST(test_overflow)
{
	fixture f;
	fx_open(&f);
	strata_tensor t = tensor(&f, NULL, 16);
	size_t big = (size_t)INT_MAX + 1;
	check_error(&f, f.host->activation_forward(f.layer, "relu", &t, &t, NULL, (size_t)INT_MAX / 2 + 1, 2),
	            STRATA_ERR_OVERFLOW, "1073741824 x 2 activations exceed the kernels' int indexing: lower the batch size");
	check_error(&f, f.host->activation_forward(f.layer, "linear", &t, &t, NULL, 1, big), STRATA_ERR_OVERFLOW,
	            "1 x 2147483648 activations exceed");
	check_error(&f, f.host->activation_backward(f.layer, "softmax", &t, &t, &t, 65536, 32768), STRATA_ERR_OVERFLOW,
	            "65536 x 32768 activations exceed");
	check_error(&f, f.host->column_sums(f.layer, "tanh", &t, &t, &t, big, 1, NULL, 0), STRATA_ERR_OVERFLOW,
	            "2147483648 x 1 activations exceed");
	check_error(&f, f.host->copy(f.layer, &t, &t, big), STRATA_ERR_OVERFLOW,
	            "copying 2147483648 values exceeds the kernels' int indexing: lower the batch size");
	check_error(&f, f.host->fill(f.layer, &t, 0.0f, big), STRATA_ERR_OVERFLOW,
	            "filling 2147483648 values exceeds the kernels' int indexing");
	/* the largest sizes that fit get past the check, to the tensors' */
	check_error(&f, f.host->copy(f.layer, &t, &t, INT_MAX), STRATA_ERR_PLUGIN, "copy(): dst holds 21 floats, "
	            "2147483647 needed");
	st_tensor_release(&t);
	fx_close(&f);
}
END_TEST

/* Tensors too small for what a service was asked, or missing: the plugin's bug, named. */
START_TEST(test_tensors_checked)
{
	fixture f;
	fx_open(&f);
	strata_tensor small = tensor(&f, NULL, 10 - PAD), big = tensor(&f, NULL, 100); /* 10 and 105 floats */
	check_error(&f, f.host->copy(f.layer, &small, &big, 11), STRATA_ERR_PLUGIN, "copy(): dst holds 10 floats, 11 needed");
	check_error(&f, f.host->copy(f.layer, &big, &small, 11), STRATA_ERR_PLUGIN, "copy(): src holds 10 floats, 11 needed");
	check_error(&f, f.host->fill(f.layer, NULL, 1.0f, 3), STRATA_ERR_PLUGIN, "fill(): dst is NULL");
	check_error(&f, f.host->activation_forward(f.layer, "relu", &big, &big, &small, 2, 11), STRATA_ERR_PLUGIN,
	            "activation_forward(): bias holds 10 floats, 11 needed");
	check_error(&f, f.host->activation_forward(f.layer, "relu", &small, &big, NULL, 2, 6), STRATA_ERR_PLUGIN,
	            "activation_forward(): y holds 10 floats, 12 needed");
	check_error(&f, f.host->activation_backward(f.layer, "tanh", &big, &big, NULL, 2, 6), STRATA_ERR_PLUGIN,
	            "activation_backward(): y is NULL");
	check_error(&f, f.host->column_sums(f.layer, "linear", &small, &big, NULL, 2, 11, NULL, 0), STRATA_ERR_PLUGIN,
	            "column_sums(): sums holds 10 floats, 11 needed");
	check_error(&f, f.host->column_sums(f.layer, "linear", &big, &big, NULL, 2, 5, &small, 15), STRATA_ERR_PLUGIN,
	            "column_sums(): scratch holds 10 floats, 15 needed");
	check_error(&f, f.host->column_sums(f.layer, "sigmoid", &big, &big, NULL, 2, 5, &big, 10), STRATA_ERR_PLUGIN,
	            "column_sums(): y is NULL");
	st_tensor_release(&small);
	st_tensor_release(&big);
	fx_close(&f);
}
END_TEST

/* A layer not bound to a session has no device to run on. */
START_TEST(test_outside_a_session)
{
	strata_registry *reg = ts_registry();
	strata_model *m = ts_model(reg, MODEL);
	strata_layer *layer = &m->layers[0];
	strata_error err = {0};
	layer->err = &err;
	ck_assert_int_eq(st_host_api.copy(layer, NULL, NULL, 4), STRATA_ERR_PLUGIN);
	ck_assert_ptr_nonnull(strstr(err.message, "copy() called outside a session"));
	ck_assert_int_eq(st_host_api.fill(layer, NULL, 0.0f, 4), STRATA_ERR_PLUGIN);
	ck_assert_int_eq(st_host_api.activation_forward(layer, "relu", NULL, NULL, NULL, 1, 1), STRATA_ERR_PLUGIN);
	ck_assert_int_eq(st_host_api.activation_backward(layer, "relu", NULL, NULL, NULL, 1, 1), STRATA_ERR_PLUGIN);
	ck_assert_int_eq(st_host_api.column_sums(layer, "relu", NULL, NULL, NULL, 1, 1, NULL, 0), STRATA_ERR_PLUGIN);
	ck_assert_ptr_nonnull(strstr(err.message, "column_sums() called outside a session"));
	layer->err = NULL;
	strata_model_free(m);
	strata_registry_close(reg);
}
END_TEST

static Suite *host_services_suite(void)
{
	Suite *s = suite_create("host_services");
	TCase *tc = tcase_create("services");
	tcase_add_test(tc, test_table_has_the_services);
	tcase_add_loop_test(tc, test_forward, 0, ACT_COUNT);
	tcase_add_test(tc, test_forward_null_is_linear);
	tcase_add_loop_test(tc, test_backward, 0, ACT_COUNT);
	tcase_add_loop_test(tc, test_backward_input, 0, ACT_COUNT);
	tcase_add_test(tc, test_aliases);
	tcase_add_loop_test(tc, test_column_sums, 0, ACT_COUNT);
	tcase_add_test(tc, test_column_sums_of_no_rows);
	tcase_add_test(tc, test_copy_and_fill);
	tcase_add_test(tc, test_gemm_bias_activation_as_two_calls);
	tcase_add_test(tc, test_profile_names_the_layer);
	suite_add_tcase(s, tc);
	TCase *errors = tcase_create("errors");
	tcase_add_test(errors, test_unknown_activation);
	tcase_add_test(errors, test_overflow);
	tcase_add_test(errors, test_tensors_checked);
	tcase_add_test(errors, test_outside_a_session);
	suite_add_tcase(s, errors);
	return s;
}

int main(void)
{
	return ts_run(host_services_suite());
}
