#include "train/dataset.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/idx.h"
#include "base/initializers.h"
#include "exec/session.h"

/* The files' kinds and sizes: samples as bytes or int32 ids, one byte label per sample, and the
 * same number of samples in every file. */
static strata_status check_input(const strata_idx *idx, const char *path, uint32_t n, strata_error *err)
{
	if ((idx->type != 0x08 && idx->type != 0x0C) || idx->rank < 2)
		return st_fail(err, STRATA_ERR_INVALID,
		               "%s: expected samples of unsigned bytes or int32 ids (IDX type 0x08 or 0x0C, rank 2 or "
		               "more), the file has type 0x%02x and rank %u",
		               path, idx->type, idx->rank);
	if (idx->dims[0] != n)
		return st_fail(err, STRATA_ERR_INVALID, "%s holds %u samples, the data set's first file %u", path,
		               idx->dims[0], n);
	return STRATA_OK;
}

static strata_status check_labels(const strata_idx *labels, const char *path, const char *images, uint32_t n,
                                  strata_error *err)
{
	if (labels->type != 0x08 || labels->rank != 1)
		return st_fail(err, STRATA_ERR_INVALID,
		               "%s: expected one unsigned-byte label per sample (IDX type 0x08, rank 1), the file "
		               "has type 0x%02x and rank %u",
		               path, labels->type, labels->rank);
	if (labels->dims[0] != n)
		return st_fail(err, STRATA_ERR_INVALID, "%s holds %u samples but %s holds %u labels", images, n, path,
		               labels->dims[0]);
	return STRATA_OK;
}

/* The file positions of the samples the options select: those whose label is kept (every kept
 * label of the file must be below num_classes), then [offset, offset + limit) of them. Labels
 * are bytes, so a table of 256 says which are kept. */
static strata_status select_samples(const strata_idx *labels, uint32_t total, const strata_dataset_options *o,
                                    uint32_t **out, uint32_t *n, strata_error *err)
{
	for (uint32_t i = 0; i < o->n_keep_labels; i++)
		if (o->keep_labels[i] >= o->num_classes)
			return st_fail(err, STRATA_ERR_INVALID, "%s: keep_labels holds class %u, not below num_classes (%u)",
			               o->labels, o->keep_labels[i], o->num_classes);
	bool keep[256];
	for (int c = 0; c < 256; c++)
		keep[c] = o->n_keep_labels == 0;
	for (uint32_t i = 0; i < o->n_keep_labels; i++)
		if (o->keep_labels[i] < 256)
			keep[o->keep_labels[i]] = true;
	/* Without labels (a model that learns without them), every sample is kept. */
	static const uint8_t none = 0;
	const uint8_t *l = labels ? labels->data : &none;
	size_t step = labels ? 1 : 0;
	uint32_t kept = 0;
	for (uint32_t i = 0; i < total; i++) {
		if (!keep[l[i * step]])
			continue;
		if (labels && l[i] >= o->num_classes)
			return st_fail(err, STRATA_ERR_INVALID, "%s: label %u of sample %u is not below num_classes (%u)",
			               o->labels, l[i], i, o->num_classes);
		kept++;
	}
	if (o->offset > kept || (o->limit && o->limit > kept - o->offset))
		return st_fail(err, STRATA_ERR_INVALID, "%s: samples %u to %u requested, the file holds %u%s",
		               o->images, o->offset, o->offset + o->limit, kept,
		               o->n_keep_labels ? " with a label in keep_labels" : "");
	*n = o->limit ? o->limit : kept - o->offset;
	if (*n == 0)
		return st_fail(err, STRATA_ERR_INVALID, "%s: no samples selected%s", o->images,
		               o->n_keep_labels && kept == 0 ? ": no label is in keep_labels" : "");
	*out = malloc((size_t)*n * sizeof(**out));
	if (!*out)
		return st_fail(err, STRATA_ERR_NO_MEMORY, "out of memory");
	for (uint32_t i = 0, k = 0, taken = 0; i < total && taken < *n; i++) {
		if (!keep[l[i * step]])
			continue;
		if (k++ >= o->offset)
			(*out)[taken++] = i;
	}
	return STRATA_OK;
}

/* Mean and 1/std per value over the samples, as scikit-learn's StandardScaler (population std;
 * a constant value is only centred). */
static strata_status compute_standardization(st_feed *f, uint32_t n, float scale, const uint8_t *px,
                                             strata_error *err)
{
	f->mean = calloc(f->per_sample, sizeof(float));
	f->inv_std = calloc(f->per_sample, sizeof(float));
	double *sum = calloc(f->per_sample, sizeof(double));
	double *sq = calloc(f->per_sample, sizeof(double));
	strata_status st = STRATA_OK;
	if (!f->mean || !f->inv_std || !sum || !sq) {
		st = st_fail(err, STRATA_ERR_NO_MEMORY, "out of memory");
		goto out_free;
	}
	for (uint32_t i = 0; i < n; i++)
		for (uint32_t k = 0; k < f->per_sample; k++) {
			double v = px[(size_t)i * f->per_sample + k] * (double)scale;
			sum[k] += v;
			sq[k] += v * v;
		}
	for (uint32_t k = 0; k < f->per_sample; k++) {
		double mean = sum[k] / n;
		double var = sq[k] / n - mean * mean;
		f->mean[k] = (float)mean;
		f->inv_std[k] = var > 1e-12 ? (float)(1.0 / sqrt(var)) : 1.0f;
	}
out_free:
	free(sum);
	free(sq);
	return st;
}

/* Standardization from `ref` (the same input of a reference set) or from the feed's own bytes. */
static strata_status standardize_feed(strata_dataset *ds, st_feed *f, const st_feed *ref, const uint8_t *px,
                                      strata_error *err)
{
	size_t bytes = f->per_sample * sizeof(float);
	strata_status st;
	if (ref) {
		if (!ref->mean)
			return st_fail(err, STRATA_ERR_INVALID, "%s: the reference data set (%s) was loaded without standardize",
			               f->path, ref->path);
		if (ref->sample_rank != f->sample_rank ||
		    memcmp(ref->sample_dims, f->sample_dims, f->sample_rank * sizeof(uint32_t))) {
			char mine[96], theirs[96];
			st_idx_dims_text(f->sample_dims, f->sample_rank, mine, sizeof(mine));
			st_idx_dims_text(ref->sample_dims, ref->sample_rank, theirs, sizeof(theirs));
			return st_fail(err, STRATA_ERR_INVALID, "%s: samples of %s, those of the reference data set %s are %s",
			               f->path, mine, ref->path, theirs);
		}
		f->mean = malloc(bytes);
		f->inv_std = malloc(bytes);
		if (!f->mean || !f->inv_std)
			return st_fail(err, STRATA_ERR_NO_MEMORY, "out of memory");
		memcpy(f->mean, ref->mean, bytes);
		memcpy(f->inv_std, ref->inv_std, bytes);
	} else if ((st = compute_standardization(f, ds->n, ds->scale, px, err))) {
		return st;
	}
	if ((st = st_tensor_alloc(ds->rt, &f->dev_mean, bytes, "the data set's means", err)) ||
	    (st = st_tensor_alloc(ds->rt, &f->dev_inv_std, bytes, "the data set's deviations", err)) ||
	    (st = st_tensor_write(ds->rt, &f->dev_mean, 0, f->mean, bytes, err)))
		return st;
	return st_tensor_write(ds->rt, &f->dev_inv_std, 0, f->inv_std, bytes, err);
}

/* Stages the chosen samples of one input file. */
static strata_status load_feed(strata_dataset *ds, st_feed *f, const char *path, const strata_idx *idx,
                               const uint32_t *chosen, const st_feed *ref, strata_error *err)
{
	if (!(f->path = strdup(path)))
		return st_fail(err, STRATA_ERR_NO_MEMORY, "out of memory");
	/* The IDX reader refuses a file of no samples, so dims[0] is not 0. */
	f->per_sample = (uint32_t)(idx->count / idx->dims[0]);
	f->sample_rank = idx->rank - 1;
	memcpy(f->sample_dims, idx->dims + 1, f->sample_rank * sizeof(uint32_t));
	f->ints = idx->type == 0x0C;
	size_t elem = f->ints ? sizeof(int32_t) : 1, row = (size_t)f->per_sample * elem, bytes = row * ds->n;
	uint8_t *rows = malloc(bytes ? bytes : 1);
	if (!rows)
		return st_fail(err, STRATA_ERR_NO_MEMORY, "out of memory for %s", path);
	for (uint32_t i = 0; i < ds->n; i++)
		memcpy(rows + (size_t)i * row, (const uint8_t *)idx->data + (size_t)chosen[i] * row, row);
	strata_status st;
	if (!(st = st_tensor_alloc(ds->rt, &f->data, bytes, "the data set's samples", err)) &&
	    !(st = st_tensor_write(ds->rt, &f->data, 0, rows, bytes, err)) && ds->standardize && !f->ints)
		st = standardize_feed(ds, f, ref, rows, err);
	free(rows);
	return st;
}

/* Stages the chosen samples' labels of one output, each below `classes`. */
static strata_status load_target(strata_dataset *ds, st_target *t, const char *path, const strata_idx *idx,
                                 uint32_t classes, const uint32_t *chosen, strata_error *err)
{
	if (!(t->path = strdup(path)) || !(t->host = malloc(ds->n)))
		return st_fail(err, STRATA_ERR_NO_MEMORY, "out of memory");
	t->classes = classes;
	const uint8_t *l = idx->data;
	for (uint32_t i = 0; i < ds->n; i++) {
		t->host[i] = l[chosen[i]];
		if (t->host[i] >= classes)
			return st_fail(err, STRATA_ERR_INVALID, "%s: label %u of sample %u is not below num_classes (%u)", path,
			               t->host[i], chosen[i], classes);
	}
	strata_status st = st_tensor_alloc(ds->rt, &t->dev, ds->n, "the data set's labels", err);
	return st ? st : st_tensor_write(ds->rt, &t->dev, 0, t->host, ds->n, err);
}

strata_status strata_dataset_load(strata_runtime *rt, const strata_dataset_options *options, strata_dataset **out,
                                  strata_error *err)
{
	strata_dataset_options o = {.size = sizeof(o)};
	memcpy(&o, options, options->size < sizeof(o) ? options->size : sizeof(o));
	*out = NULL;
	/* Labels are optional (a model that learns without them), but then all of them. */
	if (!o.images || (o.labels && o.num_classes == 0))
		return st_fail(err, STRATA_ERR_INVALID, "a data set needs images, and num_classes with labels");
	if ((o.n_keep_labels && !o.keep_labels) || (o.n_more_images && !o.more_images) ||
	    (o.n_more_labels && (!o.more_labels || !o.more_num_classes)))
		return st_fail(err, STRATA_ERR_INVALID, "a data set's options give a count without its list");
	if (!o.labels && (o.n_more_labels || o.n_keep_labels))
		return st_fail(err, STRATA_ERR_INVALID, "%s: more labels or keep_labels without labels", o.images);
	uint32_t n_feeds = 1 + o.n_more_images, n_targets = o.labels ? 1 + o.n_more_labels : 0;
	if (o.reference && (o.reference->n_feeds != n_feeds))
		return st_fail(err, STRATA_ERR_INVALID, "%s: %u input files, the reference data set has %u", o.images,
		               n_feeds, o.reference->n_feeds);
	strata_idx **files = calloc(n_feeds + n_targets, sizeof(*files));
	strata_dataset *ds = calloc(1, sizeof(*ds));
	uint32_t *chosen = NULL;
	strata_status st = STRATA_OK;
	if (!files || !ds) {
		st = st_fail(err, STRATA_ERR_NO_MEMORY, "out of memory");
		goto out_free;
	}
	ds->rt = rt;
	ds->scale = o.scale > 0 ? (float)o.scale : 1.0f;
	ds->standardize = o.standardize;
	ds->feeds = calloc(n_feeds, sizeof(*ds->feeds));
	ds->targets = calloc(n_targets, sizeof(*ds->targets));
	if (!ds->feeds || !ds->targets) {
		st = st_fail(err, STRATA_ERR_NO_MEMORY, "out of memory");
		goto out_free;
	}
	/* Every file is read and checked before anything goes to the device. */
	for (uint32_t i = 0; i < n_feeds + n_targets && !st; i++) {
		const char *path = i == 0 ? o.images : i < n_feeds ? o.more_images[i - 1]
		                 : i == n_feeds ? o.labels : o.more_labels[i - n_feeds - 1];
		if (!path)
			st = st_fail(err, STRATA_ERR_INVALID, "a data set's file %u is NULL", i);
		else if (!(st = strata_idx_load(path, &files[i], err)))
			st = i < n_feeds ? check_input(files[i], path, files[0]->dims[0], err)
			                 : check_labels(files[i], path, o.images, files[0]->dims[0], err);
	}
	if (st || (st = select_samples(n_targets ? files[n_feeds] : NULL, files[0]->dims[0], &o, &chosen, &ds->n, err)))
		goto out_free;
	for (uint32_t i = 0; i < n_feeds && !st; i++) {
		const char *path = i == 0 ? o.images : o.more_images[i - 1];
		st = load_feed(ds, &ds->feeds[i], path, files[i], chosen, o.reference ? &o.reference->feeds[i] : NULL, err);
		ds->n_feeds = i + 1;
	}
	for (uint32_t i = 0; i < n_targets && !st; i++) {
		const char *path = i == 0 ? o.labels : o.more_labels[i - 1];
		uint32_t classes = i == 0 ? o.num_classes : o.more_num_classes[i - 1];
		st = load_target(ds, &ds->targets[i], path, files[n_feeds + i], classes, chosen, err);
		ds->n_targets = i + 1;
	}
	if (st || (st = st_tensor_alloc(rt, &ds->order, (size_t)ds->n * sizeof(int), "the data set's order", err)) ||
	    (st = st_dataset_set_order(ds, false, 0, 0, err)))
		goto out_free;
	*out = ds;
	ds = NULL;
out_free:
	free(chosen);
	strata_dataset_free(ds);
	for (uint32_t i = 0; files && i < n_feeds + n_targets; i++)
		strata_idx_free(files[i]);
	free(files);
	return st;
}

void strata_dataset_free(strata_dataset *ds)
{
	if (!ds)
		return;
	for (uint32_t i = 0; i < ds->n_feeds; i++) {
		st_feed *f = &ds->feeds[i];
		st_tensor_release(&f->data);
		st_tensor_release(&f->dev_mean);
		st_tensor_release(&f->dev_inv_std);
		free(f->path);
		free(f->mean);
		free(f->inv_std);
	}
	free(ds->feeds);
	for (uint32_t i = 0; i < ds->n_targets; i++) {
		st_tensor_release(&ds->targets[i].dev);
		free(ds->targets[i].host);
		free(ds->targets[i].path);
	}
	free(ds->targets);
	st_tensor_release(&ds->order);
	free(ds);
}

uint32_t strata_dataset_count(const strata_dataset *ds)
{
	return ds->n;
}

strata_status st_dataset_set_order(strata_dataset *ds, bool shuffle, uint64_t seed, uint64_t epoch, strata_error *err)
{
	int *order = malloc((size_t)ds->n * sizeof(int));
	if (!order)
		return st_fail(err, STRATA_ERR_NO_MEMORY, "out of memory");
	for (uint32_t i = 0; i < ds->n; i++)
		order[i] = (int)i;
	if (shuffle) {
		/* Its own stream, apart from the weight initializers'. */
		st_rng rng;
		st_rng_seed(&rng, seed, 0x5348554646ull ^ (epoch << 40));
		for (uint32_t i = ds->n - 1; i > 0; i--) {
			uint32_t j = (uint32_t)(st_rng_next(&rng) % (i + 1));
			int t = order[i];
			order[i] = order[j];
			order[j] = t;
		}
	}
	strata_status st = st_tensor_write(ds->rt, &ds->order, 0, order, (size_t)ds->n * sizeof(int), err);
	free(order);
	return st;
}

/* One feed into a float or int32 model input. */
static strata_status gather_feed(strata_dataset *ds, st_feed *f, uint32_t start, uint32_t batch, strata_tensor *x,
                                 bool ints, const char *input, strata_error *err)
{
	strata_kernel *k;
	strata_status st;
	size_t global[2] = {f->per_sample, batch};
	ds->rt->phase = "data";
	if (ints) {
		if ((st = st_kernel_get(ds->rt, "strata_data", f->ints ? "gather_ids" : "gather_byte_ids", NULL, &k, err)))
			return st;
		strata_arg a[] = {strata_arg_tensor(&f->data), strata_arg_tensor(&ds->order), strata_arg_int((int)start),
		                  strata_arg_int((int)batch), strata_arg_int((int)f->per_sample), strata_arg_tensor(x)};
		return st_launch(ds->rt, "data", k, 2, global, NULL, 6, a, err);
	}
	if (f->ints)
		return st_fail(err, STRATA_ERR_INVALID, "%s holds int32 ids, but input '%s' is float32", f->path, input);
	if ((st = st_kernel_get(ds->rt, "strata_data", "gather_images", NULL, &k, err)))
		return st;
	bool standardize = f->mean != NULL;
	strata_tensor *mean = standardize ? &f->dev_mean : &ds->order;
	strata_tensor *inv = standardize ? &f->dev_inv_std : &ds->order;
	strata_arg a[] = {strata_arg_tensor(&f->data),    strata_arg_tensor(&ds->order), strata_arg_int((int)start),
	                  strata_arg_int((int)batch),     strata_arg_int((int)f->per_sample),
	                  strata_arg_float(ds->scale),    strata_arg_int(standardize),
	                  strata_arg_tensor(mean),        strata_arg_tensor(inv),
	                  strata_arg_tensor(x)};
	return st_launch(ds->rt, "data", k, 2, global, NULL, 10, a, err);
}

static strata_status gather_labels(strata_dataset *ds, st_target *t, uint32_t start, uint32_t batch,
                                   strata_tensor *labels, strata_error *err)
{
	strata_kernel *k;
	strata_status st = st_kernel_get(ds->rt, "strata_data", "gather_labels", NULL, &k, err);
	if (st)
		return st;
	strata_arg b[] = {strata_arg_tensor(&t->dev), strata_arg_tensor(&ds->order), strata_arg_int((int)start),
	                  strata_arg_int((int)batch), strata_arg_tensor(labels)};
	size_t g1 = batch;
	return st_launch(ds->rt, "data", k, 1, &g1, NULL, 5, b, err);
}

strata_status st_dataset_gather(strata_dataset *ds, uint32_t start, uint32_t batch, strata_tensor *x,
                                strata_tensor *labels, strata_error *err)
{
	strata_status st = gather_feed(ds, &ds->feeds[0], start, batch, x, false, "input", err);
	if (st || !labels)
		return st;
	return gather_labels(ds, &ds->targets[0], start, batch, labels, err);
}

strata_status st_dataset_gather_session(strata_dataset *ds, uint32_t start, uint32_t batch, strata_session *s,
                                        bool labels, strata_error *err)
{
	strata_model *m = s->model;
	strata_status st = STRATA_OK;
	for (uint32_t i = 0; i < ds->n_feeds && i < m->n_inputs && !st; i++)
		st = gather_feed(ds, &ds->feeds[i], start, batch, st_session_value(s, i),
		                 m->inputs[i].shape.dtype == STRATA_DTYPE_INT32, m->inputs[i].name, err);
	for (size_t h = 0; labels && h < s->n_heads && h < ds->n_targets && !st; h++)
		st = gather_labels(ds, &ds->targets[h], start, batch, &s->heads[h].labels, err);
	return st;
}

void strata_dataset_transform(const strata_dataset *ds, const uint8_t *in, float *out, size_t n_samples)
{
	const st_feed *f = &ds->feeds[0];
	for (size_t i = 0; i < n_samples; i++)
		for (uint32_t k = 0; k < f->per_sample; k++) {
			size_t j = i * f->per_sample + k;
			float v = in[j] * ds->scale;
			out[j] = f->mean ? (v - f->mean[k]) * f->inv_std[k] : v;
		}
}

/* The data set must feed every model input and label every output with a loss. */
strata_status st_session_check_data(const strata_session *s, const strata_dataset *ds, const char *what,
                                    strata_error *err)
{
	strata_model *m = s->model;
	char role[64];
	snprintf(role, sizeof(role), "the %s data", what);
	if (ds->n_feeds != m->n_inputs)
		return st_fail(err, STRATA_ERR_INVALID, "%s: the %s data has %u input files, the model %zu inputs",
		               ds->feeds[0].path, what, ds->n_feeds, m->n_inputs);
	for (uint32_t i = 0; i < ds->n_feeds; i++) {
		const st_feed *f = &ds->feeds[i];
		if (f->ints && m->inputs[i].shape.dtype != STRATA_DTYPE_INT32)
			return st_fail(err, STRATA_ERR_INVALID, "%s holds int32 ids, but input '%s' is float32", f->path,
			               m->inputs[i].name);
		strata_status st = st_idx_check_fit(f->path, role, f->sample_dims, f->sample_rank, &m->inputs[i].shape, err);
		if (st)
			return st;
	}
	/* The targets follow the outputs with a loss, in order. */
	uint32_t t = 0;
	for (size_t k = 0; k < m->recipe.n_outputs; k++) {
		if (!m->recipe.outputs[k].loss)
			continue;
		uint64_t out = st_shape_elems(&m->layers[m->outputs[k]].out);
		if (t >= ds->n_targets)
			return st_fail(err, STRATA_ERR_INVALID, "%s: the %s data has labels for %u outputs, output '%s' has none",
			               ds->feeds[0].path, what, ds->n_targets, m->layers[m->outputs[k]].name);
		if (ds->targets[t].classes != out)
			return st_fail(err, STRATA_ERR_INVALID, "%s: the %s data has %u classes, the model's output %s %llu values",
			               ds->targets[t].path, what, ds->targets[t].classes, m->layers[m->outputs[k]].name,
			               (unsigned long long)out);
		t++;
	}
	return STRATA_OK;
}
