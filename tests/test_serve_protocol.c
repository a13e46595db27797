/* The Open Inference Protocol's bodies (src/serve/protocol.c), no HTTP and no device:
 *  - requests: JSON data flat and nested, FP32, UINT8 (scaled as the model's data) and INT32 ids,
 *    two inputs, Triton's binary tensor data (inputs of both kinds in one body), the outputs to
 *    return and how;
 *  - every refusal a 400 whose message names the field: malformed JSON (line and column), a
 *    missing or unknown or repeated input, shapes, datatypes, value ranges, non-finite floats
 *    (JSON overflow, binary NaN), sizes of binary data, bytes left over;
 *  - responses: JSON values that read back as the same floats, binary outputs after the JSON,
 *    the request's id echoed; metadata and error bodies. */
#include <check.h>
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "serve/protocol.h"
#include "serve_toy.h"

/* serve_toy.h's model, pixels scaled by 0.5. */
static sv_model_info model(void)
{
	return serve_toy_model(0.5f);
}

static int parse_json(const char *json, sv_request *r, char *msg)
{
	sv_model_info m = model();
	return sv_request_parse(&m, json, strlen(json), strlen(json), r, msg, 256);
}

START_TEST(test_json_nested_and_flat)
{
	sv_request r;
	char msg[256] = "";
	const char *body = "{\"id\": \"a7\", \"inputs\": ["
	                   "{\"name\": \"ids\", \"shape\": [2, 3], \"datatype\": \"INT32\", \"data\": [[1, 2, 3], [4, 5, 6]]},"
	                   "{\"name\": \"image\", \"shape\": [2, 2, 2, 1], \"datatype\": \"FP32\","
	                   " \"data\": [0.5, -1, 2e3, 0, 1, 2, 3, 4.25]}]}";
	ck_assert_msg(parse_json(body, &r, msg) == 0, "%s", msg);
	ck_assert_str_eq(r.id, "a7");
	ck_assert_uint_eq(r.batch, 2);
	const float image[8] = {0.5f, -1, 2000, 0, 1, 2, 3, 4.25f}, ids[6] = {1, 2, 3, 4, 5, 6};
	ck_assert(memcmp(r.inputs[0], image, sizeof(image)) == 0);
	ck_assert(memcmp(r.inputs[1], ids, sizeof(ids)) == 0);
	/* No "outputs": every output, as JSON. */
	ck_assert(r.want[0] && r.want[1] && !r.binary[0] && !r.binary[1]);
	sv_request_free(&r);
}
END_TEST

START_TEST(test_uint8_scaled_and_outputs_chosen)
{
	sv_request r;
	char msg[256] = "";
	const char *body = "{\"inputs\": ["
	                   "{\"name\": \"image\", \"shape\": [1, 2, 2, 1], \"datatype\": \"UINT8\", \"data\": [[[[0], [255]], [[10], [3]]]]},"
	                   "{\"name\": \"ids\", \"shape\": [1, 3], \"datatype\": \"UINT8\", \"data\": [7, 8, 255]}],"
	                   " \"outputs\": [{\"name\": \"code\", \"parameters\": {\"binary_data\": true}}]}";
	ck_assert_msg(parse_json(body, &r, msg) == 0, "%s", msg);
	/* Pixels times the model's scale; ids as they are. */
	const float image[4] = {0, 127.5f, 5, 1.5f}, ids[3] = {7, 8, 255};
	ck_assert(memcmp(r.inputs[0], image, sizeof(image)) == 0);
	ck_assert(memcmp(r.inputs[1], ids, sizeof(ids)) == 0);
	ck_assert(!r.want[0] && r.want[1] && r.binary[1]);
	ck_assert_ptr_null(r.id);
	sv_request_free(&r);
}
END_TEST

static void put_le32(unsigned char *p, uint32_t w)
{
	p[0] = (unsigned char)w;
	p[1] = (unsigned char)(w >> 8);
	p[2] = (unsigned char)(w >> 16);
	p[3] = (unsigned char)(w >> 24);
}

/* JSON, then the raw bytes of the inputs that give binary_data_size, in order. */
static size_t binary_body(char *buf, const char *json, const float *image, uint32_t n_image, const int32_t *ids,
                          uint32_t n_ids)
{
	size_t n = strlen(json);
	memcpy(buf, json, n);
	for (uint32_t i = 0; i < n_image; i++, n += 4) {
		uint32_t w;
		memcpy(&w, &image[i], 4);
		put_le32((unsigned char *)buf + n, w);
	}
	for (uint32_t i = 0; i < n_ids; i++, n += 4)
		put_le32((unsigned char *)buf + n, (uint32_t)ids[i]);
	return n;
}

START_TEST(test_binary_inputs)
{
	const char *json = "{\"inputs\": ["
	                   "{\"name\": \"image\", \"shape\": [1, 2, 2, 1], \"datatype\": \"FP32\", \"parameters\": {\"binary_data_size\": 16}},"
	                   "{\"name\": \"ids\", \"shape\": [1, 3], \"datatype\": \"INT32\", \"parameters\": {\"binary_data_size\": 12}}],"
	                   " \"parameters\": {\"binary_data_output\": true}}";
	const float image[4] = {1.5f, -2, 1e-30f, 3e30f};
	const int32_t ids[3] = {0, -5, 2147483647};
	char body[1024];
	size_t len = binary_body(body, json, image, 4, ids, 3);
	sv_model_info m = model();
	sv_request r;
	char msg[256] = "";
	ck_assert_msg(sv_request_parse(&m, body, len, strlen(json), &r, msg, sizeof(msg)) == 0, "%s", msg);
	ck_assert(memcmp(r.inputs[0], image, sizeof(image)) == 0);
	ck_assert(r.inputs[1][0] == 0 && r.inputs[1][1] == -5 && r.inputs[1][2] == 2147483647.0f);
	ck_assert(r.want[0] && r.binary[0] && r.want[1] && r.binary[1]);
	sv_request_free(&r);
}
END_TEST

typedef struct refusal {
	const char *body; /* JSON only */
	const char *says;
} refusal;

#define IMG "{\"name\": \"image\", \"shape\": [1, 2, 2, 1], \"datatype\": \"FP32\", \"data\": [1, 2, 3, 4]}"
#define IDS "{\"name\": \"ids\", \"shape\": [1, 3], \"datatype\": \"INT32\", \"data\": [1, 2, 3]}"

static const refusal refusals[] = {
	{"{\"inputs\": [" IMG ", " IDS "", "malformed JSON at line 1, column"},
	{"{\"inputs\": [" IMG "], \"inputs\": []}", "malformed JSON"}, /* a duplicate key */
	{"[1, 2]", "not a JSON object"},
	{"{\"inputs\": []}", "inputs: missing, not an array, or empty"},
	{"{\"inputs\": [" IMG "]}", "input 'ids' is missing"},
	{"{\"inputs\": [" IMG ", " IMG ", " IDS "]}", "inputs[1].name: input 'image' is given twice"},
	{"{\"inputs\": [" IDS ", {\"name\": \"pixels\", \"shape\": [1], \"datatype\": \"FP32\", \"data\": [1]}]}",
	 "inputs[1].name: model 'toy' has no input 'pixels'"},
	{"{\"inputs\": [{\"shape\": [1, 3], \"datatype\": \"INT32\", \"data\": [1, 2, 3]}]}", "inputs[0].name: missing"},
	{"{\"inputs\": [" IDS ", {\"name\": \"image\", \"shape\": [1, 2, 2], \"datatype\": \"FP32\", \"data\": [1, 2, 3, 4]}]}",
	 "inputs[1].shape: 3 dimensions; input 'image' takes [N, 2, 2, 1]"},
	{"{\"inputs\": [" IDS ", {\"name\": \"image\", \"shape\": [1, 2, 3, 1], \"datatype\": \"FP32\", \"data\": [1]}]}",
	 "inputs[1].shape[2]: wrong size"},
	{"{\"inputs\": [" IDS ", {\"name\": \"image\", \"shape\": [0, 2, 2, 1], \"datatype\": \"FP32\", \"data\": []}]}",
	 "inputs[1].shape[0]"},
	{"{\"inputs\": [" IDS ", {\"name\": \"image\", \"shape\": [2, 2, 2, 1], \"datatype\": \"FP32\", \"data\": [1, 2, 3, 4, 5, 6, 7, 8]}]}",
	 "inputs[1].shape[0]: a batch of 2, the inputs before it have 1"},
	{"{\"inputs\": [" IDS ", {\"name\": \"image\", \"shape\": [1, 2, 2, 1], \"datatype\": \"FP64\", \"data\": [1, 2, 3, 4]}]}",
	 "inputs[1].datatype: 'FP64'; FP32, UINT8 or INT32"},
	{"{\"inputs\": [" IMG ", {\"name\": \"ids\", \"shape\": [1, 3], \"datatype\": \"FP32\", \"data\": [1, 2, 3]}]}",
	 "inputs[1].datatype: input 'ids' holds int32 ids"},
	{"{\"inputs\": [" IDS ", {\"name\": \"image\", \"shape\": [1, 2, 2, 1], \"datatype\": \"FP32\", \"data\": [1, 2, 3]}]}",
	 "inputs[1].data: 3 values, the shape holds 4"},
	{"{\"inputs\": [" IDS ", {\"name\": \"image\", \"shape\": [1, 2, 2, 1], \"datatype\": \"FP32\", \"data\": [1, 2, 3, 4, 5]}]}",
	 "inputs[1].data: more values than the shape's 4"},
	{"{\"inputs\": [" IDS ", {\"name\": \"image\", \"shape\": [1, 2, 2, 1], \"datatype\": \"FP32\", \"data\": [1, \"2\", 3, 4]}]}",
	 "inputs[1].data: element 1 is not a number"},
	{"{\"inputs\": [" IDS ", {\"name\": \"image\", \"shape\": [1, 2, 2, 1], \"datatype\": \"FP32\", \"data\": [1, 2, 1e39, 4]}]}",
	 "inputs[1].data: element 2 is 1e+39, not a finite FP32 value"},
	{"{\"inputs\": [" IDS ", {\"name\": \"image\", \"shape\": [1, 2, 2, 1], \"datatype\": \"UINT8\", \"data\": [1, 2, 256, 4]}]}",
	 "inputs[1].data: element 2 is 256, outside UINT8's 0 to 255"},
	{"{\"inputs\": [" IMG ", {\"name\": \"ids\", \"shape\": [1, 3], \"datatype\": \"INT32\", \"data\": [1, 2.5, 3]}]}",
	 "inputs[1].data: element 1 is not an integer (INT32)"},
	{"{\"inputs\": [" IMG ", {\"name\": \"ids\", \"shape\": [1, 3], \"datatype\": \"INT32\", \"data\": [1, 2, 4294967296]}]}",
	 "inputs[1].data: element 2 is 4294967296, outside INT32"},
	{"{\"inputs\": [" IMG ", {\"name\": \"ids\", \"shape\": [1, 3], \"datatype\": \"INT32\", \"data\": [[[[[[1]]]]], 2, 3]}]}",
	 "inputs[1].data: arrays nested deeper than the shape"},
	{"{\"inputs\": [" IMG ", {\"name\": \"ids\", \"shape\": [1, 3], \"datatype\": \"INT32\"}]}",
	 "inputs[1].data: missing or not an array"},
	{"{\"inputs\": [" IMG ", " IDS "], \"outputs\": [{\"name\": \"logits\"}]}",
	 "outputs[0].name: model 'toy' has no output 'logits'"},
	{"{\"inputs\": [" IMG ", " IDS "], \"outputs\": [{\"name\": \"probs\", \"parameters\": {\"binary_data\": 1}}]}",
	 "outputs[0].parameters.binary_data: not a boolean"},
	{"{\"inputs\": [" IMG ", " IDS "], \"id\": 5}", "id: not a string"},
	{"{\"inputs\": [{\"name\": \"image\", \"shape\": [100000, 2, 2, 1], \"datatype\": \"FP32\", \"data\": [1]}, " IDS "]}",
	 "inputs[0].shape: 400000 values, more than the body's"},
	{"{\"inputs\": [" IMG ", {\"name\": \"ids\", \"shape\": [1, 3], \"datatype\": \"INT32\", \"parameters\": {\"binary_data_size\": 12}}]}",
	 "inputs[1].parameters.binary_data_size: 12 bytes, but 0 are left"},
	{"{\"inputs\": [" IMG ", {\"name\": \"ids\", \"shape\": [1, 3], \"datatype\": \"INT32\", \"parameters\": {\"binary_data_size\": 11}}]}",
	 "inputs[1].parameters.binary_data_size: wrong size; 3 values of INT32 take 12 bytes"},
};

START_TEST(test_refusals)
{
	sv_request r;
	char msg[256] = "";
	int status = parse_json(refusals[_i].body, &r, msg);
	ck_assert_msg(status == 400, "case %d: status %d (%s)", _i, status, msg);
	ck_assert_msg(strstr(msg, refusals[_i].says), "case %d: '%s' does not say '%s'", _i, msg, refusals[_i].says);
	sv_request_free(&r);
}
END_TEST

/* Binary data: a NaN, a header length past the body, bytes nobody claims. */
START_TEST(test_binary_refusals)
{
	const char *json = "{\"inputs\": [" IDS ", "
	                   "{\"name\": \"image\", \"shape\": [1, 2, 2, 1], \"datatype\": \"FP32\", \"parameters\": {\"binary_data_size\": 16}}]}";
	float image[4] = {1, 2, NAN, 4};
	char body[1024], msg[256] = "";
	size_t len = binary_body(body, json, image, 4, NULL, 0);
	sv_model_info m = model();
	sv_request r;
	ck_assert_int_eq(sv_request_parse(&m, body, len, strlen(json), &r, msg, sizeof(msg)), 400);
	ck_assert_msg(strstr(msg, "inputs[1] (binary data): element 2 is nan, not a finite FP32 value"), "%s", msg);
	sv_request_free(&r);
	image[2] = 3;
	len = binary_body(body, json, image, 4, NULL, 0);
	ck_assert_int_eq(sv_request_parse(&m, body, len, len + 1, &r, msg, sizeof(msg)), 400);
	ck_assert_msg(strstr(msg, "Inference-Header-Content-Length"), "%s", msg);
	sv_request_free(&r);
	body[len] = 'x';
	ck_assert_int_eq(sv_request_parse(&m, body, len + 1, strlen(json), &r, msg, sizeof(msg)), 400);
	ck_assert_msg(strstr(msg, "1 bytes after the JSON that no input's binary_data_size claims"), "%s", msg);
	sv_request_free(&r);
	ck_assert_int_eq(sv_request_parse(&m, body, len, strlen(json), &r, msg, sizeof(msg)), 0);
	sv_request_free(&r);
}
END_TEST

START_TEST(test_response)
{
	sv_model_info m = model();
	sv_request r = {.id = strdup("q1"), .batch = 2, .want = {true, true}, .binary = {false, true}};
	float probs[8] = {0.1f, 0.2f, 0.3f, 0.4f, 1.0f / 3.0f, 1e-7f, 0, 0.6666667f}, code[2] = {7, -1.5f};
	float *outs[2] = {probs, code};
	char *body;
	size_t len, json_len;
	ck_assert_int_eq(sv_response_write(&m, &r, outs, &body, &len, &json_len), 0);
	ck_assert_uint_eq(len, json_len + 2 * sizeof(float));
	json_error_t e;
	json_t *root = json_loadb(body, json_len, 0, &e);
	ck_assert_msg(root != NULL, "%s", e.text);
	ck_assert_str_eq(json_string_value(json_object_get(root, "model_name")), "toy");
	ck_assert_str_eq(json_string_value(json_object_get(root, "id")), "q1");
	json_t *o0 = json_array_get(json_object_get(root, "outputs"), 0), *o1 = json_array_get(json_object_get(root, "outputs"), 1);
	ck_assert_str_eq(json_string_value(json_object_get(o0, "name")), "probs");
	ck_assert_str_eq(json_string_value(json_object_get(o0, "datatype")), "FP32");
	ck_assert_int_eq(json_integer_value(json_array_get(json_object_get(o0, "shape"), 0)), 2);
	ck_assert_int_eq(json_integer_value(json_array_get(json_object_get(o0, "shape"), 1)), 4);
	/* Every value reads back as the same float. */
	for (size_t i = 0; i < 8; i++)
		ck_assert_msg((float)json_number_value(json_array_get(json_object_get(o0, "data"), i)) == probs[i], "probs[%zu]", i);
	ck_assert_int_eq(json_integer_value(json_object_get(json_object_get(o1, "parameters"), "binary_data_size")), 8);
	ck_assert_ptr_null(json_object_get(o1, "data"));
	float back[2];
	memcpy(back, body + json_len, sizeof(back));
	ck_assert(back[0] == 7 && back[1] == -1.5f);
	json_decref(root);
	free(body);
	sv_request_free(&r);
}
END_TEST

START_TEST(test_metadata_and_error)
{
	sv_model_info m = model();
	char *text = sv_metadata_json(&m);
	ck_assert_ptr_nonnull(text);
	json_t *root = json_loads(text, 0, NULL);
	ck_assert_ptr_nonnull(root);
	ck_assert_str_eq(json_string_value(json_object_get(root, "name")), "toy");
	ck_assert_str_eq(json_string_value(json_array_get(json_object_get(root, "versions"), 0)), "1");
	json_t *in1 = json_array_get(json_object_get(root, "inputs"), 1);
	ck_assert_str_eq(json_string_value(json_object_get(in1, "datatype")), "INT32");
	ck_assert_int_eq(json_integer_value(json_array_get(json_object_get(in1, "shape"), 0)), -1);
	ck_assert_int_eq(json_integer_value(json_array_get(json_object_get(in1, "shape"), 1)), 3);
	json_decref(root);
	free(text);
	text = sv_error_json("inputs[0].shape: \"wrong\"");
	ck_assert_str_eq(text, "{\"error\":\"inputs[0].shape: \\\"wrong\\\"\"}");
	free(text);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("serve_protocol");
	TCase *t = tcase_create("protocol");
	tcase_add_test(t, test_json_nested_and_flat);
	tcase_add_test(t, test_uint8_scaled_and_outputs_chosen);
	tcase_add_test(t, test_binary_inputs);
	tcase_add_loop_test(t, test_refusals, 0, (int)(sizeof(refusals) / sizeof(refusals[0])));
	tcase_add_test(t, test_binary_refusals);
	tcase_add_test(t, test_response);
	tcase_add_test(t, test_metadata_and_error);
	suite_add_tcase(s, t);
	SRunner *sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
