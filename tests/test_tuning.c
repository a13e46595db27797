/* Tuned GEMM parameters: the legal sets, storing and loading them, refusing damaged or foreign
 * files (at load and at runtime creation), recording a training step's GEMMs (of chains and of
 * graphs: branches, merges, shared weights, several inputs and outputs), rejecting a candidate
 * with wrong results, a short real search whose winner computes correct GEMMs, and the whole
 * tuner on a graph. */
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/error.h"
#include "base/fsutil.h"
#include "model/model.h"
#include "device/runtime.h"
#include "support.h"
#include "tune/tuning.h"

static strata_device_info fake_device(const char *driver)
{
	strata_device_info d;
	memset(&d, 0, sizeof(d));
	snprintf(d.platform, sizeof(d.platform), "Portable Computing Language");
	snprintf(d.name, sizeof(d.name), "pthread-test/cpu (R) 9000");
	snprintf(d.driver_version, sizeof(d.driver_version), "%s", driver);
	d.max_work_group_size = 1024;
	d.local_mem_bytes = 32768;
	return d;
}

/* A fresh folder for one test's cache; freed with free(). */
static char *temp_cache(void)
{
	const char *base = getenv("STRATA_TEST_BUILDDIR");
	char tmpl[4096];
	snprintf(tmpl, sizeof(tmpl), "%s/tuning-XXXXXX", base ? base : "/tmp");
	char *dir = mkdtemp(tmpl);
	ck_assert_ptr_nonnull(dir);
	return strdup(dir);
}

/* Removes a file, or a folder with everything in it. */
static void remove_path(const char *path)
{
	struct stat st;
	if (lstat(path, &st) != 0)
		return;
	if (!S_ISDIR(st.st_mode)) {
		unlink(path);
		return;
	}
	DIR *d = opendir(path);
	if (!d)
		return;
	for (struct dirent *e; (e = readdir(d));) {
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		char child[4096];
		snprintf(child, sizeof(child), "%s/%s", path, e->d_name);
		remove_path(child);
	}
	closedir(d);
	rmdir(path);
}

/* Removes a test's cache folder, then frees its name. */
static void remove_tree(char *dir)
{
	remove_path(dir);
	free(dir);
}

static st_tune_set reference_set(size_t min_indirect)
{
	st_tune_set set;
	memset(&set, 0, sizeof(set));
	for (int k = 0; k < ST_TK_COUNT; k++)
		st_tune_reference(k, set.v[k]);
	set.v[ST_TK_ROUTINE][0] = min_indirect;
	set.present = (1u << ST_TK_COUNT) - 1;
	return set;
}

static void assert_same_set(const st_tune_set *a, const st_tune_set *b)
{
	ck_assert_uint_eq(a->present, b->present);
	for (int k = 0; k < ST_TK_COUNT; k++)
		for (size_t i = 0; (a->present & (1u << k)) && i < st_tune_param_count(k); i++)
			ck_assert_msg(a->v[k][i] == b->v[k][i], "%s %s: %zu != %zu", st_tune_kernel_name(k),
			              st_tune_param_name(k, i), a->v[k][i], b->v[k][i]);
}

static char *read_text(const char *path)
{
	char *data = NULL;
	size_t len = 0;
	strata_error err = {0};
	ck_assert_msg(st_read_file(path, "tuning file", UINT64_MAX, &data, &len, &err) == STRATA_OK, "%s", err.message);
	return data;
}

static void write_text(const char *path, const char *text)
{
	strata_error err = {0};
	ck_assert_msg(st_write_file_atomic(path, text, strlen(text), &err) == STRATA_OK, "%s", err.message);
}

/* Rewrites the last line's checksum (64-bit FNV-1a of everything before it) after an edit. */
static void rechecksum(char *text)
{
	char *line = strstr(text, "checksum ");
	ck_assert_ptr_nonnull(line);
	uint64_t h = 0xCBF29CE484222325ull;
	for (const char *p = text; p < line; p++) {
		h ^= (unsigned char)*p;
		h *= 0x100000001B3ull;
	}
	snprintf(line, 9 + 16 + 2, "checksum %016llx\n", (unsigned long long)h);
}

/* ---- legal sets -------------------------------------------------------------------------------- */

START_TEST(test_reference_sets_are_legal)
{
	strata_device_info d = fake_device("1.0");
	for (int k = 0; k < ST_TK_COUNT; k++) {
		size_t v[ST_TUNE_MAX_PARAMS];
		st_tune_reference(k, v);
		ck_assert_msg(st_tune_valid(k, v, &d), "%s reference", st_tune_kernel_name(k));
	}
	/* GEMMK MWG NWG KWG MDIMC NDIMC MDIMA NDIMB KWI VWM VWN STRM STRN SA SB KREG */
	size_t good[] = {1, 32, 32, 1, 4, 4, 4, 4, 1, 4, 4, 0, 0, 0, 0, 4};
	ck_assert(st_tune_valid(ST_TK_XGEMM, good, &d));
	size_t uneven[] = {1, 32, 64, 1, 4, 4, 4, 4, 1, 4, 4, 0, 0, 0, 0, 4}; /* overran buffers on PoCL */
	ck_assert(!st_tune_valid(ST_TK_XGEMM, uneven, &d));
	size_t kreg[] = {1, 32, 32, 1, 4, 4, 4, 4, 1, 4, 4, 0, 0, 0, 0, 2}; /* KREG not a multiple of VWN */
	ck_assert(!st_tune_valid(ST_TK_XGEMM, kreg, &d));
	size_t tile[] = {0, 64, 64, 32, 16, 8, 16, 8, 2, 8, 4, 0, 0, 0, 0, 1}; /* MWG % (MDIMC*VWM) */
	ck_assert(!st_tune_valid(ST_TK_XGEMM, tile, &d));
	size_t local[] = {0, 128, 128, 32, 16, 16, 16, 16, 2, 4, 4, 0, 0, 1, 1, 1}; /* 32 KiB of local memory */
	ck_assert(st_tune_valid(ST_TK_XGEMM, local, &d));
	d.local_mem_bytes = 16384;
	ck_assert(!st_tune_valid(ST_TK_XGEMM, local, &d));
	size_t odd[] = {0, 48, 64, 32, 16, 8, 16, 8, 2, 1, 4, 0, 0, 0, 0, 1}; /* 48 is not a listed tile */
	ck_assert(!st_tune_valid(ST_TK_XGEMM, odd, &d));
}
END_TEST

/* ---- the file ---------------------------------------------------------------------------------- */

START_TEST(test_store_load_round_trip)
{
	char *dir = temp_cache();
	strata_device_info d = fake_device("3.1+debian");
	st_tune_set set = reference_set(300);
	set.v[ST_TK_XGEMM][0] = 1; /* GEMMK=1 with its fixed values */
	size_t x[] = {1, 32, 32, 1, 2, 2, 2, 2, 1, 4, 8, 0, 0, 0, 0, 16};
	memcpy(set.v[ST_TK_XGEMM], x, sizeof(x));
	set.present &= ~(1u << ST_TK_COPY); /* a kernel left to CLBlast */
	char path[4096];
	strata_error err = {0};
	strata_status st = st_tune_store(dir, &d, &set, "measured\nin a test", path, sizeof(path), &err);
	ck_assert_msg(st == STRATA_OK, "%s", err.message);
	ck_assert_ptr_nonnull(strstr(path, dir));
	ck_assert_ptr_nonnull(strstr(path, "pthread-test-cpu-R-9000-"));
	ck_assert_int_eq(access(path, R_OK), 0);
	char *text = read_text(path);
	ck_assert_ptr_nonnull(strstr(text, "note measured\nnote in a test\n"));
	ck_assert_ptr_null(strstr(text, "kernel Copy"));
	free(text);
	st_tune_set back;
	ck_assert_msg(st_tune_load(dir, &d, &back, &err) == STRATA_OK, "%s", err.message);
	assert_same_set(&set, &back);
	/* Stored again: replaced whole. */
	set.v[ST_TK_ROUTINE][0] = 7;
	ck_assert(st_tune_store(dir, &d, &set, NULL, NULL, 0, &err) == STRATA_OK);
	ck_assert(st_tune_load(dir, &d, &back, &err) == STRATA_OK);
	ck_assert_uint_eq(back.v[ST_TK_ROUTINE][0], 7);
	remove_tree(dir);
}
END_TEST

START_TEST(test_damaged_file_refused)
{
	char *dir = temp_cache();
	strata_device_info d = fake_device("3.1");
	st_tune_set set = reference_set(200), back;
	char path[4096];
	strata_error err = {0};
	ck_assert(st_tune_store(dir, &d, &set, NULL, path, sizeof(path), &err) == STRATA_OK);
	char *good = read_text(path);

	/* One digit changed: the checksum no longer matches. */
	char *bad = strdup(good);
	char *p = strstr(bad, "MWG=64");
	ck_assert_ptr_nonnull(p);
	p[5] = '5';
	write_text(path, bad);
	ck_assert_int_eq(st_tune_load(dir, &d, &back, &err), STRATA_ERR_PARSE);
	ck_assert_ptr_nonnull(strstr(err.message, "checksum"));
	ck_assert_uint_eq(back.present, 0);
	/* Cut short. */
	strcpy(bad, good);
	bad[strlen(bad) / 2] = '\0';
	write_text(path, bad);
	ck_assert_int_eq(st_tune_load(dir, &d, &back, &err), STRATA_ERR_PARSE);
	/* Not text at all. */
	write_text(path, "\x7f" "ELF garbage");
	ck_assert_int_eq(st_tune_load(dir, &d, &back, &err), STRATA_ERR_PARSE);
	/* A well-formed file with a value outside the legal set (MWG=48) is refused as well. */
	st_tune_set illegal = set;
	illegal.v[ST_TK_XGEMM][1] = 48;
	char *text = NULL;
	ck_assert(st_tune_format(&illegal, &d, NULL, &text, &err) == STRATA_OK);
	write_text(path, text);
	ck_assert_int_eq(st_tune_load(dir, &d, &back, &err), STRATA_ERR_PARSE);
	ck_assert_ptr_nonnull(strstr(err.message, "Xgemm"));
	free(text);
	/* A kernel line missing a parameter, under a checksum that matches. */
	ck_assert(st_tune_format(&set, &d, NULL, &text, &err) == STRATA_OK);
	char *kreg = strstr(text, " KREG=1\n");
	ck_assert_ptr_nonnull(kreg);
	memmove(kreg, kreg + 7, strlen(kreg + 7) + 1);
	rechecksum(text);
	write_text(path, text);
	ck_assert_int_eq(st_tune_load(dir, &d, &back, &err), STRATA_ERR_PARSE);
	ck_assert_ptr_nonnull(strstr(err.message, "missing"));
	free(text);
	free(bad);
	free(good);
	remove_tree(dir);
}
END_TEST

START_TEST(test_other_device_refused)
{
	char *dir = temp_cache();
	strata_device_info mine = fake_device("3.1"), newer = fake_device("4.0");
	st_tune_set set = reference_set(100), back;
	strata_error err = {0};
	char mine_path[4096], newer_path[4096];
	ck_assert(st_tune_path(dir, &mine, mine_path, sizeof(mine_path), &err) == STRATA_OK);
	ck_assert(st_tune_path(dir, &newer, newer_path, sizeof(newer_path), &err) == STRATA_OK);
	ck_assert_str_ne(mine_path, newer_path); /* the driver version is part of the key */
	ck_assert(st_tune_store(dir, &newer, &set, NULL, NULL, 0, &err) == STRATA_OK);
	ck_assert_int_eq(st_tune_load(dir, &mine, &back, &err), STRATA_ERR_NOT_FOUND);
	/* Even under this device's name, another driver's file is refused. */
	char *text = read_text(newer_path);
	write_text(mine_path, text);
	free(text);
	ck_assert_int_eq(st_tune_load(dir, &mine, &back, &err), STRATA_ERR_INVALID);
	ck_assert_ptr_nonnull(strstr(err.message, "driver"));
	ck_assert_uint_eq(back.present, 0);
	remove_tree(dir);
}
END_TEST

/* ---- at runtime creation ----------------------------------------------------------------------- */

typedef struct log_capture {
	char text[8192];
} log_capture;

static void capture(void *user, int level, const char *message)
{
	log_capture *c = user;
	size_t n = strlen(c->text);
	snprintf(c->text + n, sizeof(c->text) - n, "%d %s\n", level, message);
}

static strata_runtime *runtime_in(strata_registry *reg, const char *cache_dir, log_capture *log)
{
	strata_runtime *rt = NULL;
	strata_error err = {0};
	strata_runtime_options o = {.size = sizeof(o), .device = getenv("STRATA_TEST_DEVICE"),
	                            .cache_dir = cache_dir, .log = capture, .log_user = log,
	                            .verbosity = STRATA_LOG_INFO};
	ck_assert_msg(strata_runtime_create(reg, &o, &rt, &err) == STRATA_OK, "%s", err.message);
	return rt;
}

/* C = op(A) op(B) on the device through st_gemm, against a host product. */
static void assert_gemm_correct(strata_runtime *rt, bool ta, bool tb, size_t m, size_t n, size_t k)
{
	float *a = malloc(m * k * sizeof(float)), *b = malloc(k * n * sizeof(float));
	float *c = malloc(m * n * sizeof(float));
	ck_assert(a && b && c);
	ts_fill_random(a, m * k, 11, -1, 1);
	ts_fill_random(b, k * n, 12, -1, 1);
	strata_tensor A, B, C;
	strata_error err = {0};
	ck_assert(st_tensor_alloc(rt, &A, m * k * sizeof(float), "A", &err) == STRATA_OK);
	ck_assert(st_tensor_alloc(rt, &B, k * n * sizeof(float), "B", &err) == STRATA_OK);
	ck_assert(st_tensor_alloc(rt, &C, m * n * sizeof(float), "C", &err) == STRATA_OK);
	ck_assert(st_tensor_write(rt, &A, 0, a, m * k * sizeof(float), &err) == STRATA_OK);
	ck_assert(st_tensor_write(rt, &B, 0, b, k * n * sizeof(float), &err) == STRATA_OK);
	strata_gemm g = {.size = sizeof(g), .trans_a = ta, .trans_b = tb, .m = m, .n = n, .k = k, .alpha = 1,
	                 .a = &A, .lda = ta ? m : k, .b = &B, .ldb = tb ? k : n, .c = &C, .ldc = n};
	ck_assert_msg(st_gemm(rt, "test", &g, &err) == STRATA_OK, "%s", err.message);
	ck_assert(st_tensor_read(rt, &C, 0, c, m * n * sizeof(float), &err) == STRATA_OK);
	for (size_t i = 0; i < m; i++)
		for (size_t j = 0; j < n; j++) {
			double want = 0, mag = 0;
			for (size_t l = 0; l < k; l++) {
				double x = (ta ? a[l * m + i] : a[i * k + l]) * (double)(tb ? b[j * k + l] : b[l * n + j]);
				want += x;
				mag += fabs(x);
			}
			ck_assert_msg(fabs(c[i * n + j] - want) <= 1e-5 * mag + 1e-6, "%c%c %zux%zux%zu C[%zu][%zu] = %g, want %g",
			              ta ? 'T' : 'N', tb ? 'T' : 'N', m, n, k, i, j, c[i * n + j], want);
		}
	st_tensor_release(&A);
	st_tensor_release(&B);
	st_tensor_release(&C);
	free(a);
	free(b);
	free(c);
}

START_TEST(test_runtime_applies_stored_set)
{
	char *dir = temp_cache();
	strata_registry *reg = ts_registry();
	log_capture log = {{0}};
	strata_runtime *rt = runtime_in(reg, dir, &log);
	ck_assert_ptr_nonnull(strstr(log.text, "2 no tuned GEMM parameters"));
	ck_assert_ptr_nonnull(strstr(log.text, "strata tune"));
	st_tune_set set = reference_set(ST_TUNE_ALWAYS_DIRECT);
	strata_error err = {0};
	ck_assert(st_tune_store(dir, &rt->info, &set, NULL, NULL, 0, &err) == STRATA_OK);
	strata_runtime_destroy(rt);

	memset(&log, 0, sizeof(log));
	rt = runtime_in(reg, dir, &log);
	ck_assert_msg(strstr(log.text, "2 applied tuned GEMM parameters"), "%s", log.text);
	ck_assert_ptr_null(strstr(log.text, "no tuned"));
	assert_gemm_correct(rt, false, false, 37, 19, 23);
	assert_gemm_correct(rt, true, false, 20, 33, 41);
	strata_runtime_destroy(rt);
	strata_registry_close(reg);
	remove_tree(dir);
}
END_TEST

START_TEST(test_runtime_ignores_damaged_and_foreign_files)
{
	char *dir = temp_cache();
	strata_registry *reg = ts_registry();
	log_capture log = {{0}};
	strata_runtime *rt = runtime_in(reg, dir, &log);
	strata_device_info other = rt->info;
	snprintf(other.driver_version, sizeof(other.driver_version), "%.200s-older", rt->info.driver_version);
	char path[4096], *text = NULL;
	strata_error err = {0};
	st_tune_set set = reference_set(64);
	ck_assert(st_tune_path(dir, &rt->info, path, sizeof(path), &err) == STRATA_OK);
	ck_assert(st_tune_format(&set, &other, NULL, &text, &err) == STRATA_OK);
	ck_assert(st_mkdirs(dir, &err) == STRATA_OK);
	char tuning_dir[4096];
	ck_assert(st_tune_dir(dir, tuning_dir, sizeof(tuning_dir), &err) == STRATA_OK);
	ck_assert(st_mkdirs(tuning_dir, &err) == STRATA_OK);
	write_text(path, text);
	free(text);
	strata_runtime_destroy(rt);

	/* Another driver's parameters under this device's name: a warning, nothing applied. */
	memset(&log, 0, sizeof(log));
	rt = runtime_in(reg, dir, &log);
	ck_assert_msg(strstr(log.text, "1 ignoring tuned GEMM parameters") && strstr(log.text, "driver"), "%s",
	              log.text);
	ck_assert_ptr_null(strstr(log.text, "applied"));
	strata_runtime_destroy(rt);

	/* A damaged file: a warning, nothing applied, GEMMs still right. */
	write_text(path, "format 1\nkernel Xgemm MWG=64\nchecksum 0000000000000000\n");
	memset(&log, 0, sizeof(log));
	rt = runtime_in(reg, dir, &log);
	ck_assert_msg(strstr(log.text, "1 ignoring tuned GEMM parameters") && strstr(log.text, "checksum"), "%s",
	              log.text);
	ck_assert_ptr_null(strstr(log.text, "applied"));
	assert_gemm_correct(rt, false, true, 17, 29, 13);
	strata_runtime_destroy(rt);
	strata_registry_close(reg);
	remove_tree(dir);
}
END_TEST

/* ---- recording --------------------------------------------------------------------------------- */

static const char *const mlp_yaml =
	"input: {shape: [8]}\n"
	"layers:\n"
	"  - {type: dense, units: 4, activation: relu}\n"
	"  - {type: dense, units: 3, activation: softmax}\n"
	"loss: categorical_crossentropy\n"
	"optimizer: sgd\n";

static bool has_shape(const st_gemm_log *log, bool ta, bool tb, size_t m, size_t n, size_t k)
{
	for (size_t i = 0; i < log->n; i++) {
		const st_gemm_shape *s = &log->shapes[i];
		if (s->trans_a == ta && s->trans_b == tb && s->m == m && s->n == n && s->k == k && s->count == 1)
			return true;
	}
	return false;
}

START_TEST(test_records_training_step_shapes)
{
	ts_device dev = ts_device_open();
	strata_runtime *rt = dev.rt;
	strata_model *model = ts_model(dev.reg, mlp_yaml);
	st_gemm_log log = {0};
	strata_error err = {0};
	ck_assert_msg(st_tune_record(rt, model, 5, &log, &err) == STRATA_OK, "%s", err.message);
	/* Forward per layer; backward: each layer's weight gradient, and the input gradient of
	 * every layer but the first. */
	ck_assert_uint_eq(log.n, 5);
	ck_assert(has_shape(&log, false, false, 5, 4, 8));
	ck_assert(has_shape(&log, false, false, 5, 3, 4));
	ck_assert(has_shape(&log, true, false, 4, 3, 5));
	ck_assert(has_shape(&log, false, true, 5, 4, 3));
	ck_assert(has_shape(&log, true, false, 8, 4, 5));
	ck_assert(rt->gemm_observer == NULL); /* recording is off again */
	st_gemm_log_free(&log);
	/* The model is free for a session afterwards. */
	strata_session *s = NULL;
	ck_assert_msg(strata_session_create(rt, model, 2, 1, &s, &err) == STRATA_OK, "%s", err.message);
	strata_session_destroy(s);
	strata_model_free(model);
	ts_device_close(&dev);
}
END_TEST

/* ---- recording graphs -------------------------------------------------------------------------- */

/* A graph model, the shapes its step must record, and its GEMM layers as separate chains: each
 * chain is one layer on an input of that layer's input shape, after a linear Activation (or the
 * Flatten it reads in the graph) when the layer is not reading a model input. No layer before the
 * stand-in has weights, so the chain's backward pass skips that layer's input gradient, which the
 * graph computes: the chains give every other shape, the table all of them. */
/* The chain of a 3-unit softmax head on 4 values that a layer wrote. */
#define SOFTMAX3_ON_4 \
	"input: {shape: [4]}\n" \
	"layers: [{type: activation, activation: linear}, {type: dense, units: 3, activation: softmax}]\n"

typedef struct graph_case {
	const char *what;
	const char *graph;
	const char *chains[6];
	st_gemm_shape shapes[16]; /* at batch 3; m == 0 ends the list */
	/* Among them, calls that are a convolution's input gradient over its padded dz (conv2d's
	 * dz_pad): NN, where a dense or 1x1 layer's input gradient is NT. */
	st_gemm_shape conv_dx[4];
} graph_case;

static const graph_case graph_cases[] = {
	{"residual: a 1x1 projection of c1 on a side branch, added to c3; c1 read by c2 and proj",
	 "inputs: [{name: x, shape: [8, 8, 2]}]\n"
	 "layers:\n"
	 "  - {type: conv2d, filters: 4, kernel_size: 3, padding: same, activation: relu, name: c1, inputs: x}\n"
	 "  - {type: conv2d, filters: 6, kernel_size: 3, padding: same, activation: relu, name: c2, inputs: c1}\n"
	 "  - {type: conv2d, filters: 6, kernel_size: 3, padding: same, name: c3, inputs: c2}\n"
	 "  - {type: conv2d, filters: 6, kernel_size: 1, name: proj, inputs: c1}\n"
	 "  - {type: add, inputs: [c3, proj]}\n"
	 "  - {type: activation, activation: relu}\n"
	 "  - {type: maxpool2d}\n"
	 "  - {type: flatten}\n"
	 "  - {type: dense, units: 5, activation: softmax}\n",
	 {"input: {shape: [8, 8, 2]}\n"
	  "layers: [{type: conv2d, filters: 4, kernel_size: 3, padding: same, activation: relu}]\n",
	  "input: {shape: [8, 8, 4]}\n"
	  "layers:\n"
	  "  - {type: activation, activation: linear}\n"
	  "  - {type: conv2d, filters: 6, kernel_size: 3, padding: same, activation: relu}\n",
	  "input: {shape: [8, 8, 6]}\n"
	  "layers:\n"
	  "  - {type: activation, activation: linear}\n"
	  "  - {type: conv2d, filters: 6, kernel_size: 3, padding: same}\n",
	  "input: {shape: [8, 8, 4]}\n"
	  "layers:\n"
	  "  - {type: activation, activation: linear}\n"
	  "  - {type: conv2d, filters: 6, kernel_size: 1}\n",
	  "input: {shape: [96]}\n"
	  "layers:\n"
	  "  - {type: activation, activation: linear}\n"
	  "  - {type: dense, units: 5, activation: softmax}\n"},
	 /* convolutions: rows = 3 x 8 x 8 = 192, depth = kh kw c; c1 reads the model input: no dx.
	  * The 3x3 layers' dx is window(padded dz) x K': 192 x c x (9 f); c3's has its forward shape. */
	 {{false, false, 192, 4, 18, 1}, {true, false, 18, 4, 192, 1},
	  {false, false, 192, 6, 36, 1}, {true, false, 36, 6, 192, 1}, {false, false, 192, 4, 54, 1},
	  {false, false, 192, 6, 54, 2}, {true, false, 54, 6, 192, 1},
	  {false, false, 192, 6, 4, 1}, {true, false, 4, 6, 192, 1}, {false, true, 192, 4, 6, 1},
	  {false, false, 3, 5, 96, 1}, {true, false, 96, 5, 3, 1}, {false, true, 3, 96, 5, 1}},
	 {{false, false, 192, 4, 54, 1}, {false, false, 192, 6, 54, 1}}},
	{"shared weights: b uses a's on p, a on the input",
	 "inputs: [{name: x, shape: [6]}]\n"
	 "layers:\n"
	 "  - {type: dense, units: 6, activation: tanh, name: p, inputs: x}\n"
	 "  - {type: dense, units: 4, name: a, inputs: x}\n"
	 "  - {type: dense, units: 4, name: b, inputs: p, shares: a}\n"
	 "  - {type: add, inputs: [a, b]}\n"
	 "  - {type: dense, units: 3, activation: softmax}\n",
	 {"input: {shape: [6]}\nlayers: [{type: dense, units: 6, activation: tanh}]\n",
	  "input: {shape: [6]}\nlayers: [{type: dense, units: 4}]\n",
	  "input: {shape: [6]}\nlayers: [{type: activation, activation: linear}, {type: dense, units: 4}]\n",
	  SOFTMAX3_ON_4},
	 /* a's and b's forward and kernel gradient are one shape, called twice */
	 {{false, false, 3, 6, 6, 1}, {true, false, 6, 6, 3, 1},
	  {false, false, 3, 4, 6, 2}, {true, false, 6, 4, 3, 2}, {false, true, 3, 6, 4, 1},
	  {false, false, 3, 3, 4, 1}, {true, false, 4, 3, 3, 1}, {false, true, 3, 4, 3, 1}}, {{0}}},
	{"two inputs: a convolution on the image, a dense layer on the second input",
	 "inputs: [{name: image, shape: [6, 6, 1]}, {name: extra, shape: [5]}]\n"
	 "layers:\n"
	 "  - {type: conv2d, filters: 3, kernel_size: 3, activation: relu, name: c, inputs: image}\n"
	 "  - {type: flatten, name: f}\n"
	 "  - {type: dense, units: 4, name: d1, inputs: f}\n"
	 "  - {type: dense, units: 4, name: d2, inputs: extra}\n"
	 "  - {type: add, inputs: [d1, d2]}\n"
	 "  - {type: dense, units: 3, activation: softmax}\n",
	 {"input: {shape: [6, 6, 1]}\nlayers: [{type: conv2d, filters: 3, kernel_size: 3, activation: relu}]\n",
	  "input: {shape: [4, 4, 3]}\nlayers: [{type: flatten}, {type: dense, units: 4}]\n",
	  "input: {shape: [5]}\nlayers: [{type: dense, units: 4}]\n",
	  SOFTMAX3_ON_4},
	 {{false, false, 48, 3, 9, 1}, {true, false, 9, 3, 48, 1},
	  {false, false, 3, 4, 48, 1}, {true, false, 48, 4, 3, 1}, {false, true, 3, 48, 4, 1},
	  {false, false, 3, 4, 5, 1}, {true, false, 5, 4, 3, 1},
	  {false, false, 3, 3, 4, 1}, {true, false, 4, 3, 3, 1}, {false, true, 3, 4, 3, 1}}, {{0}}},
	{"two outputs: two heads on h, the backward pass from both",
	 "inputs: [{name: x, shape: [6]}]\n"
	 "layers:\n"
	 "  - {type: dense, units: 5, activation: tanh, name: h, inputs: x}\n"
	 "  - {type: dense, units: 3, activation: softmax, name: o1, inputs: h}\n"
	 "  - {type: dense, units: 2, activation: softmax, name: o2, inputs: h}\n"
	 "outputs: [o1, o2]\n",
	 {"input: {shape: [6]}\nlayers: [{type: dense, units: 5, activation: tanh}]\n",
	  "input: {shape: [5]}\n"
	  "layers: [{type: activation, activation: linear}, {type: dense, units: 3, activation: softmax}]\n",
	  "input: {shape: [5]}\n"
	  "layers: [{type: activation, activation: linear}, {type: dense, units: 2, activation: softmax}]\n"},
	 {{false, false, 3, 5, 6, 1}, {true, false, 6, 5, 3, 1},
	  {false, false, 3, 3, 5, 1}, {true, false, 5, 3, 3, 1}, {false, true, 3, 5, 3, 1},
	  {false, false, 3, 2, 5, 1}, {true, false, 5, 2, 3, 1}, {false, true, 3, 5, 2, 1}}, {{0}}},
};

/* The calls of one shape in a recording; 0 when it is not there. */
static bool same_shape(const st_gemm_shape *a, const st_gemm_shape *b)
{
	return a->trans_a == b->trans_a && a->trans_b == b->trans_b && a->m == b->m && a->n == b->n && a->k == b->k;
}

static uint32_t shape_calls(const st_gemm_log *log, const st_gemm_shape *want)
{
	for (size_t i = 0; i < log->n; i++)
		if (same_shape(&log->shapes[i], want))
			return log->shapes[i].count;
	return 0;
}

static void record_yaml(const ts_device *dev, const char *yaml, uint32_t batch, st_gemm_log *log)
{
	strata_model *model = ts_model(dev->reg, yaml);
	strata_error err = {0};
	ck_assert_msg(st_tune_record(dev->rt, model, batch, log, &err) == STRATA_OK, "%s", err.message);
	strata_model_free(model);
}

/* The graph's step records every GEMM of every layer, forward and backward, once per distinct
 * shape with its calls counted: what the layers record as separate chains, and the shapes the
 * layers' parameters give. */
START_TEST(test_records_graph_shapes)
{
	const graph_case *gc = &graph_cases[_i];
	ts_device dev = ts_device_open();
	st_gemm_log graph = {0}, chains = {0};
	record_yaml(&dev, gc->graph, 3, &graph);
	for (size_t c = 0; c < sizeof(gc->chains) / sizeof(gc->chains[0]) && gc->chains[c]; c++) {
		st_gemm_log one = {0};
		record_yaml(&dev, gc->chains[c], 3, &one);
		for (size_t i = 0; i < one.n; i++) {
			const st_gemm_shape *s = &one.shapes[i];
			strata_gemm g = {.size = sizeof(g), .trans_a = s->trans_a, .trans_b = s->trans_b, .m = s->m,
			                 .n = s->n, .k = s->k};
			for (uint32_t k = 0; k < s->count; k++)
				st_gemm_log_add(&chains, &g);
		}
		st_gemm_log_free(&one);
	}
	for (size_t i = 0; i < graph.n; i++)
		for (size_t j = 0; j < i; j++)
			ck_assert_msg(graph.shapes[i].trans_a != graph.shapes[j].trans_a ||
			                      graph.shapes[i].trans_b != graph.shapes[j].trans_b ||
			                      graph.shapes[i].m != graph.shapes[j].m || graph.shapes[i].n != graph.shapes[j].n ||
			                      graph.shapes[i].k != graph.shapes[j].k,
			              "%s: shape %zu recorded again at %zu", gc->what, j, i);
	size_t listed = 0;
	while (listed < sizeof(gc->shapes) / sizeof(gc->shapes[0]) && gc->shapes[listed].m)
		listed++;
	ck_assert_msg(graph.n == listed && chains.n <= graph.n, "%s: %zu shapes, the chains %zu, the parameters %zu",
	              gc->what, graph.n, chains.n, listed);
	/* A chain's layer behind its stand-in (a linear activation: no weights, so no gradient is
	 * needed before it) computes no input gradient; those GEMMs (NT) come from the table only. */
	for (size_t i = 0; i < listed; i++) {
		const st_gemm_shape *s = &gc->shapes[i];
		uint32_t got = shape_calls(&graph, s), chained = shape_calls(&chains, s), conv_dx = 0;
		for (size_t j = 0; j < sizeof(gc->conv_dx) / sizeof(gc->conv_dx[0]) && gc->conv_dx[j].m; j++)
			if (same_shape(&gc->conv_dx[j], s))
				conv_dx += gc->conv_dx[j].count;
		bool input_grad = !s->trans_a && s->trans_b;
		ck_assert_msg(got == s->count && (chained == s->count - conv_dx || (chained == 0 && input_grad)),
		              "%s: %c%c %zux%zux%zu called %u times, %u as chains, want %u",
		              gc->what, s->trans_a ? 'T' : 'N', s->trans_b ? 'T' : 'N', s->m, s->n, s->k, got, chained,
		              s->count);
	}
	ck_assert(dev.rt->gemm_observer == NULL);
	st_gemm_log_free(&chains);
	st_gemm_log_free(&graph);
	ts_device_close(&dev);
}
END_TEST

/* Two inputs, two outputs, a residual Add with a 1x1 projection, a layer sharing another's
 * weights on the second input. */
static const char *const graph_yaml =
	"inputs: [{name: image, shape: [8, 8, 1]}, {name: extra, shape: [5]}]\n"
	"layers:\n"
	"  - {type: conv2d, filters: 4, kernel_size: 3, padding: same, activation: relu, name: c1, inputs: image}\n"
	"  - {type: conv2d, filters: 4, kernel_size: 3, padding: same, name: c2}\n"
	"  - {type: conv2d, filters: 4, kernel_size: 1, name: proj, inputs: c1}\n"
	"  - {type: add, inputs: [c2, proj]}\n"
	"  - {type: maxpool2d}\n"
	"  - {type: flatten}\n"
	"  - {type: dense, units: 5, activation: tanh, name: g}\n"
	"  - {type: dense, units: 4, activation: tanh, name: s1, inputs: g}\n"
	"  - {type: dense, units: 4, activation: tanh, name: s2, inputs: extra, shares: s1}\n"
	"  - {type: concatenate, name: both, inputs: [s1, s2]}\n"
	"  - {type: dense, units: 3, activation: softmax, name: digit, inputs: both}\n"
	"  - {type: dense, units: 2, activation: softmax, name: parity, inputs: both}\n"
	"outputs: [digit, parity]\n"
	"loss: categorical_crossentropy\n"
	"optimizer: sgd\n";

/* The tunables' search feeds every input and every output's gradient: each value of each tunable
 * agrees with the defaults on every output, gradient and updated weight (a second input or output
 * left unwritten made every value differ). */
START_TEST(test_tunables_on_graph)
{
	ts_device dev = ts_device_open();
	strata_model *model = ts_model(dev.reg, graph_yaml);
	char *text = NULL;
	size_t len = 0;
	FILE *report = open_memstream(&text, &len);
	st_tunables best;
	double before, after;
	strata_error err = {0};
	ck_assert_msg(st_tune_kernel_tunables(dev.rt, model, 4, 600, report, &best, &before, &after, &err) == STRATA_OK,
	              "%s", err.message);
	fclose(report);
	size_t tried = 0, all = 0;
	for (const char *p = text; (p = strstr(p, "\n  ")); p++)
		tried++;
	for (int t = 0; t < ST_TUNABLE_COUNT; t++)
		all += st_tunable_choice_count(t) - 1;
	ck_assert_msg(tried >= all, "%zu of %zu values tried:\n%s", tried, all, text);
	ck_assert_msg(!strstr(text, "DIFFERENT"), "%s", text);
	ck_assert(isfinite(before) && after <= before);
	free(text);
	strata_model_free(model);
	ts_device_close(&dev);
}
END_TEST

/* strata_tune end to end on the graph: all 19 shapes and 22 calls of its step, every candidate
 * right, a winner; nothing stored (no_store). */
START_TEST(test_tune_graph)
{
	ts_device dev = ts_device_open();
	strata_model *model = ts_model(dev.reg, graph_yaml);
	char *dir = temp_cache();
	strata_tune_options o = {.size = sizeof(o), .batch_size = 4, .budget_seconds = 1, .seed = 1,
	                         .cache_dir = dir, .no_store = true};
	strata_tune_result r;
	strata_error err = {0};
	ck_assert_msg(strata_tune(dev.rt, model, &o, &r, &err) == STRATA_OK, "%s", err.message);
	/* c1: forward, kernel gradient; c2, proj, g, s1, digit, parity: and the input gradient; s2
	 * repeats s1's forward and kernel gradient on its own input, which is the model's; c2's input
	 * gradient (over its padded dz, 4 x 8 x 8 by 4 by 9 x 4) has c2's forward shape. */
	ck_assert_uint_eq(r.shapes, 19);
	ck_assert_uint_eq(r.gemms, 22);
	ck_assert_uint_ge(r.tried, 1);
	ck_assert_uint_eq(r.rejected, 0);
	ck_assert_msg(r.after_ms > 0, "no winner: %g ms", r.after_ms);
	ck_assert(!r.stored);
	remove_tree(dir);
	strata_model_free(model);
	ts_device_close(&dev);
}
END_TEST

/* ---- the search --------------------------------------------------------------------------------- */

static const st_gemm_shape small_shapes[] = {
	{false, false, 100, 40, 30, 2},
	{true, false, 30, 20, 100, 1},
	{false, true, 64, 50, 20, 1},
};
#define N_SMALL (sizeof(small_shapes) / sizeof(small_shapes[0]))

typedef struct corrupt_state {
	int corrupted;
} corrupt_state;

/* A wrong result from every indirect candidate (their runs force the switch point to 0). */
static void corrupt_indirect(void *user, const st_tune_set *cand, const st_gemm_shape *shape, float *c,
                             size_t n)
{
	corrupt_state *cs = user;
	(void)shape;
	if (cand->present && cand->v[ST_TK_ROUTINE][0] == 0 && n > 0) {
		c[n / 2] += 1.0f;
		cs->corrupted++;
	}
}

START_TEST(test_wrong_candidate_rejected)
{
	ts_device dev = ts_device_open();
	strata_runtime *rt = dev.rt;
	corrupt_state cs = {0};
	st_tuner_config cfg = {.shapes = small_shapes, .n_shapes = N_SMALL, .budget_seconds = 120, .seed = 1,
	                       .hook = corrupt_indirect, .hook_user = &cs, .max_candidates = 2};
	st_tuner_result r;
	strata_error err = {0};
	ck_assert_msg(st_tuner_run(rt, &cfg, &r, &err) == STRATA_OK, "%s", err.message);
	ck_assert_uint_eq(r.tried, 2);
	ck_assert_int_ge(cs.corrupted, 1);
	ck_assert_uint_eq(r.rejected, 1); /* the indirect candidate */
	ck_assert_msg(isfinite(r.after_s), "the direct candidate was correct and should have won");
	/* Only the path that computed right results may carry a GEMM. */
	ck_assert_uint_eq(r.best.v[ST_TK_ROUTINE][0], ST_TUNE_ALWAYS_DIRECT);

	ts_device_close(&dev);
}
END_TEST

/* A wrong result from every candidate. */
static void corrupt_all(void *user, const st_tune_set *cand, const st_gemm_shape *shape, float *c,
                        size_t n)
{
	corrupt_state *cs = user;
	(void)shape;
	if (cand->present && n > 0) {
		c[0] = -c[0] - 3.0f;
		cs->corrupted++;
	}
}

START_TEST(test_all_wrong_nothing_wins)
{
	ts_device dev = ts_device_open();
	strata_runtime *rt = dev.rt;
	corrupt_state cs = {0};
	st_tuner_config cfg = {.shapes = small_shapes, .n_shapes = N_SMALL, .budget_seconds = 120, .seed = 1,
	                       .hook = corrupt_all, .hook_user = &cs, .max_candidates = 2};
	st_tuner_result r;
	strata_error err = {0};
	ck_assert_msg(st_tuner_run(rt, &cfg, &r, &err) == STRATA_OK, "%s", err.message);
	ck_assert_uint_eq(r.tried, 2);
	ck_assert_uint_eq(r.rejected, 2);
	ck_assert_int_eq(cs.corrupted, 2); /* each stopped at its first wrong shape */
	ck_assert(!r.improved);
	ck_assert(isinf(r.after_s));
	ck_assert_uint_eq(r.best.present, 0);
	ts_device_close(&dev);
}
END_TEST

START_TEST(test_tiny_tune_winner_correct)
{
	ts_device dev = ts_device_open();
	strata_runtime *rt = dev.rt;
	double before[N_SMALL], after[N_SMALL];
	st_tuner_config cfg = {.shapes = small_shapes, .n_shapes = N_SMALL, .budget_seconds = 2, .seed = 1,
	                       .before_t = before, .after_t = after, .max_candidates = 3};
	st_tuner_result r;
	strata_error err = {0};
	ck_assert_msg(st_tuner_run(rt, &cfg, &r, &err) == STRATA_OK, "%s", err.message);
	ck_assert_uint_ge(r.tried, 1);
	ck_assert_uint_eq(r.rejected, 0);
	ck_assert_msg(isfinite(r.after_s) && r.after_s > 0, "no winner");
	ck_assert(isfinite(r.before_s));
	ck_assert_uint_eq(r.best.present, (1u << ST_TK_COUNT) - 1);
	double sum = 0;
	for (size_t i = 0; i < N_SMALL; i++) {
		ck_assert(isfinite(before[i]) && isfinite(after[i]));
		sum += small_shapes[i].count * after[i];
	}
	ck_assert_double_eq_tol(sum, r.after_s, 1e-9);
	/* The winner stays applied: GEMMs through the runtime, on these shapes and on others. */
	for (size_t i = 0; i < N_SMALL; i++) {
		const st_gemm_shape *s = &small_shapes[i];
		assert_gemm_correct(rt, s->trans_a, s->trans_b, s->m, s->n, s->k);
	}
	assert_gemm_correct(rt, false, false, 70, 90, 110); /* a shape it was not tuned on */
	assert_gemm_correct(rt, false, false, 1, 1, 1);
	ts_device_close(&dev);
}
END_TEST

/* ---- routes: per-shape engine choices ----------------------------------------------------------- */

/* Replaces `from` by `to` in a stored file's text, re-signs it, and expects the load to refuse
 * the whole file with a message naming `word`. */
static void assert_edit_refused(const char *dir, const strata_device_info *d, const char *path, const char *text,
                                const char *from, const char *to, const char *word)
{
	char *edit = malloc(strlen(text) + strlen(to) + 1);
	const char *at = strstr(text, from);
	ck_assert_ptr_nonnull(edit);
	ck_assert_ptr_nonnull(at);
	size_t pre = (size_t)(at - text);
	memcpy(edit, text, pre);
	strcpy(edit + pre, to);
	strcat(edit, at + strlen(from));
	rechecksum(edit);
	write_text(path, edit);
	st_tune_set back;
	strata_error err = {0};
	ck_assert_msg(st_tune_load(dir, d, &back, &err) == STRATA_ERR_PARSE, "accepted '%s'", to);
	ck_assert_msg(strstr(err.message, word), "%s", err.message);
	ck_assert(back.n_routes == 0 && !back.has_tunables && back.present == 0);
	free(edit);
}

START_TEST(test_routes_round_trip_and_refusals)
{
	char *dir = temp_cache();
	strata_device_info d = fake_device("3.1");
	st_tune_set set;
	memset(&set, 0, sizeof(set)); /* routes alone make a file */
	set.n_routes = 2;
	set.routes[0] = (st_gemm_route){true, false, 288, 64, 73728, ST_GEMM_TILE, {4, 4, 128}};
	set.routes[1] = (st_gemm_route){false, true, 128, 9216, 128, ST_GEMM_CLBLAST, {0, 0, 0}};
	char path[4096];
	strata_error err = {0};
	ck_assert_msg(st_tune_store(dir, &d, &set, NULL, path, sizeof(path), &err) == STRATA_OK, "%s", err.message);
	char *text = read_text(path);
	ck_assert_ptr_nonnull(strstr(text, "gemm TN m=288 n=64 k=73728 engine=strata MR=4 NV=4 S=128\n"));
	ck_assert_ptr_nonnull(strstr(text, "gemm NT m=128 n=9216 k=128 engine=clblast\n"));
	st_tune_set back;
	ck_assert_msg(st_tune_load(dir, &d, &back, &err) == STRATA_OK, "%s", err.message);
	ck_assert_uint_eq(back.present, 0);
	ck_assert_uint_eq(back.n_routes, 2);
	ck_assert_mem_eq(&back.routes[0], &set.routes[0], sizeof(st_gemm_route));
	ck_assert_mem_eq(&back.routes[1], &set.routes[1], sizeof(st_gemm_route));

	/* Each damaged line, under a checksum that matches, refuses the whole file. */
	static const char *const bad[][2] = {
		{"engine=strata MR=4 NV=4 S=128", "engine=strata MR=40 NV=4 S=128"},
		{"engine=strata MR=4 NV=4 S=128", "engine=strata MR=4 NV=4"},
		{"engine=strata MR=4 NV=4 S=128", "engine=strata MR=4 NV=4 S=0"},
		{"engine=clblast", "engine=cublas"},
		{"engine=clblast", "engine=clblast MR=4"},
		{"gemm NT m=128", "gemm NX m=128"},
		{"gemm NT m=128 n=9216 k=128", "gemm TN m=288 n=64 k=73728"},
		{"n=9216", "n=0"},
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_edit_refused(dir, &d, path, text, bad[i][0], bad[i][1], "gemm");
	free(text);
	remove_tree(dir);
}
END_TEST

/* Which engine ran a GEMM, from the profile's kernel names. */
static bool profile_has(strata_runtime *rt, const char *kernel)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	strata_error err = {0};
	ck_assert_msg(strata_runtime_print_profile(rt, f, &err) == STRATA_OK, "%s", err.message);
	fclose(f);
	bool has = strstr(buf, kernel) != NULL;
	free(buf);
	return has;
}

START_TEST(test_runtime_follows_routes)
{
	strata_registry *reg = ts_registry();
	strata_runtime_options o = {.size = sizeof(o), .profile = true, .no_disk_cache = true};
	strata_error err = {0};
	for (int engine = ST_GEMM_CLBLAST; engine <= ST_GEMM_TILE; engine++) {
		strata_runtime *rt = NULL;
		ck_assert_msg(strata_runtime_create(reg, &o, &rt, &err) == STRATA_OK, "%s", err.message);
		st_tune_set set;
		memset(&set, 0, sizeof(set));
		set.n_routes = 1;
		set.routes[0] = (st_gemm_route){false, true, 17, 29, 13, engine, {3, 1, 2}};
		ck_assert_msg(st_tune_apply(rt, &set, &err) == STRATA_OK, "%s", err.message);
		assert_gemm_correct(rt, false, true, 17, 29, 13);
		ck_assert_msg(st_finish(rt, &err) == STRATA_OK, "%s", err.message);
		ck_assert(profile_has(rt, "gemm_tile") == (engine == ST_GEMM_TILE));
		ck_assert(profile_has(rt, " gemm ") == (engine == ST_GEMM_CLBLAST));
		strata_runtime_destroy(rt);
	}
	strata_registry_close(reg);
}
END_TEST

/* A wrong result from every plan of Strata's kernel for one shape. */
static void corrupt_tile_plans(void *user, const st_tune_set *cand, const st_gemm_shape *shape, float *c,
                               size_t n)
{
	corrupt_state *cs = user;
	if (cand->n_routes == 1 && cand->routes[0].engine == ST_GEMM_TILE && shape->trans_a && n > 0) {
		c[n - 1] *= 2.0f;
		cs->corrupted++;
	}
}

START_TEST(test_route_search)
{
	ts_device dev = ts_device_open();
	strata_runtime *rt = dev.rt;
	corrupt_state cs = {0};
	double before[N_SMALL], after[N_SMALL];
	st_tuner_config cfg = {.shapes = small_shapes, .n_shapes = N_SMALL, .budget_seconds = 1, .seed = 1,
	                       .max_candidates = 1, .route_seconds = 20, .hook = corrupt_tile_plans,
	                       .hook_user = &cs, .before_t = before, .after_t = after};
	st_tuner_result r;
	strata_error err = {0};
	ck_assert_msg(st_tuner_run(rt, &cfg, &r, &err) == STRATA_OK, "%s", err.message);
	ck_assert_uint_eq(r.n_routes, N_SMALL); /* every shape routed */
	ck_assert_int_ge(cs.corrupted, 1);
	ck_assert_uint_ge(r.rejected, (unsigned)cs.corrupted);
	double sum = 0;
	for (size_t i = 0; i < r.n_routes; i++) {
		const st_gemm_route *route = &r.routes[i];
		/* the shape whose plans all computed wrong results stays on CLBlast */
		if (route->trans_a)
			ck_assert_int_eq(route->engine, ST_GEMM_CLBLAST);
		else if (route->engine == ST_GEMM_TILE)
			ck_assert(st_gemm_tile_plan_valid(&route->plan));
	}
	for (size_t i = 0; i < N_SMALL; i++)
		sum += small_shapes[i].count * after[i];
	ck_assert_double_eq_tol(sum, r.routed_s, 1e-9);
	ts_device_close(&dev);
}
END_TEST

/* ---- tunables of Strata's own kernels ----------------------------------------------------------- */

START_TEST(test_tunables_line)
{
	char *dir = temp_cache();
	strata_device_info d = fake_device("3.1");
	st_tune_set set;
	memset(&set, 0, sizeof(set));
	set.has_tunables = true; /* tunables alone make a file */
	set.tunables.v[ST_TUNABLE_VW] = 4;
	set.tunables.v[ST_TUNABLE_WG] = 64;
	set.tunables.v[ST_TUNABLE_DROPOUT_VW] = 8;
	set.tunables.v[ST_TUNABLE_SOFTMAX_WG] = 32;
	set.tunables.v[ST_TUNABLE_UPDATE_WG] = 0;
	char path[4096];
	strata_error err = {0};
	ck_assert_msg(st_tune_store(dir, &d, &set, NULL, path, sizeof(path), &err) == STRATA_OK, "%s", err.message);
	char *text = read_text(path);
	ck_assert_ptr_nonnull(strstr(text, "tunables vw=4 wg=64 dropout_vw=8 softmax_wg=32 update_wg=0\n"));
	st_tune_set back;
	ck_assert_msg(st_tune_load(dir, &d, &back, &err) == STRATA_OK, "%s", err.message);
	ck_assert(back.has_tunables);
	ck_assert_mem_eq(&back.tunables, &set.tunables, sizeof(set.tunables));
	static const char *const bad[][2] = {
		{"vw=4 ", "vw=3 "},          /* not a legal value */
		{"vw=4 ", "vw=4 vw=4 "},     /* repeated */
		{"vw=4 ", ""},               /* missing */
		{"vw=4 ", "vw=4 tile=8 "},   /* unknown */
		{"vw=4 ", "vw=-4 "},
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_edit_refused(dir, &d, path, text, bad[i][0], bad[i][1], "tunables");
	free(text);
	remove_tree(dir);
}
END_TEST

static const char *const cnn_yaml =
	"input: {shape: [10, 10, 16]}\n"
	"layers:\n"
	"  - {type: conv2d, filters: 32, kernel_size: [3, 3], activation: relu}\n"
	"  - {type: maxpool2d, pool_size: [2, 2]}\n"
	"  - {type: dropout, rate: 0.25}\n"
	"  - {type: flatten}\n"
	"  - {type: dense, units: 5, activation: softmax}\n"
	"loss: categorical_crossentropy\n"
	"optimizer: sgd\n";

/* A session keeps the values it was created with; plugins read them through the host. */
START_TEST(test_sessions_keep_their_tunables)
{
	ts_device dev = ts_device_open();
	strata_runtime *rt = dev.rt;
	strata_model *model = ts_model(dev.reg, cnn_yaml);
	st_tunables defaults;
	st_tunables_defaults(&rt->info, &defaults);
	ck_assert_mem_eq(&rt->tunables, &defaults, sizeof(defaults));
	rt->tunables.v[ST_TUNABLE_VW] = 2;
	strata_session *s = NULL;
	strata_error err = {0};
	ck_assert_msg(strata_session_create(rt, model, 4, 1, &s, &err) == STRATA_OK, "%s", err.message);
	rt->tunables.v[ST_TUNABLE_VW] = 8;
	extern const strata_host st_host_api;
	strata_layer *conv = &model->layers[0];
	ck_assert_uint_eq(st_host_api.tunable(conv, "vw", 99), 2);
	ck_assert_uint_eq(st_host_api.tunable(conv, "wg", 99), defaults.v[ST_TUNABLE_WG]);
	ck_assert_uint_eq(st_host_api.tunable(conv, "no_such_tunable", 99), 99);
	strata_session_destroy(s);
	ck_assert_uint_eq(st_host_api.tunable(conv, "vw", 99), 99); /* no session: the plugin's own */
	strata_model_free(model);
	ts_device_close(&dev);
}
END_TEST

/* Every legal value of every tunable computes what the defaults compute (the search's check),
 * and the search leaves a legal set in force. */
START_TEST(test_every_tunable_value_agrees)
{
	ts_device dev = ts_device_open();
	strata_runtime *rt = dev.rt;
	strata_model *model = ts_model(dev.reg, cnn_yaml);
	char *text = NULL;
	size_t len = 0;
	FILE *report = open_memstream(&text, &len);
	st_tunables best;
	double before, after;
	strata_error err = {0};
	ck_assert_msg(st_tune_kernel_tunables(rt, model, 6, 600, report, &best, &before, &after, &err) == STRATA_OK,
	              "%s", err.message);
	fclose(report);
	size_t tried = 0;
	for (const char *p = text; (p = strstr(p, "\n  ")); p++)
		tried++;
	size_t all = 0;
	for (int t = 0; t < ST_TUNABLE_COUNT; t++)
		all += st_tunable_choice_count(t) - 1;
	ck_assert_msg(tried >= all, "%zu of %zu values tried:\n%s", tried, all, text);
	ck_assert_msg(!strstr(text, "DIFFERENT"), "%s", text);
	ck_assert(isfinite(before) && after <= before);
	for (int t = 0; t < ST_TUNABLE_COUNT; t++)
		ck_assert(st_tunable_legal(t, best.v[t]));
	ck_assert_mem_eq(&rt->tunables, &best, sizeof(best));
	free(text);
	strata_model_free(model);
	ts_device_close(&dev);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("tuning");
	TCase *files = tcase_create("files");
	tcase_add_test(files, test_reference_sets_are_legal);
	tcase_add_test(files, test_store_load_round_trip);
	tcase_add_test(files, test_damaged_file_refused);
	tcase_add_test(files, test_other_device_refused);
	tcase_add_test(files, test_routes_round_trip_and_refusals);
	tcase_add_test(files, test_tunables_line);
	suite_add_tcase(s, files);
	TCase *device = tcase_create("device");
	tcase_set_timeout(device, 300);
	tcase_add_test(device, test_runtime_applies_stored_set);
	tcase_add_test(device, test_runtime_ignores_damaged_and_foreign_files);
	tcase_add_test(device, test_records_training_step_shapes);
	tcase_add_loop_test(device, test_records_graph_shapes, 0, (int)(sizeof(graph_cases) / sizeof(graph_cases[0])));
	tcase_add_test(device, test_tunables_on_graph);
	tcase_add_test(device, test_tune_graph);
	tcase_add_test(device, test_wrong_candidate_rejected);
	tcase_add_test(device, test_all_wrong_nothing_wins);
	tcase_add_test(device, test_tiny_tune_winner_correct);
	tcase_add_test(device, test_runtime_follows_routes);
	tcase_add_test(device, test_route_search);
	tcase_add_test(device, test_sessions_keep_their_tunables);
	tcase_add_test(device, test_every_tunable_value_agrees);
	suite_add_tcase(s, device);
	return ts_run(s);
}
