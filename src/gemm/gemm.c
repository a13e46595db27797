/* Every GEMM of a layer goes through st_gemm: it runs on CLBlast or on Strata's own kernel
 * (gemm_tile.c), as the engine of the runtime or the route `strata tune` stored for the shape
 * says, and is shown to an observer when one is set (the tuner records a step's shapes so). */
#include <clblast_c.h>

#include "gemm/gemm.h"

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

bool st_gemm_fuses(const strata_runtime *rt, const strata_gemm *g)
{
	const st_gemm_tile_plan *plan;
	return g->c_offset == 0 && g->ldc == g->n && st_gemm_engine_for(rt, g, &plan) == ST_GEMM_TILE;
}

strata_status st_gemm(strata_runtime *rt, const char *label, const strata_gemm *g, strata_error *err)
{
	return st_gemm_fused(rt, label, g, NULL, err);
}

strata_status st_gemm_fused(strata_runtime *rt, const char *label, const strata_gemm *g, const st_gemm_epilogue *ep,
                            strata_error *err)
{
	if (ep && !st_gemm_fuses(rt, g))
		return st_fail(err, STRATA_ERR_INVALID, "%s: a GEMM %zux%zux%zu with an epilogue on an engine without one",
		               label, g->m, g->n, g->k);
	if (g->m == 0 || g->n == 0)
		return STRATA_OK;
	uint64_t flops, bytes;
	st_gemm_cost(g, 1, &flops, &bytes);
	rt->gemm_flops += flops;
	if (rt->gemm_observer)
		rt->gemm_observer(rt->gemm_observer_user, g);
	const st_gemm_tile_plan *plan = NULL;
	int engine = st_gemm_engine_for(rt, g, &plan);
	if (g->a_window && (engine != ST_GEMM_TILE || !st_gemm_window_valid(g)))
		return st_fail(err, STRATA_ERR_PLUGIN,
		               "%s: a GEMM %zux%zux%zu on an im2col window that this device's GEMM does not take "
		               "(ask host->gemm_window first)", label, g->m, g->n, g->k);
	if (engine == ST_GEMM_TILE)
		return st_gemm_tile_run(rt, label, g, plan, ep, err);
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
		return st_profile_record(rt, label, "gemm", ev, marker, flops, bytes, err);
	if (marker)
		clReleaseEvent(marker);
	if (ev)
		clReleaseEvent(ev);
	return STRATA_OK;
}
