/* The YAML model loader: the node tree (yaml_doc.c), parameter validation (params.c) against
 * tables of the test's own, and the corpus under tests/yaml: every file in good/ loads, every
 * file in bad/ fails with exactly the "LINE:COL: message" its first line expects. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/model.h"
#include "model/params.h"
#include "support.h"
#include "model/yaml_doc.h"

/* ---- Helpers ------------------------------------------------------------------------------ */

static st_ydoc *parse_ok(const char *text)
{
	st_ydoc *doc = NULL;
	strata_error err = {0};
	strata_status st = st_ydoc_parse(text, strlen(text), "t.yaml", &doc, &err);
	ck_assert_msg(st == STRATA_OK, "parse failed: %s", err.message);
	return doc;
}

/* Parses text that must fail; returns the status and leaves the message in err. */
static strata_status parse_fail(const char *text, size_t len, strata_error *err)
{
	st_ydoc *doc = NULL;
	memset(err, 0, sizeof(*err));
	strata_status st = st_ydoc_parse(text, len, "t.yaml", &doc, err);
	ck_assert_msg(st != STRATA_OK, "parsed, expected a failure: %.200s", text);
	ck_assert_ptr_null(doc);
	return st;
}

static void assert_pos(const st_ynode *n, uint32_t line, uint32_t col)
{
	ck_assert_ptr_nonnull(n);
	ck_assert_msg(n->pos.line == line && n->pos.col == col, "node at %u:%u, expected %u:%u", n->pos.line,
	              n->pos.col, line, col);
}

static char *repeat(const char *unit, size_t n, const char *prefix, const char *suffix)
{
	size_t ul = strlen(unit), len = strlen(prefix) + ul * n + strlen(suffix) + 1;
	char *s = malloc(len), *p = s;
	ck_assert_ptr_nonnull(s);
	p += sprintf(p, "%s", prefix);
	for (size_t i = 0; i < n; i++, p += ul)
		memcpy(p, unit, ul);
	strcpy(p, suffix);
	return s;
}

/* ---- yaml_doc ----------------------------------------------------------------------------- */

START_TEST(test_tree_positions_and_styles)
{
	st_ydoc *doc = parse_ok("a: 1\nb: [x, 'y', \"z\"]\nc:\n  d: ~\n  e: |\n    lit\n");
	const st_ynode *root = doc->root;
	ck_assert_int_eq(root->kind, ST_YNODE_MAPPING);
	ck_assert_uint_eq(root->u.map.n, 3);
	assert_pos(root, 1, 1);
	assert_pos(root->u.map.pairs[0].key, 1, 1);
	const st_ynode *a = st_ynode_get(root, "a");
	assert_pos(a, 1, 4);
	ck_assert_str_eq(a->u.scalar.text, "1");
	ck_assert_int_eq(a->u.scalar.style, ST_YSTYLE_PLAIN);
	const st_ynode *b = st_ynode_get(root, "b");
	ck_assert_int_eq(b->kind, ST_YNODE_SEQUENCE);
	ck_assert_uint_eq(b->u.seq.n, 3);
	assert_pos(b, 2, 4);
	assert_pos(b->u.seq.items[1], 2, 8);
	ck_assert_int_eq(b->u.seq.items[1]->u.scalar.style, ST_YSTYLE_SINGLE_QUOTED);
	assert_pos(b->u.seq.items[2], 2, 13);
	ck_assert_int_eq(b->u.seq.items[2]->u.scalar.style, ST_YSTYLE_DOUBLE_QUOTED);
	const st_ynode *c = st_ynode_get(root, "c");
	ck_assert_int_eq(c->kind, ST_YNODE_MAPPING);
	assert_pos(c, 4, 3);
	ck_assert(st_ynode_is_null(st_ynode_get(c, "d")));
	const st_ynode *e = st_ynode_get(c, "e");
	ck_assert_int_eq(e->u.scalar.style, ST_YSTYLE_LITERAL);
	ck_assert_str_eq(e->u.scalar.text, "lit\n");
	ck_assert_ptr_null(st_ynode_get(root, "missing"));
	st_ydoc_free(doc);
}
END_TEST

START_TEST(test_null_and_describe)
{
	st_ydoc *doc = parse_ok("[~, null, Null, NULL, '', 'null', x, \"q\", {}, []]");
	st_ynode **it = doc->root->u.seq.items;
	char buf[64];
	for (int i = 0; i < 4; i++)
		ck_assert_msg(st_ynode_is_null(it[i]), "item %d should be null", i);
	ck_assert(!st_ynode_is_null(it[4]));
	ck_assert(!st_ynode_is_null(it[5]));
	st_ynode_describe(it[1], buf, sizeof(buf));
	ck_assert_str_eq(buf, "null");
	st_ynode_describe(it[6], buf, sizeof(buf));
	ck_assert_str_eq(buf, "'x'");
	st_ynode_describe(it[7], buf, sizeof(buf));
	ck_assert_str_eq(buf, "the string \"q\"");
	st_ynode_describe(it[8], buf, sizeof(buf));
	ck_assert_str_eq(buf, "a mapping");
	st_ynode_describe(it[9], buf, sizeof(buf));
	ck_assert_str_eq(buf, "a sequence");
	st_ydoc_free(doc);
}
END_TEST

START_TEST(test_empty_streams)
{
	const char *texts[] = {"", "# only a comment\n", "\n\n   \n"};
	for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
		st_ydoc *doc = parse_ok(texts[i]);
		ck_assert_ptr_null(doc->root);
		st_ydoc_free(doc);
	}
}
END_TEST

START_TEST(test_refusals)
{
	struct {
		const char *text;
		strata_status status;
		const char *message;
	} cases[] = {
		{"a: &x 1\n", STRATA_ERR_INVALID,
		 "t.yaml:1:4: anchors are not supported (plain data only): &x"},
		{"a: *x\n", STRATA_ERR_INVALID,
		 "t.yaml:1:4: aliases are not supported (plain data only): *x"},
		{"a: !!str 1\n", STRATA_ERR_INVALID,
		 "t.yaml:1:4: tags are not supported (plain data only): tag:yaml.org,2002:str"},
		{"a: 1\n---\nb: 2\n", STRATA_ERR_INVALID,
		 "t.yaml:2:1: a second YAML document; a model file holds exactly one"},
		{"{a: 1, b: 2, a: 3}", STRATA_ERR_PARSE, "t.yaml:1:14: duplicate key 'a' (first at 1:2)"},
		{"? {a: 1}\n: 2\n", STRATA_ERR_INVALID,
		 "t.yaml:1:3: mapping keys must be scalars, not mappings"},
		{"a: [1, 2\n", STRATA_ERR_PARSE,
		 "t.yaml:2:1: did not find expected ',' or ']' (while parsing a flow sequence at 1:4)"},
		{"a: 'open\n", STRATA_ERR_PARSE,
		 "t.yaml:2:1: found unexpected end of stream (while scanning a quoted scalar at 1:4)"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		strata_error err;
		strata_status st = parse_fail(cases[i].text, strlen(cases[i].text), &err);
		ck_assert_str_eq(err.message, cases[i].message);
		ck_assert_int_eq(st, cases[i].status);
		ck_assert_int_eq(err.status, cases[i].status);
	}
}
END_TEST

START_TEST(test_same_key_in_other_mappings)
{
	st_ydoc *doc = parse_ok("a: {x: 1}\nb: {x: 2}\nc: [{x: 3}, {x: 4}]\n");
	ck_assert_uint_eq(doc->root->u.map.n, 3);
	st_ydoc_free(doc);
}
END_TEST

/* Thousands of keys, so the duplicate table grows several times before the clash. */
START_TEST(test_duplicate_after_many_keys)
{
	size_t n = 5000, cap = n * 16 + 64, o = 0;
	char *text = malloc(cap);
	ck_assert_ptr_nonnull(text);
	for (size_t i = 0; i < n; i++)
		o += (size_t)snprintf(text + o, cap - o, "k%zu: %zu\n", i, i);
	st_ydoc *doc = parse_ok(text);
	ck_assert_uint_eq(doc->root->u.map.n, n);
	st_ydoc_free(doc);
	snprintf(text + o, cap - o, "k17: again\n");
	strata_error err;
	ck_assert_int_eq(parse_fail(text, strlen(text), &err), STRATA_ERR_PARSE);
	char expect[128];
	snprintf(expect, sizeof(expect), "t.yaml:%zu:1: duplicate key 'k17' (first at 18:1)", n + 1);
	ck_assert_str_eq(err.message, expect);
	free(text);
}
END_TEST

START_TEST(test_depth_limit)
{
	/* The root sequence is level 1. */
	char *ok = repeat("[", ST_YAML_MAX_DEPTH, "", "");
	char *ok_full = repeat("]", ST_YAML_MAX_DEPTH, ok, "");
	st_ydoc_free(parse_ok(ok_full));
	char *deep = repeat("[", ST_YAML_MAX_DEPTH + 1, "", "");
	char *deep_full = repeat("]", ST_YAML_MAX_DEPTH + 1, deep, "");
	strata_error err;
	ck_assert_int_eq(parse_fail(deep_full, strlen(deep_full), &err), STRATA_ERR_INVALID);
	char expect[96];
	snprintf(expect, sizeof(expect), "t.yaml:1:%d: nesting deeper than %d levels", ST_YAML_MAX_DEPTH + 1,
	         ST_YAML_MAX_DEPTH);
	ck_assert_str_eq(err.message, expect);
	free(ok);
	free(ok_full);
	free(deep);
	free(deep_full);
}
END_TEST

START_TEST(test_node_limit)
{
	/* The sequence itself is one node: n - 1 items reach the limit exactly. */
	char *at_limit = repeat("0,", ST_YAML_MAX_NODES - 1, "[", "]");
	st_ydoc *doc = parse_ok(at_limit);
	ck_assert_uint_eq(doc->n_nodes, ST_YAML_MAX_NODES);
	st_ydoc_free(doc);
	char *over = repeat("0,", ST_YAML_MAX_NODES, "[", "]");
	strata_error err;
	ck_assert_int_eq(parse_fail(over, strlen(over), &err), STRATA_ERR_INVALID);
	char expect[96];
	/* item k (from 0) starts at column 2 + 2k; the refused one is k = ST_YAML_MAX_NODES - 1 */
	snprintf(expect, sizeof(expect), "t.yaml:1:%d: more than %d YAML nodes",
	         2 + 2 * (ST_YAML_MAX_NODES - 1), ST_YAML_MAX_NODES);
	ck_assert_str_eq(err.message, expect);
	free(at_limit);
	free(over);
}
END_TEST

START_TEST(test_reader_error_position)
{
	/* Columns count characters, as libyaml does: the two-byte 'é' is one column. */
	const char text[] = "a: 1\nb: \xc3\xa9\x01\n";
	strata_error err;
	ck_assert_int_eq(parse_fail(text, sizeof(text) - 1, &err), STRATA_ERR_PARSE);
	ck_assert_str_eq(err.message, "t.yaml:2:5: control characters are not allowed (0x1)");
}
END_TEST

/* ---- params ------------------------------------------------------------------------------- */

static const strata_param test_params[] = {
	{.name = "count", .type = STRATA_PARAM_INT, .default_value = "3", .min = 1, .max = 10},
	{.name = "ratio", .type = STRATA_PARAM_FLOAT, .default_value = "0.5", .min = 0, .max = 1},
	{.name = "flag", .type = STRATA_PARAM_BOOL, .default_value = "false"},
	{.name = "mode", .type = STRATA_PARAM_ENUM, .default_value = "a", .choices = "a|bb|c"},
	{.name = "size", .type = STRATA_PARAM_INTS, .default_value = "[1, 2]", .min = 1, .max = 100,
	 .count = 2},
	{.name = "label", .type = STRATA_PARAM_STRING, .default_value = "null"},
	{.name = "reg", .type = STRATA_PARAM_REGULARIZER, .default_value = "null"},
	{.name = "need", .type = STRATA_PARAM_INT, .min = -5, .max = 5},
	{.name = "steps", .type = STRATA_PARAM_INT, .default_value = "null", .min = 0, .max = 9},
};
#define N_TEST_PARAMS (sizeof(test_params) / sizeof(test_params[0]))
enum { P_COUNT, P_RATIO, P_FLAG, P_MODE, P_SIZE, P_LABEL, P_REG, P_NEED, P_STEPS };

/* Reads `text` (a mapping) against test_params; returns the status, message in err. */
static strata_status read_params(const char *text, st_param_value *v, strata_error *err)
{
	static const char *const handled[] = {"type", NULL};
	st_ydoc *doc = parse_ok(text);
	st_param_group g = {test_params, N_TEST_PARAMS, v};
	memset(err, 0, sizeof(*err));
	strata_status st = st_params_read("p.yaml", doc->root, (st_pos){9, 9}, "test", &g, 1, handled, err);
	st_ydoc_free(doc);
	return st;
}

START_TEST(test_params_defaults)
{
	st_param_value v[N_TEST_PARAMS];
	strata_error err;
	ck_assert_int_eq(read_params("\n  {need: -5, type: ignored}", v, &err), STRATA_OK);
	ck_assert_int_eq(v[P_COUNT].i, 3);
	ck_assert(!v[P_COUNT].from_file);
	ck_assert_uint_eq(v[P_COUNT].pos.line, 2); /* defaults point at the mapping */
	ck_assert_uint_eq(v[P_COUNT].pos.col, 3);
	ck_assert_double_eq(v[P_RATIO].f, 0.5);
	ck_assert_int_eq(v[P_FLAG].i, 0);
	ck_assert_str_eq(v[P_MODE].s, "a");
	ck_assert_uint_eq(v[P_SIZE].n_ints, 2);
	ck_assert_int_eq(v[P_SIZE].ints[0], 1);
	ck_assert_int_eq(v[P_SIZE].ints[1], 2);
	ck_assert_ptr_null(v[P_LABEL].s);
	ck_assert_double_eq(v[P_REG].l1, 0.0);
	ck_assert_double_eq(v[P_REG].l2, 0.0);
	ck_assert_int_eq(v[P_NEED].i, -5);
	ck_assert(v[P_NEED].from_file);
	ck_assert_uint_eq(v[P_NEED].pos.col, 10);
	ck_assert_int_eq(v[P_STEPS].i, 0);
	ck_assert_ptr_eq(st_param_find(v, N_TEST_PARAMS, "mode"), &v[P_MODE]);
	ck_assert_ptr_null(st_param_find(v, N_TEST_PARAMS, "nope"));
	st_params_release(v, N_TEST_PARAMS);
}
END_TEST

START_TEST(test_params_given)
{
	st_param_value v[N_TEST_PARAMS];
	strata_error err;
	ck_assert_int_eq(
	        read_params(
	                "{need: +4, count: 10, ratio: 1, flag: True, mode: 'bb', size: 7, label: \"x y\", "
	                "reg: {l1: 0.5}, steps: null}",
	                v, &err),
	        STRATA_OK);
	ck_assert_int_eq(v[P_NEED].i, 4);
	ck_assert_int_eq(v[P_COUNT].i, 10);
	ck_assert_double_eq(v[P_RATIO].f, 1.0);
	ck_assert_int_eq(v[P_FLAG].i, 1);
	ck_assert_str_eq(v[P_MODE].s, "bb");
	ck_assert_uint_eq(v[P_SIZE].n_ints, 2);
	ck_assert_int_eq(v[P_SIZE].ints[0], 7);
	ck_assert_int_eq(v[P_SIZE].ints[1], 7);
	ck_assert_str_eq(v[P_LABEL].s, "x y");
	ck_assert_double_eq(v[P_REG].l1, 0.5);
	ck_assert_double_eq(v[P_REG].l2, 0.0);
	ck_assert_int_eq(v[P_STEPS].i, 0);
	ck_assert(v[P_STEPS].from_file);
	st_params_release(v, N_TEST_PARAMS);
}
END_TEST

START_TEST(test_params_number_forms)
{
	static const char *const floats_ok[] = {"1.0e-7", "0.5", "1", ".5", "0.", "5E-1", "+0.25", "-0.0"};
	static const char *const floats_bad[] = {"1e", "0x1", ".inf", "nan", "1.5.1", "e5", "."};
	static const char *const ints_bad[] = {"0x5", "1_0", "5.0", "1e0", "1-", "0o7", "--1"};
	char text[64];
	st_param_value v[N_TEST_PARAMS];
	strata_error err;
	for (size_t i = 0; i < sizeof(floats_ok) / sizeof(floats_ok[0]); i++) {
		snprintf(text, sizeof(text), "{need: 0, ratio: %s}", floats_ok[i]);
		ck_assert_msg(read_params(text, v, &err) == STRATA_OK, "%s: %s", floats_ok[i], err.message);
		ck_assert_double_eq_tol(v[P_RATIO].f, strtod(floats_ok[i], NULL), 1e-15);
		st_params_release(v, N_TEST_PARAMS);
	}
	for (size_t i = 0; i < sizeof(floats_bad) / sizeof(floats_bad[0]); i++) {
		snprintf(text, sizeof(text), "{need: 0, ratio: %s}", floats_bad[i]);
		ck_assert_msg(read_params(text, v, &err) == STRATA_ERR_INVALID, "%s accepted", floats_bad[i]);
		ck_assert_msg(strstr(err.message, "'ratio' must be a number"), "%s", err.message);
		st_params_release(v, N_TEST_PARAMS);
	}
	for (size_t i = 0; i < sizeof(ints_bad) / sizeof(ints_bad[0]); i++) {
		snprintf(text, sizeof(text), "{need: %s}", ints_bad[i]);
		ck_assert_msg(read_params(text, v, &err) == STRATA_ERR_INVALID, "%s accepted", ints_bad[i]);
		ck_assert_msg(strstr(err.message, "'need' must be an integer"), "%s", err.message);
		st_params_release(v, N_TEST_PARAMS);
	}
}
END_TEST

START_TEST(test_params_errors)
{
	struct {
		const char *text;
		const char *message;
	} cases[] = {
		{"{need: '1'}", "p.yaml:1:8: 'need' must be an integer, got the string \"1\""},
		{"{need: 6}", "p.yaml:1:8: 'need' must be in [-5, 5], got 6"},
		{"{need: 1, count: 0}", "p.yaml:1:18: 'count' must be in [1, 10], got 0"},
		{"{need: 1, ratio: 1.5}", "p.yaml:1:18: 'ratio' must be in [0, 1], got 1.5"},
		{"{need: 1, ratio: '0.5'}", "p.yaml:1:18: 'ratio' must be a number, got the string \"0.5\""},
		{"{need: 1, flag: yes}", "p.yaml:1:17: 'flag' must be true or false, got 'yes'"},
		{"{need: 1, flag: 'true'}",
		 "p.yaml:1:17: 'flag' must be true or false, got the string \"true\""},
		{"{need: 1, mode: b}", "p.yaml:1:17: 'mode' must be one of a, bb, c; got 'b'"},
		{"{need: 1, mode: null}", "p.yaml:1:17: 'mode' must be one of a, bb, c; got null"},
		{"{need: 1, size: [1, 2, 3]}",
		 "p.yaml:1:17: 'size' must be 2 integers or one integer, got 3"},
		{"{need: 1, size: [1, 0]}", "p.yaml:1:21: 'size' must be in [1, 100], got 0"},
		{"{need: 1, size: {a: 1}}",
		 "p.yaml:1:17: 'size' must be 2 integers or one integer, got a mapping"},
		{"{need: 1, label: [a]}", "p.yaml:1:18: 'label' must be a string, got a sequence"},
		{"{need: 1, reg: 0.1}",
		 "p.yaml:1:16: 'reg' must be null or a mapping {l1: x, l2: y}, got '0.1'"},
		{"{need: 1, reg: {l2: x}}", "p.yaml:1:21: 'l2' must be a number, got 'x'"},
		{"{need: 1, reg: {l0: 1}}", "p.yaml:1:17: unknown key 'l0' in 'reg'; accepted: l1, l2"},
		{"{need: null}", "p.yaml:1:8: 'need' must be an integer, got null"},
		{"{count: 2}", "p.yaml:1:1: missing required parameter 'need' in test"},
		{"{need: 1, cuont: 2}",
		 "p.yaml:1:11: unknown key 'cuont' in test; accepted: type, count, ratio, flag, mode, size, "
		 "label, reg, need, steps"},
		{"[1]", "p.yaml:1:1: test must be a mapping, got a sequence"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		st_param_value v[N_TEST_PARAMS];
		strata_error err;
		strata_status st = read_params(cases[i].text, v, &err);
		ck_assert_msg(st == STRATA_ERR_INVALID, "%s: status %d", cases[i].text, st);
		ck_assert_str_eq(err.message, cases[i].message);
		st_params_release(v, N_TEST_PARAMS);
	}
}
END_TEST

START_TEST(test_params_absent_mapping)
{
	st_param_value v[N_TEST_PARAMS];
	st_param_group g = {test_params, N_TEST_PARAMS, v};
	strata_error err = {0};
	strata_status st = st_params_read("p.yaml", NULL, (st_pos){7, 3}, "test", &g, 1, NULL, &err);
	ck_assert_int_eq(st, STRATA_ERR_INVALID);
	ck_assert_str_eq(err.message, "p.yaml:7:3: missing required parameter 'need' in test");
	st_params_release(v, N_TEST_PARAMS);
}
END_TEST

/* A plugin's bad default is the plugin's bug, named as such. */
START_TEST(test_params_bad_default)
{
	static const strata_param bad[] = {
		{.name = "k", .type = STRATA_PARAM_INTS, .default_value = "[1, 2, 3]", .min = 1, .max = 9,
		 .count = 2},
	};
	st_param_value v[1];
	st_param_group g = {bad, 1, v};
	strata_error err = {0};
	strata_status st = st_params_read("p.yaml", NULL, (st_pos){2, 5}, "odd layer", &g, 1, NULL, &err);
	ck_assert_int_eq(st, STRATA_ERR_PLUGIN);
	ck_assert_str_eq(err.message,
	                 "p.yaml:2:5: the default \"[1, 2, 3]\" of 'k' in odd layer is not valid: "
	                 "'k' must be 2 integers or one integer, got 3");
	st_params_release(v, 1);
}
END_TEST

/* Groups share a mapping; a key belongs to the first group that declares it. */
START_TEST(test_params_groups)
{
	static const strata_param common[] = {
		{.name = "name", .type = STRATA_PARAM_STRING, .default_value = "null"},
	};
	st_param_value cv[1], v[N_TEST_PARAMS];
	st_param_group g[2] = {{common, 1, cv}, {test_params, N_TEST_PARAMS, v}};
	st_ydoc *doc = parse_ok("{name: n1, need: 2}");
	strata_error err = {0};
	ck_assert_int_eq(st_params_read("p.yaml", doc->root, (st_pos){1, 1}, "x", g, 2, NULL, &err),
	                 STRATA_OK);
	ck_assert_str_eq(cv[0].s, "n1");
	ck_assert_int_eq(v[P_NEED].i, 2);
	st_params_release(cv, 1);
	st_params_release(v, N_TEST_PARAMS);
	st_ydoc_free(doc);
}
END_TEST

static const st_param_value *section_value(const st_schema *s, st_param_value *v, const char *name)
{
	const st_param_value *p = st_param_find(v, s->n_params, name);
	ck_assert_msg(p != NULL, "%s has no %s", s->name, name);
	return p;
}

/* The defaults Keras documents for each optimizer and for fit(). */
START_TEST(test_section_defaults)
{
	struct {
		const char *schema, *param;
		double value;
	} expect[] = {
		{"sgd", "learning_rate", 0.01},
		{"sgd", "momentum", 0.0},
		{"sgd", "nesterov", 0},
		{"adadelta", "learning_rate", 1.0},
		{"adadelta", "rho", 0.95},
		{"adadelta", "epsilon", 1e-7},
		{"adam", "learning_rate", 0.001},
		{"adam", "beta_1", 0.9},
		{"adam", "beta_2", 0.999},
		{"adam", "epsilon", 1e-7},
		{"adam", "amsgrad", 0},
		{"rmsprop", "learning_rate", 0.001},
		{"rmsprop", "rho", 0.9},
		{"rmsprop", "momentum", 0.0},
		{"rmsprop", "epsilon", 1e-7},
		{"rmsprop", "centered", 0},
		{"training", "batch_size", 32},
		{"training", "epochs", 1},
		{"training", "seed", 0},
		{"training", "validation_split", 0},
		{"training", "shuffle", 1},
		{"data", "scale", 1.0},
		{"serving", "max_batch_size", 64},
		{"serving", "max_queue_delay_us", 0},
		{"serving", "max_queue_size", 1024},
		{"serving", "timeout_us", 0},
		{"serving", "warmup", 1},
	};
	for (size_t i = 0; i < sizeof(expect) / sizeof(expect[0]); i++) {
		const st_schema *s = st_optimizer_schema(expect[i].schema);
		if (!strcmp(expect[i].schema, "training"))
			s = &st_schema_training;
		else if (!strcmp(expect[i].schema, "data"))
			s = &st_schema_data;
		else if (!strcmp(expect[i].schema, "serving"))
			s = &st_schema_serving;
		ck_assert_ptr_nonnull(s);
		st_param_value *v = calloc(s->n_params, sizeof(*v));
		st_param_group g = {s->params, s->n_params, v};
		strata_error err = {0};
		ck_assert_int_eq(st_params_read("d.yaml", NULL, (st_pos){1, 1}, s->name, &g, 1, NULL, &err),
		                 STRATA_OK);
		const st_param_value *p = section_value(s, v, expect[i].param);
		double got = p->decl->type == STRATA_PARAM_FLOAT ? p->f : (double)p->i;
		ck_assert_msg(got == expect[i].value, "%s.%s = %g, expected %g", expect[i].schema,
		              expect[i].param, got, expect[i].value);
		st_params_release(v, s->n_params);
		free(v);
	}
	ck_assert_ptr_null(st_optimizer_schema("adamw"));
}
END_TEST

/* ---- The loader --------------------------------------------------------------------------- */

static char **good_files, **bad_files;
static size_t n_good, n_bad;

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Runs before the suite, where Check's assertions cannot report: failures show as an empty
 * corpus, which test_corpus_present refuses. */
static char **list_yaml(const char *sub, size_t *n)
{
	const char *src = getenv("STRATA_TEST_SRCDIR") ? getenv("STRATA_TEST_SRCDIR") : STRATA_TEST_SRCDIR;
	size_t dlen = strlen(src) + strlen(sub) + 2;
	char *dir = malloc(dlen);
	if (!dir)
		return NULL;
	snprintf(dir, dlen, "%s/%s", src, sub);
	DIR *d = opendir(dir);
	char **files = NULL;
	*n = 0;
	if (!d) {
		free(dir);
		return NULL;
	}
	struct dirent *e;
	while ((e = readdir(d))) {
		size_t len = strlen(e->d_name);
		if (len < 6 || strcmp(e->d_name + len - 5, ".yaml"))
			continue;
		char **grown = realloc(files, (*n + 1) * sizeof(*files));
		size_t plen = strlen(dir) + len + 2;
		char *path = malloc(plen);
		if (!grown || !path) {
			free(path);
			files = grown ? grown : files;
			break;
		}
		files = grown;
		snprintf(path, plen, "%s/%s", dir, e->d_name);
		files[(*n)++] = path;
	}
	closedir(d);
	free(dir);
	if (*n)
		qsort(files, *n, sizeof(*files), cmp_str);
	return files;
}

START_TEST(test_corpus_present)
{
	ck_assert_msg(n_good >= 8, "only %zu files in tests/yaml/good", n_good);
	ck_assert_msg(n_bad >= 40, "only %zu files in tests/yaml/bad", n_bad);
}
END_TEST

START_TEST(test_corpus_good)
{
	strata_registry *reg = ts_registry();
	const char *path = good_files[_i];
	strata_model *m = NULL;
	strata_error err = {0};
	strata_status st = strata_model_load(reg, path, &m, &err);
	ck_assert_msg(st == STRATA_OK, "%s: %s", path, err.message);
	ck_assert_uint_gt(strata_model_layer_count(m), 0);
	strata_model_free(m);
	strata_registry_close(reg);
}
END_TEST

/* The first line of a bad file reads "# expect: LINE:COL: message". */
static char *expected_message(const char *path)
{
	static const char tag[] = "# expect: ";
	FILE *f = fopen(path, "rb");
	ck_assert_msg(f != NULL, "cannot open %s", path);
	char line[2048];
	ck_assert_msg(fgets(line, sizeof(line), f) != NULL, "%s is empty", path);
	fclose(f);
	line[strcspn(line, "\r\n")] = '\0';
	ck_assert_msg(!strncmp(line, tag, sizeof(tag) - 1), "%s: first line is not \"%s...\"", path, tag);
	return strdup(line + sizeof(tag) - 1);
}

START_TEST(test_corpus_bad)
{
	strata_registry *reg = ts_registry();
	const char *path = bad_files[_i];
	char *expect = expected_message(path);
	strata_model *m = NULL;
	strata_error err = {0};
	strata_status st = strata_model_load(reg, path, &m, &err);
	ck_assert_msg(st != STRATA_OK, "%s loaded, expected: %s", path, expect);
	ck_assert_ptr_null(m);
	ck_assert_msg(st == STRATA_ERR_PARSE || st == STRATA_ERR_INVALID, "%s: status %s", path,
	              strata_status_name(st));
	ck_assert_int_eq(err.status, st);
	size_t plen = strlen(path);
	ck_assert_msg(!strncmp(err.message, path, plen) && err.message[plen] == ':',
	              "%s: message does not start with the path: %s", path, err.message);
	/* An expectation ending in "..." is a prefix: lists of layer types or of a type's parameters
	 * grow as plugins are added. */
	size_t elen = strlen(expect);
	bool prefix = elen >= 3 && !strcmp(expect + elen - 3, "...");
	ck_assert_msg(prefix ? !strncmp(err.message + plen + 1, expect, elen - 3) : !strcmp(err.message + plen + 1, expect),
	              "%s:\n  expected: %s\n  got:      %s", path,
	              expect, err.message + plen + 1);
	free(expect);
	strata_registry_close(reg);
}
END_TEST

START_TEST(test_sections_read)
{
	strata_registry *reg = ts_registry();
	strata_model *m = ts_model_file(reg, "yaml/good/full_sections.yaml");
	ck_assert_str_eq(strata_model_name(m), "everything");
	ck_assert_str_eq(strata_model_device(m), "cpu");
	ck_assert_str_eq(m->recipe.outputs[0].loss, "sparse_categorical_crossentropy");
	ck_assert_uint_eq(m->recipe.outputs[0].n_metrics, 1);
	ck_assert_str_eq(m->recipe.outputs[0].metrics[0], "accuracy");

	ck_assert_str_eq(m->recipe.optimizer.type, "rmsprop");
	ck_assert_double_eq(st_section_param(&m->recipe.optimizer, "learning_rate")->f, 0.01);
	ck_assert_double_eq(st_section_param(&m->recipe.optimizer, "rho")->f, 0.8);
	ck_assert_double_eq(st_section_param(&m->recipe.optimizer, "epsilon")->f, 1.0e-6);
	ck_assert_int_eq(st_section_param(&m->recipe.optimizer, "centered")->i, 1);
	ck_assert_ptr_null(st_section_param(&m->recipe.optimizer, "nesterov"));

	strata_training_config t = strata_model_training(m);
	ck_assert_uint_eq(t.batch_size, 16);
	ck_assert_uint_eq(t.epochs, 3);
	ck_assert_uint_eq(t.seed, 42);
	ck_assert_double_eq(t.validation_split, 0.25);
	ck_assert(!t.shuffle);

	strata_serving_config sv = strata_model_serving(m);
	ck_assert_uint_eq(sv.max_batch_size, 32);
	ck_assert_uint_eq(sv.max_queue_delay_us, 250);
	ck_assert_uint_eq(sv.max_queue_size, 7);
	ck_assert_uint_eq(sv.timeout_us, 900000);
	ck_assert(!sv.warmup);
	static const uint32_t preferred[] = {4, 8, 16, 24, 28, 30, 31, 32};
	ck_assert_uint_eq(sv.n_preferred_batch_sizes, 8);
	for (int i = 0; i < 8; i++)
		ck_assert_uint_eq(sv.preferred_batch_sizes[i], preferred[i]);

	/* Relative data paths resolve from the model file's folder, absolute ones stay. */
	char *expect = ts_src_path("yaml/good/a.idx");
	strata_data_config d = strata_model_data(m);
	ck_assert_str_eq(d.train_images, expect);
	ck_assert_str_eq(d.train_labels, "/abs/b.idx");
	ck_assert_ptr_null(d.test_images);
	ck_assert_ptr_null(d.test_labels);
	ck_assert_double_eq(d.scale, 0.5);
	ck_assert_uint_eq(d.num_classes, 3);
	free(expect);
	strata_model_free(m);
	strata_registry_close(reg);
}
END_TEST

START_TEST(test_defaults_and_file_name)
{
	strata_registry *reg = ts_registry();
	strata_model *m = ts_model_file(reg, "yaml/good/minimal_defaults.yaml");
	ck_assert_str_eq(strata_model_name(m), "minimal_defaults");
	ck_assert_ptr_null(strata_model_device(m));
	ck_assert_ptr_null(m->recipe.outputs[0].loss);
	ck_assert_uint_eq(m->recipe.outputs[0].n_metrics, 0);
	ck_assert_str_eq(m->recipe.optimizer.type, "rmsprop"); /* Keras compile()'s default */
	ck_assert_double_eq(st_section_param(&m->recipe.optimizer, "learning_rate")->f, 0.001);
	strata_training_config t = strata_model_training(m);
	ck_assert_uint_eq(t.batch_size, 32);
	ck_assert_uint_eq(t.epochs, 1);
	ck_assert(t.shuffle);
	strata_serving_config sv = strata_model_serving(m); /* Triton's defaults without a serving: section */
	ck_assert_uint_eq(sv.max_batch_size, 64);
	ck_assert_uint_eq(sv.max_queue_delay_us, 0);
	ck_assert_uint_eq(sv.n_preferred_batch_sizes, 0);
	ck_assert_uint_eq(sv.max_queue_size, 1024);
	ck_assert_uint_eq(sv.timeout_us, 0);
	ck_assert(sv.warmup);
	strata_data_config d = strata_model_data(m);
	ck_assert_ptr_null(d.train_images);
	ck_assert_double_eq(d.scale, 1.0);
	ck_assert_uint_eq(d.num_classes, 0);
	/* A layer's default parameters, as the plugin declares them. */
	const st_param_value *act = st_layer_param(&m->layers[0], "activation");
	ck_assert_ptr_nonnull(act);
	ck_assert_str_eq(act->s, "linear");
	ck_assert(!act->from_file);
	ck_assert_ptr_null(st_layer_param(&m->layers[0], "no_such"));
	strata_model_free(m);
	strata_registry_close(reg);
}
END_TEST

START_TEST(test_names)
{
	strata_registry *reg = ts_registry();
	strata_model *m = ts_model_file(reg, "yaml/good/explicit_names.yaml");
	ck_assert_uint_eq(strata_model_layer_count(m), 3);
	ck_assert_str_eq(strata_model_layer_name(m, 0), "encoder");
	ck_assert_str_eq(strata_model_layer_name(m, 1), "dense_1");
	ck_assert_str_eq(strata_model_layer_name(m, 2), "decoder");
	ck_assert(m->layers[0].trainable);
	ck_assert(!m->layers[2].trainable);
	ck_assert_str_eq(strata_model_layer_type(m, 2), "dense");
	ck_assert_ptr_null(strata_model_layer_name(m, 3));
	strata_model_free(m);

	m = ts_model_file(reg, "yaml/good/keras_class_names.yaml");
	const char *names[] = {"conv2d_1", "max_pooling2d_1", "flatten_1", "dense_1"};
	const char *types[] = {"conv2d", "maxpool2d", "flatten", "dense"};
	for (size_t i = 0; i < 4; i++) {
		ck_assert_str_eq(strata_model_layer_name(m, i), names[i]);
		ck_assert_str_eq(strata_model_layer_type(m, i), types[i]);
	}
	strata_model_free(m);
	strata_registry_close(reg);
}
END_TEST

START_TEST(test_load_string)
{
	strata_registry *reg = ts_registry();
	const char *yaml =
	        "input: {shape: 784}\nlayers: [{type: dense, units: 10}]\ndata: {test_images: t.idx}\n";
	strata_model *m = NULL;
	strata_error err = {0};
	ck_assert_int_eq(strata_model_load_string(reg, yaml, strlen(yaml), NULL, NULL, &m, &err), STRATA_OK);
	ck_assert_str_eq(strata_model_name(m), "model");
	strata_shape in = strata_model_input_shape(m);
	ck_assert_uint_eq(in.rank, 1);
	ck_assert_int_eq(in.dims[0], 784);
	ck_assert_str_eq(strata_model_data(m).test_images, "t.idx");
	strata_model_free(m);

	ck_assert_int_eq(strata_model_load_string(reg, yaml, strlen(yaml), "x/y.yaml", "/base/", &m, &err),
	                 STRATA_OK);
	ck_assert_str_eq(strata_model_name(m), "y");
	ck_assert_str_eq(strata_model_data(m).test_images, "/base/t.idx");
	strata_model_free(m);

	/* A zero-byte file is an empty model, not a crash. */
	m = (strata_model *)&err;
	ck_assert_int_eq(strata_model_load_string(reg, "", 0, "e.yaml", NULL, &m, &err), STRATA_ERR_INVALID);
	ck_assert_ptr_null(m);
	ck_assert_str_eq(err.message,
	                 "e.yaml:1:1: the model file is empty: expected a mapping with 'input' and 'layers'");
	strata_registry_close(reg);
}
END_TEST

START_TEST(test_missing_file)
{
	strata_registry *reg = ts_registry();
	strata_model *m = NULL;
	strata_error err = {0};
	strata_status st = strata_model_load(reg, "/nonexistent/strata/model.yaml", &m, &err);
	ck_assert_int_eq(st, STRATA_ERR_NOT_FOUND);
	ck_assert_ptr_nonnull(strstr(err.message, "/nonexistent/strata/model.yaml"));
	ck_assert_ptr_null(m);
	strata_registry_close(reg);
}
END_TEST

int main(void)
{
	good_files = list_yaml("yaml/good", &n_good);
	bad_files = list_yaml("yaml/bad", &n_bad);

	Suite *s = suite_create("yaml");
	TCase *doc = tcase_create("yaml_doc");
	tcase_add_test(doc, test_tree_positions_and_styles);
	tcase_add_test(doc, test_null_and_describe);
	tcase_add_test(doc, test_empty_streams);
	tcase_add_test(doc, test_refusals);
	tcase_add_test(doc, test_same_key_in_other_mappings);
	tcase_add_test(doc, test_duplicate_after_many_keys);
	tcase_add_test(doc, test_depth_limit);
	tcase_add_test(doc, test_node_limit);
	tcase_add_test(doc, test_reader_error_position);
	suite_add_tcase(s, doc);

	TCase *params = tcase_create("params");
	tcase_add_test(params, test_params_defaults);
	tcase_add_test(params, test_params_given);
	tcase_add_test(params, test_params_number_forms);
	tcase_add_test(params, test_params_errors);
	tcase_add_test(params, test_params_absent_mapping);
	tcase_add_test(params, test_params_bad_default);
	tcase_add_test(params, test_params_groups);
	tcase_add_test(params, test_section_defaults);
	suite_add_tcase(s, params);

	TCase *loader = tcase_create("loader");
	tcase_add_test(loader, test_corpus_present);
	tcase_add_loop_test(loader, test_corpus_good, 0, (int)n_good);
	tcase_add_loop_test(loader, test_corpus_bad, 0, (int)n_bad);
	tcase_add_test(loader, test_sections_read);
	tcase_add_test(loader, test_defaults_and_file_name);
	tcase_add_test(loader, test_names);
	tcase_add_test(loader, test_load_string);
	tcase_add_test(loader, test_missing_file);
	suite_add_tcase(s, loader);

	int rc = ts_run(s);
	for (size_t i = 0; i < n_good; i++)
		free(good_files[i]);
	for (size_t i = 0; i < n_bad; i++)
		free(bad_files[i]);
	free(good_files);
	free(bad_files);
	return rc;
}
