/* init_from: a fresh session's weights taken from another model's weights file, layer by layer
 * (transfer.h). The file is read and validated by checkpoint.c; this file only matches names and
 * shapes, and writes what matched. */
#include "train/transfer.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "exec/checkpoint.h"
#include "base/error.h"

/* One weight to write: the file's entry and whether the model's tensor is wider. */
typedef struct planned {
	strata_layer *layer;
	uint32_t w;
	st_checkpoint_entry e;
	bool grows;
} planned;

typedef struct transfer {
	strata_session *s;
	const st_init_from *ini;
	st_checkpoint_file *f;
	planned *plan;
	size_t n_plan, cap_plan;
	strata_error *err;
} transfer;

static strata_status fail_at(transfer *t, st_pos pos, strata_status status, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static strata_status fail_at(transfer *t, st_pos pos, strata_status status, const char *fmt, ...)
{
	char msg[STRATA_ERROR_MAX];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	return st_fail(t->err, status, "%s:%u:%u: init_from: %s", t->s->model->file, pos.line, pos.col, msg);
}

/* The weight name of entry `e` when it is a weight of `layer` ("LAYER/WEIGHT"), else NULL. */
static const char *weight_of(const st_checkpoint_entry *e, const strata_layer *layer)
{
	size_t len = strlen(layer->name);
	if (e->kind != ST_TENSOR_WEIGHT || strncmp(e->name, layer->name, len) || e->name[len] != '/')
		return NULL;
	return e->name + len + 1;
}

static void append(char *buf, size_t size, size_t *o, const char *s, size_t len)
{
	int n = snprintf(buf + *o, size - *o, "%s%.*s", *o ? ", " : "", (int)len, s);
	if (n > 0)
		*o = *o + (size_t)n < size ? *o + (size_t)n : size - 1;
}

/* "conv2d_1, dense_1": the layers whose weights the file holds, in file order. */
static void file_layers(const st_checkpoint_file *f, char *buf, size_t size)
{
	uint32_t n = st_checkpoint_count(f);
	size_t o = 0;
	buf[0] = '\0';
	for (uint32_t i = 0; i < n; i++) {
		st_checkpoint_entry e, prev;
		st_checkpoint_entry_at(f, i, &e);
		const char *slash = strchr(e.name, '/');
		size_t len = slash ? (size_t)(slash - e.name) : strlen(e.name);
		bool seen = e.kind != ST_TENSOR_WEIGHT;
		for (uint32_t j = 0; j < i && !seen; j++) {
			st_checkpoint_entry_at(f, j, &prev);
			seen = prev.kind == ST_TENSOR_WEIGHT && !strncmp(prev.name, e.name, len) &&
			       (prev.name[len] == '/' || prev.name[len] == '\0');
		}
		if (!seen)
			append(buf, size, &o, e.name, len);
	}
	if (!o)
		snprintf(buf, size, "none");
}

static strata_status add_plan(transfer *t, strata_layer *layer, uint32_t w, const st_checkpoint_entry *e,
                              bool grows)
{
	if (t->n_plan == t->cap_plan) {
		size_t cap = t->cap_plan ? 2 * t->cap_plan : 8;
		planned *p = realloc(t->plan, cap * sizeof(*p));
		if (!p)
			return st_fail(t->err, STRATA_ERR_NO_MEMORY, "out of memory");
		t->plan = p;
		t->cap_plan = cap;
	}
	t->plan[t->n_plan++] = (planned){.layer = layer, .w = w, .e = *e, .grows = grows};
	return STRATA_OK;
}

/* Same shape; or the same but for a smaller last dimension that counts the layer's outputs. */
static strata_status check_shape(transfer *t, strata_layer *layer, uint32_t w, const st_checkpoint_entry *e,
                                 st_pos pos, bool *grows)
{
	const strata_shape *ms = &layer->weights[w].shape, *fs = &e->shape;
	char a[160], b[160];
	const char *why = NULL;
	*grows = false;
	bool same_rank = ms->rank == fs->rank && ms->rank > 0;
	bool leading = same_rank;
	for (uint32_t d = 0; leading && d + 1 < ms->rank; d++)
		leading = ms->dims[d] == fs->dims[d];
	if (leading && ms->dims[ms->rank - 1] == fs->dims[ms->rank - 1])
		return STRATA_OK;
	int64_t outputs = layer->out.rank ? layer->out.dims[layer->out.rank - 1] : 0;
	if (!leading)
		why = "only the last dimension, the layer's outputs, may differ";
	else if (ms->dims[ms->rank - 1] != outputs)
		why = "its last dimension is not the layer's outputs, so it cannot grow";
	else if (fs->dims[fs->rank - 1] > ms->dims[ms->rank - 1])
		why = "the model has fewer outputs than the file; init_from can only add outputs";
	if (why) {
		st_shape_text(fs, a, sizeof(a));
		st_shape_text(ms, b, sizeof(b));
		return fail_at(t, pos, STRATA_ERR_INVALID, "%s has shape %s in %s but %s in the model: %s", e->name,
		               a, t->ini->weights, b, why);
	}
	*grows = true;
	return STRATA_OK;
}

static strata_status check_layer(transfer *t, strata_layer *layer, st_pos pos)
{
	uint32_t n = st_checkpoint_count(t->f);
	char list[1024], name[sizeof(((st_checkpoint_entry *)0)->name) + 128];
	bool any = false;
	strata_status st;
	for (uint32_t i = 0; i < n; i++) {
		st_checkpoint_entry e;
		st_checkpoint_entry_at(t->f, i, &e);
		const char *wname = weight_of(&e, layer);
		if (!wname)
			continue;
		any = true;
		uint32_t w = 0;
		while (w < layer->n_weights && strcmp(layer->weights[w].name, wname))
			w++;
		if (w == layer->n_weights) {
			size_t o = 0;
			list[0] = '\0';
			for (uint32_t k = 0; k < layer->n_weights; k++)
				append(list, sizeof(list), &o, layer->weights[k].name, strlen(layer->weights[k].name));
			return fail_at(t, pos, STRATA_ERR_INVALID,
			               "%s holds %s, but layer '%s' of the model has no weight '%s' (its weights: %s)",
			               t->ini->weights, e.name, layer->name, wname, list);
		}
	}
	if (!any) {
		file_layers(t->f, list, sizeof(list));
		return fail_at(t, pos, STRATA_ERR_INVALID, "%s holds no weights of layer '%s'; it holds layers: %s",
		               t->ini->weights, layer->name, list);
	}
	for (uint32_t w = 0; w < layer->n_weights; w++) {
		st_checkpoint_entry e;
		char shape[160];
		snprintf(name, sizeof(name), "%s/%s", layer->name, layer->weights[w].name);
		if (!st_checkpoint_find(t->f, name, &e) || e.kind != ST_TENSOR_WEIGHT) {
			st_shape_text(&layer->weights[w].shape, shape, sizeof(shape));
			return fail_at(t, pos, STRATA_ERR_INVALID, "%s holds no weight %s (shape %s in the model)",
			               t->ini->weights, name, shape);
		}
		bool grows;
		if ((st = check_shape(t, layer, w, &e, pos, &grows)) || (st = add_plan(t, layer, w, &e, grows)))
			return st;
	}
	return STRATA_OK;
}

/* Every layer listed, or, with none listed, every layer whose weights the file holds. */
static strata_status check_all(transfer *t)
{
	strata_model *m = t->s->model;
	strata_status st;
	if (t->ini->n_layers) {
		for (size_t i = 0; i < t->ini->n_layers; i++)
			if ((st = check_layer(t, &m->layers[t->ini->layers[i]], t->ini->layer_pos[i])))
				return st;
		return STRATA_OK;
	}
	uint32_t n = st_checkpoint_count(t->f);
	for (size_t i = 0; i < m->n_layers; i++) {
		bool held = false;
		for (uint32_t k = 0; k < n && !held; k++) {
			st_checkpoint_entry e;
			st_checkpoint_entry_at(t->f, k, &e);
			held = weight_of(&e, &m->layers[i]) != NULL;
		}
		if (held && (st = check_layer(t, &m->layers[i], t->ini->pos)))
			return st;
	}
	if (t->n_plan == 0) {
		char list[1024];
		file_layers(t->f, list, sizeof(list));
		return fail_at(t, t->ini->pos, STRATA_ERR_INVALID,
		               "%s holds no weights of any layer of the model; it holds layers: %s", t->ini->weights,
		               list);
	}
	return STRATA_OK;
}

/* A wider tensor keeps its initial values beyond the file's: each run of the last dimension
 * takes the file's first values. */
static strata_status write_one(transfer *t, const planned *p)
{
	const st_weight_decl *d = &p->layer->weights[p->w];
	strata_tensor *tensor = &t->s->binds[p->layer->index].weights[p->w];
	size_t bytes = (size_t)d->count * sizeof(float);
	float *host = malloc(bytes), *file = p->grows ? malloc((size_t)p->e.count * sizeof(float)) : host;
	strata_status st;
	if (!host || !file) {
		st = st_fail(t->err, STRATA_ERR_NO_MEMORY, "out of memory for %s", p->e.name);
		goto out_free;
	}
	st_checkpoint_copy(&p->e, file);
	if (p->grows) {
		if ((st = st_tensor_read(t->s->rt, tensor, 0, host, bytes, t->err)))
			goto out_free;
		size_t wide = (size_t)d->shape.dims[d->shape.rank - 1];
		size_t narrow = (size_t)p->e.shape.dims[p->e.shape.rank - 1];
		size_t rows = (size_t)p->e.count / narrow;
		for (size_t r = 0; r < rows; r++)
			memcpy(host + r * wide, file + r * narrow, narrow * sizeof(float));
	}
	st = st_tensor_write(t->s->rt, tensor, 0, host, bytes, t->err);
out_free:
	if (file != host)
		free(file);
	free(host);
	return st;
}

/* "conv2d_1, dense_2 from FILE; dense_2 grows from 10 to 12 outputs": the plan lists each
 * layer's weights together. */
static void describe(const transfer *t, char *buf, size_t size)
{
	size_t o = 0;
	const strata_layer *last = NULL;
	for (size_t i = 0; i < t->n_plan && o < size; i++) {
		if (t->plan[i].layer == last)
			continue;
		last = t->plan[i].layer;
		o += (size_t)snprintf(buf + o, size - o, "%s%s", o ? ", " : "", last->name);
	}
	if (o < size)
		o += (size_t)snprintf(buf + o, size - o, " from %s", t->ini->weights);
	last = NULL;
	for (size_t i = 0; i < t->n_plan && o < size; i++) {
		const planned *p = &t->plan[i];
		if (!p->grows || p->layer == last)
			continue;
		last = p->layer;
		const strata_shape *wide = &p->layer->weights[p->w].shape;
		o += (size_t)snprintf(buf + o, size - o, "; %s grows from %lld to %lld outputs", p->layer->name,
		                      (long long)p->e.shape.dims[p->e.shape.rank - 1],
		                      (long long)wide->dims[wide->rank - 1]);
	}
}

strata_status st_transfer_apply(strata_session *s, char *report, size_t report_size, strata_error *err)
{
	if (report && report_size)
		report[0] = '\0';
	const st_init_from *ini = &s->model->recipe.init_from;
	transfer t = {.s = s, .ini = ini, .err = err};
	strata_error local = {0};
	if (!ini->weights)
		return STRATA_OK;
	strata_status st = st_checkpoint_open(ini->weights, &t.f, &local);
	if (st)
		return fail_at(&t, ini->pos, st, "%s", local.message);
	if ((st = check_all(&t)))
		goto out_close;
	for (size_t i = 0; i < t.n_plan; i++)
		if ((st = write_one(&t, &t.plan[i])))
			goto out_close;
	if (report && report_size)
		describe(&t, report, report_size);
out_close:
	free(t.plan);
	st_checkpoint_close(t.f);
	return st;
}

strata_status strata_session_init_from(strata_session *s, char *report, size_t report_size, strata_error *err)
{
	if (!s)
		return st_fail(err, STRATA_ERR_INVALID, "strata_session_init_from: no session");
	return st_transfer_apply(s, report, report_size, err);
}
