/* Kernel launches on the runtime's queue, each optionally timed through a profiling event
 * attributed to its layer (profile.c), and in guard mode followed by the check of its tensors'
 * canaries (buffers.c). */
#include "device/runtime.h"

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
	/* What the caller said this launch computes and moves is for this launch alone. */
	uint64_t cost_flops = rt->next_flops, cost_bytes = rt->next_bytes;
	rt->next_flops = rt->next_bytes = 0;
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
	/* Only a caller that knows says what a launch computes and moves (a GEMM): the buffers a
	 * kernel is given are often whole pools of which it touches a slice. */
	if (rt->profile && (st = st_profile_record(rt, label, k->name, ev, NULL, cost_flops, cost_bytes, err)))
		return st;
	return rt->guard ? st_guard_check(rt, label, k, n_args, args, err) : STRATA_OK;
}
