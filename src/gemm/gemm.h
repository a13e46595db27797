/* Which SGEMM runs a strata_gemm: CLBlast (GPUs, and wherever tuning says so) or Strata's own
 * register-blocked kernel (gemm_tile.c, cl/gemm.cl), which is faster on CPU drivers. */
#ifndef ST_GEMM_H
#define ST_GEMM_H

#include "device/runtime.h"

/* Partial products of split GEMMs are kept only while they stay small next to the GEMM's
 * inputs; more splits than this never paid. */
#define ST_GEMM_MAX_PARTIAL_FLOATS (16u << 20)
#define ST_GEMM_MAX_SPLITS 128u

/* A block of MR rows by 16 * NV columns per work-item, and K cut into `splits` parts whose
 * partial products a reduction adds. */
typedef struct st_gemm_tile_plan {
	unsigned mr, nv, splits;
} st_gemm_tile_plan;

/* Limits a plan must keep (a tuner's or a file's): MR 1 to 16, NV 1 to 4, 1 to 128 splits. */
bool st_gemm_tile_plan_valid(const st_gemm_tile_plan *p);

/* What `strata tune` measured best for one shape: which engine, and its plan when it is
 * Strata's. Shapes without a route take the device's default engine and plan. */
typedef struct st_gemm_route {
	bool trans_a, trans_b;
	size_t m, n, k;
	int engine; /* ST_GEMM_CLBLAST or ST_GEMM_TILE */
	st_gemm_tile_plan plan;
} st_gemm_route;

/* The route among routes[0..n) for a GEMM of this shape, or NULL. */
const st_gemm_route *st_gemm_route_find(const st_gemm_route *routes, size_t n, bool trans_a, bool trans_b,
                                        size_t m, size_t cols, size_t k);

/* The plan measured best for this shape's kind under PoCL on a device with `lanes` floats in its
 * native vector (the runtime's float_lanes): on a 2-core AVX-512 Xeon (16, and 0 for unknown),
 * on a 2-core AVX2 EPYC (8; fewer take its rows halved). */
void st_gemm_tile_default_plan(const strata_gemm *g, unsigned lanes, st_gemm_tile_plan *p);
/* Whether every index the kernels compute for g fits an int (else CLBlast runs it). */
bool st_gemm_tile_fits(const strata_gemm *g);
/* Whether g's a_window describes an im2col matrix of g's shape (gemm_tile reads it in place). */
bool st_gemm_window_valid(const strata_gemm *g);
/* The engine st_gemm runs g with, and the tuned plan when Strata's kernel has one (else NULL). */
int st_gemm_engine_for(const strata_runtime *rt, const strata_gemm *g, const st_gemm_tile_plan **plan);
/* What g computes (2mnk) and the least it moves: A, B, and C written (`c_copies` times, the
 * partial products of a split GEMM) and read where beta is not 0. For the profile's rates. */
void st_gemm_cost(const strata_gemm *g, size_t c_copies, uint64_t *flops, uint64_t *bytes);
/* Enqueues g with `plan` (NULL: the default plan) and the epilogue `ep` (NULL: none). */
strata_status st_gemm_tile_run(strata_runtime *rt, const char *label, const strata_gemm *g,
                               const st_gemm_tile_plan *plan, const st_gemm_epilogue *ep, strata_error *err);

#endif
