/* Models of several inputs and outputs: a loss per output with loss_weights (its gradient against
 * finite differences of the total loss, its figures against a host reference), data for several
 * inputs from one IDX file each (int32 ids among them), and the model file's errors. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "exec/session.h"
#include "train/dataset.h"
#include "support.h"

enum { B = 3 };

/* A trunk read by two heads: softmax with cross-entropy, sigmoid with MSE, weighted 1 and 0.5. */
static const char two_heads[] = "inputs: [{name: x, shape: [5]}]\n"
                                "layers:\n"
                                "  - {name: trunk, type: dense, inputs: x, units: 6, activation: tanh}\n"
                                "  - {name: a, type: dense, inputs: trunk, units: 4, activation: softmax}\n"
                                "  - {name: b, type: dense, inputs: trunk, units: 3, activation: sigmoid}\n"
                                "outputs: [a, b]\n"
                                "loss: {a: categorical_crossentropy, b: mean_squared_error}\n"
                                "loss_weights: {a: 1.0, b: %s}\n"
                                "optimizer: sgd\n";

static ts_net open_two_heads(ts_device *dev, const char *weight_b)
{
	char yaml[1024];
	snprintf(yaml, sizeof(yaml), two_heads, weight_b);
	ts_net net = ts_net_open(dev, yaml, B, 3);
	strata_error err = {0};
	ck_assert_msg(st_session_enable_training(net.s, &err) == STRATA_OK, "%s", err.message);
	ck_assert_msg(st_loss_prepare(net.s, &err) == STRATA_OK, "%s", err.message);
	ck_assert_uint_eq(net.s->n_heads, 2);
	float x[B * 5];
	ts_fill_random(x, B * 5, 11, -1, 1);
	int la[B] = {2, 0, 3}, lb[B] = {1, 2, 0};
	ck_assert_int_eq(st_tensor_write(dev->rt, &net.s->input, 0, x, sizeof(x), &err), STRATA_OK);
	ck_assert_int_eq(st_tensor_write(dev->rt, &net.s->heads[0].labels, 0, la, sizeof(la), &err), STRATA_OK);
	ck_assert_int_eq(st_tensor_write(dev->rt, &net.s->heads[1].labels, 0, lb, sizeof(lb), &err), STRATA_OK);
	return net;
}

/* The total loss Keras reports for the batch: a's mean loss + w_b * b's, on the device. */
static double total_loss(ts_net *net, double *per_head)
{
	strata_error err = {0};
	double loss[2], correct[2], reg;
	ck_assert_int_eq(st_loss_zero_sums(net->s, &err), STRATA_OK);
	ck_assert_msg(st_session_forward_device(net->s, B, true, &err) == STRATA_OK, "%s", err.message);
	ck_assert_msg(st_loss_compute(net->s, B, &err) == STRATA_OK, "%s", err.message);
	ck_assert_int_eq(st_loss_read_sums(net->s, loss, correct, &reg, &err), STRATA_OK);
	if (per_head) {
		per_head[0] = loss[0] / B;
		per_head[1] = loss[1] / B;
	}
	return st_loss_total(net->s, loss, B, reg);
}

/* Every weight gradient of a backward pass from both heads' losses against central differences
 * of the total loss; returns the largest gradient of the trunk's kernel. */
static double check_two_heads(const char *weight_b)
{
	ts_device dev = ts_device_open();
	ts_net net = open_two_heads(&dev, weight_b);
	strata_error err = {0};
	total_loss(&net, NULL);
	ck_assert_msg(st_session_backward(net.s, B, true, NULL, &err) == STRATA_OK, "%s", err.message);
	double trunk_largest = 0;
	for (size_t l = 0; l < 3; l++) {
		for (size_t w = 0; w < 2; w++) {
			size_t n = net.m->layers[l].weights[w].count;
			float *v = ts_floats(n), *g = ts_floats(n);
			ck_assert_int_eq(strata_session_read_weight(net.s, l, w, v, n, &err), STRATA_OK);
			ck_assert_int_eq(st_tensor_read(dev.rt, &net.s->binds[l].grads[w], 0, g, n * sizeof(float), &err),
			                 STRATA_OK);
			for (size_t i = 0; i < n; i++) {
				const float e = 1e-2f, keep = v[i];
				v[i] = keep + e;
				ck_assert_int_eq(strata_session_write_weight(net.s, l, w, v, n, &err), STRATA_OK);
				double lp = total_loss(&net, NULL);
				v[i] = keep - e;
				ck_assert_int_eq(strata_session_write_weight(net.s, l, w, v, n, &err), STRATA_OK);
				double lm = total_loss(&net, NULL);
				v[i] = keep;
				ck_assert_int_eq(strata_session_write_weight(net.s, l, w, v, n, &err), STRATA_OK);
				double numeric = (lp - lm) / (2.0 * e);
				ck_assert_msg(isfinite(g[i]) && fabs(g[i] - numeric) <= 2e-2 * fmax(fabs(g[i]), fabs(numeric)) + 2e-4,
				              "weight_b %s: layer %zu weight %zu [%zu]: backward %.6f, differences %.6f", weight_b, l,
				              w, i, g[i], numeric);
				if (l == 0 && w == 0)
					trunk_largest = fmax(trunk_largest, fabs(g[i]));
			}
			free(v);
			free(g);
		}
	}
	ts_net_close(&net);
	ts_device_close(&dev);
	return trunk_largest;
}

/* The gradient of a two-output loss, with the heads weighted, is the total loss's: every weight
 * against finite differences; the trunk, read by both heads, sums what each sends back (a
 * different weight on b gives a different trunk gradient, and the check still holds). */
START_TEST(test_two_output_loss_fd)
{
	double half = check_two_heads("0.5"), three = check_two_heads("3.0");
	ck_assert_double_gt(half, 1e-3);
	ck_assert_msg(fabs(half - three) > 1e-3, "the trunk's gradient ignores b's weight: %g and %g", half, three);
}
END_TEST

/* The total is the weighted sum of each head's own loss, and each head's loss is its formula on
 * its own output: a head's weight scales its share, nothing else. */
START_TEST(test_total_is_weighted_sum)
{
	ts_device dev = ts_device_open();
	ts_net net = open_two_heads(&dev, "0.25");
	double heads[2];
	double total = total_loss(&net, heads);
	ck_assert_msg(fabs(total - (heads[0] + 0.25 * heads[1])) <= 1e-6 * fmax(1, total), "%g vs %g + 0.25 * %g", total,
	              heads[0], heads[1]);
	/* Host formulas on the device's outputs. */
	float ya[B * 4], yb[B * 3];
	strata_error err = {0};
	ck_assert_int_eq(st_tensor_read(dev.rt, st_session_value(net.s, st_layer_value(net.m, 1)), 0, ya, sizeof(ya), &err),
	                 STRATA_OK);
	ck_assert_int_eq(st_tensor_read(dev.rt, st_session_value(net.s, st_layer_value(net.m, 2)), 0, yb, sizeof(yb), &err),
	                 STRATA_OK);
	int la[B] = {2, 0, 3}, lb[B] = {1, 2, 0};
	double ce = 0, mse = 0;
	for (int b = 0; b < B; b++) {
		ce -= log(fmin(fmax(ya[b * 4 + la[b]], 1e-7), 1 - 1e-7));
		for (int c = 0; c < 3; c++) {
			double d = yb[b * 3 + c] - (c == lb[b]);
			mse += d * d / 3;
		}
	}
	ck_assert_msg(fabs(heads[0] - ce / B) <= 1e-5, "a: %g vs host %g", heads[0], ce / B);
	ck_assert_msg(fabs(heads[1] - mse / B) <= 1e-5, "b: %g vs host %g", heads[1], mse / B);
	ts_net_close(&net);
	ts_device_close(&dev);
}
END_TEST

/* ---- data for several inputs and outputs ------------------------------------------------------ */

enum { N = 10, PX = 4, IDS = 3 };

typedef struct data_dir {
	char dir[256];
	char *images, *ids, *labels, *more_labels;
	uint8_t px[N * PX], lab[N], lab2[N];
	int32_t id[N * IDS];
} data_dir;

static void make_data(data_dir *d)
{
	ts_tmpdir_make(d->dir, sizeof(d->dir), "outputs");
	for (int i = 0; i < N * PX; i++)
		d->px[i] = (uint8_t)(i * 37 % 251);
	for (int i = 0; i < N * IDS; i++)
		d->id[i] = 100000 + i * 7919; /* beyond a byte: only an int path keeps them */
	for (int i = 0; i < N; i++) {
		d->lab[i] = (uint8_t)(i % 2);
		d->lab2[i] = (uint8_t)(i % 3);
	}
	d->images = ts_join(d->dir, "images.idx");
	d->ids = ts_join(d->dir, "ids.idx");
	d->labels = ts_join(d->dir, "labels.idx");
	d->more_labels = ts_join(d->dir, "labels2.idx");
	ts_write_idx(d->images, 0x08, 2, (uint32_t[]){N, PX}, d->px);
	ts_write_idx(d->ids, 0x0C, 2, (uint32_t[]){N, IDS}, d->id);
	ts_write_idx(d->labels, 0x08, 1, (uint32_t[]){N}, d->lab);
	ts_write_idx(d->more_labels, 0x08, 1, (uint32_t[]){N}, d->lab2);
}

static void free_data(data_dir *d)
{
	ts_tmpdir_remove(d->dir);
	free(d->images);
	free(d->ids);
	free(d->labels);
	free(d->more_labels);
}

/* The registry with Strata's plugins and the tests' int32 one (tests/plugins/ids). */
static ts_device open_with_ids(void)
{
	const char *dir = getenv("STRATA_TEST_IDS_PLUGIN_DIR");
	ck_assert_msg(dir != NULL, "STRATA_TEST_IDS_PLUGIN_DIR is not set: run through meson test");
	ts_device dev = {0};
	strata_registry_options ro = {.size = sizeof(ro), .plugin_path = dir};
	strata_error err = {0};
	ck_assert_msg(strata_registry_open(&ro, &dev.reg, &err) == STRATA_OK, "%s", err.message);
	dev.rt = ts_runtime(dev.reg);
	return dev;
}

static const char two_inputs[] = "inputs:\n"
                                 "  - {name: image, shape: [4]}\n"
                                 "  - {name: ids, shape: [3], dtype: int32}\n"
                                 "layers:\n"
                                 "  - {name: as_float, type: test_ids_to_float, inputs: ids}\n"
                                 "  - {name: both, type: concatenate, inputs: [image, as_float]}\n"
                                 "  - {name: scaled, type: dense, units: 2, activation: softmax}\n"
                                 "loss: categorical_crossentropy\n"
                                 "optimizer: {type: sgd, learning_rate: 0.0}\n";

/* One IDX file per input: bytes scaled into the float input, int32 ids into the int32 one exactly
 * (values beyond a byte), both in the epoch's order, and the ids reach the layer that reads them. */
START_TEST(test_two_inputs_with_ids)
{
	ts_device dev = open_with_ids();
	data_dir d;
	make_data(&d);
	ts_net net = ts_net_open(&dev, two_inputs, N, 1);
	const char *more[] = {d.ids};
	strata_dataset_options o = {.size = sizeof(o), .images = d.images, .labels = d.labels, .scale = 0.5,
	                            .num_classes = 2, .more_images = more, .n_more_images = 1};
	strata_dataset *ds = NULL;
	strata_error err = {0};
	ck_assert_msg(strata_dataset_load(dev.rt, &o, &ds, &err) == STRATA_OK, "%s", err.message);
	ck_assert_int_eq(st_loss_prepare(net.s, &err), STRATA_OK);
	ck_assert_int_eq(st_dataset_set_order(ds, true, 5, 1, &err), STRATA_OK);
	int order[N];
	ck_assert_int_eq(st_tensor_read(dev.rt, &ds->order, 0, order, sizeof(order), &err), STRATA_OK);
	ck_assert_msg(st_dataset_gather_session(ds, 2, 6, net.s, true, &err) == STRATA_OK, "%s", err.message);
	float x[6 * PX], as_float[6 * IDS];
	int32_t ids[6 * IDS], labels[6];
	ck_assert_int_eq(st_tensor_read(dev.rt, st_session_value(net.s, 0), 0, x, sizeof(x), &err), STRATA_OK);
	ck_assert_int_eq(st_tensor_read(dev.rt, st_session_value(net.s, 1), 0, ids, sizeof(ids), &err), STRATA_OK);
	ck_assert_int_eq(st_tensor_read(dev.rt, &net.s->heads[0].labels, 0, labels, sizeof(labels), &err), STRATA_OK);
	bool moved = false;
	for (int b = 0; b < 6; b++) {
		int i = order[2 + b];
		moved |= i != 2 + b;
		for (int k = 0; k < PX; k++)
			ck_assert_msg(x[b * PX + k] == d.px[i * PX + k] * 0.5f, "image %d[%d]", b, k);
		for (int k = 0; k < IDS; k++)
			ck_assert_int_eq(ids[b * IDS + k], d.id[i * IDS + k]);
		ck_assert_int_eq(labels[b], d.lab[i]);
	}
	ck_assert(moved);
	/* Stopping after the layer that reads them: an inference session may reuse its buffer later. */
	ck_assert_msg(st_session_forward_layers(net.s, 6, false, 1, &err) == STRATA_OK, "%s", err.message);
	ck_assert_int_eq(st_tensor_read(dev.rt, st_session_value(net.s, st_layer_value(net.m, 0)), 0, as_float,
	                                sizeof(as_float), &err),
	                 STRATA_OK);
	for (int k = 0; k < 6 * IDS; k++)
		ck_assert_msg(as_float[k] == (float)ids[k], "as_float[%d] = %g, id %d", k, as_float[k], ids[k]);
	/* Training and evaluation run on it. */
	strata_fit_options fo = {.size = sizeof(fo), .epochs = 1, .batch_size = 4};
	ck_assert_msg(strata_fit(net.s, ds, NULL, &fo, &err) == STRATA_OK, "%s", err.message);
	strata_eval_result r;
	ck_assert_msg(strata_evaluate(net.s, ds, 4, &r, &err) == STRATA_OK, "%s", err.message);
	ck_assert_uint_eq(r.count, N);
	ck_assert(isfinite(r.loss));
	strata_dataset_free(ds);

	/* A data set of one input file for two inputs, and ids for a float input, are refused. */
	strata_dataset_options one = o;
	one.n_more_images = 0;
	ck_assert_int_eq(strata_dataset_load(dev.rt, &one, &ds, &err), STRATA_OK);
	ck_assert_int_eq(strata_evaluate(net.s, ds, 4, &r, &err), STRATA_ERR_INVALID);
	ck_assert_msg(strstr(err.message, "1 input files, the model 2 inputs"), "%s", err.message);
	strata_dataset_free(ds);
	const char *swapped[] = {d.images};
	strata_dataset_options sw = o;
	sw.images = d.ids;
	sw.more_images = swapped;
	ck_assert_int_eq(strata_dataset_load(dev.rt, &sw, &ds, &err), STRATA_OK);
	ck_assert_int_eq(strata_evaluate(net.s, ds, 4, &r, &err), STRATA_ERR_INVALID);
	ck_assert_msg(strstr(err.message, "holds int32 ids, but input 'image' is float32"), "%s", err.message);
	strata_dataset_free(ds);
	ts_net_close(&net);
	free_data(&d);
	ts_device_close(&dev);
}
END_TEST

/* Labels per output: evaluation gives each output's figures from its own labels, their weighted
 * total, and training runs on both; a data set without the second output's labels is refused. */
START_TEST(test_labels_per_output)
{
	ts_device dev = ts_device_open();
	data_dir d;
	make_data(&d);
	const char yaml[] = "inputs: [{name: x, shape: [4]}]\n"
	                    "layers:\n"
	                    "  - {name: trunk, type: dense, inputs: x, units: 5, activation: relu}\n"
	                    "  - {name: two, type: dense, inputs: trunk, units: 2, activation: softmax}\n"
	                    "  - {name: three, type: dense, inputs: trunk, units: 3, activation: softmax}\n"
	                    "outputs: [two, three]\n"
	                    "loss: categorical_crossentropy\n"
	                    "loss_weights: [2.0, 0.5]\n";
	ts_net net = ts_net_open(&dev, yaml, N, 1);
	const char *more[] = {d.more_labels};
	const uint32_t classes[] = {3};
	strata_dataset_options o = {.size = sizeof(o), .images = d.images, .labels = d.labels, .scale = 1.0 / 255,
	                            .num_classes = 2, .more_labels = more, .more_num_classes = classes, .n_more_labels = 1};
	strata_dataset *ds = NULL;
	strata_error err = {0};
	ck_assert_msg(strata_dataset_load(dev.rt, &o, &ds, &err) == STRATA_OK, "%s", err.message);
	strata_eval_result total, outs[2];
	ck_assert_msg(strata_evaluate_outputs(net.s, ds, 4, &total, outs, 2, &err) == STRATA_OK, "%s", err.message);
	ck_assert_msg(fabs(total.loss - (2.0 * outs[0].loss + 0.5 * outs[1].loss)) <= 1e-5, "%g vs %g, %g", total.loss,
	              outs[0].loss, outs[1].loss);
	/* Each head's accuracy from its own labels, on the host. */
	float y2[N * 2], y3[N * 3];
	ck_assert_int_eq(st_dataset_gather_session(ds, 0, N, net.s, false, &err), STRATA_OK);
	ck_assert_int_eq(st_session_forward_device(net.s, N, false, &err), STRATA_OK);
	ck_assert_int_eq(st_tensor_read(dev.rt, st_session_value(net.s, st_layer_value(net.m, 1)), 0, y2, sizeof(y2), &err),
	                 STRATA_OK);
	ck_assert_int_eq(st_tensor_read(dev.rt, st_session_value(net.s, st_layer_value(net.m, 2)), 0, y3, sizeof(y3), &err),
	                 STRATA_OK);
	int right2 = 0, right3 = 0;
	for (int i = 0; i < N; i++) {
		right2 += (y2[i * 2 + 1] > y2[i * 2]) == (d.lab[i] == 1);
		int best = 0;
		for (int c = 1; c < 3; c++)
			best = y3[i * 3 + c] > y3[i * 3 + best] ? c : best;
		right3 += best == d.lab2[i];
	}
	ck_assert_double_eq_tol(outs[0].accuracy, right2 / (double)N, 1e-9);
	ck_assert_double_eq_tol(outs[1].accuracy, right3 / (double)N, 1e-9);
	ck_assert_double_eq_tol(total.accuracy, outs[0].accuracy, 1e-12);
	strata_fit_options fo = {.size = sizeof(fo), .epochs = 2, .batch_size = 4};
	ck_assert_msg(strata_fit(net.s, ds, ds, &fo, &err) == STRATA_OK, "%s", err.message);
	strata_dataset_free(ds);
	o.n_more_labels = 0;
	ck_assert_int_eq(strata_dataset_load(dev.rt, &o, &ds, &err), STRATA_OK);
	ck_assert_int_eq(strata_evaluate(net.s, ds, 4, &total, &err), STRATA_ERR_INVALID);
	ck_assert_msg(strstr(err.message, "output 'three' has none"), "%s", err.message);
	strata_dataset_free(ds);
	ts_net_close(&net);
	free_data(&d);
	ts_device_close(&dev);
}
END_TEST

/* ---- the model file --------------------------------------------------------------------------- */

static void expect_error(const char *yaml, const char *want)
{
	strata_registry *reg = ts_registry();
	strata_model *m = NULL;
	strata_error err = {0};
	strata_status st = strata_model_load_string(reg, yaml, strlen(yaml), "m.yaml", NULL, &m, &err);
	ck_assert_msg(st == STRATA_ERR_INVALID || st == STRATA_ERR_PARSE, "loaded; expected: %s", want);
	ck_assert_ptr_null(m);
	ck_assert_msg(strcmp(err.message, want) == 0, "\n  expected: %s\n  got:      %s", want, err.message);
	strata_registry_close(reg);
}

static const char heads_top[] = "inputs: [{name: x, shape: [4]}, {name: y, shape: [2]}]\n"
                                "layers:\n"
                                "  - {name: a, type: dense, inputs: x, units: 2, activation: softmax}\n"
                                "  - {name: b, type: dense, inputs: y, units: 3, activation: softmax}\n"
                                "outputs: [a, b]\n";

START_TEST(test_recipe_errors)
{
	char yaml[2048];
	struct {
		const char *rest, *want;
	} cases[] = {
		{"loss: {a: categorical_crossentropy, c: mean_squared_error}\n",
		 "m.yaml:6:37: 'loss': the model has no output 'c'; its outputs: a, b"},
		{"loss: [categorical_crossentropy]\n",
		 "m.yaml:6:7: 'loss' lists 1 values, the model has 2 outputs (a, b); give one for each, in that order, or "
		 "a mapping {a: ...}"},
		{"loss: {a: categorical_crossentropy}\nloss_weights: {b: 2}\n",
		 "m.yaml:7:19: loss_weights: output 'b' has no loss to weigh"},
		{"loss: categorical_crossentropy\nloss_weights: [1, -1]\n", NULL},
		{"loss: {a: hinge}\n", NULL},
		{"loss: categorical_crossentropy\ndata: {train_images: x.idx}\n",
		 "m.yaml:7:22: 'train_images' names one file, the model has 2 inputs (x, y): give {x: FILE, ...}"},
		{"loss: categorical_crossentropy\ndata: {train_images: {x: x.idx}}\n",
		 "m.yaml:7:22: 'train_images' names no file for input 'y' (inputs: x, y)"},
		{"loss: categorical_crossentropy\ndata: {train_images: {x: x.idx, y: y.idx}, train_labels: {a: a.idx}}\n",
		 "m.yaml:7:58: 'train_labels' names no file for output 'b' (outputs: a, b)"},
		{"loss: categorical_crossentropy\ndata: {num_classes: {z: 3}}\n",
		 "m.yaml:7:22: 'num_classes': the model has no output 'z'; its outputs: a, b"},
		{"loss: categorical_crossentropy\nmetrics: {a: [accuracy], q: accuracy}\n",
		 "m.yaml:7:26: 'metrics': the model has no output 'q'; its outputs: a, b"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		snprintf(yaml, sizeof(yaml), "%s%s", heads_top, cases[i].rest);
		if (cases[i].want) {
			expect_error(yaml, cases[i].want);
			continue;
		}
		/* Values the parameter tables refuse: the table's own message, at the value. */
		strata_registry *reg = ts_registry();
		strata_model *m = NULL;
		strata_error err = {0};
		ck_assert_int_ne(strata_model_load_string(reg, yaml, strlen(yaml), "m.yaml", NULL, &m, &err), STRATA_OK);
		ck_assert_msg(strncmp(err.message, "m.yaml:", 7) == 0, "%s", err.message);
		strata_registry_close(reg);
	}
}
END_TEST

/* What the recipe gives each output: Keras' forms (one for all, a list, a mapping) all mean the
 * same, and data files resolve per input and output. */
START_TEST(test_recipe_forms)
{
	strata_registry *reg = ts_registry();
	char yaml[2048];
	const char *forms[] = {
		"loss: categorical_crossentropy\nloss_weights: [1.0, 0.3]\nmetrics: [accuracy]\n",
		"loss: [categorical_crossentropy, categorical_crossentropy]\nloss_weights: {b: 0.3}\n"
		"metrics: {a: accuracy, b: [accuracy]}\n",
	};
	for (size_t i = 0; i < 2; i++) {
		snprintf(yaml, sizeof(yaml),
		         "%s%sdata:\n  train_images: {x: xs.idx, y: /abs/ys.idx}\n  train_labels: labels.idx\n"
		         "  num_classes: {a: 2, b: 3}\n",
		         heads_top, forms[i]);
		strata_model *m = NULL;
		strata_error err = {0};
		ck_assert_msg(strata_model_load_string(reg, yaml, strlen(yaml), "m.yaml", "/models", &m, &err) == STRATA_OK,
		              "%s", err.message);
		ck_assert_uint_eq(strata_model_output_count(m), 2);
		ck_assert_uint_eq(strata_model_loss_count(m), 2);
		ck_assert_str_eq(strata_model_output_loss(m, 1), "categorical_crossentropy");
		ck_assert_double_eq(m->recipe.outputs[0].weight, 1.0);
		ck_assert_double_eq(m->recipe.outputs[1].weight, 0.3);
		ck_assert_uint_eq(m->recipe.outputs[1].n_metrics, 1);
		strata_data_files f = strata_model_data_files(m, false);
		ck_assert_str_eq(f.inputs[0], "/models/xs.idx");
		ck_assert_str_eq(f.inputs[1], "/abs/ys.idx");
		ck_assert_str_eq(f.labels[0], "/models/labels.idx");
		ck_assert_str_eq(f.labels[1], "/models/labels.idx");
		ck_assert_uint_eq(f.num_classes[0], 2);
		ck_assert_uint_eq(f.num_classes[1], 3);
		ck_assert_ptr_null(strata_model_data_files(m, true).inputs[0]);
		strata_model_free(m);
	}
	strata_registry_close(reg);
}
END_TEST

static Suite *outputs_suite(void)
{
	Suite *s = suite_create("outputs");
	TCase *tc = tcase_create("outputs");
	tcase_set_timeout(tc, 300);
	tcase_add_test(tc, test_two_output_loss_fd);
	tcase_add_test(tc, test_total_is_weighted_sum);
	tcase_add_test(tc, test_two_inputs_with_ids);
	tcase_add_test(tc, test_labels_per_output);
	tcase_add_test(tc, test_recipe_errors);
	tcase_add_test(tc, test_recipe_forms);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return ts_run(outputs_suite());
}
