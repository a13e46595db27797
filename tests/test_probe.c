/* Probing layers: the ranged forward and backward passes, dropout's inference-mode derivative,
 * filter visualization (strata_visualize and its PNG grid) and layer features (strata_embed). */
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "support.h"

#include "io/image.h"
#include "model/model.h"
#include "device/runtime.h"
#include "exec/host_api.h"
#include "exec/session.h"
#include "probe/visualize.h"

/* 28 x 28 gray inputs; layers 0 conv2d_1, 1 max_pooling2d_1, 2 dropout_1, 3 flatten_1, 4 dense_1. */
static const char *const conv_yaml = "input: {shape: [28, 28, 1]}\n"
                                     "layers:\n"
                                     "  - {type: conv2d, filters: 6, kernel_size: 3, activation: relu}\n"
                                     "  - {type: maxpool2d}\n"
                                     "  - {type: dropout, rate: 0.5}\n"
                                     "  - {type: flatten}\n"
                                     "  - {type: dense, units: 5, activation: softmax}\n";
enum { CONV = 0, FLAT = 3, DENSE = 4, FILTERS = 6, UNITS = 5 };

/* A net (weights from seed 7) on a device of its own, and a folder for the files it writes. */
typedef struct probe {
	ts_device dev;
	ts_net net;
	char dir[256];
} probe;

static void probe_open(probe *p, const char *yaml, uint32_t max_batch)
{
	ts_tmpdir_make(p->dir, sizeof(p->dir), "probe");
	p->dev = ts_device_open();
	p->net = ts_net_open(&p->dev, yaml, max_batch, 7);
}

static void probe_close(probe *p)
{
	ts_net_close(&p->net);
	ts_device_close(&p->dev);
	ts_tmpdir_remove(p->dir);
}

static char *probe_path(const probe *p, const char *name)
{
	return ts_join(p->dir, name);
}

static float *floats(size_t n)
{
	float *f = calloc(n ? n : 1, sizeof(float));
	ck_assert_ptr_nonnull(f);
	return f;
}

/* conv2d_1's filters: the ones in `dead` get a zero kernel and a bias of -1 (no input reaches
 * them: their relu output is 0 everywhere, and so is its gradient); the others a kernel mostly
 * positive, so gray noise excites them. */
static void set_conv_filters(probe *p, unsigned dead_mask)
{
	float kernel[3 * 3 * 1 * FILTERS], bias[FILTERS];
	ts_fill_random(kernel, sizeof(kernel) / sizeof(kernel[0]), 11, -0.2f, 0.6f);
	for (int f = 0; f < FILTERS; f++) {
		bias[f] = dead_mask & (1u << f) ? -1.0f : 0.0f;
		for (int k = 0; dead_mask & (1u << f) && k < 9; k++)
			kernel[k * FILTERS + f] = 0.0f;
	}
	strata_error err = {0};
	ck_assert_msg(strata_session_write_weight(p->net.s, CONV, 0, kernel, 9 * FILTERS, &err) == STRATA_OK, "%s",
	              err.message);
	ck_assert_msg(strata_session_write_weight(p->net.s, CONV, 1, bias, FILTERS, &err) == STRATA_OK, "%s",
	              err.message);
}

static void visualize(probe *p, strata_visualize_options o, strata_visualize_result *r)
{
	o.size = sizeof(o);
	if (!o.scale)
		o.scale = 1.0 / 255;
	strata_error err = {0};
	strata_status st = strata_visualize(p->net.s, &o, r, &err);
	ck_assert_msg(st == STRATA_OK, "visualize: %s", err.message);
}

static float act_at(const strata_visualize_result *r, uint32_t filter, uint32_t step)
{
	return r->activations[(size_t)filter * (r->steps + 1) + step];
}

/* ---- ranged passes and dropout ---------------------------------------------------------------- */

/* The layout of strata_backward_args before `training` existed: a host built then writes this
 * size, and the new field must lie past it, not in its tail padding. */
struct backward_args_v1 {
	uint32_t size;
	uint32_t batch;
	uint64_t seed, step;
	strata_tensor *input, *output, *grad_output, *grad_input;
	bool activation_folded;
};
_Static_assert(offsetof(strata_backward_args, training) >= sizeof(struct backward_args_v1),
               "strata_backward_args.training must start past the first layout's size");

START_TEST(test_dropout_backward_follows_the_pass)
{
	probe p;
	probe_open(&p, "input: {shape: [64]}\nlayers:\n  - {type: dropout, rate: 0.5}\n", 4);
	strata_error err = {0};
	ck_assert_msg(st_session_enable_training(p.net.s, &err) == STRATA_OK, "%s", err.message);
	enum { N = 4 * 64 };
	float x[N], r[N], dx[N];
	ts_fill_random(x, N, 1, 1.0f, 2.0f);
	ts_fill_random(r, N, 2, 1.0f, 2.0f);
	strata_tensor *dx_t = NULL;
	p.net.s->step = 3;

	/* Inference: the forward pass copies, so the derivative is the identity. */
	ck_assert(st_tensor_write(p.dev.rt, &p.net.s->input, 0, x, sizeof(x), &err) == STRATA_OK);
	ck_assert(st_session_forward_layers(p.net.s, 4, false, 1, &err) == STRATA_OK);
	ck_assert(st_tensor_write(p.dev.rt, st_session_output_grad(p.net.s), 0, r, sizeof(r), &err) == STRATA_OK);
	ck_assert_msg(st_session_backward_from(p.net.s, 4, 0, false, &dx_t, &err) == STRATA_OK, "%s", err.message);
	ck_assert(st_tensor_read(p.dev.rt, dx_t, 0, dx, sizeof(dx), &err) == STRATA_OK);
	for (int i = 0; i < N; i++)
		ck_assert_msg(dx[i] == r[i], "inference derivative at %d: %g, expected %g", i, dx[i], r[i]);

	/* Training: the forward pass's mask, scaled by 2. */
	ck_assert(st_session_forward_layers(p.net.s, 4, true, 1, &err) == STRATA_OK);
	float y[N];
	ck_assert(st_tensor_read(p.dev.rt, st_session_output(p.net.s), 0, y, sizeof(y), &err) == STRATA_OK);
	ck_assert(st_tensor_write(p.dev.rt, st_session_output_grad(p.net.s), 0, r, sizeof(r), &err) == STRATA_OK);
	ck_assert(st_session_backward_from(p.net.s, 4, 0, true, &dx_t, &err) == STRATA_OK);
	ck_assert(st_tensor_read(p.dev.rt, dx_t, 0, dx, sizeof(dx), &err) == STRATA_OK);
	int dropped = 0;
	for (int i = 0; i < N; i++) {
		float expect = y[i] == 0.0f ? 0.0f : 2.0f * r[i];
		ck_assert_msg(fabsf(dx[i] - expect) <= 1e-6f * fabsf(expect),
		              "training derivative at %d: %g, expected %g", i, dx[i], expect);
		dropped += y[i] == 0.0f;
	}
	ck_assert_msg(dropped > N / 4 && dropped < 3 * N / 4, "%d of %d dropped", dropped, N);

	/* A host older than the field: a training pass, whatever the bytes past its size hold. */
	strata_layer *layer = &p.net.m->layers[0];
	strata_tensor *gi = &p.net.s->grad_slots[1];
	ck_assert(st_tensor_write(p.dev.rt, &p.net.s->grad_slots[0], 0, r, sizeof(r), &err) == STRATA_OK);
	strata_backward_args old = {
		.size = (uint32_t)sizeof(struct backward_args_v1),
		.batch = 4,
		.seed = p.net.s->seed,
		.step = p.net.s->step,
		.input = &p.net.s->input,
		.output = &p.net.s->binds[0].output,
		.grad_output = &p.net.s->grad_slots[0],
		.grad_input = gi,
		.training = false,
	};
	layer->err = &err;
	ck_assert(layer->type->ops.backward(layer, &st_host_api, &old) == STRATA_OK);
	layer->err = NULL;
	float old_dx[N];
	ck_assert(st_tensor_read(p.dev.rt, gi, 0, old_dx, sizeof(old_dx), &err) == STRATA_OK);
	ck_assert_msg(memcmp(old_dx, dx, sizeof(dx)) == 0, "an old host's backward pass is not the training one");
	probe_close(&p);
}
END_TEST

/* The first layer of a two-layer model is its own one-layer model (the same seed gives it the
 * same weights): forward_to and backward_from on the first layer match that model's full passes. */
START_TEST(test_ranged_passes_match_a_shorter_model)
{
	probe a, b;
	probe_open(&a, "input: {shape: [7]}\nlayers:\n  - {type: dense, units: 5, activation: tanh}\n"
	               "  - {type: dense, units: 3, activation: sigmoid}\n", 3);
	probe_open(&b, "input: {shape: [7]}\nlayers:\n  - {type: dense, units: 5, activation: tanh}\n", 3);
	strata_error err = {0};
	float x[21], r[15], ya[15], yb[15], da[21], db[21];
	ts_fill_random(x, 21, 3, -1.0f, 1.0f);
	ts_fill_random(r, 15, 4, -1.0f, 1.0f);
	ck_assert_msg(strata_session_forward_to(a.net.s, x, 3, 0, ya, &err) == STRATA_OK, "%s", err.message);
	ck_assert(strata_session_forward(b.net.s, x, 3, yb, &err) == STRATA_OK);
	for (int i = 0; i < 15; i++)
		ck_assert_msg(fabsf(ya[i] - yb[i]) <= 1e-6f, "output %d: %g vs %g", i, ya[i], yb[i]);
	ck_assert_int_eq(strata_session_forward_to(a.net.s, x, 3, 2, ya, &err), STRATA_ERR_NOT_FOUND);

	strata_tensor *dx = NULL;
	probe *both[2] = {&a, &b};
	float *into[2] = {da, db};
	for (int k = 0; k < 2; k++) {
		strata_session *s = both[k]->net.s;
		ck_assert_msg(st_session_enable_training(s, &err) == STRATA_OK, "%s", err.message);
		ck_assert(st_tensor_write(s->rt, &s->input, 0, x, sizeof(x), &err) == STRATA_OK);
		ck_assert(st_session_forward_layers(s, 3, false, 1, &err) == STRATA_OK);
		ck_assert(st_tensor_write(s->rt, st_session_layer_grad(s, 0), 0, r, sizeof(r), &err) == STRATA_OK);
		strata_status st = k == 0 ? st_session_backward_from(s, 3, 0, false, &dx, &err)
		                          : st_session_backward(s, 3, false, &dx, &err);
		ck_assert_msg(st == STRATA_OK, "%s", err.message);
		ck_assert(st_tensor_read(s->rt, dx, 0, into[k], sizeof(da), &err) == STRATA_OK);
	}
	float largest = 0.0f;
	for (int i = 0; i < 21; i++) {
		ck_assert_msg(fabsf(da[i] - db[i]) <= 1e-6f, "input gradient %d: %g vs %g", i, da[i], db[i]);
		largest = fmaxf(largest, fabsf(da[i]));
	}
	ck_assert_msg(largest > 1e-3f, "the input gradient is zero");
	ck_assert_int_eq(st_session_backward_from(a.net.s, 3, 2, false, &dx, &err), STRATA_ERR_NOT_FOUND);
	probe_close(&a);
	probe_close(&b);
}
END_TEST

/* ---- filter visualization --------------------------------------------------------------------- */

START_TEST(test_grid_png_is_n_images_with_margins)
{
	probe p;
	probe_open(&p, conv_yaml, 8);
	set_conv_filters(&p, 0);
	strata_visualize_result r;
	visualize(&p, (strata_visualize_options){.layer = CONV, .steps = 4, .keep = 4, .seed = 1}, &r);
	ck_assert_uint_eq(r.height, 28);
	ck_assert_uint_eq(r.width, 28);
	ck_assert_uint_eq(r.channels, 1);
	ck_assert_uint_eq(r.kept, 4);
	for (uint32_t n = 1; n <= 3; n++) {
		char name[32];
		snprintf(name, sizeof(name), "grid%u.png", n);
		char *path = probe_path(&p, name);
		strata_error err = {0};
		ck_assert_msg(strata_visualize_save_png(&r, n, path, &err) == STRATA_OK, "%s", err.message);
		st_image img;
		ck_assert_msg(st_image_load(path, &img, &err) == STRATA_OK, "%s", err.message);
		uint32_t side = n * 28 + (n - 1) * 5;
		ck_assert_uint_eq(img.width, side);
		ck_assert_uint_eq(img.height, side);
		/* Gray PNG: colour type 0 in IHDR. */
		FILE *f = fopen(path, "rb");
		unsigned char head[26];
		ck_assert(f && fread(head, 1, 26, f) == 26);
		fclose(f);
		ck_assert_uint_eq(head[25], 0);
		for (uint32_t cy = 0; cy < n; cy++)
			for (uint32_t cx = 0; cx < n; cx++) {
				double sum = 0.0;
				for (uint32_t y = 0; y < 28; y++)
					for (uint32_t x = 0; x < 28; x++)
						sum += img.pixels[(size_t)(cy * 33 + y) * side + cx * 33 + x];
				double mean = sum / (28 * 28);
				if (cy * n + cx < r.kept)
					ck_assert_msg(mean > 115 && mean < 135, "cell %u,%u: mean %g, not about 127", cx, cy,
					              mean);
				else
					ck_assert_msg(mean == 0, "empty cell %u,%u is not black (%g)", cx, cy, mean);
			}
		/* The margins between cells are black; there is none outside. */
		for (uint32_t m = 1; m < n; m++)
			for (uint32_t k = 0; k < side; k++)
				for (uint32_t d = 0; d < 5; d++) {
					ck_assert_uint_eq(img.pixels[(size_t)(m * 33 - 5 + d) * side + k], 0);
					ck_assert_uint_eq(img.pixels[(size_t)k * side + m * 33 - 5 + d], 0);
				}
		st_image_free(&img);
		free(path);
	}
	strata_visualize_result_free(&r);
	probe_close(&p);
}
END_TEST

START_TEST(test_deprocess_is_kerass)
{
	enum { N = 1000 };
	float x[N];
	uint8_t out[N];
	ts_fill_random(x, N, 5, -3.0f, 7.0f);
	x[0] = 100.0f; /* far out: clipped to 255 */
	st_deprocess(x, N, out);
	double mean = 0.0, sq = 0.0;
	for (int i = 0; i < N; i++)
		mean += x[i];
	mean /= N;
	for (int i = 0; i < N; i++)
		sq += (x[i] - mean) * (x[i] - mean);
	double sd = sqrt(sq / N);
	for (int i = 0; i < N; i++) {
		double v = fmin(fmax((x[i] - mean) / (sd + 1e-5) * 0.1 + 0.5, 0.0), 1.0) * 255.0;
		ck_assert_msg(out[i] == (uint8_t)v, "%d: %u, expected %u", i, out[i], (unsigned)(uint8_t)v);
	}
	ck_assert_uint_eq(out[0], 255);
}
END_TEST

START_TEST(test_activation_rises)
{
	probe p;
	probe_open(&p, conv_yaml, 8);
	set_conv_filters(&p, 0);
	uint32_t layers[2] = {CONV, DENSE}, counts[2] = {FILTERS, UNITS};
	for (int l = 0; l < 2; l++) {
		strata_visualize_result r;
		visualize(&p, (strata_visualize_options){.layer = layers[l], .steps = 20, .seed = 2}, &r);
		ck_assert_uint_eq(r.filters, counts[l]);
		ck_assert_uint_eq(r.active, counts[l]);
		for (uint32_t f = 0; f < r.filters; f++) {
			uint32_t rises = 0;
			for (uint32_t k = 1; k <= 20; k++)
				rises += act_at(&r, f, k) > act_at(&r, f, k - 1);
			ck_assert_msg(act_at(&r, f, 20) > act_at(&r, f, 0), "layer %u filter %u: %g -> %g", layers[l], f,
			              act_at(&r, f, 0), act_at(&r, f, 20));
			ck_assert_msg(rises >= 16, "layer %u filter %u rose in %u of 20 steps", layers[l], f, rises);
		}
		strata_visualize_result_free(&r);
	}
	probe_close(&p);
}
END_TEST

START_TEST(test_dead_filters_are_skipped)
{
	probe p;
	probe_open(&p, conv_yaml, 8);
	unsigned dead = 1u << 1 | 1u << 4;
	set_conv_filters(&p, dead);
	strata_visualize_result r;
	visualize(&p, (strata_visualize_options){.layer = CONV, .steps = 6, .seed = 3}, &r);
	ck_assert_uint_eq(r.active, FILTERS - 2);
	ck_assert_uint_eq(r.kept, FILTERS - 2);
	for (uint32_t i = 0; i < r.kept; i++) {
		ck_assert_msg(!(dead & (1u << r.images[i].filter)), "dead filter %u kept", r.images[i].filter);
		ck_assert(r.images[i].activation > 0.0f);
		ck_assert(r.images[i].activation == act_at(&r, r.images[i].filter, r.steps));
		if (i > 0)
			ck_assert_msg(r.images[i].activation <= r.images[i - 1].activation, "not sorted at %u", i);
	}
	for (uint32_t k = 0; k <= r.steps; k++) {
		ck_assert(act_at(&r, 1, k) == 0.0f);
		ck_assert(act_at(&r, 4, k) == 0.0f);
	}
	strata_visualize_result_free(&r);

	/* keep: the highest activations of all. */
	visualize(&p, (strata_visualize_options){.layer = CONV, .steps = 6, .seed = 3, .keep = 2}, &r);
	ck_assert_uint_eq(r.kept, 2);
	uint32_t above = 0;
	for (uint32_t f = 0; f < FILTERS; f++)
		above += act_at(&r, f, r.steps) > r.images[1].activation;
	ck_assert_uint_eq(above, 1);
	strata_visualize_result_free(&r);
	probe_close(&p);
}
END_TEST

START_TEST(test_batches_and_seeds)
{
	probe p;
	probe_open(&p, conv_yaml, 8);
	set_conv_filters(&p, 0);
	strata_visualize_result all, one, again, other;
	strata_visualize_options o = {.layer = CONV, .steps = 5, .seed = 4};
	visualize(&p, o, &all);
	visualize(&p, o, &again);
	o.batch_size = 1;
	visualize(&p, o, &one);
	o.seed = 5;
	visualize(&p, o, &other);
	ck_assert_uint_eq(all.kept, FILTERS);
	ck_assert_uint_eq(one.kept, FILTERS);
	ck_assert(memcmp(all.activations, again.activations, FILTERS * 6 * sizeof(float)) == 0);
	for (uint32_t i = 0; i < FILTERS; i++) {
		ck_assert(memcmp(all.images[i].pixels, again.images[i].pixels, 784 * sizeof(float)) == 0);
		/* One sample per filter: a batch of 1 climbs the same way as a batch of all. */
		ck_assert_uint_eq(all.images[i].filter, one.images[i].filter);
		for (int k = 0; k < 784; k++)
			ck_assert_msg(fabsf(all.images[i].pixels[k] - one.images[i].pixels[k]) < 1e-2f,
			              "image %u pixel %d: %g vs %g", i, k, all.images[i].pixels[k],
			              one.images[i].pixels[k]);
	}
	bool differs = false;
	for (int k = 0; k < 784; k++)
		differs |= all.images[0].pixels[k] != other.images[0].pixels[k];
	ck_assert_msg(differs, "another seed gave the same image");
	/* The noise starts at pixel levels 128 + 20 u. */
	for (uint32_t f = 0; f < FILTERS; f++)
		ck_assert(act_at(&all, f, 0) > 0.0f);
	strata_visualize_result_free(&all);
	strata_visualize_result_free(&again);
	strata_visualize_result_free(&one);
	strata_visualize_result_free(&other);
	probe_close(&p);
}
END_TEST

START_TEST(test_rgb_inputs_and_refusals)
{
	probe p;
	probe_open(&p, "input: {shape: [10, 12, 3]}\nlayers:\n  - {type: conv2d, filters: 4, kernel_size: 3}\n"
	               "  - {type: flatten}\n", 4);
	strata_visualize_result r;
	/* A linear conv2d: activations may be negative at first, only the final one counts. */
	visualize(&p, (strata_visualize_options){.layer = 0, .steps = 3, .seed = 1}, &r);
	ck_assert_uint_eq(r.channels, 3);
	char *path = probe_path(&p, "rgb.png");
	strata_error err = {0};
	ck_assert_msg(strata_visualize_save_png(&r, 2, path, &err) == STRATA_OK, "%s", err.message);
	FILE *f = fopen(path, "rb");
	unsigned char head[26];
	ck_assert(f && fread(head, 1, 26, f) == 26);
	fclose(f);
	uint32_t w = (uint32_t)head[16] << 24 | (uint32_t)head[17] << 16 | (uint32_t)head[18] << 8 | head[19];
	uint32_t h = (uint32_t)head[20] << 24 | (uint32_t)head[21] << 16 | (uint32_t)head[22] << 8 | head[23];
	ck_assert_uint_eq(w, 2 * 12 + 5);
	ck_assert_uint_eq(h, 2 * 10 + 5);
	ck_assert_uint_eq(head[25], 2); /* RGB */
	ck_assert_uint_eq(strata_visualize_save_png(&r, 2, "/nonexistent-strata-dir/x.png", &err), STRATA_ERR_IO);
	ck_assert_msg(strstr(err.message, "/nonexistent-strata-dir/x.png") != NULL, "%s", err.message);
	strata_visualize_result_free(&r);

	/* A layer without spatial positions: each of flatten's values is a filter. */
	visualize(&p, (strata_visualize_options){.layer = 1, .filters = 3, .steps = 2, .seed = 1}, &r);
	ck_assert_uint_eq(r.filters, 3);
	strata_visualize_result_free(&r);

	strata_visualize_options bad = {.size = sizeof(bad), .layer = 0, .filters = 5};
	ck_assert_int_eq(strata_visualize(p.net.s, &bad, &r, &err), STRATA_ERR_INVALID);
	ck_assert_msg(strstr(err.message, "4 filters") != NULL, "%s", err.message);
	strata_visualize_result_free(&r);
	bad.filters = 0;
	bad.layer = 2;
	ck_assert_int_eq(strata_visualize(p.net.s, &bad, &r, &err), STRATA_ERR_NOT_FOUND);
	strata_visualize_result_free(&r);
	free(path);
	probe_close(&p);
}
END_TEST

/* ---- layer features --------------------------------------------------------------------------- */

typedef struct table {
	uint32_t rows, cols; /* cols counts the label */
	char *header;
	int *labels;
	float *values; /* rows x (cols - 1) */
} table;

static void read_csv(const char *path, table *t)
{
	char *text = NULL;
	size_t len = 0;
	FILE *f = fopen(path, "rb");
	ck_assert_msg(f != NULL, "cannot open %s", path);
	ck_assert(getdelim(&text, &len, '\0', f) > 0);
	fclose(f);
	memset(t, 0, sizeof(*t));
	char *line = strtok(text, "\n");
	ck_assert_ptr_nonnull(line);
	t->header = strdup(line);
	t->cols = 1;
	for (char *c = line; *c; c++)
		t->cols += *c == ',';
	size_t cap = 0;
	while ((line = strtok(NULL, "\n"))) {
		t->rows++;
		t->labels = realloc(t->labels, t->rows * sizeof(int));
		if (cap < (size_t)t->rows * (t->cols - 1)) {
			cap = (size_t)t->rows * (t->cols - 1) * 2;
			t->values = realloc(t->values, cap * sizeof(float));
		}
		char *end;
		t->labels[t->rows - 1] = (int)strtol(line, &end, 10);
		for (uint32_t k = 0; k + 1 < t->cols; k++) {
			ck_assert_msg(*end == ',', "row %u has %u fields, not %u", t->rows, k + 1, t->cols);
			t->values[(size_t)(t->rows - 1) * (t->cols - 1) + k] = strtof(end + 1, &end);
		}
		ck_assert_msg(*end == '\0', "row %u has more than %u fields", t->rows, t->cols);
	}
	free(text);
}

static void table_free(table *t)
{
	free(t->header);
	free(t->labels);
	free(t->values);
}

/* Reads a .npy file of version 1.0: its descr and shape, and the data after the header. */
static void *read_npy(const char *path, char *descr, size_t descr_len, uint64_t shape[2], int *rank)
{
	FILE *f = fopen(path, "rb");
	ck_assert_msg(f != NULL, "cannot open %s", path);
	unsigned char magic[10];
	ck_assert(fread(magic, 1, 10, f) == 10);
	ck_assert(memcmp(magic, "\x93NUMPY\x01\x00", 8) == 0);
	size_t hlen = magic[8] | (size_t)magic[9] << 8;
	ck_assert_msg((10 + hlen) % 64 == 0, "the data starts at %zu", 10 + hlen);
	char *h = calloc(1, hlen + 1);
	ck_assert(fread(h, 1, hlen, f) == hlen);
	ck_assert_msg(h[hlen - 1] == '\n', "the header does not end in a newline");
	ck_assert_msg(strstr(h, "'fortran_order': False") != NULL, "%s", h);
	char *d = strstr(h, "'descr': '");
	ck_assert_ptr_nonnull(d);
	snprintf(descr, descr_len, "%.3s", d + 10);
	char *s = strstr(h, "'shape': (");
	ck_assert_ptr_nonnull(s);
	unsigned long long a = 0, b = 0;
	char close = 0;
	if (sscanf(s + 10, "%llu, %llu%c", &a, &b, &close) == 3 && close == ')') {
		*rank = 2;
	} else {
		ck_assert(sscanf(s + 10, "%llu,%c", &a, &close) == 2 && close == ')');
		*rank = 1;
	}
	shape[0] = a;
	shape[1] = b;
	free(h);
	size_t n = (size_t)a * (*rank == 2 ? b : 1);
	void *data = malloc(n * 4 + 1);
	ck_assert(fread(data, 4, n, f) == n);
	ck_assert_msg(fgetc(f) == EOF, "%s has bytes past its data", path);
	fclose(f);
	return data;
}

static void embed(probe *p, strata_embed_options o)
{
	o.size = sizeof(o);
	strata_error err = {0};
	strata_status st = strata_embed(p->net.s, &o, &err);
	ck_assert_msg(st == STRATA_OK, "embed: %s", err.message);
}

enum { SAMPLES = 37 };

static uint8_t *sample_pixels(void)
{
	float noise[SAMPLES * 784];
	ts_fill_random(noise, SAMPLES * 784, 9, 0.0f, 256.0f);
	uint8_t *px = malloc(SAMPLES * 784);
	ck_assert_ptr_nonnull(px);
	for (int i = 0; i < SAMPLES * 784; i++)
		px[i] = (uint8_t)noise[i];
	return px;
}

START_TEST(test_embed_csv_matches_forward)
{
	probe p;
	probe_open(&p, conv_yaml, 16);
	uint8_t *px = sample_pixels();
	float *x = floats(SAMPLES * 784), *y = floats(SAMPLES * UNITS);
	for (int i = 0; i < SAMPLES * 784; i++)
		x[i] = px[i] * (float)(1.0 / 255);
	strata_error err = {0};
	for (uint32_t start = 0; start < SAMPLES; start += 8) {
		uint32_t n = SAMPLES - start < 8 ? SAMPLES - start : 8;
		ck_assert(strata_session_forward(p.net.s, x + start * 784, n, y + start * UNITS, &err) == STRATA_OK);
	}
	char *path = probe_path(&p, "last.csv");
	embed(&p, (strata_embed_options){.layer = DENSE, .batch_size = 8, .path = path, .pixels = px,
	                                 .count = SAMPLES, .scale = 1.0 / 255});
	table t;
	read_csv(path, &t);
	ck_assert_uint_eq(t.rows, SAMPLES);
	ck_assert_uint_eq(t.cols, 1 + UNITS);
	ck_assert_str_eq(t.header, "label,f0,f1,f2,f3,f4");
	for (uint32_t i = 0; i < SAMPLES; i++) {
		ck_assert_int_eq(t.labels[i], -1);
		for (uint32_t k = 0; k < UNITS; k++)
			ck_assert_msg(fabsf(t.values[i * UNITS + k] - y[i * UNITS + k]) <= 1e-6f,
			              "sample %u class %u: %g vs %g", i, k, t.values[i * UNITS + k], y[i * UNITS + k]);
	}
	table_free(&t);

	/* An inner layer: as the model cut after it (the same seed, the same weights). */
	probe cut;
	probe_open(&cut, "input: {shape: [28, 28, 1]}\nlayers:\n"
	                 "  - {type: conv2d, filters: 6, kernel_size: 3, activation: relu}\n", 16);
	enum { F = 26 * 26 * FILTERS };
	float *yc = floats((size_t)SAMPLES * F);
	for (uint32_t start = 0; start < SAMPLES; start += 16) {
		uint32_t n = SAMPLES - start < 16 ? SAMPLES - start : 16;
		strata_status st = strata_session_forward(cut.net.s, x + start * 784, n, yc + (size_t)start * F, &err);
		ck_assert_msg(st == STRATA_OK, "%s", err.message);
	}
	embed(&p, (strata_embed_options){.layer = CONV, .path = path, .pixels = px, .count = SAMPLES,
	                                 .scale = 1.0 / 255});
	read_csv(path, &t);
	ck_assert_uint_eq(t.rows, SAMPLES);
	ck_assert_uint_eq(t.cols, 1 + F);
	for (size_t i = 0; i < (size_t)SAMPLES * F; i++)
		ck_assert_msg(fabsf(t.values[i] - yc[i]) <= 1e-5f, "value %zu: %g vs %g", i, t.values[i], yc[i]);
	table_free(&t);
	free(yc);
	probe_close(&cut);
	free(path);
	free(px);
	free(x);
	free(y);
	probe_close(&p);
}
END_TEST


START_TEST(test_embed_npy_equals_csv)
{
	probe p;
	probe_open(&p, conv_yaml, 16);
	uint8_t *px = sample_pixels(), lab[SAMPLES];
	for (int i = 0; i < SAMPLES; i++)
		lab[i] = (uint8_t)(i * 7 % 10);
	char *images = probe_path(&p, "images.idx"), *labels = probe_path(&p, "labels.idx");
	ts_write_idx(images, 0x08, 3, (uint32_t[]){SAMPLES, 28, 28}, px);
	ts_write_idx(labels, 0x08, 1, (uint32_t[]){SAMPLES}, lab);
	strata_dataset_options dso = {.size = sizeof(dso), .images = images, .labels = labels, .scale = 1.0 / 255,
	                              .num_classes = 10};
	strata_dataset *ds = NULL;
	strata_error err = {0};
	ck_assert_msg(strata_dataset_load(p.dev.rt, &dso, &ds, &err) == STRATA_OK, "%s", err.message);

	char *csv = probe_path(&p, "flat.csv"), *npy = probe_path(&p, "flat.npy");
	char *npy_labels = probe_path(&p, "flat.labels.npy");
	embed(&p, (strata_embed_options){.layer = FLAT, .batch_size = 5, .path = csv, .data = ds});
	embed(&p, (strata_embed_options){.layer = FLAT, .format = STRATA_EMBED_NPY, .path = npy, .data = ds});
	table t;
	read_csv(csv, &t);
	enum { F = 13 * 13 * FILTERS };
	ck_assert_uint_eq(t.rows, SAMPLES);
	ck_assert_uint_eq(t.cols, 1 + F);
	char descr[8];
	uint64_t shape[2];
	int rank;
	float *v = read_npy(npy, descr, sizeof(descr), shape, &rank);
	ck_assert_str_eq(descr, "<f4");
	ck_assert_int_eq(rank, 2);
	ck_assert_uint_eq(shape[0], SAMPLES);
	ck_assert_uint_eq(shape[1], F);
	/* 9 significant digits give a float back exactly. */
	for (size_t i = 0; i < (size_t)SAMPLES * F; i++)
		ck_assert_msg(v[i] == t.values[i], "value %zu: npy %.9g, csv %.9g", i, v[i], t.values[i]);
	free(v);
	int32_t *l = read_npy(npy_labels, descr, sizeof(descr), shape, &rank);
	ck_assert_str_eq(descr, "<i4");
	ck_assert_int_eq(rank, 1);
	ck_assert_uint_eq(shape[0], SAMPLES);
	for (int i = 0; i < SAMPLES; i++) {
		ck_assert_int_eq(l[i], lab[i]);
		ck_assert_int_eq(t.labels[i], lab[i]);
	}
	free(l);
	table_free(&t);

	/* Unlabeled samples: no labels file. */
	unlink(npy_labels);
	embed(&p, (strata_embed_options){.layer = FLAT, .format = STRATA_EMBED_NPY, .path = npy, .pixels = px,
	                                 .count = SAMPLES, .reference = ds});
	ck_assert_int_eq(access(npy_labels, F_OK), -1);
	v = read_npy(npy, descr, sizeof(descr), shape, &rank);
	read_csv(csv, &t);
	for (size_t i = 0; i < (size_t)SAMPLES * F; i++)
		ck_assert_msg(v[i] == t.values[i], "value %zu: %.9g vs %.9g", i, v[i], t.values[i]);
	table_free(&t);
	free(v);

	/* An unwritable path: an I/O error that names it, and nothing left behind. */
	strata_embed_options o = {.size = sizeof(o), .layer = FLAT, .path = "/nonexistent-strata-dir/f.csv",
	                          .data = ds};
	ck_assert_int_eq(strata_embed(p.net.s, &o, &err), STRATA_ERR_IO);
	ck_assert_msg(strstr(err.message, "/nonexistent-strata-dir/f.csv") != NULL, "%s", err.message);
	o.path = csv;
	o.layer = 5;
	ck_assert_int_eq(strata_embed(p.net.s, &o, &err), STRATA_ERR_NOT_FOUND);

	strata_dataset_free(ds);
	free(images);
	free(labels);
	free(csv);
	free(npy);
	free(npy_labels);
	free(px);
	probe_close(&p);
}
END_TEST

static Suite *probe_suite(void)
{
	Suite *s = suite_create("probe");
	TCase *passes = tcase_create("passes");
	tcase_set_timeout(passes, 300);
	tcase_add_test(passes, test_dropout_backward_follows_the_pass);
	tcase_add_test(passes, test_ranged_passes_match_a_shorter_model);
	suite_add_tcase(s, passes);
	TCase *vis = tcase_create("visualize");
	tcase_set_timeout(vis, 300);
	tcase_add_test(vis, test_grid_png_is_n_images_with_margins);
	tcase_add_test(vis, test_deprocess_is_kerass);
	tcase_add_test(vis, test_activation_rises);
	tcase_add_test(vis, test_dead_filters_are_skipped);
	tcase_add_test(vis, test_batches_and_seeds);
	tcase_add_test(vis, test_rgb_inputs_and_refusals);
	suite_add_tcase(s, vis);
	TCase *emb = tcase_create("embed");
	tcase_set_timeout(emb, 300);
	tcase_add_test(emb, test_embed_csv_matches_forward);
	tcase_add_test(emb, test_embed_npy_equals_csv);
	suite_add_tcase(s, emb);
	return s;
}

int main(void)
{
	return ts_run(probe_suite());
}
