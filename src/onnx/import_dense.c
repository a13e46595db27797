/* Gemm and MatMul with a constant right-hand side: Strata's dense layer. A dense layer reads the
 * last axis, so the left-hand side is taken in ONNX's layout, except a flattened feature map,
 * whose weight rows are taken in the order Strata's flatten left its features (no layer). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "onnx/import.h"
#include "onnx/import_ops.h"

/* A dense layer of `units` over the K features of x; kernel[j * units + u] is read through
 * `at(j, u)` of the (K, units) matrix ONNX's row order gives, rows reordered for a flattened x. */
static strata_status dense(st_onnx_import *imp, imp_value *xp, const st_onnx_const *B, bool trans_b, double alpha,
                           const st_onnx_const *C, double beta, strata_error *err)
{
	imp_value x = *xp;
	int64_t K = x.dims[x.rank - 1];
	int64_t units = trans_b ? B->dims[0] : B->dims[1];
	if ((trans_b ? B->dims[1] : B->dims[0]) != K)
		return imp_fail(imp, err, STRATA_ERR_INVALID, "weights of %lld x %lld for %lld features", (long long)B->dims[0],
		                (long long)B->dims[1], (long long)K);
	if (C && C->count != 1 && (int64_t)C->count != units)
		return imp_fail(imp, err, STRATA_ERR_INVALID, "a bias of %llu values for %lld units",
		                (unsigned long long)C->count, (long long)units);
	uint64_t *order = NULL;
	char ref[IMP_NAME];
	strata_status st;
	if (x.flat_rank) {
		if (!(order = malloc((size_t)K * sizeof(*order))))
			return imp_fail(imp, err, STRATA_ERR_NO_MEMORY, "out of memory");
		imp_flat_order(&x, order);
		snprintf(ref, sizeof(ref), "%s", x.ref);
	} else if ((st = imp_as_onnx(imp, &x, ref, err))) {
		return st;
	}
	const char *in = ref;
	imp_layer *l;
	if ((st = imp_add_layer(imp, imp_hint(imp), "dense", &in, 1, &l, err, "units: %lld, use_bias: %s",
	                    (long long)units, C ? "true" : "false"))) {
		free(order);
		return st;
	}
	float *kernel = malloc((size_t)(K * units) * sizeof(float) + 1);
	if (!kernel) {
		free(order);
		return imp_fail(imp, err, STRATA_ERR_NO_MEMORY, "out of memory");
	}
	for (int64_t j = 0; j < K; j++) {
		int64_t row = order ? (int64_t)order[j] : j;
		for (int64_t u = 0; u < units; u++)
			kernel[j * units + u] = (float)(alpha * B->v[trans_b ? u * K + row : row * units + u]);
	}
	free(order);
	strata_shape ks = {.rank = 2, .dims = {K, units}};
	if ((st = imp_weight_add(l, &ks, kernel, err)))
		return st;
	if (C) {
		float *b = malloc((size_t)units * sizeof(float));
		if (!b)
			return imp_fail(imp, err, STRATA_ERR_NO_MEMORY, "out of memory");
		for (int64_t u = 0; u < units; u++)
			b[u] = (float)(beta * C->v[C->count == 1 ? 0 : u]);
		strata_shape bs = {.rank = 1, .dims = {units}};
		if ((st = imp_weight_add(l, &bs, b, err)))
			return st;
	}
	int64_t dims[ST_ONNX_MAX_RANK];
	memcpy(dims, x.dims, sizeof(dims));
	dims[x.rank - 1] = units;
	uint32_t id[ST_ONNX_MAX_RANK];
	imp_perm_identity(id, x.rank);
	return imp_set_layer(imp, 0, l, x.rank, dims, id, NULL, err);
}

strata_status imp_map_gemm(st_onnx_import *imp, strata_error *err)
{
	imp_value *x = imp_tensor_in(imp, 0);
	if (!x)
		return STRATA_ERR_UNSUPPORTED;
	imp_value *b = imp_in(imp, 1), *c = imp_in(imp, 2);
	if (!b || b->state != IMP_CONST || (c && c->state != IMP_CONST))
		return imp_refuse(imp, "B or C is not a constant (Strata's dense layer has constant weights)");
	if (st_onnx_attr_int(imp->node, "transA", 0))
		return imp_refuse(imp, "transA 1 (the batch would move)");
	if (x->rank != 2 || b->c.rank != 2)
		return imp_fail(imp, err, STRATA_ERR_INVALID, "Gemm takes 2-D A and B, got ranks %u and %u", x->rank,
		                b->c.rank);
	if (c && c->c.rank == 2 && c->c.dims[0] != 1)
		return imp_refuse(imp, "a C with a row per sample");
	double beta = st_onnx_attr_float(imp->node, "beta", 1.0f);
	return dense(imp, x, &b->c, st_onnx_attr_int(imp->node, "transB", 0) != 0, st_onnx_attr_float(imp->node, "alpha", 1.0f),
	             c && beta != 0 ? &c->c : NULL, beta, err);
}

strata_status imp_map_matmul(st_onnx_import *imp, strata_error *err)
{
	imp_value *x = imp_tensor_in(imp, 0);
	if (!x)
		return STRATA_ERR_UNSUPPORTED;
	imp_value *b = imp_in(imp, 1);
	if (!b || b->state != IMP_CONST)
		return imp_refuse(imp, "a right-hand side that is not a constant");
	if (b->c.rank != 2)
		return imp_refuse(imp, "a right-hand side of rank %u (a dense layer's kernel is 2-D)", b->c.rank);
	if (x->rank < 2)
		return imp_refuse(imp, "a 1-D left-hand side");
	return dense(imp, x, &b->c, false, 1.0, NULL, 0, err);
}

/* Gather of one index along a non-batch axis of a tensor (an LSTM's h[-1], out[:, -1]): that
 * row cropped (import_shape.c), the axis dropped, or kept of size 1 when the index is a list of
 * one. */
static strata_status gather_slice(st_onnx_import *imp, imp_value *xp, const st_onnx_const *idx, strata_error *err)
{
	imp_value x = *xp;
	if (idx->count != 1 || idx->rank > 1)
		return imp_refuse(imp, "a Gather of a tensor by more than one index");
	int64_t axis = st_onnx_attr_int(imp->node, "axis", 0);
	if (axis < 0)
		axis += x.rank;
	if (axis < 0 || axis >= x.rank)
		return imp_fail(imp, err, STRATA_ERR_INVALID, "axis %lld is outside rank %u", (long long)axis, x.rank);
	int64_t len = x.dims[axis], i = imp_int(idx->v[0]);
	if (i < 0)
		i += len;
	if (i < 0 || i >= len)
		return imp_fail(imp, err, STRATA_ERR_INVALID, "index %g is outside an axis of %lld", idx->v[0],
		                (long long)len);
	return imp_crop_axis(imp, &x, (uint32_t)axis, i, i + 1, idx->rank == 1, 0, err);
}

/* Gather of rows of a constant table by int ids: Keras' Embedding, its table (input_dim,
 * output_dim) as ONNX stores it. */
strata_status imp_map_gather(st_onnx_import *imp, strata_error *err)
{
	imp_value *table = imp_in(imp, 0);
	imp_value *ids = imp_in(imp, 1);
	if (!table || !ids)
		return imp_fail(imp, err, STRATA_ERR_PARSE, "an input is missing");
	if (table->state == IMP_TENSOR && ids->state == IMP_CONST)
		return gather_slice(imp, table, &ids->c, err);
	if (table->state != IMP_CONST || ids->state != IMP_TENSOR)
		return imp_refuse(imp, "a Gather that is not rows of a constant table picked by a tensor of ids (an embedding)");
	if (!ids->ids)
		return imp_refuse(imp, "indices that are not an integer model input");
	if (st_onnx_attr_int(imp->node, "axis", 0) != 0 || table->c.rank != 2)
		return imp_refuse(imp, "a table of rank %u or an axis other than 0", table->c.rank);
	imp_value x = *ids;
	if (x.rank + 1 > ST_ONNX_MAX_RANK || x.rank > STRATA_MAX_RANK)
		return imp_refuse(imp, "ids of rank %u", x.rank);
	int64_t V = table->c.dims[0], E = table->c.dims[1];
	if (V < 1 || E < 1 || E > 65536)
		return imp_refuse(imp, "a table of %lld x %lld (Strata's vectors hold 1 to 65536 values)", (long long)V,
		                  (long long)E);
	float *t = floats_of_const(&table->c);
	if (!t)
		return imp_fail(imp, err, STRATA_ERR_NO_MEMORY, "out of memory");
	const char *in = x.ref;
	imp_layer *l;
	strata_status st = imp_add_layer(imp, imp_hint(imp), "embedding", &in, 1, &l, err,
	                                 "input_dim: %lld, output_dim: %lld", (long long)V, (long long)E);
	if (st) {
		free(t);
		return st;
	}
	strata_shape ts = {.rank = 2, .dims = {V, E}};
	if ((st = imp_weight_add(l, &ts, t, err)))
		return st;
	int64_t dims[ST_ONNX_MAX_RANK];
	uint32_t perm[ST_ONNX_MAX_RANK];
	memcpy(dims, x.dims, x.rank * sizeof(*dims));
	memcpy(perm, x.perm, x.rank * sizeof(*perm));
	dims[x.rank] = E;
	perm[x.rank] = x.rank;
	return imp_set_layer(imp, 0, l, x.rank + 1, dims, perm, NULL, err);
}
