/* Tuned CLBlast SGEMM parameters: the kernels and parameters CLBlast 1.5 lets us override, their
 * legal values, the per-device file in the cache folder, and applying a set to the device.
 * tuner.c searches; this file only knows what a parameter set is and where it lives. */
#ifndef ST_TUNING_H
#define ST_TUNING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "gemm/gemm.h"
#include "device/runtime.h"

/* The kernels behind CLBlastSgemm, as CLBlast's database names them. */
enum st_tune_kernel {
	ST_TK_XGEMM,        /* the indirect path's main kernel */
	ST_TK_DIRECT,       /* the direct path (one kernel, any shape) */
	ST_TK_COPY,         /* indirect path helpers: copying, padding and transposing A, B and C */
	ST_TK_PAD,
	ST_TK_TRANSPOSE,
	ST_TK_PADTRANSPOSE,
	ST_TK_ROUTINE,      /* XGEMM_MIN_INDIRECT_SIZE: direct below m*n*k = value^3 */
	ST_TK_COUNT
};

#define ST_TUNE_MAX_PARAMS 16
/* Shapes a file routes: a network runs a few GEMM shapes per layer. */
#define ST_TUNE_MAX_ROUTES 64
/* A switch point above any shape: every GEMM takes the direct path. */
#define ST_TUNE_ALWAYS_DIRECT 1048576u

/* A full or partial parameter set: kernels whose bit is in `present` are overridden with v[k],
 * the others keep CLBlast's own values. */
typedef struct st_tune_set {
	uint32_t present;
	size_t v[ST_TK_COUNT][ST_TUNE_MAX_PARAMS];
	size_t n_routes; /* per-shape engine choices (gemm.h), from `gemm` lines */
	st_gemm_route routes[ST_TUNE_MAX_ROUTES];
	bool has_tunables; /* Strata's kernels' launch-time tunables, from the `tunables` line */
	st_tunables tunables;
} st_tune_set;

const char *st_tune_kernel_name(int kernel);
size_t st_tune_param_count(int kernel);
const char *st_tune_param_name(int kernel, size_t i);

/* Every value in the kernel's list of legal values and the kernel's constraints met (tile
 * sizes dividing evenly, local memory and work-group size within the device's limits). */
bool st_tune_valid(int kernel, const size_t *values, const strata_device_info *dev);
/* A legal set CLBlast ships for CPUs; the start of every search and the fallback after it. */
void st_tune_reference(int kernel, size_t *values);
/* Count of legal values for parameter i of `kernel`, and the j-th of them. */
size_t st_tune_choice_count(int kernel, size_t i);
size_t st_tune_choice(int kernel, size_t i, size_t j);

/* Overrides the set's kernels for the runtime's device (process-wide in CLBlast, until the
 * process ends or another set replaces them) and gives the runtime the set's routes and
 * tunables (for sessions created after). */
strata_status st_tune_apply(strata_runtime *rt, const st_tune_set *set, strata_error *err);

/* "$cache_dir/tuning" or "$XDG_CACHE_HOME/strata/tuning" (else ~/.cache/strata/tuning). */
strata_status st_tune_dir(const char *cache_dir, char *buf, size_t size, strata_error *err);
/* The device's file in that folder: its name shows the device, its hash the full key. */
strata_status st_tune_path(const char *cache_dir, const strata_device_info *dev, char *buf, size_t size,
                           strata_error *err);

/* The file's text: the key (platform, device, driver), one line per present kernel, `note`
 * lines (how it was measured), and a checksum. *out freed with free(). */
strata_status st_tune_format(const st_tune_set *set, const strata_device_info *dev, const char *note,
                             char **out, strata_error *err);
/* Reads text written by st_tune_format. STRATA_ERR_PARSE: damaged or illegal values;
 * STRATA_ERR_INVALID: written for another platform, device or driver. */
strata_status st_tune_parse(const char *text, size_t len, const strata_device_info *dev, st_tune_set *out,
                            strata_error *err);

/* Writes the set atomically to the device's file; `path` (may be NULL) receives its name. */
strata_status st_tune_store(const char *cache_dir, const strata_device_info *dev, const st_tune_set *set,
                            const char *note, char *path, size_t path_size, strata_error *err);
/* STRATA_ERR_NOT_FOUND when the device has no file; st_tune_parse's statuses otherwise. */
strata_status st_tune_load(const char *cache_dir, const strata_device_info *dev, st_tune_set *out,
                           strata_error *err);

/* strata_runtime_create's hook: loads and applies the device's stored set. A missing file is an
 * info line, a damaged or foreign one a warning; neither fails the runtime. */
void st_tune_apply_stored(strata_runtime *rt, const char *cache_dir);

/* ---- recording the GEMMs of a training step (through the runtime's GEMM observer) -------- */

typedef struct st_gemm_shape {
	bool trans_a, trans_b;
	size_t m, n, k;
	uint32_t count; /* calls per recorded step */
} st_gemm_shape;

typedef struct st_gemm_log {
	st_gemm_shape *shapes;
	size_t n, cap;
	bool out_of_memory;
} st_gemm_log;

void st_gemm_log_add(st_gemm_log *log, const strata_gemm *g);
void st_gemm_log_free(st_gemm_log *log);

/* ---- the search (tuner.c) -------------------------------------------------------------------- */

/* Test hook: sees every candidate's result before it is checked and may change it. */
typedef void (*st_tune_result_hook)(void *user, const st_tune_set *candidate, const st_gemm_shape *shape,
                                    float *c, size_t count);

typedef struct st_tuner_config {
	const st_gemm_shape *shapes; /* with their counts as weights */
	size_t n_shapes;
	double budget_seconds;
	uint64_t seed;
	FILE *report;                 /* may be NULL */
	const st_tune_set *incumbent; /* the stored set in force, tried first; may be NULL */
	st_tune_result_hook hook;
	void *hook_user;
	double *before_t, *after_t;   /* n_shapes seconds each, filled when not NULL */
	size_t max_candidates;        /* 0: as many as the budget allows */
	double route_seconds;         /* then per shape Strata's kernel or CLBlast (0: not searched) */
} st_tuner_config;

typedef struct st_tuner_result {
	st_tune_set best;     /* verified; applied when `improved` */
	bool improved;        /* faster than the parameters in force before the search */
	double before_s, after_s; /* weighted GEMM time per step */
	uint32_t tried, rejected, failed;
	/* Per shape, the engine that won (tuner_routes.c), and the step's GEMM time with them. */
	size_t n_routes;
	st_gemm_route routes[ST_TUNE_MAX_ROUTES];
	double routed_s;
	double current_s; /* and with the engines in force before (CLBlast with its new parameters) */
} st_tuner_result;

/* Searches within the budget (the first candidate always runs), verifying each candidate's
 * results exactly before it may win, and leaves the best verified combination applied even
 * when it is not faster than what was in force before (CLBlast cannot restore its own values
 * once overridden; the caller stores the set only when `improved`). */
strata_status st_tuner_run(strata_runtime *rt, const st_tuner_config *cfg, st_tuner_result *out,
                           strata_error *err);

/* Runs one training step of `model` at `batch` (forward and backward from every output, on
 * defined values in every input: st_tuner_feed_step) with st_gemm recording every shape into
 * `log`, once per distinct shape with its calls counted. The model must not be bound to a
 * session. */
strata_status st_tune_record(strata_runtime *rt, strata_model *model, uint32_t batch, st_gemm_log *log,
                             strata_error *err);

/* tuner_kernels.c: the launch-time tunables of Strata's kernels for `model`'s training step at
 * `batch`, one at a time over their legal values within `budget` seconds; a value wins only
 * when its output, weight gradients and updated weights match the values in force and it is
 * faster. *best is
 * left in force in rt (for sessions created after); the step's time before and after. */
strata_status st_tune_kernel_tunables(strata_runtime *rt, strata_model *model, uint32_t batch, double budget,
                                      FILE *report, st_tunables *best, double *before_s, double *after_s,
                                      strata_error *err);

#endif
