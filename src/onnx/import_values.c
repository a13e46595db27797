/* The ONNX importer's working state (import.h): refusals and errors, the value table, the layers
 * made, and layouts (a permute where a value is stored otherwise than an operator needs). The
 * walk over the graph is import_walk.c; the operators use these helpers. */
#include "onnx/import.h"
#include "onnx/import_ops.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "base/fsutil.h"

/* ---- Messages ------------------------------------------------------------------------------ */

strata_status imp_refuse(st_onnx_import *imp, const char *fmt, ...)
{
	char why[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	char line[1024];
	int n = snprintf(line, sizeof(line), "  %s (opset %lld): %s\n", imp->label, (long long)imp->file->opset, why);
	if (n < 0)
		return STRATA_ERR_UNSUPPORTED;
	size_t len = strlen(line);
	char *grown = realloc(imp->refused, imp->refused_len + len + 1);
	if (grown) {
		memcpy(grown + imp->refused_len, line, len + 1);
		imp->refused = grown;
		imp->refused_len += len;
	}
	imp->n_refused++;
	return STRATA_ERR_UNSUPPORTED;
}

strata_status imp_fail(st_onnx_import *imp, strata_error *err, strata_status status, const char *fmt, ...)
{
	char why[STRATA_ERROR_MAX];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	return st_fail(err, status, "%s: %s: %s", imp->file->path, imp->label, why);
}

/* ---- Values -------------------------------------------------------------------------------- */

imp_value *imp_find(st_onnx_import *imp, const char *name)
{
	for (size_t i = imp->n_values; i-- > 0;)
		if (!strcmp(imp->values[i].name, name))
			return &imp->values[i];
	return NULL;
}

strata_status imp_new_value(st_onnx_import *imp, const char *name, imp_value **out, strata_error *err)
{
	if (imp_find(imp, name))
		return st_fail(err, STRATA_ERR_PARSE, "%s: the value '%s' is defined twice", imp->file->path, name);
	if (imp->n_values == imp->cap_values) {
		size_t cap = imp->cap_values ? imp->cap_values * 2 : 64;
		imp_value *v = realloc(imp->values, cap * sizeof(*v));
		if (!v)
			return st_fail(err, STRATA_ERR_NO_MEMORY, "out of memory");
		imp->values = v;
		imp->cap_values = cap;
	}
	imp_value *v = &imp->values[imp->n_values];
	memset(v, 0, sizeof(*v));
	if (!(v->name = strdup(name)))
		return st_fail(err, STRATA_ERR_NO_MEMORY, "out of memory");
	imp->n_values++;
	*out = v;
	return STRATA_OK;
}

imp_value *imp_in(st_onnx_import *imp, size_t i)
{
	const Onnx__NodeProto *n = imp->node;
	if (i >= n->n_input || !n->input[i] || !n->input[i][0])
		return NULL;
	return imp_find(imp, n->input[i]);
}

strata_status imp_out(st_onnx_import *imp, size_t i, imp_value **out, strata_error *err)
{
	const Onnx__NodeProto *n = imp->node;
	if (i >= n->n_output || !n->output[i] || !n->output[i][0])
		return imp_fail(imp, err, STRATA_ERR_PARSE, "it has no output %zu", i);
	return imp_new_value(imp, n->output[i], out, err);
}

strata_status imp_set_const(st_onnx_import *imp, size_t i, st_onnx_const *c, strata_error *err)
{
	imp_value *v;
	strata_status st = imp_out(imp, i, &v, err);
	if (st) {
		st_onnx_const_free(c);
		return st;
	}
	v->state = IMP_CONST;
	v->c = *c;
	c->v = NULL;
	return STRATA_OK;
}

strata_status imp_set_tensor(st_onnx_import *imp, size_t i, const char *ref, uint32_t rank, const int64_t *dims,
                             const uint32_t *perm, strata_error *err)
{
	/* Every tensor's sizes stay those Strata can hold (a sample of at most 2^31 - 1 values), so
	 * that the arithmetic on them never overflows, whatever a hostile file says. */
	int64_t per_sample = 1;
	for (uint32_t k = 0; k < rank; k++) {
		if (k == perm[0])
			continue;
		if (dims[k] < 1 || dims[k] > INT32_MAX || per_sample > INT32_MAX / dims[k])
			return imp_fail(imp, err, STRATA_ERR_INVALID, "its output would have %s (axis %u: %lld)",
			                dims[k] < 1 ? "an empty axis" : "more than 2^31 - 1 values a sample", k, (long long)dims[k]);
		per_sample *= dims[k];
	}
	imp_value *v;
	strata_status st = imp_out(imp, i, &v, err);
	if (st)
		return st;
	v->state = IMP_TENSOR;
	v->layer = -1;
	snprintf(v->ref, sizeof(v->ref), "%s", ref);
	v->rank = rank;
	memcpy(v->dims, dims, rank * sizeof(*dims));
	memcpy(v->perm, perm, rank * sizeof(*perm));
	return STRATA_OK;
}

strata_status imp_set_layer(st_onnx_import *imp, size_t i, const imp_layer *layer, uint32_t rank, const int64_t *dims,
                            const uint32_t *perm, imp_value **out, strata_error *err)
{
	strata_status st = imp_set_tensor(imp, i, layer->name, rank, dims, perm, err);
	if (st)
		return st;
	imp_value *v = imp_find(imp, imp->node->output[i]);
	v->layer = layer - imp->layers;
	if (out)
		*out = v;
	return STRATA_OK;
}

strata_status imp_alias(st_onnx_import *imp, size_t i, const imp_value *v, imp_value **out, strata_error *err)
{
	imp_value copy = *v;
	imp_value *o;
	strata_status st = imp_out(imp, i, &o, err);
	if (st)
		return st;
	char *name = o->name;
	*o = copy;
	o->name = name;
	o->c.v = NULL;
	if (out)
		*out = o;
	return STRATA_OK;
}

size_t imp_readers(const st_onnx_import *imp, const char *name)
{
	const Onnx__GraphProto *g = imp->file->model->graph;
	size_t n = 0;
	for (size_t i = 0; i < g->n_node; i++)
		for (size_t j = 0; j < g->node[i]->n_input; j++)
			n += g->node[i]->input[j] && !strcmp(g->node[i]->input[j], name);
	for (size_t i = 0; i < g->n_output; i++)
		n += g->output[i]->name && !strcmp(g->output[i]->name, name);
	return n;
}

const Onnx__NodeProto *imp_sole_reader(const st_onnx_import *imp, const char *name, size_t *index)
{
	if (imp_readers(imp, name) != 1)
		return NULL;
	const Onnx__GraphProto *g = imp->file->model->graph;
	for (size_t i = 0; i < g->n_node; i++)
		for (size_t j = 0; j < g->node[i]->n_input; j++)
			if (g->node[i]->input[j] && !strcmp(g->node[i]->input[j], name)) {
				*index = i;
				return g->node[i];
			}
	return NULL; /* a graph output */
}

strata_status imp_alias_named(st_onnx_import *imp, const char *name, const imp_value *v, strata_error *err)
{
	imp_value copy = *v, *o;
	strata_status st = imp_new_value(imp, name, &o, err);
	if (st)
		return st;
	char *own = o->name;
	*o = copy;
	o->name = own;
	o->c.v = NULL;
	return STRATA_OK;
}

void imp_flat_order(const imp_value *v, uint64_t *order)
{
	uint32_t r = v->flat_rank;
	uint64_t stride[ST_ONNX_MAX_RANK]; /* ONNX's row-major strides over axes 1..r-1 */
	uint64_t s = 1;
	for (uint32_t a = r; a-- > 1;) {
		stride[a] = s;
		s *= (uint64_t)v->flat_dims[a];
	}
	uint64_t idx[ST_ONNX_MAX_RANK] = {0};
	for (uint64_t j = 0; j < s; j++) {
		uint64_t o = 0;
		for (uint32_t k = 1; k < r; k++)
			o += idx[k] * stride[v->flat_perm[k]];
		order[j] = o;
		for (uint32_t k = r; k-- > 1;) { /* next Strata index, last axis fastest */
			if (++idx[k] < (uint64_t)v->flat_dims[v->flat_perm[k]])
				break;
			idx[k] = 0;
		}
	}
}

int64_t imp_int(double v)
{
	const double limit = 4611686018427387904.0; /* 2^62 */
	return v != v ? 0 : v > limit ? INT64_C(1) << 62 : v < -limit ? -(INT64_C(1) << 62) : (int64_t)v;
}

const char *imp_hint(const st_onnx_import *imp)
{
	const Onnx__NodeProto *n = imp->node;
	return n->name && n->name[0] ? n->name : n->n_output && n->output[0] ? n->output[0] : "layer";
}

/* ---- Layers -------------------------------------------------------------------------------- */

/* Strata layer names: letters, digits and '_' (weights are named LAYER/WEIGHT), not starting
 * with a digit, unique. */
void imp_make_name(st_onnx_import *imp, const char *hint, char *out, size_t size)
{
	char base[IMP_NAME - 16];
	size_t k = 0;
	while (*hint && !isalnum((unsigned char)*hint))
		hint++; /* PyTorch's "/conv1/Conv" is conv1_Conv */
	for (const char *p = hint; *p && k + 1 < sizeof(base); p++)
		base[k++] = isalnum((unsigned char)*p) ? *p : '_';
	base[k] = '\0';
	if (!k || isdigit((unsigned char)base[0]))
		snprintf(base, sizeof(base), "n_%s", k ? hint : "layer");
	for (size_t j = 0; base[j]; j++)
		if (!isalnum((unsigned char)base[j]))
			base[j] = '_';
	snprintf(out, size, "%s", base);
	for (unsigned suffix = 1;; suffix++) {
		bool taken = false;
		for (size_t i = 0; i < imp->n_layers && !taken; i++) {
			/* Nor the parts the loader names after a recurrent layer with return_state. */
			size_t len = strlen(imp->layers[i].name);
			taken = !strcmp(imp->layers[i].name, out) ||
			        (!strncmp(out, imp->layers[i].name, len) &&
			         (!strcmp(out + len, "_output") || !strcmp(out + len, "_state_h") || !strcmp(out + len, "_state_c")));
		}
		for (size_t i = 0; i < imp->n_inputs && !taken; i++)
			taken = !strcmp(imp->inputs[i].ref, out);
		if (!taken)
			return;
		snprintf(out, size, "%s_%u", base, suffix);
	}
}

static strata_status add_layer_v(st_onnx_import *imp, const char *hint, const char *type, const char *const *inputs,
                                 size_t n_inputs, imp_layer **out, strata_error *err, const char *fields_fmt,
                                 va_list ap)
{
	if (imp->n_layers == imp->cap_layers) {
		size_t cap = imp->cap_layers ? imp->cap_layers * 2 : 32;
		imp_layer *l = realloc(imp->layers, cap * sizeof(*l));
		if (!l)
			return st_fail(err, STRATA_ERR_NO_MEMORY, "out of memory");
		imp->layers = l;
		imp->cap_layers = cap;
	}
	imp_layer *l = &imp->layers[imp->n_layers];
	memset(l, 0, sizeof(*l));
	imp_make_name(imp, hint, l->name, sizeof(l->name));
	char fields[1024] = "";
	if (fields_fmt)
		vsnprintf(fields, sizeof(fields), fields_fmt, ap);
	size_t cap = strlen(l->name) + strlen(type) + strlen(fields) + 64;
	for (size_t i = 0; i < n_inputs; i++)
		cap += strlen(inputs[i]) + 2;
	char *yaml = malloc(cap);
	char *source = strdup(imp->label);
	if (!yaml || !source) {
		free(yaml);
		free(source);
		return st_fail(err, STRATA_ERR_NO_MEMORY, "out of memory");
	}
	size_t len = (size_t)snprintf(yaml, cap, "name: %s, type: %s, inputs: [", l->name, type);
	for (size_t i = 0; i < n_inputs; i++)
		len += (size_t)snprintf(yaml + len, cap - len, "%s%s", i ? ", " : "", inputs[i]);
	snprintf(yaml + len, cap - len, "]%s%s", fields[0] ? ", " : "", fields);
	l->yaml = yaml;
	l->source = source;
	imp->n_layers++;
	*out = l;
	return STRATA_OK;
}

strata_status imp_add_layer(st_onnx_import *imp, const char *hint, const char *type, const char *const *inputs,
                            size_t n_inputs, imp_layer **out, strata_error *err, const char *fields_fmt, ...)
{
	va_list ap;
	va_start(ap, fields_fmt);
	strata_status st = add_layer_v(imp, hint, type, inputs, n_inputs, out, err, fields_fmt, ap);
	va_end(ap);
	return st;
}

strata_status imp_single(st_onnx_import *imp, const char *ref, const char *type, uint32_t rank, const int64_t *dims,
                         const uint32_t *perm, bool nonneg, strata_error *err, const char *fields_fmt, ...)
{
	imp_layer *l;
	va_list ap;
	va_start(ap, fields_fmt);
	strata_status st = add_layer_v(imp, imp_hint(imp), type, &ref, 1, &l, err, fields_fmt, ap);
	va_end(ap);
	imp_value *y;
	if (st || (st = imp_set_layer(imp, 0, l, rank, dims, perm, &y, err)))
		return st;
	y->nonneg = nonneg;
	return STRATA_OK;
}

strata_status imp_weight_add(imp_layer *layer, const strata_shape *shape, float *data, strata_error *err)
{
	if (layer->n_weights == IMP_MAX_WEIGHTS) {
		free(data);
		return st_fail(err, STRATA_ERR_INVALID, "layer %s: too many weights", layer->name);
	}
	layer->weights[layer->n_weights].shape = *shape;
	layer->weights[layer->n_weights].data = data;
	layer->n_weights++;
	return STRATA_OK;
}

/* ---- Layouts ------------------------------------------------------------------------------- */

void imp_perm_identity(uint32_t *perm, uint32_t rank)
{
	for (uint32_t k = 0; k < rank; k++)
		perm[k] = k;
}

void imp_perm_channels_last(uint32_t *perm, uint32_t rank)
{
	perm[0] = 0;
	for (uint32_t k = 1; k + 1 < rank; k++)
		perm[k] = k + 1;
	if (rank > 1)
		perm[rank - 1] = 1;
}

bool imp_perm_equal(const uint32_t *a, const uint32_t *b, uint32_t rank)
{
	return !memcmp(a, b, rank * sizeof(*a));
}

void imp_strata_dims(const imp_value *v, int64_t *dims)
{
	for (uint32_t k = 1; k < v->rank; k++)
		dims[k - 1] = v->dims[v->perm[k]];
}

void imp_dims_text(const int64_t *dims, uint32_t n, char *buf, size_t size)
{
	size_t len = (size_t)snprintf(buf, size, "[");
	for (uint32_t i = 0; i < n && len < size; i++)
		len += (size_t)snprintf(buf + len, size - len, "%s%lld", i ? ", " : "", (long long)dims[i]);
	if (len < size)
		snprintf(buf + len, size - len, "]");
}

/* A permute layer taking v (stored as v->perm) to `perm`; both keep the batch first. */
static strata_status permute(st_onnx_import *imp, imp_value *v, const uint32_t *perm, char *ref, strata_error *err)
{
	if (perm[0] != v->perm[0])
		return imp_refuse(imp, "the layout it needs moves the batch axis");
	if (v->rank - 1 > STRATA_MAX_RANK)
		return imp_refuse(imp, "rank %u is more than Strata's %d axes and a batch", v->rank, STRATA_MAX_RANK);
	int64_t dims[ST_ONNX_MAX_RANK];
	for (uint32_t k = 1; k < v->rank; k++) {
		uint32_t j = 1;
		while (j < v->rank && v->perm[j] != perm[k])
			j++;
		dims[k - 1] = j;
	}
	char text[64];
	imp_dims_text(dims, v->rank - 1, text, sizeof(text));
	char hint[IMP_NAME + 8];
	snprintf(hint, sizeof(hint), "%s_permute", v->ref);
	const char *in = v->ref;
	imp_layer *l;
	strata_status st = imp_add_layer(imp, hint, "permute", &in, 1, &l, err, "dims: %s", text);
	if (st)
		return st;
	snprintf(ref, IMP_NAME, "%s", l->name);
	return STRATA_OK;
}

/* The features of a flattened feature map, put in ONNX's order: back to the map's shape,
 * permuted channels-first, flattened again. */
static strata_status unflatten(st_onnx_import *imp, imp_value *v, char *ref, strata_error *err)
{
	imp_value src = *v;
	src.rank = v->flat_rank;
	memcpy(src.dims, v->flat_dims, sizeof(src.dims));
	memcpy(src.perm, v->flat_perm, sizeof(src.perm));
	int64_t dims[ST_ONNX_MAX_RANK];
	imp_strata_dims(&src, dims);
	char text[64];
	imp_dims_text(dims, src.rank - 1, text, sizeof(text));
	char hint[IMP_NAME + 8];
	snprintf(hint, sizeof(hint), "%s_unflat", v->ref);
	const char *in = v->ref;
	imp_layer *l;
	strata_status st = imp_add_layer(imp, hint, "reshape", &in, 1, &l, err, "target_shape: %s", text);
	if (st)
		return st;
	snprintf(src.ref, sizeof(src.ref), "%s", l->name);
	uint32_t id[ST_ONNX_MAX_RANK];
	imp_perm_identity(id, src.rank);
	char permuted[IMP_NAME];
	if ((st = permute(imp, &src, id, permuted, err)))
		return st;
	snprintf(hint, sizeof(hint), "%s_flat", v->ref);
	in = permuted;
	if ((st = imp_add_layer(imp, hint, "flatten", &in, 1, &l, err, NULL)))
		return st;
	snprintf(ref, IMP_NAME, "%s", l->name);
	return STRATA_OK;
}

strata_status imp_as(st_onnx_import *imp, imp_value *v, const uint32_t *perm, char *ref, strata_error *err)
{
	if (v->flat_rank) {
		uint32_t id[ST_ONNX_MAX_RANK];
		imp_perm_identity(id, v->rank);
		if (!imp_perm_equal(perm, id, v->rank))
			return imp_refuse(imp, "a flattened value in another layout");
		return unflatten(imp, v, ref, err);
	}
	if (imp_perm_equal(perm, v->perm, v->rank)) {
		snprintf(ref, IMP_NAME, "%s", v->ref);
		return STRATA_OK;
	}
	return permute(imp, v, perm, ref, err);
}

strata_status imp_unflatten(st_onnx_import *imp, imp_value *v, strata_error *err)
{
	if (!v->flat_rank)
		return STRATA_OK;
	char ref[IMP_NAME];
	strata_status st = imp_as_onnx(imp, v, ref, err);
	if (st)
		return st;
	snprintf(v->ref, sizeof(v->ref), "%s", ref);
	v->flat_rank = 0;
	imp_perm_identity(v->perm, v->rank);
	return STRATA_OK;
}

strata_status imp_as_onnx(st_onnx_import *imp, imp_value *v, char *ref, strata_error *err)
{
	uint32_t id[ST_ONNX_MAX_RANK];
	imp_perm_identity(id, v->rank);
	return imp_as(imp, v, id, ref, err);
}

/* ---- Helpers of the operators ----------------------------------------------------------- */

/* Input 0 as a tensor: constants reach here only for operators that are not folded. */
imp_value *imp_tensor_in(st_onnx_import *imp, size_t i)
{
	imp_value *v = imp_in(imp, i);
	if (!v || v->state != IMP_TENSOR) {
		imp_refuse(imp, "input %zu is %s", i, v ? "a constant, which Strata's layers do not take here" : "missing");
		return NULL;
	}
	return v;
}

strata_status imp_unary_chain(st_onnx_import *imp, strata_error *err, size_t n, const char *const *types,
                              const char *const *fields, bool nonneg)
{
	imp_value *x = imp_tensor_in(imp, 0);
	if (!x)
		return STRATA_ERR_UNSUPPORTED;
	if (x->ids)
		return imp_refuse(imp, "its input holds integer ids");
	imp_value copy = *x;
	char ref[IMP_NAME];
	const char *in = copy.ref;
	imp_layer *l = NULL;
	for (size_t i = 0; i < n; i++) {
		strata_status st = imp_add_layer(imp, imp_hint(imp), types[i], &in, 1, &l, err, "%s", fields[i] ? fields[i] : "");
		if (st)
			return st;
		snprintf(ref, sizeof(ref), "%s", l->name);
		in = ref;
	}
	imp_value *y;
	strata_status st = imp_set_layer(imp, 0, l, copy.rank, copy.dims, copy.perm, &y, err);
	if (st)
		return st;
	y->nonneg = nonneg;
	imp_copy_flat(y, &copy);
	return STRATA_OK;
}

strata_status imp_unary(st_onnx_import *imp, strata_error *err, const char *type, const char *fields, bool nonneg)
{
	return imp_unary_chain(imp, err, 1, &type, &fields, nonneg);
}

void imp_copy_flat(imp_value *dst, const imp_value *src)
{
	dst->flat_rank = src->flat_rank;
	memcpy(dst->flat_dims, src->flat_dims, sizeof(dst->flat_dims));
	memcpy(dst->flat_perm, src->flat_perm, sizeof(dst->flat_perm));
}

float *floats_of_const(const st_onnx_const *c)
{
	float *f = malloc(c->count * sizeof(float) + 1);
	if (f)
		for (uint64_t i = 0; i < c->count; i++)
			f[i] = (float)c->v[i];
	return f;
}

strata_status imp_slice_args(st_onnx_import *imp, uint32_t rank, int64_t *starts, int64_t *ends, int64_t *axes,
                             int64_t *steps, size_t *n, strata_error *err)
{
	if (imp->file->opset < 10) {
		const int64_t *s, *e, *a;
		*n = st_onnx_attr_ints(imp->node, "starts", &s);
		size_t ne = st_onnx_attr_ints(imp->node, "ends", &e), na = st_onnx_attr_ints(imp->node, "axes", &a);
		if (*n != ne || (na && na != *n) || *n > rank)
			return imp_fail(imp, err, STRATA_ERR_INVALID, "starts, ends and axes differ in length");
		for (size_t i = 0; i < *n; i++) {
			starts[i] = s[i];
			ends[i] = e[i];
			axes[i] = na ? a[i] : (int64_t)i;
			steps[i] = 1;
		}
		return STRATA_OK;
	}
	const imp_value *v[4] = {imp_in(imp, 1), imp_in(imp, 2), imp_in(imp, 3), imp_in(imp, 4)};
	for (int i = 0; i < 4; i++)
		if ((i < 2 && !v[i]) || (v[i] && v[i]->state != IMP_CONST))
			return imp_refuse(imp, "starts, ends, axes or steps that are not constants");
	*n = v[0]->c.count;
	if (v[1]->c.count != *n || (v[2] && v[2]->c.count != *n) || (v[3] && v[3]->c.count != *n) || *n > rank)
		return imp_fail(imp, err, STRATA_ERR_INVALID, "starts, ends, axes and steps differ in length");
	for (size_t i = 0; i < *n; i++) {
		starts[i] = imp_int(v[0]->c.v[i]);
		ends[i] = imp_int(v[1]->c.v[i]);
		axes[i] = v[2] ? imp_int(v[2]->c.v[i]) : (int64_t)i;
		steps[i] = v[3] ? imp_int(v[3]->c.v[i]) : 1;
	}
	return STRATA_OK;
}

/* The axes of Squeeze or Unsqueeze: an attribute before opset 13, a constant input since. */
bool imp_axes(st_onnx_import *imp, int64_t *axes, size_t *n)
{
	if (imp->file->opset < 13) {
		const int64_t *a;
		*n = st_onnx_attr_ints(imp->node, "axes", &a);
		if (*n > ST_ONNX_MAX_RANK)
			return false;
		if (*n)
			memcpy(axes, a, *n * sizeof(*a));
		return true;
	}
	imp_value *v = imp_in(imp, 1);
	if (!v) {
		*n = 0;
		return true;
	}
	if (v->state != IMP_CONST || v->c.count > ST_ONNX_MAX_RANK)
		return false;
	*n = v->c.count;
	for (size_t i = 0; i < *n; i++)
		axes[i] = imp_int(v->c.v[i]);
	return true;
}
