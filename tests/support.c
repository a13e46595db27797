#include "support.h"

#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "device/runtime.h"
#include "exec/session.h"
#include "model/model.h"
#include "probe/gradcheck.h"

strata_registry *ts_registry(void)
{
	strata_registry *reg = NULL;
	strata_error err = {0};
	strata_status st = strata_registry_open(NULL, &reg, &err);
	ck_assert_msg(st == STRATA_OK, "registry: %s", err.message);
	return reg;
}

strata_runtime *ts_runtime(strata_registry *reg)
{
	strata_runtime *rt = NULL;
	strata_error err = {0};
	strata_runtime_options opts = {.size = sizeof(opts)};
	opts.device = getenv("STRATA_TEST_DEVICE");
	strata_status st = strata_runtime_create(reg, &opts, &rt, &err);
	ck_assert_msg(st == STRATA_OK, "no usable OpenCL device: %s", err.message);
	return rt;
}

strata_model *ts_model(strata_registry *reg, const char *yaml)
{
	strata_model *m = NULL;
	strata_error err = {0};
	strata_status st = strata_model_load_string(reg, yaml, strlen(yaml), "test.yaml", NULL, &m, &err);
	ck_assert_msg(st == STRATA_OK, "model: %s", err.message);
	return m;
}

strata_model *ts_model_file(strata_registry *reg, const char *relative)
{
	char *path = ts_src_path(relative);
	strata_model *m = NULL;
	strata_error err = {0};
	strata_status st = strata_model_load(reg, path, &m, &err);
	ck_assert_msg(st == STRATA_OK, "%s: %s", path, err.message);
	free(path);
	return m;
}

ts_device ts_device_open(void)
{
	ts_device dev = {.reg = ts_registry()};
	dev.rt = ts_runtime(dev.reg);
	return dev;
}

void ts_device_close(ts_device *dev)
{
	if (!dev)
		return;
	strata_runtime_destroy(dev->rt);
	strata_registry_close(dev->reg);
	*dev = (ts_device){0};
}

ts_net ts_net_open(const ts_device *dev, const char *yaml, uint32_t batch, uint64_t seed)
{
	return ts_net_from(dev, ts_model(dev->reg, yaml), batch, seed);
}

ts_net ts_net_from(const ts_device *dev, strata_model *m, uint32_t batch, uint64_t seed)
{
	ts_net net = {.m = m};
	strata_error err = {0};
	strata_status st = strata_session_create(dev->rt, m, batch, seed, &net.s, &err);
	ck_assert_msg(st == STRATA_OK, "session: %s", err.message);
	return net;
}

void ts_net_close(ts_net *net)
{
	if (!net)
		return;
	strata_session_destroy(net->s);
	strata_model_free(net->m);
	*net = (ts_net){0};
}

char *ts_src_path(const char *relative)
{
	const char *dir = getenv("STRATA_TEST_SRCDIR");
	if (!dir)
		dir = STRATA_TEST_SRCDIR;
	size_t n = strlen(dir) + strlen(relative) + 2;
	char *p = malloc(n);
	ck_assert_ptr_nonnull(p);
	snprintf(p, n, "%s/%s", dir, relative);
	return p;
}

char *ts_mnist_file(const char *name)
{
	char rel[256];
	snprintf(rel, sizeof(rel), "../data/mnist/%s", name);
	char *p = ts_src_path(rel);
	ck_assert_msg(access(p, R_OK) == 0, "%s is missing: run scripts/fetch-mnist.sh", p);
	return p;
}

strata_dataset *ts_mnist(strata_runtime *rt, bool train, strata_dataset_options o)
{
	char *images = ts_mnist_file(train ? "train-images-idx3-ubyte" : "t10k-images-idx3-ubyte");
	char *labels = ts_mnist_file(train ? "train-labels-idx1-ubyte" : "t10k-labels-idx1-ubyte");
	o.size = sizeof(o);
	o.images = images;
	o.labels = labels;
	if (o.scale == 0)
		o.scale = 1.0 / 255;
	if (o.num_classes == 0)
		o.num_classes = 10;
	strata_dataset *ds = NULL;
	strata_error err = {0};
	ck_assert_msg(strata_dataset_load(rt, &o, &ds, &err) == STRATA_OK, "%s", err.message);
	free(images);
	free(labels);
	return ds;
}

void ts_tmpdir_make(char *dir, size_t size, const char *prefix)
{
	const char *base = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
	snprintf(dir, size, "%s/strata-%s-XXXXXX", base, prefix);
	ck_assert_ptr_nonnull(mkdtemp(dir));
}

void ts_tmpdir_remove(const char *dir)
{
	char cmd[PATH_MAX + 16];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", dir);
}

char *ts_join(const char *dir, const char *name)
{
	size_t n = strlen(dir) + strlen(name) + 2;
	char *p = malloc(n);
	ck_assert_ptr_nonnull(p);
	snprintf(p, n, "%s/%s", dir, name);
	return p;
}

int ts_run(Suite *suite)
{
	SRunner *sr = srunner_create(suite);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

void ts_fill_random(float *dst, size_t n, unsigned seed, float lo, float hi)
{
	uint64_t x = 0x9E3779B97F4A7C15ull ^ seed;
	for (size_t i = 0; i < n; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		dst[i] = lo + (hi - lo) * (float)((x >> 40) / (double)(1ull << 24));
	}
}

/* ---- Finite differences of the backward pass ------------------------------------------------ */

float *ts_floats(size_t n)
{
	float *p = malloc((n ? n : 1) * sizeof(*p));
	ck_assert_ptr_nonnull(p);
	return p;
}

void ts_tensor_write(strata_runtime *rt, strata_tensor *t, size_t offset, const float *src, size_t n)
{
	strata_error err = {0};
	strata_status st = st_tensor_write(rt, t, offset * sizeof(float), src, n * sizeof(float), &err);
	ck_assert_msg(st == STRATA_OK, "write: %s", err.message);
}

void ts_tensor_read(strata_runtime *rt, strata_tensor *t, float *dst, size_t n)
{
	strata_error err = {0};
	strata_status st = st_tensor_read(rt, t, 0, dst, n * sizeof(float), &err);
	ck_assert_msg(st == STRATA_OK, "read: %s", err.message);
}

void ts_fd_open(ts_fd *f, const char *yaml, uint32_t batch, float bias_center, unsigned seed)
{
	strata_error err = {0};
	memset(f, 0, sizeof(*f));
	f->dev = ts_device_open();
	f->net = ts_net_open(&f->dev, yaml, batch + 1, 1);
	f->batch = batch;
	strata_status st = st_session_enable_training(f->net.s, &err);
	ck_assert_msg(st == STRATA_OK, "training: %s", err.message);

	const strata_model *m = f->net.m;
	size_t most = 0;
	for (size_t l = 0; l < m->n_layers; l++)
		most += m->layers[l].n_weights;
	f->w_layer = calloc(most + 1, sizeof(*f->w_layer));
	f->w_index = calloc(most + 1, sizeof(*f->w_index));
	f->w_count = calloc(most + 1, sizeof(*f->w_count));
	f->w = calloc(most + 1, sizeof(*f->w));
	ck_assert(f->w_layer && f->w_index && f->w_count && f->w);
	for (size_t l = 0; l < m->n_layers; l++) {
		if (m->layers[l].shares >= 0)
			continue;
		for (uint32_t w = 0; w < m->layers[l].n_weights; w++) {
			if (m->layers[l].weights[w].state)
				continue; /* persistent state (moving statistics): no gradient to check */
			size_t k = f->n_weights++, count = m->layers[l].weights[w].count;
			bool bias = strcmp(m->layers[l].weights[w].name, "bias") == 0;
			f->w_layer[k] = l;
			f->w_index[k] = w;
			f->w_count[k] = count;
			f->w[k] = ts_floats(count);
			ts_fill_random(f->w[k], count, seed + 100 + (unsigned)k, -0.5f, 0.5f);
			for (size_t i = 0; bias && i < count; i++)
				f->w[k][i] += bias_center;
			st = strata_session_write_weight(f->net.s, l, w, f->w[k], count, &err);
			ck_assert_msg(st == STRATA_OK, "weight: %s", err.message);
		}
	}
	f->in_count = (size_t)batch * st_shape_elems(&m->input);
	f->out_count = (size_t)batch * st_shape_elems(&m->layers[m->outputs[0]].out);
	f->x = ts_floats(f->in_count);
	f->r = ts_floats(f->out_count);
	f->y = ts_floats(f->out_count);
	ts_fill_random(f->x, f->in_count, seed, -1.0f, 1.0f);
	ts_fill_random(f->r, f->out_count, seed + 7, -1.0f, 1.0f);
	ts_tensor_write(f->dev.rt, &f->net.s->input, 0, f->x, f->in_count);
}

void ts_fd_close(ts_fd *f)
{
	for (size_t k = 0; k < f->n_weights; k++)
		free(f->w[k]);
	free(f->w);
	free(f->w_layer);
	free(f->w_index);
	free(f->w_count);
	free(f->y);
	free(f->r);
	free(f->x);
	ts_net_close(&f->net);
	ts_device_close(&f->dev);
}

strata_tensor *ts_fd_weight(ts_fd *f, size_t k, bool grad)
{
	ck_assert_uint_lt(k, f->n_weights);
	st_layer_bind *b = &f->net.s->binds[f->w_layer[k]];
	return grad ? &b->grads[f->w_index[k]] : &b->weights[f->w_index[k]];
}

void ts_fd_forward(ts_fd *f)
{
	strata_error err = {0};
	strata_status st = st_session_forward_device(f->net.s, f->batch, true, &err);
	ck_assert_msg(st == STRATA_OK, "forward: %s", err.message);
}

double ts_fd_loss(ts_fd *f)
{
	ts_fd_forward(f);
	ts_tensor_read(f->dev.rt, st_session_output(f->net.s), f->y, f->out_count);
	double l = 0.0;
	for (size_t i = 0; i < f->out_count; i++)
		l += (double)f->r[i] * f->y[i];
	/* The activity regularizers' penalties, which the backward pass differentiates too. */
	const strata_model *m = f->net.m;
	for (size_t i = 0; i < m->n_layers; i++) {
		const strata_layer *layer = &m->layers[i];
		if (layer->activity_l1 == 0.0 && layer->activity_l2 == 0.0)
			continue;
		size_t n = (size_t)st_shape_elems(&layer->out) * f->batch;
		float *y = ts_floats(n);
		ts_tensor_read(f->dev.rt, st_session_value(f->net.s, st_layer_value(m, i)), y, n);
		double p = 0.0;
		for (size_t k = 0; k < n; k++)
			p += layer->activity_l1 * fabs((double)y[k]) + layer->activity_l2 * (double)y[k] * y[k];
		l += p / f->batch;
		free(y);
	}
	return l;
}

strata_tensor *ts_fd_backward(ts_fd *f, bool want_input)
{
	strata_error err = {0};
	strata_tensor *dx = NULL;
	ts_tensor_write(f->dev.rt, st_session_output_grad(f->net.s), 0, f->r, f->out_count);
	strata_status st = st_session_backward(f->net.s, f->batch, false, want_input ? &dx : NULL, &err);
	ck_assert_msg(st == STRATA_OK, "backward: %s", err.message);
	if (want_input)
		ck_assert_ptr_nonnull(dx);
	return dx;
}

void ts_fd_poison(ts_fd *f)
{
	strata_session *s = f->net.s;
	size_t most = 0;
	for (size_t k = 0; k < s->n_grad_slots; k++)
		most = s->grad_slots[k].bytes / sizeof(float) > most ? s->grad_slots[k].bytes / sizeof(float) : most;
	for (size_t k = 0; k < f->n_weights; k++)
		most = f->w_count[k] > most ? f->w_count[k] : most;
	float *nan = ts_floats(most);
	for (size_t i = 0; i < most; i++)
		nan[i] = NAN;
	for (size_t k = 0; k < s->n_grad_slots; k++)
		ts_tensor_write(f->dev.rt, &s->grad_slots[k], 0, nan, s->grad_slots[k].bytes / sizeof(float));
	for (size_t k = 0; k < f->n_weights; k++)
		ts_tensor_write(f->dev.rt, ts_fd_weight(f, k, true), 0, nan, f->w_count[k]);
	free(nan);
}

/* L for the library's check: ts_fd_loss fails the test itself on a device error. */
static strata_status fd_loss(void *user, double *loss, strata_error *err)
{
	(void)err;
	*loss = ts_fd_loss(user);
	return STRATA_OK;
}

/* The check is the library's (src/probe/gradcheck.c), as `strata gradcheck` runs it; this only
 * translates the suites' tolerance and turns a verdict into the test's failure. */
void ts_fd_check(ts_fd *f, const char *what, strata_tensor *t, float *values, size_t count, const float *grad,
                 const ts_fd_tolerance *tol, double l0)
{
	st_fd_rule rule = {.step = tol->step, .max_checks = tol->max_checks, .nontrivial = tol->nontrivial,
	                   .kinks = tol->kinks, .to_largest = tol->to_largest};
	strata_gradcheck_tensor out = {0};
	strata_error err = {0};
	snprintf(out.name, sizeof(out.name), "%s", what);
	strata_status st = st_fd_check_tensor(f->dev.rt, fd_loss, f, t, values, count, grad, &rule, l0, &out, &err);
	ck_assert_msg(st == STRATA_OK, "%s: %s", what, err.message);
	ck_assert_msg(out.passed, "%s", out.message);
}

/* b within `repeat` relative of a (0: bit-identical). */
static void fd_same(const char *what, const float *a, const float *b, size_t n, double repeat)
{
	char msg[256];
	bool same = st_fd_same(what, a, b, n, repeat, msg, sizeof(msg));
	ck_assert_msg(same, "%s", msg);
}

void ts_fd_check_gradients(ts_fd *f, const ts_fd_tolerance *tol)
{
	ts_fd_poison(f);
	double l0 = ts_fd_loss(f);
	float *dx = ts_floats(f->in_count), *again = ts_floats(f->in_count);
	ts_tensor_read(f->dev.rt, ts_fd_backward(f, true), dx, f->in_count);
	float **dw = calloc(f->n_weights + 1, sizeof(*dw));
	ck_assert_ptr_nonnull(dw);
	for (size_t k = 0; k < f->n_weights; k++) {
		dw[k] = ts_floats(f->w_count[k]);
		ts_tensor_read(f->dev.rt, ts_fd_weight(f, k, true), dw[k], f->w_count[k]);
	}

	char what[128];
	for (int pass = 0; pass < 2; pass++) {
		strata_tensor *dx_t = ts_fd_backward(f, pass == 0);
		if (pass == 0) {
			ts_tensor_read(f->dev.rt, dx_t, again, f->in_count);
			fd_same("input gradient, second pass", dx, again, f->in_count, tol->repeat);
		}
		for (size_t k = 0; k < f->n_weights; k++) {
			const struct strata_layer *l = &f->net.m->layers[f->w_layer[k]];
			float *g = ts_floats(f->w_count[k]);
			ts_tensor_read(f->dev.rt, ts_fd_weight(f, k, true), g, f->w_count[k]);
			snprintf(what, sizeof(what), "%s/%s gradient, %s", l->name, l->weights[f->w_index[k]].name,
			         pass == 0 ? "second pass" : "without the input gradient");
			fd_same(what, dw[k], g, f->w_count[k], tol->repeat);
			free(g);
		}
	}

	ts_fd_check(f, "input gradient", &f->net.s->input, f->x, f->in_count, dx, tol, l0);
	for (size_t k = 0; k < f->n_weights; k++) {
		const struct strata_layer *l = &f->net.m->layers[f->w_layer[k]];
		snprintf(what, sizeof(what), "%s/%s gradient", l->name, l->weights[f->w_index[k]].name);
		ts_fd_check(f, what, ts_fd_weight(f, k, false), f->w[k], f->w_count[k], dw[k], tol, l0);
	}
	for (size_t k = 0; k < f->n_weights; k++)
		free(dw[k]);
	free(dw);
	free(again);
	free(dx);
}

void ts_write_idx(const char *path, uint8_t type, uint32_t rank, const uint32_t *dims, const void *data)
{
	FILE *f = fopen(path, "wb");
	ck_assert_ptr_nonnull(f);
	uint8_t head[4] = {0, 0, type, (uint8_t)rank};
	fwrite(head, 1, 4, f);
	size_t count = 1;
	for (uint32_t i = 0; i < rank; i++) {
		uint8_t d[4] = {(uint8_t)(dims[i] >> 24), (uint8_t)(dims[i] >> 16), (uint8_t)(dims[i] >> 8), (uint8_t)dims[i]};
		fwrite(d, 1, 4, f);
		count *= dims[i];
	}
	if (type == 0x0C) {
		const int32_t *v = data;
		for (size_t i = 0; i < count; i++) {
			uint32_t u = (uint32_t)v[i];
			uint8_t d[4] = {(uint8_t)(u >> 24), (uint8_t)(u >> 16), (uint8_t)(u >> 8), (uint8_t)u};
			fwrite(d, 1, 4, f);
		}
	} else {
		fwrite(data, 1, count, f);
	}
	ck_assert_int_eq(fclose(f), 0);
}
