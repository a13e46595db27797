/* The operator table: which mapper takes each ONNX operator (the mappers are in
 * import_elementwise.c, import_arith.c, import_conv.c, import_dense.c, import_shape.c and fold.c). */
#include <string.h>

#include "onnx/import.h"
#include "onnx/import_ops.h"

/* ---- The table ----------------------------------------------------------------------------- */

typedef struct op_entry {
	const char *op;
	imp_mapper map;
} op_entry;

static const op_entry table[] = {
	{"Relu", imp_map_relu},
	{"Sigmoid", imp_map_sigmoid},
	{"Tanh", imp_map_tanh},
	{"Softplus", imp_map_softplus},
	{"Softsign", imp_map_softsign},
	{"Exp", imp_map_exp},
	{"HardSwish", imp_map_hard_swish},
	{"LeakyRelu", imp_map_leaky_relu},
	{"Elu", imp_map_elu},
	{"Selu", imp_map_selu},
	{"HardSigmoid", imp_map_hard_sigmoid},
	{"Clip", imp_map_clip},
	{"Softmax", imp_map_softmax},
	{"LogSoftmax", imp_map_log_softmax},
	{"Identity", imp_map_identity},
	{"Dropout", imp_map_dropout},
	{"Add", imp_map_add},
	{"Sub", imp_map_sub},
	{"Mul", imp_map_mul},
	{"Max", imp_map_max},
	{"Min", imp_map_min},
	{"Sum", imp_map_add},
	{"Mean", imp_map_mean},
	{"Conv", imp_map_conv},
	{"MaxPool", imp_map_max_pool},
	{"AveragePool", imp_map_average_pool},
	{"GlobalAveragePool", imp_map_global_average_pool},
	{"GlobalMaxPool", imp_map_global_max_pool},
	{"BatchNormalization", imp_map_batch_norm},
	{"Pad", imp_map_pad},
	{"Gemm", imp_map_gemm},
	{"MatMul", imp_map_matmul},
	{"Flatten", imp_map_flatten},
	{"Reshape", imp_map_reshape},
	{"Transpose", imp_map_transpose},
	{"Concat", imp_map_concat},
	{"Squeeze", imp_map_squeeze},
	{"Unsqueeze", imp_map_unsqueeze},
	{"Tile", imp_map_tile},
	{"Split", imp_map_split},
	{"Shape", imp_map_shape},
	{"ConvTranspose", imp_map_conv_transpose},
	{"Resize", imp_map_resize},
	{"Upsample", imp_map_resize},
	{"PRelu", imp_map_prelu},
	{"Div", imp_map_div},
	{"Neg", imp_map_neg},
	{"Abs", imp_map_abs},
	{"Slice", imp_map_slice},
	{"ReduceMean", imp_map_reduce_mean},
	{"ReduceMax", imp_map_reduce_max},
	{"LayerNormalization", imp_map_layer_norm},
	{"Gather", imp_map_gather},
	{"LSTM", imp_map_lstm},
	{"GRU", imp_map_gru},
	{"RNN", imp_map_rnn},
};

imp_mapper imp_mapper_for(const char *op)
{
	for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++)
		if (!strcmp(table[i].op, op))
			return table[i].map;
	return NULL;
}
