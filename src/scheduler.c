/* The scheduler: device buffers, kernel launches and GEMMs (CLBlast's or gemm_tile.c's) on the
 * runtime's queue, with every launch optionally timed through a profiling event attributed to its
 * layer. */
#include <clblast_c.h>
#include <stdlib.h>
#include <string.h>

#include "gemm.h"
#include "runtime.h"
#include "tuning.h"

static const char *clblast_status_name(CLBlastStatusCode code)
{
	switch ((int)code) {
	case -1024: return "CLBlastNotImplemented";
	case -1022: return "CLBlastInvalidMatrixA";
	case -1021: return "CLBlastInvalidMatrixB";
	case -1020: return "CLBlastInvalidMatrixC";
	case -1019: return "CLBlastInvalidVectorX";
	case -1018: return "CLBlastInvalidVectorY";
	case -1017: return "CLBlastInvalidDimension";
	case -1016: return "CLBlastInvalidLeadDimA";
	case -1015: return "CLBlastInvalidLeadDimB";
	case -1014: return "CLBlastInvalidLeadDimC";
	case -1013: return "CLBlastInvalidIncrementX";
	case -1012: return "CLBlastInvalidIncrementY";
	case -1011: return "CLBlastInsufficientMemoryA";
	case -1010: return "CLBlastInsufficientMemoryB";
	case -1009: return "CLBlastInsufficientMemoryC";
	case -1008: return "CLBlastInsufficientMemoryX";
	case -1007: return "CLBlastInsufficientMemoryY";
	case -2050: return "CLBlastInsufficientMemoryTemp";
	case -2049: return "CLBlastInvalidBatchCount";
	case -2048: return "CLBlastInvalidOverrideKernel";
	case -2047: return "CLBlastMissingOverrideParameter";
	case -2046: return "CLBlastInvalidLocalMemUsage";
	case -2045: return "CLBlastNoHalfPrecision";
	case -2044: return "CLBlastNoDoublePrecision";
	case -2043: return "CLBlastInvalidVectorScalar";
	case -2042: return "CLBlastInsufficientMemoryScalar";
	case -2041: return "CLBlastDatabaseError";
	case -2040: return "CLBlastUnknownError";
	case -2039: return "CLBlastUnexpectedError";
	default: return st_cl_error_name((cl_int)code);
	}
}

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

/* Keeps the event of a launch for the profile; takes ownership of `ev`. */
static strata_status record(strata_runtime *rt, const char *label, const char *kernel, cl_event ev,
                            cl_event start_marker, strata_error *err)
{
	if (rt->n_prof == rt->cap_prof) {
		size_t ncap = rt->cap_prof ? rt->cap_prof * 2 : 256;
		st_profile_entry *grown = realloc(rt->prof, ncap * sizeof(*grown));
		if (!grown) {
			clReleaseEvent(ev);
			if (start_marker)
				clReleaseEvent(start_marker);
			return st_fail(err, STRATA_ERR_NO_MEMORY, "out of memory");
		}
		rt->prof = grown;
		rt->cap_prof = ncap;
	}
	st_profile_entry *e = &rt->prof[rt->n_prof];
	e->label = strdup(label);
	e->kernel = strdup(kernel);
	e->event = ev;
	e->start_marker = start_marker;
	e->phase = rt->phase ? rt->phase : "";
	if (!e->label || !e->kernel) {
		free(e->label);
		free(e->kernel);
		clReleaseEvent(ev);
		if (start_marker)
			clReleaseEvent(start_marker);
		return st_fail(err, STRATA_ERR_NO_MEMORY, "out of memory");
	}
	rt->n_prof++;
	return STRATA_OK;
}

static strata_status set_args(strata_kernel *k, uint32_t n_args, const strata_arg *args, strata_error *err)
{
	for (uint32_t i = 0; i < n_args; i++) {
		cl_int rc;
		cl_mem null_mem = NULL;
		switch (args[i].kind) {
		case STRATA_ARG_TENSOR:
			rc = clSetKernelArg(k->kernel, i, sizeof(cl_mem), args[i].v.tensor ? &args[i].v.tensor->mem : &null_mem);
			break;
		case STRATA_ARG_INT:
			rc = clSetKernelArg(k->kernel, i, sizeof(cl_int), &args[i].v.i);
			break;
		case STRATA_ARG_UINT:
			rc = clSetKernelArg(k->kernel, i, sizeof(cl_uint), &args[i].v.u);
			break;
		case STRATA_ARG_FLOAT:
			rc = clSetKernelArg(k->kernel, i, sizeof(cl_float), &args[i].v.f);
			break;
		case STRATA_ARG_LOCAL:
			rc = clSetKernelArg(k->kernel, i, args[i].v.local_bytes, NULL);
			break;
		default:
			return st_fail(err, STRATA_ERR_PLUGIN, "kernel '%s' argument %u has unknown kind %d", k->name, i,
			               (int)args[i].kind);
		}
		if (rc != CL_SUCCESS)
			return st_cl_fail(err, rc, "clSetKernelArg %u of kernel '%s'", i, k->name);
	}
	return STRATA_OK;
}

strata_status st_launch(strata_runtime *rt, const char *label, strata_kernel *k, uint32_t work_dim,
                        const size_t *global, const size_t *local, uint32_t n_args, const strata_arg *args,
                        strata_error *err)
{
	if (work_dim < 1 || work_dim > 3)
		return st_fail(err, STRATA_ERR_PLUGIN, "kernel '%s': work_dim %u", k->name, work_dim);
	size_t g[3];
	for (uint32_t d = 0; d < work_dim; d++) {
		if (global[d] == 0)
			return STRATA_OK; /* nothing to compute; OpenCL would reject a zero size */
		g[d] = global[d];
		if (local && local[d])
			g[d] = (g[d] + local[d] - 1) / local[d] * local[d];
	}
	strata_status st = set_args(k, n_args, args, err);
	if (st)
		return st;
	cl_event ev = NULL;
	cl_int rc = clEnqueueNDRangeKernel(rt->queue, k->kernel, work_dim, NULL, g, local, 0, NULL,
	                                   rt->profile ? &ev : NULL);
	if (rc != CL_SUCCESS)
		return st_cl_fail(err, rc, "%s: clEnqueueNDRangeKernel of kernel '%s'", label, k->name);
	return rt->profile ? record(rt, label, k->name, ev, NULL, err) : STRATA_OK;
}

int st_gemm_engine_for(const strata_runtime *rt, const strata_gemm *g, const st_gemm_tile_plan **plan)
{
	*plan = NULL;
	int engine = rt->gemm_engine;
	const st_gemm_route *r = rt->gemm_forced ? NULL
	                         : st_gemm_route_find(rt->gemm_routes, rt->n_gemm_routes, g->trans_a, g->trans_b,
	                                              g->m, g->n, g->k);
	if (r) {
		engine = r->engine;
		*plan = r->engine == ST_GEMM_TILE ? &r->plan : NULL;
	}
	return engine == ST_GEMM_TILE && !st_gemm_tile_fits(g) ? ST_GEMM_CLBLAST : engine;
}

strata_status st_gemm(strata_runtime *rt, const char *label, const strata_gemm *g, strata_error *err)
{
	if (g->m == 0 || g->n == 0)
		return STRATA_OK;
	rt->gemm_flops += 2ull * g->m * g->n * g->k;
	if (rt->gemm_log)
		st_gemm_log_add(rt->gemm_log, g);
	const st_gemm_tile_plan *plan = NULL;
	int engine = st_gemm_engine_for(rt, g, &plan);
	if (g->a_window && (engine != ST_GEMM_TILE || !st_gemm_window_valid(g)))
		return st_fail(err, STRATA_ERR_PLUGIN,
		               "%s: a GEMM %zux%zux%zu on an im2col window that this device's GEMM does not take "
		               "(ask host->gemm_window first)", label, g->m, g->n, g->k);
	if (engine == ST_GEMM_TILE)
		return st_gemm_tile_run(rt, label, g, plan, err);
	cl_event ev = NULL, marker = NULL;
	if (rt->profile) {
		cl_int mrc = clEnqueueMarkerWithWaitList(rt->queue, 0, NULL, &marker);
		if (mrc != CL_SUCCESS)
			return st_cl_fail(err, mrc, "%s: clEnqueueMarkerWithWaitList", label);
	}
	CLBlastStatusCode rc = CLBlastSgemm(CLBlastLayoutRowMajor, g->trans_a ? CLBlastTransposeYes : CLBlastTransposeNo,
	                                    g->trans_b ? CLBlastTransposeYes : CLBlastTransposeNo, g->m, g->n, g->k,
	                                    g->alpha, g->a->mem, g->a_offset, g->lda, g->b->mem, g->b_offset, g->ldb,
	                                    g->beta, g->c->mem, g->c_offset, g->ldc, &rt->queue, &ev);
	if (rc != CLBlastSuccess) {
		if (ev)
			clReleaseEvent(ev);
		if (marker)
			clReleaseEvent(marker);
		if ((int)rc > -1000)
			return st_cl_fail(err, (cl_int)rc, "%s: CLBlast SGEMM %zux%zux%zu", label, g->m, g->n, g->k);
		return st_fail(err, STRATA_ERR_OPENCL, "%s: CLBlast SGEMM %zux%zux%zu failed: %s (%d)", label, g->m, g->n,
		               g->k, clblast_status_name(rc), (int)rc);
	}
	if (rt->profile && ev)
		return record(rt, label, "gemm", ev, marker, err);
	if (marker)
		clReleaseEvent(marker);
	if (ev)
		clReleaseEvent(ev);
	return STRATA_OK;
}

strata_status st_finish(strata_runtime *rt, strata_error *err)
{
	cl_int rc = clFinish(rt->queue);
	if (rc != CL_SUCCESS)
		return st_cl_fail(err, rc, "waiting for the device (clFinish)");
	return rt->profile ? st_profile_fold(rt, err) : STRATA_OK;
}
