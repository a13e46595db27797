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
