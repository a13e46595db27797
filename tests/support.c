#include "support.h"

#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

strata_registry *ts_registry(void)
{
	strata_registry *reg = NULL;
	strata_error err = {0};
	strata_status st = strata_registry_open(NULL, &reg, &err);
	ck_assert_msg(st == STRATA_OK, "registry: %s", err.message);
	return reg;
}

strata_runtime *ts_runtime(strata_registry *reg)
{
	strata_runtime *rt = NULL;
	strata_error err = {0};
	strata_runtime_options opts = {.size = sizeof(opts)};
	opts.device = getenv("STRATA_TEST_DEVICE");
	strata_status st = strata_runtime_create(reg, &opts, &rt, &err);
	ck_assert_msg(st == STRATA_OK, "no usable OpenCL device: %s", err.message);
	return rt;
}

strata_model *ts_model(strata_registry *reg, const char *yaml)
{
	strata_model *m = NULL;
	strata_error err = {0};
	strata_status st = strata_model_load_string(reg, yaml, strlen(yaml), "test.yaml", NULL, &m, &err);
	ck_assert_msg(st == STRATA_OK, "model: %s", err.message);
	return m;
}

strata_model *ts_model_file(strata_registry *reg, const char *relative)
{
	char *path = ts_src_path(relative);
	strata_model *m = NULL;
	strata_error err = {0};
	strata_status st = strata_model_load(reg, path, &m, &err);
	ck_assert_msg(st == STRATA_OK, "%s: %s", path, err.message);
	free(path);
	return m;
}

ts_device ts_device_open(void)
{
	ts_device dev = {.reg = ts_registry()};
	dev.rt = ts_runtime(dev.reg);
	return dev;
}

void ts_device_close(ts_device *dev)
{
	if (!dev)
		return;
	strata_runtime_destroy(dev->rt);
	strata_registry_close(dev->reg);
	*dev = (ts_device){0};
}

ts_net ts_net_open(const ts_device *dev, const char *yaml, uint32_t batch, uint64_t seed)
{
	return ts_net_from(dev, ts_model(dev->reg, yaml), batch, seed);
}

ts_net ts_net_from(const ts_device *dev, strata_model *m, uint32_t batch, uint64_t seed)
{
	ts_net net = {.m = m};
	strata_error err = {0};
	strata_status st = strata_session_create(dev->rt, m, batch, seed, &net.s, &err);
	ck_assert_msg(st == STRATA_OK, "session: %s", err.message);
	return net;
}

void ts_net_close(ts_net *net)
{
	if (!net)
		return;
	strata_session_destroy(net->s);
	strata_model_free(net->m);
	*net = (ts_net){0};
}

char *ts_src_path(const char *relative)
{
	const char *dir = getenv("STRATA_TEST_SRCDIR");
	if (!dir)
		dir = STRATA_TEST_SRCDIR;
	size_t n = strlen(dir) + strlen(relative) + 2;
	char *p = malloc(n);
	ck_assert_ptr_nonnull(p);
	snprintf(p, n, "%s/%s", dir, relative);
	return p;
}

void ts_tmpdir_make(char *dir, size_t size, const char *prefix)
{
	const char *base = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
	snprintf(dir, size, "%s/strata-%s-XXXXXX", base, prefix);
	ck_assert_ptr_nonnull(mkdtemp(dir));
}

void ts_tmpdir_remove(const char *dir)
{
	char cmd[PATH_MAX + 16];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", dir);
}

char *ts_join(const char *dir, const char *name)
{
	size_t n = strlen(dir) + strlen(name) + 2;
	char *p = malloc(n);
	ck_assert_ptr_nonnull(p);
	snprintf(p, n, "%s/%s", dir, name);
	return p;
}

int ts_run(Suite *suite)
{
	SRunner *sr = srunner_create(suite);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

void ts_fill_random(float *dst, size_t n, unsigned seed, float lo, float hi)
{
	uint64_t x = 0x9E3779B97F4A7C15ull ^ seed;
	for (size_t i = 0; i < n; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		dst[i] = lo + (hi - lo) * (float)((x >> 40) / (double)(1ull << 24));
	}
}
