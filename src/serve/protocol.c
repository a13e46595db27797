/* The Open Inference Protocol's bodies (protocol.h): requests parsed with jansson and checked
 * against the model, responses and metadata written with it. */
#include "serve/protocol.h"

#include <inttypes.h>
#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BAD_REQUEST 400
#define SERVER_ERROR 500

static int bad(char *msg, size_t size, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int bad(char *msg, size_t size, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, size, fmt, ap);
	va_end(ap);
	return BAD_REQUEST;
}

const char *sv_dtype_name(sv_dtype t)
{
	return t == SV_UINT8 ? "UINT8" : t == SV_INT32 ? "INT32" : "FP32";
}

static bool dtype_parse(const char *s, sv_dtype *t)
{
	static const sv_dtype all[] = {SV_FP32, SV_UINT8, SV_INT32};
	for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++)
		if (!strcmp(s, sv_dtype_name(all[i]))) {
			*t = all[i];
			return true;
		}
	return false;
}

static size_t dtype_size(sv_dtype t)
{
	return t == SV_UINT8 ? 1 : 4;
}

uint64_t sv_io_elements(const sv_io *io)
{
	uint64_t n = 1;
	for (uint32_t d = 0; d < io->rank; d++)
		n *= (uint64_t)io->dims[d];
	return n;
}

void sv_request_free(sv_request *r)
{
	free(r->id);
	for (uint32_t k = 0; k < SV_MAX_IO; k++)
		free(r->inputs[k]);
	memset(r, 0, sizeof(*r));
}

/* ---- One input's values -------------------------------------------------------------------- */

/* Where values go and how they are read: `n` of `cap` floats written so far. */
typedef struct sink {
	float *out;
	uint64_t n, cap;
	sv_dtype type;
	bool ids;
	float scale; /* UINT8 of a float input */
	const char *where;
	char *msg;
	size_t msg_size;
} sink;

static int put_integer(sink *s, int64_t v)
{
	if (s->type == SV_UINT8 && (v < 0 || v > 255))
		return bad(s->msg, s->msg_size, "%s: element %" PRIu64 " is %" PRId64 ", outside UINT8's 0 to 255", s->where,
		           s->n, v);
	if (s->type == SV_INT32 && (v < INT32_MIN || v > INT32_MAX))
		return bad(s->msg, s->msg_size, "%s: element %" PRIu64 " is %" PRId64 ", outside INT32", s->where, s->n, v);
	s->out[s->n++] = s->type == SV_UINT8 && !s->ids ? (float)v * s->scale : (float)v;
	return 0;
}

static int put_float(sink *s, double v)
{
	float f = (float)v;
	if (!isfinite(f))
		return bad(s->msg, s->msg_size, "%s: element %" PRIu64 " is %g, not a finite FP32 value", s->where, s->n, v);
	s->out[s->n++] = f;
	return 0;
}

/* The values of "data", flat or nested (row-major either way), at most `depth` arrays deep. */
static int take_json(sink *s, const json_t *v, uint32_t depth)
{
	if (json_is_array(v)) {
		if (depth == 0)
			return bad(s->msg, s->msg_size, "%s: arrays nested deeper than the shape", s->where);
		size_t i;
		const json_t *e;
		json_array_foreach(v, i, e) {
			int rc = take_json(s, e, depth - 1);
			if (rc)
				return rc;
		}
		return 0;
	}
	if (s->n == s->cap)
		return bad(s->msg, s->msg_size, "%s: more values than the shape's %" PRIu64, s->where, s->cap);
	if (s->type == SV_FP32) {
		if (!json_is_number(v))
			return bad(s->msg, s->msg_size, "%s: element %" PRIu64 " is not a number", s->where, s->n);
		return put_float(s, json_number_value(v));
	}
	if (!json_is_integer(v))
		return bad(s->msg, s->msg_size, "%s: element %" PRIu64 " is not an integer (%s)", s->where, s->n,
		           sv_dtype_name(s->type));
	return put_integer(s, json_integer_value(v));
}

/* `count` values of raw little-endian data (Triton's binary extension). */
static int take_binary(sink *s, const unsigned char *p, uint64_t count)
{
	for (uint64_t i = 0; i < count; i++, p += dtype_size(s->type)) {
		int rc;
		if (s->type == SV_UINT8) {
			rc = put_integer(s, p[0]);
		} else {
			uint32_t w = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
			if (s->type == SV_INT32) {
				rc = put_integer(s, (int32_t)w);
			} else {
				float f;
				memcpy(&f, &w, sizeof(f));
				rc = put_float(s, f);
			}
		}
		if (rc)
			return rc;
	}
	return 0;
}

/* ---- The request ---------------------------------------------------------------------------- */

typedef struct parse {
	const sv_model_info *m;
	sv_request *r;
	const unsigned char *binary; /* the data after the JSON, consumed in order */
	size_t binary_left;
	size_t body_len;
	bool seen[SV_MAX_IO];
	char *msg;
	size_t msg_size;
} parse;

/* inputs[i]'s shape: [batch, the model input's dims...]; *batch set. */
static int read_shape(parse *p, const json_t *shape, const sv_io *io, const char *where, uint32_t *batch)
{
	char want[160];
	size_t used = (size_t)snprintf(want, sizeof(want), "[N");
	for (uint32_t d = 0; d < io->rank && used < sizeof(want); d++)
		used += (size_t)snprintf(want + used, sizeof(want) - used, ", %" PRId64, io->dims[d]);
	if (used < sizeof(want))
		snprintf(want + used, sizeof(want) - used, "]");
	if (!json_is_array(shape))
		return bad(p->msg, p->msg_size, "%s.shape: missing or not an array; input '%s' takes %s", where, io->name, want);
	if (json_array_size(shape) != io->rank + 1)
		return bad(p->msg, p->msg_size, "%s.shape: %zu dimensions; input '%s' takes %s (N: the batch)", where,
		           json_array_size(shape), io->name, want);
	for (uint32_t d = 0; d <= io->rank; d++) {
		const json_t *v = json_array_get(shape, d);
		json_int_t n = json_is_integer(v) ? json_integer_value(v) : -1;
		if (d == 0 ? n < 1 || n > (json_int_t)SV_MAX_ELEMENTS : n != io->dims[d - 1])
			return bad(p->msg, p->msg_size, "%s.shape[%u]: %s; input '%s' takes %s (N: a batch of 1 or more)",
			           where, d, json_is_integer(v) ? "wrong size" : "not an integer", io->name, want);
		if (d == 0)
			*batch = (uint32_t)n;
	}
	return 0;
}

static int read_input(parse *p, const json_t *in, size_t i)
{
	char where[64];
	snprintf(where, sizeof(where), "inputs[%zu]", i);
	if (!json_is_object(in))
		return bad(p->msg, p->msg_size, "%s: not an object", where);
	const char *name = json_string_value(json_object_get(in, "name"));
	if (!name)
		return bad(p->msg, p->msg_size, "%s.name: missing or not a string", where);
	uint32_t k = 0;
	while (k < p->m->n_inputs && strcmp(p->m->inputs[k].name, name))
		k++;
	if (k == p->m->n_inputs)
		return bad(p->msg, p->msg_size, "%s.name: model '%s' has no input '%s'", where, p->m->name, name);
	if (p->seen[k])
		return bad(p->msg, p->msg_size, "%s.name: input '%s' is given twice", where, name);
	p->seen[k] = true;
	const sv_io *io = &p->m->inputs[k];
	const char *dt = json_string_value(json_object_get(in, "datatype"));
	sv_dtype type;
	if (!dt || !dtype_parse(dt, &type))
		return bad(p->msg, p->msg_size, "%s.datatype: %s%s%s; FP32, UINT8 or INT32 are taken", where,
		           dt ? "'" : "missing or not a string", dt ? dt : "", dt ? "'" : "");
	if (io->ids && type == SV_FP32)
		return bad(p->msg, p->msg_size, "%s.datatype: input '%s' holds int32 ids: send INT32 (or UINT8)", where, name);
	uint32_t batch = 0;
	int rc = read_shape(p, json_object_get(in, "shape"), io, where, &batch);
	if (rc)
		return rc;
	if (p->r->batch && batch != p->r->batch)
		return bad(p->msg, p->msg_size, "%s.shape[0]: a batch of %u, the inputs before it have %u", where, batch,
		           p->r->batch);
	p->r->batch = batch;
	uint64_t count = (uint64_t)batch * sv_io_elements(io);
	if (count > SV_MAX_ELEMENTS)
		return bad(p->msg, p->msg_size, "%s.shape: %" PRIu64 " values, more than the %" PRIu64 " a request may hold",
		           where, count, SV_MAX_ELEMENTS);
	/* Every value takes a byte of the body at least: a shape the body cannot fill is refused
	 * before its floats are allocated. */
	if (count > p->body_len)
		return bad(p->msg, p->msg_size, "%s.shape: %" PRIu64 " values, more than the body's %zu bytes can hold",
		           where, count, p->body_len);
	float *out = malloc((count ? count : 1) * sizeof(float));
	if (!out)
		return bad(p->msg, p->msg_size, "%s: %" PRIu64 " values do not fit in memory", where, count);
	p->r->inputs[k] = out;
	char data_where[80];
	snprintf(data_where, sizeof(data_where), "%s.data", where);
	sink s = {.out = out, .cap = count, .type = type, .ids = io->ids, .scale = p->m->uint8_scale, .where = data_where,
	          .msg = p->msg, .msg_size = p->msg_size};
	const json_t *params = json_object_get(in, "parameters"), *data = json_object_get(in, "data");
	const json_t *bsize = json_is_object(params) ? json_object_get(params, "binary_data_size") : NULL;
	if (bsize) {
		uint64_t want = count * dtype_size(type);
		if (!json_is_integer(bsize) || json_integer_value(bsize) < 0 || (uint64_t)json_integer_value(bsize) != want)
			return bad(p->msg, p->msg_size, "%s.parameters.binary_data_size: %s; %" PRIu64 " values of %s take %" PRIu64
			           " bytes", where, json_is_integer(bsize) ? "wrong size" : "not an integer", count, dt, want);
		if (data)
			return bad(p->msg, p->msg_size, "%s: both data and binary_data_size", where);
		if (want > p->binary_left)
			return bad(p->msg, p->msg_size, "%s.parameters.binary_data_size: %" PRIu64 " bytes, but %zu are left after "
			           "the JSON and the inputs before it", where, want, p->binary_left);
		snprintf(data_where, sizeof(data_where), "%s (binary data)", where);
		rc = take_binary(&s, p->binary, count);
		p->binary += want;
		p->binary_left -= want;
	} else if (!json_is_array(data)) {
		return bad(p->msg, p->msg_size, "%s.data: missing or not an array (or give parameters.binary_data_size and "
		           "the bytes after the JSON)", where);
	} else {
		rc = take_json(&s, data, io->rank + 1);
	}
	if (!rc && s.n != count)
		return bad(p->msg, p->msg_size, "%s: %" PRIu64 " values, the shape holds %" PRIu64, data_where, s.n, count);
	return rc;
}

/* "outputs": which to return, and how; the request's parameters.binary_data_output sets the
 * default. */
static int read_outputs(parse *p, const json_t *root)
{
	const json_t *params = json_object_get(root, "parameters");
	const json_t *all_binary = json_is_object(params) ? json_object_get(params, "binary_data_output") : NULL;
	if (all_binary && !json_is_boolean(all_binary))
		return bad(p->msg, p->msg_size, "parameters.binary_data_output: not a boolean");
	const json_t *outs = json_object_get(root, "outputs");
	for (uint32_t k = 0; k < p->m->n_outputs; k++) {
		p->r->want[k] = outs == NULL;
		p->r->binary[k] = json_is_true(all_binary);
	}
	if (!outs)
		return 0;
	if (!json_is_array(outs))
		return bad(p->msg, p->msg_size, "outputs: not an array");
	size_t i;
	const json_t *o;
	json_array_foreach(outs, i, o) {
		const char *name = json_is_object(o) ? json_string_value(json_object_get(o, "name")) : NULL;
		if (!name)
			return bad(p->msg, p->msg_size, "outputs[%zu].name: missing or not a string", i);
		uint32_t k = 0;
		while (k < p->m->n_outputs && strcmp(p->m->outputs[k].name, name))
			k++;
		if (k == p->m->n_outputs)
			return bad(p->msg, p->msg_size, "outputs[%zu].name: model '%s' has no output '%s'", i, p->m->name, name);
		p->r->want[k] = true;
		const json_t *op = json_object_get(o, "parameters");
		const json_t *b = json_is_object(op) ? json_object_get(op, "binary_data") : NULL;
		if (b && !json_is_boolean(b))
			return bad(p->msg, p->msg_size, "outputs[%zu].parameters.binary_data: not a boolean", i);
		if (b)
			p->r->binary[k] = json_is_true(b);
	}
	return 0;
}

int sv_request_parse(const sv_model_info *m, const char *body, size_t len, size_t json_len, sv_request *out,
                     char *msg, size_t msg_size)
{
	memset(out, 0, sizeof(*out));
	if (json_len > len)
		return bad(msg, msg_size, "Inference-Header-Content-Length: %zu, more than the body's %zu bytes", json_len, len);
	json_error_t jerr;
	json_t *root = json_loadb(body, json_len, JSON_REJECT_DUPLICATES, &jerr);
	if (!root)
		return bad(msg, msg_size, "malformed JSON at line %d, column %d: %s", jerr.line, jerr.column, jerr.text);
	parse p = {.m = m, .r = out, .binary = (const unsigned char *)body + json_len, .binary_left = len - json_len,
	           .body_len = len, .msg = msg, .msg_size = msg_size};
	int rc = 0;
	const json_t *id = json_is_object(root) ? json_object_get(root, "id") : NULL;
	const json_t *inputs = json_is_object(root) ? json_object_get(root, "inputs") : NULL;
	if (!json_is_object(root))
		rc = bad(msg, msg_size, "the body is not a JSON object");
	else if (id && !json_is_string(id))
		rc = bad(msg, msg_size, "id: not a string");
	else if (id && !(out->id = strdup(json_string_value(id))))
		rc = bad(msg, msg_size, "id: out of memory");
	else if (!json_is_array(inputs) || json_array_size(inputs) == 0)
		rc = bad(msg, msg_size, "inputs: missing, not an array, or empty");
	size_t i;
	const json_t *in;
	if (!rc)
		json_array_foreach(inputs, i, in) {
			if ((rc = read_input(&p, in, i)))
				break;
		}
	for (uint32_t k = 0; !rc && k < m->n_inputs; k++)
		if (!p.seen[k])
			rc = bad(msg, msg_size, "inputs: model '%s' input '%s' is missing", m->name, m->inputs[k].name);
	if (!rc && p.binary_left)
		rc = bad(msg, msg_size, "%zu bytes after the JSON that no input's binary_data_size claims", p.binary_left);
	if (!rc)
		rc = read_outputs(&p, root);
	json_decref(root);
	return rc;
}

/* ---- Responses and metadata --------------------------------------------------------------- */

static json_t *shape_json(uint32_t batch_or_minus, bool unknown_batch, const sv_io *io)
{
	json_t *a = json_array();
	if (!a || json_array_append_new(a, json_integer(unknown_batch ? -1 : (json_int_t)batch_or_minus))) {
		json_decref(a);
		return NULL;
	}
	for (uint32_t d = 0; d < io->rank; d++)
		if (json_array_append_new(a, json_integer(io->dims[d]))) {
			json_decref(a);
			return NULL;
		}
	return a;
}

/* The JSON for one output of the response; its values in "data", or their size when binary. */
static json_t *output_json(const sv_io *io, uint32_t batch, const float *v, bool binary)
{
	json_t *o = json_object(), *data = NULL, *params = NULL;
	uint64_t count = batch * sv_io_elements(io);
	if (!o || json_object_set_new(o, "name", json_string(io->name)) ||
	    json_object_set_new(o, "datatype", json_string("FP32")) ||
	    json_object_set_new(o, "shape", shape_json(batch, false, io)))
		goto fail;
	if (binary) {
		/* json_object_set_new takes its value even when it fails. */
		if (!(params = json_object()))
			goto fail;
		if (json_object_set_new(params, "binary_data_size", json_integer((json_int_t)(count * sizeof(float))))) {
			json_decref(params);
			goto fail;
		}
		if (json_object_set_new(o, "parameters", params))
			goto fail;
		return o;
	}
	if (!(data = json_array()))
		goto fail;
	for (uint64_t i = 0; i < count; i++)
		if (json_array_append_new(data, json_real(v[i])))
			goto fail;
	if (json_object_set_new(o, "data", data))
		goto fail_o;
	return o;
fail:
	json_decref(data);
fail_o:
	json_decref(o);
	return NULL;
}

int sv_response_write(const sv_model_info *m, const sv_request *r, float *const *outputs, char **body, size_t *len,
                      size_t *json_len)
{
	*body = NULL;
	json_t *root = json_object(), *outs = json_array();
	if (!root || !outs || json_object_set_new(root, "model_name", json_string(m->name)) ||
	    json_object_set_new(root, "model_version", json_string(m->version)) ||
	    (r->id && json_object_set_new(root, "id", json_string(r->id))) || json_object_set_new(root, "outputs", outs)) {
		json_decref(root);
		return SERVER_ERROR;
	}
	size_t binary = 0;
	for (uint32_t k = 0; k < m->n_outputs; k++) {
		if (!r->want[k])
			continue;
		json_t *o = output_json(&m->outputs[k], r->batch, outputs[k], r->binary[k]);
		if (!o || json_array_append_new(outs, o)) {
			json_decref(root);
			return SERVER_ERROR;
		}
		if (r->binary[k])
			binary += r->batch * sv_io_elements(&m->outputs[k]) * sizeof(float);
	}
	/* Nine significant digits: every float32 reads back as itself. */
	char *text = json_dumps(root, JSON_COMPACT | JSON_REAL_PRECISION(9));
	json_decref(root);
	size_t n = text ? strlen(text) : 0;
	char *b = text ? malloc(n + binary + 1) : NULL;
	if (!b) {
		free(text);
		return SERVER_ERROR;
	}
	memcpy(b, text, n);
	free(text);
	size_t at = n;
	for (uint32_t k = 0; k < m->n_outputs; k++) {
		if (!r->want[k] || !r->binary[k])
			continue;
		uint64_t count = r->batch * sv_io_elements(&m->outputs[k]);
		for (uint64_t i = 0; i < count; i++, at += 4) {
			uint32_t w;
			memcpy(&w, &outputs[k][i], sizeof(w));
			unsigned char le[4] = {(unsigned char)w, (unsigned char)(w >> 8), (unsigned char)(w >> 16),
			                       (unsigned char)(w >> 24)};
			memcpy(b + at, le, 4);
		}
	}
	b[at] = '\0';
	*body = b;
	*len = at;
	*json_len = n;
	return 0;
}

static json_t *ios_json(const sv_io *io, uint32_t n, bool inputs)
{
	json_t *a = json_array();
	for (uint32_t k = 0; a && k < n; k++) {
		json_t *o = json_object();
		if (!o || json_object_set_new(o, "name", json_string(io[k].name)) ||
		    json_object_set_new(o, "datatype", json_string(inputs && io[k].ids ? "INT32" : "FP32")) ||
		    json_object_set_new(o, "shape", shape_json(0, true, &io[k])) || json_array_append_new(a, o)) {
			json_decref(o);
			json_decref(a);
			return NULL;
		}
	}
	return a;
}

char *sv_metadata_json(const sv_model_info *m)
{
	json_t *root = json_object(), *versions = json_array();
	if (!root || !versions || json_array_append_new(versions, json_string(m->version)) ||
	    json_object_set_new(root, "name", json_string(m->name)) || json_object_set_new(root, "versions", versions) ||
	    json_object_set_new(root, "platform", json_string("strata")) ||
	    json_object_set_new(root, "inputs", ios_json(m->inputs, m->n_inputs, true)) ||
	    json_object_set_new(root, "outputs", ios_json(m->outputs, m->n_outputs, false))) {
		json_decref(root);
		return NULL;
	}
	char *text = json_dumps(root, JSON_COMPACT);
	json_decref(root);
	return text;
}

char *sv_error_json(const char *message)
{
	json_t *root = json_pack("{s:s}", "error", message);
	char *text = root ? json_dumps(root, JSON_COMPACT) : NULL;
	json_decref(root);
	return text;
}
