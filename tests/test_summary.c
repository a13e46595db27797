/* The Keras-style summary of models/mnist_cnn.yaml: layer names, output shapes and parameter
 * counts, each expected value derived here from the architecture's formulas, and the printed
 * table's layout and totals. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "support.h"

#define LINE_LENGTH 65
#define SHAPE_COL 29
#define PARAMS_COL 55

/* Keras' output size of a 'valid' window. */
static int64_t valid_out(int64_t in, int64_t window, int64_t stride)
{
	return (in - window) / stride + 1;
}

typedef struct expected_layer {
	const char *name, *class_name;
	strata_shape out;
	uint64_t params;
} expected_layer;

/* mnist_cnn: Conv2D(32, 3x3) -> Conv2D(64, 3x3) -> MaxPooling2D(2x2) -> Dropout -> Flatten ->
 * Dense(128) -> Dropout -> Dense(10), over 28x28x1 inputs. */
static size_t mnist_expected(expected_layer *e)
{
	int64_t h = 28, w = 28, c = 1;
	int64_t c1 = 32, c2 = 64, k = 3, pool = 2, hidden = 128, classes = 10;
	size_t n = 0;

	int64_t h1 = valid_out(h, k, 1), w1 = valid_out(w, k, 1);
	e[n++] = (expected_layer){"conv2d_1", "Conv2D", {.rank = 3, .dims = {h1, w1, c1}}, (uint64_t)(k * k * c * c1 + c1)};
	int64_t h2 = valid_out(h1, k, 1), w2 = valid_out(w1, k, 1);
	e[n++] = (expected_layer){"conv2d_2", "Conv2D", {.rank = 3, .dims = {h2, w2, c2}}, (uint64_t)(k * k * c1 * c2 + c2)};
	int64_t h3 = valid_out(h2, pool, pool), w3 = valid_out(w2, pool, pool);
	e[n++] = (expected_layer){"max_pooling2d_1", "MaxPooling2D", {.rank = 3, .dims = {h3, w3, c2}}, 0};
	e[n++] = (expected_layer){"dropout_1", "Dropout", {.rank = 3, .dims = {h3, w3, c2}}, 0};
	int64_t flat = h3 * w3 * c2;
	e[n++] = (expected_layer){"flatten_1", "Flatten", {.rank = 1, .dims = {flat}}, 0};
	e[n++] = (expected_layer){"dense_1", "Dense", {.rank = 1, .dims = {hidden}}, (uint64_t)(flat * hidden + hidden)};
	e[n++] = (expected_layer){"dropout_2", "Dropout", {.rank = 1, .dims = {hidden}}, 0};
	e[n++] = (expected_layer){"dense_2", "Dense", {.rank = 1, .dims = {classes}}, (uint64_t)(hidden * classes + classes)};
	return n;
}

/* The whole summary as lines; *n receives the count. */
static char **summary_lines(const strata_model *m, size_t *n, char **text)
{
	size_t len = 0;
	FILE *f = open_memstream(text, &len);
	ck_assert_ptr_nonnull(f);
	strata_model_print_summary(m, f);
	fclose(f);
	char **lines = NULL;
	*n = 0;
	for (char *p = *text; *p;) {
		char *nl = strchr(p, '\n');
		ck_assert_msg(nl != NULL, "the summary's last line has no newline");
		*nl = '\0';
		lines = realloc(lines, (*n + 1) * sizeof(*lines));
		lines[(*n)++] = p;
		p = nl + 1;
	}
	return lines;
}

static void shape_text(const strata_shape *s, char *buf, size_t size)
{
	size_t o = (size_t)snprintf(buf, size, "(None");
	for (uint32_t i = 0; i < s->rank; i++)
		o += (size_t)snprintf(buf + o, size - o, ", %lld", (long long)s->dims[i]);
	snprintf(buf + o, size - o, ")");
}

static void with_commas(uint64_t v, char *buf)
{
	char digits[32];
	int n = snprintf(digits, sizeof(digits), "%llu", (unsigned long long)v), o = 0;
	for (int i = 0; i < n; i++) {
		if (i && (n - i) % 3 == 0)
			buf[o++] = ',';
		buf[o++] = digits[i];
	}
	buf[o] = '\0';
}

static void assert_rule(const char *line, char c)
{
	ck_assert_uint_eq(strlen(line), LINE_LENGTH);
	for (size_t i = 0; i < LINE_LENGTH; i++)
		ck_assert_msg(line[i] == c, "rule of '%c' broken at %zu: %s", c, i, line);
}

START_TEST(test_mnist_layers)
{
	strata_registry *reg = ts_registry();
	strata_model *m = ts_model_file(reg, "../models/mnist_cnn.yaml");
	expected_layer e[16];
	size_t n = mnist_expected(e);
	ck_assert_str_eq(strata_model_name(m), "mnist_cnn");
	ck_assert_uint_eq(strata_model_layer_count(m), n);
	strata_shape in = strata_model_input_shape(m);
	ck_assert_uint_eq(in.rank, 3);
	ck_assert_int_eq(in.dims[0] * in.dims[1] * in.dims[2], 28 * 28 * 1);
	for (size_t i = 0; i < n; i++) {
		ck_assert_str_eq(strata_model_layer_name(m, i), e[i].name);
		strata_shape out = strata_model_output_shape(m, i);
		ck_assert_msg(out.rank == e[i].out.rank, "%s: rank %u, expected %u", e[i].name, out.rank,
		              e[i].out.rank);
		for (uint32_t d = 0; d < out.rank; d++)
			ck_assert_msg(out.dims[d] == e[i].out.dims[d], "%s: dim %u is %lld, expected %lld",
			              e[i].name, d, (long long)out.dims[d], (long long)e[i].out.dims[d]);
		ck_assert_msg(strata_model_param_count(m, i) == e[i].params, "%s: %llu params, expected %llu",
		              e[i].name, (unsigned long long)strata_model_param_count(m, i),
		              (unsigned long long)e[i].params);
	}
	ck_assert_uint_eq(strata_model_param_count(m, n), 0); /* out of range */
	strata_model_free(m);
	strata_registry_close(reg);
}
END_TEST

/* The rest of mnist_cnn.yaml: Keras' compile() and fit() arguments of the example. */
START_TEST(test_mnist_settings)
{
	strata_registry *reg = ts_registry();
	strata_model *m = ts_model_file(reg, "../models/mnist_cnn.yaml");
	strata_training_config t = strata_model_training(m);
	ck_assert_uint_eq(t.batch_size, 128);
	ck_assert_uint_eq(t.epochs, 12);
	strata_data_config d = strata_model_data(m);
	ck_assert_double_eq_tol(d.scale, 1.0 / 255.0, 1e-15);
	ck_assert_uint_eq(d.num_classes, 10);
	ck_assert_ptr_nonnull(strstr(d.train_images, "/models/../data/mnist/train-images-idx3-ubyte"));
	ck_assert_ptr_nonnull(strstr(d.test_labels, "/models/../data/mnist/t10k-labels-idx1-ubyte"));
	ck_assert_str_eq(strata_model_device(m), "auto");
	strata_model_free(m);
	strata_registry_close(reg);
}
END_TEST

START_TEST(test_mnist_table)
{
	strata_registry *reg = ts_registry();
	strata_model *m = ts_model_file(reg, "../models/mnist_cnn.yaml");
	expected_layer e[16];
	size_t n_layers = mnist_expected(e), n = 0;
	char *text = NULL;
	char **lines = summary_lines(m, &n, &text);
	uint64_t total = 0;
	char buf[160], shape[64];

	ck_assert_str_eq(lines[0], "Model: \"mnist_cnn\"");
	assert_rule(lines[1], '_');
	ck_assert_str_eq(lines[2], " Layer (type)                Output Shape              Param #");
	assert_rule(lines[3], '=');

	/* Each row: " name (Class)" from column 1, the shape at 29, the count at 55; a name field
	 * longer than 26 characters continues on the next line; a blank line follows each layer. */
	size_t l = 4;
	for (size_t i = 0; i < n_layers; i++) {
		char field[128];
		snprintf(field, sizeof(field), "%s (%s)", e[i].name, e[i].class_name);
		shape_text(&e[i].out, shape, sizeof(shape));
		snprintf(buf, sizeof(buf), "%llu", (unsigned long long)e[i].params);
		ck_assert_msg(l < n, "the table ends before %s", e[i].name);
		const char *row = lines[l++];
		size_t first = strlen(field) < 26 ? strlen(field) : 26;
		ck_assert_msg(row[0] == ' ' && !strncmp(row + 1, field, first), "row for %s: '%s'", e[i].name,
		              row);
		ck_assert_uint_ge(strlen(row), PARAMS_COL);
		ck_assert_msg(!strncmp(row + SHAPE_COL, shape, strlen(shape)), "shape of %s: '%s'", e[i].name,
		              row);
		ck_assert_str_eq(row + PARAMS_COL, buf);
		if (strlen(field) > 26) {
			snprintf(buf, sizeof(buf), " %s", field + 26);
			ck_assert_str_eq(lines[l++], buf);
		}
		ck_assert_str_eq(lines[l++], "");
		total += e[i].params;
	}
	assert_rule(lines[l++], '=');
	char commas[32];
	with_commas(total, commas);
	ck_assert_str_eq(commas, "1,199,882"); /* the total Keras prints for this network */
	snprintf(buf, sizeof(buf), "Total params: %s", commas);
	ck_assert_str_eq(lines[l++], buf);
	snprintf(buf, sizeof(buf), "Trainable params: %s", commas);
	ck_assert_str_eq(lines[l++], buf);
	ck_assert_str_eq(lines[l++], "Non-trainable params: 0");
	assert_rule(lines[l++], '_');
	ck_assert_uint_eq(l, n);
	for (size_t i = 0; i < n; i++)
		ck_assert_msg(strlen(lines[i]) <= LINE_LENGTH &&
		                      (!lines[i][0] || lines[i][strlen(lines[i]) - 1] != ' '),
		              "line %zu too long or with trailing blanks: '%s'", i, lines[i]);
	free(lines);
	free(text);
	strata_model_free(m);
	strata_registry_close(reg);
}
END_TEST

START_TEST(test_non_trainable)
{
	strata_registry *reg = ts_registry();
	strata_model *m = ts_model(reg, "name: frozen\n"
	                                "input: {shape: [6]}\n"
	                                "layers:\n"
	                                "  - {type: dense, units: 4, trainable: false}\n"
	                                "  - {type: dense, units: 3, use_bias: false}\n");
	uint64_t frozen = 6 * 4 + 4, trainable = 4 * 3;
	ck_assert_uint_eq(strata_model_param_count(m, 0), frozen);
	ck_assert_uint_eq(strata_model_param_count(m, 1), trainable);
	size_t n = 0;
	char *text = NULL, buf[64];
	char **lines = summary_lines(m, &n, &text);
	ck_assert_uint_ge(n, 4);
	snprintf(buf, sizeof(buf), "Total params: %llu", (unsigned long long)(frozen + trainable));
	ck_assert_str_eq(lines[n - 4], buf);
	snprintf(buf, sizeof(buf), "Trainable params: %llu", (unsigned long long)trainable);
	ck_assert_str_eq(lines[n - 3], buf);
	snprintf(buf, sizeof(buf), "Non-trainable params: %llu", (unsigned long long)frozen);
	ck_assert_str_eq(lines[n - 2], buf);
	free(lines);
	free(text);
	strata_model_free(m);
	strata_registry_close(reg);
}
END_TEST

/* A name beyond the column's width continues on following lines, 26 characters at a time. */
START_TEST(test_long_name_wraps)
{
	strata_registry *reg = ts_registry();
	const char *name = "a_rather_long_layer_name_that_needs_three_lines";
	char yaml[256];
	snprintf(yaml, sizeof(yaml), "input: {shape: [4]}\nlayers: [{type: dense, units: 2, name: %s}]\n",
	         name);
	strata_model *m = ts_model(reg, yaml);
	size_t n = 0;
	char *text = NULL;
	char **lines = summary_lines(m, &n, &text);
	char field[128], expect[128];
	snprintf(field, sizeof(field), "%s (Dense)", name);
	ck_assert_uint_gt(strlen(field), 52);
	ck_assert_int_eq(strncmp(lines[4] + 1, field, 26), 0);
	ck_assert_str_eq(lines[4] + SHAPE_COL, "(None, 2)                 10");
	snprintf(expect, sizeof(expect), " %.26s", field + 26);
	ck_assert_str_eq(lines[5], expect);
	snprintf(expect, sizeof(expect), " %s", field + 52);
	ck_assert_str_eq(lines[6], expect);
	free(lines);
	free(text);
	strata_model_free(m);
	strata_registry_close(reg);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("summary");
	TCase *tc = tcase_create("summary");
	tcase_add_test(tc, test_mnist_layers);
	tcase_add_test(tc, test_mnist_settings);
	tcase_add_test(tc, test_mnist_table);
	tcase_add_test(tc, test_non_trainable);
	tcase_add_test(tc, test_long_name_wraps);
	suite_add_tcase(s, tc);
	return ts_run(s);
}
