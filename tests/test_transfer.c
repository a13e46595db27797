/* Transfer learning on the real device and real MNIST: frozen layers keep their weights bit for
 * bit through training; init_from copies exactly the layers it lists and leaves the others at
 * their initializers; a layer with more units keeps the file's values for the old ones and its
 * initializer's for the new; every refusal names the entry, file, tensor and shapes, and changes
 * nothing; data.keep_labels keeps only some classes; and a network trained on digits 0-7 grows
 * to ten classes and learns 8 and 9 while keeping the others. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "train/dataset.h"
#include "exec/session.h"
#include "support.h"

/* ---- Fixtures ----------------------------------------------------------------------------- */

/* MNIST images [offset, offset + limit) among those labelled with one of `keep` (all when
 * n_keep is 0), one-hot over 10 classes unless `classes` says otherwise. */
static strata_dataset *mnist(strata_runtime *rt, bool train, uint32_t offset, uint32_t limit,
                             const uint32_t *keep, uint32_t n_keep, uint32_t classes)
{
	return ts_mnist(rt, train, (strata_dataset_options){.num_classes = classes, .offset = offset, .limit = limit,
	                                                    .keep_labels = keep, .n_keep_labels = n_keep});
}

/* A perceptron: flatten, dense_1 (hidden, relu), dense_2 (softmax); `init` is appended as the
 * file's last lines, from line 9 on. */
typedef struct mlp_spec {
	int hidden, classes;
	bool frozen;          /* dense_1 trainable: false */
	bool no_output_bias;  /* dense_2 use_bias: false */
	const char *out_bias; /* dense_2's bias initializer; NULL: zeros */
	const char *init;     /* init_from lines, or NULL */
} mlp_spec;

static void mlp_text(const mlp_spec *sp, char *buf, size_t size)
{
	snprintf(buf, size,
	         "name: mlp\n"
	         "input: {shape: [28, 28, 1]}\n"
	         "layers:\n"
	         "  - {type: flatten}\n"
	         "  - {type: dense, units: %d, activation: relu, trainable: %s}\n"
	         "  - {type: dense, units: %d, activation: softmax, use_bias: %s, bias_initializer: %s}\n"
	         "loss: categorical_crossentropy\n"
	         "optimizer: {type: adam, learning_rate: 0.002}\n"
	         "%s",
	         sp->hidden, sp->frozen ? "false" : "true", sp->classes, sp->no_output_bias ? "false" : "true",
	         sp->out_bias ? sp->out_bias : "zeros", sp->init ? sp->init : "");
}

static strata_model *mlp(strata_registry *reg, const mlp_spec *sp)
{
	char text[4096];
	mlp_text(sp, text, sizeof(text));
	return ts_model(reg, text);
}

typedef struct net {
	strata_model *m;
	strata_session *s;
} net;

static net open_net(strata_registry *reg, strata_runtime *rt, const mlp_spec *sp, uint64_t seed)
{
	net n = {.m = mlp(reg, sp)};
	strata_error err = {0};
	ck_assert_msg(strata_session_create(rt, n.m, 64, seed, &n.s, &err) == STRATA_OK, "%s", err.message);
	return n;
}

static void close_net(net *n)
{
	strata_session_destroy(n->s);
	strata_model_free(n->m);
}

static size_t weight_size(strata_session *s, size_t layer, size_t w)
{
	strata_shape shape;
	ck_assert_int_eq(strata_session_weight_info(s, layer, w, NULL, &shape), STRATA_OK);
	size_t n = 1;
	for (uint32_t d = 0; d < shape.rank; d++)
		n *= (size_t)shape.dims[d];
	return n;
}

static float *read_weight(strata_session *s, size_t layer, size_t w)
{
	size_t n = weight_size(s, layer, w);
	float *x = malloc(n * sizeof(float));
	strata_error err = {0};
	ck_assert_ptr_nonnull(x);
	ck_assert_msg(strata_session_read_weight(s, layer, w, x, n, &err) == STRATA_OK, "%s", err.message);
	return x;
}

/* Values of weight (layer, w) that differ from `ref` bit for bit. */
static size_t differences(strata_session *s, size_t layer, size_t w, const float *ref)
{
	size_t n = weight_size(s, layer, w), diffs = 0;
	float *x = read_weight(s, layer, w);
	for (size_t i = 0; i < n; i++)
		diffs += memcmp(&x[i], &ref[i], sizeof(float)) != 0;
	free(x);
	return diffs;
}

/* Gives every weight of the network distinct values, unlike any initializer's. */
static void randomize(net *n, unsigned seed)
{
	strata_error err = {0};
	for (size_t l = 0; l < strata_model_layer_count(n->m); l++)
		for (size_t w = 0; w < strata_session_weight_count(n->s, l); w++) {
			size_t count = weight_size(n->s, l, w);
			float *x = malloc(count * sizeof(float));
			ts_fill_random(x, count, seed + (unsigned)(10 * l + w), -0.5f, 0.5f);
			ck_assert_int_eq(strata_session_write_weight(n->s, l, w, x, count, &err), STRATA_OK);
			free(x);
		}
}

typedef struct tmp {
	char dir[256];
	char file[320]; /* the source network's weights */
} tmp;

static void tmp_open(tmp *t)
{
	const char *base = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
	snprintf(t->dir, sizeof(t->dir), "%s/strata-transfer-XXXXXX", base);
	ck_assert_ptr_nonnull(mkdtemp(t->dir));
	snprintf(t->file, sizeof(t->file), "%s/source.stw", t->dir);
}

static void tmp_close(tmp *t)
{
	char path[512];
	static const char *const names[] = {"source.stw", "bad.stw", "model.yaml", "digits8.stw"};
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		snprintf(path, sizeof(path), "%s/%s", t->dir, names[i]);
		unlink(path);
	}
	rmdir(t->dir);
}

/* The source network: 16 hidden units and 10 classes with random weights, saved after one
 * training step so the file holds optimizer state too. Returns it open. */
static net save_source(strata_registry *reg, strata_runtime *rt, const tmp *t)
{
	mlp_spec sp = {.hidden = 16, .classes = 10};
	net a = open_net(reg, rt, &sp, 1);
	strata_dataset *ds = mnist(rt, true, 0, 64, NULL, 0, 0);
	strata_error err = {0};
	ck_assert_msg(strata_session_train_steps(a.s, ds, 64, 1, &err) == STRATA_OK, "%s", err.message);
	randomize(&a, 100);
	ck_assert_msg(strata_session_save(a.s, t->file, &err) == STRATA_OK, "%s", err.message);
	strata_dataset_free(ds);
	return a;
}

/* The `init_from` block of a spec: lines 9 to 11. */
static const char *init_block(char *buf, size_t size, const char *path, const char *layers)
{
	snprintf(buf, size, "init_from:\n  weights: %s\n  layers: %s\n", path, layers);
	return buf;
}

/* ---- Frozen layers ------------------------------------------------------------------------ */

static void with_commas(uint64_t v, char *buf, size_t size)
{
	char digits[32];
	int n = snprintf(digits, sizeof(digits), "%llu", (unsigned long long)v);
	size_t o = 0;
	for (int i = 0; i < n && o + 2 < size; i++) {
		if (i > 0 && (n - i) % 3 == 0)
			buf[o++] = ',';
		buf[o++] = digits[i];
	}
	buf[o] = '\0';
}

START_TEST(test_frozen_weights_bit_identical)
{
	strata_registry *reg = ts_registry();
	strata_runtime *rt = ts_runtime(reg);
	mlp_spec sp = {.hidden = 32, .classes = 10, .frozen = true, .out_bias = "ones"};
	net n = open_net(reg, rt, &sp, 3);
	/* Non-zero frozen biases, so that an update would show. */
	randomize(&n, 7);
	float *k1 = read_weight(n.s, 1, 0), *b1 = read_weight(n.s, 1, 1);
	float *k2 = read_weight(n.s, 2, 0), *b2 = read_weight(n.s, 2, 1);
	strata_dataset *train = mnist(rt, true, 0, 1024, NULL, 0, 0);
	strata_fit_options o = {.size = sizeof(o), .epochs = 2, .batch_size = 64};
	strata_error err = {0};
	ck_assert_msg(strata_fit(n.s, train, NULL, &o, &err) == STRATA_OK, "%s", err.message);
	ck_assert_uint_eq(n.s->step, 32);
	ck_assert_uint_eq(differences(n.s, 1, 0, k1), 0);
	ck_assert_uint_eq(differences(n.s, 1, 1, b1), 0);
	/* The layer above learned: nearly every value moved. */
	size_t nk2 = weight_size(n.s, 2, 0), nb2 = weight_size(n.s, 2, 1);
	ck_assert_uint_gt(differences(n.s, 2, 0, k2), nk2 * 9 / 10);
	ck_assert_uint_eq(differences(n.s, 2, 1, b2), nb2);

	/* The summary counts the frozen layer's parameters as non-trainable. */
	uint64_t frozen = 784 * 32 + 32, trainable = 32 * 10 + 10;
	ck_assert_uint_eq(strata_model_param_count(n.m, 1), frozen);
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);
	strata_model_print_summary(n.m, f);
	fclose(f);
	char a[32], b[32], c[32], line[96];
	with_commas(frozen + trainable, a, sizeof(a));
	with_commas(trainable, b, sizeof(b));
	with_commas(frozen, c, sizeof(c));
	snprintf(line, sizeof(line), "\nTotal params: %s\n", a);
	ck_assert_msg(strstr(text, line), "%s", text);
	snprintf(line, sizeof(line), "\nTrainable params: %s\n", b);
	ck_assert_msg(strstr(text, line), "%s", text);
	snprintf(line, sizeof(line), "\nNon-trainable params: %s\n", c);
	ck_assert_msg(strstr(text, line), "%s", text);
	free(text);

	free(k1);
	free(b1);
	free(k2);
	free(b2);
	strata_dataset_free(train);
	close_net(&n);
	strata_runtime_destroy(rt);
	strata_registry_close(reg);
}
END_TEST

/* ---- init_from ---------------------------------------------------------------------------- */

START_TEST(test_init_from_copies_listed_layers)
{
	strata_registry *reg = ts_registry();
	strata_runtime *rt = ts_runtime(reg);
	tmp t;
	tmp_open(&t);
	net a = save_source(reg, rt, &t);
	char init[512];
	mlp_spec sp = {.hidden = 16, .classes = 10, .init = init_block(init, sizeof(init), t.file, "[dense_1]")};
	net b = open_net(reg, rt, &sp, 2);
	float *k2 = read_weight(b.s, 2, 0), *b2 = read_weight(b.s, 2, 1);
	/* Another seed: the initial dense_1 differs from the file everywhere. */
	float *ak1 = read_weight(a.s, 1, 0), *ab1 = read_weight(a.s, 1, 1);
	ck_assert_uint_eq(differences(b.s, 1, 0, ak1), weight_size(b.s, 1, 0));

	strata_error err = {0};
	ck_assert_msg(strata_session_init_from(b.s, NULL, 0, &err) == STRATA_OK, "%s", err.message);
	ck_assert_uint_eq(differences(b.s, 1, 0, ak1), 0);
	ck_assert_uint_eq(differences(b.s, 1, 1, ab1), 0);
	ck_assert_uint_eq(differences(b.s, 2, 0, k2), 0);
	ck_assert_uint_eq(differences(b.s, 2, 1, b2), 0);

	/* The file's optimizer state is not taken: training starts from zero moments. */
	ck_assert_int_eq(st_session_enable_training(b.s, &err), STRATA_OK);
	st_named_tensor *nt = NULL;
	size_t nn = 0, slots = 0;
	ck_assert_int_eq(st_session_named_tensors(b.s, true, &nt, &nn, &err), STRATA_OK);
	for (size_t i = 0; i < nn; i++) {
		if (nt[i].kind != ST_TENSOR_OPTIMIZER)
			continue;
		float *x = malloc(nt[i].count * sizeof(float));
		size_t bytes = nt[i].count * sizeof(float);
		ck_assert_int_eq(st_tensor_read(rt, nt[i].tensor, 0, x, bytes, &err), STRATA_OK);
		for (uint64_t k = 0; k < nt[i].count; k++)
			ck_assert_msg(x[k] == 0.0f, "%s[%llu] = %g", nt[i].name, (unsigned long long)k, x[k]);
		free(x);
		slots++;
	}
	ck_assert_uint_gt(slots, 0);
	ck_assert_uint_eq(b.s->opt.iterations, 0);
	free(nt);
	close_net(&b);

	/* `init_from: PATH`: every layer the file holds. */
	snprintf(init, sizeof(init), "init_from: %s\n", t.file);
	mlp_spec all = {.hidden = 16, .classes = 10, .init = init};
	b = open_net(reg, rt, &all, 2);
	ck_assert_msg(strata_session_init_from(b.s, NULL, 0, &err) == STRATA_OK, "%s", err.message);
	for (size_t l = 1; l <= 2; l++)
		for (size_t w = 0; w < 2; w++) {
			float *x = read_weight(a.s, l, w);
			ck_assert_uint_eq(differences(b.s, l, w, x), 0);
			free(x);
		}
	close_net(&b);

	free(k2);
	free(b2);
	free(ak1);
	free(ab1);
	close_net(&a);
	tmp_close(&t);
	strata_runtime_destroy(rt);
	strata_registry_close(reg);
}
END_TEST

/* 10 classes grow to 12: columns 0-9 of the kernel and entries 0-9 of the bias are the file's,
 * the new ones the initializer's (ones for the bias, so they show). */
START_TEST(test_grow_classes)
{
	strata_registry *reg = ts_registry();
	strata_runtime *rt = ts_runtime(reg);
	tmp t;
	tmp_open(&t);
	net a = save_source(reg, rt, &t);
	char init[512];
	mlp_spec sp = {.hidden = 16, .classes = 12, .out_bias = "ones",
	               .init = init_block(init, sizeof(init), t.file, "[dense_1, dense_2]")};
	net b = open_net(reg, rt, &sp, 2);
	float *before_k = read_weight(b.s, 2, 0), *before_b = read_weight(b.s, 2, 1);
	strata_error err = {0};
	char report[512];
	ck_assert_msg(strata_session_init_from(b.s, report, sizeof(report), &err) == STRATA_OK, "%s", err.message);
	char want_report[600];
	snprintf(want_report, sizeof(want_report), "dense_1, dense_2 from %s; dense_2 grows from 10 to 12 outputs",
	         t.file);
	ck_assert_str_eq(report, want_report);

	float *ak = read_weight(a.s, 2, 0), *ab = read_weight(a.s, 2, 1);
	float *k = read_weight(b.s, 2, 0), *bias = read_weight(b.s, 2, 1);
	for (int i = 0; i < 16; i++)
		for (int u = 0; u < 12; u++) {
			const float *want = u < 10 ? &ak[i * 10 + u] : &before_k[i * 12 + u];
			ck_assert_msg(!memcmp(&k[i * 12 + u], want, sizeof(float)), "kernel[%d][%d] = %g, expected %g",
			              i, u, k[i * 12 + u], *want);
		}
	for (int u = 0; u < 12; u++) {
		const float *want = u < 10 ? &ab[u] : &before_b[u];
		ck_assert_msg(!memcmp(&bias[u], want, sizeof(float)), "bias[%d] = %g, expected %g", u, bias[u],
		              *want);
	}
	ck_assert_float_eq(bias[10], 1.0f);
	ck_assert_float_eq(bias[11], 1.0f);
	float *ak1 = read_weight(a.s, 1, 0);
	ck_assert_uint_eq(differences(b.s, 1, 0, ak1), 0);
	free(ak1);

	free(ak);
	free(ab);
	free(k);
	free(bias);
	free(before_k);
	free(before_b);
	close_net(&b);
	close_net(&a);
	tmp_close(&t);
	strata_runtime_destroy(rt);
	strata_registry_close(reg);
}
END_TEST

/* Runs init_from on a network of spec `sp` that must be refused with `status` and a message
 * starting "test.yaml:" + `where` and containing `needle` (and the file name); no weight may
 * have changed. */
static void expect_refusal(strata_registry *reg, strata_runtime *rt, const mlp_spec *sp, strata_status status,
                           const char *where, const char *needle, const char *file)
{
	net b = open_net(reg, rt, sp, 2);
	float *before[3][2] = {{NULL}};
	for (size_t l = 1; l <= 2; l++)
		for (size_t w = 0; w < strata_session_weight_count(b.s, l); w++)
			before[l][w] = read_weight(b.s, l, w);
	strata_error err = {0};
	ck_assert_int_eq(strata_session_init_from(b.s, NULL, 0, &err), status);
	ck_assert_int_eq(err.status, status);
	char prefix[64];
	snprintf(prefix, sizeof(prefix), "test.yaml:%s: init_from: ", where);
	ck_assert_msg(!strncmp(err.message, prefix, strlen(prefix)), "expected \"%s...\", got: %s", prefix,
	              err.message);
	ck_assert_msg(strstr(err.message, needle), "expected \"%s\" in: %s", needle, err.message);
	ck_assert_msg(strstr(err.message, file), "expected the file %s in: %s", file, err.message);
	for (size_t l = 1; l <= 2; l++)
		for (size_t w = 0; w < strata_session_weight_count(b.s, l); w++) {
			ck_assert_uint_eq(differences(b.s, l, w, before[l][w]), 0);
			free(before[l][w]);
		}
	close_net(&b);
}

START_TEST(test_init_from_refusals)
{
	strata_registry *reg = ts_registry();
	strata_runtime *rt = ts_runtime(reg);
	tmp t;
	tmp_open(&t);
	net a = save_source(reg, rt, &t);
	close_net(&a);
	char init[512], missing[400], bad[400], want[512];

	/* No file: the weights entry's position, the path and the system's reason. */
	snprintf(missing, sizeof(missing), "%s/none.stw", t.dir);
	mlp_spec sp = {.hidden = 16, .classes = 10, .init = init_block(init, sizeof(init), missing, "[dense_1]")};
	expect_refusal(reg, rt, &sp, STRATA_ERR_NOT_FOUND, "10:12", "cannot open", missing);

	/* Not a weights file. */
	snprintf(bad, sizeof(bad), "%s/bad.stw", t.dir);
	FILE *f = fopen(bad, "wb");
	fputs("name: not weights\n", f);
	fclose(f);
	sp.init = init_block(init, sizeof(init), bad, "[dense_1]");
	expect_refusal(reg, rt, &sp, STRATA_ERR_PARSE, "10:12", "not a Strata weights file", bad);

	/* dense_2's kernel is (16, 10) in the file, (20, 10) here: the inputs differ. The refusal
	 * comes after dense_1 (which may grow from 16 to 20 units) was accepted, and nothing is
	 * written. */
	sp = (mlp_spec){.hidden = 20, .classes = 10,
	                .init = init_block(init, sizeof(init), t.file, "[dense_1, dense_2]")};
	expect_refusal(reg, rt, &sp, STRATA_ERR_INVALID, "11:21",
	               "dense_2/kernel has shape (16, 10) in ", t.file);
	expect_refusal(reg, rt, &sp, STRATA_ERR_INVALID, "11:21",
	               " but (20, 10) in the model: only the last dimension, the layer's outputs, may differ",
	               t.file);

	/* Fewer classes than the file. */
	sp = (mlp_spec){.hidden = 16, .classes = 8, .init = init_block(init, sizeof(init), t.file, "[dense_2]")};
	snprintf(want, sizeof(want),
	         "dense_2/kernel has shape (16, 10) in %s but (16, 8) in the model: "
	         "the model has fewer outputs than the file; init_from can only add outputs",
	         t.file);
	expect_refusal(reg, rt, &sp, STRATA_ERR_INVALID, "11:12", want, t.file);

	/* A weight the model lacks. */
	sp = (mlp_spec){.hidden = 16, .classes = 10, .no_output_bias = true,
	                .init = init_block(init, sizeof(init), t.file, "[dense_2]")};
	expect_refusal(reg, rt, &sp, STRATA_ERR_INVALID, "11:12",
	               " holds dense_2/bias, but layer 'dense_2' of the model has no weight 'bias' "
	               "(its weights: kernel)",
	               t.file);

	/* A layer the file lacks: renamed in this model. */
	char text[4096];
	snprintf(text, sizeof(text),
	         "input: {shape: [28, 28, 1]}\n"
	         "layers:\n"
	         "  - {type: flatten}\n"
	         "  - {type: dense, units: 16, name: hidden}\n"
	         "  - {type: dense, units: 10}\n"
	         "init_from: {weights: %s, layers: [hidden]}\n", t.file);
	strata_model *m = ts_model(reg, text);
	strata_session *s = NULL;
	strata_error err = {0};
	ck_assert_int_eq(strata_session_create(rt, m, 8, 1, &s, &err), STRATA_OK);
	ck_assert_int_eq(strata_session_init_from(s, NULL, 0, &err), STRATA_ERR_INVALID);
	size_t col = strlen("init_from: {weights: ") + strlen(t.file) + strlen(", layers: [") + 1;
	snprintf(want, sizeof(want),
	         "test.yaml:6:%zu: init_from: %s holds no weights of layer 'hidden'; "
	         "it holds layers: dense_1, dense_2",
	         col, t.file);
	ck_assert_str_eq(err.message, want);
	strata_session_destroy(s);
	strata_model_free(m);

	/* Names the model lacks are refused when the model loads, at the name. */
	snprintf(text, sizeof(text),
	         "input: {shape: [28, 28, 1]}\n"
	         "layers: [{type: flatten}, {type: dense, units: 4}]\n"
	         "init_from:\n"
	         "  weights: w.stw\n"
	         "  layers: [dense_1, dense_9]\n");
	ck_assert_int_eq(strata_model_load_string(reg, text, strlen(text), "test.yaml", NULL, &m, &err),
	                 STRATA_ERR_INVALID);
	ck_assert_str_eq(err.message,
	                 "test.yaml:5:21: init_from: no layer 'dense_9' in the model; "
	                 "its layers: flatten_1, dense_1");

	tmp_close(&t);
	strata_runtime_destroy(rt);
	strata_registry_close(reg);
}
END_TEST

/* The weights path resolves from the model file's folder, as data paths do; the model loads (and
 * summarizes) without the file, which only a session's init_from reads. */
START_TEST(test_init_from_paths)
{
	strata_registry *reg = ts_registry();
	tmp t;
	tmp_open(&t);
	char path[512], want[512];
	snprintf(path, sizeof(path), "%s/model.yaml", t.dir);
	FILE *f = fopen(path, "w");
	fputs("input: {shape: [4]}\n"
	      "layers: [{type: dense, units: 2}]\n"
	      "data: {num_classes: 3, keep_labels: [2, 0]}\n"
	      "init_from: sub/w.stw\n", f);
	fclose(f);
	strata_model *m = NULL;
	strata_error err = {0};
	ck_assert_msg(strata_model_load(reg, path, &m, &err) == STRATA_OK, "%s", err.message);
	snprintf(want, sizeof(want), "%s/sub/w.stw", t.dir);
	ck_assert_str_eq(m->recipe.init_from.weights, want);
	ck_assert_uint_eq(m->recipe.init_from.n_layers, 0);
	strata_data_config d = strata_model_data(m);
	ck_assert_uint_eq(d.n_keep_labels, 2);
	ck_assert_uint_eq(d.keep_labels[0], 2);
	ck_assert_uint_eq(d.keep_labels[1], 0);
	strata_model_free(m);

	/* The talk's model: mnist_cnn grown to 12 classes from its trained weights. */
	char *cnn12 = ts_src_path("../models/mnist_cnn_12.yaml");
	ck_assert_msg(strata_model_load(reg, cnn12, &m, &err) == STRATA_OK, "%s", err.message);
	ck_assert_ptr_nonnull(strstr(m->recipe.init_from.weights, "/models/../runs/mnist_cnn.stw"));
	ck_assert_uint_eq(strata_model_output_shape(m, strata_model_layer_count(m) - 1).dims[0], 12);
	ck_assert_uint_eq(m->recipe.init_from.n_layers, 4);
	ck_assert_uint_eq(strata_model_data(m).num_classes, 12);
	strata_model_free(m);
	free(cnn12);
	unlink(path);
	tmp_close(&t);
	strata_registry_close(reg);
}
END_TEST

/* ---- keep_labels -------------------------------------------------------------------------- */

START_TEST(test_keep_labels)
{
	strata_registry *reg = ts_registry();
	strata_runtime *rt = ts_runtime(reg);
	strata_idx *labels = NULL;
	char *lp = ts_mnist_file("train-labels-idx1-ubyte");
	strata_error err = {0};
	ck_assert_int_eq(strata_idx_load(lp, &labels, &err), STRATA_OK);
	const uint8_t *all = labels->data;

	/* Digits 0-7 under an 8-wide one-hot: offset and limit count the kept samples. */
	static const uint32_t low[] = {0, 1, 2, 3, 4, 5, 6, 7};
	strata_dataset *ds = mnist(rt, true, 10, 500, low, 8, 8);
	ck_assert_uint_eq(strata_dataset_count(ds), 500);
	uint32_t k = 0, i = 0;
	for (; k < 10; i++)
		k += all[i] < 8;
	for (uint32_t j = 0; j < 500; i++) {
		if (all[i] >= 8)
			continue;
		ck_assert_uint_eq(ds->targets[0].host[j], all[i]);
		j++;
	}
	strata_dataset_free(ds);

	/* One class only, as the per-digit accuracies below use. */
	static const uint32_t nine[] = {9};
	ds = mnist(rt, false, 0, 0, nine, 1, 10);
	uint32_t nines = 0;
	strata_idx *tl = NULL;
	char *tp = ts_mnist_file("t10k-labels-idx1-ubyte");
	ck_assert_int_eq(strata_idx_load(tp, &tl, &err), STRATA_OK);
	for (uint32_t j = 0; j < tl->dims[0]; j++)
		nines += ((const uint8_t *)tl->data)[j] == 9;
	ck_assert_uint_eq(strata_dataset_count(ds), nines);
	for (uint32_t j = 0; j < nines; j++)
		ck_assert_uint_eq(ds->targets[0].host[j], 9);
	strata_dataset_free(ds);

	/* Refusals: a kept class beyond num_classes, more samples than are kept. */
	char *ip = ts_mnist_file("t10k-images-idx3-ubyte");
	strata_dataset_options o = {.size = sizeof(o), .images = ip, .labels = tp, .num_classes = 8,
	                            .keep_labels = nine, .n_keep_labels = 1};
	ck_assert_int_eq(strata_dataset_load(rt, &o, &ds, &err), STRATA_ERR_INVALID);
	ck_assert_msg(strstr(err.message, "keep_labels holds class 9, not below num_classes (8)"), "%s",
	              err.message);
	o.num_classes = 10;
	o.limit = nines + 1;
	ck_assert_int_eq(strata_dataset_load(rt, &o, &ds, &err), STRATA_ERR_INVALID);
	ck_assert_msg(strstr(err.message, "with a label in keep_labels"), "%s", err.message);
	/* Without a filter, labels 8 and 9 are beyond 8 classes. */
	o.num_classes = 8;
	o.limit = 0;
	o.n_keep_labels = 0;
	o.keep_labels = NULL;
	ck_assert_int_eq(strata_dataset_load(rt, &o, &ds, &err), STRATA_ERR_INVALID);
	ck_assert_msg(strstr(err.message, "not below num_classes (8)"), "%s", err.message);

	free(ip);
	free(tp);
	free(lp);
	strata_idx_free(tl);
	strata_idx_free(labels);
	strata_runtime_destroy(rt);
	strata_registry_close(reg);
}
END_TEST

/* ---- Adding classes end to end ------------------------------------------------------------ */

static double accuracy(strata_runtime *rt, strata_session *s, const uint32_t *keep, uint32_t n_keep)
{
	strata_dataset *test = mnist(rt, false, 0, 0, keep, n_keep, 10);
	strata_eval_result r;
	strata_error err = {0};
	ck_assert_msg(strata_evaluate(s, test, 64, &r, &err) == STRATA_OK, "%s", err.message);
	strata_dataset_free(test);
	return r.accuracy;
}

/* Train on digits 0-7 with 8 outputs; grow to 10 outputs from that file with the hidden layer
 * frozen; train briefly on all ten digits. The new units must learn 8 and 9 and the old ones
 * keep 0-7. */
START_TEST(test_grow_8_to_10_digits)
{
	enum { HIDDEN = 64, TRAIN8 = 4000, TRAIN10 = 4000 };
	strata_registry *reg = ts_registry();
	strata_runtime *rt = ts_runtime(reg);
	tmp t;
	tmp_open(&t);
	char file[400];
	snprintf(file, sizeof(file), "%s/digits8.stw", t.dir);
	static const uint32_t low[] = {0, 1, 2, 3, 4, 5, 6, 7}, eight[] = {8}, nine[] = {9};
	strata_error err = {0};

	mlp_spec s8 = {.hidden = HIDDEN, .classes = 8};
	net a = open_net(reg, rt, &s8, 1);
	strata_dataset *train8 = mnist(rt, true, 0, TRAIN8, low, 8, 8);
	strata_fit_options o = {.size = sizeof(o), .epochs = 2, .batch_size = 64};
	ck_assert_msg(strata_fit(a.s, train8, NULL, &o, &err) == STRATA_OK, "%s", err.message);
	ck_assert_msg(strata_session_save(a.s, file, &err) == STRATA_OK, "%s", err.message);
	strata_dataset *test8 = mnist(rt, false, 0, 0, low, 8, 8);
	strata_eval_result r8;
	ck_assert_msg(strata_evaluate(a.s, test8, 64, &r8, &err) == STRATA_OK, "%s", err.message);
	strata_dataset_free(test8);
	strata_dataset_free(train8);
	float *k1 = read_weight(a.s, 1, 0), *b1 = read_weight(a.s, 1, 1);
	close_net(&a);

	char init[512];
	mlp_spec s10 = {.hidden = HIDDEN, .classes = 10, .frozen = true,
	                .init = init_block(init, sizeof(init), file, "[dense_1, dense_2]")};
	net b = open_net(reg, rt, &s10, 2);
	ck_assert_msg(strata_session_init_from(b.s, NULL, 0, &err) == STRATA_OK, "%s", err.message);
	double grown8 = accuracy(rt, b.s, eight, 1), grown9 = accuracy(rt, b.s, nine, 1);
	/* A different slice of the training set, all ten digits. */
	strata_dataset *train10 = mnist(rt, true, TRAIN8, TRAIN10, NULL, 0, 10);
	o.epochs = 2;
	ck_assert_msg(strata_fit(b.s, train10, NULL, &o, &err) == STRATA_OK, "%s", err.message);
	double all = accuracy(rt, b.s, NULL, 0), low_acc = accuracy(rt, b.s, low, 8);
	double acc8 = accuracy(rt, b.s, eight, 1), acc9 = accuracy(rt, b.s, nine, 1);
	printf("digits 0-7, %d images x 2 epochs: test accuracy %.4f on 0-7\n", TRAIN8, r8.accuracy);
	printf("grown to 10 (dense_1 frozen), before training: 8: %.4f, 9: %.4f\n", grown8, grown9);
	printf("after %d images of 0-9 x 2 epochs: all %.4f, 0-7 %.4f, 8: %.4f, 9: %.4f\n", TRAIN10, all, low_acc,
	       acc8, acc9);
	fflush(stdout);
	/* Measured on PoCL (seeds 1 and 2): 0-7 alone 0.940; grown, all 0.871, 0-7 0.913, 8 0.692,
	 * 9 0.710 (0.911, 0.921, 0.851, 0.885 with dense_1 trainable too). */
	ck_assert_double_ge(r8.accuracy, 0.90);
	ck_assert_double_ge(all, 0.80);
	ck_assert_double_ge(low_acc, 0.85);
	ck_assert_double_ge(acc8, 0.55);
	ck_assert_double_ge(acc9, 0.55);
	/* The frozen layer is still the file's. */
	ck_assert_uint_eq(differences(b.s, 1, 0, k1), 0);
	ck_assert_uint_eq(differences(b.s, 1, 1, b1), 0);
	free(k1);
	free(b1);

	strata_dataset_free(train10);
	close_net(&b);
	tmp_close(&t);
	strata_runtime_destroy(rt);
	strata_registry_close(reg);
}
END_TEST

static Suite *transfer_suite(void)
{
	Suite *s = suite_create("transfer");
	TCase *tc = tcase_create("init_from");
	tcase_set_timeout(tc, 300);
	tcase_add_test(tc, test_init_from_paths);
	tcase_add_test(tc, test_keep_labels);
	tcase_add_test(tc, test_init_from_copies_listed_layers);
	tcase_add_test(tc, test_grow_classes);
	tcase_add_test(tc, test_init_from_refusals);
	suite_add_tcase(s, tc);
	TCase *fit = tcase_create("fit");
	tcase_set_timeout(fit, 600);
	tcase_add_test(fit, test_frozen_weights_bit_identical);
	tcase_add_test(fit, test_grow_8_to_10_digits);
	suite_add_tcase(s, fit);
	return s;
}

int main(void)
{
	return ts_run(transfer_suite());
}
