/* Device buffers of the runtime: allocation within the device's limits (guarded by canaries in
 * guard mode), and blocking reads and writes that check their range. */
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "device/runtime.h"

/* ---- Guard mode ------------------------------------------------------------------------------
 * A guarded tensor of `bytes` is a sub-buffer at offset `front` of a buffer of its own:
 * [front canary][the tensor][the rest of its size rounded up to the alignment][back canary],
 * every byte of the buffer first written with the pattern (one whole-buffer write). Kernels see
 * the sub-buffer, starting at offset 0; a store past either end lands in a canary, which the
 * check after each launch reads back. A record lives until its sub-buffer is deleted (OpenCL's
 * destructor callback clears `alive`, possibly from the driver's thread, and touches nothing
 * else), then goes at the next guarded allocation or with the runtime. */

#define GUARD_PATTERN 0x7FBADBADu /* a signalling NaN: no arithmetic produces it */
#define GUARD_CANARY_BYTES 256u

typedef struct st_guard_entry {
	atomic_bool alive;
	cl_mem sub;    /* the tensor, as kernels see it (not retained) */
	cl_mem parent; /* retained until the record goes */
	size_t front;  /* bytes before the tensor */
	size_t bytes;  /* the tensor's */
	size_t total;  /* the parent's */
	char what[120];
} st_guard_entry;

static void CL_CALLBACK guard_gone(cl_mem mem, void *user)
{
	(void)mem;
	atomic_store(&((st_guard_entry *)user)->alive, false);
}

static void guard_free(st_guard_entry *e)
{
	if (e->parent)
		clReleaseMemObject(e->parent);
	free(e);
}

/* Frees the records of deleted tensors and makes room for one more. */
static strata_status guard_make_room(strata_runtime *rt, strata_error *err)
{
	size_t kept = 0;
	for (size_t i = 0; i < rt->n_guards; i++) {
		if (atomic_load(&rt->guards[i]->alive))
			rt->guards[kept++] = rt->guards[i];
		else
			guard_free(rt->guards[i]);
	}
	rt->n_guards = kept;
	if (rt->n_guards < rt->cap_guards)
		return STRATA_OK;
	size_t cap = rt->cap_guards ? rt->cap_guards * 2 : 64;
	st_guard_entry **grown = realloc(rt->guards, cap * sizeof(*grown));
	if (!grown)
		return st_fail(err, STRATA_ERR_NO_MEMORY, "out of memory");
	rt->guards = grown;
	rt->cap_guards = cap;
	return STRATA_OK;
}

static uint8_t pattern_byte(size_t offset)
{
	return (uint8_t)(GUARD_PATTERN >> (8 * (offset % 4)));
}

static strata_status guard_alloc(strata_runtime *rt, strata_tensor *t, size_t bytes, const char *what,
                                 strata_error *err)
{
	size_t align = rt->base_align_bytes > 4 ? rt->base_align_bytes : 4;
	size_t front = (GUARD_CANARY_BYTES + align - 1) / align * align;
	if (bytes > SIZE_MAX - 2 * front - align)
		return st_fail(err, STRATA_ERR_DEVICE_MEMORY, "%s: %zu bytes do not fit a guarded buffer", what, bytes);
	size_t body = (bytes + align - 1) / align * align, total = front + body + front;
	if (total > rt->info.max_alloc_bytes)
		return st_fail(err, STRATA_ERR_DEVICE_MEMORY,
		               "%s needs %zu bytes in one buffer with the guard's canaries, more than %s allows (%llu); "
		               "try a smaller --batch-size",
		               what, total, rt->info.name, (unsigned long long)rt->info.max_alloc_bytes);
	strata_status st = guard_make_room(rt, err);
	if (st)
		return st;
	st_guard_entry *e = calloc(1, sizeof(*e));
	uint8_t *fill = malloc(total);
	if (!e || !fill) {
		free(e);
		free(fill);
		return st_fail(err, STRATA_ERR_NO_MEMORY, "out of memory allocating %s", what);
	}
	atomic_init(&e->alive, false);
	e->front = front;
	e->bytes = bytes;
	e->total = total;
	snprintf(e->what, sizeof(e->what), "%s", what);
	for (size_t i = 0; i < total; i++)
		fill[i] = pattern_byte(i);
	cl_int rc;
	e->parent = clCreateBuffer(rt->context, CL_MEM_READ_WRITE, total, NULL, &rc);
	if (rc != CL_SUCCESS) {
		e->parent = NULL;
		st = st_cl_fail(err, rc, "allocating %zu bytes for %s (guarded)", total, what);
		goto out_fail;
	}
	rc = clEnqueueWriteBuffer(rt->queue, e->parent, CL_TRUE, 0, total, fill, 0, NULL, NULL);
	if (rc != CL_SUCCESS) {
		st = st_cl_fail(err, rc, "clEnqueueWriteBuffer of the guard's canaries around %s", what);
		goto out_fail;
	}
	cl_buffer_region region = {.origin = front, .size = bytes};
	e->sub = clCreateSubBuffer(e->parent, CL_MEM_READ_WRITE, CL_BUFFER_CREATE_TYPE_REGION, &region, &rc);
	if (rc != CL_SUCCESS) {
		e->sub = NULL;
		st = st_cl_fail(err, rc, "clCreateSubBuffer of %zu bytes at %zu for %s (guarded)", bytes, front, what);
		goto out_fail;
	}
	atomic_store(&e->alive, true);
	rc = clSetMemObjectDestructorCallback(e->sub, guard_gone, e);
	if (rc != CL_SUCCESS) {
		clReleaseMemObject(e->sub);
		st = st_cl_fail(err, rc, "clSetMemObjectDestructorCallback for %s (guarded)", what);
		goto out_fail;
	}
	free(fill);
	rt->guards[rt->n_guards++] = e;
	t->mem = e->sub;
	return STRATA_OK;

out_fail:
	free(fill);
	guard_free(e);
	return st;
}

static st_guard_entry *guard_find(const strata_runtime *rt, cl_mem mem, bool by_parent)
{
	for (size_t i = rt->n_guards; i-- > 0;) {
		st_guard_entry *e = rt->guards[i];
		if (atomic_load(&e->alive) && (by_parent ? e->parent : e->sub) == mem)
			return e;
	}
	return NULL;
}

bool st_guard_parent(const strata_runtime *rt, cl_mem mem, cl_mem *parent, size_t *front)
{
	const st_guard_entry *e = rt->guard && mem ? guard_find(rt, mem, false) : NULL;
	if (!e)
		return false;
	*parent = e->parent;
	*front = e->front;
	return true;
}

void st_guard_release(strata_runtime *rt)
{
	for (size_t i = 0; i < rt->n_guards; i++)
		guard_free(rt->guards[i]);
	free(rt->guards);
	rt->guards = NULL;
	rt->n_guards = rt->cap_guards = 0;
}

/* The first byte of [from, to) of a guarded parent that is not the pattern, searching upwards (or
 * downwards); SIZE_MAX when none. */
static size_t first_changed(const uint8_t *got, size_t from, size_t to, bool down)
{
	for (size_t n = 0; n < to - from; n++) {
		size_t off = down ? to - 1 - n : from + n;
		if (got[off - from] != pattern_byte(off))
			return off;
	}
	return SIZE_MAX;
}

/* Reads both canaries of `e`; *bad is the first changed byte's offset in the parent, SIZE_MAX
 * when both hold the pattern. */
static strata_status guard_read(strata_runtime *rt, st_guard_entry *e, size_t *bad, strata_error *err)
{
	size_t back = e->front + e->bytes, n_back = e->total - back;
	uint8_t *got = malloc(e->front > n_back ? e->front : n_back);
	if (!got)
		return st_fail(err, STRATA_ERR_NO_MEMORY, "out of memory checking the canaries of %s", e->what);
	*bad = SIZE_MAX;
	/* Before the tensor: the changed byte nearest to it first; then after it, nearest first. */
	cl_int rc = clEnqueueReadBuffer(rt->queue, e->parent, CL_TRUE, 0, e->front, got, 0, NULL, NULL);
	if (rc == CL_SUCCESS)
		*bad = first_changed(got, 0, e->front, true);
	if (rc == CL_SUCCESS && *bad == SIZE_MAX) {
		rc = clEnqueueReadBuffer(rt->queue, e->parent, CL_TRUE, back, n_back, got, 0, NULL, NULL);
		if (rc == CL_SUCCESS)
			*bad = first_changed(got, back, e->total, false);
	}
	free(got);
	return rc == CL_SUCCESS ? STRATA_OK : st_cl_fail(err, rc, "clEnqueueReadBuffer of the canaries of %s", e->what);
}

strata_status st_guard_check(strata_runtime *rt, const char *label, const strata_kernel *k, uint32_t n_args,
                             const strata_arg *args, strata_error *err)
{
	for (uint32_t i = 0; i < n_args; i++) {
		if (args[i].kind != STRATA_ARG_TENSOR || !args[i].v.tensor || !args[i].v.tensor->mem)
			continue;
		cl_mem mem = args[i].v.tensor->mem;
		bool seen = false;
		for (uint32_t j = 0; j < i && !seen; j++)
			seen = args[j].kind == STRATA_ARG_TENSOR && args[j].v.tensor && args[j].v.tensor->mem == mem;
		if (seen)
			continue;
		st_guard_entry *e = guard_find(rt, mem, false);
		if (!e) {
			/* A view of a pool guarded as a whole (STRATA_POOL=shared): the pool's canaries. */
			cl_mem parent = NULL;
			cl_int rc = clGetMemObjectInfo(mem, CL_MEM_ASSOCIATED_MEMOBJECT, sizeof(parent), &parent, NULL);
			if (rc != CL_SUCCESS)
				return st_cl_fail(err, rc, "clGetMemObjectInfo(CL_MEM_ASSOCIATED_MEMOBJECT) of argument %u of kernel '%s'",
				                  i, k->name);
			if (!parent || !(e = guard_find(rt, parent, true)))
				continue;
		}
		size_t bad;
		strata_status st = guard_read(rt, e, &bad, err);
		if (st)
			return st;
		if (bad == SIZE_MAX)
			continue;
		bool before = bad < e->front;
		bool floats = e->bytes % 4 == 0;
		size_t unit = floats ? 4 : 1;
		long long at = before ? -(long long)((e->front - bad + unit - 1) / unit)
		                      : (long long)((bad - e->front) / unit);
		char where[64];
		if (before)
			snprintf(where, sizeof(where), "%lld before its start", -at);
		else
			snprintf(where, sizeof(where), "%lld past its end", at - (long long)(e->bytes / unit) + 1);
		/* Canaries back to the pattern, so a caller that goes on reports the next write afresh. */
		uint8_t *fill = malloc(e->total);
		if (fill) {
			for (size_t b = 0; b < e->total; b++)
				fill[b] = pattern_byte(b);
			clEnqueueWriteBuffer(rt->queue, e->parent, CL_TRUE, 0, e->front, fill, 0, NULL, NULL);
			clEnqueueWriteBuffer(rt->queue, e->parent, CL_TRUE, e->front + e->bytes, e->total - e->front - e->bytes,
			                     fill + e->front + e->bytes, 0, NULL, NULL);
			free(fill);
		}
		return st_fail(err, STRATA_ERR_PLUGIN,
		               "guard: kernel '%s' (program '%s' of plugin %s), launched by layer %s, wrote out of bounds "
		               "of argument %u (%s, %zu %s): first at %s %lld (%s)",
		               k->name, st_kernel_program_name(k), st_kernel_program_owner(k), label, i, e->what,
		               e->bytes / unit, floats ? "floats" : "bytes", floats ? "element" : "byte", at, where);
	}
	return STRATA_OK;
}

static strata_status plain_alloc(strata_runtime *rt, strata_tensor *t, size_t bytes, const char *what,
                                 strata_error *err)
{
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

strata_status st_tensor_alloc(strata_runtime *rt, strata_tensor *t, size_t bytes, const char *what,
                              strata_error *err)
{
	t->mem = NULL;
	t->bytes = bytes;
	t->held = NULL;
	if (bytes == 0)
		return STRATA_OK;
	strata_status st = rt->guard ? guard_alloc(rt, t, bytes, what, err) : plain_alloc(rt, t, bytes, what, err);
	if (st == STRATA_OK) {
		t->held = &rt->memory_held;
		atomic_fetch_add(t->held, bytes);
	}
	return st;
}

void st_tensor_release(strata_tensor *t)
{
	if (t->mem) {
		clReleaseMemObject(t->mem);
		if (t->held)
			atomic_fetch_sub(t->held, t->bytes);
	}
	t->mem = NULL;
	t->bytes = 0;
	t->held = NULL;
}

uint64_t strata_runtime_memory_bytes(const strata_runtime *rt)
{
	return rt ? atomic_load(&((strata_runtime *)rt)->memory_held) : 0;
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
