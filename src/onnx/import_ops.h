/* The operator mappers of the ONNX importer, by family (import_ops.c holds the table). */
#ifndef ST_ONNX_IMPORT_OPS_H
#define ST_ONNX_IMPORT_OPS_H

#include "onnx/import.h"

/* import_values.c: input i as a tensor value; NULL (the node refused) when it is a constant or missing. */
imp_value *imp_tensor_in(st_onnx_import *imp, size_t i);
/* A layer of `type` (with `fields`) applied to input 0, the output in the input's layout. */
strata_status imp_unary(st_onnx_import *imp, strata_error *err, const char *type, const char *fields, bool nonneg);
/* Layers `types` (with `fields`) one after the other on input 0, in its layout; the last is the
 * node's output (non-negative when `nonneg`). */
strata_status imp_unary_chain(st_onnx_import *imp, strata_error *err, size_t n, const char *const *types,
                              const char *const *fields, bool nonneg);

/* import_elementwise.c */
strata_status imp_map_relu(st_onnx_import *imp, strata_error *err);
strata_status imp_map_sigmoid(st_onnx_import *imp, strata_error *err);
strata_status imp_map_tanh(st_onnx_import *imp, strata_error *err);
strata_status imp_map_softplus(st_onnx_import *imp, strata_error *err);
strata_status imp_map_softsign(st_onnx_import *imp, strata_error *err);
strata_status imp_map_exp(st_onnx_import *imp, strata_error *err);
strata_status imp_map_hard_swish(st_onnx_import *imp, strata_error *err);
strata_status imp_map_leaky_relu(st_onnx_import *imp, strata_error *err);
strata_status imp_map_elu(st_onnx_import *imp, strata_error *err);
strata_status imp_map_selu(st_onnx_import *imp, strata_error *err);
strata_status imp_map_hard_sigmoid(st_onnx_import *imp, strata_error *err);
strata_status imp_map_clip(st_onnx_import *imp, strata_error *err);
strata_status imp_map_softmax(st_onnx_import *imp, strata_error *err);
strata_status imp_map_log_softmax(st_onnx_import *imp, strata_error *err);
strata_status imp_map_identity(st_onnx_import *imp, strata_error *err);
strata_status imp_map_dropout(st_onnx_import *imp, strata_error *err);
strata_status imp_map_prelu(st_onnx_import *imp, strata_error *err);
strata_status imp_map_abs(st_onnx_import *imp, strata_error *err);
/* Div by sqrt(2) starting PyTorch's exact GELU: one gelu activation (*taken), else nothing. */
strata_status imp_gelu_from_div(st_onnx_import *imp, strata_error *err, bool *taken);

/* import_arith.c: Add, Sub, Mul, Div, Max, Min, Sum, Mean (broadcasting), Neg */
strata_status imp_map_add(st_onnx_import *imp, strata_error *err);
strata_status imp_map_sub(st_onnx_import *imp, strata_error *err);
strata_status imp_map_mul(st_onnx_import *imp, strata_error *err);
strata_status imp_map_div(st_onnx_import *imp, strata_error *err);
strata_status imp_map_max(st_onnx_import *imp, strata_error *err);
strata_status imp_map_min(st_onnx_import *imp, strata_error *err);
strata_status imp_map_mean(st_onnx_import *imp, strata_error *err);
strata_status imp_map_neg(st_onnx_import *imp, strata_error *err);

/* fold.c: Shape of a tensor or a constant, a constant */
strata_status imp_map_shape(st_onnx_import *imp, strata_error *err);

/* import_values.c: a constant's values as floats (malloc'd), for weights */
float *floats_of_const(const st_onnx_const *c);

/* import_conv.c */
strata_status imp_map_conv_transpose(st_onnx_import *imp, strata_error *err);
strata_status imp_map_resize(st_onnx_import *imp, strata_error *err);
strata_status imp_map_slice(st_onnx_import *imp, strata_error *err);
strata_status imp_map_layer_norm(st_onnx_import *imp, strata_error *err);
strata_status imp_map_reduce_mean(st_onnx_import *imp, strata_error *err);
strata_status imp_map_reduce_max(st_onnx_import *imp, strata_error *err);
strata_status imp_map_conv(st_onnx_import *imp, strata_error *err);
strata_status imp_map_max_pool(st_onnx_import *imp, strata_error *err);
strata_status imp_map_average_pool(st_onnx_import *imp, strata_error *err);
strata_status imp_map_global_average_pool(st_onnx_import *imp, strata_error *err);
strata_status imp_map_global_max_pool(st_onnx_import *imp, strata_error *err);
strata_status imp_map_batch_norm(st_onnx_import *imp, strata_error *err);
strata_status imp_map_pad(st_onnx_import *imp, strata_error *err);

/* import_dense.c */
strata_status imp_map_gemm(st_onnx_import *imp, strata_error *err);
strata_status imp_map_matmul(st_onnx_import *imp, strata_error *err);
strata_status imp_map_gather(st_onnx_import *imp, strata_error *err);

/* import_recurrent.c */
strata_status imp_map_lstm(st_onnx_import *imp, strata_error *err);
strata_status imp_map_gru(st_onnx_import *imp, strata_error *err);
strata_status imp_map_rnn(st_onnx_import *imp, strata_error *err);

/* import_shape.c */
strata_status imp_map_flatten(st_onnx_import *imp, strata_error *err);
strata_status imp_map_reshape(st_onnx_import *imp, strata_error *err);
strata_status imp_map_transpose(st_onnx_import *imp, strata_error *err);
strata_status imp_map_concat(st_onnx_import *imp, strata_error *err);
strata_status imp_map_squeeze(st_onnx_import *imp, strata_error *err);
strata_status imp_map_unsqueeze(st_onnx_import *imp, strata_error *err);
strata_status imp_map_tile(st_onnx_import *imp, strata_error *err);
strata_status imp_map_split(st_onnx_import *imp, strata_error *err);

#endif
