/* The Open Inference Protocol (KServe v2, Triton's HTTP/REST) as `strata serve` speaks it, without
 * any HTTP: an inference request's body (JSON, or JSON then raw tensors with Triton's binary
 * tensor data extension) checked against a model's inputs and turned into float batches, and the
 * response written back the same two ways; a model's metadata. JSON is jansson's (strict RFC 8259:
 * no NaN or Infinity literals, duplicate keys refused, line and column in its errors).
 *
 * Every refusal is a 400 with a message that names the field at fault ("inputs[0].shape: ..."). */
#ifndef ST_SERVE_PROTOCOL_H
#define ST_SERVE_PROTOCOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <strata/strata.h>

/* The most inputs or outputs of a served model. */
#define SV_MAX_IO 8
/* The most floats one request may carry (1 GiB of float32): a bound on what a body asks the
 * server to allocate, whatever the body size limit. */
#define SV_MAX_ELEMENTS ((uint64_t)1 << 28)

typedef enum sv_dtype { SV_FP32 = 0, SV_UINT8 = 1, SV_INT32 = 2 } sv_dtype;

/* "FP32", "UINT8", "INT32". */
const char *sv_dtype_name(sv_dtype t);

/* A model input or output: its name and a sample's shape (the batch axis not included). */
typedef struct sv_io {
	char name[128];
	uint32_t rank;
	int64_t dims[STRATA_MAX_RANK];
	bool ids; /* an input of int32 ids: INT32 (or UINT8) data, taken as they are */
} sv_io;

/* Values in one sample of `io`. */
uint64_t sv_io_elements(const sv_io *io);

typedef struct sv_model_info {
	const char *name;
	const char *version; /* "1" */
	uint32_t n_inputs, n_outputs;
	sv_io inputs[SV_MAX_IO], outputs[SV_MAX_IO];
	/* UINT8 data of a float input is multiplied by this (the model file's data scale, 1/255 for
	 * images; 1 when it has none), as `strata predict` reads pixels. */
	float uint8_scale;
} sv_model_info;

/* A parsed inference request: `batch` samples of every model input (floats, in the model's
 * input order, ids as floats), and what to return. */
typedef struct sv_request {
	char *id; /* the request's "id", echoed; NULL when absent */
	uint32_t batch;
	float *inputs[SV_MAX_IO];
	bool want[SV_MAX_IO];   /* outputs to return (all of them when the request names none) */
	bool binary[SV_MAX_IO]; /* returned as raw data after the JSON */
} sv_request;

/* Parses `len` bytes of body, of which the first `json_len` are the JSON header (json_len == len:
 * no binary part). 0 and *out filled, or the HTTP status (400) with `msg` saying what is wrong
 * where. The request is freed with sv_request_free in either case. */
int sv_request_parse(const sv_model_info *m, const char *body, size_t len, size_t json_len, sv_request *out,
                     char *msg, size_t msg_size);
void sv_request_free(sv_request *r);

/* The response to `r`: outputs[k] holds r->batch samples of output k (NULL where not wanted).
 * *body (malloc'd) gets *len bytes: *json_len of JSON, then the binary outputs in order. 0, or
 * 500 when out of memory. */
int sv_response_write(const sv_model_info *m, const sv_request *r, float *const *outputs, char **body, size_t *len,
                      size_t *json_len);

/* GET /v2/models/NAME: name, versions, platform, inputs and outputs with datatypes and shapes
 * (-1 for the batch). malloc'd JSON, NULL when out of memory. */
char *sv_metadata_json(const sv_model_info *m);

/* {"error": MESSAGE}: malloc'd, NULL when out of memory. */
char *sv_error_json(const char *message);

#endif
