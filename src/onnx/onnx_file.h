/* An ONNX model file read into memory: the protobuf decoded by protobuf-c (C generated at build
 * time by protoc-c from the onnx.proto of Debian's libonnx-dev), checked before anything reads
 * it, and the helpers that read its tensors and node attributes. Tensors become host arrays of
 * doubles (one form for float weights and int64 shapes alike: every float32 and every int64 a
 * shape holds is exact in a double), external data is read only from inside the model's folder. */
#ifndef ST_ONNX_FILE_H
#define ST_ONNX_FILE_H

#include <stdbool.h>
#include <stdint.h>

#include <strata/strata.h>

#include "onnx.pb-c.h"

/* The largest rank of a tensor Strata reads from ONNX (batch included); ONNX's own limit is none. */
#define ST_ONNX_MAX_RANK 8
/* The most elements one tensor of the file may hold (4 GiB of floats). */
#define ST_ONNX_MAX_ELEMS (UINT64_C(1) << 30)

typedef struct st_onnx_file {
	Onnx__ModelProto *model;
	char *path;   /* as given */
	char *folder; /* the real path of the folder holding it: external data must lie inside */
	int64_t opset; /* of the default domain ("" or "ai.onnx") */
} st_onnx_file;

/* A constant: dims and values (row-major, as ONNX stores them). */
typedef struct st_onnx_const {
	uint32_t rank;
	int64_t dims[ST_ONNX_MAX_RANK];
	uint64_t count;
	int32_t data_type; /* ONNX's: 1 float, 7 int64, ... */
	double *v;
} st_onnx_const;

/* Reads and decodes `path`, refusing a file that is not a model, has no graph, or imports the
 * default domain at an opset other than 6 to 17 (the issue asks for 9 to 17; the backend tests'
 * pytorch-converted models are opset 6, whose operators Strata maps as well). */
strata_status st_onnx_open(const char *path, st_onnx_file **out, strata_error *err);
void st_onnx_close(st_onnx_file *f);

/* Decodes a TensorProto (an initializer, a Constant's value, a test's input_0.pb) into *out
 * (freed with st_onnx_const_free). Float, double, the integer types and bool are read; `what`
 * names the tensor in messages. External data is read relative to `folder` (NULL: refused). */
strata_status st_onnx_tensor(const Onnx__TensorProto *t, const char *folder, const char *what, st_onnx_const *out,
                             strata_error *err);
void st_onnx_const_free(st_onnx_const *c);
/* Reads a serialized TensorProto file (the backend tests' input_N.pb and output_N.pb). */
strata_status st_onnx_read_tensor_file(const char *path, st_onnx_const *out, strata_error *err);

/* Attributes of a node: NULL when absent. */
const Onnx__AttributeProto *st_onnx_attr(const Onnx__NodeProto *n, const char *name);
int64_t st_onnx_attr_int(const Onnx__NodeProto *n, const char *name, int64_t fallback);
float st_onnx_attr_float(const Onnx__NodeProto *n, const char *name, float fallback);
/* The string attribute, or `fallback`; the bytes are copied into buf (truncated to size). */
const char *st_onnx_attr_string(const Onnx__NodeProto *n, const char *name, const char *fallback, char *buf,
                                size_t size);
/* INTS attribute: its count (0 when absent) and a pointer to its values. */
size_t st_onnx_attr_ints(const Onnx__NodeProto *n, const char *name, const int64_t **values);
size_t st_onnx_attr_floats(const Onnx__NodeProto *n, const char *name, const float **values);

/* "Conv 'conv1'" or "Conv (node 3)" for messages. */
void st_onnx_node_label(const Onnx__NodeProto *n, size_t index, char *buf, size_t size);

#endif
