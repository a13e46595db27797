/* The ONNX importer's working state, shared by the walk (import.c), the operator mappers
 * (import_ops_*.c) and constant folding (fold.c).
 *
 * Layouts. ONNX tensors are channels-first (N, C, spatial...); Strata's are channels-last. Every
 * tensor value remembers how Strata stores it: `perm[k]` is the ONNX axis at Strata's position k
 * (perm[0] the batch). Operators that only look at elements (activations, element-wise merges)
 * keep whatever layout their input has; operators with a channel axis (Conv, pooling,
 * BatchNormalization) want channels-last and get a `permute` layer in front when a value is
 * stored otherwise; the rest (Reshape, a graph output) want ONNX's own order. A Flatten of a
 * channels-last feature map is a Strata `flatten` whose features are in channels-last order:
 * the value keeps where they came from (`flat_*`), so that a Gemm or MatMul reading it takes its
 * weight rows in that order (no layer at all), and anything else that needs ONNX's order gets a
 * reshape, permute, reshape first. */
#ifndef ST_ONNX_IMPORT_H
#define ST_ONNX_IMPORT_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include <strata/strata.h>

#include "onnx/onnx_file.h"

enum imp_state { IMP_UNDEFINED = 0, IMP_CONST, IMP_TENSOR, IMP_REFUSED };

#define IMP_NAME 160

typedef struct imp_value {
	char *name; /* ONNX's */
	enum imp_state state;
	st_onnx_const c; /* IMP_CONST */
	/* IMP_TENSOR: the Strata value (a model input or a layer) that holds it, its ONNX shape
	 * (batch included; the batch's size as the file gives it, -1 when symbolic) and layout. */
	char ref[IMP_NAME];
	uint32_t rank;
	int64_t dims[ST_ONNX_MAX_RANK];
	uint32_t perm[ST_ONNX_MAX_RANK];
	bool ids; /* int32 ids (an integer model input) */
	bool nonneg; /* never negative (a ReLU's output): zero padding is then as good as -inf for max pooling */
	int64_t layer; /* the index of the layer that makes it in st_onnx_import.layers, or -1 */
	/* A Flatten of a tensor stored in another order: that tensor's rank, ONNX dims and layout. */
	uint32_t flat_rank;
	int64_t flat_dims[ST_ONNX_MAX_RANK];
	uint32_t flat_perm[ST_ONNX_MAX_RANK];
} imp_value;

typedef struct imp_weight {
	strata_shape shape; /* Strata's (Keras') layout */
	float *data;
} imp_weight;

#define IMP_MAX_WEIGHTS 6

typedef struct imp_layer {
	char name[IMP_NAME];
	char *yaml;   /* the layer's flow mapping, without braces' surroundings: "name: a, type: b, ..." */
	char *source; /* the ONNX node it came from (its name, or its op type and index) */
	uint32_t n_weights;
	imp_weight weights[IMP_MAX_WEIGHTS];
} imp_layer;

typedef struct imp_io {
	char name[IMP_NAME]; /* ONNX's */
	char ref[IMP_NAME];  /* Strata's */
	uint32_t rank;
	int64_t dims[ST_ONNX_MAX_RANK];
	uint32_t perm[ST_ONNX_MAX_RANK];
	bool ids;
} imp_io;

typedef struct st_onnx_import {
	st_onnx_file *file;
	imp_value *values;
	size_t n_values, cap_values;
	imp_layer *layers;
	size_t n_layers, cap_layers;
	imp_io *inputs;
	size_t n_inputs;
	imp_io *outputs;
	size_t n_outputs;
	/* The nodes refused, one line each, all of them before giving up. */
	char *refused;
	size_t refused_len, n_refused;
	/* Nodes a pattern already took (gelu's Div, Erf, Add, Mul, Mul): the walk skips them. */
	bool *done;
	/* The node being mapped, for messages and for the `source` of the layers it makes. */
	const Onnx__NodeProto *node;
	size_t node_index;
	char label[IMP_NAME + 64];
} st_onnx_import;

/* Returned by a mapper that cannot map its node: the walk lists it (with `why`) and goes on. */
strata_status imp_refuse(st_onnx_import *imp, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* A hard error about the node being mapped ("Conv 'c1': ..."). */
strata_status imp_fail(st_onnx_import *imp, strata_error *err, strata_status status, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

imp_value *imp_find(st_onnx_import *imp, const char *name);
/* A new value named `name` (undefined yet); a name defined twice is an error of the file. */
strata_status imp_new_value(st_onnx_import *imp, const char *name, imp_value **out, strata_error *err);
/* A Strata name from `hint`: letters, digits and '_', not starting with a digit, unused so far. */
void imp_make_name(st_onnx_import *imp, const char *hint, char *out, size_t size);
/* Input i of the node being mapped: NULL when absent (an optional input left empty). */
imp_value *imp_in(st_onnx_import *imp, size_t i);
/* Output i's value, made if new; a name given twice is an error of the file. */
strata_status imp_out(st_onnx_import *imp, size_t i, imp_value **out, strata_error *err);

/* A constant's value as an integer (axes, sizes, pads): clamped to +-2^62, NaN as 0, so that
 * a hostile value never overflows the conversion; the callers' range checks then refuse it. */
int64_t imp_int(double v);

/* The name to make a layer's from: the node's, else its first output's. */
const char *imp_hint(const st_onnx_import *imp);

/* Defines output i as a constant (taking c's values) or as a tensor held by `ref`. */
strata_status imp_set_const(st_onnx_import *imp, size_t i, st_onnx_const *c, strata_error *err);
strata_status imp_set_tensor(st_onnx_import *imp, size_t i, const char *ref, uint32_t rank, const int64_t *dims,
                             const uint32_t *perm, strata_error *err);
/* Output i as the output of `layer` (the last one made), with that layout; *out the value. */
strata_status imp_set_layer(st_onnx_import *imp, size_t i, const imp_layer *layer, uint32_t rank, const int64_t *dims,
                            const uint32_t *perm, imp_value **out, strata_error *err);
/* dst keeps src's flattening (flat_rank, flat_dims, flat_perm): an element-wise layer's output
 * holds its input's features in the same order. */
void imp_copy_flat(imp_value *dst, const imp_value *src);
/* Output i as the same tensor as `v` (Identity, an inference Dropout, a Transpose's new layout). */
strata_status imp_alias(st_onnx_import *imp, size_t i, const imp_value *v, imp_value **out, strata_error *err);
/* How many nodes (and graph outputs) read the value named `name`. */
size_t imp_readers(const st_onnx_import *imp, const char *name);
/* The node that is the only reader of `name` (and no graph output is), or NULL. */
const Onnx__NodeProto *imp_sole_reader(const st_onnx_import *imp, const char *name, size_t *index);
/* A new value named `name`, the same tensor as `v`. */
strata_status imp_alias_named(st_onnx_import *imp, const char *name, const imp_value *v, strata_error *err);
/* The order of a flattened value's features: Strata's feature j is ONNX's feature order[j]. */
void imp_flat_order(const imp_value *v, uint64_t *order);

/* A new layer from the node being mapped: `fields` is the rest of its flow mapping after name,
 * type and inputs ("filters: 32, kernel_size: [3, 3]"); its name is made from `hint` and
 * returned in layer->name. */
strata_status imp_add_layer(st_onnx_import *imp, const char *hint, const char *type, const char *const *inputs,
                        size_t n_inputs, imp_layer **out, strata_error *err, const char *fields_fmt, ...)
	__attribute__((format(printf, 8, 9)));
/* The usual case: one layer of `type` reading `ref`, named from the node, its output the node's
 * output 0 with the given ONNX dims and layout. */
strata_status imp_single(st_onnx_import *imp, const char *ref, const char *type, uint32_t rank, const int64_t *dims,
                         const uint32_t *perm, bool nonneg, strata_error *err, const char *fields_fmt, ...)
	__attribute__((format(printf, 9, 10)));
/* Adds a weight (taking `data`, allocated with malloc) to the layer, in the plugin's order. */
strata_status imp_weight_add(imp_layer *layer, const strata_shape *shape, float *data, strata_error *err);

/* Slice's starts, ends, axes and steps (attributes before opset 10, constant inputs since), at
 * most `rank` of each, in *n. */
strata_status imp_slice_args(st_onnx_import *imp, uint32_t rank, int64_t *starts, int64_t *ends, int64_t *axes,
                             int64_t *steps, size_t *n, strata_error *err);

/* The axes of Squeeze or Unsqueeze: an attribute before opset 13, a constant input since; false
 * when they are not a constant of at most ST_ONNX_MAX_RANK values. */
bool imp_axes(st_onnx_import *imp, int64_t *axes, size_t *n);

/* Layouts. */
void imp_perm_identity(uint32_t *perm, uint32_t rank);
void imp_perm_channels_last(uint32_t *perm, uint32_t rank);
bool imp_perm_equal(const uint32_t *a, const uint32_t *b, uint32_t rank);
/* The Strata value that holds `v` stored as `perm` (a permute layer when it is stored otherwise,
 * the features of a flattened feature map put in ONNX's order first); written to ref. */
strata_status imp_as(st_onnx_import *imp, imp_value *v, const uint32_t *perm, char *ref, strata_error *err);
/* As imp_as with ONNX's own order. */
strata_status imp_as_onnx(st_onnx_import *imp, imp_value *v, char *ref, strata_error *err);
/* Output `out` of the node: x's values start..end-1 along ONNX axis `axis` (not the batch), the
 * axis kept (of end - start) or dropped (for one index): a reshape to (before, axis, after), a
 * cropping2d, a reshape to the result (import_shape.c). */
strata_status imp_crop_axis(st_onnx_import *imp, imp_value *x, uint32_t axis, int64_t start, int64_t end, bool keep,
                            size_t out, strata_error *err);
/* A flattened value (a copy the caller owns) put in ONNX's feature order, its ref updated. */
strata_status imp_unflatten(st_onnx_import *imp, imp_value *v, strata_error *err);
/* Strata's per-sample shape of v: its ONNX dims in stored order without the batch. */
void imp_strata_dims(const imp_value *v, int64_t *dims);
/* "[28, 28, 1]" */
void imp_dims_text(const int64_t *dims, uint32_t n, char *buf, size_t size);

/* Constant folding (fold.c): computes the node on constants when every input is one and the
 * operator is one exporters use for shapes; false when it is not such an operator. */
bool imp_foldable(const char *op);
strata_status imp_fold(st_onnx_import *imp, strata_error *err);

/* The operator table (import_ops.c): maps the node being mapped, or refuses it. */
typedef strata_status (*imp_mapper)(st_onnx_import *imp, strata_error *err);
imp_mapper imp_mapper_for(const char *op);

#endif
