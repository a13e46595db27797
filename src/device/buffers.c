/* Device buffers of the runtime: allocation within the device's limits, and blocking reads and
 * writes that check their range. */
#include "device/runtime.h"

strata_status st_tensor_alloc(strata_runtime *rt, strata_tensor *t, size_t bytes, const char *what,
                              strata_error *err)
{
	t->mem = NULL;
	t->bytes = bytes;
	if (bytes == 0)
		return STRATA_OK;
	if (bytes > rt->info.max_alloc_bytes)
		return st_fail(err, STRATA_ERR_DEVICE_MEMORY,
		               "%s needs %zu bytes in one buffer, more than %s allows (%llu); try a smaller --batch-size",
		               what, bytes, rt->info.name, (unsigned long long)rt->info.max_alloc_bytes);
	cl_int rc;
	t->mem = clCreateBuffer(rt->context, CL_MEM_READ_WRITE, bytes, NULL, &rc);
	if (rc != CL_SUCCESS) {
		t->mem = NULL;
		return st_cl_fail(err, rc, "allocating %zu bytes for %s", bytes, what);
	}
	return STRATA_OK;
}

void st_tensor_release(strata_tensor *t)
{
	if (t->mem)
		clReleaseMemObject(t->mem);
	t->mem = NULL;
	t->bytes = 0;
}

strata_status st_tensor_write(strata_runtime *rt, strata_tensor *t, size_t offset, const void *src, size_t bytes,
                              strata_error *err)
{
	if (offset > t->bytes || bytes > t->bytes - offset)
		return st_fail(err, STRATA_ERR_INVALID, "write of %zu bytes at %zu past a %zu-byte buffer", bytes, offset,
		               t->bytes);
	if (bytes == 0)
		return STRATA_OK;
	cl_int rc = clEnqueueWriteBuffer(rt->queue, t->mem, CL_TRUE, offset, bytes, src, 0, NULL, NULL);
	return rc == CL_SUCCESS ? STRATA_OK : st_cl_fail(err, rc, "clEnqueueWriteBuffer of %zu bytes", bytes);
}

strata_status st_tensor_read(strata_runtime *rt, strata_tensor *t, size_t offset, void *dst, size_t bytes,
                             strata_error *err)
{
	if (offset > t->bytes || bytes > t->bytes - offset)
		return st_fail(err, STRATA_ERR_INVALID, "read of %zu bytes at %zu past a %zu-byte buffer", bytes, offset,
		               t->bytes);
	if (bytes == 0)
		return STRATA_OK;
	cl_int rc = clEnqueueReadBuffer(rt->queue, t->mem, CL_TRUE, offset, bytes, dst, 0, NULL, NULL);
	return rc == CL_SUCCESS ? STRATA_OK : st_cl_fail(err, rc, "clEnqueueReadBuffer of %zu bytes", bytes);
}
