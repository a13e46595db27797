/* The operators that act element by element on one tensor: activations (and the patterns
 * exporters write for GELU and softsign), Identity and Dropout, Softmax, PRelu. The arithmetic of
 * several operands is import_arith.c's. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "onnx/import.h"
#include "onnx/import_ops.h"

/* An activation right after a convolution or dense layer that nothing else reads becomes that
 * layer's `activation:` (one kernel less, as Keras writes such a layer). *fused says whether. */
static strata_status fuse(st_onnx_import *imp, const char *name, bool nonneg, bool *fused, strata_error *err)
{
	static const char *const types[] = {", type: conv2d,", ", type: conv1d,", ", type: dense,",
	                                    ", type: depthwise_conv2d,", ", type: conv2d_transpose,"};
	*fused = false;
	imp_value *x = imp_in(imp, 0);
	if (!x || x->state != IMP_TENSOR || x->layer < 0 || x->flat_rank || imp_readers(imp, x->name) != 1)
		return STRATA_OK;
	imp_layer *l = &imp->layers[x->layer];
	bool fusable = false;
	for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++)
		fusable |= strstr(l->yaml, types[i]) != NULL;
	if (!fusable || strstr(l->yaml, "activation:"))
		return STRATA_OK;
	size_t ylen = strlen(l->yaml), slen = strlen(l->source);
	char *yaml = realloc(l->yaml, ylen + strlen(name) + 16);
	if (!yaml)
		return imp_fail(imp, err, STRATA_ERR_NO_MEMORY, "out of memory");
	l->yaml = yaml;
	snprintf(yaml + ylen, strlen(name) + 16, ", activation: %s", name);
	char *source = realloc(l->source, slen + strlen(imp->label) + 4);
	if (!source)
		return imp_fail(imp, err, STRATA_ERR_NO_MEMORY, "out of memory");
	l->source = source;
	snprintf(source + slen, strlen(imp->label) + 4, " + %s", imp->label);
	imp_value copy = *x, *y;
	strata_status st = imp_alias(imp, 0, &copy, &y, err);
	if (!st) {
		y->nonneg = nonneg;
		*fused = true;
	}
	return st;
}

static strata_status activation(st_onnx_import *imp, strata_error *err, const char *name, bool nonneg)
{
	bool fused;
	strata_status st = fuse(imp, name, nonneg, &fused, err);
	if (st || fused)
		return st;
	char fields[64];
	snprintf(fields, sizeof(fields), "activation: %s", name);
	return imp_unary(imp, err, "activation", fields, nonneg);
}

strata_status imp_map_relu(st_onnx_import *imp, strata_error *err)
{
	return activation(imp, err, "relu", true);
}

strata_status imp_map_sigmoid(st_onnx_import *imp, strata_error *err)
{
	return activation(imp, err, "sigmoid", true);
}

strata_status imp_map_tanh(st_onnx_import *imp, strata_error *err)
{
	return activation(imp, err, "tanh", false);
}

strata_status imp_map_softplus(st_onnx_import *imp, strata_error *err)
{
	return activation(imp, err, "softplus", true);
}

strata_status imp_map_softsign(st_onnx_import *imp, strata_error *err)
{
	return activation(imp, err, "softsign", false);
}

strata_status imp_map_exp(st_onnx_import *imp, strata_error *err)
{
	return activation(imp, err, "exponential", true);
}

strata_status imp_map_hard_swish(st_onnx_import *imp, strata_error *err)
{
	return activation(imp, err, "hard_swish", false);
}

strata_status imp_map_leaky_relu(st_onnx_import *imp, strata_error *err)
{
	char fields[64];
	snprintf(fields, sizeof(fields), "negative_slope: %.9g", st_onnx_attr_float(imp->node, "alpha", 0.01f));
	return imp_unary(imp, err, "leaky_relu", fields, false);
}

strata_status imp_map_elu(st_onnx_import *imp, strata_error *err)
{
	char fields[64];
	snprintf(fields, sizeof(fields), "alpha: %.9g", st_onnx_attr_float(imp->node, "alpha", 1.0f));
	return imp_unary(imp, err, "elu", fields, false);
}

strata_status imp_map_selu(st_onnx_import *imp, strata_error *err)
{
	float alpha = st_onnx_attr_float(imp->node, "alpha", 1.67326319217681884765625f);
	float gamma = st_onnx_attr_float(imp->node, "gamma", 1.05070102214813232421875f);
	if (fabsf(alpha - 1.67326319217681884765625f) > 1e-6f || fabsf(gamma - 1.05070102214813232421875f) > 1e-6f)
		return imp_refuse(imp, "alpha %g and gamma %g: Strata's selu has the standard constants only", alpha, gamma);
	return activation(imp, err, "selu", false);
}

strata_status imp_map_hard_sigmoid(st_onnx_import *imp, strata_error *err)
{
	float alpha = st_onnx_attr_float(imp->node, "alpha", 0.2f);
	float beta = st_onnx_attr_float(imp->node, "beta", 0.5f);
	/* Strata's hard_sigmoid is Keras 3's: relu6(x + 3) / 6, alpha 1/6. */
	if (fabsf(alpha - 1.0f / 6.0f) <= 1e-6f && fabsf(beta - 0.5f) <= 1e-6f)
		return activation(imp, err, "hard_sigmoid", true);
	/* Any other (ONNX's default 0.2 is Keras 2's): max(0, min(1, alpha x + beta)) as ONNX writes
	 * it, a rescaling and a ReLU with max_value 1. */
	char rescale[96];
	snprintf(rescale, sizeof(rescale), "scale: %.9g, offset: %.9g", (double)alpha, (double)beta);
	const char *const types[] = {"rescaling", "relu"}, *const fields[] = {rescale, "max_value: 1"};
	return imp_unary_chain(imp, err, 2, types, fields, true);
}

/* The bound of Clip (an attribute before opset 11, an optional constant input since). */
static bool clip_bound(st_onnx_import *imp, size_t input, const char *attr, float fallback, float *out)
{
	if (imp->file->opset < 11) {
		*out = st_onnx_attr_float(imp->node, attr, fallback);
		return true;
	}
	imp_value *v = imp_in(imp, input);
	if (!v) {
		*out = fallback;
		return true;
	}
	if (v->state != IMP_CONST || v->c.count != 1)
		return false;
	*out = (float)v->c.v[0];
	return true;
}

strata_status imp_map_clip(st_onnx_import *imp, strata_error *err)
{
	float lo, hi;
	if (!clip_bound(imp, 1, "min", -INFINITY, &lo) || !clip_bound(imp, 2, "max", INFINITY, &hi))
		return imp_refuse(imp, "its bounds are not constants");
	if (lo != 0.0f)
		return imp_refuse(imp, "a lower bound of %g: Strata maps Clip(0, max), a ReLU with max_value", lo);
	if (hi == 6.0f)
		return activation(imp, err, "relu6", true);
	if (isinf(hi))
		return activation(imp, err, "relu", true);
	char fields[64];
	snprintf(fields, sizeof(fields), "max_value: %.9g", hi);
	return imp_unary(imp, err, "relu", fields, true);
}

/* Softmax and LogSoftmax: Strata's row-wise activations along the last axis of its layout. */
static strata_status row_wise(st_onnx_import *imp, strata_error *err, const char *name)
{
	imp_value *x = imp_tensor_in(imp, 0);
	if (!x)
		return STRATA_ERR_UNSUPPORTED;
	int64_t r = x->rank;
	int64_t axis = st_onnx_attr_int(imp->node, "axis", imp->file->opset >= 13 ? -1 : 1);
	if (axis < -r || axis >= r)
		return imp_fail(imp, err, STRATA_ERR_INVALID, "axis %lld is outside the input's %lld axes", (long long)axis,
		                (long long)r);
	if (axis < 0)
		axis += r;
	/* Before opset 13 the axes from `axis` on are one: only the last may be larger than 1. */
	if (imp->file->opset < 13)
		for (int64_t a = axis; a < r - 1; a++)
			if (x->dims[a] != 1)
				return imp_refuse(imp, "%s over axes %lld to %lld at once (opset %lld's coercion to 2-D)", name,
				                  (long long)axis, (long long)(r - 1), (long long)imp->file->opset);
	if (imp->file->opset < 13)
		axis = r - 1;
	if (axis == 0 || x->perm[0] == (uint32_t)axis)
		return imp_refuse(imp, "%s over the batch axis", name);
	if (x->flat_rank || x->perm[r - 1] != (uint32_t)axis) {
		/* Another layout: ONNX's own has the axis last when it is ONNX's last. */
		if (axis != r - 1)
			return imp_refuse(imp, "%s over axis %lld, which is not the last in Strata's layout", name,
			                  (long long)axis);
		char ref[IMP_NAME];
		imp_value copy = *x;
		strata_status st = imp_as_onnx(imp, &copy, ref, err);
		if (st)
			return st;
		const char *in = ref;
		imp_layer *l;
		if ((st = imp_add_layer(imp, imp_hint(imp), "activation", &in, 1, &l, err, "activation: %s", name)))
			return st;
		uint32_t id[ST_ONNX_MAX_RANK];
		imp_perm_identity(id, copy.rank);
		imp_value *y;
		if ((st = imp_set_layer(imp, 0, l, copy.rank, copy.dims, id, &y, err)))
			return st;
		y->nonneg = !strcmp(name, "softmax");
		return STRATA_OK;
	}
	return activation(imp, err, name, !strcmp(name, "softmax"));
}

strata_status imp_map_softmax(st_onnx_import *imp, strata_error *err)
{
	return row_wise(imp, err, "softmax");
}

strata_status imp_map_log_softmax(st_onnx_import *imp, strata_error *err)
{
	return row_wise(imp, err, "log_softmax");
}

strata_status imp_map_identity(st_onnx_import *imp, strata_error *err)
{
	imp_value *x = imp_in(imp, 0);
	if (!x)
		return imp_fail(imp, err, STRATA_ERR_PARSE, "it has no input");
	if (x->state == IMP_CONST) {
		st_onnx_const c = x->c;
		size_t bytes = c.count * sizeof(double) + 1;
		if (!(c.v = malloc(bytes)))
			return imp_fail(imp, err, STRATA_ERR_NO_MEMORY, "out of memory");
		memcpy(c.v, x->c.v, c.count * sizeof(double));
		return imp_set_const(imp, 0, &c, err);
	}
	return imp_alias(imp, 0, x, NULL, err);
}

/* Dropout at inference is the identity (the import is of a model to run; its mask output, when
 * read, is not supported). */
strata_status imp_map_dropout(st_onnx_import *imp, strata_error *err)
{
	if (imp->node->n_output > 1 && imp->node->output[1] && imp->node->output[1][0] &&
	    imp_readers(imp, imp->node->output[1]))
		return imp_refuse(imp, "its mask output is read");
	imp_value *mode = imp_in(imp, 2);
	if (mode && (mode->state != IMP_CONST || (mode->c.count && mode->c.v[0] != 0)))
		return imp_refuse(imp, "training_mode is on");
	return imp_map_identity(imp, err);
}

/* PRelu: Keras' PReLU, its alpha the slope broadcast to the sample's shape in Strata's layout,
 * with shared_axes where the slope does not vary. */
strata_status imp_map_prelu(st_onnx_import *imp, strata_error *err)
{
	imp_value *xp = imp_tensor_in(imp, 0);
	if (!xp)
		return STRATA_ERR_UNSUPPORTED;
	imp_value x = *xp;
	imp_value *sv = imp_in(imp, 1);
	if (!sv || sv->state != IMP_CONST)
		return imp_refuse(imp, "a slope that is not a constant");
	const st_onnx_const *slope = &sv->c;
	if (slope->rank > x.rank)
		return imp_fail(imp, err, STRATA_ERR_INVALID, "a slope of rank %u for an input of rank %u", slope->rank, x.rank);
	strata_status unflat = imp_unflatten(imp, &x, err);
	if (unflat)
		return unflat;
	/* The slope's size along each ONNX axis (right-aligned), 1 where it broadcasts. */
	int64_t sd[ST_ONNX_MAX_RANK] = {0};
	/* Before opset 7 a 1-D slope runs along the channels (axis 1), since it is right-aligned. */
	bool legacy = imp->file->opset < 7 && slope->rank == 1 && x.rank > 1;
	for (uint32_t a = 0; a < x.rank; a++) {
		sd[a] = legacy ? (a == 1 ? slope->dims[0] : 1)
		        : a + slope->rank >= x.rank ? slope->dims[a + slope->rank - x.rank] : 1;
		if (sd[a] != 1 && sd[a] != x.dims[a])
			return imp_fail(imp, err, STRATA_ERR_INVALID, "the slope does not broadcast along axis %u", a);
	}
	if (sd[x.perm[0]] != 1)
		return imp_refuse(imp, "a slope that varies along the batch");
	uint64_t stride[ST_ONNX_MAX_RANK], s = 1;
	for (uint32_t a = x.rank; a-- > 0;) {
		stride[a] = sd[a] == 1 ? 0 : s;
		s *= (uint64_t)sd[a];
	}
	/* Keras' alpha: the sample's shape, 1 on the shared axes (where the slope broadcasts). */
	strata_shape alpha_shape = {.rank = x.rank - 1};
	char shared[64] = "";
	size_t len = 0;
	uint64_t count = 1;
	for (uint32_t k = 1; k < x.rank; k++) {
		uint32_t a = x.perm[k];
		alpha_shape.dims[k - 1] = sd[a];
		count *= (uint64_t)sd[a];
		if (sd[a] == 1 && x.dims[a] != 1)
			len += (size_t)snprintf(shared + len, sizeof(shared) - len, "%s%u", len ? ", " : "", k);
	}
	float *alpha = malloc(count * sizeof(float) + 1);
	if (!alpha)
		return imp_fail(imp, err, STRATA_ERR_NO_MEMORY, "out of memory");
	uint64_t idx[ST_ONNX_MAX_RANK] = {0};
	for (uint64_t j = 0; j < count; j++) {
		uint64_t o = 0;
		for (uint32_t k = 1; k < x.rank; k++)
			o += idx[k] * stride[x.perm[k]];
		alpha[j] = (float)slope->v[o];
		for (uint32_t k = x.rank; k-- > 1;) {
			if (++idx[k] < (uint64_t)alpha_shape.dims[k - 1])
				break;
			idx[k] = 0;
		}
	}
	const char *in = x.ref;
	imp_layer *l;
	strata_status st;
	if (len)
		st = imp_add_layer(imp, imp_hint(imp), "prelu", &in, 1, &l, err, "shared_axes: [%s]", shared);
	else
		st = imp_add_layer(imp, imp_hint(imp), "prelu", &in, 1, &l, err, NULL);
	if (st) {
		free(alpha);
		return st;
	}
	if ((st = imp_weight_add(l, &alpha_shape, alpha, err)))
		return st;
	return imp_set_layer(imp, 0, l, x.rank, x.dims, x.perm, NULL, err);
}

/* The constant of a node's input i when it is a single value: one made already, or (a pattern
 * looks ahead of the walk) the value of a Constant node that makes it later. */
static bool scalar_in(st_onnx_import *imp, const Onnx__NodeProto *n, size_t i, double *v)
{
	if (i >= n->n_input || !n->input[i])
		return false;
	imp_value *c = imp_find(imp, n->input[i]);
	if (c) {
		if (c->state != IMP_CONST || c->c.count != 1)
			return false;
		*v = c->c.v[0];
		return true;
	}
	const Onnx__GraphProto *g = imp->file->model->graph;
	for (size_t k = 0; k < g->n_node; k++) {
		const Onnx__NodeProto *m = g->node[k];
		if (!m->op_type || strcmp(m->op_type, "Constant") || m->n_output != 1 || strcmp(m->output[0], n->input[i]))
			continue;
		const Onnx__AttributeProto *a = st_onnx_attr(m, "value");
		st_onnx_const t;
		strata_error ignored = {0};
		if (!a || !a->t || st_onnx_tensor(a->t, NULL, "constant", &t, &ignored))
			return false;
		bool one = t.count == 1;
		if (one)
			*v = t.v[0];
		st_onnx_const_free(&t);
		return one;
	}
	return false;
}

/* The other input of a two-input node, given one. */
static const char *other_input(const Onnx__NodeProto *n, const char *one)
{
	if (n->n_input != 2)
		return NULL;
	return !strcmp(n->input[0], one) ? n->input[1] : !strcmp(n->input[1], one) ? n->input[0] : NULL;
}

static bool is_op(const Onnx__NodeProto *n, const char *op)
{
	return n && n->op_type && !strcmp(n->op_type, op) && n->n_output >= 1;
}

/* Div by sqrt(2) as the start of the exact GELU exporters write before opset 20:
 * x / sqrt(2) -> Erf -> + 1 -> times x -> times 0.5 (or x times 0.5 first): one gelu activation.
 * *taken false (and nothing made or refused) when the node does not start that pattern. */
strata_status imp_gelu_from_div(st_onnx_import *imp, strata_error *err, bool *taken)
{
	const Onnx__NodeProto *div = imp->node;
	double c, one, half;
	size_t i_erf, i_add, i_m1, i_m2;
	*taken = false;
	imp_value *x = imp_in(imp, 0);
	if (!x || x->state != IMP_TENSOR || !scalar_in(imp, div, 1, &c) || fabs(c - 1.41421356) > 1e-3)
		return STRATA_OK;
	const Onnx__NodeProto *erf = imp_sole_reader(imp, div->output[0], &i_erf);
	const Onnx__NodeProto *add = is_op(erf, "Erf") ? imp_sole_reader(imp, erf->output[0], &i_add) : NULL;
	const char *add_other = is_op(add, "Add") ? other_input(add, erf->output[0]) : NULL;
	const Onnx__NodeProto *m1 = add_other && scalar_in(imp, add, !strcmp(add->input[0], add_other) ? 0 : 1, &one) &&
	                                    one == 1.0
	                                ? imp_sole_reader(imp, add->output[0], &i_m1)
	                                : NULL;
	const char *m1_other = is_op(m1, "Mul") ? other_input(m1, add->output[0]) : NULL;
	if (!m1_other)
		return STRATA_OK;
	const char *result = NULL;
	size_t i_half = SIZE_MAX;
	if (!strcmp(m1_other, x->name)) {
		/* (x * (1 + erf)) * 0.5 */
		const Onnx__NodeProto *m2 = imp_sole_reader(imp, m1->output[0], &i_m2);
		const char *m2_other = is_op(m2, "Mul") ? other_input(m2, m1->output[0]) : NULL;
		imp_value *h = m2_other ? imp_find(imp, m2_other) : NULL;
		if (h && h->state == IMP_CONST && h->c.count == 1 && h->c.v[0] == 0.5) {
			result = m2->output[0];
			i_half = i_m2;
		}
	} else {
		/* (x * 0.5) * (1 + erf): m1_other is the output of Mul(x, 0.5). */
		const Onnx__GraphProto *g = imp->file->model->graph;
		for (size_t k = 0; k < g->n_node && !result; k++) {
			const Onnx__NodeProto *n = g->node[k];
			if (is_op(n, "Mul") && !strcmp(n->output[0], m1_other) && other_input(n, x->name) &&
			    scalar_in(imp, n, !strcmp(n->input[0], x->name) ? 1 : 0, &half) && half == 0.5 &&
			    imp_readers(imp, m1_other) == 1) {
				result = m1->output[0];
				i_half = k;
			}
		}
		i_m2 = i_m1;
	}
	if (!result)
		return STRATA_OK;
	strata_status st = activation(imp, err, "gelu", false);
	if (st)
		return st;
	imp_value *y = imp_find(imp, div->output[0]);
	imp_value copy = *y;
	if ((st = imp_alias_named(imp, result, &copy, err)))
		return st;
	imp->done[i_erf] = imp->done[i_add] = imp->done[i_m1] = imp->done[i_m2] = imp->done[i_half] = true;
	*taken = true;
	return STRATA_OK;
}

/* Abs as the start of softsign, x / (1 + |x|), which exporters write as Abs, Add 1, Div. */
strata_status imp_map_abs(st_onnx_import *imp, strata_error *err)
{
	const Onnx__NodeProto *abs = imp->node;
	imp_value *x = imp_in(imp, 0);
	size_t i_add, i_div;
	double one;
	const Onnx__NodeProto *add = x && x->state == IMP_TENSOR ? imp_sole_reader(imp, abs->output[0], &i_add) : NULL;
	const char *add_other = is_op(add, "Add") ? other_input(add, abs->output[0]) : NULL;
	const Onnx__NodeProto *div = add_other && scalar_in(imp, add, !strcmp(add->input[0], add_other) ? 0 : 1, &one) &&
	                                     one == 1.0
	                                 ? imp_sole_reader(imp, add->output[0], &i_div)
	                                 : NULL;
	if (!is_op(div, "Div") || div->n_input != 2 || strcmp(div->input[0], x->name) || strcmp(div->input[1], add->output[0]))
		return imp_refuse(imp, "an absolute value (Strata maps x / (1 + |x|), softsign, only)");
	strata_status st = activation(imp, err, "softsign", false);
	if (st)
		return st;
	imp_value copy = *imp_find(imp, abs->output[0]);
	if ((st = imp_alias_named(imp, div->output[0], &copy, err)))
		return st;
	imp->done[i_add] = imp->done[i_div] = true;
	return STRATA_OK;
}
