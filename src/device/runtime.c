/* Runtime creation: device choice, context, queue, program cache, the GEMM engine; its
 * destruction. Tuned settings are applied by the caller (api/runtime_api.c), through setters. */
#include <clblast_c.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "device/runtime.h"

/* -cl-std from the device's OpenCL C version, not the platform's: PoCL reports an OpenCL 3.0
 * platform whose devices compile OpenCL C 1.2 only. */
static void choose_cl_std(strata_runtime *rt)
{
	int major = 0, minor = 0;
	rt->cl_std[0] = '\0';
	if (sscanf(rt->info.opencl_c_version, "OpenCL C %d.%d", &major, &minor) == 2 &&
	    (major > 1 || (major == 1 && minor >= 2)))
		snprintf(rt->cl_std, sizeof(rt->cl_std), "-cl-std=CL1.2");
}

const char *st_gemm_engine_name(int engine)
{
	switch (engine) {
	case ST_GEMM_CLBLAST: return "clblast";
	case ST_GEMM_TILE: return "strata";
	default: return "auto";
	}
}

strata_status st_gemm_engine_parse(const char *text, int *engine, strata_error *err)
{
	if (!text || !*text || strcmp(text, "auto") == 0)
		*engine = ST_GEMM_AUTO;
	else if (strcmp(text, "clblast") == 0)
		*engine = ST_GEMM_CLBLAST;
	else if (strcmp(text, "strata") == 0)
		*engine = ST_GEMM_TILE;
	else
		return st_fail(err, STRATA_ERR_INVALID, "STRATA_GEMM=%s: expected auto, clblast or strata", text);
	return STRATA_OK;
}

static strata_status default_cache_dir(char *buf, size_t size, strata_error *err)
{
	const char *xdg = getenv("XDG_CACHE_HOME");
	const char *home = getenv("HOME");
	int n;
	if (xdg && *xdg)
		n = snprintf(buf, size, "%s/strata/programs", xdg);
	else if (home && *home)
		n = snprintf(buf, size, "%s/.cache/strata/programs", home);
	else
		return st_fail(err, STRATA_ERR_NOT_FOUND, "neither XDG_CACHE_HOME nor HOME is set");
	return n > 0 && (size_t)n < size ? STRATA_OK : st_fail(err, STRATA_ERR_IO, "cache path too long");
}

strata_status st_runtime_create(strata_registry *reg, const strata_runtime_options *options, strata_runtime **out,
                                strata_error *err)
{
	strata_runtime_options opts = {.size = sizeof(opts)};
	if (options)
		memcpy(&opts, options, options->size < sizeof(opts) ? options->size : sizeof(opts));
	*out = NULL;
	const char *selector = opts.device;
	if (!selector || !*selector)
		selector = getenv("STRATA_DEVICE");

	strata_device_info *devices = NULL;
	size_t n_devices = 0, index = 0;
	strata_status st = strata_devices_list(&devices, &n_devices, err);
	if (st)
		return st;
	st = strata_device_select(devices, n_devices, selector, &index, err);
	if (st) {
		free(devices);
		return st;
	}
	strata_runtime *rt = calloc(1, sizeof(*rt));
	if (!rt) {
		free(devices);
		return st_fail(err, STRATA_ERR_NO_MEMORY, "out of memory");
	}
	rt->reg = reg;
	atomic_init(&rt->memory_held, 0);
	rt->info = devices[index];
	free(devices);
	rt->profile = opts.profile;
	rt->log = opts.log;
	rt->log_user = opts.log_user;
	rt->verbosity = opts.verbosity;
	const char *guard = getenv("STRATA_GUARD");
	rt->guard = opts.guard || (guard && *guard && strcmp(guard, "0") != 0);
	choose_cl_std(rt);
	if ((st = st_gemm_engine_parse(getenv("STRATA_GEMM"), &rt->gemm_engine, err)))
		goto out_destroy;
	st_tunables_defaults(&rt->info, &rt->tunables);
	rt->gemm_forced = rt->gemm_engine != ST_GEMM_AUTO;
	if (rt->gemm_engine == ST_GEMM_AUTO)
		rt->gemm_engine = strcmp(rt->info.type, "cpu") == 0 ? ST_GEMM_TILE : ST_GEMM_CLBLAST;

	if ((st = st_device_ids(&rt->info, &rt->platform, &rt->device, err)))
		goto out_destroy;
	cl_int rc;
	cl_uint align_bits = 0;
	if ((rc = clGetDeviceInfo(rt->device, CL_DEVICE_MEM_BASE_ADDR_ALIGN, sizeof(align_bits), &align_bits, NULL))) {
		st = st_cl_fail(err, rc, "clGetDeviceInfo(CL_DEVICE_MEM_BASE_ADDR_ALIGN) on %s", rt->info.name);
		goto out_destroy;
	}
	rt->base_align_bytes = align_bits / 8;
	cl_uint lanes = 0;
	if ((rc = clGetDeviceInfo(rt->device, CL_DEVICE_NATIVE_VECTOR_WIDTH_FLOAT, sizeof(lanes), &lanes, NULL))) {
		st = st_cl_fail(err, rc, "clGetDeviceInfo(CL_DEVICE_NATIVE_VECTOR_WIDTH_FLOAT) on %s", rt->info.name);
		goto out_destroy;
	}
	rt->float_lanes = lanes;
	cl_context_properties props[] = {CL_CONTEXT_PLATFORM, (cl_context_properties)rt->platform, 0};
	rt->context = clCreateContext(props, 1, &rt->device, NULL, NULL, &rc);
	if (rc != CL_SUCCESS) {
		st = st_cl_fail(err, rc, "clCreateContext on %s", rt->info.name);
		goto out_destroy;
	}
	rt->queue = clCreateCommandQueue(rt->context, rt->device, opts.profile ? CL_QUEUE_PROFILING_ENABLE : 0, &rc);
	if (rc != CL_SUCCESS) {
		st = st_cl_fail(err, rc, "clCreateCommandQueue on %s", rt->info.name);
		goto out_destroy;
	}
	char dir[4096];
	const char *cache_dir = NULL;
	if (!opts.no_disk_cache) {
		if (opts.cache_dir) {
			snprintf(dir, sizeof(dir), "%s", opts.cache_dir);
		} else if ((st = default_cache_dir(dir, sizeof(dir), err))) {
			goto out_destroy;
		}
		cache_dir = dir;
	}
	/* The binaries' policy: strata_runtime_options.binaries says why PoCL keeps none. */
	const char *binaries = getenv("STRATA_PROGRAM_BINARIES");
	if (binaries && *binaries && strcmp(binaries, "always") != 0 && strcmp(binaries, "auto") != 0) {
		st = st_fail(err, STRATA_ERR_INVALID, "STRATA_PROGRAM_BINARIES=%s: expected always or auto", binaries);
		goto out_destroy;
	}
	bool keep_binaries = opts.binaries == STRATA_BINARIES_ALWAYS || (binaries && strcmp(binaries, "always") == 0) ||
	                     !strstr(rt->info.platform, "Portable Computing Language");
	if ((st = st_program_cache_init(&rt->cache, cache_dir, keep_binaries, err)))
		goto out_destroy;
	st_runtime_log(rt, STRATA_LOG_INFO, "device: %s (%s, %s); GEMM: %s%s", rt->info.name, rt->info.platform,
	               rt->info.opencl_c_version, st_gemm_engine_name(rt->gemm_engine),
	               rt->guard ? "; guard mode: every launch's tensors checked for writes out of bounds" : "");
	*out = rt;
	return STRATA_OK;

out_destroy:
	strata_runtime_destroy(rt);
	return st;
}

void strata_runtime_destroy(strata_runtime *rt)
{
	if (!rt)
		return;
	if (rt->queue)
		clFinish(rt->queue);
	st_profile_release(rt);
	st_tensor_release(&rt->gemm_partials);
	st_tensor_release(&rt->gemm_bt);
	for (size_t i = 0; i < rt->n_gemm_retired; i++)
		st_tensor_release(&rt->gemm_retired[i]);
	free(rt->gemm_retired);
	free(rt->gemm_routes);
	st_guard_release(rt);
	st_program_cache_release(&rt->cache);
	/* CLBlast keeps programs in a process-wide cache keyed by context; drop them while the
	 * context is alive, or a later context at the same address could be handed stale ones. */
	CLBlastClearCache();
	if (rt->queue)
		clReleaseCommandQueue(rt->queue);
	if (rt->context)
		clReleaseContext(rt->context);
	free(rt);
}

const strata_device_info *strata_runtime_device(const strata_runtime *rt)
{
	return &rt->info;
}

strata_cache_stats strata_runtime_cache_stats(const strata_runtime *rt)
{
	return rt->cache.stats;
}

void st_runtime_observe_gemms(strata_runtime *rt, st_gemm_observer fn, void *user)
{
	rt->gemm_observer = fn;
	rt->gemm_observer_user = user;
}
