/* Keras' regularization of issue 14 that the host applies to any layer: `activity_regularizer`
 * (the penalty on a layer's output, in the loss and in the gradient) and weight constraints
 * (`kernel_constraint` / `bias_constraint`: max_norm over the axes Keras names, non_neg), applied
 * after every optimizer step. Each against a host reference: the gradients by finite differences
 * of the penalized loss, the loss by the penalty computed from the layer's outputs, the
 * constraints by Keras' formulas on the weights before the step. */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <strata/strata.h>

#include "support.h"

/* ---- activity_regularizer --------------------------------------------------------------------- */

/* The gradients of a model with activity regularizers on a hidden layer, on a merge and on the
 * output, against finite differences of sum(r * y) plus the penalties. */
START_TEST(test_activity_gradients)
{
	static const char yaml[] = "inputs: [{name: x, shape: [5]}]\n"
	                           "layers:\n"
	                           "  - {type: dense, units: 4, activation: tanh, name: h,\n"
	                           "     activity_regularizer: {l1: 0.05, l2: 0.1}}\n"
	                           "  - {type: dense, units: 4, name: g, inputs: x, activity_regularizer: {l2: 0.3}}\n"
	                           "  - {type: add, name: s, inputs: [h, g], activity_regularizer: {l1: 0.2}}\n"
	                           "  - {type: dense, units: 3, activation: sigmoid, name: out, inputs: s,\n"
	                           "     activity_regularizer: {l1: 0.1, l2: 0.05}}\n"
	                           "outputs: [out]\n";
	ts_fd f;
	ts_fd_open(&f, yaml, 3, 0.0f, 41);
	ts_fd_tolerance tol = {.max_checks = 64, .nontrivial = 1e-3, .kinks = true};
	ts_fd_check_gradients(&f, &tol);
	ts_fd_close(&f);
}
END_TEST

static char tmpdir[256];

/* n samples of `features` bytes and labels of 3 classes, as IDX files in tmpdir. */
static void write_data(uint32_t n, uint32_t features, char **images, char **labels)
{
	uint8_t *x = malloc((size_t)n * features), *y = malloc(n);
	ck_assert(x && y);
	for (uint32_t i = 0; i < n * features; i++)
		x[i] = (uint8_t)((i * 97 + 13) % 256);
	for (uint32_t i = 0; i < n; i++)
		y[i] = (uint8_t)(i % 3);
	*images = ts_join(tmpdir, "images.idx");
	*labels = ts_join(tmpdir, "labels.idx");
	ts_write_idx(*images, 0x08, 2, (uint32_t[]){n, features}, x);
	ts_write_idx(*labels, 0x08, 1, (uint32_t[]){n}, y);
	free(x);
	free(y);
}

/* The evaluated loss of a model with an activity regularizer exceeds the same model's without by
 * the penalty's mean over the samples (Keras 2: each batch's penalty divided by its size),
 * computed here from the layer's outputs; the last batch is partial. The softmax output with a
 * penalty of its own is not folded into the loss, and its gradient still trains. */
START_TEST(test_activity_loss)
{
	const uint32_t n = 8, features = 6;
	ts_tmpdir_make(tmpdir, sizeof(tmpdir), "strata-regularizers");
	char *images, *labels;
	write_data(n, features, &images, &labels);
	const char *fmt = "input: {shape: [6]}\n"
	                  "layers:\n"
	                  "  - {type: dense, units: 4, activation: tanh, name: h%s}\n"
	                  "  - {type: dense, units: 3, activation: softmax, name: out%s}\n"
	                  "loss: categorical_crossentropy\n"
	                  "optimizer: sgd\n";
	char with[512], without[512];
	snprintf(with, sizeof(with), fmt, ", activity_regularizer: {l1: 0.03, l2: 0.2}",
	         ", activity_regularizer: {l2: 0.5}");
	snprintf(without, sizeof(without), fmt, "", "");
	ts_device dev = ts_device_open();
	double loss[2];
	float *h = malloc(n * 4 * sizeof(*h)), *o = malloc(n * 3 * sizeof(*o)), *in = malloc(n * features * sizeof(*in));
	ck_assert(h && o && in);
	for (int k = 0; k < 2; k++) {
		ts_net net = ts_net_open(&dev, k == 0 ? with : without, 5, 3);
		strata_dataset_options dopts = {.size = sizeof(dopts), .images = images, .labels = labels,
		                                .scale = 1.0 / 255.0, .num_classes = 3};
		strata_dataset *ds = NULL;
		strata_error err = {0};
		ck_assert_msg(strata_dataset_load(dev.rt, &dopts, &ds, &err) == STRATA_OK, "%s", err.message);
		strata_eval_result r;
		ck_assert_msg(strata_evaluate(net.s, ds, 5, &r, &err) == STRATA_OK, "%s", err.message);
		loss[k] = r.loss;
		if (k == 0) {
			for (uint32_t i = 0; i < n * features; i++)
				in[i] = (float)((i * 97 + 13) % 256) / 255.0f;
			for (uint32_t b = 0; b < n; b += 4) {
				uint32_t m = n - b < 4 ? n - b : 4;
				ck_assert(strata_session_forward_to(net.s, in + b * features, m, 0, h + b * 4, &err) == STRATA_OK);
				ck_assert(strata_session_forward_to(net.s, in + b * features, m, 1, o + b * 3, &err) == STRATA_OK);
			}
			/* A training step works with the unfolded softmax. */
			ck_assert_msg(strata_session_train_steps(net.s, ds, 4, 2, &err) == STRATA_OK, "%s", err.message);
		}
		strata_dataset_free(ds);
		ts_net_close(&net);
	}
	double penalty = 0.0;
	for (uint32_t i = 0; i < n * 4; i++)
		penalty += 0.03 * fabs(h[i]) + 0.2 * (double)h[i] * h[i];
	for (uint32_t i = 0; i < n * 3; i++)
		penalty += 0.5 * (double)o[i] * o[i];
	penalty /= n;
	ck_assert_msg(fabs((loss[0] - loss[1]) - penalty) < 1e-5 * (1.0 + penalty),
	              "loss with %.9g, without %.9g: difference %.9g, penalty %.9g", loss[0], loss[1], loss[0] - loss[1],
	              penalty);
	ck_assert(penalty > 0.01);
	free(h);
	free(o);
	free(in);
	ts_device_close(&dev);
	remove(images);
	remove(labels);
	free(images);
	free(labels);
	ts_tmpdir_remove(tmpdir);
}
END_TEST

/* ---- constraints ------------------------------------------------------------------------------ */

/* Keras' MaxNorm on a row-major weight of `rank` dims: each slice over the axes in `mask` scaled by
 * clip(norm, 0, max) / (1e-7 + norm). */
static void ref_max_norm(double *w, const int64_t *dims, uint32_t rank, uint32_t mask, double max_value)
{
	size_t count = 1;
	for (uint32_t a = 0; a < rank; a++)
		count *= (size_t)dims[a];
	double *norm2 = calloc(count, sizeof(*norm2)); /* by the slice's first element's key */
	size_t *key = malloc(count * sizeof(*key));
	ck_assert(norm2 && key);
	for (size_t i = 0; i < count; i++) {
		/* the slice of element i: its index with the constrained axes zeroed */
		size_t rest = i, k = 0, stride = 1;
		for (int a = (int)rank - 1; a >= 0; a--) {
			size_t idx = rest % (size_t)dims[a];
			rest /= (size_t)dims[a];
			if (!(mask & (1u << a)))
				k += idx * stride;
			stride *= (size_t)dims[a];
		}
		key[i] = k;
		norm2[k] += w[i] * w[i];
	}
	for (size_t i = 0; i < count; i++) {
		double nrm = sqrt(norm2[key[i]]);
		w[i] *= fmin(nrm, max_value) / (1e-7 + nrm);
	}
	free(norm2);
	free(key);
}

typedef struct constraint_case {
	const char *layers;   /* the model's layers */
	uint32_t shape[3];    /* the input */
	uint32_t rank;
	size_t layer, weight; /* the weight constrained */
	int kind;             /* 0 max_norm, 1 non_neg */
	uint32_t mask;
	double max_value;
} constraint_case;

static const constraint_case constraint_cases[] = {
	/* Dense with Keras' default axis 0: the norm of each unit's incoming weights. */
	{"  - {type: flatten}\n  - {type: dense, units: 5, kernel_constraint: {max_norm: {max_value: 0.5}}}\n",
	 {2, 3, 1}, 2, 1, 0, 0, 1u << 0, 0.5},
	/* The shorthand: max_norm alone is max_value 2, axis 0. */
	{"  - {type: flatten}\n  - {type: dense, units: 5, kernel_constraint: max_norm}\n", {2, 3, 1}, 2, 1, 0, 0, 1u, 2.0},
	/* {max_norm: 0.7} on axis 1 (each input's outgoing weights). */
	{"  - {type: flatten}\n  - {type: dense, units: 5, kernel_constraint: {max_norm: {max_value: 0.7, axis: -1}}}\n",
	 {2, 3, 1}, 2, 1, 0, 0, 1u << 1, 0.7},
	/* Conv2D with axis [0, 1, 2], as Keras' documentation advises: the norm of each filter. */
	{"  - {type: conv2d, filters: 3, kernel_size: 2, kernel_constraint: {max_norm: {max_value: 0.4, axis: [0, 1, 2]}}}\n",
	 {4, 4, 2}, 4, 0, 0, 0, 7u, 0.4},
	{"  - {type: conv2d, filters: 3, kernel_size: 2, kernel_constraint: {max_norm: 0.9}}\n", {4, 4, 2}, 4, 0, 0, 0, 1u,
	 0.9},
	{"  - {type: flatten}\n  - {type: dense, units: 5, kernel_constraint: non_neg}\n", {2, 3, 1}, 2, 1, 0, 1, 0, 0},
	{"  - {type: flatten}\n  - {type: dense, units: 5, bias_constraint: {non_neg: {}}}\n", {2, 3, 1}, 1, 1, 1, 1, 0, 0},
};

/* A training step at a learning rate that leaves the weights as they were: what remains is the
 * constraint, which must equal Keras' formula applied to the weights written before. */
START_TEST(test_constraint)
{
	const constraint_case *c = &constraint_cases[_i];
	char yaml[1024];
	snprintf(yaml, sizeof(yaml),
	         "input: {shape: [%u, %u, %u]}\nlayers:\n%s  - {type: flatten}\n  - {type: dense, units: 3, activation: "
	         "softmax}\nloss: categorical_crossentropy\noptimizer: {type: sgd, learning_rate: 1.0e-30}\n",
	         c->shape[0], c->shape[1], c->shape[2], c->layers);
	ts_tmpdir_make(tmpdir, sizeof(tmpdir), "strata-constraints");
	char *images, *labels;
	write_data(6, c->shape[0] * c->shape[1] * c->shape[2], &images, &labels);
	/* the IDX holds rank-1 samples; the model's input has rank 3: rewrite with its shape */
	{
		uint32_t per = c->shape[0] * c->shape[1] * c->shape[2];
		uint8_t *x = malloc(6 * per);
		ck_assert_ptr_nonnull(x);
		for (uint32_t i = 0; i < 6 * per; i++)
			x[i] = (uint8_t)((i * 97 + 13) % 256);
		ts_write_idx(images, 0x08, 4, (uint32_t[]){6, c->shape[0], c->shape[1], c->shape[2]}, x);
		free(x);
	}
	ts_device dev = ts_device_open();
	ts_net net = ts_net_open(&dev, yaml, 3, 5);
	strata_error err = {0};
	const char *name = NULL;
	strata_shape shape;
	ck_assert(strata_session_weight_info(net.s, c->layer, c->weight, &name, &shape) == STRATA_OK);
	ck_assert_str_eq(name, c->weight == 0 ? "kernel" : "bias");
	ck_assert_uint_eq(shape.rank, c->rank);
	size_t count = 1;
	for (uint32_t a = 0; a < shape.rank; a++)
		count *= (size_t)shape.dims[a];
	float *w = malloc(count * sizeof(*w)), *got = malloc(count * sizeof(*got));
	double *want = malloc(count * sizeof(*want));
	ck_assert(w && got && want);
	/* large enough that some slices exceed the bound, some not; negative values for non_neg */
	for (size_t i = 0; i < count; i++) {
		w[i] = (float)(((double)((i * 37) % 23) - 11.0) / 11.0 * (i % 3 == 0 ? 3.0 : 0.2));
		want[i] = w[i];
	}
	ck_assert(strata_session_write_weight(net.s, c->layer, c->weight, w, count, &err) == STRATA_OK);
	if (c->kind == 0)
		ref_max_norm(want, shape.dims, shape.rank, c->mask, c->max_value);
	else
		for (size_t i = 0; i < count; i++)
			want[i] = want[i] >= 0.0 ? want[i] : 0.0;
	strata_dataset_options dopts = {.size = sizeof(dopts), .images = images, .labels = labels, .scale = 1.0 / 255.0,
	                                .num_classes = 3};
	strata_dataset *ds = NULL;
	ck_assert_msg(strata_dataset_load(dev.rt, &dopts, &ds, &err) == STRATA_OK, "%s", err.message);
	ck_assert_msg(strata_session_train_steps(net.s, ds, 3, 1, &err) == STRATA_OK, "%s", err.message);
	ck_assert(strata_session_read_weight(net.s, c->layer, c->weight, got, count, &err) == STRATA_OK);
	size_t changed = 0;
	for (size_t i = 0; i < count; i++) {
		ck_assert_msg(fabs(got[i] - want[i]) <= 1e-6 * (1.0 + fabs(want[i])), "case %d [%zu]: device %.9g, Keras %.9g",
		              _i, i, (double)got[i], want[i]);
		changed += fabs((double)w[i] - want[i]) > 1e-4;
	}
	ck_assert_msg(changed > 0, "case %d: the constraint changed nothing: a weak test", _i);
	strata_dataset_free(ds);
	free(w);
	free(got);
	free(want);
	ts_net_close(&net);
	ts_device_close(&dev);
	remove(images);
	remove(labels);
	free(images);
	free(labels);
	ts_tmpdir_remove(tmpdir);
}
END_TEST

/* Bad constraints and regularizers are refused at their FILE:LINE:COLUMN. */
START_TEST(test_refused)
{
	static const struct {
		const char *layer, *needle;
	} cases[] = {
		{"{type: dense, units: 2, kernel_constraint: unit_norm}", "unknown constraint 'unit_norm'; Strata has max_norm"},
		{"{type: dense, units: 2, kernel_constraint: {max_norm: {max_value: 0}}}", "'max_value' must be > 0, got 0"},
		{"{type: dense, units: 2, kernel_constraint: {max_norm: {axis: 2}}}", "axis 2 is outside weight 'kernel'"},
		{"{type: dense, units: 2, kernel_constraint: {max_norm: {size: 2}}}", "unknown key 'size'"},
		{"{type: dense, units: 2, kernel_constraint: [max_norm]}", "'kernel_constraint' must be"},
		{"{type: dense, units: 2, activity_regularizer: {l3: 1}}", "unknown key 'l3'"},
		{"{type: dense, units: 2, activity_regularizer: {l1: -1}}", "'l1' must be"},
	};
	strata_registry *reg = ts_registry();
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char yaml[256];
		snprintf(yaml, sizeof(yaml), "input: {shape: [3]}\nlayers:\n  - %s\n", cases[i].layer);
		strata_model *m = NULL;
		strata_error err = {0};
		strata_status st = strata_model_load_string(reg, yaml, strlen(yaml), "bad.yaml", NULL, &m, &err);
		ck_assert_msg(st != STRATA_OK, "case %zu loaded", i);
		ck_assert_msg(strstr(err.message, cases[i].needle) && strncmp(err.message, "bad.yaml:3:", 11) == 0,
		              "case %zu: '%s' lacks bad.yaml:3: or '%s'", i, err.message, cases[i].needle);
	}
	strata_registry_close(reg);
}
END_TEST

static Suite *regularizers_suite(void)
{
	Suite *s = suite_create("regularizers");
	TCase *tc = tcase_create("regularizers");
	tcase_add_test(tc, test_activity_gradients);
	tcase_add_test(tc, test_activity_loss);
	tcase_add_loop_test(tc, test_constraint, 0, (int)(sizeof(constraint_cases) / sizeof(constraint_cases[0])));
	tcase_add_test(tc, test_refused);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return ts_run(regularizers_suite());
}
