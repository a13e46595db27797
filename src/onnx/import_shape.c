/* Operators that rearrange values: Flatten, Reshape, Transpose, Concat, Squeeze, Unsqueeze.
 * Transpose costs no layer at all (the value is relabelled: its layout records where ONNX's axes
 * are); Flatten of a feature map stored channels-last is a plain flatten whose feature order the
 * value remembers (import.h); Reshape reads ONNX's order. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "onnx/import.h"
#include "onnx/import_ops.h"

static bool batch_first(const imp_value *x)
{
	return x->perm[0] == 0;
}

/* A flatten of x to (batch, features), keeping the feature order of its layout. */
static strata_status flatten_to_2d(st_onnx_import *imp, imp_value *xp, strata_error *err)
{
	imp_value x = *xp;
	if (x.rank == 2 || x.flat_rank)
		return imp_alias(imp, 0, &x, NULL, err);
	if (!batch_first(&x))
		return imp_refuse(imp, "flattening a value whose batch axis is not first");
	const char *in = x.ref;
	imp_layer *l;
	strata_status st = imp_add_layer(imp, imp_hint(imp), "flatten", &in, 1, &l, err, NULL);
	if (st)
		return st;
	int64_t f = 1;
	for (uint32_t k = 1; k < x.rank; k++)
		f *= x.dims[k];
	int64_t dims[2] = {x.dims[0], f};
	uint32_t id[2] = {0, 1};
	imp_value *y;
	if ((st = imp_set_layer(imp, 0, l, 2, dims, id, &y, err)))
		return st;
	y->nonneg = x.nonneg;
	if (!imp_perm_equal(x.perm, id, 1) || x.rank > 2) {
		uint32_t xid[ST_ONNX_MAX_RANK];
		imp_perm_identity(xid, x.rank);
		if (!imp_perm_equal(x.perm, xid, x.rank)) {
			y->flat_rank = x.rank;
			memcpy(y->flat_dims, x.dims, sizeof(y->flat_dims));
			memcpy(y->flat_perm, x.perm, sizeof(y->flat_perm));
		}
	}
	return STRATA_OK;
}

strata_status imp_map_flatten(st_onnx_import *imp, strata_error *err)
{
	imp_value *x = imp_tensor_in(imp, 0);
	if (!x)
		return STRATA_ERR_UNSUPPORTED;
	int64_t axis = st_onnx_attr_int(imp->node, "axis", 1);
	if (axis < 0)
		axis += x->rank;
	if (axis != 1)
		return imp_refuse(imp, "axis %lld: Strata flattens each sample (axis 1)", (long long)axis);
	return flatten_to_2d(imp, x, err);
}

/* A reshape layer from x in ONNX's order to `dims` (batch first). */
static strata_status reshape_to(st_onnx_import *imp, imp_value *xp, uint32_t rank, const int64_t *dims,
                                strata_error *err)
{
	imp_value x = *xp;
	if (rank < 2 || rank - 1 > STRATA_MAX_RANK)
		return imp_refuse(imp, "a result of rank %u: Strata's values are a batch of 1 to %d axes", rank,
		                  STRATA_MAX_RANK);
	if (!batch_first(&x))
		return imp_refuse(imp, "reshaping a value whose batch axis is not first");
	char ref[IMP_NAME];
	strata_status st = imp_as_onnx(imp, &x, ref, err);
	if (st)
		return st;
	uint32_t id[ST_ONNX_MAX_RANK];
	imp_perm_identity(id, rank);
	bool same = rank == x.rank && !memcmp(dims + 1, x.dims + 1, (rank - 1) * sizeof(*dims));
	if (same) {
		imp_value copy = x;
		snprintf(copy.ref, sizeof(copy.ref), "%s", ref);
		copy.flat_rank = 0;
		memcpy(copy.perm, id, sizeof(id));
		return imp_alias(imp, 0, &copy, NULL, err);
	}
	char text[96];
	imp_dims_text(dims + 1, rank - 1, text, sizeof(text));
	return imp_single(imp, ref, "reshape", rank, dims, id, x.nonneg, err, "target_shape: %s", text);
}

/* A Reshape of a value whose batch is ONNX's axis b > 0 (an LSTM's output, time first), stored
 * batch first with its other axes in ONNX's order: exact as a reshape of each sample when the
 * axes up to b stay as they are and only those after b change. */
static strata_status reshape_after_batch(st_onnx_import *imp, imp_value *xp, const st_onnx_const *shape,
                                         bool allowzero, strata_error *err)
{
	imp_value x = *xp;
	uint32_t b = x.perm[0], rank = (uint32_t)shape->count;
	bool moved = x.flat_rank == 0 && b < rank;
	for (uint32_t k = 1; moved && k < x.rank; k++)
		moved = x.perm[k] == (k - 1 < b ? k - 1 : k);
	int64_t dims[ST_ONNX_MAX_RANK] = {0}, known = 1, per_sample = 1;
	int infer = -1;
	for (uint32_t a = 0; a < x.rank; a++)
		if (a != b)
			per_sample *= x.dims[a];
	for (uint32_t i = 0; moved && i < rank; i++) {
		int64_t d = imp_int(shape->v[i]);
		if (d == 0 && !allowzero && i < x.rank)
			d = x.dims[i];
		if (i <= b) {
			moved = d == x.dims[i] || (i == b && d == -1 && x.dims[b] == -1);
			dims[i] = x.dims[i];
			if (i < b)
				known *= x.dims[i];
		} else if (d == -1 && infer < 0) {
			infer = (int)i;
		} else if (d < 1 || d > INT32_MAX || known > INT32_MAX / d) {
			moved = false;
		} else {
			dims[i] = d;
			known *= d;
		}
	}
	if (!moved)
		return imp_refuse(imp, "a reshape of a value whose batch is not its first axis, other than of the axes after "
		                  "the batch");
	if (infer >= 0) {
		if (per_sample % known)
			return imp_fail(imp, err, STRATA_ERR_INVALID, "the shape does not divide the %lld values of a sample",
			                (long long)per_sample);
		dims[infer] = per_sample / known;
		known = per_sample;
	}
	if (known != per_sample || rank < 2 || rank - 1 > STRATA_MAX_RANK)
		return imp_fail(imp, err, STRATA_ERR_INVALID, "the shape holds %lld values a sample, the input %lld",
		                (long long)known, (long long)per_sample);
	uint32_t perm[ST_ONNX_MAX_RANK] = {b};
	int64_t stored[ST_ONNX_MAX_RANK];
	for (uint32_t k = 1; k < rank; k++) {
		perm[k] = k - 1 < b ? k - 1 : k;
		stored[k - 1] = dims[perm[k]];
	}
	char text[96];
	imp_dims_text(stored, rank - 1, text, sizeof(text));
	return imp_single(imp, x.ref, "reshape", rank, dims, perm, x.nonneg, err, "target_shape: %s", text);
}

strata_status imp_map_reshape(st_onnx_import *imp, strata_error *err)
{
	imp_value *x = imp_tensor_in(imp, 0);
	if (!x)
		return STRATA_ERR_UNSUPPORTED;
	imp_value *s = imp_in(imp, 1);
	if (!s || s->state != IMP_CONST)
		return imp_refuse(imp, "a shape that is not a constant (nor folds to one)");
	bool allowzero = st_onnx_attr_int(imp->node, "allowzero", 0) != 0;
	uint32_t rank = (uint32_t)s->c.count;
	if (rank < 1 || rank > ST_ONNX_MAX_RANK)
		return imp_refuse(imp, "a result of rank %u", rank);
	if (x->perm[0] != 0)
		return reshape_after_batch(imp, x, &s->c, allowzero, err);
	int64_t dims[ST_ONNX_MAX_RANK] = {0};
	int64_t per_sample = 1, known = 1;
	int infer = -1;
	for (uint32_t k = 1; k < x->rank; k++)
		per_sample *= x->dims[k];
	for (uint32_t i = 0; i < rank; i++) {
		int64_t d = imp_int(s->c.v[i]);
		bool inferred = d == -1;
		if (d == 0 && !allowzero)
			d = i < x->rank ? x->dims[i] : 0;
		if (i == 0) {
			/* The batch stays: 0 (copy), its own size, or -1 when the rest holds a sample. */
			int64_t rest = 1;
			for (uint32_t j = 1; j < rank && rest > 0; j++) {
				int64_t e = imp_int(s->c.v[j]);
				e = e == 0 && !allowzero && j < x->rank ? x->dims[j] : e;
				rest = e < 1 || e > INT32_MAX || rest > INT32_MAX / e ? -1 : rest * e;
			}
			if (inferred && rest != per_sample)
				return imp_refuse(imp, "a reshape that changes the batch (its -1 takes more than a sample)");
			if (!(d == x->dims[0] || d == -1 || x->dims[0] == -1))
				return imp_refuse(imp, "a reshape that changes the batch (%lld to %lld)", (long long)x->dims[0],
				                  (long long)d);
			dims[0] = x->dims[0];
			continue;
		}
		if (d == -1) {
			if (infer >= 0)
				return imp_fail(imp, err, STRATA_ERR_INVALID, "two -1 sizes in the shape");
			infer = (int)i;
			continue;
		}
		if (d < 1 || d > INT32_MAX || known > INT32_MAX / d)
			return imp_fail(imp, err, STRATA_ERR_INVALID, "size %lld at axis %u of the shape", (long long)d, i);
		dims[i] = d;
		known *= d;
	}
	if (infer >= 0) {
		if (known == 0 || per_sample % known)
			return imp_fail(imp, err, STRATA_ERR_INVALID, "the shape does not divide the %lld values of a sample",
			                (long long)per_sample);
		dims[infer] = per_sample / known;
		known = per_sample;
	}
	if (known != per_sample)
		return imp_fail(imp, err, STRATA_ERR_INVALID, "the shape holds %lld values a sample, the input %lld",
		                (long long)known, (long long)per_sample);
	if (rank == 2)
		return flatten_to_2d(imp, x, err);
	return reshape_to(imp, x, rank, dims, err);
}

strata_status imp_map_transpose(st_onnx_import *imp, strata_error *err)
{
	imp_value *xp = imp_tensor_in(imp, 0);
	if (!xp)
		return STRATA_ERR_UNSUPPORTED;
	imp_value x = *xp;
	uint32_t r = x.rank;
	int64_t p[ST_ONNX_MAX_RANK];
	const int64_t *given;
	size_t n = st_onnx_attr_ints(imp->node, "perm", &given);
	if (n && n != r)
		return imp_fail(imp, err, STRATA_ERR_INVALID, "perm has %zu axes for rank %u", n, r);
	uint32_t inverse[ST_ONNX_MAX_RANK];
	bool seen[ST_ONNX_MAX_RANK] = {false};
	for (uint32_t i = 0; i < r; i++) {
		p[i] = n ? given[i] : (int64_t)(r - 1 - i);
		if (p[i] < 0 || p[i] >= r || seen[p[i]])
			return imp_fail(imp, err, STRATA_ERR_INVALID, "perm is not a permutation of 0 to %u", r - 1);
		seen[p[i]] = true;
		inverse[p[i]] = i;
	}
	strata_status st = imp_unflatten(imp, &x, err);
	if (st)
		return st;
	/* No layer: the same storage, ONNX's axes renamed. */
	imp_value y = x;
	for (uint32_t i = 0; i < r; i++)
		y.dims[i] = x.dims[p[i]];
	for (uint32_t k = 0; k < r; k++)
		y.perm[k] = inverse[x.perm[k]];
	return imp_alias(imp, 0, &y, NULL, err);
}

strata_status imp_map_concat(st_onnx_import *imp, strata_error *err)
{
	const Onnx__NodeProto *n = imp->node;
	imp_value *first = imp_tensor_in(imp, 0);
	if (!first)
		return STRATA_ERR_UNSUPPORTED;
	imp_value lead = *first;
	int64_t axis = st_onnx_attr_int(imp->node, "axis", imp->file->opset >= 4 ? INT64_MIN : 1);
	if (axis == INT64_MIN)
		return imp_fail(imp, err, STRATA_ERR_PARSE, "Concat needs an axis");
	if (axis < 0)
		axis += lead.rank;
	if (axis < 0 || axis >= lead.rank)
		return imp_fail(imp, err, STRATA_ERR_INVALID, "axis %lld is outside rank %u", (long long)axis, lead.rank);
	if (n->n_input > 16)
		return imp_refuse(imp, "more than 16 inputs");
	strata_status unflat = imp_unflatten(imp, &lead, err);
	if (unflat)
		return unflat;
	uint32_t k = 0;
	while (k < lead.rank && lead.perm[k] != axis)
		k++;
	if (k == 0)
		return imp_refuse(imp, "concatenation along the batch axis");
	char bufs[16][IMP_NAME];
	const char *refs[16];
	int64_t total = 0;
	for (size_t i = 0; i < n->n_input; i++) {
		imp_value *v = imp_tensor_in(imp, i);
		if (!v)
			return STRATA_ERR_UNSUPPORTED;
		imp_value copy = *v;
		if (copy.rank != lead.rank)
			return imp_fail(imp, err, STRATA_ERR_INVALID, "inputs of ranks %u and %u", lead.rank, copy.rank);
		for (uint32_t d = 0; d < lead.rank; d++)
			if (d != axis && copy.dims[d] != lead.dims[d])
				return imp_fail(imp, err, STRATA_ERR_INVALID, "inputs differ in axis %u", d);
		total += copy.dims[axis];
		strata_status st = i == 0 ? (snprintf(bufs[0], IMP_NAME, "%s", lead.ref), STRATA_OK)
		                          : imp_as(imp, &copy, lead.perm, bufs[i], err);
		if (st)
			return st;
		refs[i] = bufs[i];
	}
	imp_layer *l;
	strata_status st = imp_add_layer(imp, imp_hint(imp), "concatenate", refs, n->n_input, &l, err, "axis: %u", k);
	if (st)
		return st;
	int64_t dims[ST_ONNX_MAX_RANK] = {0};
	memcpy(dims, lead.dims, sizeof(dims));
	dims[axis] = total;
	return imp_set_layer(imp, 0, l, lead.rank, dims, lead.perm, NULL, err);
}

strata_status imp_map_squeeze(st_onnx_import *imp, strata_error *err)
{
	imp_value *xp = imp_tensor_in(imp, 0);
	if (!xp)
		return STRATA_ERR_UNSUPPORTED;
	imp_value x = *xp;
	int64_t axes[ST_ONNX_MAX_RANK];
	size_t n;
	if (!imp_axes(imp, axes, &n))
		return imp_refuse(imp, "axes that are not a constant");
	bool drop[ST_ONNX_MAX_RANK] = {false};
	for (size_t i = 0; i < n; i++) {
		int64_t a = axes[i] < 0 ? axes[i] + x.rank : axes[i];
		if (a < 0 || a >= x.rank || x.dims[a] != 1)
			return imp_fail(imp, err, STRATA_ERR_INVALID, "axis %lld is not an axis of size 1", (long long)axes[i]);
		drop[a] = true;
	}
	if (!n)
		for (uint32_t a = 1; a < x.rank; a++)
			drop[a] = x.dims[a] == 1;
	if (drop[x.perm[0]])
		return imp_refuse(imp, "squeezing the batch axis");
	/* Dropping axes of size 1 keeps the order of the values: the remaining axes keep their
	 * places in Strata's layout, and a reshape drops the ones. */
	uint32_t rank = 0, renum[ST_ONNX_MAX_RANK];
	int64_t dims[ST_ONNX_MAX_RANK] = {0};
	for (uint32_t a = 0; a < x.rank; a++)
		if (!drop[a]) {
			renum[a] = rank;
			dims[rank++] = x.dims[a];
		}
	uint32_t perm[ST_ONNX_MAX_RANK];
	uint32_t k2 = 0;
	for (uint32_t k = 0; k < x.rank; k++)
		if (!drop[x.perm[k]])
			perm[k2++] = renum[x.perm[k]];
	if (x.flat_rank || rank < 2)
		return imp_refuse(imp, "a result of rank %u or a flattened input", rank);
	int64_t stored[ST_ONNX_MAX_RANK];
	for (uint32_t k = 1; k < rank; k++)
		stored[k - 1] = dims[perm[k]];
	char text[96];
	imp_dims_text(stored, rank - 1, text, sizeof(text));
	return rank == 2 ? imp_single(imp, x.ref, "flatten", rank, dims, perm, x.nonneg, err, NULL)
	                 : imp_single(imp, x.ref, "reshape", rank, dims, perm, x.nonneg, err, "target_shape: %s", text);
}

strata_status imp_map_unsqueeze(st_onnx_import *imp, strata_error *err)
{
	imp_value *xp = imp_tensor_in(imp, 0);
	if (!xp)
		return STRATA_ERR_UNSUPPORTED;
	imp_value x = *xp;
	int64_t axes[ST_ONNX_MAX_RANK];
	size_t n;
	if (!imp_axes(imp, axes, &n) || !n)
		return imp_refuse(imp, "axes that are not a constant");
	uint32_t rank = x.rank + (uint32_t)n;
	if (rank > ST_ONNX_MAX_RANK)
		return imp_refuse(imp, "a result of rank %u", rank);
	bool added[ST_ONNX_MAX_RANK] = {false};
	for (size_t i = 0; i < n; i++) {
		int64_t a = axes[i] < 0 ? axes[i] + rank : axes[i];
		if (a < 0 || a >= rank || added[a])
			return imp_fail(imp, err, STRATA_ERR_INVALID, "axis %lld is out of range or repeated", (long long)axes[i]);
		added[a] = true;
	}
	if (added[0])
		return imp_refuse(imp, "a new axis before the batch");
	int64_t dims[ST_ONNX_MAX_RANK] = {0};
	for (uint32_t a = 0, j = 0; a < rank; a++)
		dims[a] = added[a] ? 1 : x.dims[j++];
	return reshape_to(imp, &x, rank, dims, err);
}

/* Tile of a (batch, 1, features) value n times along axis 1: Keras' RepeatVector (what an
 * Unsqueeze and a Tile of a vector write). */
strata_status imp_map_tile(st_onnx_import *imp, strata_error *err)
{
	imp_value *xp = imp_tensor_in(imp, 0);
	if (!xp)
		return STRATA_ERR_UNSUPPORTED;
	imp_value x = *xp;
	imp_value *rv = imp_in(imp, 1);
	if (!rv || rv->state != IMP_CONST || rv->c.count != x.rank)
		return imp_refuse(imp, "repeats that are not a constant of the input's rank");
	if (x.rank != 3 || x.dims[1] != 1 || rv->c.v[0] != 1 || rv->c.v[2] != 1 || !(rv->c.v[1] >= 1 && rv->c.v[1] <= INT32_MAX) ||
	    !batch_first(&x))
		return imp_refuse(imp, "a Tile other than a vector repeated along a new axis 1 (Keras' RepeatVector)");
	int64_t n = imp_int(rv->c.v[1]);
	/* (batch, 1, features) stored in any order of its two non-batch axes is the vector. */
	const char *in = x.ref;
	imp_layer *l;
	char hint[IMP_NAME + 8];
	snprintf(hint, sizeof(hint), "%s_vector", imp_hint(imp));
	strata_status st = imp_add_layer(imp, hint, "flatten", &in, 1, &l, err, NULL);
	if (st)
		return st;
	in = l->name;
	if ((st = imp_add_layer(imp, imp_hint(imp), "repeat_vector", &in, 1, &l, err, "n: %lld", (long long)n)))
		return st;
	int64_t dims[3] = {x.dims[0], n, x.dims[2]};
	uint32_t id[3] = {0, 1, 2};
	return imp_set_layer(imp, 0, l, 3, dims, id, NULL, err);
}

strata_status imp_crop_axis(st_onnx_import *imp, imp_value *xp, uint32_t axis, int64_t start, int64_t end, bool keep,
                            size_t out, strata_error *err)
{
	imp_value x = *xp;
	strata_status st = imp_unflatten(imp, &x, err);
	if (st)
		return st;
	uint32_t k = 1;
	while (k < x.rank && x.perm[k] != axis)
		k++;
	if (k == x.rank)
		return imp_refuse(imp, "a slice along the batch axis");
	if (!keep && x.rank < 3)
		return imp_refuse(imp, "a result with no sample axis left");
	int64_t len = x.dims[axis], before = 1, after = 1;
	for (uint32_t j = 1; j < x.rank; j++)
		if (j < k)
			before *= x.dims[x.perm[j]];
		else if (j > k)
			after *= x.dims[x.perm[j]];
	/* The sample as (before, axis, after): the axis is cropping2d's width. */
	char hint[IMP_NAME + 16];
	const char *name = out < imp->node->n_output && imp->node->output[out][0] ? imp->node->output[out] : imp_hint(imp);
	snprintf(hint, sizeof(hint), "%s_view", name);
	const char *in = x.ref;
	imp_layer *l;
	if ((st = imp_add_layer(imp, hint, "reshape", &in, 1, &l, err, "target_shape: [%lld, %lld, %lld]",
	                        (long long)before, (long long)len, (long long)after)))
		return st;
	in = l->name;
	snprintf(hint, sizeof(hint), "%s_crop", name);
	if ((st = imp_add_layer(imp, hint, "cropping2d", &in, 1, &l, err, "cropping: [0, 0, %lld, %lld]", (long long)start,
	                        (long long)(len - end))))
		return st;
	/* The result: x's axes, `axis` of end - start (or dropped), in x's stored order. */
	int64_t dims[ST_ONNX_MAX_RANK], stored[ST_ONNX_MAX_RANK];
	uint32_t perm[ST_ONNX_MAX_RANK], rank = 0, sk = 0;
	for (uint32_t a = 0; a < x.rank; a++)
		if (a != axis || keep)
			dims[rank++] = a == axis ? end - start : x.dims[a];
	for (uint32_t j = 0; j < x.rank; j++) {
		uint32_t a = x.perm[j];
		if (a == axis && !keep)
			continue;
		perm[sk] = keep || a < axis ? a : a - 1;
		if (sk > 0)
			stored[sk - 1] = dims[perm[sk]];
		sk++;
	}
	char text[96];
	imp_dims_text(stored, rank - 1, text, sizeof(text));
	in = l->name;
	if ((st = imp_add_layer(imp, name, "reshape", &in, 1, &l, err, "target_shape: %s", text)))
		return st;
	imp_value *y;
	if ((st = imp_set_layer(imp, out, l, rank, dims, perm, &y, err)))
		return st;
	y->nonneg = x.nonneg;
	return STRATA_OK;
}

/* Split along a non-batch axis: each part cropped (imp_crop_axis). Sizes from `split` (an
 * attribute before opset 13, an input since) or equal parts. */
strata_status imp_map_split(st_onnx_import *imp, strata_error *err)
{
	imp_value *xp = imp_tensor_in(imp, 0);
	if (!xp)
		return STRATA_ERR_UNSUPPORTED;
	imp_value x = *xp;
	int64_t axis = st_onnx_attr_int(imp->node, "axis", 0);
	if (axis < 0)
		axis += x.rank;
	if (axis < 0 || axis >= x.rank)
		return imp_fail(imp, err, STRATA_ERR_INVALID, "axis out of range");
	size_t n = imp->node->n_output;
	int64_t sizes[64];
	if (n < 1 || n > 64)
		return imp_refuse(imp, "%zu parts", n);
	const int64_t *given = NULL;
	size_t n_given = imp->file->opset < 13 ? st_onnx_attr_ints(imp->node, "split", &given) : 0;
	imp_value *sv = imp->file->opset >= 13 ? imp_in(imp, 1) : NULL;
	if (sv && sv->state != IMP_CONST)
		return imp_refuse(imp, "split sizes that are not a constant");
	if (sv)
		n_given = sv->c.count;
	int64_t len = x.dims[axis], total = 0;
	for (size_t i = 0; i < n; i++) {
		sizes[i] = n_given ? (sv ? imp_int(sv->c.v[i < n_given ? i : 0]) : given[i < n_given ? i : 0])
		                   : (len + (int64_t)n - 1) / (int64_t)n;
		if (!n_given && i == n - 1)
			sizes[i] = len - total;
		if ((n_given && n_given != n) || sizes[i] < 1 || sizes[i] > len)
			return imp_fail(imp, err, STRATA_ERR_INVALID, "split sizes do not divide the axis of %lld", (long long)len);
		total += sizes[i];
	}
	if (total != len)
		return imp_fail(imp, err, STRATA_ERR_INVALID, "split sizes add up to %lld, the axis has %lld", (long long)total,
		                (long long)len);
	int64_t start = 0;
	for (size_t i = 0; i < n; i++) {
		strata_status st = STRATA_OK;
		if (imp->node->output[i][0])
			st = imp_crop_axis(imp, &x, (uint32_t)axis, start, start + sizes[i], true, i, err);
		if (st)
			return st;
		start += sizes[i];
	}
	return STRATA_OK;
}
