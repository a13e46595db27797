/* Helpers shared by the Check suites. Each ck_asserts on unexpected failure, so a suite stays
 * about the behaviour it names. */
#ifndef TS_SUPPORT_H
#define TS_SUPPORT_H

#include <check.h>
#include <stddef.h>

#include <strata/strata.h>

/* Registry with the build tree's plugins. */
strata_registry *ts_registry(void);
/* Runtime on STRATA_TEST_DEVICE or "auto", with the disk cache in the test cache folder. No
 * device is a failure, never a skip: CI always has PoCL. */
strata_runtime *ts_runtime(strata_registry *reg);
/* Loads a model from YAML text; fails the test with the loader's message on error. */
strata_model *ts_model(strata_registry *reg, const char *yaml);
/* Loads a model from a file under tests/ (say "../models/mnist_cnn.yaml") by its path, so the
 * relative data paths in it resolve from its folder. */
strata_model *ts_model_file(strata_registry *reg, const char *relative);

/* The fixture most device tests start from: a registry and a runtime on the test device (as
 * ts_registry and ts_runtime), and any number of nets on it, each a model and its session. A
 * test that checks what opening the registry or runtime reports opens them itself. */
typedef struct ts_device {
	strata_registry *reg;
	strata_runtime *rt;
} ts_device;

typedef struct ts_net {
	strata_model *m;
	strata_session *s;
} ts_net;

ts_device ts_device_open(void);
/* The runtime, then the registry; NULL, a zeroed or an already closed device is a no-op. Close
 * the nets on it first: a session needs its runtime. */
void ts_device_close(ts_device *dev);
/* A session for batches of up to `batch` samples, weights from `seed`, on the model of `yaml`. */
ts_net ts_net_open(const ts_device *dev, const char *yaml, uint32_t batch, uint64_t seed);
/* The same on a model already loaded (ts_model_file); the net frees it. */
ts_net ts_net_from(const ts_device *dev, strata_model *m, uint32_t batch, uint64_t seed);
/* The session, then the model; NULL, a zeroed or an already closed net is a no-op. */
void ts_net_close(ts_net *net);

/* Path of a file under tests/ in the source tree; returns a static-lifetime-free malloc'd string. */
char *ts_src_path(const char *relative);
/* A fresh folder $TMPDIR/strata-PREFIX-XXXXXX (default /tmp) into dir; removed with all it holds. */
void ts_tmpdir_make(char *dir, size_t size, const char *prefix);
void ts_tmpdir_remove(const char *dir);
/* "dir/name", malloc'd. */
char *ts_join(const char *dir, const char *name);
/* Runs the suite, returns the process exit status. */
int ts_run(Suite *suite);
/* Deterministic pseudo-random floats in [lo, hi). */
void ts_fill_random(float *dst, size_t n, unsigned seed, float lo, float hi);

#endif
