/* One device buffer holding several tensors, each reachable as its own sub-buffer, so a single
 * kernel launch can sweep all of them (the optimizer's update of every weight at once). */
#ifndef ST_TENSOR_POOL_H
#define ST_TENSOR_POOL_H

#include "device/runtime.h"

/* How a session lays out and zeroes its pooled tensors; STRATA_POOL chooses.
 *
 * ST_POOL_SHARED ("shared", the default): one buffer per pool, each tensor a sub-buffer of it,
 * zeroed with clEnqueueFillBuffer; the optimizer updates every weight in one launch.
 *
 * ST_POOL_SEPARATE ("separate"): one buffer per tensor, the optimizer launched once per tensor,
 * and no write from the host that covers only part of a buffer: zeroes come from a kernel and a
 * partial batch goes through a buffer of its own. Slower, and only for memory checkers: Oclgrind
 * 21.10's --uninitialized handles every store from the host (clEnqueueWriteBuffer, and each
 * pattern-sized store of clEnqueueFillBuffer) by replacing what it knows of the whole underlying
 * buffer with the stored range alone, so a write through a sub-buffer (weights, checkpoints), a
 * fill or a partial batch makes it forget what was initialized around it, and every later read of
 * that is reported. Kernel stores and whole-buffer writes are followed exactly, and a buffer per
 * tensor also lets Oclgrind bound each tensor's accesses on its own. tests/oclgrind.sh runs in
 * this mode. */
typedef enum st_pool_mode { ST_POOL_SHARED, ST_POOL_SEPARATE } st_pool_mode;

/* The mode STRATA_POOL asks for; unset or empty is ST_POOL_SHARED, an unknown value an error.
 * A guarded runtime (rt->guard: buffers.c) makes it ST_POOL_SEPARATE whatever STRATA_POOL says. */
strata_status st_pool_mode_for(const strata_runtime *rt, st_pool_mode *out, strata_error *err);

typedef struct st_pool {
	st_pool_mode mode;
	strata_tensor whole; /* ST_POOL_SHARED only */
	uint64_t elems;      /* floats in `whole`, padding included; the layout's total when separate */
	char what[64];       /* for messages about the views of a separate pool */
} st_pool;

/* Offsets (in floats) for tensors of counts[0..n), each start aligned as sub-buffers require;
 * returns the total. */
uint64_t st_pool_layout(const strata_runtime *rt, const uint64_t *counts, size_t n, uint64_t *offsets);
/* Allocates `elems` floats, zeroed (so padding never disturbs a sweep over the whole pool); a
 * separate pool allocates nothing until its views. */
strata_status st_pool_create(strata_runtime *rt, st_pool *pool, st_pool_mode mode, uint64_t elems, const char *what,
                             strata_error *err);
/* `count` floats at `offset`, zeroed when the pool was created or separate; release it with
 * st_tensor_release() before the pool. */
strata_status st_pool_view(strata_runtime *rt, st_pool *pool, uint64_t offset, uint64_t count, strata_tensor *out,
                           strata_error *err);
void st_pool_release(st_pool *pool);

/* Zeroes floats [first, first + count) of `t` (`what`, for messages). ST_POOL_SEPARATE launches
 * cl/core.cl's fill instead of clEnqueueFillBuffer, for the reason above. */
strata_status st_tensor_zero(strata_runtime *rt, st_pool_mode mode, strata_tensor *t, size_t first, size_t count,
                             const char *what, strata_error *err);
/* Writes count floats from the host to the start of `t`, which may be larger (a batch smaller
 * than the session's largest). ST_POOL_SEPARATE writes them to `staging` (grown to t's size,
 * released by the caller with its other buffers) and copies them with a kernel: a partial write
 * from the host would make a checker forget the rest of `t`. */
strata_status st_tensor_write_prefix(strata_runtime *rt, st_pool_mode mode, strata_tensor *t, const float *src,
                                     size_t count, strata_tensor *staging, strata_error *err);

#endif
