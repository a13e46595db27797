/* ONNX's arithmetic: Add, Sub, Mul, Div, Max, Min, Sum and Mean with NumPy broadcasting, and Neg.
 *
 * Between tensors, Strata's merge layers (which broadcast as Keras 3's do, over the samples'
 * shapes). Every tensor carries the batch, so a tensor operand must have the result's rank and
 * batch: a tensor of lower rank would broadcast across the batch, which no Strata value does.
 * With one constant operand: a constant added to a layer without a bias becomes its bias
 * (MatMul + Add, Conv + Add); any other constant that is one number, or one per channel (Strata's
 * last axis), becomes a `rescaling` layer, x * scale + offset (x - c: offset -c; c - x: scale -1,
 * offset c; x / c: scale 1 / c, which may differ from the quotient in the last bit), or past the
 * 4 numbers Rescaling's list holds a frozen 1x1 depthwise convolution doing the same; Max(x, 0)
 * is a ReLU. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "onnx/import.h"
#include "onnx/import_ops.h"

static bool same_dims(const imp_value *a, const imp_value *b)
{
	if (a->rank != b->rank)
		return false;
	for (uint32_t k = 0; k < a->rank; k++)
		if (a->dims[k] != b->dims[k])
			return false;
	return true;
}

static bool same_flat(const imp_value *a, const imp_value *b)
{
	return a->flat_rank == b->flat_rank &&
	       (!a->flat_rank || (!memcmp(a->flat_dims, b->flat_dims, a->flat_rank * sizeof(a->flat_dims[0])) &&
	                          imp_perm_equal(a->flat_perm, b->flat_perm, a->flat_rank)));
}

/* Where a constant of c_rank axes lines up with a tensor of `rank` axes: since opset 7 at the
 * right; before, with `broadcast` set, at the `axis` attribute (from the left). */
static int64_t const_offset(st_onnx_import *imp, uint32_t rank, uint32_t c_rank)
{
	const Onnx__AttributeProto *legacy = imp->file->opset < 7 ? st_onnx_attr(imp->node, "axis") : NULL;
	if (legacy && legacy->has_i)
		return legacy->i < 0 ? legacy->i + rank : legacy->i;
	return (int64_t)rank - (int64_t)c_rank;
}

/* A constant added to the output of a layer that has no bias yet, read by nothing else: the
 * constant becomes that layer's bias (MatMul + Add, Conv without bias + Add). */
static strata_status fold_bias(st_onnx_import *imp, imp_value *x, const imp_value *c, bool negate,
                               strata_error *err, bool *done)
{
	*done = false;
	if (x->layer < 0 || imp_readers(imp, x->name) != 1)
		return STRATA_OK;
	imp_layer *l = &imp->layers[x->layer];
	char *flag = strstr(l->yaml, "use_bias: false");
	if (!flag || x->flat_rank || l->n_weights != 1 || strstr(l->yaml, "activation:"))
		return STRATA_OK;
	/* The bias runs along Strata's last axis: ONNX's axis perm[rank-1]. */
	uint32_t axis = x->perm[x->rank - 1];
	int64_t units = x->dims[axis];
	if ((int64_t)c->c.count != units && c->c.count != 1)
		return STRATA_OK;
	/* Its dims must broadcast along that axis only. */
	int64_t offset = const_offset(imp, x->rank, c->c.rank);
	if (offset < 0 || offset + c->c.rank > x->rank)
		return STRATA_OK;
	for (uint32_t d = 0; d < c->c.rank; d++) {
		uint32_t onnx_axis = (uint32_t)offset + d;
		if (c->c.dims[d] != 1 && onnx_axis != axis)
			return STRATA_OK;
	}
	float *bias = malloc((size_t)units * sizeof(float));
	if (!bias)
		return imp_fail(imp, err, STRATA_ERR_NO_MEMORY, "out of memory");
	for (int64_t u = 0; u < units; u++)
		bias[u] = (float)(negate ? -c->c.v[c->c.count == 1 ? 0 : u] : c->c.v[c->c.count == 1 ? 0 : u]);
	strata_shape shape = {.rank = 1, .dims = {units}};
	strata_status st = imp_weight_add(l, &shape, bias, err);
	if (st)
		return st;
	memcpy(flag, "use_bias: true ", 15);
	imp_value copy = *x;
	*done = true;
	return imp_alias(imp, 0, &copy, NULL, err);
}

/* ---- One constant operand -------------------------------------------------------------------- */

/* A layer of `type` with `fields` on x, the node's output in x's layout and flattening. */
static strata_status element_wise(st_onnx_import *imp, strata_error *err, const imp_value *x, const char *type,
                                   bool nonneg, const char *fields)
{
	const char *in = x->ref;
	imp_layer *l;
	imp_value *y;
	strata_status st = imp_add_layer(imp, imp_hint(imp), type, &in, 1, &l, err, "%s", fields);
	if (st || (st = imp_set_layer(imp, 0, l, x->rank, x->dims, x->perm, &y, err)))
		return st;
	y->nonneg = nonneg;
	imp_copy_flat(y, x);
	return STRATA_OK;
}

/* "[a, b, c]" of n floats, each printed so that it reads back as the same float. */
static void floats_text(const float *v, uint32_t n, char *buf, size_t size)
{
	size_t used = (size_t)snprintf(buf, size, "[");
	for (uint32_t i = 0; i < n && used < size; i++)
		used += (size_t)snprintf(buf + used, size - used, "%s%.9g", i ? ", " : "", (double)v[i]);
	if (used < size)
		snprintf(buf + used, size - used, "]");
}

/* The constant as one number, or one per channel along the ONNX axis that is Strata's last of x:
 * *v (malloc'd) gets *n values. x may be unflattened first (a copy the caller owns). Refuses
 * (STRATA_ERR_UNSUPPORTED) a constant that varies otherwise. */
static strata_status const_channels(st_onnx_import *imp, imp_value *x, const st_onnx_const *c, float **v,
                                    uint32_t *n, strata_error *err)
{
	*v = NULL;
	if (!c->count)
		return imp_fail(imp, err, STRATA_ERR_INVALID, "an empty constant operand");
	if (c->rank > x->rank)
		return imp_refuse(imp, "a constant of rank %u, above the tensor's %u (it would broadcast the tensor)",
		                  c->rank, x->rank);
	int64_t offset = const_offset(imp, x->rank, c->rank);
	if (offset < 0 || offset + c->rank > x->rank)
		return imp_fail(imp, err, STRATA_ERR_INVALID, "a constant that does not line up with the tensor");
	/* The ONNX axis along which the constant varies: -1 none, -2 several or the batch. */
	int varying = -1;
	for (uint32_t d = 0; d < c->rank; d++) {
		uint32_t a = (uint32_t)offset + d;
		if (c->dims[d] == 1)
			continue;
		if (c->dims[d] != x->dims[a])
			return x->dims[a] == 1 ? imp_refuse(imp, "a constant that broadcasts the tensor along axis %u", a)
			                       : imp_fail(imp, err, STRATA_ERR_INVALID,
			                                  "a constant of %lld along axis %u, where the tensor has %lld",
			                                  (long long)c->dims[d], a, (long long)x->dims[a]);
		if (varying != -1 || a == 0)
			varying = -2;
		else
			varying = (int)a;
	}
	bool uniform = true;
	for (uint64_t i = 1; i < c->count && uniform; i++)
		uniform = c->v[i] == c->v[0];
	if (!uniform && varying == -2)
		return imp_refuse(imp, "a constant that varies along more than one axis, or along the batch (one "
		                       "number, or one per channel, is taken)");
	if (!uniform) {
		/* The channels must be Strata's last axis; a flattened value's features are in another
		 * order than ONNX's, so it is put in ONNX's first. */
		strata_status st = imp_unflatten(imp, x, err);
		if (st)
			return st;
		if (x->perm[x->rank - 1] != (uint32_t)varying)
			return imp_refuse(imp, "a constant that varies along ONNX axis %d, which Strata does not store last",
			                  varying);
	}
	*n = uniform ? 1 : (uint32_t)c->count;
	if (!(*v = malloc(*n * sizeof(float))))
		return imp_fail(imp, err, STRATA_ERR_NO_MEMORY, "out of memory");
	for (uint32_t i = 0; i < *n; i++)
		(*v)[i] = (float)c->v[i];
	return STRATA_OK;
}

/* y = x * scale + offset per channel (n of them, more than Rescaling's list holds) as a frozen
 * 1x1 depthwise convolution: one product, and the bias added, per element, as Mul and Add do.
 * Samples that are not images, (H, W, C), are reshaped to (P, 1, C) around it. Takes scale (NULL:
 * `fill` for every channel) and offset (NULL: none). */
static strata_status channel_affine(st_onnx_import *imp, strata_error *err, const imp_value *x, float *scale,
                                    float fill, float *offset, uint32_t n)
{
	int64_t dims[ST_ONNX_MAX_RANK];
	imp_strata_dims(x, dims);
	uint32_t rank = x->rank - 1;
	int64_t p = 1;
	for (uint32_t k = 0; k + 1 < rank; k++)
		p *= dims[k];
	char ref[IMP_NAME], text[128];
	snprintf(ref, sizeof(ref), "%s", x->ref);
	const char *in = ref;
	imp_layer *l;
	strata_status st = STRATA_OK;
	bool image = rank == 3;
	if (!image && (st = imp_add_layer(imp, imp_hint(imp), "reshape", &in, 1, &l, err, "target_shape: [%lld, 1, %u]",
	                                  (long long)p, n)) == STRATA_OK)
		snprintf(ref, sizeof(ref), "%s", l->name);
	if (st == STRATA_OK)
		st = imp_add_layer(imp, imp_hint(imp), "depthwise_conv2d", &in, 1, &l, err,
		                   "kernel_size: [1, 1], use_bias: %s, trainable: false", offset ? "true" : "false");
	if (st != STRATA_OK) {
		free(scale);
		free(offset);
		return st;
	}
	strata_shape ks = {.rank = 4, .dims = {1, 1, n, 1}}, bs = {.rank = 1, .dims = {n}};
	if (!scale && (scale = malloc(n * sizeof(float))))
		for (uint32_t i = 0; i < n; i++)
			scale[i] = fill;
	if (!scale) {
		free(offset);
		return imp_fail(imp, err, STRATA_ERR_NO_MEMORY, "out of memory");
	}
	if ((st = imp_weight_add(l, &ks, scale, err))) { /* it freed scale */
		free(offset);
		return st;
	}
	if (offset && (st = imp_weight_add(l, &bs, offset, err)))
		return st;
	if (!image) {
		snprintf(ref, sizeof(ref), "%s", l->name);
		imp_dims_text(dims, rank, text, sizeof(text));
		if ((st = imp_add_layer(imp, imp_hint(imp), "reshape", &in, 1, &l, err, "target_shape: %s", text)))
			return st;
	}
	imp_value *y;
	if ((st = imp_set_layer(imp, 0, l, x->rank, x->dims, x->perm, &y, err)))
		return st;
	imp_copy_flat(y, x);
	return STRATA_OK;
}

/* x OP c or c OP x as a Rescaling (a frozen depthwise convolution past 4 channels), a ReLU, or a
 * bias. */
static strata_status const_operand(st_onnx_import *imp, strata_error *err, const char *type, imp_value *xv,
                                   const imp_value *cv, bool c_first)
{
	bool add = !strcmp(type, "add"), sub = !strcmp(type, "subtract"), mul = !strcmp(type, "multiply"),
	     div = !strcmp(type, "divide"), max = !strcmp(type, "maximum");
	if (add || (sub && !c_first)) {
		bool done;
		strata_status st = fold_bias(imp, xv, cv, sub, err, &done);
		if (st || done)
			return st;
	}
	if (xv->ids)
		return imp_refuse(imp, "its input holds integer ids");
	if (div && c_first)
		return imp_refuse(imp, "a constant divided by a tensor");
	if (!add && !sub && !mul && !div && !max)
		return imp_refuse(imp, "a constant operand of %s", imp->node->op_type);
	imp_value x = *xv;
	float *c;
	uint32_t n = 0;
	strata_status st = const_channels(imp, &x, &cv->c, &c, &n, err);
	if (st)
		return st;
	if (max) {
		bool zero = n == 1 && c[0] == 0.0f;
		free(c);
		if (!zero)
			return imp_refuse(imp, "a maximum with a constant other than 0 (Max(x, 0) is a ReLU)");
		return element_wise(imp, err, &x, "activation", true, "activation: relu");
	}
	/* c becomes the offset (Add, Sub) or the scale (Mul, Div: its reciprocal); c - x scales by -1. */
	for (uint32_t i = 0; i < n; i++) {
		if (sub && !c_first)
			c[i] = -c[i];
		else if (div && c[i] == 0.0f) {
			free(c);
			return imp_fail(imp, err, STRATA_ERR_INVALID, "a division by a constant 0");
		} else if (div)
			c[i] = 1.0f / c[i];
	}
	bool offset = add || sub;
	float minus_one = -1.0f, one = 1.0f, zero = 0.0f;
	const float *scale = offset ? (sub && c_first ? &minus_one : &one) : c, *shift = offset ? c : &zero;
	if (n > 4)
		return channel_affine(imp, err, &x, offset ? NULL : c, *scale, offset ? c : NULL, n);
	char s_text[96], o_text[96], fields[208];
	floats_text(scale, offset ? 1 : n, s_text, sizeof(s_text));
	floats_text(shift, offset ? n : 1, o_text, sizeof(o_text));
	free(c);
	snprintf(fields, sizeof(fields), "scale: %s, offset: %s", s_text, o_text);
	return element_wise(imp, err, &x, "rescaling", false, fields);
}

/* ---- Tensors --------------------------------------------------------------------------------- */

/* The merge layer's output: `lead`'s layout (and flattening, for operands of one shape). */
static strata_status merged(st_onnx_import *imp, strata_error *err, const char *type, const char *const *refs,
                            size_t n, const imp_value *lead, const int64_t *dims)
{
	imp_layer *l;
	strata_status st = imp_add_layer(imp, imp_hint(imp), type, refs, n, &l, err, NULL);
	if (st)
		return st;
	imp_value *y;
	if ((st = imp_set_layer(imp, 0, l, lead->rank, dims, lead->perm, &y, err)))
		return st;
	imp_copy_flat(y, lead);
	return STRATA_OK;
}

/* The broadcast of the tensor operands' ONNX dims into dims (the batch, axis 0, must agree:
 * every tensor carries its own); refuses a lower rank (a broadcast across the batch). */
static strata_status broadcast_dims(st_onnx_import *imp, strata_error *err, imp_value *const *v, size_t n,
                                    int64_t *dims, bool *same)
{
	uint32_t rank = v[0]->rank;
	*same = true;
	memcpy(dims, v[0]->dims, rank * sizeof(*dims));
	for (size_t i = 1; i < n; i++) {
		if (v[i]->rank != rank)
			return imp_refuse(imp, "tensor operands of ranks %u and %u (one would broadcast across the batch)",
			                  rank, v[i]->rank);
		if (imp->file->opset < 7 && !same_dims(v[i], v[0]))
			return imp_refuse(imp, "broadcasting between tensors before opset 7");
		for (uint32_t a = 0; a < rank; a++) {
			int64_t p = dims[a], q = v[i]->dims[a];
			if (p == q)
				continue;
			*same = false;
			if (a == 0)
				return imp_refuse(imp, "tensor operands of batch %lld and %lld", (long long)p, (long long)q);
			if (p != 1 && q != 1)
				return imp_fail(imp, err, STRATA_ERR_INVALID, "operands of %lld and %lld along axis %u do not "
				                "broadcast", (long long)p, (long long)q, a);
			dims[a] = p == 1 ? q : p;
		}
	}
	return STRATA_OK;
}

/* Add, Sub, Mul, Div, Max, Min, Sum, Mean: Strata's merge layer `type`. */
static strata_status merge(st_onnx_import *imp, strata_error *err, const char *type)
{
	const Onnx__NodeProto *n = imp->node;
	if (n->n_input < 1)
		return imp_fail(imp, err, STRATA_ERR_PARSE, "it has no inputs");
	if (n->n_input == 1)
		return imp_map_identity(imp, err);
	if (n->n_input > 16)
		return imp_refuse(imp, "%zu inputs, more than 16", n->n_input);
	imp_value *v[16];
	size_t n_const = 0;
	for (size_t i = 0; i < n->n_input; i++) {
		if (!(v[i] = imp_in(imp, i)))
			return imp_fail(imp, err, STRATA_ERR_PARSE, "an input is missing");
		if (v[i]->state == IMP_CONST)
			n_const++;
		else if (v[i]->state != IMP_TENSOR)
			return STRATA_ERR_UNSUPPORTED;
	}
	if (n->n_input == 2 && n_const == 1) {
		bool c_first = v[0]->state == IMP_CONST;
		return const_operand(imp, err, type, v[c_first ? 1 : 0], v[c_first ? 0 : 1], c_first);
	}
	if (n_const)
		return imp_refuse(imp, "constant operands among %zu inputs (one constant and one tensor are taken)",
		                  n->n_input);
	int64_t dims[ST_ONNX_MAX_RANK];
	bool same;
	strata_status st = broadcast_dims(imp, err, v, n->n_input, dims, &same);
	if (st)
		return st;
	/* The layout: the first operand of the result's shape leads, the others are stored as it is. */
	size_t lead_i = 0;
	for (size_t i = 0; i < n->n_input; i++)
		if (!memcmp(v[i]->dims, dims, v[i]->rank * sizeof(*dims))) {
			lead_i = i;
			break;
		}
	imp_value lead = *v[lead_i];
	/* Broadcasting runs over ONNX's axes: flattened operands take ONNX's feature order first. */
	if (!same && (st = imp_unflatten(imp, &lead, err)))
		return st;
	const char *refs[16];
	char bufs[16][IMP_NAME];
	for (size_t i = 0; i < n->n_input; i++) {
		imp_value copy = *v[i];
		if (same && same_flat(&copy, &lead) && imp_perm_equal(copy.perm, lead.perm, lead.rank)) {
			snprintf(bufs[i], IMP_NAME, "%s", copy.ref);
		} else if (same && lead.flat_rank) {
			return imp_refuse(imp, "operands flattened in different orders");
		} else if ((!same && (st = imp_unflatten(imp, &copy, err))) ||
		           (st = imp_as(imp, &copy, lead.perm, bufs[i], err))) {
			return st;
		}
		refs[i] = bufs[i];
	}
	return merged(imp, err, type, refs, n->n_input, &lead, dims);
}

strata_status imp_map_add(st_onnx_import *imp, strata_error *err)
{
	return merge(imp, err, "add");
}

strata_status imp_map_sub(st_onnx_import *imp, strata_error *err)
{
	return merge(imp, err, "subtract");
}

strata_status imp_map_mul(st_onnx_import *imp, strata_error *err)
{
	return merge(imp, err, "multiply");
}

/* Div: PyTorch's exact GELU starts with x / sqrt(2) (one gelu activation); any other division
 * is a `divide` layer, or a Rescaling by the reciprocal of a constant divisor. */
strata_status imp_map_div(st_onnx_import *imp, strata_error *err)
{
	bool taken;
	strata_status st = imp_gelu_from_div(imp, err, &taken);
	if (st || taken)
		return st;
	return merge(imp, err, "divide");
}

strata_status imp_map_max(st_onnx_import *imp, strata_error *err)
{
	return merge(imp, err, "maximum");
}

strata_status imp_map_min(st_onnx_import *imp, strata_error *err)
{
	return merge(imp, err, "minimum");
}

strata_status imp_map_mean(st_onnx_import *imp, strata_error *err)
{
	return merge(imp, err, "average");
}

/* Neg: a Rescaling by -1, exact. */
strata_status imp_map_neg(st_onnx_import *imp, strata_error *err)
{
	return imp_unary(imp, err, "rescaling", "scale: -1", false);
}
