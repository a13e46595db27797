/* The augmentation layers (plugins/augment: random_translation, random_rotation, random_zoom,
 * random_flip, random_contrast) on the OpenCL device:
 *  - fill modes and interpolation against Keras' documented patterns, written out here (a row
 *    a b c d moved by whole and half pixels, zoomed in and out, turned half a turn), with factor
 *    bounds equal (lower == upper) so the transform is fixed;
 *  - rotations by exactly +-90 degrees as the index permutations they are;
 *  - random factors: each sample's drawn parameters (the layer's parameter workspace) within the
 *    ranges Keras' factors give and not all equal, and the output against a host reference of
 *    every transform, fill mode and interpolation computed from those parameters;
 *  - reproducibility: the same seed and step give the same bits (also in a new session), another
 *    step, run seed or layer `seed` other images;
 *  - the identity at inference, Keras' parameter counts (none), names and shapes, and the
 *    refusals (factors out of range or unreadable, value_range, inputs that are not images) with
 *    FILE:LINE:COLUMN.
 * The backward passes are checked against finite differences by test_augmentation.sh (strata
 * gradcheck). */
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "support.h"

#include "device/runtime.h"
#include "exec/session.h"
#include "model/model.h"

#define AUG_PARAMS 8 /* floats per sample of a layer's parameter workspace (augment.cl) */
#define TEST_PI 3.14159265358979323846

enum { FILL_CONSTANT, FILL_NEAREST, FILL_REFLECT, FILL_WRAP };
static const char *const fill_names[] = {"constant", "nearest", "reflect", "wrap"};

/* ---- running one layer --------------------------------------------------------------------------- */

/* A model of one layer, `layer` the contents of its flow mapping, on (h, w, c) images. */
static ts_net aug_net(const ts_device *dev, int h, int w, int c, const char *layer, uint32_t batch, uint64_t seed)
{
	char yaml[1024];
	int n = snprintf(yaml, sizeof(yaml), "input: {shape: [%d, %d, %d]}\nlayers:\n  - {%s}\n", h, w, c, layer);
	ck_assert_int_lt(n, (int)sizeof(yaml));
	return ts_net_open(dev, yaml, batch, seed);
}

/* A forward pass of `batch` samples x (count floats) in training or inference mode: the output
 * into y, and, when params is not NULL, each sample's drawn parameters. */
static void aug_run(const ts_device *dev, ts_net *net, const float *x, size_t count, uint32_t batch, bool training,
                    float *y, float *params)
{
	strata_error err = {0};
	ts_tensor_write(dev->rt, st_session_value(net->s, 0), 0, x, count);
	strata_status st = st_session_forward_device(net->s, batch, training, &err);
	ck_assert_msg(st == STRATA_OK, "forward: %s", err.message);
	ts_tensor_read(dev->rt, st_session_output(net->s), y, count);
	if (params) {
		ck_assert_uint_ge(net->m->layers[0].n_workspaces, 1);
		ts_tensor_read(dev->rt, &net->s->binds[0].workspaces[0], params, (size_t)batch * AUG_PARAMS);
	}
}

static void expect_close(const char *what, const float *got, const float *want, size_t n, float tol)
{
	for (size_t i = 0; i < n; i++)
		ck_assert_msg(fabsf(got[i] - want[i]) <= tol * fmaxf(1.0f, fabsf(want[i])), "%s: [%zu] = %.9g, want %.9g",
		              what, i, (double)got[i], (double)want[i]);
}

/* ---- host references ----------------------------------------------------------------------------- */

/* The image pixel that extended index i reads (-1: fill_value), written as the patterns say
 * rather than as the kernel computes it: reflect and wrap fold step by step. */
static int ref_index(int i, int len, int fill)
{
	if (fill == FILL_CONSTANT)
		return i >= 0 && i < len ? i : -1;
	if (fill == FILL_NEAREST)
		return i < 0 ? 0 : i >= len ? len - 1 : i;
	while (i < 0 || i >= len) {
		if (fill == FILL_REFLECT)
			i = i < 0 ? -i - 1 : 2 * len - 1 - i; /* d c b a | a b c d | d c b a */
		else
			i = i < 0 ? i + len : i - len; /* a b c d | a b c d */
	}
	return i;
}

static float ref_read(const float *img, int y, int x, int h, int w, int c, int ch, int fill, float fill_value)
{
	int yi = ref_index(y, h, fill), xi = ref_index(x, w, fill);
	return yi < 0 || xi < 0 ? fill_value : img[((size_t)yi * w + xi) * c + ch];
}

/* Each sample's affine map from its parameters (a0 a1 a2 b0 b1 b2), output pixel (x, y) reading
 * input point (a0 x + a1 y + a2, b0 x + b1 y + b2) in float as the kernel does; nearest rounds
 * halves away from zero, bilinear weighs the four pixels around the point. */
static void ref_affine(const float *x, float *y, const float *params, uint32_t batch, int h, int w, int c, int fill,
                       bool bilinear, float fill_value)
{
	for (uint32_t n = 0; n < batch; n++) {
		const float *p = params + (size_t)n * AUG_PARAMS, *img = x + (size_t)n * h * w * c;
		for (int oy = 0; oy < h; oy++)
			for (int ox = 0; ox < w; ox++) {
				float fx = (float)ox, fy = (float)oy;
				float px = p[0] * fx + p[1] * fy + p[2], py = p[3] * fx + p[4] * fy + p[5];
				float *o = y + (((size_t)n * h + oy) * w + ox) * c;
				for (int ch = 0; ch < c; ch++) {
					if (!bilinear) {
						o[ch] = ref_read(img, (int)roundf(py), (int)roundf(px), h, w, c, ch, fill, fill_value);
						continue;
					}
					float x0 = floorf(px), y0 = floorf(py);
					float wx0 = (x0 + 1.0f) - px, wx1 = px - x0, wy0 = (y0 + 1.0f) - py, wy1 = py - y0;
					int xi = (int)x0, yi = (int)y0;
					float sum = 0.0f;
					sum += wx0 * wy0 * ref_read(img, yi, xi, h, w, c, ch, fill, fill_value);
					sum += wx1 * wy0 * ref_read(img, yi, xi + 1, h, w, c, ch, fill, fill_value);
					sum += wx0 * wy1 * ref_read(img, yi + 1, xi, h, w, c, ch, fill, fill_value);
					sum += wx1 * wy1 * ref_read(img, yi + 1, xi + 1, h, w, c, ch, fill, fill_value);
					o[ch] = sum;
				}
			}
	}
}

/* RandomFlip: mode bit 1 left-right, bit 2 top-bottom, in the samples whose flag is set. */
static void ref_flip(const float *x, float *y, const float *params, uint32_t batch, int h, int w, int c, int mode)
{
	for (uint32_t n = 0; n < batch; n++) {
		bool flip = params[(size_t)n * AUG_PARAMS + 6] != 0.0f;
		for (int oy = 0; oy < h; oy++)
			for (int ox = 0; ox < w; ox++)
				for (int ch = 0; ch < c; ch++) {
					int sy = flip && (mode & 2) ? h - 1 - oy : oy, sx = flip && (mode & 1) ? w - 1 - ox : ox;
					y[(((size_t)n * h + oy) * w + ox) * c + ch] = x[(((size_t)n * h + sy) * w + sx) * c + ch];
				}
	}
}

/* RandomContrast: (x - mean) * factor + mean per image and channel, clipped to [lo, hi]. */
static void ref_contrast(const float *x, float *y, const float *params, uint32_t batch, int h, int w, int c,
                         float lo, float hi)
{
	for (uint32_t n = 0; n < batch; n++) {
		float f = params[(size_t)n * AUG_PARAMS + 6];
		for (int ch = 0; ch < c; ch++) {
			const float *img = x + (size_t)n * h * w * c;
			float sum = 0.0f;
			for (int i = 0; i < h * w; i++)
				sum += img[(size_t)i * c + ch];
			float m = sum / (float)(h * w);
			for (int i = 0; i < h * w; i++) {
				size_t at = (size_t)n * h * w * c + (size_t)i * c + ch;
				y[at] = fminf(fmaxf((x[at] - m) * f + m, lo), hi);
			}
		}
	}
}

/* ---- Keras' patterns, with fixed transforms --------------------------------------------------------- */

typedef struct pattern_case {
	const char *layer; /* flow mapping contents */
	int w;             /* one row of w pixels 1, 2, 3, ...; one channel; fill_value 9 */
	float want[5];
} pattern_case;

#define TR(dx, fill, interp)                                                                               \
	"type: random_translation, height_factor: 0, width_factor: [" dx ", " dx "], fill_mode: " fill         \
	", interpolation: " interp ", fill_value: 9"

static const pattern_case patterns[] = {
	/* moved left by the whole width: out(x) = in(x + 4) reads the pattern right of the image */
	{TR("-1", "reflect", "nearest"), 4, {4, 3, 2, 1}},
	{TR("-1", "wrap", "nearest"), 4, {1, 2, 3, 4}},
	{TR("-1", "nearest", "nearest"), 4, {4, 4, 4, 4}},
	{TR("-1", "constant", "nearest"), 4, {9, 9, 9, 9}},
	/* right by the whole width: in(x - 4), the pattern left of it */
	{TR("1", "reflect", "bilinear"), 4, {4, 3, 2, 1}},
	{TR("1", "wrap", "bilinear"), 4, {1, 2, 3, 4}},
	{TR("1", "nearest", "bilinear"), 4, {1, 1, 1, 1}},
	{TR("1", "constant", "bilinear"), 4, {9, 9, 9, 9}},
	/* right by half the width (2 pixels) */
	{TR("0.5", "reflect", "nearest"), 4, {2, 1, 1, 2}},
	{TR("0.5", "wrap", "nearest"), 4, {3, 4, 1, 2}},
	{TR("0.5", "nearest", "bilinear"), 4, {1, 1, 1, 2}},
	{TR("0.5", "constant", "bilinear"), 4, {9, 9, 1, 2}},
	/* left by 2 pixels */
	{TR("-0.5", "reflect", "bilinear"), 4, {3, 4, 4, 3}},
	{TR("-0.5", "wrap", "bilinear"), 4, {3, 4, 1, 2}},
	{TR("-0.5", "nearest", "nearest"), 4, {3, 4, 4, 4}},
	{TR("-0.5", "constant", "nearest"), 4, {3, 4, 9, 9}},
	/* right by half a pixel: bilinear averages in(x - 1) and in(x) */
	{TR("0.125", "reflect", "bilinear"), 4, {1, 1.5f, 2.5f, 3.5f}},
	{TR("0.125", "wrap", "bilinear"), 4, {2.5f, 1.5f, 2.5f, 3.5f}},
	{TR("0.125", "nearest", "bilinear"), 4, {1, 1.5f, 2.5f, 3.5f}},
	{TR("0.125", "constant", "bilinear"), 4, {5, 1.5f, 2.5f, 3.5f}},
	/* ... and nearest rounds the points -0.5, 0.5, 1.5, 2.5 away from zero: -1, 1, 2, 3 */
	{TR("0.125", "reflect", "nearest"), 4, {1, 2, 3, 4}},
	{TR("0.125", "wrap", "nearest"), 4, {4, 2, 3, 4}},
	{TR("0.125", "constant", "nearest"), 4, {9, 2, 3, 4}},
	/* left by half a pixel: the points 0.5, 1.5, 2.5, 3.5 (nearest: 1, 2, 3, 4) */
	{TR("-0.125", "reflect", "bilinear"), 4, {1.5f, 2.5f, 3.5f, 4}},
	{TR("-0.125", "wrap", "bilinear"), 4, {1.5f, 2.5f, 3.5f, 2.5f}},
	{TR("-0.125", "nearest", "bilinear"), 4, {1.5f, 2.5f, 3.5f, 4}},
	{TR("-0.125", "constant", "bilinear"), 4, {1.5f, 2.5f, 3.5f, 6.5f}},
	{TR("-0.125", "wrap", "nearest"), 4, {2, 3, 4, 1}},
	{TR("-0.125", "constant", "nearest"), 4, {2, 3, 4, 9}},
	/* zoom 2 (height_factor 1, the width alike) about the center 2 of 1 2 3 4 5: points -2 0 2 4 6 */
	{"type: random_zoom, height_factor: [1, 1], fill_mode: reflect", 5, {2, 1, 3, 5, 4}},
	{"type: random_zoom, height_factor: [1, 1], fill_mode: wrap, interpolation: nearest", 5, {4, 1, 3, 5, 2}},
	{"type: random_zoom, height_factor: [1, 1], fill_mode: nearest", 5, {1, 1, 3, 5, 5}},
	{"type: random_zoom, height_factor: [1, 1], fill_mode: constant, fill_value: 9", 5, {9, 1, 3, 5, 9}},
	/* zoom 0.5 (zoom in): points 1 1.5 2 2.5 3 */
	{"type: random_zoom, height_factor: [-0.5, -0.5]", 5, {2, 2.5f, 3, 3.5f, 4}},
	{"type: random_zoom, height_factor: 0, width_factor: [-0.5, -0.5], interpolation: nearest", 5,
	 {2, 3, 3, 4, 4}},
	/* half a turn about the center (either way): the row reversed */
	{"type: random_rotation, factor: [0.5, 0.5]", 4, {4, 3, 2, 1}},
	{"type: random_rotation, factor: [-0.5, -0.5], fill_mode: constant, interpolation: nearest", 5,
	 {5, 4, 3, 2, 1}},
};

START_TEST(test_patterns)
{
	const pattern_case *pc = &patterns[_i];
	ts_device dev = ts_device_open();
	ts_net net = aug_net(&dev, 1, pc->w, 1, pc->layer, 1, 1);
	float x[5] = {1, 2, 3, 4, 5}, y[5];
	aug_run(&dev, &net, x, (size_t)pc->w, 1, true, y, NULL);
	char what[256];
	snprintf(what, sizeof(what), "{%s} on 1 .. %d", pc->layer, pc->w);
	expect_close(what, y, pc->want, (size_t)pc->w, 1e-5f);
	ts_net_close(&net);
	ts_device_close(&dev);
}
END_TEST

/* +-90 degrees on a square image: out[y][x] = in[x][w - 1 - y] (counter-clockwise, factor 0.25)
 * and in[w - 1 - x][y] (clockwise), every channel, both interpolations. */
START_TEST(test_rotation_quarter)
{
	const int s = 5, c = 2;
	const uint32_t batch = 2;
	size_t count = (size_t)batch * s * s * c;
	float *x = ts_floats(count), *y = ts_floats(count), *want = ts_floats(count), *p = ts_floats(batch * AUG_PARAMS);
	ts_fill_random(x, count, 90, -1.0f, 1.0f);
	ts_device dev = ts_device_open();
	for (int turn = 0; turn < 4; turn++) {
		bool clockwise = turn & 1, bilinear = turn & 2;
		char layer[160];
		snprintf(layer, sizeof(layer), "type: random_rotation, factor: [%s, %s], interpolation: %s",
		         clockwise ? "-0.25" : "0.25", clockwise ? "-0.25" : "0.25", bilinear ? "bilinear" : "nearest");
		ts_net net = aug_net(&dev, s, s, c, layer, batch, 3);
		aug_run(&dev, &net, x, count, batch, true, y, p);
		for (uint32_t n = 0; n < batch; n++) {
			ck_assert_float_eq_tol(p[n * AUG_PARAMS + 6], (float)((clockwise ? -0.5 : 0.5) * TEST_PI), 1e-6f);
			for (int oy = 0; oy < s; oy++)
				for (int ox = 0; ox < s; ox++)
					for (int ch = 0; ch < c; ch++) {
						int sy = clockwise ? s - 1 - ox : ox, sx = clockwise ? oy : s - 1 - oy;
						want[(((size_t)n * s + oy) * s + ox) * c + ch] = x[(((size_t)n * s + sy) * s + sx) * c + ch];
					}
		}
		expect_close(layer, y, want, count, 1e-5f);
		ts_net_close(&net);
	}
	ts_device_close(&dev);
	free(x);
	free(y);
	free(want);
	free(p);
}
END_TEST

/* ---- random factors: drawn parameters and host references ----------------------------------------- */

typedef struct random_case {
	const char *layer; /* without fill_mode and interpolation, which the affine kinds loop over */
	int kind;          /* 0 translation, 1 rotation, 2 zoom, 3 flip, 4 contrast */
	int h, w, c;
	double lo0, hi0, lo1, hi1; /* the drawn values' ranges (p[6], p[7]); lo1 > hi1: p[7] = p[6] */
	int flip_mode;
	float value_lo, value_hi;
} random_case;

#define RC(text, k, hh, ww, cc, a, b, d, e) .layer = text, .kind = k, .h = hh, .w = ww, .c = cc, .lo0 = a, .hi0 = b, \
	.lo1 = d, .hi1 = e

static const random_case random_cases[] = {
	{RC("type: random_translation, height_factor: 0.3, width_factor: [-0.4, 0.2]", 0, 7, 5, 3, -0.3, 0.3, -0.4,
	    0.2)},
	{RC("type: random_translation, height_factor: [0.5, -0.1], width_factor: -0.25", 0, 4, 9, 1, -0.1, 0.5, -0.25,
	    0.25)},
	{RC("type: random_rotation, factor: 0.2", 1, 6, 9, 2, -0.4 * TEST_PI, 0.4 * TEST_PI, 0, 0)},
	{RC("type: random_rotation, factor: [-0.05, 0.1]", 1, 8, 8, 3, -0.1 * TEST_PI, 0.2 * TEST_PI, 0, 0)},
	{RC("type: random_zoom, height_factor: 0.4", 2, 8, 7, 1, 0.6, 1.4, 1, 0)},
	{RC("type: random_zoom, height_factor: [-0.3, 0.5], width_factor: [0.1, -0.5]", 2, 5, 6, 2, 0.7, 1.5, 0.5,
	    1.1)},
	{RC("type: random_flip, mode: horizontal", 3, 5, 4, 3, 0, 1, 0, 0), .flip_mode = 1},
	{RC("type: random_flip, mode: vertical", 3, 6, 3, 2, 0, 1, 0, 0), .flip_mode = 2},
	{RC("type: random_flip", 3, 3, 5, 1, 0, 1, 0, 0), .flip_mode = 3},
	{RC("type: random_contrast, factor: 0.5, value_range: [0, 1]", 4, 6, 5, 3, 0.5, 1.5, 0, 0), .value_lo = 0.0f,
	 .value_hi = 1.0f},
	{RC("type: random_contrast, factor: [0.2, 0.9], value_range: [-10, 10]", 4, 7, 4, 2, 0.8, 1.9, 0, 0),
	 .value_lo = -10.0f, .value_hi = 10.0f},
	{RC("type: random_contrast, factor: 1", 4, 5, 5, 1, 0.0, 2.0, 0, 0), .value_lo = 0.0f, .value_hi = 255.0f},
};

/* The drawn values lie in their ranges, differ between samples, and make the affine maps the
 * kinds define (exactly for translation and zoom, as the kernel computes them). */
static void check_params(const random_case *rc, const float *p, uint32_t batch)
{
	int distinct = 0;
	for (uint32_t n = 0; n < batch; n++) {
		const float *q = p + (size_t)n * AUG_PARAMS;
		float eps = 1e-6f;
		ck_assert_msg(q[6] >= (float)rc->lo0 - eps && q[6] <= (float)rc->hi0 + eps, "%s: sample %u drew %.9g, "
		              "outside [%g, %g]", rc->layer, n, (double)q[6], rc->lo0, rc->hi0);
		if (rc->lo1 <= rc->hi1)
			ck_assert_msg(q[7] >= (float)rc->lo1 - eps && q[7] <= (float)rc->hi1 + eps, "%s: sample %u drew %.9g, "
			              "outside [%g, %g]", rc->layer, n, (double)q[7], rc->lo1, rc->hi1);
		if (n > 0 && q[6] != p[6])
			distinct++;
		switch (rc->kind) {
		case 0:
			ck_assert(q[0] == 1 && q[1] == 0 && q[3] == 0 && q[4] == 1);
			ck_assert(q[2] == -(q[7] * (float)rc->w) && q[5] == -(q[6] * (float)rc->h));
			break;
		case 1:
			ck_assert_float_eq_tol(q[0], cosf(q[6]), 1e-6f);
			ck_assert_float_eq_tol(q[3], sinf(q[6]), 1e-6f);
			ck_assert(q[1] == -q[3] && q[4] == q[0]);
			break;
		case 2:
			if (rc->lo1 > rc->hi1)
				ck_assert(q[7] == q[6]);
			ck_assert(q[0] == q[7] && q[4] == q[6] && q[1] == 0 && q[3] == 0);
			ck_assert(q[2] == (float)(rc->w - 1) / 2.0f * (1.0f - q[7]));
			break;
		case 3:
			ck_assert(q[6] == 0.0f || q[6] == 1.0f);
			break;
		default:
			break;
		}
	}
	ck_assert_msg(distinct > 0, "%s: every sample drew %g", rc->layer, (double)p[6]);
}

START_TEST(test_random_factors)
{
	const random_case *rc = &random_cases[_i];
	const uint32_t batch = rc->kind == 3 ? 16 : 5;
	size_t count = (size_t)batch * rc->h * rc->w * rc->c;
	float *x = ts_floats(count), *y = ts_floats(count), *want = ts_floats(count), *p = ts_floats(batch * AUG_PARAMS);
	ts_fill_random(x, count, 100 + (unsigned)_i, rc->kind == 4 ? 0.0f : -1.0f, 1.0f);
	ts_device dev = ts_device_open();
	bool affine = rc->kind <= 2;
	for (int variant = 0; variant < (affine ? 8 : 1); variant++) {
		int fill = variant % 4;
		bool bilinear = variant >= 4;
		char layer[512];
		if (affine)
			snprintf(layer, sizeof(layer), "%s, fill_mode: %s, interpolation: %s, fill_value: -0.5", rc->layer,
			         fill_names[fill], bilinear ? "bilinear" : "nearest");
		else
			snprintf(layer, sizeof(layer), "%s", rc->layer);
		ts_net net = aug_net(&dev, rc->h, rc->w, rc->c, layer, batch + 1, 11);
		aug_run(&dev, &net, x, count, batch, true, y, p);
		check_params(rc, p, batch);
		if (affine)
			ref_affine(x, want, p, batch, rc->h, rc->w, rc->c, fill, bilinear, -0.5f);
		else if (rc->kind == 3)
			ref_flip(x, want, p, batch, rc->h, rc->w, rc->c, rc->flip_mode);
		else
			ref_contrast(x, want, p, batch, rc->h, rc->w, rc->c, rc->value_lo, rc->value_hi);
		expect_close(layer, y, want, count, 1e-5f);
		if (rc->kind == 3) {
			/* Both outcomes occur: some samples kept, some flipped. */
			int flipped = 0;
			for (uint32_t n = 0; n < batch; n++)
				flipped += p[n * AUG_PARAMS + 6] != 0.0f;
			ck_assert_msg(flipped > 0 && flipped < (int)batch, "%s: %d of %u flipped", layer, flipped, batch);
		}
		ts_net_close(&net);
	}
	ts_device_close(&dev);
	free(x);
	free(y);
	free(want);
	free(p);
}
END_TEST

/* ---- reproducibility, inference ------------------------------------------------------------------------ */

static const char *const kinds[] = {
	"type: random_translation, height_factor: 0.2, width_factor: 0.2",
	"type: random_rotation, factor: 0.1",
	"type: random_zoom, height_factor: 0.3, fill_mode: nearest",
	"type: random_flip",
	"type: random_contrast, factor: 0.4, value_range: [0, 1]",
};

static bool same_bits(const float *a, const float *b, size_t n)
{
	return memcmp(a, b, n * sizeof(float)) == 0;
}

START_TEST(test_reproducible)
{
	const int h = 6, w = 7, c = 2;
	const uint32_t batch = 16;
	size_t count = (size_t)batch * h * w * c;
	float *x = ts_floats(count), *y0 = ts_floats(count), *y = ts_floats(count);
	ts_fill_random(x, count, 7, 0.0f, 1.0f);
	ts_device dev = ts_device_open();
	ts_net net = aug_net(&dev, h, w, c, kinds[_i], batch, 21);
	aug_run(&dev, &net, x, count, batch, true, y0, NULL);
	ck_assert_msg(!same_bits(x, y0, count), "%s changed nothing while training", kinds[_i]);
	aug_run(&dev, &net, x, count, batch, true, y, NULL);
	ck_assert_msg(same_bits(y0, y, count), "%s: the same step gave other values", kinds[_i]);
	net.s->step = 1;
	aug_run(&dev, &net, x, count, batch, true, y, NULL);
	ck_assert_msg(!same_bits(y0, y, count), "%s: another step gave the same values", kinds[_i]);
	net.s->step = 0;
	aug_run(&dev, &net, x, count, batch, true, y, NULL);
	ck_assert_msg(same_bits(y0, y, count), "%s: step 0 again gave other values", kinds[_i]);
	/* The identity at inference. */
	aug_run(&dev, &net, x, count, batch, false, y, NULL);
	ck_assert_msg(same_bits(x, y, count), "%s is not the identity at inference", kinds[_i]);
	ts_net_close(&net);

	/* A new session of the same seed draws the same; another run seed, or a layer seed, not. */
	net = aug_net(&dev, h, w, c, kinds[_i], batch, 21);
	aug_run(&dev, &net, x, count, batch, true, y, NULL);
	ck_assert_msg(same_bits(y0, y, count), "%s: a new session of seed 21 gave other values", kinds[_i]);
	ts_net_close(&net);
	net = aug_net(&dev, h, w, c, kinds[_i], batch, 22);
	aug_run(&dev, &net, x, count, batch, true, y, NULL);
	ck_assert_msg(!same_bits(y0, y, count), "%s: seed 22 gave seed 21's values", kinds[_i]);
	ts_net_close(&net);
	char layer[256];
	snprintf(layer, sizeof(layer), "%s, seed: 0", kinds[_i]);
	net = aug_net(&dev, h, w, c, layer, batch, 21);
	aug_run(&dev, &net, x, count, batch, true, y, NULL);
	ck_assert_msg(same_bits(y0, y, count), "%s: seed 0 is not the same as null", kinds[_i]);
	ts_net_close(&net);
	snprintf(layer, sizeof(layer), "%s, seed: 1337", kinds[_i]);
	net = aug_net(&dev, h, w, c, layer, batch, 21);
	aug_run(&dev, &net, x, count, batch, true, y0, NULL);
	ck_assert_msg(!same_bits(y0, y, count), "%s: the layer's seed 1337 changed nothing", kinds[_i]);
	ts_net_close(&net);
	net = aug_net(&dev, h, w, c, layer, batch, 21);
	aug_run(&dev, &net, x, count, batch, true, y, NULL);
	ck_assert_msg(same_bits(y0, y, count), "%s: the layer's seed 1337 gave other values in a new session", kinds[_i]);
	ts_net_close(&net);
	ts_device_close(&dev);
	free(x);
	free(y0);
	free(y);
}
END_TEST

/* Two layers of one type in a model draw differently (their names key their streams), and a
 * chain of all five runs, training and inference, through strata_session_forward_training_to. */
START_TEST(test_chain)
{
	const int h = 8, w = 8, c = 1;
	const uint32_t batch = 4;
	size_t count = (size_t)batch * h * w * c;
	float *x = ts_floats(count), *a = ts_floats(count), *b = ts_floats(count), *z = ts_floats(count);
	ts_fill_random(x, count, 5, 0.0f, 1.0f);
	ts_device dev = ts_device_open();
	ts_net net = ts_net_open(&dev,
	                         "inputs: [{name: x, shape: [8, 8, 1]}]\n"
	                         "layers:\n"
	                         "  - {type: random_rotation, factor: 0.1, inputs: x}\n"
	                         "  - {type: random_rotation, factor: 0.1, inputs: x}\n"
	                         "  - {type: random_translation, height_factor: 0.1, width_factor: 0.1}\n"
	                         "  - {type: random_zoom, height_factor: 0.1}\n"
	                         "  - {type: random_flip, mode: horizontal}\n"
	                         "  - {type: random_contrast, factor: 0.2, value_range: [0, 1]}\n"
	                         "  - {type: flatten}\n"
	                         "outputs: [random_rotation_1, flatten_1]\n",
	                         batch, 3);
	ck_assert_str_eq(net.m->layers[1].name, "random_rotation_2");
	strata_error err = {0};
	ck_assert_int_eq(strata_session_forward_training_to(net.s, x, batch, 0, a, &err), STRATA_OK);
	ck_assert_int_eq(strata_session_forward_training_to(net.s, x, batch, 1, b, &err), STRATA_OK);
	ck_assert_msg(!same_bits(a, b, count), "two rotation layers drew the same angles");
	ck_assert_int_eq(strata_session_forward_training_to(net.s, x, batch, 5, a, &err), STRATA_OK);
	ck_assert_int_eq(strata_session_forward_training_to(net.s, x, batch, 5, b, &err), STRATA_OK);
	ck_assert(same_bits(a, b, count));
	ck_assert_int_eq(strata_session_forward_to(net.s, x, batch, 5, z, &err), STRATA_OK);
	ck_assert_msg(same_bits(x, z, count), "the chain is not the identity at inference");
	ck_assert_msg(!same_bits(x, a, count), "the chain changed nothing while training");
	/* Errors name what is wrong. */
	ck_assert_int_eq(strata_session_forward_training_to(net.s, x, batch, 9, a, &err), STRATA_ERR_NOT_FOUND);
	ck_assert_int_eq(strata_session_forward_training_to(net.s, x, batch + 1, 5, a, &err), STRATA_ERR_INVALID);
	ck_assert_ptr_nonnull(strstr(err.message, "batch of 5"));
	ts_net_close(&net);
	ts_device_close(&dev);
	free(x);
	free(a);
	free(b);
	free(z);
}
END_TEST

/* ---- the model: names, shapes, counts, refusals ------------------------------------------------------- */

/* Keras' summary counts no parameters for these layers (their seed generators' state is not a
 * weight); a conv2d after them counts 3 * 3 * 1 * 4 + 4 = 40. */
START_TEST(test_names_and_counts)
{
	static const char *const classes[] = {"RandomTranslation", "RandomRotation", "RandomZoom", "RandomFlip",
	                                      "RandomContrast"};
	static const char *const names[] = {"random_translation_1", "random_rotation_1", "random_zoom_1",
	                                    "random_flip_1", "random_contrast_1"};
	strata_registry *reg = ts_registry();
	strata_model *m = ts_model(reg, "input: {shape: [12, 10, 1]}\n"
	                                "layers:\n"
	                                "  - {type: random_translation, height_factor: 0.1, width_factor: 0.1}\n"
	                                "  - {type: random_rotation, factor: 0.05}\n"
	                                "  - {type: RandomZoom, height_factor: 0.1, width_factor: 0.2}\n"
	                                "  - {type: random_flip, mode: horizontal}\n"
	                                "  - type: random_contrast\n"
	                                "    factor: [0.1, 0.3]\n"
	                                "    value_range: [0, 1]\n"
	                                "  - {type: conv2d, filters: 4, kernel_size: 3}\n");
	for (size_t i = 0; i < 5; i++) {
		ck_assert_str_eq(m->layers[i].type->ops.class_name, classes[i]);
		ck_assert_str_eq(strata_model_layer_name(m, i), names[i]);
		ck_assert_uint_eq(strata_model_param_count(m, i), 0);
		ck_assert_uint_eq(m->layers[i].n_weights, 0);
		strata_shape out = strata_model_output_shape(m, i);
		ck_assert_uint_eq(out.rank, 3);
		ck_assert(out.dims[0] == 12 && out.dims[1] == 10 && out.dims[2] == 1);
	}
	ck_assert_uint_eq(strata_model_param_count(m, 5), 40);
	strata_model_free(m);
	strata_registry_close(reg);
}
END_TEST

typedef struct refusal_case {
	const char *layer; /* line 3 of the model: "  - {" then this and "}" */
	const char *input; /* the input shape */
	const char *where; /* "aug.yaml:LINE:COLUMN: " */
	const char *says;
} refusal_case;

static const refusal_case refusals[] = {
	{"type: random_rotation, factor: 1.5", "[6, 6, 1]", "aug.yaml:3:37: ",
	 "'factor' must be in [-1, 1], got 1.5"},
	{"type: random_rotation, factor: [-1.2, 0.1]", "[6, 6, 1]", "aug.yaml:3:38: ", "in [-1, 1]"},
	{"type: random_translation, height_factor: 0.1, width_factor: [0.1, 0.2, 0.3]", "[6, 6, 1]",
	 "aug.yaml:3:66: ", "'width_factor' must be a number or a pair [lower, upper], got 3 numbers"},
	{"type: random_translation, height_factor: -1.01, width_factor: 0", "[6, 6, 1]", "aug.yaml:3:47: ",
	 "'height_factor' must be in [-1, 1], got -1.01"},
	{"type: random_zoom, height_factor: x2", "[6, 6, 1]", "aug.yaml:3:40: ", "got 'x2'"},
	{"type: random_zoom, height_factor: 0.2, width_factor: '(0.1'", "[6, 6, 1]", "aug.yaml:3:59: ",
	 "'width_factor' must be a number"},
	{"type: random_contrast, factor: -0.1", "[6, 6, 3]", "aug.yaml:3:37: ",
	 "'factor' must be in [0, 1], got -0.1"},
	{"type: random_contrast, factor: [0.5, 1.5]", "[6, 6, 3]", "aug.yaml:3:43: ", "in [0, 1]"},
	{"type: random_contrast, factor: 0.5, value_range: [1, 0]", "[6, 6, 3]", "aug.yaml:3:55: ",
	 "'value_range' must be a pair [low, high] with low < high"},
	{"type: random_contrast, factor: 0.5, value_range: 255", "[6, 6, 3]", "aug.yaml:3:55: ", "a pair [low, high]"},
	{"type: random_flip", "[784]", "aug.yaml:3:5: random_flip_1: ",
	 "RandomFlip expects images (height, width, channels), got an input of rank 1 (784)"},
	{"type: random_rotation, factor: 0.1", "[28, 28]", "aug.yaml:3:5: random_rotation_1: ",
	 "got an input of rank 2 (28, 28)"},
	{"type: random_contrast, factor: 0.1", "[2, 3, 4, 5]", "aug.yaml:3:5: ", "got an input of rank 4"},
	{"type: random_zoom, height_factor: 0.1, fill_mode: mirror", "[6, 6, 1]", "aug.yaml:3:56: ",
	 "'fill_mode' must be one of reflect, wrap, constant, nearest"},
	{"type: random_translation, height_factor: 0.1, width_factor: 0.1, interpolation: bicubic", "[6, 6, 1]",
	 "aug.yaml:3:86: ", "'interpolation' must be one of nearest, bilinear"},
	{"type: random_flip, data_format: channels_first", "[6, 6, 1]", "aug.yaml:3:38: ",
	 "'data_format' is a Keras parameter Strata leaves out"},
	{"type: random_flip, mode: diagonal", "[6, 6, 1]", "aug.yaml:3:31: ", "'mode' must be one of"},
	{"type: random_rotation, factor: [0.1, 0.2, 0.3, 0.4]", "[6, 6, 1]", "aug.yaml:3:37: ",
	 "'factor' must be a number or a pair [lower, upper], got 4 numbers"},
};

START_TEST(test_refusals)
{
	const refusal_case *rc = &refusals[_i];
	char yaml[512];
	snprintf(yaml, sizeof(yaml), "input: {shape: %s}\nlayers:\n  - {%s}\n", rc->input, rc->layer);
	strata_registry *reg = ts_registry();
	strata_model *m = NULL;
	strata_error err = {0};
	strata_status st = strata_model_load_string(reg, yaml, strlen(yaml), "aug.yaml", NULL, &m, &err);
	ck_assert_msg(st == STRATA_ERR_INVALID, "{%s}: status %s: %s", rc->layer, strata_status_name(st), err.message);
	ck_assert_ptr_null(m);
	ck_assert_msg(strncmp(err.message, rc->where, strlen(rc->where)) == 0, "'%s' does not start with '%s'",
	              err.message, rc->where);
	ck_assert_msg(strstr(err.message, rc->says), "'%s' does not say '%s'", err.message, rc->says);
	strata_registry_close(reg);
}
END_TEST

static Suite *augmentation_suite(void)
{
	Suite *s = suite_create("augmentation");
	TCase *fw = tcase_create("forward");
	tcase_add_loop_test(fw, test_patterns, 0, (int)(sizeof(patterns) / sizeof(patterns[0])));
	tcase_add_test(fw, test_rotation_quarter);
	tcase_add_loop_test(fw, test_random_factors, 0, (int)(sizeof(random_cases) / sizeof(random_cases[0])));
	tcase_add_loop_test(fw, test_reproducible, 0, (int)(sizeof(kinds) / sizeof(kinds[0])));
	tcase_add_test(fw, test_chain);
	suite_add_tcase(s, fw);

	TCase *model = tcase_create("model");
	tcase_add_test(model, test_names_and_counts);
	tcase_add_loop_test(model, test_refusals, 0, (int)(sizeof(refusals) / sizeof(refusals[0])));
	suite_add_tcase(s, model);
	return s;
}

int main(void)
{
	return ts_run(augmentation_suite());
}
