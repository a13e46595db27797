/* The pooling and shape layers of issue 14 (plugins global_pooling2d, padding2d, up_sampling2d,
 * reshape) and Rescaling (plugins/rescaling, issue 16), on the OpenCL device:
 *  - forward AND backward of every type and option against host references written here: each
 *    layer alone, random inputs of odd sizes (channel counts that give every vector width the
 *    kernels are built for: 1, 2, 4, 8, 16), a partial batch; the backward pass from
 *    grad_output = r compared with the adjoint of the reference (r pushed back through it), so
 *    GlobalMaxPooling2D's tie rule (the first maximum in row-major order takes the gradient, as
 *    MaxPooling2D does) and the bilinear gather's weights are checked exactly, on inputs with
 *    many ties;
 *  - central finite differences through a convolution before the layer and a dense layer after
 *    it (tests/support.c's ts_fd_*), every weight and the input;
 *  - Keras' output shapes and parameter counts (all zero for these types) through the API and the
 *    printed summary, of models whose numbers are written here from Keras' rules;
 *  - the refusals, at the FILE:LINE:COLUMN of the value (or layer) at fault. */
#define _GNU_SOURCE /* open_memstream */
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "support.h"

#include "exec/session.h"
#include "model/model.h"

/* Lists of integers of any length up to 4 (plugin.h's STRATA_INTS_ANY) let target_shape and dims
 * take any rank and padding / cropping 1, 2 or 4 values; a host without it takes 3 and 4. */
#ifdef STRATA_INTS_ANY
#define ANY_COUNT 1
#else
#define ANY_COUNT 0
#endif

typedef enum kind {
	K_GAP,     /* global_average_pooling2d; a[0] keepdims */
	K_GMP,     /* global_max_pooling2d; a[0] keepdims */
	K_PAD,     /* zero_padding2d; a[0..3] top, bottom, left, right */
	K_CROP,    /* cropping2d; a[0..3] likewise */
	K_UP,      /* up_sampling2d; a[0], a[1] the factors, a[2] bilinear */
	K_RESHAPE, /* reshape; out the expected shape */
	K_PERMUTE, /* permute; a[0..rank) the 0-based permutation */
	K_REPEAT,  /* repeat_vector; a[0] n */
	K_RESCALE, /* rescaling; scale[c], offset[c] per channel c of the last axis */
} kind;

typedef struct layer_case {
	kind k;
	const char *layer; /* the YAML of the layer */
	uint32_t rank;
	int64_t in[4];
	int64_t a[4];
	uint32_t out_rank; /* Keras' output shape */
	int64_t out[4];
	bool ties; /* inputs drawn from a few values, so maxima tie */
	float scale[4], offset[4]; /* K_RESCALE */
} layer_case;

/* ---- every type and option: forward and backward against host references ---------------------- */

static const layer_case cases[] = {
	/* channel counts 3, 16, 20, 6, 8: vector widths 1, 16, 4, 2, 8 */
	{K_GAP, "{type: global_average_pooling2d}", 3, {5, 7, 3}, {0}, 1, {3}, false, {0}, {0}},
	{K_GAP, "{type: global_average_pooling2d, keepdims: true}", 3, {3, 5, 16}, {1}, 3, {1, 1, 16}, false, {0}, {0}},
	{K_GAP, "{type: global_average_pooling2d, keepdims: false, data_format: channels_last}", 3, {1, 1, 20}, {0}, 1,
	 {20}, false, {0}, {0}},
	{K_GAP, "{type: GlobalAveragePooling2D}", 3, {9, 1, 6}, {0}, 1, {6}, false, {0}, {0}},
	{K_GMP, "{type: global_max_pooling2d}", 3, {5, 7, 3}, {0}, 1, {3}, false, {0}, {0}},
	{K_GMP, "{type: global_max_pooling2d, keepdims: true}", 3, {3, 5, 16}, {1}, 3, {1, 1, 16}, false, {0}, {0}},
	{K_GMP, "{type: global_max_pooling2d}", 3, {4, 3, 8}, {0}, 1, {8}, true, {0}, {0}},
	{K_GMP, "{type: global_max_pooling2d, keepdims: true}", 3, {3, 3, 3}, {1}, 3, {1, 1, 3}, true, {0}, {0}},
	{K_GMP, "{type: global_max_pooling2d}", 3, {1, 1, 6}, {0}, 1, {6}, false, {0}, {0}},
	{K_PAD, "{type: zero_padding2d}", 3, {3, 5, 3}, {1, 1, 1, 1}, 3, {5, 7, 3}, false, {0}, {0}},
	{K_PAD, "{type: zero_padding2d, padding: 2}", 3, {1, 2, 16}, {2, 2, 2, 2}, 3, {5, 6, 16}, false, {0}, {0}},
	{K_PAD, "{type: zero_padding2d, padding: [1, 2, 0, 3]}", 3, {3, 5, 6}, {1, 2, 0, 3}, 3, {6, 8, 6}, false, {0}, {0}},
	{K_PAD, "{type: zero_padding2d, padding: [0, 0, 0, 0]}", 3, {3, 2, 20}, {0, 0, 0, 0}, 3, {3, 2, 20}, false, {0}, {0}},
	{K_CROP, "{type: cropping2d}", 3, {3, 5, 3}, {0, 0, 0, 0}, 3, {3, 5, 3}, false, {0}, {0}},
	{K_CROP, "{type: cropping2d, cropping: 1}", 3, {5, 3, 16}, {1, 1, 1, 1}, 3, {3, 1, 16}, false, {0}, {0}},
	{K_CROP, "{type: cropping2d, cropping: [2, 0, 1, 3]}", 3, {5, 7, 6}, {2, 0, 1, 3}, 3, {3, 3, 6}, false, {0}, {0}},
	{K_CROP, "{type: Cropping2D, cropping: [0, 4, 0, 0]}", 3, {5, 2, 8}, {0, 4, 0, 0}, 3, {1, 2, 8}, false, {0}, {0}},
	{K_UP, "{type: up_sampling2d}", 3, {3, 5, 3}, {2, 2, 0}, 3, {6, 10, 3}, false, {0}, {0}},
	{K_UP, "{type: up_sampling2d, size: [3, 1]}", 3, {2, 3, 16}, {3, 1, 0}, 3, {6, 3, 16}, false, {0}, {0}},
	{K_UP, "{type: up_sampling2d, size: [1, 4], interpolation: nearest}", 3, {3, 2, 20}, {1, 4, 0}, 3,
	 {3, 8, 20}, false, {0}, {0}},
	{K_UP, "{type: up_sampling2d, interpolation: bilinear}", 3, {3, 5, 3}, {2, 2, 1}, 3, {6, 10, 3}, false, {0}, {0}},
	{K_UP, "{type: up_sampling2d, size: [3, 2], interpolation: bilinear}", 3, {4, 3, 16}, {3, 2, 1}, 3,
	 {12, 6, 16}, false, {0}, {0}},
	{K_UP, "{type: up_sampling2d, size: [1, 5], interpolation: bilinear}", 3, {2, 3, 6}, {1, 5, 1}, 3,
	 {2, 15, 6}, false, {0}, {0}},
	{K_UP, "{type: up_sampling2d, size: 4, interpolation: bilinear}", 3, {1, 2, 8}, {4, 4, 1}, 3, {4, 8, 8}, false, {0}, {0}},
	{K_RESHAPE, "{type: reshape, target_shape: [5, 3, 4]}", 3, {3, 4, 5}, {0}, 3, {5, 3, 4}, false, {0}, {0}},
	{K_RESHAPE, "{type: reshape, target_shape: [2, -1, 5]}", 3, {3, 4, 5}, {0}, 3, {2, 6, 5}, false, {0}, {0}},
	{K_RESHAPE, "{type: reshape, target_shape: [-1, 1, 3]}", 1, {21}, {0}, 3, {7, 1, 3}, false, {0}, {0}},
	{K_PERMUTE, "{type: permute, dims: [2, 1, 3]}", 3, {3, 5, 4}, {1, 0, 2}, 3, {5, 3, 4}, false, {0}, {0}},
	{K_PERMUTE, "{type: permute, dims: [3, 1, 2]}", 3, {3, 5, 7}, {2, 0, 1}, 3, {7, 3, 5}, false, {0}, {0}},
	{K_PERMUTE, "{type: permute, dims: [1, 3, 2]}", 3, {2, 3, 5}, {0, 2, 1}, 3, {2, 5, 3}, false, {0}, {0}},
	{K_PERMUTE, "{type: permute, dims: [2, 3, 1]}", 3, {3, 5, 7}, {1, 2, 0}, 3, {5, 7, 3}, false, {0}, {0}},
	{K_PERMUTE, "{type: permute, dims: [3, 2, 1]}", 3, {3, 1, 7}, {2, 1, 0}, 3, {7, 1, 3}, false, {0}, {0}},
	{K_PERMUTE, "{type: permute, dims: [1, 2, 3]}", 3, {3, 4, 5}, {0, 1, 2}, 3, {3, 4, 5}, false, {0}, {0}},
	{K_REPEAT, "{type: repeat_vector, n: 4}", 1, {7}, {4}, 2, {4, 7}, false, {0}, {0}},
	{K_REPEAT, "{type: RepeatVector, n: 1}", 1, {5}, {1}, 2, {1, 5}, false, {0}, {0}},
	{K_REPEAT, "{type: repeat_vector, n: 9}", 1, {1}, {9}, 2, {9, 1}, false, {0}, {0}},
#if ANY_COUNT
	/* the forms a fixed count cannot take */
	{K_PAD, "{type: zero_padding2d, padding: [2, 1]}", 3, {3, 5, 3}, {2, 2, 1, 1}, 3, {7, 7, 3}, false, {0}, {0}},
	{K_CROP, "{type: cropping2d, cropping: [1, 2]}", 3, {5, 7, 3}, {1, 1, 2, 2}, 3, {3, 3, 3}, false, {0}, {0}},
	{K_RESHAPE, "{type: reshape, target_shape: [60]}", 3, {3, 4, 5}, {0}, 1, {60}, false, {0}, {0}},
	{K_RESHAPE, "{type: reshape, target_shape: [-1, 10]}", 3, {3, 4, 5}, {0}, 2, {6, 10}, false, {0}, {0}},
	{K_RESHAPE, "{type: reshape, target_shape: [2, 3, -1, 5]}", 2, {6, 5}, {0}, 4, {2, 3, 1, 5}, false, {0}, {0}},
	{K_PERMUTE, "{type: permute, dims: [1]}", 1, {7}, {0}, 1, {7}, false, {0}, {0}},
	{K_PERMUTE, "{type: permute, dims: [2, 1]}", 2, {3, 7}, {1, 0}, 2, {7, 3}, false, {0}, {0}},
	{K_PERMUTE, "{type: permute, dims: [4, 2, 1, 3]}", 4, {2, 3, 4, 5}, {3, 1, 0, 2}, 4, {5, 3, 2, 4}, false, {0}, {0}},
	/* Keras' Rescaling: one number, or one per channel */
	{K_RESCALE, "{type: rescaling, scale: 0.00392156862745098}", 3, {5, 7, 3}, {0}, 3, {5, 7, 3}, false,
	 {0.00392156862745098f, 0.00392156862745098f, 0.00392156862745098f}, {0}},
	{K_RESCALE, "{type: rescaling, scale: [0.5, -2, 4], offset: [1, 0, -3]}", 3, {3, 5, 3}, {0}, 3, {3, 5, 3}, false,
	 {0.5f, -2.0f, 4.0f}, {1.0f, 0.0f, -3.0f}},
	{K_RESCALE, "{type: Rescaling, scale: 2, offset: -1}", 1, {7}, {0}, 1, {7}, false, {2, 2, 2, 2},
	 {-1, -1, -1, -1}},
	{K_RESCALE, "{type: rescaling, scale: [1.5, -0.5], offset: 0.25}", 2, {3, 2}, {0}, 2, {3, 2}, false,
	 {1.5f, -0.5f}, {0.25f, 0.25f}},
	{K_RESCALE, "{type: rescaling, scale: 3, offset: [0.1, 0.2, 0.3, 0.4]}", 3, {2, 3, 4}, {0}, 3, {2, 3, 4}, false,
	 {3, 3, 3, 3}, {0.1f, 0.2f, 0.3f, 0.4f}},
#endif
};

static size_t elems(const int64_t *d, uint32_t rank)
{
	size_t n = 1;
	for (uint32_t i = 0; i < rank; i++)
		n *= (size_t)d[i];
	return n;
}

/* Row-major index of (i0, ...) in dims. */
static size_t at3(const int64_t *d, int64_t y, int64_t x, int64_t c)
{
	return (size_t)((y * d[1] + x) * d[2] + c);
}

/* TensorFlow's half-pixel source position of output o along an axis of `size` inputs, the two
 * inputs around it (clamped) and the weight of the second; the kernels' float arithmetic. */
static float up_axis(int64_t o, float scale, int64_t size, int64_t *lo, int64_t *hi)
{
	float src = ((float)o + 0.5f) * scale - 0.5f;
	float f = floorf(src);
	*lo = (int64_t)f < 0 ? 0 : (int64_t)f;
	*hi = (int64_t)f + 1 > size - 1 ? size - 1 : (int64_t)f + 1;
	return src - f;
}

/* y = the layer of `lc` applied to one sample x; dx += the adjoint applied to r (dx zeroed by the
 * caller). References in double where the kernels sum in float. */
static void reference(const layer_case *lc, const float *x, const float *r, double *y, double *dx)
{
	const int64_t *d = lc->in, *o = lc->out;
	size_t n_in = elems(d, lc->rank), n_out = elems(o, lc->out_rank);
	switch (lc->k) {
	case K_GAP:
	case K_GMP: {
		int64_t hw = d[0] * d[1], c = d[2];
		for (int64_t ch = 0; ch < c; ch++) {
			if (lc->k == K_GAP) {
				double s = 0.0;
				for (int64_t i = 0; i < hw; i++)
					s += x[i * c + ch];
				y[ch] = s / (double)hw;
				for (int64_t i = 0; i < hw; i++)
					dx[i * c + ch] += r[ch] / (double)hw;
			} else {
				/* The first maximum in row-major order: a later equal value does not win. */
				int64_t best = 0;
				for (int64_t i = 1; i < hw; i++)
					if (x[i * c + ch] > x[best * c + ch])
						best = i;
				y[ch] = x[best * c + ch];
				dx[best * c + ch] += r[ch];
			}
		}
		break;
	}
	case K_PAD:
	case K_CROP: {
		/* Output (oy, ox) holds input (oy - top, ox - left) for padding, (oy + top, ox + left) for
		 * cropping. */
		int64_t sign = lc->k == K_PAD ? -1 : 1;
		for (int64_t oy = 0; oy < o[0]; oy++)
			for (int64_t ox = 0; ox < o[1]; ox++)
				for (int64_t ch = 0; ch < o[2]; ch++) {
					int64_t iy = oy + sign * lc->a[0], ix = ox + sign * lc->a[2];
					bool inside = iy >= 0 && iy < d[0] && ix >= 0 && ix < d[1];
					y[at3(o, oy, ox, ch)] = inside ? x[at3(d, iy, ix, ch)] : 0.0;
					if (inside)
						dx[at3(d, iy, ix, ch)] += r[at3(o, oy, ox, ch)];
				}
		break;
	}
	case K_UP: {
		float scale_h = (float)d[0] / (float)o[0], scale_w = (float)d[1] / (float)o[1];
		for (int64_t oy = 0; oy < o[0]; oy++)
			for (int64_t ox = 0; ox < o[1]; ox++)
				for (int64_t ch = 0; ch < o[2]; ch++) {
					size_t k = at3(o, oy, ox, ch);
					if (!lc->a[2]) {
						size_t i = at3(d, oy / lc->a[0], ox / lc->a[1], ch);
						y[k] = x[i];
						dx[i] += r[k];
						continue;
					}
					int64_t y0, y1, x0, x1;
					double ly = up_axis(oy, scale_h, d[0], &y0, &y1), lx = up_axis(ox, scale_w, d[1], &x0, &x1);
					const int64_t ys[2] = {y0, y1}, xs[2] = {x0, x1};
					const double wy[2] = {1.0 - ly, ly}, wx[2] = {1.0 - lx, lx};
					y[k] = 0.0;
					for (int i = 0; i < 2; i++)
						for (int j = 0; j < 2; j++) {
							y[k] += wy[i] * wx[j] * x[at3(d, ys[i], xs[j], ch)];
							dx[at3(d, ys[i], xs[j], ch)] += wy[i] * wx[j] * r[k];
						}
				}
		break;
	}
	case K_RESHAPE:
		for (size_t i = 0; i < n_in; i++) {
			y[i] = x[i];
			dx[i] += r[i];
		}
		break;
	case K_PERMUTE: {
		/* Output index (j0, ...) reads the input at axis a[i] = j_i. */
		int64_t stride[4];
		stride[lc->rank - 1] = 1;
		for (uint32_t i = lc->rank - 1; i > 0; i--)
			stride[i - 1] = stride[i] * d[i];
		for (size_t k = 0; k < n_out; k++) {
			size_t rest = k, src = 0;
			for (uint32_t i = lc->rank; i-- > 0;) {
				size_t j = rest % (size_t)o[i];
				rest /= (size_t)o[i];
				src += j * (size_t)stride[lc->a[i]];
			}
			y[k] = x[src];
			dx[src] += r[k];
		}
		break;
	}
	case K_RESCALE:
		/* The product rounded to float before the sum, as the kernel and Keras compute it. A
		 * per-channel list has at most 4 numbers; a case of one number repeats it 4 times, so
		 * channel c reads entry c % 4 either way. */
		for (size_t i = 0; i < n_in; i++) {
			size_t c = i % (size_t)d[lc->rank - 1] % 4;
			volatile float product = x[i] * lc->scale[c];
			y[i] = (float)(product + lc->offset[c]);
			dx[i] += (double)(r[i] * lc->scale[c]);
		}
		break;
	case K_REPEAT:
		for (int64_t i = 0; i < lc->a[0]; i++)
			for (int64_t f = 0; f < d[0]; f++) {
				y[i * d[0] + f] = x[f];
				dx[f] += r[i * d[0] + f];
			}
		break;
	}
}

static void model_yaml(char *yaml, size_t size, uint32_t rank, const int64_t *dims, const char *layers)
{
	size_t used = (size_t)snprintf(yaml, size, "name: shape\ninput: {shape: [");
	for (uint32_t i = 0; i < rank; i++)
		used += (size_t)snprintf(yaml + used, size - used, "%s%lld", i ? ", " : "", (long long)dims[i]);
	used += (size_t)snprintf(yaml + used, size - used, "]}\nlayers:\n%s", layers);
	ck_assert_uint_lt(used, size);
}

START_TEST(test_reference)
{
	const layer_case *lc = &cases[_i];
	char yaml[1024], layer[256];
	snprintf(layer, sizeof(layer), "  - %s\n", lc->layer);
	model_yaml(yaml, sizeof(yaml), lc->rank, lc->in, layer);
	const uint32_t batch = 3;
	ts_fd f;
	ts_fd_open(&f, yaml, batch, 0.0f, 900 + (unsigned)_i);

	/* Keras' output shape. */
	const strata_shape *out = &f.net.m->layers[0].out;
	ck_assert_uint_eq(out->rank, lc->out_rank);
	for (uint32_t i = 0; i < lc->out_rank; i++)
		ck_assert_msg(out->dims[i] == lc->out[i], "%s: output axis %u is %lld, Keras gives %lld", lc->layer, i,
		              (long long)out->dims[i], (long long)lc->out[i]);
	ck_assert_uint_eq(f.net.m->layers[0].n_weights, 0);

	size_t n_in = elems(lc->in, lc->rank), n_out = elems(lc->out, lc->out_rank);
	ck_assert_uint_eq(f.in_count, batch * n_in);
	ck_assert_uint_eq(f.out_count, batch * n_out);
	if (lc->ties) {
		/* Three values only: every channel's maximum is held by several pixels. */
		for (size_t i = 0; i < f.in_count; i++)
			f.x[i] = floorf(f.x[i] * 1.5f) * 0.5f;
		ts_tensor_write(f.dev.rt, &f.net.s->input, 0, f.x, f.in_count);
	}
	ts_fd_poison(&f);
	ts_fd_loss(&f);
	float *dx = ts_floats(f.in_count);
	ts_tensor_read(f.dev.rt, ts_fd_backward(&f, true), dx, f.in_count);

	double *y = calloc(n_out, sizeof(*y)), *g = calloc(n_in, sizeof(*g));
	ck_assert(y && g);
	/* Averages, upsampling's gathers and RepeatVector's gradient add floats (the reference adds in
	 * double); every other value is moved, exactly. */
	double tol = lc->k == K_GAP || lc->k == K_UP || lc->k == K_REPEAT ? 1e-5 : 0.0;
	size_t tied = 0;
	for (uint32_t b = 0; b < batch; b++) {
		memset(g, 0, n_in * sizeof(*g));
		reference(lc, f.x + b * n_in, f.r + b * n_out, y, g);
		for (size_t i = 0; i < n_out; i++)
			ck_assert_msg(fabs(f.y[b * n_out + i] - y[i]) <= tol * fmax(1.0, fabs(y[i])),
			              "%s: sample %u y[%zu] = %.9g, want %.9g", lc->layer, b, i, (double)f.y[b * n_out + i], y[i]);
		for (size_t i = 0; i < n_in; i++) {
			float got = dx[b * n_in + i];
			ck_assert_msg(isfinite(got) && fabs(got - g[i]) <= tol * fmax(1.0, fabs(g[i])),
			              "%s: sample %u dx[%zu] = %.9g, want %.9g", lc->layer, b, i, (double)got, g[i]);
		}
		/* The tie cases must tie somewhere: an equal value after the winner that got nothing. */
		if (lc->ties)
			for (size_t i = 0; i < n_in; i++)
				tied += g[i] == 0.0 && f.x[b * n_in + i] == (float)y[i % (size_t)lc->in[2]];
	}
	if (lc->ties)
		ck_assert_msg(tied > 0, "%s: the inputs hold no tied maximum", lc->layer);
	/* A second backward pass writes the same bits: overwritten, not added to; no atomics. */
	float *again = ts_floats(f.in_count);
	ts_tensor_read(f.dev.rt, ts_fd_backward(&f, true), again, f.in_count);
	ck_assert_msg(memcmp(dx, again, f.in_count * sizeof(*dx)) == 0, "%s: a second backward pass differs", lc->layer);
	free(again);
	free(g);
	free(y);
	free(dx);
	ts_fd_close(&f);
}
END_TEST

/* An inference pass gives what the training pass gave (no layer here acts while training). */
START_TEST(test_inference)
{
	const layer_case *lc = &cases[_i];
	char yaml[1024], layer[256];
	snprintf(layer, sizeof(layer), "  - %s\n", lc->layer);
	model_yaml(yaml, sizeof(yaml), lc->rank, lc->in, layer);
	ts_fd f;
	ts_fd_open(&f, yaml, 2, 0.0f, 950 + (unsigned)_i);
	ts_fd_loss(&f);
	float *y = ts_floats(f.out_count);
	strata_error err = {0};
	ck_assert_int_eq(st_session_forward_device(f.net.s, f.batch, false, &err), STRATA_OK);
	ts_tensor_read(f.dev.rt, st_session_output(f.net.s), y, f.out_count);
	ck_assert_msg(memcmp(y, f.y, f.out_count * sizeof(*y)) == 0, "%s: inference differs from training", lc->layer);
	free(y);
	ts_fd_close(&f);
}
END_TEST

/* ---- finite differences through weighted layers ------------------------------------------------- */

/* Each layer between a 1x1 convolution (3 filters) and a dense layer of 4 units, or after a dense
 * layer for RepeatVector: the convolution's gradients pass back through the layer's. */
static const char *const fd_layers[] = {
	"{type: global_average_pooling2d}",
	"{type: global_average_pooling2d, keepdims: true}",
	"{type: global_max_pooling2d}",
	"{type: global_max_pooling2d, keepdims: true}",
	"{type: zero_padding2d, padding: [1, 2, 0, 3]}",
	"{type: zero_padding2d}",
	"{type: cropping2d, cropping: [1, 0, 2, 1]}",
	"{type: up_sampling2d, size: [2, 3]}",
	"{type: up_sampling2d, size: [3, 2], interpolation: bilinear}",
	"{type: up_sampling2d, interpolation: bilinear}",
	"{type: reshape, target_shape: [2, -1, 3]}",
	"{type: permute, dims: [2, 1, 3]}",
	"{type: permute, dims: [3, 1, 2]}",
	"{type: permute, dims: [2, 3, 1]}",
	"{type: repeat_vector, n: 3}",
#if ANY_COUNT
	"{type: zero_padding2d, padding: [1, 2]}",
	"{type: cropping2d, cropping: [1, 1]}",
	"{type: reshape, target_shape: [-1, 6]}",
	"{type: rescaling, scale: [0.5, -2, 3], offset: [1, 0, -1]}",
	"{type: rescaling, scale: -1.5}",
#endif
};

START_TEST(test_finite_differences)
{
	const char *layer = fd_layers[_i];
	bool vector = strstr(layer, "repeat_vector") != NULL;
	char yaml[1024];
	snprintf(yaml, sizeof(yaml),
	         "name: fd\n"
	         "input: {shape: %s}\n"
	         "layers:\n"
	         "  - %s\n"
	         "  - %s\n"
	         "  - {type: flatten}\n"
	         "  - {type: dense, units: 4, activation: tanh}\n",
	         vector ? "[5]" : "[5, 4, 2]",
	         vector ? "{type: dense, units: 3, activation: tanh}"
	                : "{type: conv2d, filters: 3, kernel_size: 1, activation: tanh}",
	         layer);
	ts_fd f;
	ts_fd_open(&f, yaml, 3, 0.0f, 1000 + (unsigned)_i);
	/* A global maximum hands each channel's gradient to one pixel of 20, so the convolution's
	 * bias gradients are small next to the loss's curvature: judged against each tensor's largest
	 * gradient, the curvature alone (a slope difference of h L'') would pass for kinks. The max
	 * layers are judged against max(1, ...) instead, their kinks (a maximum changing hands as a
	 * kernel weight moves) skipped; their exact gradients are test_reference's. */
	bool max = strstr(layer, "max") != NULL;
	ts_fd_tolerance tol = {.max_checks = 60, .nontrivial = 1e-4, .kinks = max, .to_largest = !max};
	ts_fd_check_gradients(&f, &tol);
	ts_fd_close(&f);
}
END_TEST

/* ---- Keras' shapes and parameter counts ----------------------------------------------------------- */

typedef struct keras_layer {
	const char *name, *class_name;
	const char *shape; /* as the summary prints it */
	uint32_t rank;
	int64_t dims[4];
	uint64_t params;
} keras_layer;

/* Conv2D(4, 3x3) on (9, 7, 3) -> ZeroPadding2D(((1, 2), (0, 3))) -> Cropping2D(((2, 1), (1, 1)))
 * -> UpSampling2D((2, 3), bilinear) -> Permute((2, 1, 3)) -> GlobalMaxPooling2D(keepdims) ->
 * Reshape((1, 2, 2)) -> Flatten -> RepeatVector(3) -> Reshape((2, 3, 2)) -> GlobalAveragePooling2D
 * -> Dense(6). Keras: a KxK convolution has K*K*Cin*F + F parameters, a dense layer In*U + U, the
 * shape layers none. */
static const char keras_model[] =
	"name: shapes\n"
	"input: {shape: [9, 7, 3]}\n"
	"layers:\n"
	"  - {type: conv2d, filters: 4, kernel_size: 3}\n"
	"  - {type: zero_padding2d, padding: [1, 2, 0, 3]}\n"
	"  - {type: cropping2d, cropping: [2, 1, 1, 1]}\n"
	"  - {type: up_sampling2d, size: [2, 3], interpolation: bilinear}\n"
	"  - {type: permute, dims: [2, 1, 3]}\n"
	"  - {type: global_max_pooling2d, keepdims: true}\n"
	"  - {type: reshape, target_shape: [1, 2, 2]}\n"
	"  - {type: flatten}\n"
	"  - {type: repeat_vector, n: 3}\n"
	"  - {type: reshape, target_shape: [2, 3, 2]}\n"
	"  - {type: global_average_pooling2d}\n"
	"  - {type: dense, units: 6}\n";

static const keras_layer keras_layers[] = {
	{"conv2d_1", "Conv2D", "(None, 7, 5, 4)", 3, {7, 5, 4}, 3 * 3 * 3 * 4 + 4},
	{"zero_padding2d_1", "ZeroPadding2D", "(None, 10, 8, 4)", 3, {10, 8, 4}, 0},
	{"cropping2d_1", "Cropping2D", "(None, 7, 6, 4)", 3, {7, 6, 4}, 0},
	{"up_sampling2d_1", "UpSampling2D", "(None, 14, 18, 4)", 3, {14, 18, 4}, 0},
	{"permute_1", "Permute", "(None, 18, 14, 4)", 3, {18, 14, 4}, 0},
	{"global_max_pooling2d_1", "GlobalMaxPooling2D", "(None, 1, 1, 4)", 3, {1, 1, 4}, 0},
	{"reshape_1", "Reshape", "(None, 1, 2, 2)", 3, {1, 2, 2}, 0},
	{"flatten_1", "Flatten", "(None, 4)", 1, {4}, 0},
	{"repeat_vector_1", "RepeatVector", "(None, 3, 4)", 2, {3, 4}, 0},
	{"reshape_2", "Reshape", "(None, 2, 3, 2)", 3, {2, 3, 2}, 0},
	{"global_average_pooling2d_1", "GlobalAveragePooling2D", "(None, 2)", 1, {2}, 0},
	{"dense_1", "Dense", "(None, 6)", 1, {6}, 2 * 6 + 6},
};

START_TEST(test_keras_counts)
{
	strata_registry *reg = ts_registry();
	strata_model *m = ts_model(reg, keras_model);
	size_t n = sizeof(keras_layers) / sizeof(keras_layers[0]);
	ck_assert_uint_eq(strata_model_layer_count(m), n);
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);
	ck_assert_ptr_nonnull(f);
	strata_model_print_summary(m, f);
	fclose(f);
	uint64_t total = 0;
	for (size_t i = 0; i < n; i++) {
		const keras_layer *k = &keras_layers[i];
		ck_assert_str_eq(strata_model_layer_name(m, i), k->name);
		ck_assert_str_eq(m->layers[i].type->ops.class_name, k->class_name);
		strata_shape s = strata_model_output_shape(m, i);
		ck_assert_msg(s.rank == k->rank, "%s: rank %u, Keras %u", k->name, s.rank, k->rank);
		for (uint32_t d = 0; d < k->rank; d++)
			ck_assert_msg(s.dims[d] == k->dims[d], "%s: axis %u is %lld, Keras %lld", k->name, d,
			              (long long)s.dims[d], (long long)k->dims[d]);
		ck_assert_msg(strata_model_param_count(m, i) == k->params, "%s: %llu parameters, Keras %llu", k->name,
		              (unsigned long long)strata_model_param_count(m, i), (unsigned long long)k->params);
		total += k->params;
		/* The summary's row: the name, then the shape on the same line (a long "name (Class)"
		 * wraps as Keras wraps it). */
		char row[128];
		snprintf(row, sizeof(row), "\n %s ", k->name);
		const char *at = strstr(text, row);
		ck_assert_msg(at != NULL, "the summary has no row '%s':\n%s", row + 1, text);
		at++;
		const char *eol = strchr(at, '\n');
		const char *shape = strstr(at, k->shape);
		ck_assert_msg(shape && eol && shape < eol, "the summary's row of %s does not show %s:\n%s", k->name,
		              k->shape, text);
	}
	char line[96];
	snprintf(line, sizeof(line), "Trainable params: %llu\n", (unsigned long long)total);
	ck_assert_msg(strstr(text, line), "the summary does not say '%s':\n%s", line, text);
	ck_assert_msg(strstr(text, "Non-trainable params: 0\n"), "%s", text);
	free(text);
	strata_model_free(m);
	strata_registry_close(reg);
}
END_TEST

/* Types, Keras' class names (also accepted as `type:`) and name prefixes. */
START_TEST(test_names)
{
	static const struct {
		const char *type, *class_name, *layer, *shape;
	} names[] = {
		{"global_average_pooling2d", "GlobalAveragePooling2D", "", "[4, 4, 2]"},
		{"global_max_pooling2d", "GlobalMaxPooling2D", "", "[4, 4, 2]"},
		{"zero_padding2d", "ZeroPadding2D", "", "[4, 4, 2]"},
		{"cropping2d", "Cropping2D", "", "[4, 4, 2]"},
		{"up_sampling2d", "UpSampling2D", "", "[4, 4, 2]"},
		{"reshape", "Reshape", ", target_shape: [2, 2, -1]", "[4, 4, 2]"},
		{"permute", "Permute", ", dims: [1, 3, 2]", "[4, 4, 2]"},
		{"repeat_vector", "RepeatVector", ", n: 2", "[5]"},
		{"rescaling", "Rescaling", ", scale: 0.5", "[4, 4, 2]"},
	};
	strata_registry *reg = ts_registry();
	for (size_t t = 0; t < sizeof(names) / sizeof(names[0]); t++) {
		char yaml[512];
		snprintf(yaml, sizeof(yaml),
		         "inputs: [{name: x, shape: %s}]\n"
		         "layers:\n"
		         "  - {type: %s%s, inputs: x}\n"
		         "  - {type: %s%s, inputs: x}\n",
		         names[t].shape, names[t].type, names[t].layer, names[t].class_name, names[t].layer);
		strata_model *m = ts_model(reg, yaml);
		char want[64];
		snprintf(want, sizeof(want), "%s_1", names[t].type);
		ck_assert_str_eq(m->layers[0].name, want);
		snprintf(want, sizeof(want), "%s_2", names[t].type);
		ck_assert_str_eq(m->layers[1].name, want);
		ck_assert_str_eq(m->layers[0].type->ops.class_name, names[t].class_name);
		ck_assert_uint_eq(strata_model_param_count(m, 0), 0);
		strata_model_free(m);
	}
	strata_registry_close(reg);
}
END_TEST

/* ---- refusals ------------------------------------------------------------------------------------ */

typedef struct refusal_case {
	const char *input;   /* the input's shape */
	const char *layer;   /* the layer's YAML, on line 4 of the file */
	const char *at;      /* where in that line the message points: "{" (the layer) or a value's text */
	const char *says[2]; /* parts of the message */
} refusal_case;

static const refusal_case refusals[] = {
	{"[3, 4, 5]", "{type: reshape, target_shape: [4, 5, 4]}", "[4, 5, 4]",
	 {"target_shape (4, 5, 4) holds 80 values, the (3, 4, 5) input 60"}},
	{"[3, 4, 5]", "{type: reshape, target_shape: [-1, -1, 5]}", "[-1",
	 {"target_shape (-1, -1, 5) has more than one -1"}},
	{"[3, 4, 5]", "{type: reshape, target_shape: [-1, 7, 1]}", "[-1",
	 {"cannot hold the 60 values of the (3, 4, 5) input", "not a multiple of 7"}},
	{"[3, 4, 5]", "{type: reshape, target_shape: [0, 6, 10]}", "[0", {"has size 0"}},
	{"[3, 4, 5]", "{type: reshape, target_shape: [-2, 6, 10]}", "-2", {"'target_shape'"}},
	{"[3, 4, 5]", "{type: reshape}", "{", {"missing required parameter 'target_shape'"}},
	{"[3, 4, 5]", "{type: permute, dims: [1, 1, 2]}", "[1", {"dims (1, 1, 2) is not a permutation of 1 to 3",
	                                                         "it repeats axis 1"}},
	{"[3, 4, 5]", "{type: permute, dims: [1, 2, 4]}", "[1", {"not a permutation of 1 to 3", "there is no axis 4"}},
	{"[3, 4, 5]", "{type: permute, dims: [1, 2, 5]}", "5", {"'dims'"}},
	{"[12]", "{type: permute, dims: [1, 2, 3]}", "[1", {"dims (1, 2, 3) names 3 axes, the (12) input has 1"}},
	{"[5, 4, 3]", "{type: cropping2d, cropping: [3, 2, 0, 0]}", "[3",
	 {"cropping 3 + 2 rows and 0 + 0 columns leaves nothing of the (5, 4, 3) input"}},
	{"[5, 4, 3]", "{type: cropping2d, cropping: [0, 0, 1, 3]}", "[0", {"leaves nothing of the (5, 4, 3) input"}},
	{"[5, 4, 3]", "{type: cropping2d, cropping: 2}", "2", {"cropping 2 + 2 rows and 2 + 2 columns leaves nothing"}},
	{"[5, 4, 3]", "{type: zero_padding2d, padding: -1}", "-1", {"'padding'"}},
	{"[5, 4, 3]", "{type: zero_padding2d, padding: [1, 2, 3]}", "[1", {"'padding'"}},
	{"[12]", "{type: global_average_pooling2d}", "{",
	 {"GlobalAveragePooling2D needs a (height, width, channels) input, got (12)"}},
	{"[4, 3]", "{type: global_max_pooling2d}", "{", {"GlobalMaxPooling2D needs a (height, width, channels) input"}},
	{"[5, 4, 3]", "{type: global_max_pooling2d, keepdims: 3}", "3", {"'keepdims'"}},
	{"[5, 4, 3]", "{type: global_average_pooling2d, data_format: channels_first}", "channels_first",
	 {"'data_format' is a Keras parameter Strata leaves out", "only channels_last is accepted"}},
	{"[12]", "{type: zero_padding2d}", "{", {"ZeroPadding2D needs a (height, width, channels) input"}},
	{"[5, 4, 3]", "{type: zero_padding2d, data_format: channels_first}", "channels_first", {"leaves out"}},
	{"[12]", "{type: cropping2d}", "{", {"Cropping2D needs a (height, width, channels) input"}},
	{"[12]", "{type: up_sampling2d}", "{", {"UpSampling2D needs a (height, width, channels) input, got (12)"}},
	{"[5, 4, 3]", "{type: up_sampling2d, interpolation: bicubic}", "bicubic",
	 {"'interpolation' must be one of nearest, bilinear"}},
	{"[5, 4, 3]", "{type: up_sampling2d, size: 0}", "0", {"'size'"}},
	{"[5, 4, 3]", "{type: up_sampling2d, data_format: channels_first}", "channels_first", {"leaves out"}},
	{"[5, 4, 3]", "{type: up_sampling2d, size: [100000, 100000]}", "{", {"is too large"}},
	{"[5, 4, 3]", "{type: repeat_vector, n: 2}", "{", {"RepeatVector needs a (features) input, got (5, 4, 3)"}},
	{"[5]", "{type: repeat_vector, n: 0}", "0", {"'n'"}},
	{"[5]", "{type: repeat_vector}", "{", {"missing required parameter 'n'"}},
#if ANY_COUNT
	{"[3, 4, 5]", "{type: reshape, target_shape: [4, 16]}", "[4", {"target_shape (4, 16) holds 64 values"}},
	{"[3, 4, 5]", "{type: permute, dims: [2, 1]}", "[2", {"dims (2, 1) names 2 axes, the (3, 4, 5) input has 3"}},
	{"[5, 4, 3]", "{type: zero_padding2d, padding: [1, 2, 3]}", "[1", {"'padding' takes an int (every side)",
	                                                                    "got 3 integers"}},
	{"[5, 4, 3]", "{type: cropping2d, cropping: [3, 1]}", "[3",
	 {"cropping 3 + 3 rows and 1 + 1 columns leaves nothing"}},
	{"[5, 4, 3]", "{type: rescaling, scale: [1, 2]}", "[1",
	 {"scale has 2 numbers; it takes one, or one per channel (the input's last axis has 3)"}},
	{"[5, 4, 3]", "{type: rescaling, scale: 1, offset: [1, 2, 3, 4]}", "[1", {"offset has 4 numbers"}},
	{"[5, 4, 3]", "{type: rescaling, scale: [1, 2, 3, 4, 5]}", "[1", {"'scale' must be a number or a list of 1 to 4"}},
	{"[5, 4, 3]", "{type: rescaling, scale: 1e39}", "1e39", {"not a finite float"}},
	{"[5, 4, 3]", "{type: rescaling}", "{", {"missing required parameter 'scale'"}},
#endif
};

START_TEST(test_refusals)
{
	const refusal_case *rc = &refusals[_i];
	char yaml[512], line[256], where[96];
	snprintf(line, sizeof(line), "  - %s", rc->layer);
	snprintf(yaml, sizeof(yaml), "name: bad\ninput: {shape: %s}\nlayers:\n%s\n", rc->input, line);
	/* A value is after the type, past the line's first comma; "{" is the layer itself. */
	const char *at = strcmp(rc->at, "{") == 0 ? strstr(line, "{") : strstr(strchr(line, ','), rc->at);
	ck_assert_ptr_nonnull(at);
	snprintf(where, sizeof(where), "shape.yaml:4:%d: ", (int)(at - line) + 1);
	strata_registry *reg = ts_registry();
	strata_model *m = NULL;
	strata_error err = {0};
	strata_status st = strata_model_load_string(reg, yaml, strlen(yaml), "shape.yaml", NULL, &m, &err);
	ck_assert_msg(st == STRATA_ERR_INVALID || st == STRATA_ERR_OVERFLOW, "%s: status %s: %s", rc->layer,
	              strata_status_name(st), err.message);
	ck_assert_ptr_null(m);
	ck_assert_msg(strncmp(err.message, where, strlen(where)) == 0, "'%s' does not start with '%s'", err.message,
	              where);
	for (size_t k = 0; k < 2 && rc->says[k]; k++)
		ck_assert_msg(strstr(err.message, rc->says[k]), "'%s' does not say '%s'", err.message, rc->says[k]);
	strata_registry_close(reg);
}
END_TEST

static Suite *shape_layers_suite(void)
{
	Suite *s = suite_create("shape_layers");
	TCase *ref = tcase_create("reference");
	tcase_add_loop_test(ref, test_reference, 0, (int)(sizeof(cases) / sizeof(cases[0])));
	tcase_add_loop_test(ref, test_inference, 0, (int)(sizeof(cases) / sizeof(cases[0])));
	suite_add_tcase(s, ref);

	TCase *fd = tcase_create("finite_differences");
	tcase_add_loop_test(fd, test_finite_differences, 0, (int)(sizeof(fd_layers) / sizeof(fd_layers[0])));
	suite_add_tcase(s, fd);

	TCase *model = tcase_create("model");
	tcase_add_test(model, test_keras_counts);
	tcase_add_test(model, test_names);
	tcase_add_loop_test(model, test_refusals, 0, (int)(sizeof(refusals) / sizeof(refusals[0])));
	suite_add_tcase(s, model);
	return s;
}

int main(void)
{
	return ts_run(shape_layers_suite());
}
