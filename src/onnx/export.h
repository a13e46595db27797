/* ONNX export's working state (export.c) shared with the per-layer emitters (export_layers.c).
 *
 * Every Strata value (a model input or a layer's output) becomes an ONNX tensor in one of two
 * layouts: Strata's own (channels-last, "cl") or channels-first ("cf": the last axis moved after
 * the batch), the one ONNX's Conv, pooling, BatchNormalization, Pad and Resize read. A value keeps
 * the name of each form made so far; the other form costs a Transpose node, made once. Images
 * (height, width, channels) enter and leave the graph channels-first, as ONNX models do; every
 * other input and output keeps Strata's axis order. */
#ifndef ST_ONNX_EXPORT_H
#define ST_ONNX_EXPORT_H

#include <stdbool.h>
#include <stdint.h>

#include <strata/strata.h>

#include "exec/checkpoint.h"
#include "model/model.h"
#include "onnx/onnx_file.h"

typedef struct ex_value {
	char *cl, *cf;    /* the tensor's name in each layout, NULL until made */
	strata_shape shape; /* Strata's per-sample shape */
	char *parts[3];   /* a recurrent layer with return_state: its output, state_h, state_c (cl) */
} ex_value;

typedef struct st_onnx_export {
	const strata_model *m;
	st_checkpoint_file *weights;
	const char *weights_path;
	Onnx__GraphProto *g;
	size_t cap_node, cap_init;
	ex_value *values; /* per Strata value: model inputs, then layers */
	unsigned counter;
	/* The layer being emitted, for names and messages. */
	const strata_layer *layer;
	char *refused;
	size_t refused_len, n_refused;
} st_onnx_export;

/* Messages: a layer Strata cannot export is listed (all of them before giving up). */
strata_status ex_refuse(st_onnx_export *ex, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* A fresh tensor name from the layer's name and `what`. */
char *ex_name(st_onnx_export *ex, const char *what);
/* Appends a node of `op` reading `inputs` (NULL entries are empty, optional inputs) and writing
 * `outputs` (names taken over). */
Onnx__NodeProto *ex_node(st_onnx_export *ex, const char *op, const char *const *inputs, size_t n_in,
                         char *const *outputs, size_t n_out);
bool ex_attr_int(Onnx__NodeProto *n, const char *name, int64_t v);
bool ex_attr_float(Onnx__NodeProto *n, const char *name, float v);
bool ex_attr_ints(Onnx__NodeProto *n, const char *name, const int64_t *v, size_t count);
bool ex_attr_string(Onnx__NodeProto *n, const char *name, const char *v);
bool ex_attr_strings(Onnx__NodeProto *n, const char *name, const char *const *v, size_t count);
/* Initializers: a float tensor (data copied) and an int64 one; the name is returned (owned by
 * the graph). */
const char *ex_init_float(st_onnx_export *ex, const char *what, const int64_t *dims, uint32_t rank, const float *data);
const char *ex_init_int64(st_onnx_export *ex, const char *what, const int64_t *v, size_t count);

/* Value `v` (a model input or n_inputs + a layer) in Strata's layout or channels-first. */
const char *ex_cl(st_onnx_export *ex, uint32_t v);
const char *ex_cf(st_onnx_export *ex, uint32_t v);
/* The layer being emitted made `name` in the given layout (`cf`) for its output (copied). */
strata_status ex_set_output(st_onnx_export *ex, const char *name, bool cf);
/* The layer's input i (a value index). */
uint32_t ex_input(const st_onnx_export *ex, uint32_t i);
/* A weight of the layer as floats (malloc'd, Keras' layout) with its shape; NULL after
 * refusing when the file lacks it. */
float *ex_weight(st_onnx_export *ex, const char *name, strata_shape *shape);
/* `x` through the activation `act` (Strata's name: relu, gelu, ...): a new tensor's name, or x
 * itself for linear; `channel_axis` is the ONNX axis of Strata's last axis (for softmax). */
const char *ex_activation(st_onnx_export *ex, const char *x, const char *act, int64_t channel_axis);
/* One-input and two-input nodes: the output's name (owned by the node), NULL when out of memory. */
const char *ex_unary(st_onnx_export *ex, const char *op, const char *x);
const char *ex_binary(st_onnx_export *ex, const char *op, const char *a, const char *b);

/* export_layers.c: emits the layer ex->layer; STRATA_ERR_UNSUPPORTED after ex_refuse. */
strata_status ex_emit_layer(st_onnx_export *ex, strata_error *err);

#endif
