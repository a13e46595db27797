/* Exclusive bounds of numeric parameters (plugin.h, added in 0.3): the bounds spec in `choices` of
 * an INT, FLOAT or INTS declaration, read by the loader (params.c) and shown by `strata layers`
 * (strata_registry_print_layers); declarations without one keep their inclusive ranges, and the
 * struct keeps the layout plugins built against older headers have. */
#include <float.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/params.h"
#include "model/yaml_doc.h"
#include "plugin/registry.h"
#include "support.h"

/* ---- The ABI: layout of strata_param as every header since 0.1 has it ------------------------- */

START_TEST(test_layout_unchanged)
{
	/* name, type, default_value, min, max, choices, count, doc: on LP64, the offsets of 0.1. */
	if (sizeof(void *) != 8 || sizeof(double) != 8)
		return;
	ck_assert_uint_eq(offsetof(strata_param, name), 0);
	ck_assert_uint_eq(offsetof(strata_param, type), 8);
	ck_assert_uint_eq(offsetof(strata_param, default_value), 16);
	ck_assert_uint_eq(offsetof(strata_param, min), 24);
	ck_assert_uint_eq(offsetof(strata_param, max), 32);
	ck_assert_uint_eq(offsetof(strata_param, choices), 40);
	ck_assert_uint_eq(offsetof(strata_param, count), 48);
	ck_assert_uint_eq(offsetof(strata_param, doc), 56);
	ck_assert_uint_eq(sizeof(strata_param), 64);
}
END_TEST

/* ---- The loader: params.c ----------------------------------------------------------------------- */

static const strata_param bounded[] = {
	{.name = "rate", .type = STRATA_PARAM_FLOAT, .default_value = "0.5", .min = 0, .max = 1, .choices = "(]"},
	{.name = "keep", .type = STRATA_PARAM_FLOAT, .default_value = "0", .min = 0, .max = 1, .choices = "[)"},
	{.name = "open", .type = STRATA_PARAM_FLOAT, .default_value = "0.5", .min = 0, .max = 1, .choices = "()"},
	{.name = "closed", .type = STRATA_PARAM_FLOAT, .default_value = "1", .min = 0, .max = 1, .choices = "[]"},
	{.name = "old", .type = STRATA_PARAM_FLOAT, .default_value = "1", .min = 0, .max = 1},
	{.name = "empty", .type = STRATA_PARAM_FLOAT, .default_value = "0", .min = 0, .max = 1, .choices = ""},
	{.name = "units", .type = STRATA_PARAM_INT, .default_value = "10", .min = 0, .max = 10, .choices = "(]"},
	{.name = "below", .type = STRATA_PARAM_INT, .default_value = "0", .min = 0, .max = 10, .choices = "[)"},
	{.name = "sizes", .type = STRATA_PARAM_INTS, .default_value = "[1, 2]", .min = 0, .max = 100, .count = 2,
	 .choices = "()"},
	{.name = "positive", .type = STRATA_PARAM_FLOAT, .default_value = "1", .min = 0, .max = DBL_MAX,
	 .choices = "(]"},
	{.name = "negative", .type = STRATA_PARAM_FLOAT, .default_value = "-1", .min = -DBL_MAX, .max = 0,
	 .choices = "()"},
	{.name = "big", .type = STRATA_PARAM_INT, .default_value = "1", .min = 0, .max = 9223372036854775807.0,
	 .choices = "(]"},
};
#define N_BOUNDED (sizeof(bounded) / sizeof(bounded[0]))
enum { P_RATE, P_KEEP, P_OPEN, P_CLOSED, P_OLD, P_EMPTY, P_UNITS, P_BELOW, P_SIZES, P_POSITIVE, P_NEGATIVE,
       P_BIG };

static strata_status read_bounded(const strata_param *decl, uint32_t n, const char *text, st_param_value *v,
                                  strata_error *err)
{
	st_ydoc *doc = NULL;
	memset(err, 0, sizeof(*err));
	ck_assert_int_eq(st_ydoc_parse(text, strlen(text), "b.yaml", &doc, err), STRATA_OK);
	st_param_group g = {decl, n, v};
	strata_status st = st_params_read("b.yaml", doc->root, (st_pos){1, 1}, "bounded layer", &g, 1, NULL, err);
	st_ydoc_free(doc);
	return st;
}

START_TEST(test_defaults_and_values_inside)
{
	st_param_value v[N_BOUNDED];
	strata_error err;
	ck_assert_msg(read_bounded(bounded, N_BOUNDED, "{}", v, &err) == STRATA_OK, "%s", err.message);
	ck_assert_double_eq(v[P_RATE].f, 0.5);
	ck_assert_int_eq(v[P_UNITS].i, 10);
	st_params_release(v, N_BOUNDED);

	/* Each bound that is inclusive accepts the bound itself; an exclusive one the values next to it. */
	ck_assert_msg(read_bounded(bounded, N_BOUNDED,
	                           "{rate: 1, keep: 0, open: 1.0e-300, closed: 0, old: 0, empty: 1, units: 1, "
	                           "below: 9, sizes: [1, 99], positive: 4.9e-324, negative: -1.0e-300, "
	                           "big: 9223372036854775807}",
	                           v, &err) == STRATA_OK,
	              "%s", err.message);
	ck_assert_double_eq(v[P_RATE].f, 1.0);
	ck_assert_double_eq(v[P_KEEP].f, 0.0);
	ck_assert_int_eq(v[P_UNITS].i, 1);
	ck_assert_int_eq(v[P_BELOW].i, 9);
	ck_assert_int_eq(v[P_SIZES].ints[1], 99);
	st_params_release(v, N_BOUNDED);
}
END_TEST

START_TEST(test_values_outside)
{
	struct {
		const char *text;
		const char *message;
	} cases[] = {
		{"{rate: 0}", "b.yaml:1:8: 'rate' must be in (0, 1], got 0"},
		{"{rate: -0.0}", "b.yaml:1:8: 'rate' must be in (0, 1], got -0.0"},
		{"{rate: 1.5}", "b.yaml:1:8: 'rate' must be in (0, 1], got 1.5"},
		{"{keep: 1}", "b.yaml:1:8: 'keep' must be in [0, 1), got 1"},
		{"{open: 0}", "b.yaml:1:8: 'open' must be in (0, 1), got 0"},
		{"{open: 1.0}", "b.yaml:1:8: 'open' must be in (0, 1), got 1.0"},
		{"{closed: 1.01}", "b.yaml:1:10: 'closed' must be in [0, 1], got 1.01"},
		{"{old: -1}", "b.yaml:1:7: 'old' must be in [0, 1], got -1"},
		{"{units: 0}", "b.yaml:1:9: 'units' must be in (0, 10], got 0"},
		{"{below: 10}", "b.yaml:1:9: 'below' must be in [0, 10), got 10"},
		{"{sizes: [1, 100]}", "b.yaml:1:13: 'sizes' must be in (0, 100), got 100"},
		{"{sizes: 0}", "b.yaml:1:9: 'sizes' must be in (0, 100), got 0"},
		{"{positive: 0}", "b.yaml:1:12: 'positive' must be > 0, got 0"},
		{"{negative: 0.0}", "b.yaml:1:12: 'negative' must be < 0, got 0.0"},
		{"{big: 0}", "b.yaml:1:7: 'big' must be > 0, got 0"},
		{"\nrate: 0.5\nunits:   0\n", "b.yaml:3:10: 'units' must be in (0, 10], got 0"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		st_param_value v[N_BOUNDED];
		strata_error err;
		strata_status st = read_bounded(bounded, N_BOUNDED, cases[i].text, v, &err);
		ck_assert_msg(st == STRATA_ERR_INVALID, "%s: status %d", cases[i].text, st);
		ck_assert_str_eq(err.message, cases[i].message);
		st_params_release(v, N_BOUNDED);
	}
}
END_TEST

/* A default outside its own exclusive bound, and a spec that is not one, are the plugin's bugs. */
START_TEST(test_plugin_mistakes)
{
	static const strata_param bad_default[] = {
		{.name = "rate", .type = STRATA_PARAM_FLOAT, .default_value = "0", .min = 0, .max = 1, .choices = "(]"},
	};
	static const strata_param bad_spec[] = {
		{.name = "rate", .type = STRATA_PARAM_FLOAT, .default_value = "0.5", .min = 0, .max = 1,
		 .choices = "(0, 1]"},
	};
	static const strata_param half_spec[] = {
		{.name = "n", .type = STRATA_PARAM_INT, .default_value = "1", .min = 0, .max = 1, .choices = "("},
	};
	st_param_value v[1];
	strata_error err;
	ck_assert_int_eq(read_bounded(bad_default, 1, "{}", v, &err), STRATA_ERR_PLUGIN);
	ck_assert_str_eq(err.message, "b.yaml:1:1: the default \"0\" of 'rate' in bounded layer is not valid: "
	                              "'rate' must be in (0, 1], got 0");
	st_params_release(v, 1);

	ck_assert_int_eq(read_bounded(bad_spec, 1, "{rate: 0.5}", v, &err), STRATA_ERR_PLUGIN);
	ck_assert_str_eq(err.message, "b.yaml:1:8: 'rate' is declared with the bounds \"(0, 1]\"; expected "
	                              "\"[]\", \"(]\", \"[)\" or \"()\"");
	st_params_release(v, 1);

	ck_assert_int_eq(read_bounded(half_spec, 1, "{n: 1}", v, &err), STRATA_ERR_PLUGIN);
	ck_assert_ptr_nonnull(strstr(err.message, "'n' is declared with the bounds \"(\""));
	st_params_release(v, 1);
}
END_TEST

/* ---- A layer type through the registry: `strata layers` and a model file ------------------------ */

static strata_status pass_build(strata_layer *layer, const strata_host *host, const strata_shape *in,
                                strata_shape *out)
{
	(void)layer;
	(void)host;
	*out = *in;
	return STRATA_OK;
}

static strata_status pass_forward(strata_layer *layer, const strata_host *host, const strata_forward_args *args)
{
	(void)layer;
	(void)host;
	(void)args;
	return STRATA_OK;
}

static const strata_param pass_params[] = {
	{.name = "rate", .type = STRATA_PARAM_FLOAT, .default_value = "0.5", .min = 0, .max = 1, .choices = "(]",
	 .doc = "fraction kept"},
	{.name = "units", .type = STRATA_PARAM_INT, .default_value = "1", .min = 0, .max = 65536, .choices = "()",
	 .doc = "outputs"},
	{.name = "window", .type = STRATA_PARAM_INTS, .default_value = "[1, 1]", .min = 1, .max = 9, .count = 2,
	 .choices = "[)", .doc = "window"},
	{.name = "scale", .type = STRATA_PARAM_FLOAT, .default_value = "1", .min = -2, .max = 2,
	 .doc = "inclusive, as before 0.3"},
	{.name = "mode", .type = STRATA_PARAM_ENUM, .default_value = "a", .choices = "a|b", .doc = "an enum"},
};

static const strata_layer_ops pass_ops = {
	.size = sizeof(strata_layer_ops),
	.type = "bounded_pass",
	.class_name = "BoundedPass",
	.name_prefix = "bounded_pass",
	.doc = "identity with bounded parameters",
	.params = pass_params,
	.n_params = sizeof(pass_params) / sizeof(pass_params[0]),
	.build = pass_build,
	.forward = pass_forward,
};

static strata_registry *pass_registry(void)
{
	strata_registry_options opts = {.size = sizeof(opts), .no_default_paths = true};
	strata_registry *reg = NULL;
	strata_error err = {0};
	ck_assert_msg(strata_registry_open(&opts, &reg, &err) == STRATA_OK, "%s", err.message);
	ck_assert_msg(st_registry_add_layer(reg, &pass_ops, &err) == STRATA_OK, "%s", err.message);
	return reg;
}

/* A bounds spec that is not one is refused when the layer type registers, naming the parameter,
 * before any model file could meet it. */
START_TEST(test_bad_spec_at_registration)
{
	static const strata_param bad[] = {
		{.name = "beta", .type = STRATA_PARAM_FLOAT, .default_value = "1", .min = 0, .max = 10, .choices = "(0, 10]"},
	};
	strata_layer_ops ops = pass_ops;
	ops.type = "bad_bounds";
	ops.params = bad;
	ops.n_params = 1;
	strata_registry_options opts = {.size = sizeof(opts), .no_default_paths = true};
	strata_registry *reg = NULL;
	strata_error err = {0};
	ck_assert_msg(strata_registry_open(&opts, &reg, &err) == STRATA_OK, "%s", err.message);
	ck_assert_int_eq(st_registry_add_layer(reg, &ops, &err), STRATA_ERR_PLUGIN);
	ck_assert_msg(strstr(err.message, "layer 'bad_bounds': parameter 'beta' has bounds \"(0, 10]\"") != NULL, "%s",
	              err.message);
	strata_registry_close(reg);
}
END_TEST

START_TEST(test_layers_listing)
{
	strata_registry *reg = pass_registry();
	char *text = NULL;
	size_t len = 0;
	FILE *out = open_memstream(&text, &len);
	ck_assert_ptr_nonnull(out);
	strata_registry_print_layers(reg, out);
	ck_assert_int_eq(fclose(out), 0);
	ck_assert_msg(strstr(text, "float in (0, 1]"), "%s", text);
	ck_assert_msg(strstr(text, "int in (0, 65536)"), "%s", text);
	ck_assert_msg(strstr(text, "2 ints in [1, 9)"), "%s", text);
	ck_assert_msg(strstr(text, "float in [-2, 2]"), "%s", text);
	ck_assert_msg(strstr(text, "a|b"), "%s", text);
	free(text);
	strata_registry_close(reg);
}
END_TEST

START_TEST(test_model_file)
{
	static const char good[] = "input: {shape: [4]}\nlayers:\n  - {type: bounded_pass, rate: 1, units: 65535}\n";
	static const char bad[] = "input: {shape: [4]}\nlayers:\n  - type: bounded_pass\n    rate: 0\n";
	static const char bad_ints[] = "input: {shape: [4]}\nlayers:\n  - {type: bounded_pass, window: [1, 9]}\n";
	strata_registry *reg = pass_registry();
	strata_model *m = NULL;
	strata_error err = {0};
	ck_assert_msg(strata_model_load_string(reg, good, strlen(good), "good.yaml", NULL, &m, &err) == STRATA_OK,
	              "%s", err.message);
	strata_model_free(m);
	m = NULL;
	ck_assert_int_eq(strata_model_load_string(reg, bad, strlen(bad), "bad.yaml", NULL, &m, &err),
	                 STRATA_ERR_INVALID);
	ck_assert_ptr_null(m);
	ck_assert_msg(strstr(err.message, "bad.yaml:4:11: 'rate' must be in (0, 1], got 0"), "%s", err.message);
	ck_assert_int_eq(strata_model_load_string(reg, bad_ints, strlen(bad_ints), "ints.yaml", NULL, &m, &err),
	                 STRATA_ERR_INVALID);
	ck_assert_msg(strstr(err.message, "ints.yaml:3:38: 'window' must be in [1, 9), got 9"), "%s", err.message);
	strata_registry_close(reg);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("param_bounds");
	TCase *tc = tcase_create("bounds");
	tcase_add_test(tc, test_layout_unchanged);
	tcase_add_test(tc, test_defaults_and_values_inside);
	tcase_add_test(tc, test_values_outside);
	tcase_add_test(tc, test_plugin_mistakes);
	tcase_add_test(tc, test_bad_spec_at_registration);
	tcase_add_test(tc, test_layers_listing);
	tcase_add_test(tc, test_model_file);
	suite_add_tcase(s, tc);
	return ts_run(s);
}
