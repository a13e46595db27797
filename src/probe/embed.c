/* strata_embed: one layer's outputs for every sample, streamed a batch at a time to a CSV or a
 * NumPy .npy file (the features a dimensionality reduction such as t-SNE starts from). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "train/dataset.h"
#include "base/error.h"
#include "io/idx.h"
#include "exec/session.h"

/* NumPy format 1.0: magic, version, a little-endian 16-bit header length, then a Python dict
 * padded with spaces and ended by '\n' so that the data starts at a multiple of 64 bytes. */
#define NPY_ALIGN 64

typedef struct embed_file {
	FILE *f;
	char *path;
	bool created;
} embed_file;

static bool little_endian(void)
{
	const uint16_t one = 1;
	return *(const uint8_t *)&one == 1;
}

/* 32-bit values as little-endian bytes. */
static bool write_le32(FILE *f, const void *values, size_t n)
{
	if (little_endian())
		return fwrite(values, 4, n, f) == n;
	const uint8_t *v = values;
	for (size_t i = 0; i < n; i++) {
		uint8_t b[4] = {v[4 * i + 3], v[4 * i + 2], v[4 * i + 1], v[4 * i]};
		if (fwrite(b, 1, 4, f) != 4)
			return false;
	}
	return true;
}

/* `cols` 0 makes a one-dimensional array of `rows`. */
static bool npy_header(FILE *f, const char *descr, uint64_t rows, uint64_t cols)
{
	char dict[160];
	char shape[64];
	if (cols)
		snprintf(shape, sizeof(shape), "(%llu, %llu)", (unsigned long long)rows, (unsigned long long)cols);
	else
		snprintf(shape, sizeof(shape), "(%llu,)", (unsigned long long)rows);
	int n = snprintf(dict, sizeof(dict), "{'descr': '%s', 'fortran_order': False, 'shape': %s, }", descr,
	                 shape);
	size_t unpadded = 10 + (size_t)n + 1;
	size_t pad = (NPY_ALIGN - unpadded % NPY_ALIGN) % NPY_ALIGN;
	size_t len = (size_t)n + pad + 1;
	uint8_t magic[10] = {0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0, (uint8_t)(len & 0xff), (uint8_t)(len >> 8)};
	if (fwrite(magic, 1, sizeof(magic), f) != sizeof(magic) || fwrite(dict, 1, (size_t)n, f) != (size_t)n)
		return false;
	for (size_t i = 0; i < pad; i++)
		if (fputc(' ', f) == EOF)
			return false;
	return fputc('\n', f) != EOF;
}

static strata_status open_output(embed_file *out, const char *path, strata_error *err)
{
	out->path = strdup(path);
	if (!out->path)
		return st_fail(err, STRATA_ERR_NO_MEMORY, "out of memory");
	out->f = fopen(path, "wb");
	if (!out->f)
		return st_fail(err, STRATA_ERR_IO, "cannot write %s: %s", path, strerror(errno));
	out->created = true;
	return STRATA_OK;
}

/* Closes the file (if open); a write or close that failed becomes the call's error unless an
 * earlier one is. The path stays for finish_output: a later failure removes this file too. */
static strata_status close_output(embed_file *out, strata_status st, strata_error *err)
{
	if (out->f) {
		bool bad = ferror(out->f) != 0;
		int e = errno;
		if (fclose(out->f) != 0 && !bad) {
			bad = true;
			e = errno;
		}
		if (bad && st == STRATA_OK)
			st = st_fail(err, STRATA_ERR_IO, "cannot write %s: %s", out->path, strerror(e));
		out->f = NULL;
	}
	return st;
}

/* After the call: a failed one (`st` not OK) removes what it wrote. */
static void finish_output(embed_file *out, strata_status st)
{
	if (st != STRATA_OK && out->created)
		remove(out->path);
	free(out->path);
	out->path = NULL;
}

static char *labels_path_for(const char *path)
{
	size_t n = strlen(path);
	size_t stem = n >= 4 && strcmp(path + n - 4, ".npy") == 0 ? n - 4 : n;
	char *p = malloc(stem + sizeof(".labels.npy"));
	if (p) {
		memcpy(p, path, stem);
		memcpy(p + stem, ".labels.npy", sizeof(".labels.npy"));
	}
	return p;
}

static strata_status write_header(FILE *f, strata_embed_format format, uint32_t rows, uint64_t features)
{
	if (format == STRATA_EMBED_NPY)
		return npy_header(f, "<f4", rows, features) ? STRATA_OK : STRATA_ERR_IO;
	fputs("label", f);
	for (uint64_t k = 0; k < features; k++)
		fprintf(f, ",f%llu", (unsigned long long)k);
	return fputc('\n', f) == EOF ? STRATA_ERR_IO : STRATA_OK;
}

static strata_status write_rows(FILE *f, strata_embed_format format, const float *y, uint32_t n,
                                uint64_t features, const uint8_t *labels)
{
	if (format == STRATA_EMBED_NPY)
		return write_le32(f, y, (size_t)n * features) ? STRATA_OK : STRATA_ERR_IO;
	for (uint32_t i = 0; i < n; i++) {
		fprintf(f, "%d", labels ? (int)labels[i] : -1);
		for (uint64_t k = 0; k < features; k++)
			fprintf(f, ",%.9g", (double)y[i * features + k]);
		if (fputc('\n', f) == EOF)
			return STRATA_ERR_IO;
	}
	return ferror(f) ? STRATA_ERR_IO : STRATA_OK;
}

static strata_status write_labels(const char *path, const uint8_t *labels, uint32_t n, strata_error *err)
{
	embed_file out = {0};
	strata_status st = open_output(&out, path, err);
	if (!st && !npy_header(out.f, "<i4", n, 0))
		st = st_fail(err, STRATA_ERR_IO, "cannot write %s: %s", path, strerror(errno));
	for (uint32_t i = 0; i < n && !st; i++) {
		int32_t v = labels[i];
		if (!write_le32(out.f, &v, 1))
			st = st_fail(err, STRATA_ERR_IO, "cannot write %s: %s", path, strerror(errno));
	}
	st = close_output(&out, st, err);
	finish_output(&out, st);
	return st;
}

static strata_status check_options(strata_session *s, const strata_embed_options *o, strata_error *err)
{
	strata_model *m = s->model;
	if (o->layer >= m->n_layers)
		return st_fail(err, STRATA_ERR_NOT_FOUND, "no layer %zu: the model has %zu", o->layer, m->n_layers);
	if (!o->path)
		return st_fail(err, STRATA_ERR_INVALID, "embed needs an output path");
	if (o->format != STRATA_EMBED_CSV && o->format != STRATA_EMBED_NPY)
		return st_fail(err, STRATA_ERR_INVALID, "unknown embedding format %d", (int)o->format);
	if (m->n_inputs != 1)
		return st_fail(err, STRATA_ERR_UNSUPPORTED, "%s has %zu inputs; embed feeds one", m->name, m->n_inputs);
	if (!o->data && (!o->pixels || o->count == 0))
		return st_fail(err, STRATA_ERR_INVALID, "embed needs a data set or samples");
	const strata_dataset *ds = o->data ? o->data : o->reference;
	if (ds)
		return st_idx_check_fit(ds->feeds[0].path, o->data ? "the data" : "the reference data",
		                        ds->feeds[0].sample_dims, ds->feeds[0].sample_rank, &m->input, err);
	return STRATA_OK;
}

/* Puts samples [start, start + n) on the device as the model's input. */
static strata_status stage(strata_session *s, const strata_embed_options *o, uint32_t start, uint32_t n,
                           float *x, strata_error *err)
{
	if (o->data)
		return st_dataset_gather_session(o->data, start, n, s, false, err);
	uint64_t in = st_shape_elems(&s->model->input);
	const uint8_t *px = o->pixels + (size_t)start * in;
	if (s->model->input.dtype == STRATA_DTYPE_INT32) {
		/* Byte ids, as the data sets read them for an int32 input: no scale. */
		for (uint64_t i = 0; i < in * n; i++) {
			int32_t id = px[i];
			memcpy(&x[i], &id, sizeof(id));
		}
	} else if (o->reference) {
		strata_dataset_transform(o->reference, px, x, n);
	} else {
		float scale = o->scale > 0 ? (float)o->scale : 1.0f;
		for (uint64_t i = 0; i < in * n; i++)
			x[i] = px[i] * scale;
	}
	return st_tensor_write_prefix(s->rt, s->pool_mode, &s->input, x, in * n, &s->staging, err);
}

strata_status strata_embed(strata_session *s, const strata_embed_options *options, strata_error *err)
{
	strata_embed_options o = {.size = sizeof(o)};
	memcpy(&o, options, options->size < sizeof(o) ? options->size : sizeof(o));
	strata_status st = check_options(s, &o, err);
	if (st)
		return st;
	uint64_t in = st_shape_elems(&s->model->input);
	uint64_t features = st_shape_elems(&s->model->layers[o.layer].out);
	uint32_t count = o.data ? o.data->n : o.count;
	const uint8_t *labels = o.data ? o.data->targets[0].host : NULL;
	uint32_t batch = o.batch_size && o.batch_size < s->max_batch ? o.batch_size : s->max_batch;
	/* With NPY, the CSV can come too (csv_path), from the same forward passes. */
	const char *csv_path = o.format == STRATA_EMBED_NPY ? o.csv_path : NULL;
	embed_file out = {0}, csv = {0};
	char *labels_path = NULL;
	bool labels_written = false;
	float *x = o.data ? NULL : malloc(in * batch * sizeof(float));
	float *y = malloc(features * batch * sizeof(float));
	if ((!o.data && !x) || !y) {
		st = st_fail(err, STRATA_ERR_NO_MEMORY, "out of memory for a batch of %u", batch);
		goto out_free;
	}
	if (o.data && (st = st_dataset_set_order(o.data, false, 0, 0, err)))
		goto out_free;
	if (csv_path && strcmp(csv_path, o.path) == 0) {
		st = st_fail(err, STRATA_ERR_INVALID, "embed: the CSV and the .npy would both be %s", o.path);
		goto out_free;
	}
	if ((st = open_output(&out, o.path, err)) || (csv_path && (st = open_output(&csv, csv_path, err))))
		goto out_close;
	if (write_header(out.f, o.format, count, features)) {
		st = st_fail(err, STRATA_ERR_IO, "cannot write %s: %s", o.path, strerror(errno));
		goto out_close;
	}
	if (csv_path && write_header(csv.f, STRATA_EMBED_CSV, count, features)) {
		st = st_fail(err, STRATA_ERR_IO, "cannot write %s: %s", csv_path, strerror(errno));
		goto out_close;
	}
	for (uint32_t start = 0; start < count; start += batch) {
		uint32_t n = count - start < batch ? count - start : batch;
		if ((st = stage(s, &o, start, n, x, err)) ||
		    (st = st_session_forward_layers(s, n, false, o.layer + 1, err)) ||
		    (st = st_tensor_read(s->rt, st_session_layer_output(s, o.layer + 1), 0, y,
		                         features * n * sizeof(float), err)))
			goto out_close;
		if (write_rows(out.f, o.format, y, n, features, labels ? labels + start : NULL)) {
			st = st_fail(err, STRATA_ERR_IO, "cannot write %s: %s", o.path, strerror(errno));
			goto out_close;
		}
		if (csv_path && write_rows(csv.f, STRATA_EMBED_CSV, y, n, features, labels ? labels + start : NULL)) {
			st = st_fail(err, STRATA_ERR_IO, "cannot write %s: %s", csv_path, strerror(errno));
			goto out_close;
		}
	}
	if (o.format == STRATA_EMBED_NPY && labels) {
		labels_path = o.labels_path ? strdup(o.labels_path) : labels_path_for(o.path);
		if (!labels_path)
			st = st_fail(err, STRATA_ERR_NO_MEMORY, "out of memory");
		else if (!(st = write_labels(labels_path, labels, count, err)))
			labels_written = true;
	}
out_close:
	st = close_output(&out, st, err);
	st = close_output(&csv, st, err);
	finish_output(&out, st);
	finish_output(&csv, st);
	if (st && labels_written)
		remove(labels_path);
out_free:
	free(labels_path);
	free(x);
	free(y);
	return st;
}
