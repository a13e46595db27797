/* LSTM, GRU and RNN: Strata's lstm, gru and simple_rnn layers (Keras'), one per direction, a
 * bidirectional node's two joined by a concatenate. ONNX runs time first (X of (seq, batch,
 * features) with layout 0), Strata batch first: a value's layout already says where its batch is
 * (a Transpose of a batch-first tensor costs nothing, import_shape.c), so X is read as (batch,
 * seq, features) without a layer when it was made that way. Gates are reordered to Keras' (ONNX's
 * LSTM is i, o, f, c; Keras' i, f, c, o; GRU's z, r, h are the same in both) and the two biases
 * of ONNX summed where Keras has one (a GRU that applies its reset gate after the product keeps
 * both, as Keras' reset_after does). Outputs: Y (seq, directions, batch, hidden) and Y_h, Y_c
 * (directions, batch, hidden), each reshaped from Strata's (batch, seq, directions x hidden). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "onnx/import.h"
#include "onnx/import_ops.h"

typedef enum { KIND_RNN, KIND_LSTM, KIND_GRU } rnn_kind;

static const char *activation_name(const char *onnx)
{
	if (!strcmp(onnx, "Sigmoid"))
		return "sigmoid";
	if (!strcmp(onnx, "Tanh"))
		return "tanh";
	if (!strcmp(onnx, "Relu"))
		return "relu";
	return NULL;
}

/* The activations of direction d: f (gates) and g (candidate; h, LSTM's output, must be g). */
static strata_status activations(st_onnx_import *imp, rnn_kind kind, uint32_t d, const char **f, const char **g)
{
	const Onnx__AttributeProto *a = st_onnx_attr(imp->node, "activations");
	uint32_t per = kind == KIND_LSTM ? 3 : kind == KIND_GRU ? 2 : 1;
	if (!a || !a->n_strings) {
		*f = kind == KIND_RNN ? "tanh" : "sigmoid";
		*g = "tanh";
		return STRATA_OK;
	}
	if (a->n_strings < (d + 1) * per)
		return imp_refuse(imp, "%zu activations for %u per direction", a->n_strings, per);
	char names[3][32];
	for (uint32_t k = 0; k < per; k++) {
		const ProtobufCBinaryData *s = &a->strings[d * per + k];
		snprintf(names[k], sizeof(names[k]), "%.*s", (int)(s->len < 31 ? s->len : 31), (const char *)s->data);
	}
	const char *ff = activation_name(names[0]);
	const char *gg = per > 1 ? activation_name(names[1]) : ff;
	if (!ff || !gg || (per == 3 && strcmp(names[2], names[1])))
		return imp_refuse(imp, "activations %s%s%s%s%s: Strata maps Sigmoid, Tanh and Relu (LSTM's h as its g)", names[0],
		                  per > 1 ? ", " : "", per > 1 ? names[1] : "", per > 2 ? ", " : "", per > 2 ? names[2] : "");
	*f = kind == KIND_RNN ? "sigmoid" : ff;
	*g = kind == KIND_RNN ? ff : gg;
	return STRATA_OK;
}

/* Keras' gate for ONNX's gate k: LSTM i,o,f,c -> i,f,c,o. */
static int64_t keras_gate(rnn_kind kind, int64_t k)
{
	static const int64_t lstm[4] = {0, 3, 1, 2};
	return kind == KIND_LSTM ? lstm[k] : k;
}

/* One direction's weights into the layer: kernel (F, G*H), recurrent (H, G*H), bias. */
static strata_status direction_weights(st_onnx_import *imp, imp_layer *l, rnn_kind kind, uint32_t d, int64_t F,
                                       int64_t H, const st_onnx_const *W, const st_onnx_const *R,
                                       const st_onnx_const *B, bool reset_after, strata_error *err)
{
	int64_t G = kind == KIND_LSTM ? 4 : kind == KIND_GRU ? 3 : 1, GH = G * H;
	float *k = malloc((size_t)(F * GH) * sizeof(float) + 1), *r = malloc((size_t)(H * GH) * sizeof(float) + 1);
	float *b = calloc((size_t)(2 * GH) + 1, sizeof(float));
	if (!k || !r || !b) {
		free(k);
		free(r);
		free(b);
		return imp_fail(imp, err, STRATA_ERR_NO_MEMORY, "out of memory");
	}
	for (int64_t g = 0; g < G; g++) {
		int64_t kg = keras_gate(kind, g);
		for (int64_t u = 0; u < H; u++) {
			int64_t row = g * H + u, col = kg * H + u;
			for (int64_t f = 0; f < F; f++)
				k[f * GH + col] = (float)W->v[(d * GH + row) * F + f];
			for (int64_t h = 0; h < H; h++)
				r[h * GH + col] = (float)R->v[(d * GH + row) * H + h];
			double wb = B ? B->v[d * 2 * GH + row] : 0, rb = B ? B->v[d * 2 * GH + GH + row] : 0;
			if (reset_after) {
				b[col] = (float)wb;
				b[GH + col] = (float)rb;
			} else {
				b[col] = (float)(wb + rb);
			}
		}
	}
	strata_shape ks = {.rank = 2, .dims = {F, GH}}, rs = {.rank = 2, .dims = {H, GH}};
	strata_shape bs = reset_after ? (strata_shape){.rank = 2, .dims = {2, GH}} : (strata_shape){.rank = 1, .dims = {GH}};
	strata_status st = imp_weight_add(l, &ks, k, err);
	if (!st)
		st = imp_weight_add(l, &rs, r, err);
	else
		free(r);
	if (!st)
		st = imp_weight_add(l, &bs, b, err);
	else
		free(b);
	return st;
}

static bool is_zero_const(const imp_value *v)
{
	if (!v || v->state != IMP_CONST)
		return false;
	for (uint64_t i = 0; i < v->c.count; i++)
		if (v->c.v[i] != 0)
			return false;
	return true;
}

/* A reshape of `ref` to `dims` (per sample) for ONNX output `i`, stored as `perm`. */
static strata_status reshaped_output(st_onnx_import *imp, size_t i, const char *ref, uint32_t rank, const int64_t *dims,
                                     const uint32_t *perm, strata_error *err)
{
	int64_t stored[ST_ONNX_MAX_RANK];
	for (uint32_t k = 1; k < rank; k++)
		stored[k - 1] = dims[perm[k]];
	char text[96];
	imp_dims_text(stored, rank - 1, text, sizeof(text));
	imp_layer *l;
	strata_status st = imp_add_layer(imp, imp->node->output[i], "reshape", &ref, 1, &l, err, "target_shape: %s", text);
	if (st)
		return st;
	return imp_set_layer(imp, i, l, rank, dims, perm, NULL, err);
}

static bool output_read(st_onnx_import *imp, size_t i)
{
	const Onnx__NodeProto *n = imp->node;
	return i < n->n_output && n->output[i] && n->output[i][0] && imp_readers(imp, n->output[i]) > 0;
}

static strata_status recurrent(st_onnx_import *imp, strata_error *err, rnn_kind kind)
{
	imp_value *xp = imp_tensor_in(imp, 0);
	if (!xp)
		return STRATA_ERR_UNSUPPORTED;
	imp_value x = *xp;
	const imp_value *wv = imp_in(imp, 1), *rv = imp_in(imp, 2), *bv = imp_in(imp, 3);
	if (!wv || !rv || wv->state != IMP_CONST || rv->state != IMP_CONST || (bv && bv->state != IMP_CONST))
		return imp_refuse(imp, "W, R or B that are not constants");
	if (imp_in(imp, 4) && imp_in(imp, 4)->state != IMP_CONST)
		return imp_refuse(imp, "sequence_lens that are not constants (Strata runs every step)");
	if (imp_in(imp, 4)) {
		const imp_value *sl = imp_in(imp, 4);
		for (uint64_t i = 0; i < sl->c.count; i++)
			if (sl->c.v[i] != (double)x.dims[st_onnx_attr_int(imp->node, "layout", 0) ? 1 : 0])
				return imp_refuse(imp, "sequence_lens shorter than the sequence (Strata runs every step)");
	}
	for (size_t i = 5; i < imp->node->n_input && i < 7; i++)
		if (imp_in(imp, i) && !is_zero_const(imp_in(imp, i)))
			return imp_refuse(imp, "an initial state that is not zeros");
	if (kind == KIND_LSTM && imp_in(imp, 7))
		return imp_refuse(imp, "peepholes (P)");
	if (st_onnx_attr(imp->node, "clip"))
		return imp_refuse(imp, "clip (Strata does not clip the cell)");
	if (kind == KIND_LSTM && st_onnx_attr_int(imp->node, "input_forget", 0))
		return imp_refuse(imp, "input_forget 1");
	int64_t layout = st_onnx_attr_int(imp->node, "layout", 0);
	if (x.rank != 3)
		return imp_fail(imp, err, STRATA_ERR_INVALID, "X of rank %u: it is (seq, batch, features)", x.rank);
	/* Strata's (batch, seq, features): ONNX's axes (1, 0, 2), or (0, 1, 2) with layout 1. */
	uint32_t want[3] = {layout ? 0u : 1u, layout ? 1u : 0u, 2};
	if (x.perm[0] != want[0])
		return imp_refuse(imp, "X's batch axis is where Strata keeps its time steps (a time-first graph input of "
		                  "a model whose batch is not its first axis)");
	char xref[IMP_NAME];
	strata_status st = imp_as(imp, &x, want, xref, err);
	if (st)
		return st;
	char dir_buf[32];
	const char *dir = st_onnx_attr_string(imp->node, "direction", "forward", dir_buf, sizeof(dir_buf));
	uint32_t D = !strcmp(dir, "bidirectional") ? 2 : 1;
	if (D == 1 && strcmp(dir, "forward") && strcmp(dir, "reverse"))
		return imp_fail(imp, err, STRATA_ERR_INVALID, "direction '%s'", dir);
	int64_t G = kind == KIND_LSTM ? 4 : kind == KIND_GRU ? 3 : 1;
	int64_t T = x.dims[layout ? 1 : 0], N = x.dims[layout ? 0 : 1], F = x.dims[2];
	int64_t H = st_onnx_attr_int(imp->node, "hidden_size", wv->c.rank == 3 ? wv->c.dims[1] / G : 0);
	if (wv->c.rank != 3 || wv->c.dims[0] != D || wv->c.dims[1] != G * H || wv->c.dims[2] != F || rv->c.rank != 3 ||
	    rv->c.dims[0] != D || rv->c.dims[1] != G * H || rv->c.dims[2] != H ||
	    (bv && (int64_t)bv->c.count != D * 2 * G * H) || H < 1)
		return imp_fail(imp, err, STRATA_ERR_INVALID, "W, R or B do not have the shapes %u directions of %lld units "
		                "over %lld features need", D, (long long)H, (long long)F);
	bool reset_after = kind == KIND_GRU && st_onnx_attr_int(imp->node, "linear_before_reset", 0) != 0;
	bool want_y = output_read(imp, 0), want_h = output_read(imp, 1), want_c = kind == KIND_LSTM && output_read(imp, 2);
	bool states = want_c || (want_y && want_h);
	const char *type = kind == KIND_LSTM ? "lstm" : kind == KIND_GRU ? "gru" : "simple_rnn";
	char y_ref[2][IMP_NAME], h_ref[2][IMP_NAME], c_ref[2][IMP_NAME];
	for (uint32_t d = 0; d < D; d++) {
		const char *f = NULL, *g = NULL;
		if ((st = activations(imp, kind, d, &f, &g)))
			return st;
		bool backwards = D == 2 ? d == 1 : !strcmp(dir, "reverse");
		char fields[400], acts[96];
		if (kind == KIND_RNN)
			snprintf(acts, sizeof(acts), "activation: %s", g);
		else
			snprintf(acts, sizeof(acts), "activation: %s, recurrent_activation: %s", g, f);
		snprintf(fields, sizeof(fields), "units: %lld, %s, return_sequences: %s, return_state: %s%s%s",
		         (long long)H, acts, want_y ? "true" : "false", states ? "true" : "false",
		         backwards ? ", go_backwards: true, output_in_input_order: true" : "",
		         kind == KIND_GRU ? (reset_after ? ", reset_after: true" : ", reset_after: false") : "");
		char hint[IMP_NAME + 16];
		snprintf(hint, sizeof(hint), "%s%s", imp->node->name && imp->node->name[0] ? imp->node->name : imp->node->output[0],
		         D == 2 ? (d ? "_backward" : "_forward") : "");
		const char *in = xref;
		imp_layer *l;
		if ((st = imp_add_layer(imp, hint, type, &in, 1, &l, err, "%s", fields)))
			return st;
		if ((st = direction_weights(imp, l, kind, d, F, H, &wv->c, &rv->c, bv ? &bv->c : NULL, reset_after, err)))
			return st;
		/* With return_state the loader names the parts NAME_output, NAME_state_h, NAME_state_c. */
		snprintf(y_ref[d], IMP_NAME, "%.140s%s", l->name, states ? "_output" : "");
		snprintf(h_ref[d], IMP_NAME, "%.140s%s", l->name, states ? "_state_h" : "");
		snprintf(c_ref[d], IMP_NAME, "%.140s_state_c", l->name);
	}
	/* Both directions side by side on the last axis, as ONNX's directions axis before hidden. */
	char joined[3][IMP_NAME];
	char (*refs[3])[IMP_NAME] = {y_ref, h_ref, c_ref};
	bool wanted[3] = {want_y, want_h, want_c};
	for (int o = 0; o < 3; o++) {
		if (!wanted[o])
			continue;
		if (D == 1) {
			snprintf(joined[o], IMP_NAME, "%s", refs[o][0]);
			continue;
		}
		const char *ins[2] = {refs[o][0], refs[o][1]};
		char hint[IMP_NAME + 8];
		snprintf(hint, sizeof(hint), "%s_both", imp->node->output[o]);
		imp_layer *l;
		if ((st = imp_add_layer(imp, hint, "concatenate", ins, 2, &l, err, "axis: -1")))
			return st;
		snprintf(joined[o], IMP_NAME, "%s", l->name);
	}
	if (want_y) {
		int64_t dims[4] = {T, D, N, H};
		uint32_t perm[4] = {2, 0, 1, 3};
		if (layout) {
			/* layout 1: Y is (batch, seq, directions, hidden). */
			int64_t d1[4] = {N, T, D, H};
			uint32_t p1[4] = {0, 1, 2, 3};
			memcpy(dims, d1, sizeof(dims));
			memcpy(perm, p1, sizeof(perm));
		}
		if ((st = reshaped_output(imp, 0, joined[0], 4, dims, perm, err)))
			return st;
	}
	for (int o = 1; o < 3; o++) {
		if (!wanted[o])
			continue;
		int64_t dims[3] = {D, N, H};
		uint32_t perm[3] = {1, 0, 2};
		if (layout) {
			int64_t d1[3] = {N, D, H};
			uint32_t p1[3] = {0, 1, 2};
			memcpy(dims, d1, sizeof(dims));
			memcpy(perm, p1, sizeof(perm));
		}
		if ((st = reshaped_output(imp, (size_t)o, joined[o], 3, dims, perm, err)))
			return st;
	}
	return STRATA_OK;
}

strata_status imp_map_lstm(st_onnx_import *imp, strata_error *err)
{
	return recurrent(imp, err, KIND_LSTM);
}

strata_status imp_map_gru(st_onnx_import *imp, strata_error *err)
{
	return recurrent(imp, err, KIND_GRU);
}

strata_status imp_map_rnn(st_onnx_import *imp, strata_error *err)
{
	return recurrent(imp, err, KIND_RNN);
}
