/* Convolutions, pooling, batch normalization and padding: the operators with a channel axis,
 * run by Strata channels-last. ONNX's explicit pads become Keras' padding where they are the
 * same ('valid': none; 'same': the total a window needs, the extra one at the end), and a
 * zero_padding2d layer in front otherwise (exact for a convolution, for an average that counts
 * the padding, and for a max over values that are never negative). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "onnx/import.h"
#include "onnx/import_ops.h"

#define MAX_SPATIAL 2

/* A window's geometry over the spatial axes of the input. */
typedef struct window {
	uint32_t n;                 /* spatial axes: 1 or 2 */
	int64_t in[MAX_SPATIAL];    /* input sizes */
	int64_t k[MAX_SPATIAL];     /* kernel */
	int64_t s[MAX_SPATIAL];     /* strides */
	int64_t d[MAX_SPATIAL];     /* dilations */
	int64_t pb[MAX_SPATIAL];    /* pads at the beginning */
	int64_t pe[MAX_SPATIAL];    /* pads at the end */
	int64_t out[MAX_SPATIAL];
	bool valid, same;           /* Keras' padding that gives these pads, if any */
} window;

static bool ints_attr(st_onnx_import *imp, const char *name, uint32_t n, int64_t fallback, int64_t *out)
{
	const int64_t *v;
	size_t count = st_onnx_attr_ints(imp->node, name, &v);
	for (uint32_t i = 0; i < n; i++)
		out[i] = count ? (i < count ? v[i] : -1) : fallback;
	return !count || count == n;
}

/* Reads kernel_shape (or `kernel` when given), strides, dilations, pads and auto_pad, and works
 * out the output and the Keras padding that matches. */
static strata_status read_window(st_onnx_import *imp, const imp_value *x, const int64_t *kernel, bool ceil_ok,
                                 window *w, strata_error *err)
{
	memset(w, 0, sizeof(*w));
	if (x->rank < 3 || x->rank > 2 + MAX_SPATIAL)
		return imp_refuse(imp, "a %u-D input: Strata has 1-D and 2-D windows", x->rank - 2);
	w->n = x->rank - 2;
	for (uint32_t i = 0; i < w->n; i++)
		w->in[i] = x->dims[2 + i];
	int64_t pads[2 * MAX_SPATIAL];
	if (kernel)
		memcpy(w->k, kernel, w->n * sizeof(*kernel));
	if ((!kernel && (!ints_attr(imp, "kernel_shape", w->n, -1, w->k) || w->k[0] < 0)) ||
	    !ints_attr(imp, "strides", w->n, 1, w->s) || !ints_attr(imp, "dilations", w->n, 1, w->d) ||
	    !ints_attr(imp, "pads", 2 * w->n, 0, pads))
		return imp_fail(imp, err, STRATA_ERR_PARSE, "kernel_shape, strides, dilations or pads has the wrong length "
		                "for a %u-D window", w->n);
	if (kernel) {
		int64_t given[MAX_SPATIAL];
		if (ints_attr(imp, "kernel_shape", w->n, -1, given) && given[0] >= 0 &&
		    memcmp(given, w->k, w->n * sizeof(*given)))
			return imp_fail(imp, err, STRATA_ERR_INVALID, "kernel_shape differs from the weights' shape");
	}
	for (uint32_t i = 0; i < w->n; i++) {
		if (w->k[i] < 1 || w->s[i] < 1 || w->d[i] < 1 || pads[i] < 0 || pads[w->n + i] < 0 || w->k[i] > INT32_MAX ||
		    w->s[i] > INT32_MAX || w->d[i] > INT32_MAX || pads[i] > INT32_MAX || pads[w->n + i] > INT32_MAX)
			return imp_fail(imp, err, STRATA_ERR_INVALID, "a kernel, stride, dilation or pad out of range");
		w->pb[i] = pads[i];
		w->pe[i] = pads[w->n + i];
	}
	char autopad[32];
	const char *ap = st_onnx_attr_string(imp->node, "auto_pad", "NOTSET", autopad, sizeof(autopad));
	bool upper = !strcmp(ap, "SAME_UPPER"), lower = !strcmp(ap, "SAME_LOWER");
	if (!upper && !lower && strcmp(ap, "NOTSET") && strcmp(ap, "VALID"))
		return imp_fail(imp, err, STRATA_ERR_INVALID, "auto_pad '%s' is not an ONNX value", ap);
	bool valid_all = true, same_all = true;
	int64_t ceil_mode = st_onnx_attr_int(imp->node, "ceil_mode", 0);
	for (uint32_t i = 0; i < w->n; i++) {
		int64_t span = (w->k[i] - 1) * w->d[i] + 1;
		int64_t same_out = (w->in[i] + w->s[i] - 1) / w->s[i];
		int64_t total = (same_out - 1) * w->s[i] + span - w->in[i];
		if (total < 0)
			total = 0;
		if (upper || lower) {
			w->pb[i] = upper ? total / 2 : total - total / 2;
			w->pe[i] = total - w->pb[i];
		} else if (!strcmp(ap, "VALID")) {
			w->pb[i] = w->pe[i] = 0;
		}
		int64_t padded = w->in[i] + w->pb[i] + w->pe[i];
		if (padded < span)
			return imp_fail(imp, err, STRATA_ERR_INVALID, "the window (%lld) is larger than the padded input (%lld)",
			                (long long)span, (long long)padded);
		w->out[i] = (padded - span) / w->s[i] + 1;
		if (ceil_mode && (padded - span) % w->s[i]) {
			if (!ceil_ok)
				return imp_refuse(imp, "ceil_mode 1 with a window that overhangs the input");
			w->out[i]++;
		}
		valid_all &= w->pb[i] == 0 && w->pe[i] == 0 && !(ceil_mode && (padded - span) % w->s[i]);
		same_all &= w->pb[i] == total / 2 && w->pe[i] == total - total / 2 && w->out[i] == same_out;
	}
	w->valid = valid_all;
	w->same = same_all && !valid_all;
	return STRATA_OK;
}

static void window_fields(const window *w, const char *size_key, char *buf, size_t size)
{
	if (w->n == 2)
		snprintf(buf, size, "%s: [%lld, %lld], strides: [%lld, %lld]", size_key, (long long)w->k[0],
		         (long long)w->k[1], (long long)w->s[0], (long long)w->s[1]);
	else
		snprintf(buf, size, "%s: %lld, strides: %lld", size_key, (long long)w->k[0], (long long)w->s[0]);
}

/* The input stored channels-last, with a zero_padding2d in front when the pads are neither
 * 'valid' nor 'same' (`ref` gets the value to read; *padded tells which). */
static strata_status channels_last_input(st_onnx_import *imp, imp_value *x, const window *w, bool pad, char *ref,
                                         strata_error *err)
{
	uint32_t perm[ST_ONNX_MAX_RANK];
	imp_perm_channels_last(perm, x->rank);
	strata_status st = imp_as(imp, x, perm, ref, err);
	if (st || !pad)
		return st;
	if (w->n != 2)
		return imp_refuse(imp, "1-D pads other than Keras' 'valid' and 'same'");
	char hint[IMP_NAME + 8];
	snprintf(hint, sizeof(hint), "%s_pad", imp->node->output[0]);
	const char *in = ref;
	imp_layer *l;
	if ((st = imp_add_layer(imp, hint, "zero_padding2d", &in, 1, &l, err, "padding: [%lld, %lld, %lld, %lld]",
	                    (long long)w->pb[0], (long long)w->pe[0], (long long)w->pb[1], (long long)w->pe[1])))
		return st;
	snprintf(ref, IMP_NAME, "%s", l->name);
	return STRATA_OK;
}

static strata_status out_channels_last(st_onnx_import *imp, const imp_layer *l, const imp_value *x, int64_t channels,
                                       const window *w, bool nonneg, strata_error *err)
{
	int64_t dims[ST_ONNX_MAX_RANK] = {x->dims[0], channels};
	for (uint32_t i = 0; i < w->n; i++)
		dims[2 + i] = w->out[i];
	uint32_t perm[ST_ONNX_MAX_RANK];
	imp_perm_channels_last(perm, x->rank);
	imp_value *y;
	strata_status st = imp_set_layer(imp, 0, l, x->rank, dims, perm, &y, err);
	if (!st)
		y->nonneg = nonneg;
	return st;
}


strata_status imp_map_conv(st_onnx_import *imp, strata_error *err)
{
	imp_value *xp = imp_tensor_in(imp, 0);
	imp_value *wv = imp_in(imp, 1), *bv = imp_in(imp, 2);
	if (!xp)
		return STRATA_ERR_UNSUPPORTED;
	imp_value x = *xp;
	if (!wv || wv->state != IMP_CONST || (bv && bv->state != IMP_CONST))
		return imp_refuse(imp, "weights that are not constants");
	const st_onnx_const *W = &wv->c;
	if (W->rank != x.rank)
		return imp_fail(imp, err, STRATA_ERR_INVALID, "weights of rank %u for an input of rank %u", W->rank, x.rank);
	int64_t M = W->dims[0], C = x.dims[1], g = st_onnx_attr_int(imp->node, "group", 1);
	if (g < 1 || C % g || M % g || W->dims[1] * g != C)
		return imp_fail(imp, err, STRATA_ERR_INVALID, "group %lld does not divide the %lld input channels and %lld "
		                "filters as the weights (%lld per group) say", (long long)g, (long long)C, (long long)M,
		                (long long)W->dims[1]);
	if (bv && (int64_t)bv->c.count != M)
		return imp_fail(imp, err, STRATA_ERR_INVALID, "a bias of %llu values for %lld filters",
		                (unsigned long long)bv->c.count, (long long)M);
	window w;
	strata_status st = read_window(imp, &x, W->dims + 2, false, &w, err);
	if (st)
		return st;
	bool dilated = false, strided = false;
	for (uint32_t i = 0; i < w.n; i++) {
		dilated |= w.d[i] > 1;
		strided |= w.s[i] > 1;
	}
	/* Keras' convolutions take dilations or strides: both are a dilated convolution at stride 1
	 * whose output a 1x1 average pooling with the strides then samples. */
	bool subsample = dilated && strided;
	if (subsample && w.n != 2)
		return imp_refuse(imp, "dilations with strides above 1 in 1-D (Strata has no 1-D subsampling layer)");
	int64_t strides[MAX_SPATIAL] = {w.s[0], w.s[1]};
	if (subsample)
		for (uint32_t i = 0; i < w.n; i++)
			w.s[i] = 1;
	bool depthwise = w.n == 2 && g == C && g > 1;
	char ref[IMP_NAME];
	bool same = w.same && !subsample; /* at stride 1, 'same' would pad otherwise */
	if ((st = channels_last_input(imp, &x, &w, !w.valid && !same, ref, err)))
		return st;
	char geometry[128], fields[512];
	window_fields(&w, "kernel_size", geometry, sizeof(geometry));
	const char *padding = same ? "same" : "valid";
	char dil[64];
	if (w.n == 2)
		snprintf(dil, sizeof(dil), "[%lld, %lld]", (long long)w.d[0], (long long)w.d[1]);
	else
		snprintf(dil, sizeof(dil), "%lld", (long long)w.d[0]);
	const char *type;
	if (depthwise) {
		type = "depthwise_conv2d";
		snprintf(fields, sizeof(fields), "%s, padding: %s, dilation_rate: %s, depth_multiplier: %lld, use_bias: %s",
		         geometry, padding, dil, (long long)(M / C), bv ? "true" : "false");
	} else {
		type = w.n == 2 ? "conv2d" : "conv1d";
		snprintf(fields, sizeof(fields), "filters: %lld, %s, padding: %s, dilation_rate: %s, groups: %lld, use_bias: %s",
		         (long long)M, geometry, padding, dil, (long long)g, bv ? "true" : "false");
	}
	const char *in = ref;
	imp_layer *l;
	if ((st = imp_add_layer(imp, imp_hint(imp), type, &in, 1, &l, err, "%s", fields)))
		return st;
	/* ONNX's W[o][i][y][x] to Keras' HWIO K[y][x][i][o]; depthwise (kh, kw, C, multiplier). */
	int64_t kh = W->dims[2], kw = w.n == 2 ? W->dims[3] : 1, cin = W->dims[1];
	float *k = malloc(W->count * sizeof(float) + 1);
	if (!k)
		return imp_fail(imp, err, STRATA_ERR_NO_MEMORY, "out of memory");
	for (int64_t o = 0; o < M; o++)
		for (int64_t i = 0; i < cin; i++)
			for (int64_t y = 0; y < kh; y++)
				for (int64_t xx = 0; xx < kw; xx++) {
					double v = W->v[((o * cin + i) * kh + y) * kw + xx];
					size_t at = depthwise ? (size_t)(((y * kw + xx) * C + o / (M / C)) * (M / C) + o % (M / C))
					                      : (size_t)(((y * kw + xx) * cin + i) * M + o);
					k[at] = (float)v;
				}
	strata_shape ks = depthwise ? (strata_shape){.rank = 4, .dims = {kh, kw, C, M / C}}
	                  : w.n == 2 ? (strata_shape){.rank = 4, .dims = {kh, kw, cin, M}}
	                             : (strata_shape){.rank = 3, .dims = {kh, cin, M}};
	if ((st = imp_weight_add(l, &ks, k, err)))
		return st;
	if (bv) {
		float *b = floats_of_const(&bv->c);
		strata_shape bs = {.rank = 1, .dims = {M}};
		if (!b)
			return imp_fail(imp, err, STRATA_ERR_NO_MEMORY, "out of memory");
		if ((st = imp_weight_add(l, &bs, b, err)))
			return st;
	}
	if (subsample) {
		char hint[IMP_NAME + 16];
		snprintf(hint, sizeof(hint), "%s_strides", imp_hint(imp));
		const char *conv_out = l->name;
		if ((st = imp_add_layer(imp, hint, "averagepool2d", &conv_out, 1, &l, err,
		                        "pool_size: [1, 1], strides: [%lld, %lld]", (long long)strides[0], (long long)strides[1])))
			return st;
	}
	return out_channels_last(imp, l, &x, M, &w, false, err);
}

/* A 1-D pooling as Strata's 2-D one over (steps, 1, channels): a reshape either side. */
static strata_status pool_1d(st_onnx_import *imp, imp_value *x, const window *w, bool max, bool pad,
                             strata_error *err)
{
	uint32_t perm[3];
	imp_perm_channels_last(perm, 3);
	char ref[IMP_NAME], hint[IMP_NAME + 8];
	strata_status st = imp_as(imp, x, perm, ref, err);
	if (st)
		return st;
	int64_t L = x->dims[2], C = x->dims[1];
	const char *in = ref;
	imp_layer *l;
	snprintf(hint, sizeof(hint), "%s_2d", imp_hint(imp));
	if ((st = imp_add_layer(imp, hint, "reshape", &in, 1, &l, err, "target_shape: [%lld, 1, %lld]", (long long)L,
	                        (long long)C)))
		return st;
	if (pad) {
		in = l->name;
		snprintf(hint, sizeof(hint), "%s_pad", imp_hint(imp));
		if ((st = imp_add_layer(imp, hint, "zero_padding2d", &in, 1, &l, err, "padding: [%lld, %lld, 0, 0]",
		                        (long long)w->pb[0], (long long)w->pe[0])))
			return st;
	}
	in = l->name;
	snprintf(hint, sizeof(hint), "%s_pool", imp_hint(imp));
	if ((st = imp_add_layer(imp, hint, max ? "maxpool2d" : "averagepool2d", &in, 1, &l, err,
	                        "pool_size: [%lld, 1], strides: [%lld, 1], padding: %s", (long long)w->k[0],
	                        (long long)w->s[0], w->same && !pad ? "same" : "valid")))
		return st;
	int64_t dims[3] = {x->dims[0], C, w->out[0]};
	return imp_single(imp, l->name, "reshape", 3, dims, perm, x->nonneg, err, "target_shape: [%lld, %lld]",
	                  (long long)w->out[0], (long long)C);
}

static strata_status pool(st_onnx_import *imp, strata_error *err, bool max)
{
	imp_value *xp = imp_tensor_in(imp, 0);
	if (!xp)
		return STRATA_ERR_UNSUPPORTED;
	imp_value x = *xp;
	if (max && imp->node->n_output > 1 && imp->node->output[1] && imp->node->output[1][0] &&
	    imp_readers(imp, imp->node->output[1]))
		return imp_refuse(imp, "its Indices output is read");
	window w;
	strata_status st = read_window(imp, &x, NULL, false, &w, err);
	if (st)
		return st;
	for (uint32_t i = 0; i < w.n; i++)
		if (w.d[i] != 1)
			return imp_refuse(imp, "dilations in pooling");
	bool count_pad = !max && st_onnx_attr_int(imp->node, "count_include_pad", 0);
	bool pad = !w.valid && (!w.same || count_pad);
	if (pad && max && !x.nonneg)
		return imp_refuse(imp, "pads other than Keras' 'valid' and 'same' on values that may be negative");
	if (pad && !max && !count_pad)
		return imp_refuse(imp, "pads other than Keras' 'valid' and 'same' without count_include_pad");
	char ref[IMP_NAME];
	if (w.n == 1)
		return pool_1d(imp, &x, &w, max, pad, err);
	if ((st = channels_last_input(imp, &x, &w, pad, ref, err)))
		return st;
	char geometry[128];
	window_fields(&w, "pool_size", geometry, sizeof(geometry));
	const char *in = ref;
	imp_layer *l;
	if ((st = imp_add_layer(imp, imp_hint(imp), max ? "maxpool2d" : "averagepool2d", &in, 1, &l, err,
	                    "%s, padding: %s", geometry, w.same && !pad ? "same" : "valid")))
		return st;
	return out_channels_last(imp, l, &x, x.dims[1], &w, x.nonneg, err);
}

strata_status imp_map_max_pool(st_onnx_import *imp, strata_error *err)
{
	if (st_onnx_attr_int(imp->node, "storage_order", 0))
		return imp_refuse(imp, "storage_order 1");
	return pool(imp, err, true);
}

strata_status imp_map_average_pool(st_onnx_import *imp, strata_error *err)
{
	return pool(imp, err, false);
}

static strata_status global_pool(st_onnx_import *imp, strata_error *err, bool max)
{
	imp_value *xp = imp_tensor_in(imp, 0);
	if (!xp)
		return STRATA_ERR_UNSUPPORTED;
	imp_value x = *xp;
	if (x.rank != 4)
		return imp_refuse(imp, "a %u-D input: Strata pools 2-D maps globally", x.rank - 2);
	uint32_t perm[ST_ONNX_MAX_RANK];
	imp_perm_channels_last(perm, x.rank);
	char ref[IMP_NAME];
	strata_status st = imp_as(imp, &x, perm, ref, err);
	if (st)
		return st;
	int64_t dims[4] = {x.dims[0], x.dims[1], 1, 1};
	return imp_single(imp, ref, max ? "global_max_pooling2d" : "global_average_pooling2d", 4, dims, perm, x.nonneg, err,
	                  "keepdims: true");
}

strata_status imp_map_global_average_pool(st_onnx_import *imp, strata_error *err)
{
	return global_pool(imp, err, false);
}

strata_status imp_map_global_max_pool(st_onnx_import *imp, strata_error *err)
{
	return global_pool(imp, err, true);
}

strata_status imp_map_batch_norm(st_onnx_import *imp, strata_error *err)
{
	imp_value *xp = imp_tensor_in(imp, 0);
	if (!xp)
		return STRATA_ERR_UNSUPPORTED;
	imp_value x = *xp;
	if (st_onnx_attr_int(imp->node, "training_mode", 0))
		return imp_refuse(imp, "training_mode 1");
	/* Opsets 6 to 8: is_test 0 is a training node, spatial 0 statistics per element. */
	if (imp->file->opset < 7 && !st_onnx_attr_int(imp->node, "is_test", 0) && imp->node->n_output > 1)
		return imp_refuse(imp, "is_test 0 with its statistics outputs");
	if (imp->file->opset < 9 && !st_onnx_attr_int(imp->node, "spatial", 1))
		return imp_refuse(imp, "spatial 0 (statistics per element, not per channel)");
	if (imp->node->n_output > 1)
		for (size_t i = 1; i < imp->node->n_output; i++)
			if (imp->node->output[i] && imp->node->output[i][0] && imp_readers(imp, imp->node->output[i]))
				return imp_refuse(imp, "its running statistics outputs are read");
	const imp_value *p[4];
	for (size_t i = 0; i < 4; i++) {
		p[i] = imp_in(imp, 1 + i);
		if (!p[i] || p[i]->state != IMP_CONST)
			return imp_refuse(imp, "scale, bias, mean and variance that are not constants");
		if ((int64_t)p[i]->c.count != x.dims[1])
			return imp_fail(imp, err, STRATA_ERR_INVALID, "%llu values in input %zu for %lld channels",
			                (unsigned long long)p[i]->c.count, i + 1, (long long)x.dims[1]);
	}
	if (x.rank < 2)
		return imp_fail(imp, err, STRATA_ERR_INVALID, "an input of rank %u", x.rank);
	uint32_t perm[ST_ONNX_MAX_RANK];
	imp_perm_channels_last(perm, x.rank);
	char ref[IMP_NAME];
	strata_status st = imp_as(imp, &x, perm, ref, err);
	if (st)
		return st;
	float eps = st_onnx_attr_float(imp->node, "epsilon", 1e-5f);
	float momentum = st_onnx_attr_float(imp->node, "momentum", 0.9f);
	if (!(eps > 0.0f) || !(momentum >= 0.0f && momentum <= 1.0f))
		return imp_fail(imp, err, STRATA_ERR_INVALID, "epsilon %g or momentum %g out of range", eps, momentum);
	const char *in = ref;
	imp_layer *l;
	if ((st = imp_add_layer(imp, imp_hint(imp), "batch_normalization", &in, 1, &l, err,
	                    "epsilon: %.9g, momentum: %.9g", eps, momentum)))
		return st;
	/* Keras' order: gamma (ONNX's scale), beta (bias), moving_mean, moving_variance. */
	for (size_t i = 0; i < 4; i++) {
		float *f = floats_of_const(&p[i]->c);
		strata_shape s = {.rank = 1, .dims = {x.dims[1]}};
		if (!f)
			return imp_fail(imp, err, STRATA_ERR_NO_MEMORY, "out of memory");
		if ((st = imp_weight_add(l, &s, f, err)))
			return st;
	}
	return imp_set_layer(imp, 0, l, x.rank, x.dims, perm, NULL, err);
}

/* Pad (constant mode, value 0) over the spatial axes of a 4-D input: zero_padding2d. */
strata_status imp_map_pad(st_onnx_import *imp, strata_error *err)
{
	imp_value *xp = imp_tensor_in(imp, 0);
	if (!xp)
		return STRATA_ERR_UNSUPPORTED;
	imp_value x = *xp;
	char mode_buf[32];
	const char *mode = st_onnx_attr_string(imp->node, "mode", "constant", mode_buf, sizeof(mode_buf));
	if (strcmp(mode, "constant"))
		return imp_refuse(imp, "mode '%s' (Strata pads with zeros)", mode);
	int64_t pads[2 * ST_ONNX_MAX_RANK];
	double value = 0;
	size_t n;
	if (imp->file->opset < 11) {
		const int64_t *p;
		n = st_onnx_attr_ints(imp->node, "pads", &p);
		if (n != 2 * x.rank)
			return imp_fail(imp, err, STRATA_ERR_INVALID, "%zu pads for rank %u", n, x.rank);
		memcpy(pads, p, n * sizeof(*p));
		value = st_onnx_attr_float(imp->node, "value", 0.0f);
	} else {
		imp_value *pv = imp_in(imp, 1), *cv = imp_in(imp, 2);
		if (!pv || pv->state != IMP_CONST || (cv && cv->state != IMP_CONST) || imp_in(imp, 3))
			return imp_refuse(imp, "pads or value that are not constants, or axes");
		if (pv->c.count != 2 * x.rank)
			return imp_fail(imp, err, STRATA_ERR_INVALID, "%llu pads for rank %u", (unsigned long long)pv->c.count,
			                x.rank);
		for (size_t i = 0; i < 2 * x.rank; i++)
			pads[i] = imp_int(pv->c.v[i]);
		value = cv && cv->c.count ? cv->c.v[0] : 0;
	}
	if (value != 0)
		return imp_refuse(imp, "a pad value of %g (Strata pads with zeros)", value);
	if (x.rank != 4 || pads[0] || pads[1] || pads[4] || pads[5])
		return imp_refuse(imp, "padding other than the height and width of a 4-D input");
	for (int i = 0; i < 8; i++)
		if (pads[i] < 0)
			return imp_refuse(imp, "negative pads (cropping)");
	uint32_t perm[ST_ONNX_MAX_RANK];
	imp_perm_channels_last(perm, 4);
	char ref[IMP_NAME];
	strata_status st = imp_as(imp, &x, perm, ref, err);
	if (st)
		return st;
	int64_t dims[4] = {x.dims[0], x.dims[1], x.dims[2] + pads[2] + pads[6], x.dims[3] + pads[3] + pads[7]};
	return imp_single(imp, ref, "zero_padding2d", 4, dims, perm, x.nonneg, err, "padding: [%lld, %lld, %lld, %lld]",
	                  (long long)pads[2], (long long)pads[6], (long long)pads[3], (long long)pads[7]);
}

/* ConvTranspose (one group): conv2d_transpose, whose kernel is Keras' (kh, kw, filters, channels)
 * and whose padding is Keras': 'valid' (no pads, output_padding at the end) or 'same' (the
 * output in x strides, (E - strides) // 2 cropped before, the rest after). */
strata_status imp_map_conv_transpose(st_onnx_import *imp, strata_error *err)
{
	imp_value *xp = imp_tensor_in(imp, 0);
	if (!xp)
		return STRATA_ERR_UNSUPPORTED;
	imp_value x = *xp;
	imp_value *wv = imp_in(imp, 1), *bv = imp_in(imp, 2);
	if (!wv || wv->state != IMP_CONST || (bv && bv->state != IMP_CONST))
		return imp_refuse(imp, "weights that are not constants");
	const st_onnx_const *W = &wv->c;
	if (x.rank != 4 || W->rank != 4)
		return imp_refuse(imp, "a %u-D input: Strata's transposed convolution is 2-D", x.rank - 2);
	if (st_onnx_attr_int(imp->node, "group", 1) != 1)
		return imp_refuse(imp, "groups");
	if (st_onnx_attr(imp->node, "output_shape"))
		return imp_refuse(imp, "output_shape (give pads and output_padding instead)");
	int64_t C = x.dims[1], M = W->dims[1], k[2] = {W->dims[2], W->dims[3]};
	if (W->dims[0] != C || (bv && (int64_t)bv->c.count != M))
		return imp_fail(imp, err, STRATA_ERR_INVALID, "weights for %lld channels, the input has %lld",
		                (long long)W->dims[0], (long long)C);
	int64_t s[2], d[2], pads[4], op[2];
	const int64_t *given;
	for (int i = 0; i < 2; i++) {
		size_t n = st_onnx_attr_ints(imp->node, "strides", &given);
		s[i] = n == 2 ? given[i] : 1;
		n = st_onnx_attr_ints(imp->node, "dilations", &given);
		d[i] = n == 2 ? given[i] : 1;
		n = st_onnx_attr_ints(imp->node, "output_padding", &given);
		op[i] = n == 2 ? given[i] : 0;
	}
	size_t np = st_onnx_attr_ints(imp->node, "pads", &given);
	for (int i = 0; i < 4; i++)
		pads[i] = np == 4 ? given[i] : 0;
	char autopad[32];
	const char *ap = st_onnx_attr_string(imp->node, "auto_pad", "NOTSET", autopad, sizeof(autopad));
	bool same = true, valid = true;
	int64_t out[2];
	for (int i = 0; i < 2; i++) {
		if (s[i] < 1 || d[i] < 1 || op[i] < 0 || op[i] >= s[i] || pads[i] < 0 || pads[i + 2] < 0 ||
		    s[i] > INT32_MAX || d[i] > INT32_MAX || k[i] > INT32_MAX || pads[i] > INT32_MAX || pads[i + 2] > INT32_MAX)
			return imp_fail(imp, err, STRATA_ERR_INVALID, "strides, dilations, pads or output_padding out of range");
		int64_t e = (k[i] - 1) * d[i] + 1, total = e - s[i];
		if (!strcmp(ap, "SAME_UPPER") || !strcmp(ap, "SAME_LOWER")) {
			pads[i] = !strcmp(ap, "SAME_UPPER") ? total / 2 : total - total / 2;
			pads[i + 2] = total - pads[i];
		} else if (!strcmp(ap, "VALID")) {
			pads[i] = pads[i + 2] = 0;
		}
		out[i] = s[i] * (x.dims[2 + i] - 1) + op[i] + e - pads[i] - pads[i + 2];
		valid &= pads[i] == 0 && pads[i + 2] == 0 && e >= s[i];
		same &= total >= 0 && op[i] == 0 && pads[i] == total / 2 && pads[i + 2] == total - total / 2;
	}
	/* Other pads: the full ('valid') output, then a cropping2d of the pads (and of the rows a
	 * window shorter than its stride leaves at the end). */
	int64_t crop[4] = {0};
	bool cropped = false;
	if (!same) {
		for (int i = 0; i < 2; i++) {
			int64_t e = (k[i] - 1) * d[i] + 1;
			crop[2 * i] = pads[i];
			crop[2 * i + 1] = pads[i + 2] + (e < s[i] && !op[i] ? s[i] - e : 0);
			cropped |= crop[2 * i] || crop[2 * i + 1];
			if (out[i] < 1)
				return imp_fail(imp, err, STRATA_ERR_INVALID, "pads leave no output");
		}
		valid = true;
	}
	uint32_t perm[4];
	imp_perm_channels_last(perm, 4);
	char ref[IMP_NAME];
	strata_status st = imp_as(imp, &x, perm, ref, err);
	if (st)
		return st;
	char extra[64] = "";
	if (valid && (op[0] || op[1]))
		snprintf(extra, sizeof(extra), ", output_padding: [%lld, %lld]", (long long)op[0], (long long)op[1]);
	const char *in = ref;
	imp_layer *l;
	if ((st = imp_add_layer(imp, imp_hint(imp), "conv2d_transpose", &in, 1, &l, err,
	                        "filters: %lld, kernel_size: [%lld, %lld], strides: [%lld, %lld], padding: %s, "
	                        "dilation_rate: [%lld, %lld], use_bias: %s%s", (long long)M, (long long)k[0],
	                        (long long)k[1], (long long)s[0], (long long)s[1], valid ? "valid" : "same",
	                        (long long)d[0], (long long)d[1], bv ? "true" : "false", extra)))
		return st;
	float *kernel = malloc(W->count * sizeof(float) + 1);
	if (!kernel)
		return imp_fail(imp, err, STRATA_ERR_NO_MEMORY, "out of memory");
	for (int64_t c = 0; c < C; c++)
		for (int64_t o = 0; o < M; o++)
			for (int64_t y = 0; y < k[0]; y++)
				for (int64_t xx = 0; xx < k[1]; xx++)
					kernel[((y * k[1] + xx) * M + o) * C + c] = (float)W->v[((c * M + o) * k[0] + y) * k[1] + xx];
	strata_shape ks = {.rank = 4, .dims = {k[0], k[1], M, C}};
	if ((st = imp_weight_add(l, &ks, kernel, err)))
		return st;
	if (bv) {
		float *b = floats_of_const(&bv->c);
		strata_shape bs = {.rank = 1, .dims = {M}};
		if (!b)
			return imp_fail(imp, err, STRATA_ERR_NO_MEMORY, "out of memory");
		if ((st = imp_weight_add(l, &bs, b, err)))
			return st;
	}
	int64_t dims[4] = {x.dims[0], M, out[0], out[1]};
	if (!cropped)
		return imp_set_layer(imp, 0, l, 4, dims, perm, NULL, err);
	char hint[IMP_NAME + 8];
	snprintf(hint, sizeof(hint), "%s_crop", imp->node->output[0]);
	in = l->name;
	if ((st = imp_add_layer(imp, hint, "cropping2d", &in, 1, &l, err, "cropping: [%lld, %lld, %lld, %lld]",
	                        (long long)crop[0], (long long)crop[1], (long long)crop[2], (long long)crop[3])))
		return st;
	return imp_set_layer(imp, 0, l, 4, dims, perm, NULL, err);
}

/* Resize and Upsample by whole factors over height and width: up_sampling2d, nearest (ONNX's
 * asymmetric floor, or half-pixel rounding, the same for whole factors) or bilinear (ONNX's
 * linear with half-pixel coordinates, Keras 3's and PyTorch's align_corners=False). */
strata_status imp_map_resize(st_onnx_import *imp, strata_error *err)
{
	imp_value *xp = imp_tensor_in(imp, 0);
	if (!xp)
		return STRATA_ERR_UNSUPPORTED;
	imp_value x = *xp;
	if (x.rank != 4)
		return imp_refuse(imp, "a %u-D input: Strata upsamples images", x.rank - 2);
	bool upsample = !strcmp(imp->node->op_type, "Upsample");
	double scale[4] = {0};
	const imp_value *sv = NULL, *zv = NULL;
	if (upsample && imp->file->opset < 9) {
		const float *f;
		if (st_onnx_attr_floats(imp->node, "scales", &f) != 4)
			return imp_fail(imp, err, STRATA_ERR_INVALID, "scales needs 4 values");
		for (int i = 0; i < 4; i++)
			scale[i] = f[i];
	} else {
		sv = imp_in(imp, upsample || imp->file->opset < 11 ? 1 : 2);
		zv = upsample || imp->file->opset < 11 ? NULL : imp_in(imp, 3);
		if ((sv && sv->state != IMP_CONST) || (zv && zv->state != IMP_CONST))
			return imp_refuse(imp, "scales or sizes that are not constants");
		if (sv && sv->c.count == 4) {
			for (int i = 0; i < 4; i++)
				scale[i] = sv->c.v[i];
		} else if (zv && zv->c.count == 4) {
			for (int i = 0; i < 4; i++)
				scale[i] = x.dims[i] > 0 ? zv->c.v[i] / (double)x.dims[i] : 1;
			scale[0] = 1;
		} else {
			return imp_refuse(imp, "neither 4 scales nor 4 sizes");
		}
	}
	if (scale[0] != 1 || scale[1] != 1 || !(scale[2] >= 1 && scale[2] <= 65536) || !(scale[3] >= 1 && scale[3] <= 65536) ||
	    scale[2] != floor(scale[2]) || scale[3] != floor(scale[3]))
		return imp_refuse(imp, "scales [%g, %g, %g, %g]: Strata upsamples height and width by whole factors",
		                  scale[0], scale[1], scale[2], scale[3]);
	char buf[3][40];
	const char *mode = st_onnx_attr_string(imp->node, "mode", "nearest", buf[0], sizeof(buf[0]));
	const char *coord = st_onnx_attr_string(imp->node, "coordinate_transformation_mode",
	                                        upsample || imp->file->opset < 11 ? "asymmetric" : "half_pixel", buf[1],
	                                        sizeof(buf[1]));
	const char *nearest = st_onnx_attr_string(imp->node, "nearest_mode", upsample || imp->file->opset < 11 ? "floor"
	                                                                                            : "round_prefer_floor",
	                                          buf[2], sizeof(buf[2]));
	bool half = !strcmp(coord, "half_pixel") || !strcmp(coord, "pytorch_half_pixel");
	const char *interpolation;
	if (!strcmp(mode, "nearest") &&
	    ((!strcmp(coord, "asymmetric") && !strcmp(nearest, "floor")) ||
	     (half && (!strcmp(nearest, "round_prefer_floor") || !strcmp(nearest, "round_prefer_ceil")))))
		interpolation = "nearest";
	else if ((!strcmp(mode, "linear") || !strcmp(mode, "bilinear")) && half)
		interpolation = "bilinear";
	else
		return imp_refuse(imp, "mode '%s' with coordinate_transformation_mode '%s' (nearest_mode '%s'): Strata has "
		                  "nearest (floor) and half-pixel bilinear", mode, coord, nearest);
	uint32_t perm[4];
	imp_perm_channels_last(perm, 4);
	char ref[IMP_NAME];
	strata_status st = imp_as(imp, &x, perm, ref, err);
	if (st)
		return st;
	int64_t dims[4] = {x.dims[0], x.dims[1], x.dims[2] * (int64_t)scale[2], x.dims[3] * (int64_t)scale[3]};
	return imp_single(imp, ref, "up_sampling2d", 4, dims, perm, x.nonneg, err, "size: [%lld, %lld], interpolation: %s",
	                  (long long)scale[2], (long long)scale[3], interpolation);
}

/* Slice of a tensor over height and width with step 1: cropping2d. */
strata_status imp_map_slice(st_onnx_import *imp, strata_error *err)
{
	imp_value *xp = imp_tensor_in(imp, 0);
	if (!xp)
		return STRATA_ERR_UNSUPPORTED;
	imp_value x = *xp;
	int64_t starts[ST_ONNX_MAX_RANK], ends[ST_ONNX_MAX_RANK], axes[ST_ONNX_MAX_RANK], steps[ST_ONNX_MAX_RANK];
	size_t n;
	strata_status args = imp_slice_args(imp, x.rank, starts, ends, axes, steps, &n, err);
	if (args)
		return args;
	if (n == 1 && steps[0] == 1 && (x.rank != 4 || (axes[0] != 2 && axes[0] != 3 && axes[0] != -1 && axes[0] != -2))) {
		/* One axis that is no image's height or width: a crop of that axis. */
		int64_t a = axes[0] < 0 ? axes[0] + x.rank : axes[0];
		if (a < 0 || a >= x.rank)
			return imp_fail(imp, err, STRATA_ERR_INVALID, "axis %lld is outside rank %u", (long long)axes[0], x.rank);
		int64_t len = x.dims[a], s0 = starts[0] < 0 ? starts[0] + len : starts[0], e0 = ends[0] < 0 ? ends[0] + len : ends[0];
		s0 = s0 < 0 ? 0 : s0 > len ? len : s0;
		e0 = e0 < 0 ? 0 : e0 > len ? len : e0;
		if (e0 <= s0)
			return imp_refuse(imp, "an empty slice");
		return imp_crop_axis(imp, &x, (uint32_t)a, s0, e0, true, 0, err);
	}
	if (x.rank != 4)
		return imp_refuse(imp, "a slice of a %u-D value along several axes: Strata crops the height and width of "
		                  "images, or one axis", x.rank);
	int64_t crop[4] = {0, 0, 0, 0}, dims[4] = {x.dims[0], x.dims[1], x.dims[2], x.dims[3]};
	for (size_t i = 0; i < n; i++) {
		int64_t a = axes[i] < 0 ? axes[i] + 4 : axes[i];
		if (a != 2 && a != 3)
			return imp_refuse(imp, "a slice along axis %lld: Strata crops height and width", (long long)axes[i]);
		if (steps[i] != 1)
			return imp_refuse(imp, "a step of %lld (Strata crops with step 1)", (long long)steps[i]);
		int64_t len = x.dims[a], s = starts[i] < 0 ? starts[i] + len : starts[i], e = ends[i] < 0 ? ends[i] + len : ends[i];
		s = s < 0 ? 0 : s > len ? len : s;
		e = e < 0 ? 0 : e > len ? len : e;
		if (e <= s)
			return imp_refuse(imp, "an empty slice");
		crop[2 * (a - 2)] = s;
		crop[2 * (a - 2) + 1] = len - e;
		dims[a] = e - s;
	}
	uint32_t perm[4];
	imp_perm_channels_last(perm, 4);
	char ref[IMP_NAME];
	strata_status st = imp_as(imp, &x, perm, ref, err);
	if (st)
		return st;
	return imp_single(imp, ref, "cropping2d", 4, dims, perm, x.nonneg, err, "cropping: [%lld, %lld, %lld, %lld]",
	                  (long long)crop[0], (long long)crop[1], (long long)crop[2], (long long)crop[3]);
}

/* LayerNormalization over the last axis (opset 17): layer_normalization. */
strata_status imp_map_layer_norm(st_onnx_import *imp, strata_error *err)
{
	imp_value *xp = imp_tensor_in(imp, 0);
	if (!xp)
		return STRATA_ERR_UNSUPPORTED;
	imp_value x = *xp;
	int64_t axis = st_onnx_attr_int(imp->node, "axis", -1);
	if (axis < 0)
		axis += x.rank;
	if (axis != (int64_t)x.rank - 1)
		return imp_refuse(imp, "normalization over axes %lld to %u (Strata normalizes the last axis)", (long long)axis,
		                  x.rank - 1);
	for (size_t i = 1; i < imp->node->n_output; i++)
		if (imp->node->output[i] && imp->node->output[i][0] && imp_readers(imp, imp->node->output[i]))
			return imp_refuse(imp, "its Mean or InvStdDev output is read");
	imp_value *sv = imp_in(imp, 1), *bv = imp_in(imp, 2);
	int64_t C = x.dims[axis];
	if (!sv || sv->state != IMP_CONST || (bv && bv->state != IMP_CONST) || (int64_t)sv->c.count != C ||
	    (bv && (int64_t)bv->c.count != C))
		return imp_refuse(imp, "a scale or bias that is not a constant of the axis' size");
	char ref[IMP_NAME];
	strata_status st = imp_as_onnx(imp, &x, ref, err);
	if (st)
		return st;
	const char *in = ref;
	imp_layer *l;
	if ((st = imp_add_layer(imp, imp_hint(imp), "layer_normalization", &in, 1, &l, err, "epsilon: %.9g, center: %s",
	                        st_onnx_attr_float(imp->node, "epsilon", 1e-5f), bv ? "true" : "false")))
		return st;
	float *g = floats_of_const(&sv->c), *b = bv ? floats_of_const(&bv->c) : NULL;
	strata_shape s = {.rank = 1, .dims = {C}};
	if (!g || (bv && !b)) {
		free(g);
		free(b);
		return imp_fail(imp, err, STRATA_ERR_NO_MEMORY, "out of memory");
	}
	if ((st = imp_weight_add(l, &s, g, err)) || (b && (st = imp_weight_add(l, &s, b, err))))
		return st;
	uint32_t id[ST_ONNX_MAX_RANK];
	imp_perm_identity(id, x.rank);
	return imp_set_layer(imp, 0, l, x.rank, x.dims, id, NULL, err);
}

/* ReduceMean and ReduceMax over the spatial axes of an image (global pooling) or the steps of a
 * sequence (global 1-D pooling). */
static strata_status reduce(st_onnx_import *imp, strata_error *err, bool max)
{
	imp_value *xp = imp_tensor_in(imp, 0);
	if (!xp)
		return STRATA_ERR_UNSUPPORTED;
	imp_value x = *xp;
	const int64_t *axes;
	size_t n = st_onnx_attr_ints(imp->node, "axes", &axes);
	bool keep = st_onnx_attr_int(imp->node, "keepdims", 1) != 0;
	bool on[ST_ONNX_MAX_RANK] = {false};
	for (size_t i = 0; i < n; i++) {
		int64_t a = axes[i] < 0 ? axes[i] + x.rank : axes[i];
		if (a < 0 || a >= x.rank)
			return imp_fail(imp, err, STRATA_ERR_INVALID, "axis %lld is outside rank %u", (long long)axes[i], x.rank);
		on[a] = true;
	}
	const char *type;
	uint32_t perm[ST_ONNX_MAX_RANK];
	int64_t dims[ST_ONNX_MAX_RANK];
	uint32_t rank;
	if (x.rank == 4 && n == 2 && on[2] && on[3]) {
		type = max ? "global_max_pooling2d" : "global_average_pooling2d";
		imp_perm_channels_last(perm, 4);
		rank = keep ? 4 : 2;
		int64_t d[4] = {x.dims[0], x.dims[1], 1, 1};
		memcpy(dims, d, sizeof(d));
	} else if (x.rank == 3 && n == 1 && !keep && !x.flat_rank && x.perm[0] == 0 && on[x.perm[1]]) {
		/* The steps are Strata's axis 1, whatever ONNX calls them. */
		type = max ? "global_max_pooling1d" : "global_average_pooling1d";
		memcpy(perm, x.perm, sizeof(perm));
		rank = 2;
		dims[0] = x.dims[0];
		dims[1] = x.dims[x.perm[2]];
	} else {
		return imp_refuse(imp, "a reduction that is not a global pooling (height and width of an image, or the "
		                  "steps of a sequence)");
	}
	char ref[IMP_NAME];
	strata_status st = x.rank == 4 ? imp_as(imp, &x, perm, ref, err) : (snprintf(ref, sizeof(ref), "%s", x.ref), 0);
	if (st)
		return st;
	uint32_t out_perm[ST_ONNX_MAX_RANK];
	if (rank == 4)
		memcpy(out_perm, perm, sizeof(out_perm));
	else
		imp_perm_identity(out_perm, 2);
	return imp_single(imp, ref, type, rank, dims, out_perm, x.nonneg, err, x.rank == 4 ? "keepdims: %s" : "%s",
	                  x.rank == 4 ? (keep ? "true" : "false") : "");
}

strata_status imp_map_reduce_mean(st_onnx_import *imp, strata_error *err)
{
	return reduce(imp, err, false);
}

strata_status imp_map_reduce_max(st_onnx_import *imp, strata_error *err)
{
	return reduce(imp, err, true);
}
