/* The noise layers (plugins/noise): gaussian_noise, gaussian_dropout and spatial_dropout2d, on the
 * OpenCL device:
 *  - the identity at inference, forward and backward, bit for bit;
 *  - while training, against a host reference that draws the same numbers: Philox-4x32-10 of
 *    cl/random.cl under the key of common/random.h with the layer's `seed` mixed in, so which
 *    channels SpatialDropout2D drops is checked exactly, and the Gaussian noise to float rounding;
 *  - the backward pass applies the forward pass's draws again (exactly: the same float ops);
 *  - reproducible from (seed, step), different at another step, another run seed, another layer
 *    `seed` or another layer name;
 *  - statistics over many elements: GaussianNoise's standard deviation, GaussianDropout's
 *    multiplier's mean 1 and variance rate / (1 - rate), SpatialDropout2D's dropped fraction;
 *  - names, no parameters (Keras counts none), and the refusals at their FILE:LINE:COLUMN. */
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "support.h"

#include "exec/session.h"
#include "model/model.h"

/* ---- the host's copy of the device streams ---------------------------------------------------------- */

typedef struct stream {
	uint32_t key_lo, key_hi, step_lo, step_hi;
} stream;

static uint32_t fnv1a(const char *s)
{
	uint32_t h = 2166136261u;
	for (; *s; s++)
		h = (h ^ (uint8_t)*s) * 16777619u;
	return h;
}

/* common/random.h's key of a layer, with plugins/noise's mixing of the layer's own seed. */
static stream stream_of(uint64_t run_seed, const char *layer, int64_t own, uint64_t step)
{
	uint64_t mix = (uint64_t)own * 0x9E3779B97F4A7C15ull;
	return (stream){
		.key_lo = (uint32_t)run_seed ^ fnv1a(layer) ^ (uint32_t)mix,
		.key_hi = (uint32_t)(run_seed >> 32) ^ (uint32_t)(mix >> 32),
		.step_lo = (uint32_t)step,
		.step_hi = (uint32_t)(step >> 32),
	};
}

/* Philox-4x32-10 of counter (index, 0, step_lo, step_hi): cl/random.cl's random_draw. */
static void draw(const stream *s, uint32_t index, uint32_t w[4])
{
	uint32_t c[4] = {index, 0, s->step_lo, s->step_hi}, k0 = s->key_lo, k1 = s->key_hi;
	for (int round = 0; round < 10; round++) {
		uint64_t p0 = (uint64_t)c[0] * 0xD2511F53u, p1 = (uint64_t)c[2] * 0xCD9E8D57u;
		uint32_t n0 = (uint32_t)(p1 >> 32) ^ c[1] ^ k0, n2 = (uint32_t)(p0 >> 32) ^ c[3] ^ k1;
		c[1] = (uint32_t)p1;
		c[3] = (uint32_t)p0;
		c[0] = n0;
		c[2] = n2;
		k0 += 0x9E3779B9u;
		k1 += 0xBB67AE85u;
	}
	memcpy(w, c, sizeof(c));
}

static double uniform(uint32_t bits)
{
	return (double)(bits >> 8) / 16777216.0;
}

/* The standard normal of element i: Box-Muller of words (0, 1) or (2, 3) of draw i / 4. */
static double normal_of(const stream *s, size_t i)
{
	uint32_t w[4];
	draw(s, (uint32_t)(i / 4), w);
	size_t pair = (i % 4) / 2;
	double r = sqrt(-2.0 * log(1.0 - uniform(w[2 * pair]))), t = 2.0 * M_PI * uniform(w[2 * pair + 1]);
	return i % 2 ? r * sin(t) : r * cos(t);
}

/* ---- a one-layer net --------------------------------------------------------------------------------- */

typedef struct one {
	ts_device dev;
	ts_net net;
	uint32_t batch;
	size_t count;
	float *x, *y;
} one;

static void one_open(one *o, const char *yaml, uint32_t batch, uint64_t seed)
{
	strata_error err = {0};
	memset(o, 0, sizeof(*o));
	o->dev = ts_device_open();
	o->net = ts_net_open(&o->dev, yaml, batch + 1, seed);
	o->batch = batch;
	ck_assert_int_eq(st_session_enable_training(o->net.s, &err), STRATA_OK);
	o->count = (size_t)batch * st_shape_elems(&o->net.m->input);
	o->x = ts_floats(o->count);
	o->y = ts_floats(o->count);
}

static void one_close(one *o)
{
	free(o->y);
	free(o->x);
	ts_net_close(&o->net);
	ts_device_close(&o->dev);
}

/* y of the net on o->x at `step`. */
static void one_forward(one *o, bool training, uint64_t step)
{
	strata_error err = {0};
	o->net.s->step = step;
	ts_tensor_write(o->dev.rt, &o->net.s->input, 0, o->x, o->count);
	strata_status st = st_session_forward_device(o->net.s, o->batch, training, &err);
	ck_assert_msg(st == STRATA_OK, "forward: %s", err.message);
	ts_tensor_read(o->dev.rt, st_session_output(o->net.s), o->y, o->count);
}

/* dx from dy after a forward pass of the same kind (st_session_backward_from). */
static void one_backward(one *o, bool training, const float *dy, float *dx)
{
	strata_error err = {0};
	strata_tensor *g = NULL;
	ts_tensor_write(o->dev.rt, st_session_layer_grad(o->net.s, 0), 0, dy, o->count);
	strata_status st = st_session_backward_from(o->net.s, o->batch, 0, training, &g, &err);
	ck_assert_msg(st == STRATA_OK, "backward: %s", err.message);
	ck_assert_ptr_nonnull(g);
	ts_tensor_read(o->dev.rt, g, dx, o->count);
}

/* ---- inference: the identity ---------------------------------------------------------------------------- */

static const char *const inference_models[] = {
	"inputs: [{name: x, shape: [5, 3, 4]}]\nlayers:\n  - {type: gaussian_noise, stddev: 0.5}\n",
	"inputs: [{name: x, shape: [7]}]\nlayers:\n  - {type: gaussian_dropout, rate: 0.4, seed: 3}\n",
	"inputs: [{name: x, shape: [5, 3, 4]}]\nlayers:\n  - {type: spatial_dropout2d, rate: 0.5}\n",
};

START_TEST(test_inference_identity)
{
	one o;
	one_open(&o, inference_models[_i], 3, 1);
	ts_fill_random(o.x, o.count, 10, -2.0f, 2.0f);
	one_forward(&o, false, 4);
	ck_assert_msg(memcmp(o.x, o.y, o.count * sizeof(float)) == 0, "inference changed the input");
	float *dy = ts_floats(o.count), *dx = ts_floats(o.count);
	ts_fill_random(dy, o.count, 11, -1.0f, 1.0f);
	one_backward(&o, false, dy, dx);
	ck_assert_msg(memcmp(dx, dy, o.count * sizeof(float)) == 0, "the inference gradient is not dy");
	free(dx);
	free(dy);
	one_close(&o);
}
END_TEST

/* ---- training: against the host's draws ------------------------------------------------------------- */

enum kind { NOISE, GDROP, SPATIAL };

typedef struct train_case {
	enum kind kind;
	const char *params;
	double value;    /* stddev or rate */
	int64_t own;     /* the layer's seed (0: null) */
	uint32_t rank;
	int64_t dims[3];
	uint32_t batch;
	uint64_t run_seed, step;
} train_case;

static const train_case train_cases[] = {
	/* element counts not a multiple of 4: the last work-item's tail */
	{NOISE, "stddev: 0.3", 0.3, 0, 3, {5, 3, 3}, 3, 1, 0},
	{NOISE, "stddev: 1.0, seed: 42", 1.0, 42, 1, {7}, 5, 9, 12},
	{NOISE, "stddev: 0.05, seed: -7", 0.05, -7, 2, {3, 5}, 2, 0x123456789ull, 1ull << 33},
	{GDROP, "rate: 0.5", 0.5, 0, 3, {5, 3, 3}, 3, 1, 3},
	{GDROP, "rate: 0.1, seed: 9", 0.1, 9, 1, {9}, 4, 77, 0},
	{SPATIAL, "rate: 0.5", 0.5, 0, 3, {3, 5, 7}, 6, 1, 2},
	{SPATIAL, "rate: 0.25, seed: 1234", 0.25, 1234, 3, {4, 2, 9}, 5, 5, 1000},
	{SPATIAL, "rate: 0.9, data_format: channels_last", 0.9, 0, 3, {1, 1, 16}, 4, 3, 7},
};

static const char *type_of(enum kind k)
{
	return k == NOISE ? "gaussian_noise" : k == GDROP ? "gaussian_dropout" : "spatial_dropout2d";
}

static char *case_yaml(const char *type, const char *params, uint32_t rank, const int64_t *dims)
{
	char *yaml = malloc(512);
	ck_assert_ptr_nonnull(yaml);
	int n = snprintf(yaml, 512, "inputs: [{name: x, shape: [");
	for (uint32_t k = 0; k < rank; k++)
		n += snprintf(yaml + n, (size_t)(512 - n), "%s%lld", k ? ", " : "", (long long)dims[k]);
	snprintf(yaml + n, (size_t)(512 - n), "]}]\nlayers:\n  - {type: %s, name: noisy, %s}\n", type, params);
	return yaml;
}

START_TEST(test_training_reference)
{
	const train_case *c = &train_cases[_i];
	char *yaml = case_yaml(type_of(c->kind), c->params, c->rank, c->dims);
	one o;
	one_open(&o, yaml, c->batch, c->run_seed);
	ts_fill_random(o.x, o.count, 20 + (unsigned)_i, -2.0f, 2.0f);
	one_forward(&o, true, c->step);
	stream s = stream_of(c->run_seed, "noisy", c->own, c->step);
	size_t channels = (size_t)c->dims[c->rank - 1], per_sample = o.count / c->batch;
	size_t dropped = 0;
	float scale = (float)(1.0 / (1.0 - c->value));
	for (size_t i = 0; i < o.count; i++) {
		if (c->kind == SPATIAL) {
			uint32_t w[4];
			draw(&s, (uint32_t)((i / per_sample) * channels + i % channels), w);
			bool drop = w[0] < (uint32_t)ldexp(c->value, 32);
			dropped += drop;
			float want = drop ? 0.0f : o.x[i] * scale;
			ck_assert_msg(o.y[i] == want, "%s: y[%zu] = %.9g, want %.9g (x = %.9g, %s)", c->params, i,
			              (double)o.y[i], (double)want, (double)o.x[i], drop ? "dropped" : "kept");
		} else {
			double z = normal_of(&s, i), want;
			if (c->kind == NOISE)
				want = o.x[i] + c->value * z;
			else
				want = o.x[i] * (1.0 + sqrt(c->value / (1.0 - c->value)) * z);
			ck_assert_msg(fabs(o.y[i] - want) <= 2e-5 * fmax(1.0, fabs(want)),
			              "%s %s: y[%zu] = %.9g, want %.9g (x = %.9g, z = %.6f)", type_of(c->kind), c->params, i,
			              (double)o.y[i], want, (double)o.x[i], z);
		}
	}
	/* Some channels go and some stay, or the check above proves little. */
	if (c->kind == SPATIAL)
		ck_assert_msg(dropped > 0 && dropped < o.count, "%zu of %zu elements dropped", dropped, o.count);

	/* The backward pass draws the same numbers: from x = 1 the output is the multiplier itself,
	 * and dx = dy times it, the same float product; GaussianNoise passes dy through. */
	for (size_t i = 0; i < o.count; i++)
		o.x[i] = 1.0f;
	one_forward(&o, true, c->step);
	float *dy = ts_floats(o.count), *dx = ts_floats(o.count);
	ts_fill_random(dy, o.count, 30 + (unsigned)_i, -1.0f, 1.0f);
	one_backward(&o, true, dy, dx);
	for (size_t i = 0; i < o.count; i++) {
		float want = c->kind == NOISE ? dy[i] : dy[i] * o.y[i];
		ck_assert_msg(dx[i] == want, "%s %s: dx[%zu] = %.9g, want %.9g", type_of(c->kind), c->params, i,
		              (double)dx[i], (double)want);
	}
	free(dx);
	free(dy);
	one_close(&o);
	free(yaml);
}
END_TEST

/* ---- reproducibility ------------------------------------------------------------------------------------ */

/* Fraction of elements whose outputs differ. */
static double differ(const float *a, const float *b, size_t n)
{
	size_t d = 0;
	for (size_t i = 0; i < n; i++)
		d += a[i] != b[i];
	return (double)d / (double)n;
}

START_TEST(test_reproducible)
{
	enum kind k = (enum kind)_i;
	const char *params = k == NOISE ? "stddev: 0.5" : "rate: 0.5";
	static const int64_t dims[3] = {4, 4, 8};
	char *yaml = case_yaml(type_of(k), params, 3, dims);
	char seeded[128];
	snprintf(seeded, sizeof(seeded), "%s, seed: 5", params);
	char *yaml_seeded = case_yaml(type_of(k), seeded, 3, dims);
	/* Spatial dropout decides per channel: compare per element still, over enough channels. */
	double least = k == SPATIAL ? 0.2 : 0.9;

	one a, b;
	one_open(&a, yaml, 6, 1);
	one_open(&b, yaml, 6, 1);
	ts_fill_random(a.x, a.count, 50, 0.5f, 2.0f);
	memcpy(b.x, a.x, a.count * sizeof(float));
	float *first = ts_floats(a.count);
	one_forward(&a, true, 3);
	memcpy(first, a.y, a.count * sizeof(float));
	/* the same (seed, step), in another session: the same bits */
	one_forward(&b, true, 3);
	ck_assert_msg(differ(first, b.y, a.count) == 0.0, "the same seed and step drew differently");
	/* another step */
	one_forward(&a, true, 4);
	ck_assert_msg(differ(first, a.y, a.count) >= least, "step 4 drew like step 3 (%g differ)",
	              differ(first, a.y, a.count));
	one_close(&b);
	/* another run seed */
	one_open(&b, yaml, 6, 2);
	memcpy(b.x, a.x, a.count * sizeof(float));
	one_forward(&b, true, 3);
	ck_assert_msg(differ(first, b.y, a.count) >= least, "run seed 2 drew like run seed 1");
	one_close(&b);
	/* the layer's own seed */
	one_open(&b, yaml_seeded, 6, 1);
	memcpy(b.x, a.x, a.count * sizeof(float));
	one_forward(&b, true, 3);
	ck_assert_msg(differ(first, b.y, a.count) >= least, "seed: 5 drew like no seed");
	one_close(&b);
	one_close(&a);
	free(first);
	free(yaml_seeded);
	free(yaml);
}
END_TEST

/* Two layers of one type in one model draw differently (their names key them), with the same
 * seed and step. */
START_TEST(test_two_layers_differ)
{
	enum kind k = (enum kind)_i;
	char yaml[512];
	snprintf(yaml, sizeof(yaml),
	         "inputs: [{name: x, shape: [4, 4, 8]}]\nlayers:\n"
	         "  - {type: %s, %s, name: a, inputs: x}\n  - {type: %s, %s, name: b, inputs: x}\n"
	         "outputs: [a, b]\n",
	         type_of(k), k == NOISE ? "stddev: 0.5" : "rate: 0.5", type_of(k), k == NOISE ? "stddev: 0.5" : "rate: 0.5");
	one o;
	one_open(&o, yaml, 4, 1);
	ts_fill_random(o.x, o.count, 60, 0.5f, 2.0f);
	one_forward(&o, true, 1);
	float *ya = ts_floats(o.count), *yb = ts_floats(o.count);
	ts_tensor_read(o.dev.rt, &o.net.s->binds[0].output, ya, o.count);
	ts_tensor_read(o.dev.rt, &o.net.s->binds[1].output, yb, o.count);
	ck_assert_msg(differ(ya, yb, o.count) >= (k == SPATIAL ? 0.2 : 0.9), "layers a and b drew alike");
	free(yb);
	free(ya);
	one_close(&o);
}
END_TEST

/* ---- statistics ---------------------------------------------------------------------------------------- */

/* GaussianNoise: y - x has mean 0 and standard deviation stddev (within 2%, against a standard
 * error of 0.2% over 131072 elements); every element moved. */
START_TEST(test_noise_statistics)
{
	static const double stddev[2] = {0.1, 0.8};
	char params[64];
	snprintf(params, sizeof(params), "stddev: %g", stddev[_i]);
	static const int64_t dims[3] = {64, 64, 8};
	char *yaml = case_yaml("gaussian_noise", params, 3, dims);
	one o;
	one_open(&o, yaml, 4, 3);
	ts_fill_random(o.x, o.count, 70, -1.0f, 1.0f);
	one_forward(&o, true, 11);
	double sum = 0.0, sq = 0.0, beyond3 = 0.0;
	for (size_t i = 0; i < o.count; i++) {
		double d = (double)o.y[i] - o.x[i];
		sum += d;
		sq += d * d;
		beyond3 += fabs(d) > 3.0 * stddev[_i];
	}
	double n = (double)o.count, mean = sum / n, sd = sqrt(sq / n - mean * mean);
	ck_assert_msg(fabs(mean) < 0.02 * stddev[_i], "mean %g", mean);
	ck_assert_msg(fabs(sd / stddev[_i] - 1.0) < 0.02, "standard deviation %g, want %g", sd, stddev[_i]);
	/* a normal's tails: 0.27% beyond 3 standard deviations */
	ck_assert_msg(fabs(beyond3 / n - 0.0027) < 0.001, "%g beyond 3 standard deviations", beyond3 / n);
	one_close(&o);
	free(yaml);
}
END_TEST

/* GaussianDropout: from x = 1 the output is the multiplier, mean 1 and variance rate / (1 - rate). */
START_TEST(test_gaussian_dropout_statistics)
{
	static const double rate[2] = {0.2, 0.5};
	char params[64];
	snprintf(params, sizeof(params), "rate: %g", rate[_i]);
	static const int64_t dims[3] = {64, 64, 8};
	char *yaml = case_yaml("gaussian_dropout", params, 3, dims);
	one o;
	one_open(&o, yaml, 4, 5);
	for (size_t i = 0; i < o.count; i++)
		o.x[i] = 1.0f;
	one_forward(&o, true, 2);
	double sum = 0.0, sq = 0.0, want_var = rate[_i] / (1.0 - rate[_i]);
	for (size_t i = 0; i < o.count; i++) {
		sum += o.y[i];
		sq += (double)o.y[i] * o.y[i];
	}
	double n = (double)o.count, mean = sum / n, var = sq / n - mean * mean;
	ck_assert_msg(fabs(mean - 1.0) < 0.01, "mean multiplier %g", mean);
	ck_assert_msg(fabs(var / want_var - 1.0) < 0.03, "variance %g, want %g", var, want_var);
	one_close(&o);
	free(yaml);
}
END_TEST

/* SpatialDropout2D: whole channels go, at about the rate (4 standard errors over 2048 channels);
 * the rest are scaled exactly by 1 / (1 - rate). */
START_TEST(test_spatial_statistics)
{
	static const double rate[2] = {0.1, 0.4};
	char params[64];
	snprintf(params, sizeof(params), "rate: %g", rate[_i]);
	static const int64_t dims[3] = {3, 3, 256};
	char *yaml = case_yaml("spatial_dropout2d", params, 3, dims);
	one o;
	one_open(&o, yaml, 8, 7);
	ts_fill_random(o.x, o.count, 80, 0.5f, 2.0f);
	one_forward(&o, true, 5);
	float scale = (float)(1.0 / (1.0 - rate[_i]));
	size_t channels = 256, pixels = 9, dropped = 0;
	for (size_t n = 0; n < o.batch; n++)
		for (size_t ch = 0; ch < channels; ch++) {
			size_t zero = 0;
			for (size_t p = 0; p < pixels; p++) {
				size_t i = (n * pixels + p) * channels + ch;
				if (o.y[i] == 0.0f)
					zero++;
				else
					ck_assert_msg(o.y[i] == o.x[i] * scale, "kept y[%zu] = %.9g, want %.9g", i, (double)o.y[i],
					              (double)(o.x[i] * scale));
			}
			ck_assert_msg(zero == 0 || zero == pixels, "channel %zu of sample %zu lost %zu of its %zu pixels", ch,
			              n, zero, pixels);
			dropped += zero == pixels;
		}
	double frac = (double)dropped / (double)(o.batch * channels);
	double se = sqrt(rate[_i] * (1.0 - rate[_i]) / (double)(o.batch * channels));
	ck_assert_msg(fabs(frac - rate[_i]) < 4.0 * se, "dropped %g of the channels, rate %g", frac, rate[_i]);
	one_close(&o);
	free(yaml);
}
END_TEST

/* ---- finite differences in training mode ------------------------------------------------------------- */

static const char *const fd_models[] = {
	"inputs: [{name: x, shape: [5, 3, 3]}]\nlayers:\n  - {type: gaussian_noise, stddev: 0.4}\n",
	"inputs: [{name: x, shape: [5, 3, 3]}]\nlayers:\n  - {type: gaussian_dropout, rate: 0.3, seed: 2}\n",
	"inputs: [{name: x, shape: [5, 3, 3]}]\nlayers:\n  - {type: spatial_dropout2d, rate: 0.4}\n",
	/* through weights, so the draws must repeat across the passes the differences take */
	"inputs: [{name: x, shape: [4, 4, 2]}]\nlayers:\n  - {type: conv2d, filters: 3, kernel_size: 2}\n"
	"  - {type: spatial_dropout2d, rate: 0.5}\n  - {type: gaussian_dropout, rate: 0.2}\n"
	"  - {type: gaussian_noise, stddev: 0.2}\n  - {type: flatten}\n  - {type: dense, units: 3}\n",
};

START_TEST(test_finite_differences)
{
	ts_fd f;
	ts_fd_open(&f, fd_models[_i], 4, 0.0f, 90 + (unsigned)_i);
	f.net.s->step = 6;
	ts_fd_tolerance tol = {.max_checks = 80, .nontrivial = 1e-3};
	ts_fd_check_gradients(&f, &tol);
	ts_fd_close(&f);
}
END_TEST

/* ---- names, counts, refusals ---------------------------------------------------------------------------- */

START_TEST(test_names)
{
	static const char *const types[] = {"gaussian_noise", "gaussian_dropout", "spatial_dropout2d"};
	static const char *const classes[] = {"GaussianNoise", "GaussianDropout", "SpatialDropout2D"};
	static const char *const params[] = {"stddev: 0.1", "rate: 0.1", "rate: 0.1"};
	strata_registry *reg = ts_registry();
	for (size_t t = 0; t < 3; t++) {
		char yaml[256];
		snprintf(yaml, sizeof(yaml),
		         "inputs: [{name: x, shape: [3, 4, 2]}]\nlayers:\n  - {type: %s, %s}\n  - {type: %s, %s, seed: null}\n",
		         types[t], params[t], classes[t], params[t]);
		strata_model *m = ts_model(reg, yaml);
		char want[40];
		snprintf(want, sizeof(want), "%s_1", types[t]);
		ck_assert_str_eq(m->layers[0].name, want);
		snprintf(want, sizeof(want), "%s_2", types[t]);
		ck_assert_str_eq(m->layers[1].name, want);
		ck_assert_str_eq(m->layers[0].type->ops.class_name, classes[t]);
		/* Keras counts no parameters: no weights, no state */
		ck_assert_uint_eq(m->layers[0].n_weights, 0);
		ck_assert_uint_eq(strata_model_param_count(m, 1), 0);
		ck_assert_int_eq(m->layers[1].out.rank, 3);
		ck_assert_int_eq(m->layers[1].out.dims[2], 2);
		strata_model_free(m);
	}
	strata_registry_close(reg);
}
END_TEST

typedef struct refusal_case {
	const char *yaml;
	const char *where;
	const char *says[2];
} refusal_case;

#define ONE_LAYER(input, layer) "inputs: [{name: x, shape: " input "}]\nlayers:\n  - " layer "\n"

static const refusal_case refusals[] = {
	{ONE_LAYER("[7]", "{type: spatial_dropout2d, rate: 0.5}"), "noise.yaml:3:5: spatial_dropout2d_1: ",
	 {"SpatialDropout2D needs (height, width, channels) samples, got (7) (rank 1)"}},
	{ONE_LAYER("[2, 3, 4, 5]", "{type: spatial_dropout2d, rate: 0.5}"), "noise.yaml:3:5: spatial_dropout2d_1: ",
	 {"got (2, 3, 4, 5) (rank 4)"}},
	{ONE_LAYER("[4, 4, 3]", "{type: spatial_dropout2d, rate: 1}"), "noise.yaml:3:37: ", {"'rate' must be in [0, 1), got 1"}},
	{ONE_LAYER("[4]", "{type: gaussian_dropout, rate: 1.0}"), "noise.yaml:3:36: ", {"'rate' must be in [0, 1), got 1.0"}},
	{ONE_LAYER("[4]", "{type: gaussian_dropout, rate: -0.1}"), "noise.yaml:3:36: ", {"'rate' must be in [0, 1)"}},
	{ONE_LAYER("[4]", "{type: gaussian_noise, stddev: 1.5}"), "noise.yaml:3:36: ", {"'stddev' must be in [0, 1], got 1.5"}},
	{ONE_LAYER("[4]", "{type: gaussian_noise}"), "noise.yaml:3:5: ", {"stddev"}},
	{ONE_LAYER("[4]", "{type: gaussian_noise, stddev: 0.1, seed: 1.5}"), "noise.yaml:3:47: ", {"'seed' must be an integer"}},
	{ONE_LAYER("[4, 4, 3]", "{type: spatial_dropout2d, rate: 0.5, data_format: channels_first}"), "noise.yaml:3:55: ",
	 {"'data_format' is a Keras parameter Strata leaves out", "channels-last"}},
};

START_TEST(test_refusals)
{
	const refusal_case *rc = &refusals[_i];
	strata_registry *reg = ts_registry();
	strata_model *m = NULL;
	strata_error err = {0};
	strata_status st = strata_model_load_string(reg, rc->yaml, strlen(rc->yaml), "noise.yaml", NULL, &m, &err);
	ck_assert_msg(st == STRATA_ERR_INVALID, "status %s: %s", strata_status_name(st), err.message);
	ck_assert_ptr_null(m);
	ck_assert_msg(strncmp(err.message, rc->where, strlen(rc->where)) == 0, "'%s' does not start with '%s'",
	              err.message, rc->where);
	for (size_t k = 0; k < 2 && rc->says[k]; k++)
		ck_assert_msg(strstr(err.message, rc->says[k]), "'%s' does not say '%s'", err.message, rc->says[k]);
	strata_registry_close(reg);
}
END_TEST

static Suite *noise_suite(void)
{
	Suite *s = suite_create("noise");
	TCase *ref = tcase_create("reference");
	tcase_add_loop_test(ref, test_inference_identity, 0, 3);
	tcase_add_loop_test(ref, test_training_reference, 0, (int)(sizeof(train_cases) / sizeof(train_cases[0])));
	tcase_add_loop_test(ref, test_reproducible, 0, 3);
	tcase_add_loop_test(ref, test_two_layers_differ, 0, 3);
	suite_add_tcase(s, ref);
	TCase *stats = tcase_create("statistics");
	tcase_add_loop_test(stats, test_noise_statistics, 0, 2);
	tcase_add_loop_test(stats, test_gaussian_dropout_statistics, 0, 2);
	tcase_add_loop_test(stats, test_spatial_statistics, 0, 2);
	suite_add_tcase(s, stats);
	TCase *fd = tcase_create("finite_differences");
	tcase_add_loop_test(fd, test_finite_differences, 0, (int)(sizeof(fd_models) / sizeof(fd_models[0])));
	suite_add_tcase(s, fd);
	TCase *model = tcase_create("model");
	tcase_add_test(model, test_names);
	tcase_add_loop_test(model, test_refusals, 0, (int)(sizeof(refusals) / sizeof(refusals[0])));
	suite_add_tcase(s, model);
	return s;
}

int main(void)
{
	return ts_run(noise_suite());
}
