#include "tensor_pool.h"

uint64_t st_pool_layout(const strata_runtime *rt, const uint64_t *counts, size_t n, uint64_t *offsets)
{
	uint64_t align = rt->base_align_bytes / sizeof(float);
	align = align ? align : 1;
	uint64_t at = 0;
	for (size_t i = 0; i < n; i++) {
		at = (at + align - 1) / align * align;
		offsets[i] = at;
		at += counts[i];
	}
	return at;
}

strata_status st_pool_create(strata_runtime *rt, st_pool *pool, uint64_t elems, const char *what, strata_error *err)
{
	pool->elems = elems;
	strata_status st = st_tensor_alloc(rt, &pool->whole, elems * sizeof(float), what, err);
	if (st || elems == 0)
		return st;
	const float zero = 0.0f;
	cl_int rc = clEnqueueFillBuffer(rt->queue, pool->whole.mem, &zero, sizeof(zero), 0, elems * sizeof(float), 0,
	                                NULL, NULL);
	return rc == CL_SUCCESS ? STRATA_OK : st_cl_fail(err, rc, "clEnqueueFillBuffer for %s", what);
}

strata_status st_pool_view(strata_runtime *rt, st_pool *pool, uint64_t offset, uint64_t count, strata_tensor *out,
                           strata_error *err)
{
	(void)rt;
	if (offset + count > pool->elems)
		return st_fail(err, STRATA_ERR_INVALID, "a view of %llu floats at %llu past a pool of %llu",
		               (unsigned long long)count, (unsigned long long)offset, (unsigned long long)pool->elems);
	cl_buffer_region region = {.origin = offset * sizeof(float), .size = count * sizeof(float)};
	cl_int rc;
	out->mem = clCreateSubBuffer(pool->whole.mem, CL_MEM_READ_WRITE, CL_BUFFER_CREATE_TYPE_REGION, &region, &rc);
	if (rc != CL_SUCCESS) {
		out->mem = NULL;
		return st_cl_fail(err, rc, "clCreateSubBuffer of %llu floats at %llu", (unsigned long long)count,
		                  (unsigned long long)offset);
	}
	out->bytes = region.size;
	return STRATA_OK;
}

void st_pool_release(st_pool *pool)
{
	st_tensor_release(&pool->whole);
	pool->elems = 0;
}
