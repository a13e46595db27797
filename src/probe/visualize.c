/* Filter visualization by activation maximization, after Keras' example
 * conv_filter_visualization.py: gradient ascent on the input image of a filter's mean activation.
 * One sample per filter, so a batch climbs many filters at once; samples never interact in an
 * inference pass, so each one's input gradient is its own filter's. */
#include "probe/visualize.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "train/dataset.h"
#include "base/error.h"
#include "io/idx.h"
#include "io/image_write.h"
#include "base/initializers.h"
#include "exec/session.h"

/* Keras: input_img_data = random((1, H, W, C)) * 20 + 128, in pixel levels. */
#define NOISE_BASE 128.0
#define NOISE_RANGE 20.0
/* Keras: grads / (sqrt(mean(square(grads))) + 1e-5), then input_img_data += grads * step. */
#define RMS_EPSILON 1e-5
#define STEP_SIZE 1.0f
#define DEPROCESS_EPSILON 1e-5

/* How the model sees pixel levels p: x = (p * scale - mean) * inv_std per input value, as the
 * data set prepares its samples; the ascent runs on p, as Keras' runs on its pixel image. */
typedef struct pixel_map {
	float scale;
	const float *mean, *inv_std; /* NULL without standardization */
} pixel_map;

/* The buffers of one batch of filters climbing together. */
typedef struct ascent {
	strata_session *s;
	size_t layer;
	uint64_t in_elems, out_elems;
	uint32_t channels; /* of the layer's output: its last axis */
	uint64_t spatial;  /* positions per channel */
	pixel_map map;
	float *p;  /* batch x in_elems: the images, in pixel levels */
	float *x;  /* the same as the model sees them */
	float *y;  /* batch x out_elems: the layer's output */
	float *dy; /* d(sum over samples of their filter's mean activation)/dy */
	float *g;  /* batch x in_elems: dActivation/dInput */
	float *acts; /* batch: the filters' mean activations */
} ascent;

/* Each filter draws its noise from its own stream, so its image does not depend on the batch
 * it was climbed in. */
static void start_noise(float *p, uint64_t in_elems, uint32_t first, uint32_t n, uint64_t seed)
{
	for (uint32_t i = 0; i < n; i++) {
		st_rng rng;
		st_rng_seed(&rng, seed, (0x56495355414cull << 16) ^ (first + i));
		for (uint64_t k = 0; k < in_elems; k++)
			p[i * in_elems + k] = (float)(st_rng_uniform(&rng) * NOISE_RANGE + NOISE_BASE);
	}
}

static void to_model(const pixel_map *map, const float *p, float *x, uint32_t n, uint64_t in_elems)
{
	for (uint32_t i = 0; i < n; i++)
		for (uint64_t k = 0; k < in_elems; k++) {
			float v = p[i * in_elems + k] * map->scale;
			x[i * in_elems + k] = map->mean ? (v - map->mean[k]) * map->inv_std[k] : v;
		}
}

/* Mean activation of filter first + i in sample i, for the images as they are now. */
static strata_status measure(ascent *a, uint32_t first, uint32_t n, strata_error *err)
{
	strata_session *s = a->s;
	strata_status st;
	to_model(&a->map, a->p, a->x, n, a->in_elems);
	if ((st = st_tensor_write_prefix(s->rt, s->pool_mode, &s->input, a->x, a->in_elems * n, &s->staging, err)) ||
	    (st = st_session_forward_layers(s, n, false, a->layer + 1, err)) ||
	    (st = st_tensor_read(s->rt, st_session_layer_output(s, a->layer + 1), 0, a->y,
	                         a->out_elems * n * sizeof(float), err)))
		return st;
	for (uint32_t i = 0; i < n; i++) {
		const float *y = a->y + i * a->out_elems + first + i;
		double sum = 0.0;
		for (uint64_t k = 0; k < a->spatial; k++)
			sum += y[k * a->channels];
		a->acts[i] = (float)(sum / (double)a->spatial);
	}
	return STRATA_OK;
}

/* One step up, from the forward pass measure() just ran. */
static strata_status climb(ascent *a, uint32_t first, uint32_t n, strata_error *err)
{
	strata_session *s = a->s;
	strata_tensor *dx = NULL;
	strata_status st;
	memset(a->dy, 0, a->out_elems * n * sizeof(float));
	for (uint32_t i = 0; i < n; i++)
		for (uint64_t k = 0; k < a->spatial; k++)
			a->dy[i * a->out_elems + k * a->channels + first + i] = (float)(1.0 / (double)a->spatial);
	/* The backward pass may overwrite its gradient in place: written afresh every step. */
	if ((st = st_tensor_write_prefix(s->rt, s->pool_mode, st_session_layer_grad(s, a->layer), a->dy, a->out_elems * n,
	                                 &s->staging, err)) ||
	    (st = st_session_backward_from(s, n, a->layer, false, &dx, err)) ||
	    (st = st_tensor_read(s->rt, dx, 0, a->g, a->in_elems * n * sizeof(float), err)))
		return st;
	for (uint32_t i = 0; i < n; i++) {
		float *g = a->g + i * a->in_elems, *p = a->p + i * a->in_elems;
		double sq = 0.0;
		for (uint64_t k = 0; k < a->in_elems; k++) {
			/* Into pixel levels: dx/dp = scale * inv_std. */
			g[k] *= a->map.scale * (a->map.inv_std ? a->map.inv_std[k] : 1.0f);
			sq += (double)g[k] * g[k];
		}
		float step = (float)(STEP_SIZE / (sqrt(sq / (double)a->in_elems) + RMS_EPSILON));
		for (uint64_t k = 0; k < a->in_elems; k++)
			p[k] += g[k] * step;
	}
	return STRATA_OK;
}

/* Lower in the ranking: a lower activation, or the same one from a later filter. */
static bool ranks_below(const strata_filter_image *a, const strata_filter_image *b)
{
	return a->activation < b->activation || (a->activation == b->activation && a->filter > b->filter);
}

static int by_rank(const void *pa, const void *pb)
{
	const strata_filter_image *a = pa, *b = pb;
	return ranks_below(a, b) ? 1 : ranks_below(b, a) ? -1 : 0;
}

/* Offers the batch's active filters to the images kept so far (at most `cap`). */
static strata_status offer(strata_visualize_result *r, uint32_t cap, const ascent *a, uint32_t first,
                           uint32_t n, strata_error *err)
{
	size_t bytes = a->in_elems * sizeof(float);
	for (uint32_t i = 0; i < n; i++) {
		strata_filter_image cand = {
			.filter = first + i,
			.activation = r->activations[(size_t)(first + i) * ((size_t)r->steps + 1) + r->steps],
		};
		if (!(cand.activation > 0.0f))
			continue;
		r->active++;
		strata_filter_image *slot;
		if (r->kept < cap) {
			slot = &r->images[r->kept];
			if (!(slot->pixels = malloc(bytes)))
				return st_fail(err, STRATA_ERR_NO_MEMORY, "out of memory for the filter images");
			r->kept++;
		} else {
			slot = &r->images[0];
			for (uint32_t k = 1; k < r->kept; k++)
				if (ranks_below(&r->images[k], slot))
					slot = &r->images[k];
			if (!ranks_below(slot, &cand))
				continue;
		}
		slot->filter = cand.filter;
		slot->activation = cand.activation;
		memcpy(slot->pixels, a->p + i * a->in_elems, bytes);
	}
	return STRATA_OK;
}

static void image_shape(const strata_shape *in, strata_visualize_result *r)
{
	r->height = in->rank >= 2 ? (uint32_t)in->dims[0] : 1;
	r->width = (uint32_t)in->dims[in->rank >= 2 ? 1 : 0];
	r->channels = 1;
	for (uint32_t d = 2; d < in->rank; d++)
		r->channels *= (uint32_t)in->dims[d];
}

static strata_status check_options(strata_session *s, const strata_visualize_options *o, uint32_t *filters,
                                   strata_error *err)
{
	strata_model *m = s->model;
	if (o->layer >= m->n_layers)
		return st_fail(err, STRATA_ERR_NOT_FOUND, "no layer %zu: the model has %zu", o->layer, m->n_layers);
	if (m->n_inputs != 1)
		return st_fail(err, STRATA_ERR_UNSUPPORTED, "%s has %zu inputs; visualize draws one", m->name,
		               m->n_inputs);
	if (m->input.rank == 0)
		return st_fail(err, STRATA_ERR_INVALID, "the model's input has no shape to draw");
	const strata_shape *out = &m->layers[o->layer].out;
	uint32_t channels = out->rank ? (uint32_t)out->dims[out->rank - 1] : 1;
	*filters = o->filters ? o->filters : channels;
	if (*filters > channels)
		return st_fail(err, STRATA_ERR_INVALID, "%s has %u filters (its output's last axis), %u asked",
		               m->layers[o->layer].name, channels, o->filters);
	if (o->reference)
		return st_idx_check_fit(o->reference->feeds[0].path, "the reference data", o->reference->feeds[0].sample_dims,
		                        o->reference->feeds[0].sample_rank, &m->input, err);
	return STRATA_OK;
}

static void free_ascent(ascent *a)
{
	free(a->p);
	free(a->x);
	free(a->y);
	free(a->dy);
	free(a->g);
	free(a->acts);
}

strata_status strata_visualize(strata_session *s, const strata_visualize_options *options,
                               strata_visualize_result *r, strata_error *err)
{
	strata_visualize_options o = {.size = sizeof(o)};
	memcpy(&o, options, options->size < sizeof(o) ? options->size : sizeof(o));
	memset(r, 0, sizeof(*r));
	strata_model *m = s->model;
	uint32_t filters = 0;
	strata_status st;
	if ((st = check_options(s, &o, &filters, err)) || (st = st_session_enable_training(s, err)))
		return st;
	const strata_shape *out = &m->layers[o.layer].out;
	ascent a = {
		.s = s,
		.layer = o.layer,
		.in_elems = st_shape_elems(&m->input),
		.out_elems = st_shape_elems(out),
		.channels = out->rank ? (uint32_t)out->dims[out->rank - 1] : 1,
		.map = {.scale = o.scale > 0 ? (float)o.scale : 1.0f},
	};
	a.spatial = a.out_elems / a.channels;
	if (o.reference) {
		a.map.scale = o.reference->scale;
		if (o.reference->feeds[0].mean) {
			a.map.mean = o.reference->feeds[0].mean;
			a.map.inv_std = o.reference->feeds[0].inv_std;
		}
	}
	uint32_t batch = o.batch_size && o.batch_size < s->max_batch ? o.batch_size : s->max_batch;
	batch = filters < batch ? filters : batch;
	uint32_t cap = o.keep && o.keep < filters ? o.keep : filters;
	image_shape(&m->input, r);
	r->filters = filters;
	r->steps = o.steps;
	a.p = malloc(a.in_elems * batch * sizeof(float));
	a.x = malloc(a.in_elems * batch * sizeof(float));
	a.g = malloc(a.in_elems * batch * sizeof(float));
	a.y = malloc(a.out_elems * batch * sizeof(float));
	a.dy = malloc(a.out_elems * batch * sizeof(float));
	a.acts = malloc(batch * sizeof(float));
	r->activations = malloc((size_t)filters * ((size_t)o.steps + 1) * sizeof(float));
	r->images = calloc(cap, sizeof(*r->images));
	if (!a.p || !a.x || !a.g || !a.y || !a.dy || !a.acts || !r->activations || !r->images) {
		st = st_fail(err, STRATA_ERR_NO_MEMORY, "out of memory for %u filter images", batch);
		goto out_free;
	}
	for (uint32_t first = 0; first < filters && !st; first += batch) {
		uint32_t n = filters - first < batch ? filters - first : batch;
		start_noise(a.p, a.in_elems, first, n, o.seed);
		for (uint32_t k = 0; k <= o.steps; k++) {
			if ((st = measure(&a, first, n, err)))
				break;
			for (uint32_t i = 0; i < n; i++)
				r->activations[(size_t)(first + i) * ((size_t)o.steps + 1) + k] = a.acts[i];
			if (k == o.steps || (st = climb(&a, first, n, err)))
				break;
		}
		if (!st)
			st = offer(r, cap, &a, first, n, err);
	}
	if (!st)
		qsort(r->images, r->kept, sizeof(*r->images), by_rank);
out_free:
	free_ascent(&a);
	return st;
}

void strata_visualize_result_free(strata_visualize_result *r)
{
	if (!r)
		return;
	for (uint32_t i = 0; r->images && i < r->kept; i++)
		free(r->images[i].pixels);
	free(r->images);
	free(r->activations);
	memset(r, 0, sizeof(*r));
}

void st_deprocess(const float *x, size_t n, uint8_t *out)
{
	double sum = 0.0, sq = 0.0;
	for (size_t i = 0; i < n; i++)
		sum += x[i];
	double mean = n ? sum / (double)n : 0.0;
	for (size_t i = 0; i < n; i++)
		sq += (x[i] - mean) * (x[i] - mean);
	double std = n ? sqrt(sq / (double)n) : 0.0;
	for (size_t i = 0; i < n; i++) {
		double v = (x[i] - mean) / (std + DEPROCESS_EPSILON) * 0.1 + 0.5;
		v = v < 0.0 ? 0.0 : v > 1.0 ? 1.0 : v;
		out[i] = (uint8_t)(v * 255.0);
	}
}

strata_status st_filter_grid(const strata_visualize_result *r, uint32_t grid, uint8_t **out, uint32_t *width,
                             uint32_t *height, strata_error *err)
{
	*out = NULL;
	if (grid == 0)
		return st_fail(err, STRATA_ERR_INVALID, "a grid of 0 x 0 images");
	if (r->channels != 1 && r->channels != 3)
		return st_fail(err, STRATA_ERR_UNSUPPORTED,
		               "inputs of %u channels cannot be drawn: only gray (1) and RGB (3)", r->channels);
	uint64_t w = (uint64_t)grid * r->width + (uint64_t)(grid - 1) * ST_GRID_MARGIN;
	uint64_t h = (uint64_t)grid * r->height + (uint64_t)(grid - 1) * ST_GRID_MARGIN;
	if (w > UINT32_MAX || h > UINT32_MAX || w * h > SIZE_MAX / r->channels)
		return st_fail(err, STRATA_ERR_OVERFLOW, "a grid of %u x %u images is too large", grid, grid);
	size_t cell = (size_t)r->width * r->height * r->channels, row_bytes = (size_t)w * r->channels;
	uint8_t *pixels = calloc((size_t)(w * h), r->channels);
	uint8_t *img = malloc(cell ? cell : 1);
	if (!pixels || !img) {
		free(pixels);
		free(img);
		return st_fail(err, STRATA_ERR_NO_MEMORY, "out of memory for a grid of %u x %u images", grid, grid);
	}
	uint64_t cells = (uint64_t)grid * grid;
	for (uint32_t idx = 0; idx < r->kept && idx < cells; idx++) {
		st_deprocess(r->images[idx].pixels, cell, img);
		size_t top = (size_t)(idx / grid) * (r->height + ST_GRID_MARGIN);
		size_t left = (size_t)(idx % grid) * (r->width + ST_GRID_MARGIN);
		for (uint32_t y = 0; y < r->height; y++)
			memcpy(pixels + (top + y) * row_bytes + left * r->channels,
			       img + (size_t)y * r->width * r->channels, (size_t)r->width * r->channels);
	}
	free(img);
	*out = pixels;
	*width = (uint32_t)w;
	*height = (uint32_t)h;
	return STRATA_OK;
}

strata_status strata_visualize_save_png(const strata_visualize_result *r, uint32_t grid, const char *path,
                                        strata_error *err)
{
	uint8_t *pixels = NULL;
	uint32_t w = 0, h = 0;
	strata_status st = st_filter_grid(r, grid, &pixels, &w, &h, err);
	if (st)
		return st;
	st = st_image_write_png(path, pixels, w, h, r->channels, err);
	free(pixels);
	return st;
}
