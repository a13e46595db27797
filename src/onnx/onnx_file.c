/* Reading ONNX files (onnx_file.h). protobuf-c decodes the bytes and refuses malformed or
 * truncated ones; what it cannot know (dims that lie about their data, a data type Strata does
 * not read, external data outside the model's folder) is checked here before a value is used. */
#include "onnx/onnx_file.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/error.h"
#include "base/fsutil.h"

/* protobuf's own limit on a message is 2 GiB. */
#define MAX_FILE_BYTES (UINT64_C(2) << 30)
#define MIN_OPSET 6
#define MAX_OPSET 17

static strata_status decode_failed(const char *path, const char *what, strata_error *err)
{
	return st_fail(err, STRATA_ERR_PARSE, "%s: not a valid ONNX %s (the protobuf does not decode: truncated or "
	               "not ONNX)", path, what);
}

strata_status st_onnx_open(const char *path, st_onnx_file **out, strata_error *err)
{
	*out = NULL;
	char *data = NULL;
	size_t len = 0;
	strata_status st = st_read_file(path, "ONNX model", MAX_FILE_BYTES, &data, &len, err);
	if (st)
		return st;
	Onnx__ModelProto *m = onnx__model_proto__unpack(NULL, len, (const uint8_t *)data);
	free(data);
	if (!m)
		return decode_failed(path, "model", err);
	st_onnx_file *f = calloc(1, sizeof(*f));
	if (!f || !(f->path = strdup(path))) {
		onnx__model_proto__free_unpacked(m, NULL);
		free(f);
		return st_fail(err, STRATA_ERR_NO_MEMORY, "%s: out of memory", path);
	}
	f->model = m;
	/* The folder external data must lie in; none (external data refused) for a file without a
	 * real path, such as a memory file. */
	char *real = realpath(path, NULL);
	char *slash = real ? strrchr(real, '/') : NULL;
	if (slash)
		*(slash == real ? slash + 1 : slash) = '\0';
	f->folder = slash ? real : NULL;
	if (!slash)
		free(real);
	if (!m->graph) {
		st_onnx_close(f);
		return st_fail(err, STRATA_ERR_PARSE, "%s: the ONNX model has no graph", path);
	}
	f->opset = -1;
	for (size_t i = 0; i < m->n_opset_import; i++) {
		const Onnx__OperatorSetIdProto *o = m->opset_import[i];
		if (!o->domain || !o->domain[0] || !strcmp(o->domain, "ai.onnx"))
			f->opset = o->has_version ? o->version : 1;
	}
	if (f->opset < 0 && m->n_opset_import == 0)
		f->opset = 1; /* IR version 2 files, before opset_import: opset 1 */
	if (f->opset < 0) {
		st = st_fail(err, STRATA_ERR_UNSUPPORTED, "%s: the model imports no opset of ONNX's default domain (only "
		             "other domains' operators)", path);
		st_onnx_close(f);
		return st;
	}
	if (f->opset < MIN_OPSET || f->opset > MAX_OPSET) {
		st = st_fail(err, STRATA_ERR_UNSUPPORTED, "%s: the model imports ONNX opset %lld: Strata reads opsets %d to %d",
		             path, (long long)f->opset, MIN_OPSET, MAX_OPSET);
		st_onnx_close(f);
		return st;
	}
	*out = f;
	return STRATA_OK;
}

void st_onnx_close(st_onnx_file *f)
{
	if (!f)
		return;
	if (f->model)
		onnx__model_proto__free_unpacked(f->model, NULL);
	free(f->path);
	free(f->folder);
	free(f);
}

void st_onnx_const_free(st_onnx_const *c)
{
	if (c) {
		free(c->v);
		c->v = NULL;
	}
}

/* ---- Tensors ------------------------------------------------------------------------------- */

static int element_bytes(int32_t type)
{
	switch (type) {
	case ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT:
	case ONNX__TENSOR_PROTO__DATA_TYPE__INT32:
	case ONNX__TENSOR_PROTO__DATA_TYPE__UINT32:
		return 4;
	case ONNX__TENSOR_PROTO__DATA_TYPE__DOUBLE:
	case ONNX__TENSOR_PROTO__DATA_TYPE__INT64:
	case ONNX__TENSOR_PROTO__DATA_TYPE__UINT64:
		return 8;
	case ONNX__TENSOR_PROTO__DATA_TYPE__INT16:
	case ONNX__TENSOR_PROTO__DATA_TYPE__UINT16:
		return 2;
	case ONNX__TENSOR_PROTO__DATA_TYPE__INT8:
	case ONNX__TENSOR_PROTO__DATA_TYPE__UINT8:
	case ONNX__TENSOR_PROTO__DATA_TYPE__BOOL:
		return 1;
	default:
		return 0;
	}
}

static const char *type_name(int32_t type)
{
	static const char *const names[] = {"undefined", "float", "uint8", "int8", "uint16", "int16", "int32",
	                                    "int64", "string", "bool", "float16", "double", "uint32", "uint64",
	                                    "complex64", "complex128", "bfloat16"};
	return type >= 0 && type < (int32_t)(sizeof(names) / sizeof(names[0])) ? names[type] : "unknown";
}

/* One little-endian element of raw data as a double. */
static double raw_element(const uint8_t *p, int32_t type)
{
	uint64_t u = 0;
	int n = element_bytes(type);
	for (int b = n - 1; b >= 0; b--)
		u = (u << 8) | p[b];
	switch (type) {
	case ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT: {
		uint32_t w = (uint32_t)u;
		float x;
		memcpy(&x, &w, 4);
		return x;
	}
	case ONNX__TENSOR_PROTO__DATA_TYPE__DOUBLE: {
		double x;
		memcpy(&x, &u, 8);
		return x;
	}
	case ONNX__TENSOR_PROTO__DATA_TYPE__INT64:
		return (double)(int64_t)u;
	case ONNX__TENSOR_PROTO__DATA_TYPE__INT32:
		return (double)(int32_t)(uint32_t)u;
	case ONNX__TENSOR_PROTO__DATA_TYPE__INT16:
		return (double)(int16_t)(uint16_t)u;
	case ONNX__TENSOR_PROTO__DATA_TYPE__INT8:
		return (double)(int8_t)(uint8_t)u;
	default: /* unsigned types and bool */
		return (double)u;
	}
}

static const char *external_entry(const Onnx__TensorProto *t, const char *key)
{
	for (size_t i = 0; i < t->n_external_data; i++)
		if (t->external_data[i]->key && !strcmp(t->external_data[i]->key, key))
			return t->external_data[i]->value;
	return NULL;
}

/* Reads `bytes` bytes of a tensor stored outside the model: only from a regular file inside the
 * model's folder (no absolute path, no "..", no link leading out of it). */
static strata_status read_external(const Onnx__TensorProto *t, const char *folder, const char *what, uint64_t bytes,
                                   uint8_t **out, strata_error *err)
{
	const char *location = external_entry(t, "location");
	const char *offset_s = external_entry(t, "offset");
	const char *length_s = external_entry(t, "length");
	if (!folder)
		return st_fail(err, STRATA_ERR_UNSUPPORTED, "%s: external data is not read here", what);
	if (!location || !location[0])
		return st_fail(err, STRATA_ERR_PARSE, "%s: external data without a location", what);
	if (location[0] == '/' || !strcmp(location, "..") || !strncmp(location, "../", 3) || strstr(location, "/../") ||
	    (strlen(location) >= 3 && !strcmp(location + strlen(location) - 3, "/..")))
		return st_fail(err, STRATA_ERR_INVALID, "%s: external data '%s' lies outside the model's folder %s", what,
		               location, folder);
	uint64_t offset = 0, length = bytes;
	char *end;
	if (offset_s) {
		errno = 0;
		unsigned long long v = strtoull(offset_s, &end, 10);
		if (errno || *end || offset_s[0] == '-')
			return st_fail(err, STRATA_ERR_PARSE, "%s: external data offset '%s' is no number", what, offset_s);
		offset = v;
	}
	if (length_s) {
		errno = 0;
		unsigned long long v = strtoull(length_s, &end, 10);
		if (errno || *end || length_s[0] == '-' || v != bytes)
			return st_fail(err, STRATA_ERR_PARSE, "%s: external data length '%s' is not the %llu bytes its dims "
			               "need", what, length_s, (unsigned long long)bytes);
	}
	size_t plen = strlen(folder) + 1 + strlen(location) + 1;
	char *path = malloc(plen);
	if (!path)
		return st_fail(err, STRATA_ERR_NO_MEMORY, "out of memory");
	snprintf(path, plen, "%s/%s", folder, location);
	char *real = realpath(path, NULL);
	size_t flen = strlen(folder);
	bool inside = real && !strncmp(real, folder, flen) && (real[flen] == '/' || folder[flen - 1] == '/');
	strata_status st = STRATA_OK;
	if (!real)
		st = st_fail(err, STRATA_ERR_NOT_FOUND, "%s: external data file %s: %s", what, path, strerror(errno));
	else if (!inside)
		st = st_fail(err, STRATA_ERR_INVALID, "%s: external data '%s' leads outside the model's folder %s (to %s)",
		             what, location, folder, real);
	free(path);
	int fd = -1;
	uint64_t size = 0;
	if (!st)
		st = st_open_regular(real, &fd, &size, err);
	if (!st && (offset > size || size - offset < length))
		st = st_fail(err, STRATA_ERR_PARSE, "%s: external data %s holds %llu bytes, %llu needed at offset %llu", what,
		             real, (unsigned long long)size, (unsigned long long)length, (unsigned long long)offset);
	uint8_t *buf = NULL;
	if (!st && !(buf = malloc(length ? length : 1)))
		st = st_fail(err, STRATA_ERR_NO_MEMORY, "%s: out of memory", what);
	if (!st && pread(fd, buf, length, (off_t)offset) != (ssize_t)length)
		st = st_fail(err, STRATA_ERR_IO, "%s: reading %s failed", what, real);
	if (fd >= 0)
		close(fd);
	free(real);
	if (st) {
		free(buf);
		return st;
	}
	*out = buf;
	return STRATA_OK;
}

strata_status st_onnx_tensor(const Onnx__TensorProto *t, const char *folder, const char *what, st_onnx_const *out,
                             strata_error *err)
{
	memset(out, 0, sizeof(*out));
	int32_t type = t->has_data_type ? t->data_type : 0;
	int eb = element_bytes(type);
	if (!eb)
		return st_fail(err, STRATA_ERR_UNSUPPORTED, "%s: tensors of type %s are not supported", what, type_name(type));
	if (t->n_dims > ST_ONNX_MAX_RANK)
		return st_fail(err, STRATA_ERR_UNSUPPORTED, "%s: rank %zu, more than %d", what, t->n_dims, ST_ONNX_MAX_RANK);
	if (t->segment)
		return st_fail(err, STRATA_ERR_UNSUPPORTED, "%s: segmented tensors are not supported", what);
	uint64_t count = 1;
	for (size_t d = 0; d < t->n_dims; d++) {
		if (t->dims[d] < 0 || (t->dims[d] > 0 && count > ST_ONNX_MAX_ELEMS / (uint64_t)t->dims[d]))
			return st_fail(err, STRATA_ERR_INVALID, "%s: dimension %zu is %lld: %s", what, d, (long long)t->dims[d],
			               t->dims[d] < 0 ? "negative" : "too large (over 2^30 elements)");
		count *= (uint64_t)t->dims[d];
		out->dims[d] = t->dims[d];
	}
	out->rank = (uint32_t)t->n_dims;
	out->count = count;
	out->data_type = type;
	/* What the file holds is checked against the dims before anything is allocated for them:
	 * a tensor's memory is bounded by the file's size, whatever its dims claim. */
	uint8_t *external = NULL;
	const uint8_t *raw = NULL;
	uint64_t have = 0;
	bool is_external = t->has_data_location && t->data_location == ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL;
	strata_status st = STRATA_OK;
	size_t n_typed = 0;
	switch (type) {
	case ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT:
		n_typed = t->n_float_data;
		break;
	case ONNX__TENSOR_PROTO__DATA_TYPE__DOUBLE:
		n_typed = t->n_double_data;
		break;
	case ONNX__TENSOR_PROTO__DATA_TYPE__INT64:
		n_typed = t->n_int64_data;
		break;
	case ONNX__TENSOR_PROTO__DATA_TYPE__UINT32:
	case ONNX__TENSOR_PROTO__DATA_TYPE__UINT64:
		n_typed = t->n_uint64_data;
		break;
	default:
		n_typed = t->n_int32_data;
		break;
	}
	if (is_external) {
		if ((st = read_external(t, folder, what, count * (uint64_t)eb, &external, err)))
			return st;
		raw = external;
		have = count;
	} else if (t->has_raw_data && t->raw_data.len) {
		raw = t->raw_data.data;
		if (t->raw_data.len % (uint64_t)eb || t->raw_data.len / (uint64_t)eb != count)
			return st_fail(err, STRATA_ERR_PARSE, "%s: %llu bytes of data for %llu %s values", what,
			               (unsigned long long)t->raw_data.len, (unsigned long long)count, type_name(type));
		have = count;
	} else {
		have = n_typed;
		if (have != count)
			return st_fail(err, STRATA_ERR_PARSE, "%s: %llu values for dims holding %llu", what,
			               (unsigned long long)have, (unsigned long long)count);
	}
	double *v = malloc(count * sizeof(double) + 1);
	if (!v) {
		free(external);
		return st_fail(err, STRATA_ERR_NO_MEMORY, "%s: out of memory for %llu values", what, (unsigned long long)count);
	}
	if (raw) {
		for (uint64_t i = 0; i < count; i++)
			v[i] = raw_element(raw + i * (uint64_t)eb, type);
	} else {
		for (uint64_t i = 0; i < count; i++) {
			switch (type) {
			case ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT:
				v[i] = t->float_data[i];
				break;
			case ONNX__TENSOR_PROTO__DATA_TYPE__DOUBLE:
				v[i] = t->double_data[i];
				break;
			case ONNX__TENSOR_PROTO__DATA_TYPE__INT64:
				v[i] = (double)t->int64_data[i];
				break;
			case ONNX__TENSOR_PROTO__DATA_TYPE__UINT32:
			case ONNX__TENSOR_PROTO__DATA_TYPE__UINT64:
				v[i] = (double)t->uint64_data[i];
				break;
			default:
				v[i] = t->int32_data[i];
				break;
			}
		}
	}
	free(external);
	out->v = v;
	return STRATA_OK;
}

strata_status st_onnx_read_tensor_file(const char *path, st_onnx_const *out, strata_error *err)
{
	char *data = NULL;
	size_t len = 0;
	strata_status st = st_read_file(path, "ONNX tensor", MAX_FILE_BYTES, &data, &len, err);
	if (st)
		return st;
	Onnx__TensorProto *t = onnx__tensor_proto__unpack(NULL, len, (const uint8_t *)data);
	free(data);
	if (!t)
		return decode_failed(path, "tensor", err);
	st = st_onnx_tensor(t, NULL, path, out, err);
	onnx__tensor_proto__free_unpacked(t, NULL);
	return st;
}

/* ---- Attributes ---------------------------------------------------------------------------- */

const Onnx__AttributeProto *st_onnx_attr(const Onnx__NodeProto *n, const char *name)
{
	for (size_t i = 0; i < n->n_attribute; i++)
		if (n->attribute[i]->name && !strcmp(n->attribute[i]->name, name))
			return n->attribute[i];
	return NULL;
}

int64_t st_onnx_attr_int(const Onnx__NodeProto *n, const char *name, int64_t fallback)
{
	const Onnx__AttributeProto *a = st_onnx_attr(n, name);
	return a && a->has_i ? a->i : fallback;
}

float st_onnx_attr_float(const Onnx__NodeProto *n, const char *name, float fallback)
{
	const Onnx__AttributeProto *a = st_onnx_attr(n, name);
	return a && a->has_f ? a->f : fallback;
}

const char *st_onnx_attr_string(const Onnx__NodeProto *n, const char *name, const char *fallback, char *buf,
                                size_t size)
{
	const Onnx__AttributeProto *a = st_onnx_attr(n, name);
	if (!a || !a->has_s)
		return fallback;
	size_t len = a->s.len < size - 1 ? a->s.len : size - 1;
	if (len)
		memcpy(buf, a->s.data, len);
	buf[len] = '\0';
	return buf;
}

size_t st_onnx_attr_ints(const Onnx__NodeProto *n, const char *name, const int64_t **values)
{
	const Onnx__AttributeProto *a = st_onnx_attr(n, name);
	*values = a ? a->ints : NULL;
	return a ? a->n_ints : 0;
}

size_t st_onnx_attr_floats(const Onnx__NodeProto *n, const char *name, const float **values)
{
	const Onnx__AttributeProto *a = st_onnx_attr(n, name);
	*values = a ? a->floats : NULL;
	return a ? a->n_floats : 0;
}

void st_onnx_node_label(const Onnx__NodeProto *n, size_t index, char *buf, size_t size)
{
	if (n->name && n->name[0])
		snprintf(buf, size, "%s '%s'", n->op_type ? n->op_type : "?", n->name);
	else
		snprintf(buf, size, "%s (node %zu)", n->op_type ? n->op_type : "?", index);
}
