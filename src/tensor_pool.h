/* One device buffer holding several tensors, each reachable as its own sub-buffer, so a single
 * kernel launch can sweep all of them (the optimizer's update of every weight at once). */
#ifndef ST_TENSOR_POOL_H
#define ST_TENSOR_POOL_H

#include "runtime.h"

typedef struct st_pool {
	strata_tensor whole;
	uint64_t elems; /* floats in `whole`, padding included */
} st_pool;

/* Offsets (in floats) for tensors of counts[0..n), each start aligned as sub-buffers require;
 * returns the total. */
uint64_t st_pool_layout(const strata_runtime *rt, const uint64_t *counts, size_t n, uint64_t *offsets);
/* Allocates `elems` floats, zeroed (so padding never disturbs a sweep over the whole pool). */
strata_status st_pool_create(strata_runtime *rt, st_pool *pool, uint64_t elems, const char *what, strata_error *err);
/* A sub-buffer of `count` floats at `offset`; release it with st_tensor_release() before the pool. */
strata_status st_pool_view(strata_runtime *rt, st_pool *pool, uint64_t offset, uint64_t count, strata_tensor *out,
                           strata_error *err);
void st_pool_release(st_pool *pool);

#endif
