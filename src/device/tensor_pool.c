#include "device/tensor_pool.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

strata_status st_pool_mode_for(const strata_runtime *rt, st_pool_mode *out, strata_error *err)
{
	const char *text = getenv("STRATA_POOL");
	/* Guard mode keeps every tensor in a buffer of its own, between its canaries. */
	if (rt->guard)
		*out = ST_POOL_SEPARATE;
	else if (!text || !*text || strcmp(text, "shared") == 0)
		*out = ST_POOL_SHARED;
	else if (strcmp(text, "separate") == 0)
		*out = ST_POOL_SEPARATE;
	else
		return st_fail(err, STRATA_ERR_INVALID,
		               "STRATA_POOL=%s: expected shared (the default) or separate (a buffer per tensor, for "
		               "memory checkers such as Oclgrind)",
		               text);
	return STRATA_OK;
}

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

/* One launch of cl/core.cl's `fill` or `copy` over n floats, under the profile phase "host":
 * device work standing in for a host write. */
static strata_status launch_core(strata_runtime *rt, const char *kernel, strata_arg first, strata_arg second,
                                 size_t n, strata_error *err)
{
	if (n > INT32_MAX)
		return st_fail(err, STRATA_ERR_OVERFLOW, "%zu floats exceed the '%s' kernel's int indexing", n, kernel);
	strata_kernel *k;
	strata_status st = st_kernel_get(rt, "core", kernel, NULL, &k, err);
	if (st)
		return st;
	strata_arg a[] = {first, second, strata_arg_int((int32_t)n)};
	const char *phase = rt->phase;
	rt->phase = "host";
	st = st_launch(rt, "strata", k, 1, &n, NULL, 3, a, err);
	rt->phase = phase;
	return st;
}

strata_status st_tensor_zero(strata_runtime *rt, st_pool_mode mode, strata_tensor *t, size_t first, size_t count,
                             const char *what, strata_error *err)
{
	size_t floats = t->bytes / sizeof(float);
	if (first > floats || count > floats - first)
		return st_fail(err, STRATA_ERR_INVALID, "zeroing %zu floats at %zu of %s: past its %zu", count, first,
		               what, floats);
	if (count == 0)
		return STRATA_OK;
	if (mode == ST_POOL_SHARED) {
		const float zero = 0.0f;
		cl_int rc = clEnqueueFillBuffer(rt->queue, t->mem, &zero, sizeof(zero), first * sizeof(float),
		                                count * sizeof(float), 0, NULL, NULL);
		return rc == CL_SUCCESS ? STRATA_OK : st_cl_fail(err, rc, "clEnqueueFillBuffer zeroing %s", what);
	}
	/* A kernel's stores are followed one by one, leaving the rest of the buffer as it was. */
	if (first == 0)
		return launch_core(rt, "fill", strata_arg_tensor(t), strata_arg_float(0.0f), count, err);
	/* fill has no offset (the regularization sum behind the loss sums): the whole buffer goes
	 * back from the host, by then wholly written. */
	float *host = malloc(t->bytes);
	if (!host)
		return st_fail(err, STRATA_ERR_NO_MEMORY, "out of memory zeroing %s", what);
	strata_status st = st_tensor_read(rt, t, 0, host, t->bytes, err);
	if (!st) {
		memset(host + first, 0, count * sizeof(float));
		st = st_tensor_write(rt, t, 0, host, t->bytes, err);
	}
	free(host);
	return st;
}

strata_status st_tensor_write_prefix(strata_runtime *rt, st_pool_mode mode, strata_tensor *t, const float *src,
                                     size_t count, strata_tensor *staging, strata_error *err)
{
	size_t bytes = count * sizeof(float);
	if (mode == ST_POOL_SHARED || bytes >= t->bytes || count == 0)
		return st_tensor_write(rt, t, 0, src, bytes, err);
	/* Written from the host into the staging buffer (a checker then knows exactly these floats of
	 * it), then copied by a kernel, so the floats of `t` past `count` keep what a checker knows of
	 * them: uninitialized, if nothing wrote them. The staging buffer lives as long as its owner:
	 * Oclgrind gives a released buffer's number, and what it knew of it, to the next buffer made. */
	strata_status st;
	if (staging->bytes < t->bytes) {
		st_tensor_release(staging);
		if ((st = st_tensor_alloc(rt, staging, t->bytes, "the staging buffer", err)))
			return st;
	}
	if ((st = st_tensor_write(rt, staging, 0, src, bytes, err)))
		return st;
	return launch_core(rt, "copy", strata_arg_tensor(t), strata_arg_tensor(staging), count, err);
}

strata_status st_pool_create(strata_runtime *rt, st_pool *pool, st_pool_mode mode, uint64_t elems, const char *what,
                             strata_error *err)
{
	pool->mode = mode;
	pool->elems = elems;
	snprintf(pool->what, sizeof(pool->what), "%s", what);
	pool->whole.mem = NULL;
	pool->whole.bytes = 0;
	if (mode == ST_POOL_SEPARATE)
		return STRATA_OK;
	strata_status st = st_tensor_alloc(rt, &pool->whole, elems * sizeof(float), what, err);
	if (st || elems == 0)
		return st;
	return st_tensor_zero(rt, mode, &pool->whole, 0, elems, what, err);
}

strata_status st_pool_view(strata_runtime *rt, st_pool *pool, uint64_t offset, uint64_t count, strata_tensor *out,
                           strata_error *err)
{
	if (offset + count > pool->elems)
		return st_fail(err, STRATA_ERR_INVALID, "a view of %llu floats at %llu past a pool of %llu",
		               (unsigned long long)count, (unsigned long long)offset, (unsigned long long)pool->elems);
	if (pool->mode == ST_POOL_SEPARATE) {
		strata_status st = st_tensor_alloc(rt, out, count * sizeof(float), pool->what, err);
		if (!st)
			st = st_tensor_zero(rt, pool->mode, out, 0, count, pool->what, err);
		if (st)
			st_tensor_release(out);
		return st;
	}
	cl_buffer_region region = {.origin = offset * sizeof(float), .size = count * sizeof(float)};
	cl_mem whole = pool->whole.mem;
	size_t front = 0;
	/* A guarded pool is itself a sub-buffer, of which OpenCL makes none: views come from its
	 * parent, past the front canary, and are checked with the pool's canaries. */
	if (st_guard_parent(rt, whole, &whole, &front))
		region.origin += front;
	cl_int rc;
	out->mem = clCreateSubBuffer(whole, CL_MEM_READ_WRITE, CL_BUFFER_CREATE_TYPE_REGION, &region, &rc);
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
