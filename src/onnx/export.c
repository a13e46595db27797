/* ONNX export's building blocks (export.h): nodes, attributes and initializers made with
 * protobuf-c's structs, every field malloc'd so that protobuf-c's own free releases the whole
 * model; the two layouts of each value; activations as nodes. */
#include "onnx/export.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "base/fsutil.h"

strata_status ex_refuse(st_onnx_export *ex, const char *fmt, ...)
{
	char why[512], line[800];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	snprintf(line, sizeof(line), "  %s (%s): %s\n", ex->layer ? ex->layer->name : "model",
	         ex->layer ? ex->layer->type->ops.type : "", why);
	size_t len = strlen(line);
	char *grown = realloc(ex->refused, ex->refused_len + len + 1);
	if (grown) {
		memcpy(grown + ex->refused_len, line, len + 1);
		ex->refused = grown;
		ex->refused_len += len;
	}
	ex->n_refused++;
	return STRATA_ERR_UNSUPPORTED;
}

char *ex_name(st_onnx_export *ex, const char *what)
{
	const char *base = ex->layer ? ex->layer->name : "graph";
	size_t n = strlen(base) + strlen(what) + 24;
	char *s = malloc(n);
	if (s)
		snprintf(s, n, "%s/%s_%u", base, what, ex->counter++);
	return s;
}

static bool grow(void **array, size_t n, size_t *cap, size_t size)
{
	if (n < *cap)
		return true;
	size_t c = *cap ? *cap * 2 : 16;
	void *p = realloc(*array, c * size);
	if (!p)
		return false;
	*array = p;
	*cap = c;
	return true;
}

Onnx__NodeProto *ex_node(st_onnx_export *ex, const char *op, const char *const *inputs, size_t n_in,
                         char *const *outputs, size_t n_out)
{
	Onnx__GraphProto *g = ex->g;
	Onnx__NodeProto *n = malloc(sizeof(*n));
	if (!n || !grow((void **)&g->node, g->n_node, &ex->cap_node, sizeof(*g->node))) {
		free(n);
		return NULL;
	}
	onnx__node_proto__init(n);
	n->op_type = strdup(op);
	n->name = ex_name(ex, op);
	n->input = calloc(n_in + 1, sizeof(char *));
	n->output = calloc(n_out + 1, sizeof(char *));
	if (!n->op_type || !n->name || !n->input || !n->output) {
		onnx__node_proto__free_unpacked(n, NULL);
		return NULL;
	}
	for (size_t i = 0; i < n_in; i++)
		if (!(n->input[n->n_input++] = strdup(inputs[i] ? inputs[i] : ""))) {
			onnx__node_proto__free_unpacked(n, NULL);
			return NULL;
		}
	/* Only now the outputs: on failure they stay the caller's. */
	for (size_t i = 0; i < n_out; i++)
		n->output[n->n_output++] = outputs[i];
	g->node[g->n_node++] = n;
	return n;
}

static Onnx__AttributeProto *attr(Onnx__NodeProto *n, const char *name, Onnx__AttributeProto__AttributeType type)
{
	if (!n)
		return NULL;
	Onnx__AttributeProto **grown = realloc(n->attribute, (n->n_attribute + 1) * sizeof(*grown));
	Onnx__AttributeProto *a = malloc(sizeof(*a));
	if (grown)
		n->attribute = grown;
	if (!grown || !a) {
		free(a);
		return NULL;
	}
	onnx__attribute_proto__init(a);
	a->name = strdup(name);
	a->has_type = true;
	a->type = type;
	n->attribute[n->n_attribute++] = a;
	return a->name ? a : NULL;
}

bool ex_attr_int(Onnx__NodeProto *n, const char *name, int64_t v)
{
	Onnx__AttributeProto *a = attr(n, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT);
	if (a) {
		a->has_i = true;
		a->i = v;
	}
	return a != NULL;
}

bool ex_attr_float(Onnx__NodeProto *n, const char *name, float v)
{
	Onnx__AttributeProto *a = attr(n, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT);
	if (a) {
		a->has_f = true;
		a->f = v;
	}
	return a != NULL;
}

bool ex_attr_ints(Onnx__NodeProto *n, const char *name, const int64_t *v, size_t count)
{
	Onnx__AttributeProto *a = attr(n, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS);
	if (!a || !(a->ints = malloc(count * sizeof(*v) + 1)))
		return false;
	memcpy(a->ints, v, count * sizeof(*v));
	a->n_ints = count;
	return true;
}

bool ex_attr_string(Onnx__NodeProto *n, const char *name, const char *v)
{
	Onnx__AttributeProto *a = attr(n, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRING);
	if (!a || !(a->s.data = (uint8_t *)strdup(v)))
		return false;
	a->has_s = true;
	a->s.len = strlen(v);
	return true;
}

bool ex_attr_strings(Onnx__NodeProto *n, const char *name, const char *const *v, size_t count)
{
	Onnx__AttributeProto *a = attr(n, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRINGS);
	if (!a || !(a->strings = calloc(count + 1, sizeof(*a->strings))))
		return false;
	for (size_t i = 0; i < count; i++) {
		if (!(a->strings[i].data = (uint8_t *)strdup(v[i])))
			return false;
		a->strings[i].len = strlen(v[i]);
		a->n_strings++;
	}
	return true;
}

static Onnx__TensorProto *new_init(st_onnx_export *ex, const char *what, const int64_t *dims, uint32_t rank,
                                   int32_t type, size_t bytes)
{
	Onnx__GraphProto *g = ex->g;
	Onnx__TensorProto *t = malloc(sizeof(*t));
	if (!t || !grow((void **)&g->initializer, g->n_initializer, &ex->cap_init, sizeof(*g->initializer))) {
		free(t);
		return NULL;
	}
	onnx__tensor_proto__init(t);
	t->name = ex_name(ex, what);
	t->dims = malloc(rank * sizeof(int64_t) + 1);
	t->raw_data.data = malloc(bytes + 1);
	if (!t->name || !t->dims || !t->raw_data.data) {
		onnx__tensor_proto__free_unpacked(t, NULL);
		return NULL;
	}
	if (rank)
		memcpy(t->dims, dims, rank * sizeof(int64_t));
	t->n_dims = rank;
	t->has_data_type = true;
	t->data_type = type;
	t->has_raw_data = true;
	t->raw_data.len = bytes;
	g->initializer[g->n_initializer++] = t;
	return t;
}

/* Raw data is little-endian: bytes written one by one, whatever the host's order. */
const char *ex_init_float(st_onnx_export *ex, const char *what, const int64_t *dims, uint32_t rank, const float *data)
{
	size_t count = 1;
	for (uint32_t d = 0; d < rank; d++)
		count *= (size_t)dims[d];
	Onnx__TensorProto *t = new_init(ex, what, dims, rank, ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT, count * 4);
	if (!t)
		return NULL;
	for (size_t i = 0; i < count; i++) {
		uint32_t u;
		memcpy(&u, &data[i], 4);
		for (int b = 0; b < 4; b++)
			t->raw_data.data[4 * i + (size_t)b] = (uint8_t)(u >> (8 * b));
	}
	return t->name;
}

const char *ex_init_int64(st_onnx_export *ex, const char *what, const int64_t *v, size_t count)
{
	int64_t dims[1] = {(int64_t)count};
	Onnx__TensorProto *t = new_init(ex, what, dims, 1, ONNX__TENSOR_PROTO__DATA_TYPE__INT64, count * 8);
	if (!t)
		return NULL;
	for (size_t i = 0; i < count; i++)
		for (int b = 0; b < 8; b++)
			t->raw_data.data[8 * i + (size_t)b] = (uint8_t)((uint64_t)v[i] >> (8 * b));
	return t->name;
}

/* ---- Layouts ------------------------------------------------------------------------------- */

static uint32_t onnx_rank(const ex_value *v)
{
	return v->shape.rank + 1;
}

/* A Transpose between the layouts of v: to channels-first (perm 0, r-1, 1..r-2) or back. */
static char *transpose(st_onnx_export *ex, const ex_value *v, const char *from, bool to_cf)
{
	uint32_t r = onnx_rank(v);
	int64_t perm[ST_ONNX_MAX_RANK];
	perm[0] = 0;
	for (uint32_t k = 1; k < r; k++)
		perm[k] = to_cf ? (k == 1 ? r - 1 : k - 1) : (k == r - 1 ? 1 : k + 1);
	char *out = ex_name(ex, to_cf ? "to_nchw" : "to_nhwc");
	Onnx__NodeProto *n = out ? ex_node(ex, "Transpose", &from, 1, &out, 1) : NULL;
	if (!n) {
		free(out);
		return NULL;
	}
	return ex_attr_ints(n, "perm", perm, r) ? out : NULL;
}

const char *ex_cl(st_onnx_export *ex, uint32_t v)
{
	ex_value *x = &ex->values[v];
	if (!x->cl && x->cf) {
		const char *t = onnx_rank(x) < 3 ? x->cf : transpose(ex, x, x->cf, false);
		x->cl = t ? strdup(t) : NULL;
	}
	return x->cl;
}

const char *ex_cf(st_onnx_export *ex, uint32_t v)
{
	ex_value *x = &ex->values[v];
	if (!x->cf && x->cl) {
		const char *t = onnx_rank(x) < 3 ? x->cl : transpose(ex, x, x->cl, true);
		x->cf = t ? strdup(t) : NULL;
	}
	return x->cf;
}

strata_status ex_set_output(st_onnx_export *ex, const char *name, bool cf)
{
	ex_value *v = &ex->values[ex->m->n_inputs + ex->layer->index];
	bool both = onnx_rank(v) < 3; /* one tensor serves both layouts */
	if (!name)
		return STRATA_ERR_NO_MEMORY;
	if (cf || both) {
		free(v->cf);
		if (!(v->cf = strdup(name)))
			return STRATA_ERR_NO_MEMORY;
	}
	if (!cf || both) {
		free(v->cl);
		if (!(v->cl = strdup(name)))
			return STRATA_ERR_NO_MEMORY;
	}
	return STRATA_OK;
}

uint32_t ex_input(const st_onnx_export *ex, uint32_t i)
{
	return ex->layer->inputs[i];
}

float *ex_weight(st_onnx_export *ex, const char *name, strata_shape *shape)
{
	char full[256];
	const strata_layer *l = ex->layer;
	/* A layer sharing another's weights finds them under the owner's name. */
	const strata_layer *owner = l->shares >= 0 ? &ex->m->layers[l->shares] : l;
	snprintf(full, sizeof(full), "%s/%s", owner->name, name);
	st_checkpoint_entry e;
	if (!st_checkpoint_find(ex->weights, full, &e)) {
		ex_refuse(ex, "the weights file has no %s", full);
		return NULL;
	}
	float *f = malloc(e.count * sizeof(float) + 1);
	if (f)
		st_checkpoint_copy(&e, f);
	*shape = e.shape;
	return f;
}

/* ---- Activations --------------------------------------------------------------------------- */

const char *ex_unary(st_onnx_export *ex, const char *op, const char *x)
{
	char *out = ex_name(ex, op);
	if (out && ex_node(ex, op, &x, 1, &out, 1))
		return out;
	free(out);
	return NULL;
}

const char *ex_binary(st_onnx_export *ex, const char *op, const char *a, const char *b)
{
	const char *in[2] = {a, b};
	char *out = ex_name(ex, op);
	if (out && ex_node(ex, op, in, 2, &out, 1))
		return out;
	free(out);
	return NULL;
}

static const char *scalar(st_onnx_export *ex, const char *what, float v)
{
	return ex_init_float(ex, what, NULL, 0, &v);
}

const char *ex_activation(st_onnx_export *ex, const char *x, const char *act, int64_t channel_axis)
{
	static const struct {
		const char *strata, *onnx;
	} plain[] = {{"relu", "Relu"},         {"sigmoid", "Sigmoid"},   {"tanh", "Tanh"},     {"selu", "Selu"},
	             {"softplus", "Softplus"}, {"softsign", "Softsign"}, {"exponential", "Exp"}, {"hard_silu", "HardSwish"},
	             {"hard_swish", "HardSwish"}, {"elu", "Elu"}};
	if (!strcmp(act, "linear"))
		return x;
	for (size_t i = 0; i < sizeof(plain) / sizeof(plain[0]); i++)
		if (!strcmp(act, plain[i].strata))
			return ex_unary(ex, plain[i].onnx, x);
	if (!strcmp(act, "softmax") || !strcmp(act, "log_softmax")) {
		const char *out = ex_unary(ex, act[0] == 's' ? "Softmax" : "LogSoftmax", x);
		Onnx__NodeProto *n = out ? ex->g->node[ex->g->n_node - 1] : NULL;
		return n && ex_attr_int(n, "axis", channel_axis) ? out : NULL;
	}
	if (!strcmp(act, "hard_sigmoid")) {
		const char *out = ex_unary(ex, "HardSigmoid", x);
		Onnx__NodeProto *n = out ? ex->g->node[ex->g->n_node - 1] : NULL;
		return n && ex_attr_float(n, "alpha", 1.0f / 6.0f) && ex_attr_float(n, "beta", 0.5f) ? out : NULL;
	}
	if (!strcmp(act, "leaky_relu")) {
		const char *out = ex_unary(ex, "LeakyRelu", x);
		Onnx__NodeProto *n = out ? ex->g->node[ex->g->n_node - 1] : NULL;
		return n && ex_attr_float(n, "alpha", 0.2f) ? out : NULL;
	}
	if (!strcmp(act, "relu6")) {
		const char *in[3] = {x, scalar(ex, "zero", 0.0f), scalar(ex, "six", 6.0f)};
		char *out = ex_name(ex, "Clip");
		if (out && in[1] && in[2] && ex_node(ex, "Clip", in, 3, &out, 1))
			return out;
		free(out);
		return NULL;
	}
	if (!strcmp(act, "swish") || !strcmp(act, "silu")) {
		const char *s = ex_unary(ex, "Sigmoid", x);
		return s ? ex_binary(ex, "Mul", x, s) : NULL;
	}
	if (!strcmp(act, "mish")) {
		const char *sp = ex_unary(ex, "Softplus", x);
		const char *t = sp ? ex_unary(ex, "Tanh", sp) : NULL;
		return t ? ex_binary(ex, "Mul", x, t) : NULL;
	}
	if (!strcmp(act, "gelu")) {
		/* Keras' exact gelu: x / 2 * (1 + erf(x / sqrt 2)). */
		const char *r2 = scalar(ex, "sqrt2", 1.41421356237f), *one = scalar(ex, "one", 1.0f),
		           *half = scalar(ex, "half", 0.5f);
		const char *d = r2 ? ex_binary(ex, "Div", x, r2) : NULL;
		const char *e = d ? ex_unary(ex, "Erf", d) : NULL;
		const char *p = e && one ? ex_binary(ex, "Add", e, one) : NULL;
		const char *h = p && half ? ex_binary(ex, "Mul", x, half) : NULL;
		return h ? ex_binary(ex, "Mul", h, p) : NULL;
	}
	ex_refuse(ex, "the activation %s has no ONNX form here", act);
	return NULL;
}

