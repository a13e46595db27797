/* Runtime: device selection, error names, the program cache (hit on the second build, recovery
 * from a corrupt entry), kernel launches, GEMM, the profile and the device memory count. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/error.h"
#include "plugin/registry.h"
#include "device/runtime.h"
#include "support.h"

/* ---- selectors, on a made-up machine so every branch is exercised ---------------------------- */

static strata_device_info fake(const char *platform, const char *name, const char *type, uint32_t type_index)
{
	strata_device_info d;
	memset(&d, 0, sizeof(d));
	snprintf(d.platform, sizeof(d.platform), "%s", platform);
	snprintf(d.name, sizeof(d.name), "%s", name);
	snprintf(d.type, sizeof(d.type), "%s", type);
	d.type_index = type_index;
	return d;
}

static void fake_machine(strata_device_info d[4])
{
	d[0] = fake("Portable Computing Language", "pthread-skylake", "cpu", 0);
	d[1] = fake("NVIDIA CUDA", "NVIDIA H100", "gpu", 0);
	d[2] = fake("AMD Accelerated Parallel Processing", "gfx1100", "gpu", 1);
	d[3] = fake("Intel(R) OpenCL", "Intel(R) Arc(TM) A770", "gpu", 2);
}

static size_t pick(const strata_device_info *d, size_t n, const char *sel)
{
	size_t i = 99;
	strata_error err = {0};
	ck_assert_msg(strata_device_select(d, n, sel, &i, &err) == STRATA_OK, "%s: %s", sel, err.message);
	return i;
}

START_TEST(test_selector_syntax)
{
	strata_device_info d[4];
	fake_machine(d);
	ck_assert_uint_eq(pick(d, 4, "auto"), 1); /* a GPU before the CPU listed first */
	ck_assert_uint_eq(pick(d, 4, NULL), 1);
	ck_assert_uint_eq(pick(d, 4, ""), 1);
	ck_assert_uint_eq(pick(d, 4, "cpu"), 0);
	ck_assert_uint_eq(pick(d, 4, "gpu"), 1);
	ck_assert_uint_eq(pick(d, 4, "gpu:1"), 2);
	ck_assert_uint_eq(pick(d, 4, "GPU:2"), 3);
	ck_assert_uint_eq(pick(d, 4, "cpu:0"), 0);
	ck_assert_uint_eq(pick(d, 4, "h100"), 1);
	ck_assert_uint_eq(pick(d, 4, "arc"), 3);
	ck_assert_uint_eq(pick(d, 4, "Parallel Processing"), 2); /* a platform name substring */
	/* Only CPUs: auto falls back to the first device. */
	ck_assert_uint_eq(pick(d, 1, "auto"), 0);
}
END_TEST

START_TEST(test_selector_no_match_lists_devices)
{
	strata_device_info d[4];
	fake_machine(d);
	const char *bad[] = {"gpu:3", "cpu:1", "accelerator", "tpu", "gpu:x", "quantum"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		size_t idx;
		strata_error err = {0};
		ck_assert_int_eq(strata_device_select(d, 4, bad[i], &idx, &err), STRATA_ERR_NOT_FOUND);
		ck_assert_msg(strstr(err.message, bad[i]) != NULL, "%s", err.message);
		ck_assert_msg(strstr(err.message, "gpu:1  gfx1100") != NULL, "%s", err.message);
		ck_assert_msg(strstr(err.message, "cpu:0  pthread-skylake") != NULL, "%s", err.message);
	}
}
END_TEST

START_TEST(test_real_devices_listed)
{
	strata_device_info *d = NULL;
	size_t n = 0;
	strata_error err = {0};
	ck_assert_msg(strata_devices_list(&d, &n, &err) == STRATA_OK, "no OpenCL device: %s", err.message);
	ck_assert_uint_gt(n, 0);
	for (size_t i = 0; i < n; i++) {
		ck_assert_str_ne(d[i].name, "");
		ck_assert_uint_gt(d[i].compute_units, 0);
		ck_assert_uint_gt(d[i].global_mem_bytes, 0);
		ck_assert_msg(strncmp(d[i].opencl_c_version, "OpenCL C ", 9) == 0, "%s", d[i].opencl_c_version);
	}
	free(d);
}
END_TEST

/* ---- error names -------------------------------------------------------------------------------- */

START_TEST(test_cl_error_names)
{
	ck_assert_str_eq(st_cl_error_name(-5), "CL_OUT_OF_RESOURCES");
	ck_assert_str_eq(st_cl_error_name(-11), "CL_BUILD_PROGRAM_FAILURE");
	ck_assert_str_eq(st_cl_error_name(-54), "CL_INVALID_WORK_GROUP_SIZE");
	ck_assert_str_eq(st_cl_error_name(-9999), "CL_UNKNOWN_ERROR");
	strata_error err = {0};
	ck_assert_int_eq(st_cl_fail(&err, CL_INVALID_KERNEL_ARGS, "launching '%s'", "im2col"), STRATA_ERR_OPENCL);
	ck_assert_str_eq(err.message, "launching 'im2col': CL_INVALID_KERNEL_ARGS (-52)");
	ck_assert_int_eq(st_cl_fail(&err, CL_MEM_OBJECT_ALLOCATION_FAILURE, "allocating"), STRATA_ERR_DEVICE_MEMORY);
	ck_assert_msg(strstr(err.message, "CL_MEM_OBJECT_ALLOCATION_FAILURE") && strstr(err.message, "--batch-size"),
	              "%s", err.message);
}
END_TEST

/* ---- program cache ------------------------------------------------------------------------------ */

static const char add_source[] =
	"__kernel void add_one(__global float *x, int n)\n"
	"{ int i = get_global_id(0); if (i < n) x[i] += ADDEND; }\n";

static strata_registry *test_registry(void)
{
	strata_registry *reg = NULL;
	strata_error err = {0};
	strata_registry_options o = {.size = sizeof(o), .no_default_paths = true};
	ck_assert_msg(strata_registry_open(&o, &reg, &err) == STRATA_OK, "%s", err.message);
	ck_assert_int_eq(st_registry_add_program(reg, "test_add", add_source, "-DADDEND=1.0f", &err), STRATA_OK);
	ck_assert_int_eq(st_registry_add_program(reg, "test_broken", "__kernel void broken(void) { nope(); }", "", &err),
	                 STRATA_OK);
	return reg;
}

/* A runtime whose disk cache keeps binaries on every driver (PoCL's included), unless `binaries`
 * is STRATA_BINARIES_AUTO. */
static strata_runtime *runtime_with(strata_registry *reg, const char *cache_dir, bool profile, int binaries)
{
	strata_runtime *rt = NULL;
	strata_error err = {0};
	strata_runtime_options o = {.size = sizeof(o), .cache_dir = cache_dir, .profile = profile, .binaries = binaries};
	o.device = getenv("STRATA_TEST_DEVICE");
	ck_assert_msg(strata_runtime_create(reg, &o, &rt, &err) == STRATA_OK, "no usable OpenCL device: %s", err.message);
	return rt;
}

static strata_runtime *runtime_in(strata_registry *reg, const char *cache_dir, bool profile)
{
	return runtime_with(reg, cache_dir, profile, STRATA_BINARIES_ALWAYS);
}

/* Runs add_one (built with `extra`) over 0..n-1 and checks every value went up by `expect`. */
static void run_add(strata_runtime *rt, const char *extra, float expect)
{
	strata_error err = {0};
	strata_kernel *k = NULL;
	ck_assert_msg(st_kernel_get(rt, "test_add", "add_one", extra, &k, &err) == STRATA_OK, "%s", err.message);
	enum { N = 1000 };
	float host[N];
	for (int i = 0; i < N; i++)
		host[i] = (float)i;
	strata_tensor t;
	ck_assert_int_eq(st_tensor_alloc(rt, &t, sizeof(host), "test", &err), STRATA_OK);
	ck_assert_int_eq(st_tensor_write(rt, &t, 0, host, sizeof(host), &err), STRATA_OK);
	strata_arg args[] = {strata_arg_tensor(&t), strata_arg_int(N)};
	size_t global = N, local = 64; /* N is not a multiple of 64: the runtime rounds up */
	ck_assert_msg(st_launch(rt, "test", k, 1, &global, &local, 2, args, &err) == STRATA_OK, "%s", err.message);
	ck_assert_int_eq(st_tensor_read(rt, &t, 0, host, sizeof(host), &err), STRATA_OK);
	for (int i = 0; i < N; i++)
		ck_assert_float_eq_tol(host[i], (float)i + expect, 1e-6f);
	st_tensor_release(&t);
}

/* The single cache entry in `dir` (the tests build one program per folder). */
static char *only_entry(const char *dir)
{
	DIR *d = opendir(dir);
	ck_assert_ptr_nonnull(d);
	char *found = NULL;
	int n = 0;
	struct dirent *e;
	while ((e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.')
			continue;
		ck_assert_msg(strstr(e->d_name, ".tmp.") == NULL, "temporary file left behind: %s", e->d_name);
		n++;
		free(found);
		found = malloc(strlen(dir) + strlen(e->d_name) + 2);
		sprintf(found, "%s/%s", dir, e->d_name);
	}
	closedir(d);
	ck_assert_int_eq(n, 1);
	return found;
}

START_TEST(test_cache_hit_on_second_run)
{
	char dir[256];
	ts_tmpdir_make(dir, sizeof(dir), "test-cache");
	strata_registry *reg = test_registry();

	strata_runtime *rt = runtime_in(reg, dir, false);
	run_add(rt, NULL, 1.0f);
	run_add(rt, NULL, 1.0f); /* same process: the in-memory entry */
	strata_cache_stats s = strata_runtime_cache_stats(rt);
	ck_assert_uint_eq(s.builds, 1);
	ck_assert_uint_eq(s.disk_hits, 0);
	ck_assert_uint_eq(s.memory_hits, 1);
	strata_runtime_destroy(rt);

	rt = runtime_in(reg, dir, false);
	run_add(rt, NULL, 1.0f);
	s = strata_runtime_cache_stats(rt);
	ck_assert_uint_eq(s.builds, 0);
	ck_assert_uint_eq(s.disk_hits, 1);
	strata_runtime_destroy(rt);

	strata_registry_close(reg);
	ts_tmpdir_remove(dir);
}
END_TEST

/* By default PoCL's programs stay in memory: its binaries would compile every kernel of a
 * program (strata_runtime_options.binaries); other drivers' binaries are kept. The variable
 * STRATA_PROGRAM_BINARIES=always keeps them anywhere, and a value it does not know is refused. */
START_TEST(test_binaries_policy)
{
	char dir[256];
	ts_tmpdir_make(dir, sizeof(dir), "test-cache");
	strata_registry *reg = test_registry();
	for (int round = 0; round < 2; round++) {
		strata_runtime *rt = runtime_with(reg, dir, false, STRATA_BINARIES_AUTO);
		bool pocl = strstr(strata_runtime_device(rt)->platform, "Portable Computing Language") != NULL;
		run_add(rt, NULL, 1.0f);
		strata_cache_stats s = strata_runtime_cache_stats(rt);
		ck_assert_uint_eq(s.builds, pocl || round == 0 ? 1 : 0);
		ck_assert_uint_eq(s.disk_hits, pocl || round == 0 ? 0 : 1);
		strata_runtime_destroy(rt);
	}
	setenv("STRATA_PROGRAM_BINARIES", "always", 1);
	strata_runtime *rt = runtime_with(reg, dir, false, STRATA_BINARIES_AUTO);
	run_add(rt, NULL, 1.0f);
	strata_runtime_destroy(rt);
	rt = runtime_with(reg, dir, false, STRATA_BINARIES_AUTO);
	run_add(rt, NULL, 1.0f);
	ck_assert_uint_eq(strata_runtime_cache_stats(rt).disk_hits, 1);
	strata_runtime_destroy(rt);

	setenv("STRATA_PROGRAM_BINARIES", "sometimes", 1);
	strata_error err = {0};
	strata_runtime_options o = {.size = sizeof(o), .cache_dir = dir, .device = getenv("STRATA_TEST_DEVICE")};
	ck_assert_int_eq(strata_runtime_create(reg, &o, &rt, &err), STRATA_ERR_INVALID);
	ck_assert_ptr_nonnull(strstr(err.message, "STRATA_PROGRAM_BINARIES=sometimes: expected always or auto"));
	unsetenv("STRATA_PROGRAM_BINARIES");
	strata_registry_close(reg);
	ts_tmpdir_remove(dir);
}
END_TEST

START_TEST(test_options_are_part_of_the_key)
{
	char dir[256];
	ts_tmpdir_make(dir, sizeof(dir), "test-cache");
	strata_registry *reg = test_registry();
	strata_runtime *rt = runtime_in(reg, dir, false);
	run_add(rt, NULL, 1.0f);
	run_add(rt, "-DADDEND_UNUSED=1", 1.0f);
	strata_cache_stats s = strata_runtime_cache_stats(rt);
	ck_assert_uint_eq(s.builds, 2);
	strata_runtime_destroy(rt);
	strata_registry_close(reg);
	/* two entries now; clean up without only_entry() */
	ts_tmpdir_remove(dir);
}
END_TEST

static void corrupt(const char *path, long offset_from_end, size_t truncate_to)
{
	FILE *f = fopen(path, "r+b");
	ck_assert_ptr_nonnull(f);
	if (truncate_to) {
		ck_assert_int_eq(ftruncate(fileno(f), (off_t)truncate_to), 0);
	} else {
		ck_assert_int_eq(fseek(f, -offset_from_end, SEEK_END), 0);
		int c = fgetc(f);
		ck_assert_int_eq(fseek(f, -offset_from_end, SEEK_END), 0);
		fputc(c ^ 0x5A, f);
	}
	fclose(f);
}

START_TEST(test_corrupt_entry_is_rebuilt)
{
	char dir[256];
	ts_tmpdir_make(dir, sizeof(dir), "test-cache");
	strata_registry *reg = test_registry();
	strata_runtime *rt = runtime_in(reg, dir, false);
	run_add(rt, NULL, 1.0f);
	strata_runtime_destroy(rt);
	char *entry = only_entry(dir);

	/* A flipped byte in the binary, then a truncated file, then garbage: each is detected,
	 * ignored, rebuilt and rewritten, and the kernel still computes the right values. */
	for (int round = 0; round < 3; round++) {
		if (round == 0) {
			corrupt(entry, 10, 0);
		} else if (round == 1) {
			corrupt(entry, 0, 20);
		} else {
			FILE *f = fopen(entry, "wb");
			fputs("not a cache entry", f);
			fclose(f);
		}
		rt = runtime_in(reg, dir, false);
		run_add(rt, NULL, 1.0f);
		strata_cache_stats s = strata_runtime_cache_stats(rt);
		ck_assert_msg(s.builds == 1 && s.disk_hits == 0 && s.disk_errors >= 1, "round %d: %llu builds", round,
		              (unsigned long long)s.builds);
		strata_runtime_destroy(rt);

		rt = runtime_in(reg, dir, false);
		run_add(rt, NULL, 1.0f);
		ck_assert_uint_eq(strata_runtime_cache_stats(rt).disk_hits, 1);
		strata_runtime_destroy(rt);
	}
	free(entry);
	strata_registry_close(reg);
	ts_tmpdir_remove(dir);
}
END_TEST

START_TEST(test_build_failure_shows_log)
{
	strata_registry *reg = test_registry();
	strata_runtime *rt = runtime_in(reg, NULL, false);
	strata_kernel *k = NULL;
	strata_error err = {0};
	ck_assert_int_eq(st_kernel_get(rt, "test_broken", "broken", NULL, &k, &err), STRATA_ERR_BUILD);
	ck_assert_msg(strstr(err.message, "test_broken") && strstr(err.message, "CL_BUILD_PROGRAM_FAILURE") &&
	                  strstr(err.message, "nope"),
	              "%s", err.message);
	ck_assert_int_eq(st_kernel_get(rt, "no_such_program", "k", NULL, &k, &err), STRATA_ERR_NOT_FOUND);
	ck_assert_int_eq(st_kernel_get(rt, "test_add", "no_such_kernel", NULL, &k, &err), STRATA_ERR_OPENCL);
	ck_assert_msg(strstr(err.message, "CL_INVALID_KERNEL_NAME") != NULL, "%s", err.message);
	strata_runtime_destroy(rt);
	strata_registry_close(reg);
}
END_TEST

/* ---- scheduler: GEMM and profile ----------------------------------------------------------------- */

START_TEST(test_gemm_matches_host)
{
	strata_registry *reg = test_registry();
	strata_runtime *rt = runtime_in(reg, NULL, false);
	enum { M = 7, N = 5, K = 3 };
	float a[M * K], b[N * K], c[M * N];
	ts_fill_random(a, M * K, 1, -1, 1);
	ts_fill_random(b, N * K, 2, -1, 1);
	ts_fill_random(c, M * N, 3, -1, 1);
	strata_tensor ta, tb, tc;
	strata_error err = {0};
	ck_assert_int_eq(st_tensor_alloc(rt, &ta, sizeof(a), "a", &err), STRATA_OK);
	ck_assert_int_eq(st_tensor_alloc(rt, &tb, sizeof(b), "b", &err), STRATA_OK);
	ck_assert_int_eq(st_tensor_alloc(rt, &tc, sizeof(c), "c", &err), STRATA_OK);
	st_tensor_write(rt, &ta, 0, a, sizeof(a), &err);
	st_tensor_write(rt, &tb, 0, b, sizeof(b), &err);
	st_tensor_write(rt, &tc, 0, c, sizeof(c), &err);
	/* C = 2 * A * B^T + 0.5 * C, with B stored as N x K */
	strata_gemm g = {.size = sizeof(g), .trans_b = true, .m = M, .n = N, .k = K, .alpha = 2.0f, .beta = 0.5f,
	                 .a = &ta, .lda = K, .b = &tb, .ldb = K, .c = &tc, .ldc = N};
	ck_assert_msg(st_gemm(rt, "test", &g, &err) == STRATA_OK, "%s", err.message);
	float got[M * N];
	st_tensor_read(rt, &tc, 0, got, sizeof(got), &err);
	for (int i = 0; i < M; i++)
		for (int j = 0; j < N; j++) {
			double want = 0.5 * c[i * N + j];
			for (int k = 0; k < K; k++)
				want += 2.0 * a[i * K + k] * b[j * K + k];
			ck_assert_double_eq_tol(got[i * N + j], want, 1e-5);
		}
	st_tensor_release(&ta);
	st_tensor_release(&tb);
	st_tensor_release(&tc);
	strata_runtime_destroy(rt);
	strata_registry_close(reg);
}
END_TEST

START_TEST(test_profile_table)
{
	strata_registry *reg = test_registry();
	strata_runtime *rt = runtime_in(reg, NULL, true);
	run_add(rt, NULL, 1.0f);
	run_add(rt, NULL, 1.0f);
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);
	strata_error err = {0};
	ck_assert_msg(strata_runtime_print_profile(rt, f, &err) == STRATA_OK, "%s", err.message);
	fclose(f);
	ck_assert_msg(strstr(text, "Calls") && strstr(text, "Share"), "%s", text);
	/* two launches of add_one, attributed to the label they were launched under */
	char *row = strstr(text, "test ");
	ck_assert_msg(row && strstr(row, "add_one") && strstr(row, " 2 "), "%s", text);
	free(text);
	strata_runtime_destroy(rt);

	rt = runtime_in(reg, NULL, false);
	ck_assert_int_eq(strata_runtime_print_profile(rt, stdout, &err), STRATA_ERR_INVALID);
	strata_runtime_destroy(rt);
	strata_registry_close(reg);
}
END_TEST

/* strata_runtime_memory_bytes counts what st_tensor_alloc made, views and empty tensors not, and
 * a session's buffers come back when it goes. */
START_TEST(test_memory_bytes)
{
	strata_registry *reg = ts_registry();
	strata_runtime *rt = ts_runtime(reg);
	strata_error err = {0};
	ck_assert_uint_eq(strata_runtime_memory_bytes(rt), 0);
	strata_tensor a, b, none;
	ck_assert_int_eq(st_tensor_alloc(rt, &a, 4000, "a", &err), STRATA_OK);
	ck_assert_int_eq(st_tensor_alloc(rt, &b, 96, "b", &err), STRATA_OK);
	ck_assert_int_eq(st_tensor_alloc(rt, &none, 0, "none", &err), STRATA_OK);
	ck_assert_uint_eq(strata_runtime_memory_bytes(rt), 4096);
	st_tensor_release(&a);
	st_tensor_release(&a); /* a second release takes nothing back twice */
	st_tensor_release(&none);
	ck_assert_uint_eq(strata_runtime_memory_bytes(rt), 96);
	st_tensor_release(&b);
	ck_assert_uint_eq(strata_runtime_memory_bytes(rt), 0);

	/* 784 x 10 weights and 10 biases, at least, for a batch of 32 */
	strata_model *m = ts_model(reg, "input: {shape: [784]}\nlayers:\n  - {type: dense, units: 10}\n");
	strata_session *s = NULL;
	ck_assert_msg(strata_session_create(rt, m, 32, 1, &s, &err) == STRATA_OK, "%s", err.message);
	uint64_t held = strata_runtime_memory_bytes(rt);
	ck_assert_msg(held >= (784 * 10 + 10 + 32 * 784 + 32 * 10) * sizeof(float), "%llu bytes", (unsigned long long)held);
	strata_session_destroy(s);
	ck_assert_uint_eq(strata_runtime_memory_bytes(rt), 0);
	strata_model_free(m);
	strata_runtime_destroy(rt);
	strata_registry_close(reg);
}
END_TEST

static Suite *runtime_suite(void)
{
	Suite *s = suite_create("runtime");
	TCase *sel = tcase_create("devices");
	tcase_add_test(sel, test_selector_syntax);
	tcase_add_test(sel, test_selector_no_match_lists_devices);
	tcase_add_test(sel, test_real_devices_listed);
	tcase_add_test(sel, test_cl_error_names);
	suite_add_tcase(s, sel);
	TCase *cache = tcase_create("program_cache");
	tcase_set_timeout(cache, 300);
	tcase_add_test(cache, test_cache_hit_on_second_run);
	tcase_add_test(cache, test_binaries_policy);
	tcase_add_test(cache, test_options_are_part_of_the_key);
	tcase_add_test(cache, test_corrupt_entry_is_rebuilt);
	tcase_add_test(cache, test_build_failure_shows_log);
	suite_add_tcase(s, cache);
	TCase *sched = tcase_create("scheduler");
	tcase_set_timeout(sched, 300);
	tcase_add_test(sched, test_gemm_matches_host);
	tcase_add_test(sched, test_profile_table);
	tcase_add_test(sched, test_memory_bytes);
	suite_add_tcase(s, sched);
	return s;
}

int main(void)
{
	return ts_run(runtime_suite());
}
