/* The GEMM tuner's state, shared by its two searches: CLBlast's kernel parameters (tuner.c) and
 * the per-shape choice between CLBlast and Strata's own kernel (tuner_routes.c). */
#ifndef ST_TUNER_PRIVATE_H
#define ST_TUNER_PRIVATE_H

#include <stdio.h>

#include "tune/tuning.h"

#define GUARD 1024        /* floats either side of C that no kernel may touch */
#define FILL_C 0.5f       /* never an integer: an element left unwritten cannot pass */
#define FILL_GUARD 0.25f
#define MAX_CANDIDATES 1024

enum family { FAM_INDIRECT, FAM_DIRECT, FAM_COUNT };
enum outcome { OUT_OK, OUT_SLOWER, OUT_WRONG, OUT_FAILED };

typedef struct cand {
	int family;
	st_tune_set set; /* everything applied while it ran */
	double *t;       /* seconds per shape; INFINITY where not measured */
	enum outcome outcome;
} cand;

typedef struct tuner {
	strata_runtime *rt;
	const st_tuner_config *cfg;
	size_t n;        /* shapes */
	double *w;       /* calls per step */
	double *flops;   /* 2mnk */
	size_t *order;   /* shapes, heaviest first, so a slow candidate stops early */
	cl_mem a, b, c;
	cl_mem c_inner;  /* c past its front guard: GEMMs write here at offset 0, as the layers do */
	float *ha, *hb, *hc;
	float amp;       /* input magnitude: sums stay exact in float */
	double deadline;
	uint64_t rng;
	cand *cands;
	size_t n_cands;
	st_tune_set base; /* values for every kernel a candidate does not set */
	st_tuner_result *res;
	const st_gemm_tile_plan *tile; /* set: runs use Strata's kernel with this plan, not CLBlast */
} tuner;

/* tuner_measure.c */
/* Seconds on a monotonic clock. */
double st_tuner_now(void);
/* xorshift64: the tuner's reproducible random numbers. */
uint64_t st_tuner_rand(uint64_t *state);
/* The host and device matrices for the largest of the shapes, with small-integer inputs. */
strata_status st_tuner_setup_buffers(tuner *t, strata_error *err);
/* A line for the user, when the configuration has a report stream. */
void st_tuner_report(const tuner *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The fastest of up to `runs` runs of shape s with what is in force (t->tile, else CLBlast);
 * false when a run failed. */
bool st_tuner_time_shape(tuner *t, const st_gemm_shape *s, double known, int runs, double spend, double *best);
/* Runs shape si once into a freshly marked C and checks the whole result exactly. */
strata_status st_tuner_run_checked(tuner *t, const cand *c, size_t si, bool *ran, bool *ok, strata_error *err);

/* tuner_kernels.c: defined values for a training step of session s, whatever the graph: every
 * model input (pseudo-random floats; zeros, valid ids, for an int32 input) and the gradient of
 * every model output (pseudo-random), so no layer meets NaNs or indices nobody wrote. */
strata_status st_tuner_feed_step(strata_session *s, strata_error *err);

/* tuner_routes.c: for each shape, the fastest verified plan of Strata's kernel against CLBlast
 * with the parameters in force, within `budget` seconds; fills t->res's routes. */
strata_status st_tuner_search_routes(tuner *t, double budget, strata_error *err);

#endif
