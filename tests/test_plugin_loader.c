/* Plugin loader: the build tree's plugins, the search path, and each way a plugin can be refused. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "plugin/registry.h"
#include "support.h"

static const char *plugin_file(const char *name)
{
	char var[64];
	snprintf(var, sizeof(var), "STRATA_TEST_PLUGIN_%s", name);
	const char *p = getenv(var);
	ck_assert_msg(p != NULL, "%s is not set: run through meson test", var);
	return p;
}

/* A fresh folder holding a link to each named test plugin (or an arbitrary file). */
static char *folder_with(const char *file, const char *link_name)
{
	char *dir = strdup("/tmp/strata-test-plugins-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(dir));
	char path[4096];
	snprintf(path, sizeof(path), "%s/%s", dir, link_name);
	ck_assert_int_eq(symlink(file, path), 0);
	return dir;
}

static void remove_folder(char *dir, const char *link_name)
{
	char path[4096];
	snprintf(path, sizeof(path), "%s/%s", dir, link_name);
	unlink(path);
	rmdir(dir);
	free(dir);
}

static strata_status open_with(const char *path, bool defaults, strata_registry **reg, strata_error *err)
{
	strata_registry_options o = {.size = sizeof(o), .plugin_path = path, .no_default_paths = !defaults};
	return strata_registry_open(&o, reg, err);
}

START_TEST(test_build_tree_plugins_found)
{
	strata_registry *reg = ts_registry();
	const char *expected[] = {"conv2d", "dense", "dropout", "flatten", "maxpool2d"};
	for (size_t i = 0; i < 5; i++) {
		const st_layer_type *t = st_registry_find_layer(reg, expected[i]);
		ck_assert_msg(t != NULL, "layer type %s missing", expected[i]);
		ck_assert_msg(strstr(t->plugin_file, STRATA_BUILD_PLUGIN_DIR) == t->plugin_file, "%s from %s",
		              expected[i], t->plugin_file);
	}
	/* Keras class names find the same types. */
	ck_assert_ptr_eq(st_registry_find_layer(reg, "Conv2D"), st_registry_find_layer(reg, "conv2d"));
	ck_assert_ptr_eq(st_registry_find_layer(reg, "maxpooling2d"), st_registry_find_layer(reg, "maxpool2d"));
	ck_assert_ptr_null(st_registry_find_layer(reg, "conv3d"));
	strata_registry_close(reg);
}
END_TEST

START_TEST(test_search_path_order)
{
	char *dir = folder_with(plugin_file("GOOD"), "good.so");
	setenv("STRATA_PLUGIN_PATH", dir, 1);
	strata_registry *reg = NULL;
	strata_error err = {0};
	ck_assert_msg(open_with(NULL, true, &reg, &err) == STRATA_OK, "%s", err.message);
	unsetenv("STRATA_PLUGIN_PATH");
	/* build tree first, then STRATA_PLUGIN_PATH */
	ck_assert_uint_eq(reg->n_search_path, 2);
	ck_assert_str_eq(reg->search_path[0], STRATA_BUILD_PLUGIN_DIR);
	ck_assert_str_eq(reg->search_path[1], dir);
	ck_assert_ptr_nonnull(st_registry_find_layer(reg, "test_identity"));
	ck_assert_ptr_nonnull(st_registry_find_layer(reg, "conv2d"));
	strata_registry_close(reg);
	remove_folder(dir, "good.so");
}
END_TEST

START_TEST(test_plugin_runs_from_model)
{
	char *dir = folder_with(plugin_file("GOOD"), "good.so");
	strata_registry *reg = NULL;
	strata_error err = {0};
	ck_assert_msg(open_with(dir, true, &reg, &err) == STRATA_OK, "%s", err.message);
	strata_model *m = ts_model(reg, "input: {shape: [3, 2]}\nlayers:\n  - type: test_identity\n");
	ck_assert_str_eq(strata_model_layer_name(m, 0), "test_identity_1");
	strata_runtime *rt = ts_runtime(reg);
	strata_session *s = NULL;
	ck_assert_msg(strata_session_create(rt, m, 2, 1, &s, &err) == STRATA_OK, "%s", err.message);
	float in[12], out[12];
	ts_fill_random(in, 12, 7, -5, 5);
	ck_assert_msg(strata_session_forward(s, in, 2, out, &err) == STRATA_OK, "%s", err.message);
	for (int i = 0; i < 12; i++)
		ck_assert_float_eq(out[i], in[i]);
	strata_session_destroy(s);
	strata_runtime_destroy(rt);
	strata_model_free(m);
	strata_registry_close(reg);
	remove_folder(dir, "good.so");
}
END_TEST

static void expect_refusal(const char *file, const char *link_name, const char *want1, const char *want2)
{
	char *dir = folder_with(file, link_name);
	strata_registry *reg = NULL;
	strata_error err = {0};
	ck_assert_int_eq(open_with(dir, false, &reg, &err), STRATA_ERR_PLUGIN);
	ck_assert_ptr_null(reg);
	ck_assert_msg(strstr(err.message, link_name) != NULL, "message does not name the file: %s", err.message);
	ck_assert_msg(strstr(err.message, want1) != NULL, "missing '%s': %s", want1, err.message);
	if (want2)
		ck_assert_msg(strstr(err.message, want2) != NULL, "missing '%s': %s", want2, err.message);
	remove_folder(dir, link_name);
}

START_TEST(test_abi_mismatch_refused)
{
	char want[128], have[128];
	snprintf(want, sizeof(want), "ABI version %u", STRATA_PLUGIN_ABI_VERSION + 1);
	snprintf(have, sizeof(have), "provides ABI version %u", STRATA_PLUGIN_ABI_VERSION);
	expect_refusal(plugin_file("BAD_ABI"), "bad_abi.so", want, have);
}
END_TEST

START_TEST(test_missing_entry_refused)
{
	expect_refusal(plugin_file("NO_ENTRY"), "no_entry.so", "is not a Strata plugin", STRATA_PLUGIN_ENTRY_NAME);
}
END_TEST

START_TEST(test_unloadable_file_refused)
{
	char *src = strdup("/tmp/strata-test-garbage-XXXXXX");
	int fd = mkstemp(src);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, "not an ELF file\n", 16), 16);
	close(fd);
	expect_refusal(src, "garbage.so", "cannot load plugin", NULL);
	unlink(src);
	free(src);
}
END_TEST

START_TEST(test_failing_init_refused)
{
	expect_refusal(plugin_file("BAD_INIT"), "bad_init.so", "failed to initialize", "'core' is already registered");
}
END_TEST

/* A `.so` entry that is not a regular file is refused, naming it, and never opened: dlopen() on a
 * FIFO waited for a writer forever (this test's case has a 20 s timeout, so that a regression
 * fails instead of hanging). A symlink to a FIFO is refused the same way. */
START_TEST(test_special_files_refused)
{
	char *src = strdup("/tmp/strata-test-fifo-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(src));
	char fifo[4096], folder[4096];
	snprintf(fifo, sizeof(fifo), "%s/pipe", src);
	snprintf(folder, sizeof(folder), "%s/folder", src);
	ck_assert_int_eq(mkfifo(fifo, 0600), 0);
	ck_assert_int_eq(mkdir(folder, 0700), 0);
	expect_refusal(fifo, "fifo.so", "is a FIFO (named pipe), not a regular file", "cannot load plugin");
	expect_refusal(folder, "folder.so", "is a folder, not a regular file", NULL);
	expect_refusal("/dev/zero", "zero.so", "is a character device, not a regular file", NULL);

	/* The FIFO itself in the folder, not a link to it. */
	char *dir = strdup("/tmp/strata-test-plugins-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(dir));
	char path[4096];
	snprintf(path, sizeof(path), "%s/x.so", dir);
	ck_assert_int_eq(mkfifo(path, 0600), 0);
	strata_registry *reg = NULL;
	strata_error err = {0};
	ck_assert_int_eq(open_with(dir, false, &reg, &err), STRATA_ERR_PLUGIN);
	ck_assert_ptr_null(reg);
	char want[8192];
	snprintf(want, sizeof(want), "cannot load plugin %s: it is a FIFO (named pipe), not a regular file", path);
	ck_assert_str_eq(err.message, want);
	unlink(path);
	rmdir(dir);
	free(dir);
	rmdir(folder);
	unlink(fifo);
	rmdir(src);
	free(src);
}
END_TEST

START_TEST(test_missing_folder_is_not_an_error)
{
	strata_registry *reg = NULL;
	strata_error err = {0};
	ck_assert_int_eq(open_with("/nonexistent/strata/plugins", false, &reg, &err), STRATA_OK);
	ck_assert_uint_eq(strata_registry_layer_count(reg), 0);
	strata_registry_close(reg);
}
END_TEST

static Suite *loader_suite(void)
{
	Suite *s = suite_create("plugin_loader");
	TCase *tc = tcase_create("loader");
	tcase_set_timeout(tc, 300);
	tcase_add_test(tc, test_build_tree_plugins_found);
	tcase_add_test(tc, test_search_path_order);
	tcase_add_test(tc, test_plugin_runs_from_model);
	tcase_add_test(tc, test_abi_mismatch_refused);
	tcase_add_test(tc, test_missing_entry_refused);
	tcase_add_test(tc, test_unloadable_file_refused);
	tcase_add_test(tc, test_failing_init_refused);
	tcase_add_test(tc, test_missing_folder_is_not_an_error);
	suite_add_tcase(s, tc);
	TCase *special = tcase_create("special_files");
	tcase_set_timeout(special, 20);
	tcase_add_test(special, test_special_files_refused);
	suite_add_tcase(s, special);
	return s;
}

int main(void)
{
	return ts_run(loader_suite());
}
