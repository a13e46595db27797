/* ONNX export and import (issue 16), on the OpenCL device:
 *  - round trips: a model (the repository's, and small ones for the layer types they leave out)
 *    with seeded weights is exported, imported back and run on the same random inputs as the
 *    original: outputs agree within 1e-5 (the reimported graph computes the same functions,
 *    not always with the same kernels);
 *  - the import's bookkeeping: every layer names its ONNX node in `source:`, the summary lists
 *    them, layouts of inputs and outputs;
 *  - refusals: an unsupported node listed with its name, op type and opset, all of them at
 *    once, nothing written; a truncated file, a cyclic graph, external data outside the model's
 *    folder, a huge dimension; an export of a layer with no ONNX form.
 * Not round-tripped: a go_backwards layer whose output runs in its steps' order (Keras'
 * default), exported as a reversal by Slice that the import does not map back. */
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "support.h"

#include "onnx/onnx_file.h"

typedef struct trip {
	const char *name;
	const char *yaml; /* inline model, or NULL for file */
	const char *file; /* under tests/, e.g. "../models/mnist_cnn.yaml" */
} trip;

static const trip trips[] = {
	{"mnist_cnn", NULL, "../models/mnist_cnn.yaml"},
	{"mnist_resnet_bn", NULL, "../models/mnist_resnet_bn.yaml"},
	{"mobilenet_mini", NULL, "../models/mobilenet_mini.yaml"},
	{"mnist_best", NULL, "../models/mnist_best.yaml"},
	{"mnist_lstm", NULL, "../models/mnist_lstm.yaml"},
	{"mnist_gru", NULL, "../models/mnist_gru.yaml"},
	{"mnist_simple_rnn", NULL, "../models/mnist_simple_rnn.yaml"},
	{"convolutions",
	 "name: convolutions\n"
	 "inputs: [{name: image, shape: [9, 10, 3]}]\n"
	 "layers:\n"
	 "  - {name: sep, type: separable_conv2d, filters: 4, kernel_size: 3, padding: same, depth_multiplier: 2, activation: swish}\n"
	 "  - {name: pad, type: zero_padding2d, padding: [1, 2, 0, 1]}\n"
	 "  - {name: crop, type: cropping2d, cropping: [0, 1, 1, 0]}\n"
	 "  - {name: up, type: up_sampling2d, size: [2, 3], interpolation: bilinear}\n"
	 "  - {name: deconv, type: conv2d_transpose, filters: 3, kernel_size: 3, strides: 2, padding: same, activation: gelu}\n"
	 "  - {name: down, type: conv2d, filters: 5, kernel_size: [3, 2], strides: [2, 3], activation: mish}\n"
	 "  - {name: near, type: up_sampling2d, size: 2}\n"
	 "  - {name: dw, type: depthwise_conv2d, kernel_size: 3, dilation_rate: 2, depth_multiplier: 2, activation: relu6}\n"
	 "  - {name: avg, type: averagepool2d, pool_size: 3, strides: 2, padding: same}\n"
	 "  - {name: gmax, type: global_max_pooling2d}\n", NULL},
	{"graph",
	 "name: graph\n"
	 "inputs: [{name: a, shape: [6, 5, 4]}, {name: b, shape: [6, 5, 4]}]\n"
	 "layers:\n"
	 "  - {name: pa, type: prelu, inputs: a, shared_axes: [1, 2]}\n"
	 "  - {name: lb, type: leaky_relu, inputs: b, negative_slope: 0.1}\n"
	 "  - {name: sub, type: subtract, inputs: [pa, lb]}\n"
	 "  - {name: mul, type: multiply, inputs: [sub, a]}\n"
	 "  - {name: mx, type: maximum, inputs: [mul, b, pa]}\n"
	 "  - {name: av, type: average, inputs: [mx, a]}\n"
	 "  - {name: cat, type: concatenate, inputs: [av, lb], axis: -1}\n"
	 "  - {name: ln, type: layer_normalization}\n"
	 "  - {name: perm, type: permute, dims: [2, 1, 3]}\n"
	 "  - {name: rs, type: reshape, target_shape: [10, 24]}\n"
	 "  - {name: d, type: dense, units: 7, activation: elu}\n"
	 "  - {name: el, type: elu, alpha: 0.5}\n"
	 "  - {name: relu, type: relu, max_value: 0.7}\n"
	 "  - {name: sm, type: softmax}\n"
	 "outputs: [sm, cat]\n", NULL},
	{"sequences",
	 "name: sequences\n"
	 "inputs: [{name: ids, shape: [12], dtype: int32}]\n"
	 "layers:\n"
	 "  - {name: emb, type: embedding, input_dim: 50, output_dim: 6}\n"
	 "  - {name: fwd, type: gru, units: 5, return_sequences: true, reset_after: false, inputs: emb}\n"
	 "  - {name: bwd, type: lstm, units: 4, return_sequences: true, go_backwards: true, output_in_input_order: true, inputs: emb}\n"
	 "  - {name: both, type: concatenate, inputs: [fwd, bwd]}\n"
	 "  - {name: rnn, type: simple_rnn, units: 3, return_sequences: true, activation: relu}\n"
	 "  - {name: mean, type: global_average_pooling1d}\n"
	 "  - {name: rep, type: repeat_vector, n: 4}\n"
	 "  - {name: st, type: lstm, units: 2, return_state: true}\n"
	 "  - {name: maxp, type: global_max_pooling1d, inputs: both}\n"
	 "  - {name: joined, type: concatenate, inputs: [st_output, st_state_h, st_state_c, maxp]}\n", NULL},
};

/* Floats for an input of `shape`: uniform [-1, 1), ids in [0, 50) for int32 inputs. */
static float *random_input(const strata_shape *shape, uint32_t batch, uint32_t *seed)
{
	uint64_t n = batch;
	for (uint32_t d = 0; d < shape->rank; d++)
		n *= (uint64_t)shape->dims[d];
	float *x = malloc(n * sizeof(float));
	ck_assert_ptr_nonnull(x);
	for (uint64_t i = 0; i < n; i++) {
		*seed = *seed * 1664525u + 1013904223u;
		x[i] = shape->dtype == STRATA_DTYPE_INT32 ? (float)((*seed >> 8) % 50) : (float)((*seed >> 8) / 8388608.0 - 1.0);
	}
	return x;
}

static void run(strata_runtime *rt, strata_model *m, const char *weights, uint64_t seed, float **in, uint32_t batch,
                float **out)
{
	strata_session *s = NULL;
	strata_error err = {0};
	ck_assert_msg(strata_session_create(rt, m, batch, seed, &s, &err) == STRATA_OK, "%s", err.message);
	if (weights)
		ck_assert_msg(strata_session_load(s, weights, &err) == STRATA_OK, "%s", err.message);
	ck_assert_msg(strata_session_run(s, (const float *const *)in, batch, out, &err) == STRATA_OK, "%s", err.message);
	strata_session_destroy(s);
}

START_TEST(test_round_trip)
{
	const trip *t = &trips[_i];
	ts_device dev = ts_device_open();
	strata_model *m = t->yaml ? ts_model(dev.reg, t->yaml) : ts_model_file(dev.reg, t->file);
	char dir[256];
	ts_tmpdir_make(dir, sizeof(dir), "onnx");
	char *weights = ts_join(dir, "w.stw"), *onnx = ts_join(dir, "m.onnx"), *yaml = ts_join(dir, "back.yaml"),
	     *back_weights = ts_join(dir, "back.stw");
	strata_error err = {0};
	const uint32_t batch = 3;
	strata_session *s = NULL;
	ck_assert_msg(strata_session_create(dev.rt, m, batch, 7, &s, &err) == STRATA_OK, "%s", err.message);
	ck_assert(strata_session_save(s, weights, &err) == STRATA_OK);
	strata_session_destroy(s);
	ck_assert_msg(strata_onnx_export(m, weights, onnx, &err) == STRATA_OK, "%s: %s", t->name, err.message);
	strata_onnx_import_options io = {.size = sizeof(io), .model_path = yaml, .weights_path = back_weights};
	strata_onnx_import_result *r = NULL;
	ck_assert_msg(strata_onnx_import(dev.reg, onnx, &io, &r, &err) == STRATA_OK, "%s: %s", t->name, err.message);
	strata_model *back = NULL;
	ck_assert_msg(strata_model_load(dev.reg, yaml, &back, &err) == STRATA_OK, "%s", err.message);
	size_t n_in = strata_model_input_count(m), n_out = strata_model_output_count(m);
	ck_assert_uint_eq(strata_model_input_count(back), n_in);
	ck_assert_uint_eq(strata_model_output_count(back), n_out);
	float *in[4] = {0}, *a[4] = {0}, *b[4] = {0};
	uint64_t counts[4];
	uint32_t seed = 12345;
	for (size_t i = 0; i < n_in; i++) {
		strata_shape sh = strata_model_input_shape_at(m, i);
		strata_shape bsh = strata_model_input_shape_at(back, i);
		/* Images come back channels-last, everything else in its own order: the same shape. */
		ck_assert_uint_eq(sh.rank, bsh.rank);
		for (uint32_t d = 0; d < sh.rank; d++)
			ck_assert_int_eq(sh.dims[d], bsh.dims[d]);
		in[i] = random_input(&sh, batch, &seed);
	}
	for (size_t k = 0; k < n_out; k++) {
		strata_shape sh = strata_model_output_shape(m, strata_model_output_layer(m, k));
		counts[k] = batch;
		for (uint32_t d = 0; d < sh.rank; d++)
			counts[k] *= (uint64_t)sh.dims[d];
		a[k] = malloc(counts[k] * sizeof(float));
		b[k] = malloc(counts[k] * sizeof(float));
	}
	run(dev.rt, m, weights, 7, in, batch, a);
	run(dev.rt, back, back_weights, 7, in, batch, b);
	for (size_t k = 0; k < n_out; k++) {
		double worst = 0, scale = 0;
		for (uint64_t j = 0; j < counts[k]; j++) {
			worst = fmax(worst, fabs((double)a[k][j] - b[k][j]));
			scale = fmax(scale, fabs((double)a[k][j]));
		}
		ck_assert_msg(scale > 0, "%s: output %zu is all zeros", t->name, k);
		ck_assert_msg(worst <= 1e-5 * fmax(1.0, scale), "%s: output %zu differs by %g (largest value %g) after the round "
		              "trip", t->name, k, worst, scale);
	}
	for (size_t i = 0; i < 4; i++) {
		free(in[i]);
		free(a[i]);
		free(b[i]);
	}
	strata_model_free(back);
	strata_onnx_import_result_free(r);
	strata_model_free(m);
	ts_device_close(&dev);
	ts_tmpdir_remove(dir);
	free(weights);
	free(onnx);
	free(yaml);
	free(back_weights);
}
END_TEST

/* ---- Hand-made ONNX files ------------------------------------------------------------------ */

/* A graph built here: `nodes` op types chained from input x (float [N, 4]) to output y. */
typedef struct node_spec {
	const char *op;
	const char *name;
	const char *in[3];
	const char *out;
} node_spec;

static void write_model(const char *path, const node_spec *nodes, size_t n, int64_t opset, int64_t dim,
                        const char *external)
{
	Onnx__ModelProto m = ONNX__MODEL_PROTO__INIT;
	Onnx__GraphProto g = ONNX__GRAPH_PROTO__INIT;
	Onnx__OperatorSetIdProto os = ONNX__OPERATOR_SET_ID_PROTO__INIT;
	Onnx__OperatorSetIdProto *oss[1] = {&os};
	os.domain = "";
	os.has_version = true;
	os.version = opset;
	m.has_ir_version = true;
	m.ir_version = 8;
	m.opset_import = oss;
	m.n_opset_import = 1;
	m.graph = &g;
	Onnx__NodeProto ns[8];
	Onnx__NodeProto *np[8];
	char *ins[8][3], *outs[8][1];
	for (size_t i = 0; i < n; i++) {
		onnx__node_proto__init(&ns[i]);
		ns[i].op_type = (char *)nodes[i].op;
		ns[i].name = (char *)nodes[i].name;
		ns[i].n_input = 0;
		for (int k = 0; k < 3 && nodes[i].in[k]; k++)
			ins[i][ns[i].n_input++] = (char *)nodes[i].in[k];
		ns[i].input = ins[i];
		outs[i][0] = (char *)nodes[i].out;
		ns[i].output = outs[i];
		ns[i].n_output = 1;
		np[i] = &ns[i];
	}
	g.node = np;
	g.n_node = n;
	/* input x: float [N, dim]; output y */
	Onnx__TensorShapeProto__Dimension d0 = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__INIT, d1 = d0;
	d0.value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM;
	d0.dim_param = "N";
	d1.value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE;
	d1.dim_value = dim;
	Onnx__TensorShapeProto__Dimension *dims[2] = {&d0, &d1};
	Onnx__TensorShapeProto shape = ONNX__TENSOR_SHAPE_PROTO__INIT;
	shape.dim = dims;
	shape.n_dim = 2;
	Onnx__TypeProto__Tensor tt = ONNX__TYPE_PROTO__TENSOR__INIT;
	tt.has_elem_type = true;
	tt.elem_type = ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT;
	tt.shape = &shape;
	Onnx__TypeProto tp = ONNX__TYPE_PROTO__INIT;
	tp.value_case = ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE;
	tp.tensor_type = &tt;
	Onnx__ValueInfoProto x = ONNX__VALUE_INFO_PROTO__INIT, y = ONNX__VALUE_INFO_PROTO__INIT;
	x.name = "x";
	x.type = &tp;
	y.name = "y";
	y.type = &tp;
	Onnx__ValueInfoProto *xi[1] = {&x}, *yo[1] = {&y};
	g.input = xi;
	g.n_input = 1;
	g.output = yo;
	g.n_output = 1;
	/* An initializer "w" (float [4, 4]), stored externally when `external` names a location. */
	Onnx__TensorProto w = ONNX__TENSOR_PROTO__INIT;
	int64_t wd[2] = {4, 4};
	float wv[16] = {0};
	w.name = "w";
	w.dims = wd;
	w.n_dims = 2;
	w.has_data_type = true;
	w.data_type = ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT;
	Onnx__StringStringEntryProto loc = ONNX__STRING_STRING_ENTRY_PROTO__INIT;
	Onnx__StringStringEntryProto *locs[1] = {&loc};
	if (external) {
		loc.key = "location";
		loc.value = (char *)external;
		w.external_data = locs;
		w.n_external_data = 1;
		w.has_data_location = true;
		w.data_location = ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL;
	} else {
		w.has_raw_data = true;
		w.raw_data.data = (uint8_t *)wv;
		w.raw_data.len = sizeof(wv);
	}
	Onnx__TensorProto *inits[1] = {&w};
	g.initializer = inits;
	g.n_initializer = 1;
	size_t size = onnx__model_proto__get_packed_size(&m);
	uint8_t *buf = malloc(size);
	ck_assert_ptr_nonnull(buf);
	onnx__model_proto__pack(&m, buf);
	FILE *f = fopen(path, "wb");
	ck_assert_ptr_nonnull(f);
	ck_assert_uint_eq(fwrite(buf, 1, size, f), size);
	fclose(f);
	free(buf);
}

/* Imports into DIR/out.yaml; *r (freed first) gets the result, which a refusal has too. */
static strata_status try_import(strata_registry *reg, const char *dir, const char *onnx, strata_error *err,
                                strata_onnx_import_result **r)
{
	strata_onnx_import_result_free(*r);
	*r = NULL;
	char *yaml = ts_join(dir, "out.yaml");
	strata_onnx_import_options io = {.size = sizeof(io), .model_path = yaml};
	strata_status st = strata_onnx_import(reg, onnx, &io, r, err);
	free(yaml);
	return st;
}

static bool exists(const char *dir, const char *name)
{
	char *p = ts_join(dir, name);
	struct stat s;
	bool yes = stat(p, &s) == 0;
	free(p);
	return yes;
}

START_TEST(test_refusals_listed)
{
	strata_registry *reg = ts_registry();
	char dir[256];
	ts_tmpdir_make(dir, sizeof(dir), "onnx");
	char *path = ts_join(dir, "m.onnx");
	const node_spec nodes[] = {
		{"MatMul", "mm", {"x", "w"}, "a"},
		{"Erf", "erf1", {"a"}, "b"},       /* no layer */
		{"Relu", "r", {"b"}, "c"},         /* after a refusal: skipped, not listed */
		{"Hardmax", "hm", {"a"}, "d"},     /* no layer */
		{"Add", "add", {"c", "d"}, "y"},
	};
	write_model(path, nodes, 5, 13, 4, NULL);
	strata_error err = {0};
	strata_onnx_import_result *r = NULL;
	ck_assert_int_eq(try_import(reg, dir, path, &err, &r), STRATA_ERR_UNSUPPORTED);
	const char *list = strata_onnx_import_refusals(r);
	ck_assert_msg(strstr(list, "Erf 'erf1' (opset 13)") && strstr(list, "Hardmax 'hm' (opset 13)"), "%s", list);
	ck_assert_msg(!strstr(list, "Relu"), "a node after a refusal is listed: %s", list);
	ck_assert_msg(strstr(err.message, "2 nodes cannot be imported"), "%s", err.message);
	ck_assert(!exists(dir, "out.yaml") && !exists(dir, "out.stw"));
	strata_onnx_import_result_free(r);
	ts_tmpdir_remove(dir);
	free(path);
	strata_registry_close(reg);
}
END_TEST

START_TEST(test_hostile_files)
{
	strata_registry *reg = ts_registry();
	char dir[256];
	ts_tmpdir_make(dir, sizeof(dir), "onnx");
	char *path = ts_join(dir, "m.onnx");
	strata_error err = {0};
	strata_onnx_import_result *r = NULL;
	/* A cycle: a reads b, b reads a. */
	const node_spec cyclic[] = {{"Relu", "first", {"b"}, "a"}, {"Relu", "second", {"a"}, "b"}, {"Relu", "out", {"b"}, "y"}};
	write_model(path, cyclic, 3, 13, 4, NULL);
	ck_assert_int_eq(try_import(reg, dir, path, &err, &r), STRATA_ERR_PARSE);
	ck_assert_msg(strstr(err.message, "Relu 'first'") && strstr(err.message, "cyclic"), "%s", err.message);
	/* Truncated: the first half of a valid file. */
	const node_spec ok[] = {{"MatMul", "mm", {"x", "w"}, "y"}};
	write_model(path, ok, 1, 13, 4, NULL);
	ck_assert_int_eq(try_import(reg, dir, path, &err, &r), STRATA_OK);
	strata_onnx_import_result_free(r);
	r = NULL;
	struct stat s;
	ck_assert_int_eq(stat(path, &s), 0);
	ck_assert_int_eq(truncate(path, s.st_size / 2), 0);
	ck_assert_int_eq(try_import(reg, dir, path, &err, &r), STRATA_ERR_PARSE);
	ck_assert_msg(strstr(err.message, "truncated"), "%s", err.message);
	/* External data outside the model's folder, by '..' and by an absolute path. */
	write_model(path, ok, 1, 13, 4, "../w.bin");
	ck_assert_int_eq(try_import(reg, dir, path, &err, &r), STRATA_ERR_INVALID);
	ck_assert_msg(strstr(err.message, "outside the model's folder"), "%s", err.message);
	write_model(path, ok, 1, 13, 4, "/etc/passwd");
	ck_assert_int_eq(try_import(reg, dir, path, &err, &r), STRATA_ERR_INVALID);
	/* ...and a link inside it that leads out. */
	char *link = ts_join(dir, "w.bin");
	ck_assert_int_eq(symlink("/etc/hostname", link), 0);
	write_model(path, ok, 1, 13, 4, "w.bin");
	ck_assert_int_eq(try_import(reg, dir, path, &err, &r), STRATA_ERR_INVALID);
	ck_assert_msg(strstr(err.message, "leads outside"), "%s", err.message);
	/* A huge dimension on the input. */
	write_model(path, ok, 1, 13, INT64_C(1) << 40, NULL);
	ck_assert_int_eq(try_import(reg, dir, path, &err, &r), STRATA_ERR_UNSUPPORTED);
	ck_assert_msg(strstr(err.message, "axis 1"), "%s", err.message);
	/* An opset out of range. */
	write_model(path, ok, 1, 5, 4, NULL);
	ck_assert_int_eq(try_import(reg, dir, path, &err, &r), STRATA_ERR_UNSUPPORTED);
	ck_assert_msg(strstr(err.message, "opset 5"), "%s", err.message);
	strata_onnx_import_result_free(r);
	free(link);
	ts_tmpdir_remove(dir);
	free(path);
	strata_registry_close(reg);
}
END_TEST

START_TEST(test_sources_in_summary)
{
	strata_registry *reg = ts_registry();
	char dir[256];
	ts_tmpdir_make(dir, sizeof(dir), "onnx");
	char *path = ts_join(dir, "m.onnx"), *yaml = ts_join(dir, "out.yaml");
	const node_spec nodes[] = {{"MatMul", "/fc/MatMul", {"x", "w"}, "a"}, {"Relu", "/act/Relu", {"a"}, "y"}};
	write_model(path, nodes, 2, 13, 4, NULL);
	strata_error err = {0};
	strata_onnx_import_result *r = NULL;
	ck_assert_int_eq(try_import(reg, dir, path, &err, &r), STRATA_OK);
	strata_model *m = NULL;
	ck_assert_msg(strata_model_load(reg, yaml, &m, &err) == STRATA_OK, "%s", err.message);
	/* The Relu became the dense layer's activation: one layer, both nodes named. */
	ck_assert_uint_eq(strata_model_layer_count(m), 1);
	char text[4096] = "";
	FILE *f = fmemopen(text, sizeof(text) - 1, "w");
	strata_model_print_summary(m, f);
	fclose(f);
	ck_assert_msg(strstr(text, "Layer sources:") && strstr(text, "fc_MatMul  <-  MatMul '/fc/MatMul' + Relu '/act/Relu'"),
	              "%s", text);
	const char *onnx_name, *strata_name;
	uint32_t rank;
	const int64_t *dims;
	const uint32_t *perm;
	ck_assert_int_eq(strata_onnx_import_io(r, false, 0, &onnx_name, &strata_name, &rank, &dims, &perm), STRATA_OK);
	ck_assert_str_eq(onnx_name, "x");
	ck_assert_uint_eq(rank, 2);
	ck_assert_int_eq(dims[0], -1);
	ck_assert_int_eq(dims[1], 4);
	strata_model_free(m);
	strata_onnx_import_result_free(r);
	ts_tmpdir_remove(dir);
	free(path);
	free(yaml);
	strata_registry_close(reg);
}
END_TEST

START_TEST(test_export_refusal)
{
	ts_device dev = ts_device_open();
	/* Two branches, each with a layer ONNX has no form for: both are listed. */
	strata_model *m = ts_model(dev.reg, "name: masked\n"
	                                    "inputs: [{name: ids, shape: [5], dtype: int32}, {name: x, shape: [4]}]\n"
	                                    "layers:\n"
	                                    "  - {name: emb, type: embedding, inputs: ids, input_dim: 9, output_dim: 3, mask_zero: true}\n"
	                                    "  - {name: rnn, type: gru, units: 2}\n"
	                                    "  - {name: map, type: som, inputs: x, rows: 2, columns: 2}\n"
	                                    "outputs: [rnn, map]\n");
	char dir[256];
	ts_tmpdir_make(dir, sizeof(dir), "onnx");
	char *weights = ts_join(dir, "w.stw"), *onnx = ts_join(dir, "m.onnx");
	strata_session *s = NULL;
	strata_error err = {0};
	ck_assert(strata_session_create(dev.rt, m, 1, 1, &s, &err) == STRATA_OK);
	ck_assert(strata_session_save(s, weights, &err) == STRATA_OK);
	strata_session_destroy(s);
	ck_assert_int_eq(strata_onnx_export(m, weights, onnx, &err), STRATA_ERR_UNSUPPORTED);
	ck_assert_msg(strstr(err.message, "emb (embedding): mask_zero") && strstr(err.message, "map (som)"), "%s",
	              err.message);
	ck_assert(!exists(dir, "m.onnx"));
	strata_model_free(m);
	ts_device_close(&dev);
	ts_tmpdir_remove(dir);
	free(weights);
	free(onnx);
}
END_TEST

static Suite *onnx_suite(void)
{
	Suite *s = suite_create("onnx");
	TCase *t = tcase_create("onnx");
	tcase_set_timeout(t, 300);
	tcase_add_loop_test(t, test_round_trip, 0, (int)(sizeof(trips) / sizeof(trips[0])));
	tcase_add_test(t, test_refusals_listed);
	tcase_add_test(t, test_hostile_files);
	tcase_add_test(t, test_sources_in_summary);
	tcase_add_test(t, test_export_refusal);
	suite_add_tcase(s, t);
	return s;
}

int main(void)
{
	return ts_run(onnx_suite());
}
