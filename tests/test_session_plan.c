/* The activation buffers of a session, planned by liveness (exec/budget.c):
 *  - a chain planned for inference uses two buffers in turn, never a layer's input buffer for its
 *    output, and fewer bytes than one buffer per layer; the figures of the budget agree with what
 *    is allocated, for inference and for training;
 *  - a residual network (models/mnist_resnet.yaml) gives bit-identical outputs, whole and through
 *    strata_session_forward_to at every layer, planned for inference and for training;
 *  - a graph whose last layer in the file is not the last to run: forward_to that layer (a whole
 *    pass) still returns its output; and a model output that layers run after keeps its value;
 *  - a session that evaluates, switches to the training plan, trains and evaluates again ends as
 *    one that trained from the start: same weights, same evaluation; a switch the device's memory
 *    refuses leaves the inference plan working;
 *  - STRATA_POOL=separate (memory checkers) plans one buffer per output from the start. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "support.h"

#include "device/runtime.h"
#include "exec/session.h"
#include "model/model.h"

static float *alloc_floats(size_t n)
{
	float *p = calloc(n ? n : 1, sizeof(*p));
	ck_assert_ptr_nonnull(p);
	return p;
}

/* The planner as st_session_enable_training() calls it, then training enabled. */
static void enable_training(strata_session *s)
{
	strata_error err = {0};
	ck_assert_msg(st_session_plan_activations(s, true, &err) == STRATA_OK, "%s", err.message);
	ck_assert_msg(st_session_enable_training(s, &err) == STRATA_OK, "%s", err.message);
}

/* Floats of layer i's output per sample, and all of them over the layers. */
static uint64_t out_elems(const strata_model *m, size_t i)
{
	return st_shape_elems(&m->layers[i].out);
}

static uint64_t all_out_elems(const strata_model *m)
{
	uint64_t n = 0;
	for (size_t i = 0; i < m->n_layers; i++)
		n += out_elems(m, i);
	return n;
}

/* The budget's per-sample figure less the inputs and workspaces: the activations it counts. */
static uint64_t counted_activation_bytes(const strata_model *m, uint64_t per_sample)
{
	per_sample -= st_shape_elems(&m->input) * sizeof(float);
	for (size_t v = 1; v < m->n_inputs; v++)
		per_sample -= st_shape_elems(&m->inputs[v].shape) * sizeof(float);
	for (size_t i = 0; i < m->n_layers; i++)
		for (uint32_t w = 0; w < m->layers[i].n_workspaces; w++)
			per_sample -= m->layers[i].workspaces[w];
	return per_sample;
}

/* ---- (a) a chain ------------------------------------------------------------------------------- */

/* Six dense layers of 32, 32, 16, 32, 8 and 4 units: 124 floats a sample in all. In the model's
 * order each output is read by the next layer only, so the output of layer i may go where layer
 * i - 2's was (read by layer i - 1, which has run), never where layer i - 1's is (its own input):
 * two buffers, of 32 floats each (layers 0, 2, 4 and 1, 3, 5). */
static const char *const chain_yaml = "input: {shape: [16]}\n"
                                      "layers:\n"
                                      "  - {type: dense, units: 32, activation: relu}\n"
                                      "  - {type: dense, units: 32, activation: relu}\n"
                                      "  - {type: dense, units: 16, activation: relu}\n"
                                      "  - {type: dense, units: 32, activation: relu}\n"
                                      "  - {type: dense, units: 8, activation: relu}\n"
                                      "  - {type: dense, units: 4, activation: softmax}\n"
                                      "loss: categorical_crossentropy\n"
                                      "optimizer: {type: sgd, learning_rate: 0.1}\n";

START_TEST(test_chain_uses_two_buffers)
{
	const uint32_t batch = 5;
	ts_device dev = ts_device_open();
	ts_net net = ts_net_open(&dev, chain_yaml, batch, 3);
	strata_session *s = net.s;
	const strata_model *m = net.m;
	ck_assert_uint_eq(m->n_layers, 6);

	uint64_t bytes = 0, weights = 0;
	size_t n = st_session_activation_buffers(s, &bytes);
	ck_assert_uint_eq(n, 2);
	ck_assert_uint_eq(bytes, 2 * 32 * sizeof(float) * batch);
	ck_assert_uint_lt(bytes, all_out_elems(m) * sizeof(float) * batch);
	/* The budget counts what is allocated. */
	uint64_t per_sample = st_session_inference_bytes(m, &weights);
	ck_assert_uint_eq(counted_activation_bytes(m, per_sample) * batch, bytes);
	for (size_t i = 0; i < m->n_layers; i++) {
		const st_layer_bind *b = &s->binds[i];
		ck_assert_uint_eq(b->output.bytes, out_elems(m, i) * sizeof(float) * batch);
		for (uint32_t k = 0; k < m->layers[i].n_inputs; k++)
			ck_assert_msg(b->in[k]->mem != b->output.mem, "layer %zu writes where its input %u lives", i, k);
		if (i >= 2)
			ck_assert_msg(b->output.mem == s->binds[i - 2].output.mem, "layer %zu does not reuse layer %zu's buffer",
			              i, i - 2);
	}

	/* The same chain planned for training: one buffer per layer, as the budget counts. */
	float x[5 * 16], y_inference[5 * 4], y_training[5 * 4];
	ts_fill_random(x, 5 * 16, 11, -1.0f, 1.0f);
	strata_error err = {0};
	ck_assert_msg(strata_session_forward(s, x, batch, y_inference, &err) == STRATA_OK, "%s", err.message);
	enable_training(s);
	n = st_session_activation_buffers(s, &bytes);
	ck_assert_uint_eq(n, 6);
	ck_assert_uint_eq(bytes, all_out_elems(m) * sizeof(float) * batch);
	per_sample = st_session_training_bytes(m, &weights);
	ck_assert_uint_eq(counted_activation_bytes(m, per_sample) * batch, bytes);
	for (size_t i = 0; i < m->n_layers; i++)
		for (size_t j = 0; j < i; j++)
			ck_assert_msg(s->binds[i].output.mem != s->binds[j].output.mem, "layers %zu and %zu share a buffer", j,
			              i);
	ck_assert_msg(strata_session_forward(s, x, batch, y_training, &err) == STRATA_OK, "%s", err.message);
	ck_assert_msg(memcmp(y_inference, y_training, sizeof(y_training)) == 0, "the plans give different outputs");
	ts_net_close(&net);
	ts_device_close(&dev);
}
END_TEST

/* The figures of the models of models/ at batch 128, one buffer per layer against the plan. */
START_TEST(test_model_figures)
{
	static const char *const files[] = {"../models/mnist_cnn.yaml", "../models/mnist_resnet.yaml"};
	ts_device dev = ts_device_open();
	for (size_t f = 0; f < sizeof(files) / sizeof(files[0]); f++) {
		ts_net net = ts_net_from(&dev, ts_model_file(dev.reg, files[f]), 128, 1);
		uint64_t weights = 0, bytes = 0;
		uint64_t inference = st_session_inference_bytes(net.m, &weights);
		uint64_t training = st_session_training_bytes(net.m, &weights);
		size_t n = st_session_activation_buffers(net.s, &bytes);
		printf("%s, batch 128: activations %zu buffers, %.2f MiB (one per layer: %.2f MiB); a session "
		       "%.2f MiB for inference, %.2f MiB for training (inputs, activations, workspaces)\n",
		       files[f], n, bytes / 1048576.0, all_out_elems(net.m) * sizeof(float) * 128 / 1048576.0,
		       inference * 128 / 1048576.0, training * 128 / 1048576.0);
		ck_assert_uint_lt(n, net.m->n_layers);
		ck_assert_uint_lt(inference, training);
		ck_assert_uint_eq(counted_activation_bytes(net.m, inference) * 128, bytes);
		ck_assert_uint_eq(counted_activation_bytes(net.m, training), all_out_elems(net.m) * sizeof(float));
		ts_net_close(&net);
	}
	ts_device_close(&dev);
}
END_TEST

/* ---- (b), (d) a residual network ------------------------------------------------------------- */

/* Runs x through `s` whole and to every layer; out[l] gets layer l's output, out[n] the model's. */
static float **outputs_of(strata_session *s, const float *x, uint32_t batch)
{
	const strata_model *m = s->model;
	float **out = calloc(m->n_layers + 1, sizeof(*out));
	ck_assert_ptr_nonnull(out);
	strata_error err = {0};
	for (size_t l = 0; l < m->n_layers; l++) {
		out[l] = alloc_floats(out_elems(m, l) * batch);
		ck_assert_msg(strata_session_forward_to(s, x, batch, l, out[l], &err) == STRATA_OK, "%s", err.message);
	}
	out[m->n_layers] = alloc_floats(st_model_output_elems(m) * batch);
	ck_assert_msg(strata_session_forward(s, x, batch, out[m->n_layers], &err) == STRATA_OK, "%s", err.message);
	return out;
}

static void free_outputs(float **out, size_t n_layers)
{
	for (size_t l = 0; l <= n_layers; l++)
		free(out[l]);
	free(out);
}

/* Two sessions of the same model and seed, one planned for inference and one for training,
 * compared bit for bit at every layer (forward_to) and whole (forward). */
static void compare_plans(const ts_device *dev, strata_model *ma, strata_model *mb, uint32_t batch,
                          size_t min_shared)
{
	ts_net a = ts_net_from(dev, ma, batch, 5), b = ts_net_from(dev, mb, batch, 5);
	enable_training(b.s);
	const strata_model *m = a.m;
	size_t n = m->n_layers;
	ck_assert_uint_eq(st_session_activation_buffers(b.s, NULL), n);
	size_t shared = st_session_activation_buffers(a.s, NULL);
	ck_assert_msg(shared <= n - min_shared, "%zu buffers for %zu layers", shared, n);
	uint64_t in = st_shape_elems(&m->input);
	float *x = alloc_floats(in * batch);
	ts_fill_random(x, in * batch, 21, 0.0f, 1.0f);
	float **ya = outputs_of(a.s, x, batch), **yb = outputs_of(b.s, x, batch);
	for (size_t l = 0; l <= n; l++) {
		uint64_t count = (l < n ? out_elems(m, l) : st_model_output_elems(m)) * batch;
		bool nonzero = false;
		for (uint64_t i = 0; i < count; i++)
			nonzero |= yb[l][i] != 0.0f;
		ck_assert_msg(nonzero, "layer %zu gives zeros: nothing compared", l);
		ck_assert_msg(memcmp(ya[l], yb[l], count * sizeof(float)) == 0, "%s differs between the plans",
		              l < n ? m->layers[l].name : "the model's output");
	}
	/* After a pass of every layer (an evaluation's) the model's output is intact in the session
	 * planned for inference, even when layers run after it. */
	size_t out_bytes = st_model_output_elems(m) * batch * sizeof(float);
	float *y = alloc_floats(out_bytes / sizeof(float));
	strata_error err = {0};
	ck_assert(st_tensor_write(dev->rt, &a.s->input, 0, x, in * batch * sizeof(float), &err) == STRATA_OK);
	ck_assert_msg(st_session_forward_device(a.s, batch, false, &err) == STRATA_OK, "%s", err.message);
	ck_assert(st_tensor_read(dev->rt, st_session_output(a.s), 0, y, out_bytes, &err) == STRATA_OK);
	ck_assert_msg(memcmp(y, yb[n], out_bytes) == 0, "the output was overwritten");
	free(y);
	free_outputs(ya, n);
	free_outputs(yb, n);
	free(x);
	ts_net_close(&a);
	ts_net_close(&b);
}

START_TEST(test_resnet_plans_agree)
{
	ts_device dev = ts_device_open();
	strata_model *ma = ts_model_file(dev.reg, "../models/mnist_resnet.yaml");
	strata_model *mb = ts_model_file(dev.reg, "../models/mnist_resnet.yaml");
	/* 15 layers: the residual branches keep three outputs alive at once at most */
	compare_plans(&dev, ma, mb, 3, 10);
	ts_device_close(&dev);
}
END_TEST

/* Kahn's order takes z (the last layer of the file) second: a, z, y, w. forward_to(z) asks for
 * all four layers, which runs the whole model (st_session_forward_layers), so z's output must
 * outlive its last reader y: w, the same size, would otherwise be given z's buffer. */
static const char *const late_yaml = "inputs: [{name: x, shape: [6]}]\n"
                                     "layers:\n"
                                     "  - {type: dense, units: 8, name: a, inputs: x}\n"
                                     "  - {type: add, name: y, inputs: [z, z]}\n"
                                     "  - {type: dense, units: 5, name: w, inputs: y}\n"
                                     "  - {type: dense, units: 5, name: z, inputs: a, activation: tanh}\n"
                                     "outputs: [w]\n"
                                     "loss: mean_squared_error\n"
                                     "optimizer: {type: sgd, learning_rate: 0.1}\n";

START_TEST(test_last_file_layer_kept)
{
	ts_device dev = ts_device_open();
	strata_model *ma = ts_model(dev.reg, late_yaml), *mb = ts_model(dev.reg, late_yaml);
	ck_assert_uint_eq(ma->order[1], 3);
	compare_plans(&dev, ma, mb, 4, 0);
	ts_device_close(&dev);
}
END_TEST

/* The output b is not the last layer to run: c, which no output needs, comes after it and
 * would take b's buffer if the model's outputs were not kept to the end of the pass. */
static const char *const inner_output_yaml = "inputs: [{name: x, shape: [6]}]\n"
                                             "layers:\n"
                                             "  - {type: dense, units: 5, name: a, inputs: x}\n"
                                             "  - {type: dense, units: 5, name: b, inputs: a}\n"
                                             "  - {type: dense, units: 5, name: c, inputs: a}\n"
                                             "  - {type: dense, units: 5, name: d, inputs: c}\n"
                                             "outputs: [b]\n"
                                             "loss: mean_squared_error\n"
                                             "optimizer: {type: sgd, learning_rate: 0.1}\n";

START_TEST(test_inner_output_kept)
{
	ts_device dev = ts_device_open();
	strata_model *ma = ts_model(dev.reg, inner_output_yaml), *mb = ts_model(dev.reg, inner_output_yaml);
	compare_plans(&dev, ma, mb, 4, 0);
	ts_device_close(&dev);
}
END_TEST

/* ---- (c) evaluate, train, evaluate ------------------------------------------------------------- */

/* 8 x 8 images of 3 classes: a bright 3 x 3 square at one of three places, over noise. */
static void write_idx(const char *dir, const char *name, uint32_t n, uint32_t seed)
{
	uint8_t *images = malloc((size_t)n * 64), *labels = malloc(n);
	ck_assert(images && labels);
	uint32_t r = seed;
	for (uint32_t i = 0; i < n; i++) {
		labels[i] = (uint8_t)(i % 3);
		for (int p = 0; p < 64; p++) {
			r = r * 1664525u + 1013904223u;
			images[i * 64 + p] = (uint8_t)(r >> 26);
		}
		int y0 = 1 + 2 * labels[i], x0 = 4 - 2 * labels[i];
		for (int y = y0; y < y0 + 3; y++)
			for (int x = x0; x < x0 + 3; x++)
				images[i * 64 + y * 8 + x] = 200;
	}
	char path[512];
	snprintf(path, sizeof(path), "%s/%s-images", dir, name);
	ts_write_idx(path, 0x08, 3, (uint32_t[]){n, 8, 8}, images);
	snprintf(path, sizeof(path), "%s/%s-labels", dir, name);
	ts_write_idx(path, 0x08, 1, (uint32_t[]){n}, labels);
	free(images);
	free(labels);
}

static strata_dataset *load_set(strata_runtime *rt, const char *dir, const char *name)
{
	char images[512], labels[512];
	snprintf(images, sizeof(images), "%s/%s-images", dir, name);
	snprintf(labels, sizeof(labels), "%s/%s-labels", dir, name);
	strata_dataset_options o = {.size = sizeof(o), .images = images, .labels = labels, .scale = 1.0 / 255,
	                            .num_classes = 3};
	strata_dataset *ds = NULL;
	strata_error err = {0};
	ck_assert_msg(strata_dataset_load(rt, &o, &ds, &err) == STRATA_OK, "%s", err.message);
	return ds;
}

/* A residual block with dropout, so training's forward pass differs from inference's. */
static const char *const small_yaml =
	"inputs: [{name: x, shape: [8, 8, 1]}]\n"
	"layers:\n"
	"  - {type: conv2d, name: c1, filters: 4, kernel_size: 3, padding: same, activation: relu, inputs: x}\n"
	"  - {type: conv2d, name: c2, filters: 4, kernel_size: 3, padding: same}\n"
	"  - {type: add, name: s, inputs: [c2, c1]}\n"
	"  - {type: activation, activation: relu}\n"
	"  - {type: maxpool2d, pool_size: 2}\n"
	"  - {type: flatten}\n"
	"  - {type: dropout, rate: 0.25}\n"
	"  - {type: dense, units: 3, activation: softmax}\n"
	"loss: categorical_crossentropy\n"
	"optimizer: {type: sgd, learning_rate: 0.5}\n";

static float *all_weights(strata_session *s, const strata_model *m, size_t *count)
{
	size_t total = 0;
	for (size_t l = 0; l < m->n_layers; l++)
		for (uint32_t w = 0; w < m->layers[l].n_weights; w++)
			total += m->layers[l].weights[w].count;
	float *v = alloc_floats(total), *at = v;
	strata_error err = {0};
	for (size_t l = 0; l < m->n_layers; l++)
		for (uint32_t w = 0; w < m->layers[l].n_weights; w++) {
			size_t c = m->layers[l].weights[w].count;
			ck_assert_msg(strata_session_read_weight(s, l, w, at, c, &err) == STRATA_OK, "%s", err.message);
			at += c;
		}
	*count = total;
	return v;
}

START_TEST(test_evaluate_train_evaluate)
{
	const uint32_t batch = 16;
	char dir[256];
	ts_tmpdir_make(dir, sizeof(dir), "plan");
	write_idx(dir, "train", 96, 7);
	write_idx(dir, "test", 48, 8);
	ts_device dev = ts_device_open();
	strata_dataset *train = load_set(dev.rt, dir, "train"), *test = load_set(dev.rt, dir, "test");
	/* a: planned for inference, evaluates, then switches as strata_fit's enabling of training
	 * does; b: planned for training from the start. */
	ts_net a = ts_net_open(&dev, small_yaml, batch, 9), b = ts_net_open(&dev, small_yaml, batch, 9);
	enable_training(b.s);
	size_t n = a.m->n_layers;
	ck_assert_uint_lt(st_session_activation_buffers(a.s, NULL), n);
	strata_error err = {0};
	strata_eval_result ea[2], eb[2];
	ck_assert_msg(strata_evaluate(a.s, test, batch, &ea[0], &err) == STRATA_OK, "%s", err.message);
	ck_assert_msg(strata_evaluate(b.s, test, batch, &eb[0], &err) == STRATA_OK, "%s", err.message);
	ck_assert_uint_lt(st_session_activation_buffers(a.s, NULL), n);
	ck_assert_msg(st_session_plan_activations(a.s, true, &err) == STRATA_OK, "%s", err.message);
	ck_assert_uint_eq(st_session_activation_buffers(a.s, NULL), n);
	strata_fit_options o = {.size = sizeof(o), .epochs = 2, .batch_size = batch};
	ck_assert_msg(strata_fit(a.s, train, NULL, &o, &err) == STRATA_OK, "%s", err.message);
	ck_assert_msg(strata_fit(b.s, train, NULL, &o, &err) == STRATA_OK, "%s", err.message);
	ck_assert_msg(strata_evaluate(a.s, test, batch, &ea[1], &err) == STRATA_OK, "%s", err.message);
	ck_assert_msg(strata_evaluate(b.s, test, batch, &eb[1], &err) == STRATA_OK, "%s", err.message);
	printf("evaluate, train 2 epochs, evaluate: loss %.6f -> %.6f, accuracy %.4f -> %.4f\n", ea[0].loss, ea[1].loss,
	       ea[0].accuracy, ea[1].accuracy);
	for (int k = 0; k < 2; k++) {
		ck_assert_uint_eq(ea[k].count, eb[k].count);
		ck_assert_msg(fabs(ea[k].loss - eb[k].loss) <= 1e-9 * fabs(eb[k].loss), "loss %.9g, from the start %.9g",
		              ea[k].loss, eb[k].loss);
		ck_assert_msg(ea[k].accuracy == eb[k].accuracy, "accuracy %g, from the start %g", ea[k].accuracy,
		              eb[k].accuracy);
	}
	ck_assert_msg(ea[1].loss < ea[0].loss, "training did not lower the loss: %g -> %g", ea[0].loss, ea[1].loss);
	size_t count = 0;
	float *wa = all_weights(a.s, a.m, &count), *wb = all_weights(b.s, b.m, &count);
	ck_assert_msg(memcmp(wa, wb, count * sizeof(float)) == 0, "the weights differ");
	free(wa);
	free(wb);
	ts_net_close(&a);
	ts_net_close(&b);
	strata_dataset_free(train);
	strata_dataset_free(test);
	ts_device_close(&dev);
	ts_tmpdir_remove(dir);
}
END_TEST

/* A failed switch (training that does not fit the device) leaves the inference plan working. */
START_TEST(test_failed_switch_keeps_plan)
{
	ts_device dev = ts_device_open();
	ts_net net = ts_net_open(&dev, chain_yaml, 4, 3);
	strata_session *s = net.s;
	float x[4 * 16], y[4 * 4], y2[4 * 4];
	ts_fill_random(x, 4 * 16, 12, -1.0f, 1.0f);
	strata_error err = {0};
	ck_assert_msg(strata_session_forward(s, x, 4, y, &err) == STRATA_OK, "%s", err.message);
	uint64_t before = 0, after = 0;
	size_t n = st_session_activation_buffers(s, &before);
	uint64_t mem = dev.rt->info.global_mem_bytes;
	uint64_t weights = 0, training = st_session_training_bytes(net.m, &weights);
	dev.rt->info.global_mem_bytes = training * 4 + weights - 1;
	ck_assert_int_eq(st_session_plan_activations(s, true, &err), STRATA_ERR_DEVICE_MEMORY);
	dev.rt->info.global_mem_bytes = mem;
	ck_assert_uint_eq(st_session_activation_buffers(s, &after), n);
	ck_assert_uint_eq(after, before);
	ck_assert_msg(strata_session_forward(s, x, 4, y2, &err) == STRATA_OK, "%s", err.message);
	ck_assert(memcmp(y, y2, sizeof(y)) == 0);
	ts_net_close(&net);
	ts_device_close(&dev);
}
END_TEST

/* STRATA_POOL=separate (memory checkers): every output its own buffer from the start, as the
 * budget counts, and the same outputs as the shared plan. */
START_TEST(test_separate_mode_plans_for_training)
{
	ts_device dev = ts_device_open();
	ck_assert_int_eq(unsetenv("STRATA_POOL"), 0);
	ts_net shared = ts_net_open(&dev, chain_yaml, 4, 3);
	ck_assert_int_eq(setenv("STRATA_POOL", "separate", 1), 0);
	ts_net separate = ts_net_open(&dev, chain_yaml, 4, 3);
	ck_assert_int_eq(unsetenv("STRATA_POOL"), 0);
	uint64_t bytes = 0, weights = 0;
	ck_assert_uint_eq(st_session_activation_buffers(shared.s, NULL), 2);
	ck_assert_uint_eq(st_session_activation_buffers(separate.s, &bytes), 6);
	ck_assert_uint_eq(bytes, all_out_elems(separate.m) * sizeof(float) * 4);
	uint64_t inference = st_session_inference_bytes(separate.m, &weights);
	ck_assert_uint_eq(inference, st_session_training_bytes(separate.m, &weights));
	ck_assert_uint_eq(counted_activation_bytes(separate.m, inference) * 4, bytes);
	float x[4 * 16], y_shared[4 * 4], y_separate[4 * 4];
	ts_fill_random(x, 4 * 16, 13, -1.0f, 1.0f);
	strata_error err = {0};
	ck_assert_msg(strata_session_forward(shared.s, x, 4, y_shared, &err) == STRATA_OK, "%s", err.message);
	ck_assert_msg(strata_session_forward(separate.s, x, 4, y_separate, &err) == STRATA_OK, "%s", err.message);
	ck_assert(memcmp(y_shared, y_separate, sizeof(y_shared)) == 0);
	ts_net_close(&shared);
	ts_net_close(&separate);
	ts_device_close(&dev);
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("session_plan");
	TCase *tc = tcase_create("plan");
	tcase_add_test(tc, test_chain_uses_two_buffers);
	tcase_add_test(tc, test_model_figures);
	tcase_add_test(tc, test_resnet_plans_agree);
	tcase_add_test(tc, test_last_file_layer_kept);
	tcase_add_test(tc, test_inner_output_kept);
	tcase_add_test(tc, test_evaluate_train_evaluate);
	tcase_add_test(tc, test_failed_switch_keeps_plan);
	tcase_add_test(tc, test_separate_mode_plans_for_training);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	/* The plans compared here are the default mode's (test_separate_mode_plans_for_training sets
	 * the other for its own session). */
	unsetenv("STRATA_POOL");
	return ts_run(suite());
}
