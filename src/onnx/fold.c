/* Constant folding: operators computed at import time when all their inputs are constants, so
 * that the chains exporters emit to work out a shape (Shape, Gather, Unsqueeze, Concat before a
 * Reshape) and weights prepared by arithmetic (a Transpose of an initializer) leave constants,
 * not layers. Values are doubles (import.h); a result keeps its ONNX data type. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "onnx/import.h"
#include "onnx/import_ops.h"

/* The largest constant folding makes (ConstantOfShape, a broadcast): 128 MiB of doubles. The
 * file's own tensors are bounded by its size instead (onnx_file.c). */
#define MAX_FOLDED (UINT64_C(1) << 24)

static strata_status make(st_onnx_import *imp, st_onnx_const *c, uint32_t rank, const int64_t *dims, int32_t type,
                          strata_error *err)
{
	memset(c, 0, sizeof(*c));
	uint64_t count = 1;
	for (uint32_t d = 0; d < rank; d++) {
		if (dims[d] < 0 || (dims[d] && count > MAX_FOLDED / (uint64_t)dims[d]))
			return imp_fail(imp, err, STRATA_ERR_INVALID, "a constant of more than 2^24 values or a negative size");
		count *= (uint64_t)dims[d];
		c->dims[d] = dims[d];
	}
	c->rank = rank;
	c->count = count;
	c->data_type = type;
	if (!(c->v = calloc(count + 1, sizeof(double))))
		return imp_fail(imp, err, STRATA_ERR_NO_MEMORY, "out of memory");
	return STRATA_OK;
}

static const st_onnx_const *cin(st_onnx_import *imp, size_t i)
{
	imp_value *v = imp_in(imp, i);
	return v && v->state == IMP_CONST ? &v->c : NULL;
}

static strata_status fold_constant(st_onnx_import *imp, strata_error *err)
{
	const Onnx__AttributeProto *a = st_onnx_attr(imp->node, "value");
	st_onnx_const c;
	strata_status st;
	if (a && a->t) {
		if ((st = st_onnx_tensor(a->t, imp->file->folder, imp->label, &c, err)))
			return st;
		return imp_set_const(imp, 0, &c, err);
	}
	const Onnx__AttributeProto *f = st_onnx_attr(imp->node, "value_float"), *fs = st_onnx_attr(imp->node, "value_floats");
	const Onnx__AttributeProto *i = st_onnx_attr(imp->node, "value_int"), *is = st_onnx_attr(imp->node, "value_ints");
	int64_t n = fs ? (int64_t)fs->n_floats : is ? (int64_t)is->n_ints : 0;
	if (!f && !fs && !i && !is)
		return imp_refuse(imp, "a value of a kind Strata does not read (sparse or strings)");
	bool scalar = f || i;
	if ((st = make(imp, &c, scalar ? 0 : 1, &n, f || fs ? ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT
	                                                   : ONNX__TENSOR_PROTO__DATA_TYPE__INT64, err)))
		return st;
	if (f)
		c.v[0] = f->f;
	else if (i)
		c.v[0] = (double)i->i;
	for (int64_t k = 0; k < n; k++)
		c.v[k] = fs ? fs->floats[k] : (double)is->ints[k];
	return imp_set_const(imp, 0, &c, err);
}

/* Shape of a tensor: its ONNX dims; a symbolic batch gives 0, which a Reshape reads as "keep". */
strata_status imp_map_shape(st_onnx_import *imp, strata_error *err)
{
	imp_value *x = imp_in(imp, 0);
	if (!x)
		return imp_fail(imp, err, STRATA_ERR_PARSE, "it has no input");
	uint32_t rank = x->state == IMP_CONST ? x->c.rank : x->rank;
	const int64_t *xd = x->state == IMP_CONST ? x->c.dims : x->dims;
	int64_t start = st_onnx_attr_int(imp->node, "start", 0), end = st_onnx_attr_int(imp->node, "end", rank);
	if (start < 0)
		start += rank;
	if (end < 0)
		end += rank;
	start = start < 0 ? 0 : start > rank ? rank : start;
	end = end < start ? start : end > rank ? rank : end;
	int64_t n = end - start;
	st_onnx_const c;
	strata_status st = make(imp, &c, 1, &n, ONNX__TENSOR_PROTO__DATA_TYPE__INT64, err);
	if (st)
		return st;
	for (int64_t k = 0; k < n; k++)
		c.v[k] = xd[start + k] < 0 ? 0 : (double)xd[start + k];
	return imp_set_const(imp, 0, &c, err);
}

static strata_status fold_constant_of_shape(st_onnx_import *imp, strata_error *err)
{
	const st_onnx_const *s = cin(imp, 0);
	if (!s || s->count > ST_ONNX_MAX_RANK)
		return imp_refuse(imp, "a shape of more than %d axes", ST_ONNX_MAX_RANK);
	int64_t dims[ST_ONNX_MAX_RANK] = {0};
	for (uint64_t k = 0; k < s->count; k++)
		dims[k] = imp_int(s->v[k]);
	double value = 0;
	int32_t type = ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT;
	const Onnx__AttributeProto *a = st_onnx_attr(imp->node, "value");
	if (a && a->t) {
		st_onnx_const v;
		strata_status st = st_onnx_tensor(a->t, NULL, imp->label, &v, err);
		if (st)
			return st;
		value = v.count ? v.v[0] : 0;
		type = v.data_type;
		st_onnx_const_free(&v);
	}
	st_onnx_const c;
	strata_status st = make(imp, &c, (uint32_t)s->count, dims, type, err);
	if (st)
		return st;
	for (uint64_t k = 0; k < c.count; k++)
		c.v[k] = value;
	return imp_set_const(imp, 0, &c, err);
}

/* Row-major strides of dims. */
static void strides_of(const int64_t *dims, uint32_t rank, uint64_t *s)
{
	uint64_t m = 1;
	for (uint32_t d = rank; d-- > 0;) {
		s[d] = m;
		m *= (uint64_t)dims[d];
	}
}

static strata_status fold_gather(st_onnx_import *imp, strata_error *err)
{
	const st_onnx_const *data = cin(imp, 0), *idx = cin(imp, 1);
	int64_t axis = st_onnx_attr_int(imp->node, "axis", 0);
	if (axis < 0)
		axis += data->rank;
	if (axis < 0 || axis >= data->rank || data->rank + idx->rank - 1 > ST_ONNX_MAX_RANK)
		return imp_fail(imp, err, STRATA_ERR_INVALID, "axis %lld or the result's rank is out of range",
		                (long long)axis);
	int64_t dims[ST_ONNX_MAX_RANK] = {0};
	uint32_t rank = 0;
	for (int64_t d = 0; d < axis; d++)
		dims[rank++] = data->dims[d];
	for (uint32_t d = 0; d < idx->rank; d++)
		dims[rank++] = idx->dims[d];
	for (uint32_t d = (uint32_t)axis + 1; d < data->rank; d++)
		dims[rank++] = data->dims[d];
	st_onnx_const c;
	strata_status st = make(imp, &c, rank, dims, data->data_type, err);
	if (st)
		return st;
	uint64_t outer = 1, inner = 1;
	for (int64_t d = 0; d < axis; d++)
		outer *= (uint64_t)data->dims[d];
	for (uint32_t d = (uint32_t)axis + 1; d < data->rank; d++)
		inner *= (uint64_t)data->dims[d];
	int64_t len = data->dims[axis];
	uint64_t k = 0;
	for (uint64_t o = 0; o < outer; o++)
		for (uint64_t j = 0; j < idx->count; j++) {
			int64_t i = imp_int(idx->v[j]);
			if (i < 0)
				i += len;
			if (i < 0 || i >= len) {
				st_onnx_const_free(&c);
				return imp_fail(imp, err, STRATA_ERR_INVALID, "index %g is outside an axis of %lld", idx->v[j],
				                (long long)len);
			}
			memcpy(c.v + k, data->v + (o * (uint64_t)len + (uint64_t)i) * inner, inner * sizeof(double));
			k += inner;
		}
	return imp_set_const(imp, 0, &c, err);
}

static strata_status fold_concat(st_onnx_import *imp, strata_error *err)
{
	const st_onnx_const *first = cin(imp, 0);
	int64_t axis = st_onnx_attr_int(imp->node, "axis", 0);
	if (axis < 0)
		axis += first->rank;
	if (axis < 0 || axis >= first->rank)
		return imp_fail(imp, err, STRATA_ERR_INVALID, "axis out of range");
	int64_t dims[ST_ONNX_MAX_RANK] = {0};
	memcpy(dims, first->dims, sizeof(dims));
	dims[axis] = 0;
	for (size_t i = 0; i < imp->node->n_input; i++) {
		const st_onnx_const *c = cin(imp, i);
		if (!c || c->rank != first->rank)
			return imp_fail(imp, err, STRATA_ERR_INVALID, "inputs of different ranks");
		for (uint32_t d = 0; d < c->rank; d++)
			if (d != axis && c->dims[d] != first->dims[d])
				return imp_fail(imp, err, STRATA_ERR_INVALID, "inputs differ in axis %u", d);
		dims[axis] += c->dims[axis];
	}
	st_onnx_const out;
	strata_status st = make(imp, &out, first->rank, dims, first->data_type, err);
	if (st)
		return st;
	uint64_t outer = 1, inner = 1;
	for (int64_t d = 0; d < axis; d++)
		outer *= (uint64_t)dims[d];
	for (uint32_t d = (uint32_t)axis + 1; d < first->rank; d++)
		inner *= (uint64_t)dims[d];
	uint64_t k = 0;
	for (uint64_t o = 0; o < outer; o++)
		for (size_t i = 0; i < imp->node->n_input; i++) {
			const st_onnx_const *c = cin(imp, i);
			uint64_t block = (uint64_t)c->dims[axis] * inner;
			memcpy(out.v + k, c->v + o * block, block * sizeof(double));
			k += block;
		}
	return imp_set_const(imp, 0, &out, err);
}

/* Reshape, Flatten, Squeeze, Unsqueeze of a constant: the same values under new dims. */
static strata_status refold(st_onnx_import *imp, const st_onnx_const *x, uint32_t rank, const int64_t *dims,
                            strata_error *err)
{
	st_onnx_const c;
	strata_status st = make(imp, &c, rank, dims, x->data_type, err);
	if (st)
		return st;
	if (c.count != x->count) {
		st_onnx_const_free(&c);
		return imp_fail(imp, err, STRATA_ERR_INVALID, "%llu values cannot take a shape of %llu",
		                (unsigned long long)x->count, (unsigned long long)c.count);
	}
	memcpy(c.v, x->v, c.count * sizeof(double));
	return imp_set_const(imp, 0, &c, err);
}

static strata_status fold_reshape(st_onnx_import *imp, strata_error *err)
{
	const st_onnx_const *x = cin(imp, 0), *s = cin(imp, 1);
	if (!s || s->count > ST_ONNX_MAX_RANK)
		return imp_refuse(imp, "a shape of more than %d axes", ST_ONNX_MAX_RANK);
	int64_t dims[ST_ONNX_MAX_RANK] = {0}, known = 1;
	int infer = -1;
	for (uint64_t i = 0; i < s->count; i++) {
		dims[i] = imp_int(s->v[i]);
		if (dims[i] == 0 && !st_onnx_attr_int(imp->node, "allowzero", 0))
			dims[i] = i < x->rank ? x->dims[i] : 0;
		if (dims[i] < -1 || dims[i] > (int64_t)MAX_FOLDED)
			return imp_fail(imp, err, STRATA_ERR_INVALID, "size %lld in the shape", (long long)dims[i]);
		if (dims[i] == -1)
			infer = (int)i;
		else
			known = dims[i] && known > (int64_t)MAX_FOLDED / dims[i] ? (int64_t)MAX_FOLDED + 1 : known * dims[i];
	}
	if (infer >= 0)
		dims[infer] = known ? (int64_t)x->count / known : 0;
	return refold(imp, x, (uint32_t)s->count, dims, err);
}

static strata_status fold_unsqueeze(st_onnx_import *imp, strata_error *err)
{
	const st_onnx_const *x = cin(imp, 0);
	int64_t axes[ST_ONNX_MAX_RANK];
	size_t n;
	if (!imp_axes(imp, axes, &n) || x->rank + n > ST_ONNX_MAX_RANK)
		return imp_refuse(imp, "a result of more than %d axes", ST_ONNX_MAX_RANK);
	uint32_t rank = x->rank + (uint32_t)n;
	bool added[ST_ONNX_MAX_RANK] = {false};
	for (size_t i = 0; i < n; i++) {
		int64_t a = axes[i] < 0 ? axes[i] + rank : axes[i];
		if (a < 0 || a >= rank)
			return imp_fail(imp, err, STRATA_ERR_INVALID, "axis %lld out of range", (long long)axes[i]);
		added[a] = true;
	}
	int64_t dims[ST_ONNX_MAX_RANK] = {0};
	for (uint32_t a = 0, j = 0; a < rank; a++)
		dims[a] = added[a] ? 1 : x->dims[j++];
	return refold(imp, x, rank, dims, err);
}

static strata_status fold_squeeze(st_onnx_import *imp, strata_error *err)
{
	const st_onnx_const *x = cin(imp, 0);
	int64_t axes[ST_ONNX_MAX_RANK];
	size_t n;
	if (!imp_axes(imp, axes, &n))
		return imp_refuse(imp, "too many axes");
	bool drop[ST_ONNX_MAX_RANK] = {false};
	for (size_t i = 0; i < n; i++) {
		int64_t a = axes[i] < 0 ? axes[i] + x->rank : axes[i];
		if (a < 0 || a >= x->rank || x->dims[a] != 1)
			return imp_fail(imp, err, STRATA_ERR_INVALID, "axis %lld is not of size 1", (long long)axes[i]);
		drop[a] = true;
	}
	int64_t dims[ST_ONNX_MAX_RANK] = {0};
	uint32_t rank = 0;
	for (uint32_t a = 0; a < x->rank; a++)
		if (n ? !drop[a] : x->dims[a] != 1)
			dims[rank++] = x->dims[a];
	return refold(imp, x, rank, dims, err);
}

static strata_status fold_transpose(st_onnx_import *imp, strata_error *err)
{
	const st_onnx_const *x = cin(imp, 0);
	const int64_t *given;
	size_t n = st_onnx_attr_ints(imp->node, "perm", &given);
	uint32_t r = x->rank;
	int64_t p[ST_ONNX_MAX_RANK] = {0}, dims[ST_ONNX_MAX_RANK] = {0};
	if (n && n != r)
		return imp_fail(imp, err, STRATA_ERR_INVALID, "perm of %zu axes for rank %u", n, r);
	for (uint32_t i = 0; i < r; i++) {
		p[i] = n ? given[i] : (int64_t)(r - 1 - i);
		if (p[i] < 0 || p[i] >= r)
			return imp_fail(imp, err, STRATA_ERR_INVALID, "perm out of range");
		dims[i] = x->dims[p[i]];
	}
	st_onnx_const c;
	strata_status st = make(imp, &c, r, dims, x->data_type, err);
	if (st)
		return st;
	uint64_t xs[ST_ONNX_MAX_RANK], idx[ST_ONNX_MAX_RANK] = {0};
	strides_of(x->dims, r, xs);
	for (uint64_t k = 0; k < c.count; k++) {
		uint64_t src = 0;
		for (uint32_t i = 0; i < r; i++)
			src += idx[i] * xs[p[i]];
		c.v[k] = x->v[src];
		for (uint32_t i = r; i-- > 0;) {
			if (++idx[i] < (uint64_t)dims[i])
				break;
			idx[i] = 0;
		}
	}
	return imp_set_const(imp, 0, &c, err);
}

static strata_status fold_slice(st_onnx_import *imp, strata_error *err)
{
	const st_onnx_const *x = cin(imp, 0);
	int64_t starts[ST_ONNX_MAX_RANK], ends[ST_ONNX_MAX_RANK], axes[ST_ONNX_MAX_RANK], steps[ST_ONNX_MAX_RANK];
	size_t n;
	strata_status args = imp_slice_args(imp, x->rank, starts, ends, axes, steps, &n, err);
	if (args)
		return args;
	int64_t lo[ST_ONNX_MAX_RANK], step[ST_ONNX_MAX_RANK], dims[ST_ONNX_MAX_RANK];
	for (uint32_t d = 0; d < x->rank; d++) {
		lo[d] = 0;
		step[d] = 1;
		dims[d] = x->dims[d];
	}
	for (size_t i = 0; i < n; i++) {
		int64_t a = axes[i] < 0 ? axes[i] + x->rank : axes[i];
		if (a < 0 || a >= x->rank || steps[i] == 0)
			return imp_fail(imp, err, STRATA_ERR_INVALID, "axis or step out of range");
		int64_t len = x->dims[a], s = starts[i], e = ends[i], k = steps[i];
		if (s < 0)
			s += len;
		if (e < 0)
			e += len;
		if (k > 0) {
			s = s < 0 ? 0 : s > len ? len : s;
			e = e < 0 ? 0 : e > len ? len : e;
			dims[a] = e > s ? (e - s + k - 1) / k : 0;
		} else {
			s = s < 0 ? -1 : s > len - 1 ? len - 1 : s;
			e = e < -1 ? -1 : e > len - 1 ? len - 1 : e;
			dims[a] = s > e ? (s - e - k - 1) / -k : 0;
		}
		lo[a] = s;
		step[a] = k;
	}
	st_onnx_const c;
	strata_status st = make(imp, &c, x->rank, dims, x->data_type, err);
	if (st)
		return st;
	uint64_t xs[ST_ONNX_MAX_RANK], idx[ST_ONNX_MAX_RANK] = {0};
	strides_of(x->dims, x->rank, xs);
	for (uint64_t k = 0; k < c.count; k++) {
		int64_t src = 0;
		for (uint32_t d = 0; d < x->rank; d++)
			src += (lo[d] + (int64_t)idx[d] * step[d]) * (int64_t)xs[d];
		c.v[k] = x->v[src];
		for (uint32_t d = x->rank; d-- > 0;) {
			if (++idx[d] < (uint64_t)dims[d])
				break;
			idx[d] = 0;
		}
	}
	return imp_set_const(imp, 0, &c, err);
}

static strata_status fold_cast(st_onnx_import *imp, strata_error *err)
{
	const st_onnx_const *x = cin(imp, 0);
	int32_t to = (int32_t)st_onnx_attr_int(imp->node, "to", ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT);
	st_onnx_const c;
	strata_status st = make(imp, &c, x->rank, x->dims, to, err);
	if (st)
		return st;
	bool integer = to != ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT && to != ONNX__TENSOR_PROTO__DATA_TYPE__DOUBLE &&
	               to != ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT16;
	for (uint64_t k = 0; k < c.count; k++)
		c.v[k] = to == ONNX__TENSOR_PROTO__DATA_TYPE__BOOL ? (x->v[k] != 0)
		         : integer                                ? trunc(x->v[k])
		         : to == ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT ? (double)(float)x->v[k]
		                                                      : x->v[k];
	return imp_set_const(imp, 0, &c, err);
}

/* Element-wise arithmetic with NumPy's broadcasting. */
static strata_status fold_binary(st_onnx_import *imp, strata_error *err, char op)
{
	const st_onnx_const *a = cin(imp, 0), *b = cin(imp, 1);
	uint32_t rank = a->rank > b->rank ? a->rank : b->rank;
	int64_t dims[ST_ONNX_MAX_RANK] = {0}, ad[ST_ONNX_MAX_RANK] = {0}, bd[ST_ONNX_MAX_RANK] = {0};
	for (uint32_t d = 0; d < rank; d++) {
		ad[d] = d + a->rank >= rank ? a->dims[d + a->rank - rank] : 1;
		bd[d] = d + b->rank >= rank ? b->dims[d + b->rank - rank] : 1;
		if (ad[d] != bd[d] && ad[d] != 1 && bd[d] != 1)
			return imp_fail(imp, err, STRATA_ERR_INVALID, "shapes that do not broadcast (axis %u: %lld and %lld)", d,
			                (long long)ad[d], (long long)bd[d]);
		dims[d] = ad[d] == 1 ? bd[d] : ad[d];
	}
	st_onnx_const c;
	strata_status st = make(imp, &c, rank, dims, a->data_type, err);
	if (st)
		return st;
	uint64_t as[ST_ONNX_MAX_RANK], bs[ST_ONNX_MAX_RANK], idx[ST_ONNX_MAX_RANK] = {0};
	strides_of(ad, rank, as);
	strides_of(bd, rank, bs);
	bool integer = a->data_type != ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT &&
	               a->data_type != ONNX__TENSOR_PROTO__DATA_TYPE__DOUBLE;
	for (uint64_t k = 0; k < c.count; k++) {
		uint64_t ia = 0, ib = 0;
		for (uint32_t d = 0; d < rank; d++) {
			ia += (ad[d] == 1 ? 0 : idx[d]) * as[d];
			ib += (bd[d] == 1 ? 0 : idx[d]) * bs[d];
		}
		double x = a->v[ia], y = b->v[ib];
		double r = op == '+' ? x + y : op == '-' ? x - y : op == '*' ? x * y : integer ? (y ? floor(x / y) : 0) : x / y;
		c.v[k] = a->data_type == ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT ? (double)(float)r : r;
		for (uint32_t d = rank; d-- > 0;) {
			if (++idx[d] < (uint64_t)dims[d])
				break;
			idx[d] = 0;
		}
	}
	return imp_set_const(imp, 0, &c, err);
}

static strata_status fold_unary(st_onnx_import *imp, strata_error *err, const char *op)
{
	const st_onnx_const *x = cin(imp, 0);
	st_onnx_const c;
	strata_status st = make(imp, &c, x->rank, x->dims, x->data_type, err);
	if (st)
		return st;
	for (uint64_t k = 0; k < c.count; k++) {
		double v = x->v[k];
		c.v[k] = !strcmp(op, "Neg") ? -v : !strcmp(op, "Sqrt") ? sqrt(v) : !strcmp(op, "Reciprocal") ? 1.0 / v : v;
		if (x->data_type == ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT)
			c.v[k] = (double)(float)c.v[k];
	}
	return imp_set_const(imp, 0, &c, err);
}

static const char *const foldable[] = {"Constant", "ConstantOfShape", "Gather", "Concat", "Reshape", "Flatten",
                                       "Unsqueeze", "Squeeze", "Transpose", "Slice", "Cast", "Add", "Sub", "Mul",
                                       "Div", "Neg", "Sqrt", "Reciprocal", "Identity"};

bool imp_foldable(const char *op)
{
	for (size_t i = 0; i < sizeof(foldable) / sizeof(foldable[0]); i++)
		if (!strcmp(op, foldable[i]))
			return true;
	return false;
}

strata_status imp_fold(st_onnx_import *imp, strata_error *err)
{
	const char *op = imp->node->op_type;
	for (size_t i = 0; i < imp->node->n_input; i++)
		if (imp->node->input[i] && imp->node->input[i][0] && !cin(imp, i))
			return imp_fail(imp, err, STRATA_ERR_INVALID, "input %zu is no constant", i);
	bool need_two = !strcmp(op, "Gather") || !strcmp(op, "Add") || !strcmp(op, "Sub") || !strcmp(op, "Mul") ||
	                !strcmp(op, "Div") || (!strcmp(op, "Reshape"));
	bool need_one = strcmp(op, "Constant") != 0;
	if ((need_one && !cin(imp, 0)) || (need_two && !cin(imp, 1)) ||
	    (!strcmp(op, "Slice") && imp->file->opset >= 10 && (!cin(imp, 1) || !cin(imp, 2))))
		return imp_fail(imp, err, STRATA_ERR_PARSE, "an input is missing");
	if (!strcmp(op, "Constant"))
		return fold_constant(imp, err);
	if (!strcmp(op, "ConstantOfShape"))
		return fold_constant_of_shape(imp, err);
	if (!strcmp(op, "Gather"))
		return fold_gather(imp, err);
	if (!strcmp(op, "Concat"))
		return fold_concat(imp, err);
	if (!strcmp(op, "Reshape"))
		return fold_reshape(imp, err);
	if (!strcmp(op, "Flatten")) {
		const st_onnx_const *x = cin(imp, 0);
		int64_t axis = st_onnx_attr_int(imp->node, "axis", 1);
		if (axis < 0)
			axis += x->rank;
		int64_t dims[2] = {1, 1};
		for (uint32_t d = 0; d < x->rank; d++)
			dims[d < axis ? 0 : 1] *= x->dims[d];
		return refold(imp, x, 2, dims, err);
	}
	if (!strcmp(op, "Unsqueeze"))
		return fold_unsqueeze(imp, err);
	if (!strcmp(op, "Squeeze"))
		return fold_squeeze(imp, err);
	if (!strcmp(op, "Transpose"))
		return fold_transpose(imp, err);
	if (!strcmp(op, "Slice"))
		return fold_slice(imp, err);
	if (!strcmp(op, "Cast"))
		return fold_cast(imp, err);
	if (!strcmp(op, "Add") || !strcmp(op, "Sub") || !strcmp(op, "Mul") || !strcmp(op, "Div"))
		return fold_binary(imp, err, op[0] == 'A' ? '+' : op[0] == 'S' ? '-' : op[0] == 'M' ? '*' : '/');
	return fold_unary(imp, err, op);
}
