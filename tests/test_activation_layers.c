/* The activation layers with parameters (plugins/activations): relu, leaky_relu, elu, prelu and
 * softmax, on the OpenCL device:
 *  - forward against a host reference for every parameter that changes the code path, over
 *    inputs of rank 1 to 4 with odd sizes;
 *  - backward: the input gradient against the host's derivative, PReLU's slope gradient against
 *    sums on the host (batches long enough to need several blocks of the two-pass reduction), and
 *    every gradient against central finite differences (a second pass bit-identical);
 *  - Keras' parameter counts (PReLU's alpha: the input's shape with shared_axes 1; the others
 *    none), trainable and frozen, and the weight's name and shape;
 *  - names and class names, and the refusals with their FILE:LINE:COLUMN. */
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "support.h"

#include "exec/session.h"
#include "model/model.h"

enum kind { RELU, LEAKY, ELU, PRELU, SOFTMAX };

typedef struct act_case {
	enum kind kind;
	const char *params;  /* the layer's YAML parameters after its type */
	double a, b, c;      /* relu: max_value (< 0: none), slope, threshold; leaky: slope; elu: alpha */
	int shared[2];       /* prelu: 1-based shared axes, 0 for none */
	uint32_t rank;
	int64_t dims[4];
	uint32_t batch;
	float scale;         /* inputs are uniform in [-scale, scale) */
} act_case;

static const act_case cases[] = {
	{RELU, "", -1, 0, 0, {0}, 1, {7}, 3, 1.0f},
	{RELU, ", max_value: 0.5", 0.5, 0, 0, {0}, 3, {3, 5, 2}, 2, 1.0f},
	{RELU, ", negative_slope: 0.1", -1, 0.1, 0, {0}, 1, {7}, 3, 1.0f},
	{RELU, ", threshold: 0.25", -1, 0, 0.25, {0}, 3, {3, 5, 2}, 2, 1.0f},
	{RELU, ", max_value: 6.0, negative_slope: 0.2, threshold: 0.5", 6, 0.2, 0.5, {0}, 2, {5, 3}, 3, 8.0f},
	{RELU, ", max_value: 6, threshold: 1.5", 6, 0, 1.5, {0}, 4, {2, 3, 2, 3}, 2, 8.0f},
	{LEAKY, "", 0.3, 0, 0, {0}, 3, {3, 5, 2}, 2, 1.0f},
	{LEAKY, ", negative_slope: 0.05", 0.05, 0, 0, {0}, 1, {7}, 3, 2.0f},
	{LEAKY, ", negative_slope: 0.3, alpha: 0.3", 0.3, 0, 0, {0}, 1, {9}, 2, 2.0f},
	{ELU, "", 1.0, 0, 0, {0}, 3, {3, 5, 2}, 2, 3.0f},
	{ELU, ", alpha: 0.5", 0.5, 0, 0, {0}, 1, {7}, 3, 3.0f},
	{ELU, ", alpha: -1.5", -1.5, 0, 0, {0}, 2, {3, 3}, 2, 3.0f},
	/* PReLU: a slope per element; shared along the image axes (one per channel), the channels,
	 * two axes that are not neighbours, a rank-1 and a rank-4 input; batches that take several
	 * blocks of PRELU_BLOCK (64) terms of the slope gradient */
	{PRELU, "", 0, 0, 0, {0}, 3, {4, 3, 2}, 70, 1.0f},
	{PRELU, ", shared_axes: [1, 2]", 0, 0, 0, {1, 2}, 3, {4, 3, 2}, 9, 1.0f},
	{PRELU, ", shared_axes: 3", 0, 0, 0, {3}, 3, {4, 3, 2}, 3, 1.0f},
	{PRELU, ", shared_axes: [1, 3]", 0, 0, 0, {1, 3}, 3, {5, 3, 2}, 7, 1.0f},
	{PRELU, ", shared_axes: 2", 0, 0, 0, {2}, 2, {5, 3}, 11, 1.0f},
	{PRELU, ", shared_axes: 1", 0, 0, 0, {1}, 1, {7}, 10, 1.0f},
	{PRELU, ", shared_axes: [2, 4]", 0, 0, 0, {2, 4}, 4, {2, 3, 2, 3}, 5, 1.0f},
	{PRELU, ", shared_axes: [1, 2]", 0, 0, 0, {1, 2}, 3, {9, 9, 3}, 2, 1.0f},
	{SOFTMAX, "", 0, 0, 0, {0}, 1, {7}, 3, 3.0f},
	{SOFTMAX, ", axis: -1", 0, 0, 0, {0}, 3, {3, 5, 2}, 2, 3.0f},
	{SOFTMAX, "", 0, 0, 0, {0}, 2, {3, 1}, 2, 3.0f},
};

static const char *type_of(enum kind k)
{
	static const char *const types[] = {"relu", "leaky_relu", "elu", "prelu", "softmax"};
	return types[k];
}

static size_t elems(const int64_t *dims, uint32_t rank)
{
	size_t n = 1;
	for (uint32_t i = 0; i < rank; i++)
		n *= (size_t)dims[i];
	return n;
}

static bool is_shared(const act_case *c, uint32_t axis0)
{
	return c->shared[0] == (int)axis0 + 1 || c->shared[1] == (int)axis0 + 1;
}

/* The index of element e of a sample into PReLU's alpha: alpha's shape is the sample's with the
 * shared axes 1, row-major. */
static size_t alpha_index(const act_case *c, size_t e)
{
	size_t coord[4], j = 0;
	for (uint32_t k = c->rank; k-- > 0;) {
		coord[k] = e % (size_t)c->dims[k];
		e /= (size_t)c->dims[k];
	}
	for (uint32_t k = 0; k < c->rank; k++)
		j = j * (is_shared(c, k) ? 1 : (size_t)c->dims[k]) + (is_shared(c, k) ? 0 : coord[k]);
	return j;
}

/* keras.activations.relu: min(x > t ? x : 0, max_value) - slope * max(t - x, 0), in float as the
 * kernel computes it. */
static float ref_relu(float x, float max_value, float slope, float t)
{
	float a = x > t ? x : 0.0f;
	if (max_value >= 0.0f)
		a = fminf(a, max_value);
	if (slope != 0.0f)
		a -= slope * fmaxf(t - x, 0.0f);
	return a;
}

/* TensorFlow's gradient of that composition; without threshold and max_value Keras computes it as
 * leaky_relu, whose gradient at 0 is the slope. */
static double ref_relu_grad(float x, float max_value, float slope, float t)
{
	double d = x > t && (max_value < 0.0f || x <= max_value) ? 1.0 : 0.0;
	return x < t || (max_value < 0.0f && t == 0.0f && x == t) ? d + slope : d;
}

static char *case_yaml(const act_case *c)
{
	char *yaml = malloc(512);
	ck_assert_ptr_nonnull(yaml);
	int n = snprintf(yaml, 512, "inputs: [{name: x, shape: [");
	for (uint32_t k = 0; k < c->rank; k++)
		n += snprintf(yaml + n, (size_t)(512 - n), "%s%lld", k ? ", " : "", (long long)c->dims[k]);
	snprintf(yaml + n, (size_t)(512 - n), "]}]\nlayers:\n  - {type: %s%s}\n", type_of(c->kind), c->params);
	return yaml;
}

/* Forward, then backward from dy = r: y, the input gradient and PReLU's slope gradient against
 * the host. */
START_TEST(test_forward_backward)
{
	const act_case *c = &cases[_i];
	char *yaml = case_yaml(c);
	ts_fd f;
	ts_fd_open(&f, yaml, c->batch, 0.0f, 40 + (unsigned)_i);
	/* Exact zeros and thresholds too: the gradients there are TensorFlow's choices. */
	for (size_t i = 0; i < f.in_count; i++)
		f.x[i] = i % 7 == 3 ? 0.0f : i % 11 == 5 && c->kind == RELU ? (float)c->c : f.x[i] * c->scale;
	ts_tensor_write(f.dev.rt, &f.net.s->input, 0, f.x, f.in_count);
	ts_fd_loss(&f);
	size_t per_sample = elems(c->dims, c->rank), cols = (size_t)c->dims[c->rank - 1];
	ck_assert_uint_eq(f.out_count, f.in_count);
	ck_assert_uint_eq(f.in_count, c->batch * per_sample);
	const float *alpha = c->kind == PRELU ? f.w[0] : NULL;
	float *want = ts_floats(f.in_count);
	double *want_dx = calloc(f.in_count, sizeof(double));
	ck_assert_ptr_nonnull(want_dx);

	for (size_t i = 0; i < f.in_count; i++) {
		float x = f.x[i], dy = f.r[i];
		switch (c->kind) {
		case RELU:
			want[i] = ref_relu(x, (float)c->a, (float)c->b, (float)c->c);
			want_dx[i] = dy * ref_relu_grad(x, (float)c->a, (float)c->b, (float)c->c);
			break;
		case LEAKY:
			want[i] = x >= 0.0f ? x : (float)c->a * x;
			want_dx[i] = dy * (x > 0.0f ? 1.0 : (float)c->a);
			break;
		case ELU:
			want[i] = x > 0.0f ? x : (float)(c->a * expm1((double)x));
			want_dx[i] = dy * (x > 0.0f ? 1.0 : c->a * exp((double)x));
			break;
		case PRELU: {
			float s = alpha[alpha_index(c, i % per_sample)];
			want[i] = x > 0.0f ? x : s * x;
			want_dx[i] = x > 0.0f ? dy : (x < 0.0f ? (double)s * dy : 0.0);
			break;
		}
		case SOFTMAX:
			if (i % cols == 0) {
				double most = -INFINITY, sum = 0.0, dot = 0.0;
				for (size_t k = 0; k < cols; k++)
					most = fmax(most, f.x[i + k]);
				for (size_t k = 0; k < cols; k++)
					sum += exp(f.x[i + k] - most);
				for (size_t k = 0; k < cols; k++) {
					want[i + k] = (float)(exp(f.x[i + k] - most) / sum);
					dot += (double)f.r[i + k] * want[i + k];
				}
				for (size_t k = 0; k < cols; k++)
					want_dx[i + k] = want[i + k] * (f.r[i + k] - dot);
			}
			break;
		}
	}
	/* The relu family computes what the host does in float: the same bits. */
	double tol = c->kind == RELU || c->kind == LEAKY || c->kind == PRELU ? 0.0 : 2e-6;
	for (size_t i = 0; i < f.in_count; i++)
		ck_assert_msg(fabs((double)f.y[i] - want[i]) <= tol * fmax(1.0, fabs(want[i])),
		              "%s%s: y[%zu] = %.9g for x = %.9g, want %.9g", type_of(c->kind), c->params, i,
		              (double)f.y[i], (double)f.x[i], (double)want[i]);

	float *dx = ts_floats(f.in_count);
	ts_tensor_read(f.dev.rt, ts_fd_backward(&f, true), dx, f.in_count);
	for (size_t i = 0; i < f.in_count; i++)
		ck_assert_msg(fabs(dx[i] - want_dx[i]) <= 1e-5 * fmax(1.0, fabs(want_dx[i])),
		              "%s%s: dx[%zu] = %.9g for x = %.9g, want %.9g", type_of(c->kind), c->params, i,
		              (double)dx[i], (double)f.x[i], want_dx[i]);

	if (c->kind == PRELU) {
		size_t n_alpha = f.w_count[0];
		double *want_da = calloc(n_alpha, sizeof(double));
		float *da = ts_floats(n_alpha);
		ck_assert_ptr_nonnull(want_da);
		for (size_t i = 0; i < f.in_count; i++)
			want_da[alpha_index(c, i % per_sample)] += (double)f.r[i] * fmin(f.x[i], 0.0);
		ts_tensor_read(f.dev.rt, ts_fd_weight(&f, 0, true), da, n_alpha);
		for (size_t j = 0; j < n_alpha; j++)
			ck_assert_msg(fabs(da[j] - want_da[j]) <= 1e-5 * fmax(1.0, fabs(want_da[j])),
			              "prelu%s: dalpha[%zu] = %.9g, want %.9g", c->params, j, (double)da[j], want_da[j]);
		free(da);
		free(want_da);
	}
	free(dx);
	free(want_dx);
	free(want);
	ts_fd_close(&f);
	free(yaml);
}
END_TEST

/* Every gradient against central finite differences, the relu family's kinks skipped. The
 * inputs are spread wide enough to cross every piece (the threshold, max_value). */
START_TEST(test_finite_differences)
{
	const act_case *c = &cases[_i];
	/* A softmax over one element is 1 whatever the input: its gradient is 0, checked above. */
	if (c->kind == SOFTMAX && c->dims[c->rank - 1] == 1)
		return;
	char *yaml = case_yaml(c);
	ts_fd f;
	uint32_t batch = c->batch > 12 ? 12 : c->batch;
	ts_fd_open(&f, yaml, batch, 0.0f, 70 + (unsigned)_i);
	for (size_t i = 0; i < f.in_count; i++)
		f.x[i] *= c->scale;
	ts_tensor_write(f.dev.rt, &f.net.s->input, 0, f.x, f.in_count);
	ts_fd_tolerance tol = {.max_checks = 80, .nontrivial = 1e-3, .kinks = c->kind != ELU && c->kind != SOFTMAX};
	ts_fd_check_gradients(&f, &tol);
	ts_fd_close(&f);
	free(yaml);
}
END_TEST

/* ---- Keras' parameter counts -------------------------------------------------------------------- */

static char *summary_text(const strata_model *m)
{
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);
	ck_assert_ptr_nonnull(f);
	strata_model_print_summary(m, f);
	fclose(f);
	return text;
}

typedef struct count_case {
	const char *yaml;
	uint64_t layer0;          /* parameters of the first layer */
	int64_t alpha_dims[4];    /* its alpha's shape, rank from `alpha_rank`; none when 0 */
	uint32_t alpha_rank;
	uint64_t trainable, frozen;
} count_case;

static const count_case counts[] = {
	/* Keras: PReLU(shared_axes=[1, 2]) on (4, 4, 3): alpha (1, 1, 3), 3 params; Dense(10) on 48: 490 */
	{"inputs: [{name: x, shape: [4, 4, 3]}]\nlayers:\n  - {type: prelu, shared_axes: [1, 2]}\n"
	 "  - {type: flatten}\n  - {type: dense, units: 10}\n",
	 3, {1, 1, 3}, 3, 3 + 490, 0},
	/* without shared axes alpha is the input's shape: 48 */
	{"inputs: [{name: x, shape: [4, 4, 3]}]\nlayers:\n  - {type: prelu}\n  - {type: flatten}\n"
	 "  - {type: dense, units: 10}\n",
	 48, {4, 4, 3}, 3, 48 + 490, 0},
	/* shared along the channels: (4, 4, 1) */
	{"inputs: [{name: x, shape: [4, 4, 3]}]\nlayers:\n  - {type: prelu, shared_axes: 3}\n", 16, {4, 4, 1}, 3, 16,
	 0},
	/* frozen: Keras counts the slopes as non-trainable */
	{"inputs: [{name: x, shape: [4, 4, 3]}]\nlayers:\n  - {type: prelu, trainable: false}\n  - {type: flatten}\n"
	 "  - {type: dense, units: 10}\n",
	 48, {4, 4, 3}, 3, 490, 48},
	/* after a Dense(8): (8,) slopes, with an l2 penalty and a constraint */
	{"inputs: [{name: x, shape: [6]}]\nlayers:\n  - {type: dense, units: 8}\n"
	 "  - {type: prelu, alpha_regularizer: {l2: 0.01}, alpha_initializer: ones, alpha_constraint: non_neg}\n",
	 56, {0}, 0, 56 + 8, 0},
	/* the others have no weights */
	{"inputs: [{name: x, shape: [4, 4, 3]}]\nlayers:\n  - {type: relu, max_value: 6}\n  - {type: leaky_relu}\n"
	 "  - {type: elu}\n  - {type: softmax}\n",
	 0, {0}, 0, 0, 0},
};

START_TEST(test_counts)
{
	const count_case *c = &counts[_i];
	strata_registry *reg = ts_registry();
	strata_model *m = ts_model(reg, c->yaml);
	ck_assert_uint_eq(strata_model_param_count(m, 0), c->layer0);
	if (c->alpha_rank) {
		ck_assert_uint_eq(m->layers[0].n_weights, 1);
		ck_assert_str_eq(m->layers[0].weights[0].name, "alpha");
		ck_assert_uint_eq(m->layers[0].weights[0].shape.rank, c->alpha_rank);
		for (uint32_t k = 0; k < c->alpha_rank; k++)
			ck_assert_int_eq(m->layers[0].weights[0].shape.dims[k], c->alpha_dims[k]);
	}
	char *text = summary_text(m), want[96];
	snprintf(want, sizeof(want), "Total params: %llu\n", (unsigned long long)(c->trainable + c->frozen));
	ck_assert_msg(strstr(text, want), "summary lacks '%s':\n%s", want, text);
	snprintf(want, sizeof(want), "Trainable params: %llu\n", (unsigned long long)c->trainable);
	ck_assert_msg(strstr(text, want), "summary lacks '%s':\n%s", want, text);
	snprintf(want, sizeof(want), "Non-trainable params: %llu\n", (unsigned long long)c->frozen);
	ck_assert_msg(strstr(text, want), "summary lacks '%s':\n%s", want, text);
	free(text);
	strata_model_free(m);
	strata_registry_close(reg);
}
END_TEST

/* PReLU's slopes start as alpha_initializer says: zeros by default (then it is ReLU), ones (the
 * identity). */
START_TEST(test_prelu_initializer)
{
	const char *yaml[2] = {
		"inputs: [{name: x, shape: [5]}]\nlayers:\n  - {type: prelu}\n",
		"inputs: [{name: x, shape: [5]}]\nlayers:\n  - {type: prelu, alpha_initializer: ones}\n",
	};
	ts_device dev = ts_device_open();
	ts_net net = ts_net_open(&dev, yaml[_i], 2, 1);
	float alpha[5];
	strata_error err = {0};
	ck_assert_int_eq(strata_session_read_weight(net.s, 0, 0, alpha, 5, &err), STRATA_OK);
	for (int j = 0; j < 5; j++)
		ck_assert_float_eq(alpha[j], _i ? 1.0f : 0.0f);
	ts_net_close(&net);
	ts_device_close(&dev);
}
END_TEST

/* ---- names and refusals -------------------------------------------------------------------------- */

START_TEST(test_names)
{
	static const char *const types[] = {"relu", "leaky_relu", "elu", "prelu", "softmax"};
	static const char *const classes[] = {"ReLU", "LeakyReLU", "ELU", "PReLU", "Softmax"};
	/* Keras' automatic names: the class name in snake case as Keras writes it */
	static const char *const prefixes[] = {"re_lu", "leaky_re_lu", "elu", "p_re_lu", "softmax"};
	strata_registry *reg = ts_registry();
	for (size_t t = 0; t < 5; t++) {
		char yaml[256];
		snprintf(yaml, sizeof(yaml), "inputs: [{name: x, shape: [3, 4]}]\nlayers:\n  - {type: %s}\n  - {type: %s}\n",
		         types[t], classes[t]);
		strata_model *m = ts_model(reg, yaml);
		char want[32];
		snprintf(want, sizeof(want), "%s_1", prefixes[t]);
		ck_assert_str_eq(m->layers[0].name, want);
		snprintf(want, sizeof(want), "%s_2", prefixes[t]);
		ck_assert_str_eq(m->layers[1].name, want);
		ck_assert_str_eq(m->layers[0].type->ops.class_name, classes[t]);
		ck_assert_int_eq(m->layers[1].out.rank, 2);
		ck_assert_int_eq(m->layers[1].out.dims[0], 3);
		ck_assert_int_eq(m->layers[1].out.dims[1], 4);
		strata_model_free(m);
	}
	strata_registry_close(reg);
}
END_TEST

typedef struct refusal_case {
	const char *yaml;
	const char *where;   /* "act.yaml:LINE:COLUMN: " */
	const char *says[2]; /* further parts of the message */
} refusal_case;

#define ONE_LAYER(input, layer) "inputs: [{name: x, shape: " input "}]\nlayers:\n  - " layer "\n"

static const refusal_case refusals[] = {
	{ONE_LAYER("[4, 4, 3]", "{type: prelu, shared_axes: [1, 4]}"), "act.yaml:3:32: p_re_lu_1: ",
	 {"axis 4 is out of range for rank-3 samples: 1 to 3"}},
	{ONE_LAYER("[7]", "{type: prelu, shared_axes: 2}"), "act.yaml:3:32: p_re_lu_1: ",
	 {"axis 2 is out of range for rank-1 samples: 1 to 1"}},
	{ONE_LAYER("[4, 4, 3]", "{type: prelu, shared_axes: [0, 1]}"), "act.yaml:3:33: ", {"'shared_axes' must be in [1, 4]"}},
	{ONE_LAYER("[4, 4, 3]", "{type: prelu, alpha_constraint: unit_norm}"), "act.yaml:3:37: ",
	 {"'alpha_constraint': unknown constraint 'unit_norm'"}},
	/* max_norm's axes are the slopes' axes: (1, 1, 3) has 0 to 2 */
	{ONE_LAYER("[4, 4, 3]", "{type: prelu, shared_axes: [1, 2], alpha_constraint: {max_norm: {axis: 3}}}"),
	 "act.yaml:3:5: p_re_lu_1: ", {"axis 3 is outside weight 'alpha' of rank 3"}},
	{ONE_LAYER("[4, 4, 3]", "{type: prelu, alpha_initializer: lecun_normal}"), "act.yaml:3:38: ",
	 {"'alpha_initializer' must be one of", "zeros"}},
	{ONE_LAYER("[5]", "{type: relu, max_value: 0}"), "act.yaml:3:29: ", {"'max_value' must be > 0, got 0"}},
	{ONE_LAYER("[5]", "{type: relu, negative_slope: -0.1}"), "act.yaml:3:34: ", {"'negative_slope' must be >= 0"}},
	{ONE_LAYER("[5]", "{type: relu, threshold: -1}"), "act.yaml:3:29: ", {"'threshold' must be >= 0"}},
	{ONE_LAYER("[5]", "{type: leaky_relu, alpha: 0.2}"), "act.yaml:3:31: ",
	 {"'alpha' is a Keras parameter Strata leaves out", "write negative_slope instead"}},
	{ONE_LAYER("[5]", "{type: leaky_relu, negative_slope: -1}"), "act.yaml:3:40: ", {"'negative_slope' must be >= 0"}},
	{ONE_LAYER("[3, 5]", "{type: softmax, axis: 1}"), "act.yaml:3:27: ",
	 {"'axis' is a Keras parameter Strata leaves out", "only the last axis"}},
	{ONE_LAYER("[5]", "{type: elu, alpha: fast}"), "act.yaml:3:24: ", {"'alpha' must be a number"}},
};

START_TEST(test_refusals)
{
	const refusal_case *rc = &refusals[_i];
	strata_registry *reg = ts_registry();
	strata_model *m = NULL;
	strata_error err = {0};
	strata_status st = strata_model_load_string(reg, rc->yaml, strlen(rc->yaml), "act.yaml", NULL, &m, &err);
	ck_assert_msg(st == STRATA_ERR_INVALID, "status %s: %s", strata_status_name(st), err.message);
	ck_assert_ptr_null(m);
	ck_assert_msg(strncmp(err.message, rc->where, strlen(rc->where)) == 0, "'%s' does not start with '%s'",
	              err.message, rc->where);
	for (size_t k = 0; k < 2 && rc->says[k]; k++)
		ck_assert_msg(strstr(err.message, rc->says[k]), "'%s' does not say '%s'", err.message, rc->says[k]);
	strata_registry_close(reg);
}
END_TEST

static Suite *activation_layers_suite(void)
{
	Suite *s = suite_create("activation_layers");
	int n_cases = (int)(sizeof(cases) / sizeof(cases[0]));
	TCase *fw = tcase_create("forward_backward");
	tcase_add_loop_test(fw, test_forward_backward, 0, n_cases);
	suite_add_tcase(s, fw);
	TCase *fd = tcase_create("finite_differences");
	tcase_add_loop_test(fd, test_finite_differences, 0, n_cases);
	suite_add_tcase(s, fd);
	TCase *model = tcase_create("model");
	tcase_add_loop_test(model, test_counts, 0, (int)(sizeof(counts) / sizeof(counts[0])));
	tcase_add_loop_test(model, test_prelu_initializer, 0, 2);
	tcase_add_test(model, test_names);
	tcase_add_loop_test(model, test_refusals, 0, (int)(sizeof(refusals) / sizeof(refusals[0])));
	suite_add_tcase(s, model);
	return s;
}

int main(void)
{
	return ts_run(activation_layers_suite());
}
