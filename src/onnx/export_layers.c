/* Each Strata layer as ONNX nodes (export.h). Convolutions, pooling, batch normalization, padding
 * and upsampling read and write channels-first tensors; dense, flatten, reshape, permute,
 * concatenate, embedding and the recurrent layers Strata's layout; element-wise layers whichever
 * their input has. Keras' 'same' padding becomes ONNX's explicit pads for the input's size (the
 * odd one at the end, as Keras pads). Weights are turned from Keras' layouts into ONNX's. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "onnx/export.h"

#define NO_MEMORY(ex, err) ((void)(ex), st_fail(err, STRATA_ERR_NO_MEMORY, "export: out of memory"))

static const st_param_value *param(const st_onnx_export *ex, const char *name)
{
	return st_layer_param(ex->layer, name);
}

static const char *param_s(const st_onnx_export *ex, const char *name)
{
	const st_param_value *p = param(ex, name);
	return p && p->s ? p->s : "";
}

static int64_t param_i(const st_onnx_export *ex, const char *name, int64_t fallback)
{
	const st_param_value *p = param(ex, name);
	return p ? p->i : fallback;
}

static double param_f(const st_onnx_export *ex, const char *name, double fallback)
{
	const st_param_value *p = param(ex, name);
	return p ? p->f : fallback;
}

/* An INTS parameter as n values (a single value repeated); false when it is null (not given). */
static bool param_ints(const st_onnx_export *ex, const char *name, uint32_t n, int64_t *out)
{
	const st_param_value *p = param(ex, name);
	if (!p || !p->n_ints)
		return false;
	for (uint32_t i = 0; i < n; i++)
		out[i] = p->ints[p->n_ints == 1 ? 0 : i];
	return true;
}

static uint32_t in0(const st_onnx_export *ex)
{
	return ex_input(ex, 0);
}

static const strata_shape *in_shape(const st_onnx_export *ex, uint32_t i)
{
	return &ex->values[ex_input(ex, i)].shape;
}

/* Keras' padding as ONNX pads (begin..., end...) over n spatial axes of `in`. */
static void keras_pads(const int64_t *in, const int64_t *k, const int64_t *s, const int64_t *d, uint32_t n, bool same,
                       bool causal, int64_t *pads)
{
	for (uint32_t i = 0; i < n; i++) {
		int64_t e = (k[i] - 1) * d[i] + 1;
		int64_t total = 0;
		if (same) {
			int64_t out = (in[i] + s[i] - 1) / s[i];
			total = (out - 1) * s[i] + e - in[i];
			if (total < 0)
				total = 0;
		}
		pads[i] = causal ? e - 1 : total / 2;
		pads[n + i] = causal ? 0 : total - total / 2;
	}
}

static strata_status finish(st_onnx_export *ex, const char *y, bool cf, strata_error *err)
{
	if (!y || ex_set_output(ex, y, cf))
		return NO_MEMORY(ex, err);
	return STRATA_OK;
}

/* The layer's `activation:` after its output y (channels-first when cf). */
static strata_status activate(st_onnx_export *ex, const char *y, bool cf, strata_error *err)
{
	const st_param_value *a = param(ex, "activation");
	if (!y)
		return NO_MEMORY(ex, err);
	if (a && a->s) {
		uint32_t r = ex->layer->out.rank + 1;
		y = ex_activation(ex, y, a->s, cf && r >= 3 ? 1 : -1);
		if (!y)
			return ex->n_refused ? STRATA_ERR_UNSUPPORTED : NO_MEMORY(ex, err);
	}
	return finish(ex, y, cf, err);
}

/* ---- Convolutions -------------------------------------------------------------------------- */

static strata_status conv(st_onnx_export *ex, strata_error *err)
{
	const char *type = ex->layer->type->ops.type;
	bool depthwise = !strcmp(type, "depthwise_conv2d"), separable = !strcmp(type, "separable_conv2d");
	bool one_d = !strcmp(type, "conv1d");
	uint32_t n = one_d ? 1 : 2;
	const strata_shape *is = in_shape(ex, 0);
	int64_t in[2] = {is->dims[0], n == 2 ? is->dims[1] : 1}, C = is->dims[is->rank - 1];
	int64_t k[2], s[2] = {1, 1}, d[2] = {1, 1}, pads[4];
	strata_shape ks;
	float *kernel = ex_weight(ex, depthwise || separable ? "depthwise_kernel" : "kernel", &ks);
	if (!kernel)
		return ex->n_refused ? STRATA_ERR_UNSUPPORTED : NO_MEMORY(ex, err);
	k[0] = ks.dims[0];
	k[1] = n == 2 ? ks.dims[1] : 1;
	param_ints(ex, "strides", n, s);
	param_ints(ex, "dilation_rate", n, d);
	const char *padding = param_s(ex, "padding");
	keras_pads(in, k, s, d, n, !strcmp(padding, "same"), !strcmp(padding, "causal"), pads);
	int64_t group = depthwise || separable ? C : param_i(ex, "groups", 1);
	int64_t mult = depthwise || separable ? param_i(ex, "depth_multiplier", 1) : 1;
	int64_t M = depthwise || separable ? C * mult : ks.dims[ks.rank - 1];
	int64_t cin = depthwise || separable ? 1 : ks.dims[ks.rank - 2];
	/* Keras' (kh, kw, cin, M) or depthwise (kh, kw, C, multiplier) to ONNX's (M, cin, kh, kw). */
	float *w = malloc((size_t)(M * cin * k[0] * k[1]) * sizeof(float) + 1);
	if (!w) {
		free(kernel);
		return NO_MEMORY(ex, err);
	}
	for (int64_t o = 0; o < M; o++)
		for (int64_t i = 0; i < cin; i++)
			for (int64_t y = 0; y < k[0]; y++)
				for (int64_t x = 0; x < k[1]; x++)
					w[((o * cin + i) * k[0] + y) * k[1] + x] =
						kernel[depthwise || separable ? ((y * k[1] + x) * C + o / mult) * mult + o % mult
						                              : ((y * k[1] + x) * cin + i) * M + o];
	free(kernel);
	int64_t wd[4] = {M, cin, k[0], k[1]};
	const char *wname = ex_init_float(ex, "W", wd, 2 + n, w);
	free(w);
	float *bias = NULL;
	strata_shape bs;
	if (!separable && param_i(ex, "use_bias", 1) && !(bias = ex_weight(ex, "bias", &bs)))
		return ex->n_refused ? STRATA_ERR_UNSUPPORTED : NO_MEMORY(ex, err);
	const char *bname = bias ? ex_init_float(ex, "B", &M, 1, bias) : NULL;
	free(bias);
	const char *x = ex_cf(ex, in0(ex));
	const char *inputs[3] = {x, wname, bname};
	char *y = ex_name(ex, "Conv");
	if (!x || !wname || !y) {
		free(y);
		return NO_MEMORY(ex, err);
	}
	Onnx__NodeProto *node = ex_node(ex, "Conv", inputs, bname ? 3 : 2, &y, 1);
	if (!node) {
		free(y);
		return NO_MEMORY(ex, err);
	}
	if (!ex_attr_ints(node, "kernel_shape", k, n) || !ex_attr_ints(node, "strides", s, n) ||
	    !ex_attr_ints(node, "dilations", d, n) || !ex_attr_ints(node, "pads", pads, 2 * n) ||
	    !ex_attr_int(node, "group", group))
		return NO_MEMORY(ex, err);
	if (!separable)
		return activate(ex, y, true, err);
	/* SeparableConv2D: the 1x1 pointwise convolution (1, 1, C * multiplier, filters) after it. */
	strata_shape ps;
	float *pk = ex_weight(ex, "pointwise_kernel", &ps);
	if (!pk)
		return ex->n_refused ? STRATA_ERR_UNSUPPORTED : NO_MEMORY(ex, err);
	int64_t F = ps.dims[3];
	float *pw = malloc((size_t)(F * M) * sizeof(float) + 1);
	if (!pw) {
		free(pk);
		return NO_MEMORY(ex, err);
	}
	for (int64_t o = 0; o < F; o++)
		for (int64_t i = 0; i < M; i++)
			pw[o * M + i] = pk[i * F + o];
	free(pk);
	int64_t pd[4] = {F, M, 1, 1};
	const char *pname = ex_init_float(ex, "W", pd, 4, pw);
	free(pw);
	if (param_i(ex, "use_bias", 1) && !(bias = ex_weight(ex, "bias", &bs)))
		return ex->n_refused ? STRATA_ERR_UNSUPPORTED : NO_MEMORY(ex, err);
	bname = bias ? ex_init_float(ex, "B", &F, 1, bias) : NULL;
	free(bias);
	const char *pin[3] = {y, pname, bname};
	char *z = ex_name(ex, "Conv");
	if (!pname || !z || !(node = ex_node(ex, "Conv", pin, bname ? 3 : 2, &z, 1))) {
		free(z);
		return NO_MEMORY(ex, err);
	}
	return activate(ex, z, true, err);
}

static strata_status conv_transpose(st_onnx_export *ex, strata_error *err)
{
	const strata_shape *is = in_shape(ex, 0);
	strata_shape ks;
	float *kernel = ex_weight(ex, "kernel", &ks);
	if (!kernel)
		return ex->n_refused ? STRATA_ERR_UNSUPPORTED : NO_MEMORY(ex, err);
	int64_t k[2] = {ks.dims[0], ks.dims[1]}, M = ks.dims[2], C = ks.dims[3];
	int64_t s[2] = {1, 1}, d[2] = {1, 1}, op[2] = {0, 0}, pads[4] = {0, 0, 0, 0};
	param_ints(ex, "strides", 2, s);
	param_ints(ex, "dilation_rate", 2, d);
	bool has_op = param_ints(ex, "output_padding", 2, op);
	bool same = !strcmp(param_s(ex, "padding"), "same");
	if (same && has_op) {
		free(kernel);
		return ex_refuse(ex, "padding 'same' with output_padding");
	}
	for (int i = 0; i < 2; i++) {
		int64_t e = (k[i] - 1) * d[i] + 1;
		if (same) {
			int64_t total = e - s[i] > 0 ? e - s[i] : 0;
			if (e < s[i])
				op[i] = s[i] - e; /* in x strides: the rows a short window leaves */
			pads[i] = total / 2;
			pads[i + 2] = total - total / 2;
		} else if (!has_op && e < s[i]) {
			op[i] = s[i] - e;
		}
	}
	(void)is;
	float *w = malloc((size_t)(C * M * k[0] * k[1]) * sizeof(float) + 1);
	if (!w) {
		free(kernel);
		return NO_MEMORY(ex, err);
	}
	for (int64_t c = 0; c < C; c++)
		for (int64_t o = 0; o < M; o++)
			for (int64_t y = 0; y < k[0]; y++)
				for (int64_t x = 0; x < k[1]; x++)
					w[((c * M + o) * k[0] + y) * k[1] + x] = kernel[((y * k[1] + x) * M + o) * C + c];
	free(kernel);
	int64_t wd[4] = {C, M, k[0], k[1]};
	const char *wname = ex_init_float(ex, "W", wd, 4, w);
	free(w);
	float *bias = NULL;
	strata_shape bs;
	if (param_i(ex, "use_bias", 1) && !(bias = ex_weight(ex, "bias", &bs)))
		return ex->n_refused ? STRATA_ERR_UNSUPPORTED : NO_MEMORY(ex, err);
	const char *bname = bias ? ex_init_float(ex, "B", &M, 1, bias) : NULL;
	free(bias);
	const char *inputs[3] = {ex_cf(ex, in0(ex)), wname, bname};
	char *y = ex_name(ex, "ConvTranspose");
	Onnx__NodeProto *node = inputs[0] && wname && y ? ex_node(ex, "ConvTranspose", inputs, bname ? 3 : 2, &y, 1) : NULL;
	if (!node) {
		free(y);
		return NO_MEMORY(ex, err);
	}
	if (!ex_attr_ints(node, "kernel_shape", k, 2) || !ex_attr_ints(node, "strides", s, 2) ||
	    !ex_attr_ints(node, "dilations", d, 2) || !ex_attr_ints(node, "pads", pads, 4) ||
	    !ex_attr_ints(node, "output_padding", op, 2))
		return NO_MEMORY(ex, err);
	return activate(ex, y, true, err);
}

static strata_status dense(st_onnx_export *ex, strata_error *err)
{
	strata_shape ks;
	float *kernel = ex_weight(ex, "kernel", &ks);
	if (!kernel)
		return ex->n_refused ? STRATA_ERR_UNSUPPORTED : NO_MEMORY(ex, err);
	const char *kname = ex_init_float(ex, "W", ks.dims, 2, kernel);
	free(kernel);
	float *bias = NULL;
	strata_shape bs;
	if (param_i(ex, "use_bias", 1) && !(bias = ex_weight(ex, "bias", &bs)))
		return ex->n_refused ? STRATA_ERR_UNSUPPORTED : NO_MEMORY(ex, err);
	const char *bname = bias ? ex_init_float(ex, "B", &ks.dims[1], 1, bias) : NULL;
	free(bias);
	const char *x = ex_cl(ex, in0(ex));
	if (!x || !kname)
		return NO_MEMORY(ex, err);
	const char *y;
	if (in_shape(ex, 0)->rank == 1) {
		const char *inputs[3] = {x, kname, bname};
		char *out = ex_name(ex, "Gemm");
		if (!out || !ex_node(ex, "Gemm", inputs, bname ? 3 : 2, &out, 1)) {
			free(out);
			return NO_MEMORY(ex, err);
		}
		y = out;
	} else {
		y = ex_binary(ex, "MatMul", x, kname);
		if (y && bname)
			y = ex_binary(ex, "Add", y, bname);
	}
	return activate(ex, y, false, err);
}

/* ---- Pooling, normalization, shapes -------------------------------------------------------- */

static strata_status pool(st_onnx_export *ex, strata_error *err, bool max)
{
	const strata_shape *is = in_shape(ex, 0);
	int64_t k[2] = {2, 2}, s[2], d[2] = {1, 1}, pads[4];
	param_ints(ex, "pool_size", 2, k);
	if (!param_ints(ex, "strides", 2, s))
		memcpy(s, k, sizeof(s));
	keras_pads(is->dims, k, s, d, 2, !strcmp(param_s(ex, "padding"), "same"), false, pads);
	const char *x = ex_cf(ex, in0(ex));
	char *y = ex_name(ex, max ? "MaxPool" : "AveragePool");
	Onnx__NodeProto *n = x && y ? ex_node(ex, max ? "MaxPool" : "AveragePool", &x, 1, &y, 1) : NULL;
	if (!n) {
		free(y);
		return NO_MEMORY(ex, err);
	}
	/* Keras' averages leave the padding out. */
	if (!ex_attr_ints(n, "kernel_shape", k, 2) || !ex_attr_ints(n, "strides", s, 2) || !ex_attr_ints(n, "pads", pads, 4) ||
	    (!max && !ex_attr_int(n, "count_include_pad", 0)))
		return NO_MEMORY(ex, err);
	return finish(ex, y, true, err);
}

static strata_status global_pool(st_onnx_export *ex, strata_error *err, bool max)
{
	const char *x = ex_cf(ex, in0(ex));
	const char *y = x ? ex_unary(ex, max ? "GlobalMaxPool" : "GlobalAveragePool", x) : NULL;
	if (param_i(ex, "keepdims", 0))
		return finish(ex, y, true, err);
	y = y ? ex_unary(ex, "Flatten", y) : NULL;
	return finish(ex, y, false, err);
}

static strata_status pool_1d(st_onnx_export *ex, strata_error *err, bool max)
{
	/* (steps, features): the mean or max over the steps, axis 1 of Strata's layout. */
	const char *x = ex_cl(ex, in0(ex));
	const char *y = x ? ex_unary(ex, max ? "ReduceMax" : "ReduceMean", x) : NULL;
	Onnx__NodeProto *n = y ? ex->g->node[ex->g->n_node - 1] : NULL;
	int64_t axes[1] = {1};
	if (!n || !ex_attr_ints(n, "axes", axes, 1) || !ex_attr_int(n, "keepdims", 0))
		return NO_MEMORY(ex, err);
	return finish(ex, y, false, err);
}

/* A normalization's vectors as initializers: gamma and beta (ones and zeros when the layer has
 * no scale or no center, as ONNX's operators always take them), then any others it names. */
static strata_status norm_vectors(st_onnx_export *ex, const char *const *names, int n, int64_t C, const char **out,
                                  strata_error *err)
{
	bool present[4] = {param_i(ex, "scale", 1) != 0, param_i(ex, "center", 1) != 0, true, true};
	for (int i = 0; i < n; i++) {
		strata_shape ws;
		float *v = present[i] ? ex_weight(ex, names[i], &ws) : calloc((size_t)C + 1, sizeof(float));
		if (!v)
			return ex->n_refused ? STRATA_ERR_UNSUPPORTED : NO_MEMORY(ex, err);
		if (!present[i] && i == 0)
			for (int64_t c = 0; c < C; c++)
				v[c] = 1.0f;
		out[i] = ex_init_float(ex, names[i], &C, 1, v);
		free(v);
	}
	return STRATA_OK;
}

static strata_status batch_norm(st_onnx_export *ex, strata_error *err)
{
	const strata_shape *is = in_shape(ex, 0);
	int64_t C = is->dims[is->rank - 1];
	const char *names[4] = {"gamma", "beta", "moving_mean", "moving_variance"};
	const char *inputs[5] = {ex_cf(ex, in0(ex))};
	strata_status st = norm_vectors(ex, names, 4, C, inputs + 1, err);
	if (st)
		return st;
	char *y = ex_name(ex, "BatchNormalization");
	Onnx__NodeProto *n = inputs[0] && y ? ex_node(ex, "BatchNormalization", inputs, 5, &y, 1) : NULL;
	if (!n) {
		free(y);
		return NO_MEMORY(ex, err);
	}
	if (!ex_attr_float(n, "epsilon", (float)param_f(ex, "epsilon", 1e-3)) ||
	    !ex_attr_float(n, "momentum", (float)param_f(ex, "momentum", 0.99)))
		return NO_MEMORY(ex, err);
	return finish(ex, y, true, err);
}

static strata_status layer_norm(st_onnx_export *ex, strata_error *err)
{
	const strata_shape *is = in_shape(ex, 0);
	int64_t C = is->dims[is->rank - 1];
	const char *inputs[3] = {ex_cl(ex, in0(ex))};
	const char *names[2] = {"gamma", "beta"};
	strata_status st = norm_vectors(ex, names, 2, C, inputs + 1, err);
	if (st)
		return st;
	char *y = ex_name(ex, "LayerNormalization");
	Onnx__NodeProto *n = inputs[0] && y ? ex_node(ex, "LayerNormalization", inputs, 3, &y, 1) : NULL;
	if (!n) {
		free(y);
		return NO_MEMORY(ex, err);
	}
	if (!ex_attr_int(n, "axis", -1) || !ex_attr_float(n, "epsilon", (float)param_f(ex, "epsilon", 1e-3)))
		return NO_MEMORY(ex, err);
	return finish(ex, y, false, err);
}

static strata_status reshape_to(st_onnx_export *ex, const strata_shape *out, strata_error *err)
{
	int64_t shape[STRATA_MAX_RANK + 1] = {-1};
	for (uint32_t k = 0; k < out->rank; k++)
		shape[k + 1] = out->dims[k];
	const char *sname = ex_init_int64(ex, "shape", shape, out->rank + 1);
	const char *x = ex_cl(ex, in0(ex));
	const char *y = x && sname ? ex_binary(ex, "Reshape", x, sname) : NULL;
	return finish(ex, y, false, err);
}

static strata_status permute(st_onnx_export *ex, strata_error *err)
{
	const st_param_value *p = param(ex, "dims");
	int64_t perm[STRATA_MAX_RANK + 1] = {0};
	for (uint32_t k = 0; p && k < p->n_ints; k++)
		perm[k + 1] = p->ints[k];
	const char *x = ex_cl(ex, in0(ex));
	const char *y = x ? ex_unary(ex, "Transpose", x) : NULL;
	Onnx__NodeProto *n = y ? ex->g->node[ex->g->n_node - 1] : NULL;
	if (!n || !ex_attr_ints(n, "perm", perm, p ? p->n_ints + 1 : 1))
		return NO_MEMORY(ex, err);
	return finish(ex, y, false, err);
}

static strata_status repeat_vector(st_onnx_export *ex, strata_error *err)
{
	int64_t axes[1] = {1}, reps[3] = {1, param_i(ex, "n", 1), 1};
	const char *a = ex_init_int64(ex, "axes", axes, 1), *r = ex_init_int64(ex, "repeats", reps, 3);
	const char *x = ex_cl(ex, in0(ex));
	const char *u = x && a ? ex_binary(ex, "Unsqueeze", x, a) : NULL;
	const char *y = u && r ? ex_binary(ex, "Tile", u, r) : NULL;
	return finish(ex, y, false, err);
}

/* Identity at inference (dropout, noise, augmentation): the same tensor, no node. */
static strata_status pass_through(st_onnx_export *ex, strata_error *err)
{
	ex_value *in = &ex->values[in0(ex)];
	strata_status st = STRATA_OK;
	if (in->cf)
		st = ex_set_output(ex, in->cf, true);
	if (!st && in->cl)
		st = ex_set_output(ex, in->cl, false);
	return st ? NO_MEMORY(ex, err) : STRATA_OK;
}

/* Element-wise layers keep their input's layout: channels-first when it has one already. */
static bool prefer_cf(const st_onnx_export *ex)
{
	const ex_value *v = &ex->values[in0(ex)];
	return v->cf && v->shape.rank >= 2;
}

static strata_status activation_layer(st_onnx_export *ex, strata_error *err)
{
	bool cf = prefer_cf(ex);
	const char *x = cf ? ex_cf(ex, in0(ex)) : ex_cl(ex, in0(ex));
	return x ? activate(ex, x, cf, err) : NO_MEMORY(ex, err);
}

static strata_status relu_layer(st_onnx_export *ex, strata_error *err)
{
	const st_param_value *mv = param(ex, "max_value");
	double slope = param_f(ex, "negative_slope", 0), threshold = param_f(ex, "threshold", 0);
	bool has_max = mv && mv->from_file;
	bool cf = prefer_cf(ex);
	const char *x = cf ? ex_cf(ex, in0(ex)) : ex_cl(ex, in0(ex));
	if (!x)
		return NO_MEMORY(ex, err);
	if (threshold != 0 || (slope != 0 && has_max))
		return ex_refuse(ex, "a threshold, or a slope with a max_value");
	const char *y;
	if (slope != 0) {
		y = ex_unary(ex, "LeakyRelu", x);
		if (y && !ex_attr_float(ex->g->node[ex->g->n_node - 1], "alpha", (float)slope))
			return NO_MEMORY(ex, err);
	} else if (has_max) {
		float lo = 0, hi = (float)mv->f;
		const char *in[3] = {x, ex_init_float(ex, "min", NULL, 0, &lo), ex_init_float(ex, "max", NULL, 0, &hi)};
		char *out = ex_name(ex, "Clip");
		if (!out || !in[1] || !in[2] || !ex_node(ex, "Clip", in, 3, &out, 1)) {
			free(out);
			return NO_MEMORY(ex, err);
		}
		y = out;
	} else {
		y = ex_unary(ex, "Relu", x);
	}
	return finish(ex, y, cf, err);
}

static strata_status alpha_unary(st_onnx_export *ex, strata_error *err, const char *op, const char *param_name)
{
	bool cf = prefer_cf(ex);
	const char *x = cf ? ex_cf(ex, in0(ex)) : ex_cl(ex, in0(ex));
	const char *y = x ? ex_unary(ex, op, x) : NULL;
	if (!y || !ex_attr_float(ex->g->node[ex->g->n_node - 1], "alpha", (float)param_f(ex, param_name, 0)))
		return NO_MEMORY(ex, err);
	return finish(ex, y, cf, err);
}

static strata_status prelu(st_onnx_export *ex, strata_error *err)
{
	/* Keras' alpha has the sample's shape (1 on shared axes), Strata's order: PRelu broadcasts
	 * it from the right over (batch, ...), channels-last. */
	strata_shape as;
	float *alpha = ex_weight(ex, "alpha", &as);
	if (!alpha)
		return ex->n_refused ? STRATA_ERR_UNSUPPORTED : NO_MEMORY(ex, err);
	const char *aname = ex_init_float(ex, "slope", as.dims, as.rank, alpha);
	free(alpha);
	const char *x = ex_cl(ex, in0(ex));
	const char *y = x && aname ? ex_binary(ex, "PRelu", x, aname) : NULL;
	return finish(ex, y, false, err);
}

static strata_status softmax_layer(st_onnx_export *ex, strata_error *err)
{
	const char *x = ex_cl(ex, in0(ex));
	const char *y = x ? ex_unary(ex, "Softmax", x) : NULL;
	if (!y || !ex_attr_int(ex->g->node[ex->g->n_node - 1], "axis", -1))
		return NO_MEMORY(ex, err);
	return finish(ex, y, false, err);
}

/* Whether every input of the layer has its output's shape (no broadcasting). */
static bool same_shapes(const st_onnx_export *ex)
{
	const strata_layer *l = ex->layer;
	for (uint32_t i = 0; i < l->n_inputs; i++) {
		const strata_shape *s = &ex->values[ex_input(ex, i)].shape;
		if (s->rank != l->out.rank || memcmp(s->dims, l->out.dims, s->rank * sizeof(s->dims[0])))
			return false;
	}
	return true;
}

/* Input i in Strata's layout at the output's rank: a Reshape puts the leading 1s of Strata's
 * broadcast (aligned on the last axis of a sample) after the batch, where ONNX's broadcast (over
 * the whole tensor) would otherwise line a lower rank up against the batch. */
static const char *broadcast_input(st_onnx_export *ex, uint32_t i)
{
	const strata_shape *s = &ex->values[ex_input(ex, i)].shape, *out = &ex->layer->out;
	const char *x = ex_cl(ex, ex_input(ex, i));
	if (!x || s->rank == out->rank)
		return x;
	int64_t shape[STRATA_MAX_RANK + 1] = {0}; /* 0: the batch, copied */
	for (uint32_t k = 0; k < out->rank; k++)
		shape[k + 1] = k + s->rank < out->rank ? 1 : s->dims[k + s->rank - out->rank];
	const char *sname = ex_init_int64(ex, "shape", shape, out->rank + 1);
	return sname ? ex_binary(ex, "Reshape", x, sname) : NULL;
}

/* The element-wise merges: ONNX's operators broadcast as Strata's merge layers do once every
 * input has the output's rank (in Strata's layout when shapes differ; the first input's layout
 * when they agree). */
static strata_status merge(st_onnx_export *ex, strata_error *err, const char *op, bool pairwise)
{
	const strata_layer *l = ex->layer;
	bool same = same_shapes(ex), cf = same && prefer_cf(ex);
	const char *inputs[16];
	if (l->n_inputs > 16)
		return ex_refuse(ex, "more than 16 inputs");
	for (uint32_t i = 0; i < l->n_inputs; i++)
		if (!(inputs[i] = !same ? broadcast_input(ex, i) : cf ? ex_cf(ex, ex_input(ex, i)) : ex_cl(ex, ex_input(ex, i))))
			return NO_MEMORY(ex, err);
	const char *y;
	if (pairwise) {
		y = inputs[0];
		for (uint32_t i = 1; i < l->n_inputs && y; i++)
			y = ex_binary(ex, op, y, inputs[i]);
	} else {
		char *out = ex_name(ex, op);
		if (!out || !ex_node(ex, op, inputs, l->n_inputs, &out, 1)) {
			free(out);
			return NO_MEMORY(ex, err);
		}
		y = out;
	}
	return finish(ex, y, cf, err);
}

/* Rescaling: Mul by the scale, then Add the offset (each one number, or one per channel: Strata's
 * last axis, the last of ONNX's tensor in Strata's layout); a scale of 1 or an offset of 0 alone
 * is left out, which changes no value. */
static strata_status rescaling(st_onnx_export *ex, strata_error *err)
{
	const st_param_value *sv = param(ex, "scale"), *ov = param(ex, "offset");
	const char *y = ex_cl(ex, in0(ex));
	const st_param_value *pv[2] = {sv, ov};
	const char *ops[2] = {"Mul", "Add"};
	for (int k = 0; k < 2 && y; k++) {
		const st_param_value *v = pv[k];
		uint32_t n = v ? v->n_floats : 0;
		if (n == 0 || (n == 1 && v->floats[0] == (k == 0 ? 1.0 : 0.0)))
			continue;
		float f[STRATA_MAX_RANK];
		for (uint32_t i = 0; i < n; i++)
			f[i] = (float)v->floats[i];
		int64_t dims[1] = {n};
		const char *c = ex_init_float(ex, k == 0 ? "scale" : "offset", dims, n == 1 ? 0 : 1, f);
		y = c ? ex_binary(ex, ops[k], y, c) : NULL;
	}
	if (y && !strcmp(y, ex_cl(ex, in0(ex))))
		y = ex_unary(ex, "Identity", y);
	return finish(ex, y, false, err);
}

static strata_status concatenate(st_onnx_export *ex, strata_error *err)
{
	const strata_layer *l = ex->layer;
	const char *inputs[16];
	if (l->n_inputs > 16)
		return ex_refuse(ex, "more than 16 inputs");
	for (uint32_t i = 0; i < l->n_inputs; i++)
		if (!(inputs[i] = ex_cl(ex, ex_input(ex, i))))
			return NO_MEMORY(ex, err);
	char *out = ex_name(ex, "Concat");
	Onnx__NodeProto *n = out ? ex_node(ex, "Concat", inputs, l->n_inputs, &out, 1) : NULL;
	if (!n) {
		free(out);
		return NO_MEMORY(ex, err);
	}
	if (!ex_attr_int(n, "axis", param_i(ex, "axis", -1)))
		return NO_MEMORY(ex, err);
	return finish(ex, out, false, err);
}

static strata_status padding2d(st_onnx_export *ex, strata_error *err, bool crop)
{
	int64_t side[4];
	const st_param_value *p = param(ex, crop ? "cropping" : "padding");
	if (!p)
		return NO_MEMORY(ex, err);
	/* An int (every side), [rows, columns] (symmetric) or [top, bottom, left, right]. */
	for (int i = 0; i < 4; i++)
		side[i] = p->n_ints == 1 ? p->ints[0] : p->n_ints == 2 ? p->ints[i / 2] : p->ints[i];
	const char *x = ex_cf(ex, in0(ex));
	const char *y;
	if (!crop) {
		int64_t pads[8] = {0, 0, side[0], side[2], 0, 0, side[1], side[3]};
		const char *pname = ex_init_int64(ex, "pads", pads, 8);
		y = x && pname ? ex_binary(ex, "Pad", x, pname) : NULL;
	} else {
		const strata_shape *is = in_shape(ex, 0);
		int64_t starts[2] = {side[0], side[2]}, ends[2] = {is->dims[0] - side[1], is->dims[1] - side[3]},
		        axes[2] = {2, 3};
		const char *in[4] = {x, ex_init_int64(ex, "starts", starts, 2), ex_init_int64(ex, "ends", ends, 2),
		                     ex_init_int64(ex, "axes", axes, 2)};
		char *out = ex_name(ex, "Slice");
		if (!out || !x || !in[1] || !in[2] || !in[3] || !ex_node(ex, "Slice", in, 4, &out, 1)) {
			free(out);
			return NO_MEMORY(ex, err);
		}
		y = out;
	}
	return finish(ex, y, true, err);
}

static strata_status up_sampling(st_onnx_export *ex, strata_error *err)
{
	int64_t size[2] = {2, 2};
	param_ints(ex, "size", 2, size);
	float scales[4] = {1, 1, (float)size[0], (float)size[1]};
	int64_t four = 4;
	bool bilinear = !strcmp(param_s(ex, "interpolation"), "bilinear");
	const char *in[3] = {ex_cf(ex, in0(ex)), "", ex_init_float(ex, "scales", &four, 1, scales)};
	char *out = ex_name(ex, "Resize");
	Onnx__NodeProto *n = out && in[0] && in[2] ? ex_node(ex, "Resize", in, 3, &out, 1) : NULL;
	if (!n) {
		free(out);
		return NO_MEMORY(ex, err);
	}
	bool ok = bilinear ? ex_attr_string(n, "mode", "linear") &&
	                         ex_attr_string(n, "coordinate_transformation_mode", "half_pixel")
	                   : ex_attr_string(n, "mode", "nearest") &&
	                         ex_attr_string(n, "coordinate_transformation_mode", "asymmetric") &&
	                         ex_attr_string(n, "nearest_mode", "floor");
	return ok ? finish(ex, out, true, err) : NO_MEMORY(ex, err);
}

static strata_status embedding(st_onnx_export *ex, strata_error *err)
{
	if (param_i(ex, "mask_zero", 0))
		return ex_refuse(ex, "mask_zero: Strata's masks have no ONNX form here");
	strata_shape ts;
	float *table = ex_weight(ex, "embeddings", &ts);
	if (!table)
		return ex->n_refused ? STRATA_ERR_UNSUPPORTED : NO_MEMORY(ex, err);
	const char *tname = ex_init_float(ex, "embeddings", ts.dims, 2, table);
	free(table);
	const char *x = ex_cl(ex, in0(ex));
	const char *y = x && tname ? ex_binary(ex, "Gather", tname, x) : NULL;
	return finish(ex, y, false, err);
}

/* ---- Recurrent layers ---------------------------------------------------------------------- */

static const char *onnx_activation(const char *keras)
{
	return !strcmp(keras, "sigmoid") ? "Sigmoid" : !strcmp(keras, "tanh") ? "Tanh" : !strcmp(keras, "relu") ? "Relu"
	                                                                                                         : NULL;
}

static strata_status recurrent(st_onnx_export *ex, strata_error *err)
{
	const char *type = ex->layer->type->ops.type;
	bool lstm = !strcmp(type, "lstm"), gru = !strcmp(type, "gru");
	int64_t G = lstm ? 4 : gru ? 3 : 1, H = param_i(ex, "units", 1), F = in_shape(ex, 0)->dims[1];
	int64_t GH = G * H;
	bool seq = param_i(ex, "return_sequences", 0) != 0, state = param_i(ex, "return_state", 0) != 0;
	bool backwards = param_i(ex, "go_backwards", 0) != 0, in_order = param_i(ex, "output_in_input_order", 0) != 0;
	bool reset_after = gru && param_i(ex, "reset_after", 1) != 0;
	const char *f = lstm || gru ? onnx_activation(param_s(ex, "recurrent_activation")) : NULL;
	const char *g = onnx_activation(param_s(ex, "activation"));
	if (!g || ((lstm || gru) && !f))
		return ex_refuse(ex, "activations other than sigmoid, tanh and relu");
	if (ex->layer->mask_use != STRATA_MASK_NONE && ex->layer->mask_of >= 0)
		return ex_refuse(ex, "a masked input: Strata's masks have no ONNX form here");
	strata_shape ks, rs, bs;
	float *k = ex_weight(ex, "kernel", &ks), *r = k ? ex_weight(ex, "recurrent_kernel", &rs) : NULL;
	float *b = r && param_i(ex, "use_bias", 1) ? ex_weight(ex, "bias", &bs) : NULL;
	if (!k || !r || (param_i(ex, "use_bias", 1) && !b)) {
		free(k);
		free(r);
		return ex->n_refused ? STRATA_ERR_UNSUPPORTED : NO_MEMORY(ex, err);
	}
	/* Keras' gates (LSTM i, f, c, o) to ONNX's (i, o, f, c); GRU's z, r, h are both's. */
	static const int64_t lstm_from_onnx[4] = {0, 3, 1, 2};
	float *W = malloc((size_t)(GH * F) * sizeof(float) + 1), *R = malloc((size_t)(GH * H) * sizeof(float) + 1);
	float *B = calloc((size_t)(2 * GH) + 1, sizeof(float));
	if (!W || !R || !B) {
		free(W);
		free(R);
		free(B);
		free(k);
		free(r);
		free(b);
		return NO_MEMORY(ex, err);
	}
	for (int64_t gate = 0; gate < G; gate++) {
		int64_t kg = lstm ? lstm_from_onnx[gate] : gate;
		for (int64_t u = 0; u < H; u++) {
			int64_t row = gate * H + u, col = kg * H + u;
			for (int64_t i = 0; i < F; i++)
				W[row * F + i] = k[i * GH + col];
			for (int64_t h = 0; h < H; h++)
				R[row * H + h] = r[h * GH + col];
			if (b) {
				B[row] = b[col];
				B[GH + row] = reset_after ? b[GH + col] : 0.0f;
			}
		}
	}
	free(k);
	free(r);
	free(b);
	int64_t wd[3] = {1, GH, F}, rd[3] = {1, GH, H}, bd[2] = {1, 2 * GH};
	const char *wname = ex_init_float(ex, "W", wd, 3, W), *rname = ex_init_float(ex, "R", rd, 3, R),
	           *bname = ex_init_float(ex, "B", bd, 2, B);
	free(W);
	free(R);
	free(B);
	/* X time first; initial states (inputs 1 and 2) as (1, batch, units). */
	int64_t perm[3] = {1, 0, 2}, zero[1] = {0};
	const char *x = ex_cl(ex, in0(ex));
	const char *xt = x ? ex_unary(ex, "Transpose", x) : NULL;
	if (!xt || !wname || !rname || !bname || !ex_attr_ints(ex->g->node[ex->g->n_node - 1], "perm", perm, 3))
		return NO_MEMORY(ex, err);
	const char *inputs[7] = {xt, wname, rname, bname, "", "", ""};
	const char *axis0 = ex_init_int64(ex, "axes", zero, 1);
	for (uint32_t i = 1; i < ex->layer->n_inputs && i < 3; i++) {
		const char *s0 = ex_cl(ex, ex_input(ex, i));
		if (!s0 || !axis0 || !(inputs[4 + i] = ex_binary(ex, "Unsqueeze", s0, axis0)))
			return NO_MEMORY(ex, err);
	}
	size_t n_in = ex->layer->n_inputs > 1 ? 5 + ex->layer->n_inputs - 1 : 4;
	char *outs[3] = {ex_name(ex, "Y"), ex_name(ex, "Y_h"), lstm ? ex_name(ex, "Y_c") : NULL};
	Onnx__NodeProto *n = outs[0] && outs[1] && (!lstm || outs[2])
	                         ? ex_node(ex, lstm ? "LSTM" : gru ? "GRU" : "RNN", inputs, n_in, outs, lstm ? 3 : 2)
	                         : NULL;
	if (!n) {
		for (int i = 0; i < 3; i++)
			free(outs[i]);
		return NO_MEMORY(ex, err);
	}
	const char *acts[3] = {lstm || gru ? f : g, g, g};
	if (!ex_attr_int(n, "hidden_size", H) || !ex_attr_string(n, "direction", backwards ? "reverse" : "forward") ||
	    !ex_attr_strings(n, "activations", acts, lstm ? 3 : gru ? 2 : 1) ||
	    (gru && !ex_attr_int(n, "linear_before_reset", reset_after)))
		return NO_MEMORY(ex, err);
	/* Y (seq, 1, batch, units) to (batch, seq, units), in Keras' order: a go_backwards layer
	 * outputs its steps as it ran them (the input's last first) unless output_in_input_order. */
	const char *y = NULL;
	if (seq) {
		int64_t one[1] = {1};
		const char *a1 = ex_init_int64(ex, "axes", one, 1);
		const char *sq = a1 ? ex_binary(ex, "Squeeze", outs[0], a1) : NULL;
		y = sq ? ex_unary(ex, "Transpose", sq) : NULL;
		if (!y || !ex_attr_ints(ex->g->node[ex->g->n_node - 1], "perm", perm, 3))
			return NO_MEMORY(ex, err);
		if (backwards && !in_order) {
			int64_t start[1] = {-1}, end[1] = {INT64_MIN}, step[1] = {-1};
			const char *in[5] = {y, ex_init_int64(ex, "starts", start, 1), ex_init_int64(ex, "ends", end, 1),
			                     a1, ex_init_int64(ex, "steps", step, 1)};
			char *out = ex_name(ex, "Slice");
			if (!out || !in[1] || !in[2] || !in[4] || !ex_node(ex, "Slice", in, 5, &out, 1)) {
				free(out);
				return NO_MEMORY(ex, err);
			}
			y = out;
		}
	}
	const char *h = axis0 ? ex_binary(ex, "Squeeze", outs[1], axis0) : NULL;
	const char *c = lstm && axis0 ? ex_binary(ex, "Squeeze", outs[2], axis0) : NULL;
	if (!h || (lstm && !c))
		return NO_MEMORY(ex, err);
	if (!seq)
		y = h;
	if (state) {
		/* The rnn_part layers after it take these (rnn_part below). */
		ex_value *v = &ex->values[ex->m->n_inputs + ex->layer->index];
		v->parts[0] = strdup(y);
		v->parts[1] = strdup(h);
		v->parts[2] = c ? strdup(c) : NULL;
		if (!v->parts[0] || !v->parts[1] || (c && !v->parts[2]))
			return NO_MEMORY(ex, err);
	}
	return finish(ex, y, false, err);
}

static strata_status rnn_part(st_onnx_export *ex, strata_error *err)
{
	const ex_value *v = &ex->values[in0(ex)];
	const char *part = param_s(ex, "part");
	int i = !strcmp(part, "output") ? 0 : !strcmp(part, "state_h") ? 1 : 2;
	if (!v->parts[i])
		return ex_refuse(ex, "its recurrent layer was not exported with its states");
	return finish(ex, v->parts[i], false, err);
}

/* ---- The table ----------------------------------------------------------------------------- */

strata_status ex_emit_layer(st_onnx_export *ex, strata_error *err)
{
	const strata_layer *l = ex->layer;
	const char *t = l->type->ops.type;
	if (l->distributed)
		return ex_refuse(ex, "TimeDistributed is not exported");
	if (!strcmp(t, "conv2d") || !strcmp(t, "conv1d") || !strcmp(t, "depthwise_conv2d") ||
	    !strcmp(t, "separable_conv2d"))
		return conv(ex, err);
	if (!strcmp(t, "conv2d_transpose"))
		return conv_transpose(ex, err);
	if (!strcmp(t, "dense"))
		return dense(ex, err);
	if (!strcmp(t, "maxpool2d") || !strcmp(t, "averagepool2d"))
		return pool(ex, err, t[0] == 'm');
	if (!strcmp(t, "global_average_pooling2d") || !strcmp(t, "global_max_pooling2d"))
		return global_pool(ex, err, strstr(t, "max") != NULL);
	if (!strcmp(t, "global_average_pooling1d") || !strcmp(t, "global_max_pooling1d"))
		return pool_1d(ex, err, strstr(t, "max") != NULL);
	if (!strcmp(t, "batch_normalization"))
		return batch_norm(ex, err);
	if (!strcmp(t, "layer_normalization"))
		return layer_norm(ex, err);
	if (!strcmp(t, "flatten"))
		return reshape_to(ex, &l->out, err);
	if (!strcmp(t, "reshape"))
		return reshape_to(ex, &l->out, err);
	if (!strcmp(t, "permute"))
		return permute(ex, err);
	if (!strcmp(t, "repeat_vector"))
		return repeat_vector(ex, err);
	if (!strcmp(t, "dropout") || !strcmp(t, "gaussian_noise") || !strcmp(t, "gaussian_dropout") ||
	    !strcmp(t, "spatial_dropout2d") || !strncmp(t, "random_", 7))
		return pass_through(ex, err);
	if (!strcmp(t, "activation"))
		return activation_layer(ex, err);
	if (!strcmp(t, "relu"))
		return relu_layer(ex, err);
	if (!strcmp(t, "leaky_relu"))
		return alpha_unary(ex, err, "LeakyRelu", "negative_slope");
	if (!strcmp(t, "elu"))
		return alpha_unary(ex, err, "Elu", "alpha");
	if (!strcmp(t, "prelu"))
		return prelu(ex, err);
	if (!strcmp(t, "softmax"))
		return softmax_layer(ex, err);
	if (!strcmp(t, "add"))
		return merge(ex, err, "Sum", false);
	if (!strcmp(t, "subtract"))
		return merge(ex, err, "Sub", true);
	if (!strcmp(t, "multiply"))
		return merge(ex, err, "Mul", true);
	if (!strcmp(t, "average"))
		return merge(ex, err, "Mean", false);
	if (!strcmp(t, "maximum"))
		return merge(ex, err, "Max", false);
	if (!strcmp(t, "minimum"))
		return merge(ex, err, "Min", false);
	if (!strcmp(t, "divide"))
		return merge(ex, err, "Div", true);
	if (!strcmp(t, "rescaling"))
		return rescaling(ex, err);
	if (!strcmp(t, "concatenate"))
		return concatenate(ex, err);
	if (!strcmp(t, "zero_padding2d") || !strcmp(t, "cropping2d"))
		return padding2d(ex, err, t[0] == 'c');
	if (!strcmp(t, "up_sampling2d"))
		return up_sampling(ex, err);
	if (!strcmp(t, "embedding"))
		return embedding(ex, err);
	if (!strcmp(t, "lstm") || !strcmp(t, "gru") || !strcmp(t, "simple_rnn"))
		return recurrent(ex, err);
	if (!strcmp(t, "rnn_part"))
		return rnn_part(ex, err);
	return ex_refuse(ex, "no ONNX operator does %s here", t);
}
