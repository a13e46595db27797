#include "train/dataset.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/idx.h"
#include "base/initializers.h"
#include "exec/session.h"

static strata_status check_files(const strata_idx *images, const strata_idx *labels, const strata_dataset_options *o,
                                 strata_error *err)
{
	if (images->type != 0x08 || images->rank < 2)
		return st_fail(err, STRATA_ERR_INVALID,
		               "%s: expected unsigned-byte samples (IDX type 0x08, rank 2 or more), the file has "
		               "type 0x%02x and rank %u",
		               o->images, images->type, images->rank);
	if (labels->type != 0x08 || labels->rank != 1)
		return st_fail(err, STRATA_ERR_INVALID,
		               "%s: expected one unsigned-byte label per sample (IDX type 0x08, rank 1), the file "
		               "has type 0x%02x and rank %u",
		               o->labels, labels->type, labels->rank);
	if (labels->dims[0] != images->dims[0])
		return st_fail(err, STRATA_ERR_INVALID, "%s holds %u samples but %s holds %u labels", o->images,
		               images->dims[0], o->labels, labels->dims[0]);
	for (uint32_t i = 0; i < o->n_keep_labels; i++)
		if (o->keep_labels[i] >= o->num_classes)
			return st_fail(err, STRATA_ERR_INVALID,
			               "%s: keep_labels holds class %u, not below num_classes (%u)", o->labels,
			               o->keep_labels[i], o->num_classes);
	return STRATA_OK;
}

/* The file positions of the samples the options select: those whose label is kept (every kept
 * label of the file must be below num_classes), then [offset, offset + limit) of them. Labels
 * are bytes, so a table of 256 says which are kept. */
static strata_status select_samples(const strata_idx *labels, const strata_dataset_options *o, uint32_t **out,
                                    uint32_t *n, strata_error *err)
{
	bool keep[256];
	for (int c = 0; c < 256; c++)
		keep[c] = o->n_keep_labels == 0;
	for (uint32_t i = 0; i < o->n_keep_labels; i++)
		if (o->keep_labels[i] < 256)
			keep[o->keep_labels[i]] = true;
	const uint8_t *l = labels->data;
	uint32_t total = labels->dims[0], kept = 0;
	for (uint32_t i = 0; i < total; i++) {
		if (!keep[l[i]])
			continue;
		if (l[i] >= o->num_classes)
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
		if (!keep[l[i]])
			continue;
		if (k++ >= o->offset)
			(*out)[taken++] = i;
	}
	return STRATA_OK;
}

/* Mean and 1/std per value over the samples, as scikit-learn's StandardScaler (population std;
 * a constant value is only centred). */
static strata_status compute_standardization(strata_dataset *ds, const uint8_t *px, strata_error *err)
{
	ds->mean = calloc(ds->per_sample, sizeof(float));
	ds->inv_std = calloc(ds->per_sample, sizeof(float));
	double *sum = calloc(ds->per_sample, sizeof(double));
	double *sq = calloc(ds->per_sample, sizeof(double));
	strata_status st = STRATA_OK;
	if (!ds->mean || !ds->inv_std || !sum || !sq) {
		st = st_fail(err, STRATA_ERR_NO_MEMORY, "out of memory");
		goto out_free;
	}
	for (uint32_t i = 0; i < ds->n; i++)
		for (uint32_t k = 0; k < ds->per_sample; k++) {
			double v = px[(size_t)i * ds->per_sample + k] * (double)ds->scale;
			sum[k] += v;
			sq[k] += v * v;
		}
	for (uint32_t k = 0; k < ds->per_sample; k++) {
		double mean = sum[k] / ds->n;
		double var = sq[k] / ds->n - mean * mean;
		ds->mean[k] = (float)mean;
		ds->inv_std[k] = var > 1e-12 ? (float)(1.0 / sqrt(var)) : 1.0f;
	}
out_free:
	free(sum);
	free(sq);
	return st;
}

static strata_status upload_standardization(strata_dataset *ds, strata_error *err)
{
	size_t bytes = ds->per_sample * sizeof(float);
	strata_status st;
	if ((st = st_tensor_alloc(ds->rt, &ds->dev_mean, bytes, "the data set's means", err)) ||
	    (st = st_tensor_alloc(ds->rt, &ds->dev_inv_std, bytes, "the data set's deviations", err)) ||
	    (st = st_tensor_write(ds->rt, &ds->dev_mean, 0, ds->mean, bytes, err)))
		return st;
	return st_tensor_write(ds->rt, &ds->dev_inv_std, 0, ds->inv_std, bytes, err);
}

strata_status strata_dataset_load(strata_runtime *rt, const strata_dataset_options *options, strata_dataset **out,
                                  strata_error *err)
{
	strata_dataset_options o = {.size = sizeof(o)};
	memcpy(&o, options, options->size < sizeof(o) ? options->size : sizeof(o));
	*out = NULL;
	if (!o.images || !o.labels || o.num_classes == 0)
		return st_fail(err, STRATA_ERR_INVALID, "a data set needs images, labels and num_classes");
	if (o.n_keep_labels && !o.keep_labels)
		return st_fail(err, STRATA_ERR_INVALID, "keep_labels is NULL but n_keep_labels is %u",
		               o.n_keep_labels);
	strata_idx *images = NULL, *labels = NULL;
	strata_dataset *ds = NULL;
	uint32_t *chosen = NULL;
	uint8_t *gathered = NULL;
	strata_status st;
	if ((st = strata_idx_load(o.images, &images, err)) || (st = strata_idx_load(o.labels, &labels, err)) ||
	    (st = check_files(images, labels, &o, err)))
		goto out_free;
	uint32_t total = images->dims[0], n = 0;
	if ((st = select_samples(labels, &o, &chosen, &n, err)))
		goto out_free;
	ds = calloc(1, sizeof(*ds));
	if (!ds) {
		st = st_fail(err, STRATA_ERR_NO_MEMORY, "out of memory");
		goto out_free;
	}
	ds->rt = rt;
	ds->n = n;
	/* The IDX reader refuses a file of no samples, so `total` is not 0. */
	ds->per_sample = (uint32_t)(images->count / total);
	ds->sample_rank = images->rank - 1;
	memcpy(ds->sample_dims, images->dims + 1, ds->sample_rank * sizeof(uint32_t));
	if (!(ds->path = strdup(o.images))) {
		st = st_fail(err, STRATA_ERR_NO_MEMORY, "out of memory");
		goto out_free;
	}
	ds->classes = o.num_classes;
	ds->scale = o.scale > 0 ? (float)o.scale : 1.0f;
	size_t bytes = (size_t)ds->n * ds->per_sample;
	ds->host_labels = malloc(ds->n);
	if (!ds->host_labels) {
		st = st_fail(err, STRATA_ERR_NO_MEMORY, "out of memory");
		goto out_free;
	}
	for (uint32_t i = 0; i < ds->n; i++)
		ds->host_labels[i] = ((const uint8_t *)labels->data)[chosen[i]];
	const uint8_t *lab = ds->host_labels;
	/* Without a filter the selection is one run of the file, used in place. */
	const uint8_t *px = (const uint8_t *)images->data + (size_t)chosen[0] * ds->per_sample;
	if (o.n_keep_labels) {
		if (!(gathered = malloc(bytes))) {
			st = st_fail(err, STRATA_ERR_NO_MEMORY, "out of memory");
			goto out_free;
		}
		for (uint32_t i = 0; i < ds->n; i++)
			memcpy(gathered + (size_t)i * ds->per_sample,
			       (const uint8_t *)images->data + (size_t)chosen[i] * ds->per_sample, ds->per_sample);
		px = gathered;
	}
	if ((st = st_tensor_alloc(rt, &ds->images, bytes, "the data set's samples", err)) ||
	    (st = st_tensor_write(rt, &ds->images, 0, px, bytes, err)) ||
	    (st = st_tensor_alloc(rt, &ds->labels, ds->n, "the data set's labels", err)) ||
	    (st = st_tensor_write(rt, &ds->labels, 0, lab, ds->n, err)) ||
	    (st = st_tensor_alloc(rt, &ds->order, (size_t)ds->n * sizeof(int), "the data set's order", err)) ||
	    (st = st_dataset_set_order(ds, false, 0, 0, err)))
		goto out_free;
	if (o.standardize) {
		ds->standardize = true;
		if (o.reference) {
			if (!o.reference->standardize) {
				st = st_fail(err, STRATA_ERR_INVALID,
				             "%s: the reference data set (%s) was loaded without standardize", o.images,
				             o.reference->path);
				goto out_free;
			}
			if (o.reference->sample_rank != ds->sample_rank ||
			    memcmp(o.reference->sample_dims, ds->sample_dims, ds->sample_rank * sizeof(uint32_t))) {
				char mine[96], theirs[96];
				st_idx_dims_text(ds->sample_dims, ds->sample_rank, mine, sizeof(mine));
				st_idx_dims_text(o.reference->sample_dims, o.reference->sample_rank, theirs,
				                 sizeof(theirs));
				st = st_fail(err, STRATA_ERR_INVALID,
				             "%s: samples of %s, those of the reference data set %s are %s", o.images,
				             mine, o.reference->path, theirs);
				goto out_free;
			}
			ds->mean = malloc(ds->per_sample * sizeof(float));
			ds->inv_std = malloc(ds->per_sample * sizeof(float));
			if (!ds->mean || !ds->inv_std) {
				st = st_fail(err, STRATA_ERR_NO_MEMORY, "out of memory");
				goto out_free;
			}
			memcpy(ds->mean, o.reference->mean, ds->per_sample * sizeof(float));
			memcpy(ds->inv_std, o.reference->inv_std, ds->per_sample * sizeof(float));
		} else if ((st = compute_standardization(ds, px, err))) {
			goto out_free;
		}
		if ((st = upload_standardization(ds, err)))
			goto out_free;
	}
	*out = ds;
	ds = NULL;
out_free:
	free(gathered);
	free(chosen);
	strata_dataset_free(ds);
	strata_idx_free(images);
	strata_idx_free(labels);
	return st;
}

void strata_dataset_free(strata_dataset *ds)
{
	if (!ds)
		return;
	st_tensor_release(&ds->images);
	st_tensor_release(&ds->labels);
	st_tensor_release(&ds->order);
	st_tensor_release(&ds->dev_mean);
	st_tensor_release(&ds->dev_inv_std);
	free(ds->host_labels);
	free(ds->path);
	free(ds->mean);
	free(ds->inv_std);
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

strata_status st_dataset_gather(strata_dataset *ds, uint32_t start, uint32_t batch, strata_tensor *x,
                                strata_tensor *labels, strata_error *err)
{
	strata_kernel *gi, *gl;
	strata_status st;
	if ((st = st_kernel_get(ds->rt, "strata_data", "gather_images", NULL, &gi, err)) ||
	    (st = st_kernel_get(ds->rt, "strata_data", "gather_labels", NULL, &gl, err)))
		return st;
	ds->rt->phase = "data";
	strata_tensor *mean = ds->standardize ? &ds->dev_mean : &ds->order;
	strata_tensor *inv = ds->standardize ? &ds->dev_inv_std : &ds->order;
	strata_arg a[] = {strata_arg_tensor(&ds->images), strata_arg_tensor(&ds->order), strata_arg_int((int)start),
	                  strata_arg_int((int)batch),     strata_arg_int((int)ds->per_sample),
	                  strata_arg_float(ds->scale),    strata_arg_int(ds->standardize),
	                  strata_arg_tensor(mean),        strata_arg_tensor(inv),
	                  strata_arg_tensor(x)};
	size_t global[2] = {ds->per_sample, batch};
	if ((st = st_launch(ds->rt, "data", gi, 2, global, NULL, 10, a, err)))
		return st;
	if (!labels)
		return STRATA_OK;
	strata_arg b[] = {strata_arg_tensor(&ds->labels), strata_arg_tensor(&ds->order), strata_arg_int((int)start),
	                  strata_arg_int((int)batch), strata_arg_tensor(labels)};
	size_t g1 = batch;
	return st_launch(ds->rt, "data", gl, 1, &g1, NULL, 5, b, err);
}

void strata_dataset_transform(const strata_dataset *ds, const uint8_t *in, float *out, size_t n_samples)
{
	for (size_t i = 0; i < n_samples; i++)
		for (uint32_t k = 0; k < ds->per_sample; k++) {
			size_t j = i * ds->per_sample + k;
			float v = in[j] * ds->scale;
			out[j] = ds->standardize ? (v - ds->mean[k]) * ds->inv_std[k] : v;
		}
}

strata_status st_session_check_data(const strata_session *s, const strata_dataset *ds, const char *what,
                                    strata_error *err)
{
	strata_model *m = s->model;
	uint64_t out = st_model_output_elems(m);
	char role[64];
	snprintf(role, sizeof(role), "the %s data", what);
	strata_status st = st_idx_check_fit(ds->path, role, ds->sample_dims, ds->sample_rank, &m->input, err);
	if (st)
		return st;
	if (ds->classes != out)
		return st_fail(err, STRATA_ERR_INVALID, "%s: the %s data has %u classes, the model's output %llu values",
		               ds->path, what, ds->classes, (unsigned long long)out);
	return STRATA_OK;
}
