/* Runtime creation: device choice, context, queue, program cache, and the profile report. */
#include <clblast_c.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gemm.h"
#include "runtime.h"
#include "tuning.h"

void st_runtime_log(const strata_runtime *rt, int level, const char *fmt, ...)
{
	if (!rt->log || level > rt->verbosity)
		return;
	char msg[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	rt->log(rt->log_user, level, msg);
}

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

strata_status strata_runtime_create(strata_registry *reg, const strata_runtime_options *options,
                                    strata_runtime **out, strata_error *err)
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
	rt->info = devices[index];
	free(devices);
	rt->profile = opts.profile;
	rt->log = opts.log;
	rt->log_user = opts.log_user;
	rt->verbosity = opts.verbosity;
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
	if ((st = st_program_cache_init(&rt->cache, cache_dir, err)))
		goto out_destroy;
	st_tune_apply_stored(rt, opts.cache_dir);
	st_runtime_log(rt, STRATA_LOG_INFO, "device: %s (%s, %s); GEMM: %s", rt->info.name, rt->info.platform,
	               rt->info.opencl_c_version, st_gemm_engine_name(rt->gemm_engine));
	*out = rt;
	return STRATA_OK;

out_destroy:
	strata_runtime_destroy(rt);
	return st;
}

static void free_profile(strata_runtime *rt)
{
	for (size_t i = 0; i < rt->n_prof; i++) {
		clReleaseEvent(rt->prof[i].event);
		if (rt->prof[i].start_marker)
			clReleaseEvent(rt->prof[i].start_marker);
		free(rt->prof[i].label);
		free(rt->prof[i].kernel);
	}
	free(rt->prof);
	for (size_t i = 0; i < rt->n_totals; i++) {
		free(rt->totals[i].label);
		free(rt->totals[i].kernel);
	}
	free(rt->totals);
}

void strata_runtime_destroy(strata_runtime *rt)
{
	if (!rt)
		return;
	if (rt->queue)
		clFinish(rt->queue);
	free_profile(rt);
	st_tensor_release(&rt->gemm_partials);
	st_tensor_release(&rt->gemm_bt);
	for (size_t i = 0; i < rt->n_gemm_retired; i++)
		st_tensor_release(&rt->gemm_retired[i]);
	free(rt->gemm_retired);
	free(rt->gemm_routes);
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

static st_profile_total *find_total(strata_runtime *rt, const char *label, const char *phase, const char *kernel)
{
	for (size_t i = 0; i < rt->n_totals; i++)
		if (strcmp(rt->totals[i].label, label) == 0 && strcmp(rt->totals[i].phase, phase) == 0 &&
		    strcmp(rt->totals[i].kernel, kernel) == 0)
			return &rt->totals[i];
	st_profile_total *grown = realloc(rt->totals, (rt->n_totals + 1) * sizeof(*grown));
	if (!grown)
		return NULL;
	rt->totals = grown;
	st_profile_total *t = &grown[rt->n_totals];
	memset(t, 0, sizeof(*t));
	t->label = strdup(label);
	t->phase = phase;
	t->kernel = strdup(kernel);
	if (!t->label || !t->kernel) {
		free(t->label);
		free(t->kernel);
		return NULL;
	}
	rt->n_totals++;
	return t;
}

strata_status st_profile_fold(strata_runtime *rt, strata_error *err)
{
	strata_status st = STRATA_OK;
	for (size_t i = 0; i < rt->n_prof; i++) {
		st_profile_entry *e = &rt->prof[i];
		cl_ulong start = 0, end = 0;
		/* A launch of several kernels (CLBlast's) is timed from the end of a marker enqueued
		 * before it, since only its last kernel's event comes back. */
		cl_int rc = e->start_marker
			? clGetEventProfilingInfo(e->start_marker, CL_PROFILING_COMMAND_END, sizeof(start), &start, NULL)
			: clGetEventProfilingInfo(e->event, CL_PROFILING_COMMAND_START, sizeof(start), &start, NULL);
		if (rc == CL_SUCCESS)
			rc = clGetEventProfilingInfo(e->event, CL_PROFILING_COMMAND_END, sizeof(end), &end, NULL);
		if (rc != CL_SUCCESS && st == STRATA_OK)
			st = st_cl_fail(err, rc, "clGetEventProfilingInfo for %s/%s", e->label, e->kernel);
		st_profile_total *t = find_total(rt, e->label, e->phase, e->kernel);
		if (t && rc == CL_SUCCESS) {
			t->calls++;
			t->ns += end > start ? end - start : 0;
		} else if (!t && st == STRATA_OK) {
			st = st_fail(err, STRATA_ERR_NO_MEMORY, "out of memory");
		}
		clReleaseEvent(e->event);
		if (e->start_marker)
			clReleaseEvent(e->start_marker);
		free(e->label);
		free(e->kernel);
	}
	rt->n_prof = 0;
	return st;
}

strata_status strata_runtime_print_profile(strata_runtime *rt, FILE *out, strata_error *err)
{
	if (!rt->profile)
		return st_fail(err, STRATA_ERR_INVALID, "profiling was not enabled for this runtime");
	strata_status st = st_finish(rt, err);
	if (st)
		return st;
	uint64_t total = 0;
	for (size_t i = 0; i < rt->n_totals; i++)
		total += rt->totals[i].ns;
	fprintf(out, "Kernel time on %s\n", rt->info.name);
	fprintf(out, "%-20s %-9s %-24s %8s %12s %7s\n", "Layer", "Phase", "Kernel", "Calls", "Total ms", "Share");
	/* Layers in order of first launch; each layer's kernels beneath it, then its total. */
	for (size_t i = 0; i < rt->n_totals; i++) {
		bool first = true;
		for (size_t j = 0; j < i; j++)
			if (strcmp(rt->totals[j].label, rt->totals[i].label) == 0)
				first = false;
		if (!first)
			continue;
		uint64_t layer_ns = 0, layer_calls = 0;
		for (size_t j = i; j < rt->n_totals; j++) {
			const st_profile_total *t = &rt->totals[j];
			if (strcmp(t->label, rt->totals[i].label) != 0)
				continue;
			layer_ns += t->ns;
			layer_calls += t->calls;
			fprintf(out, "%-20s %-9s %-24s %8llu %12.3f %6.1f%%\n", t->label, t->phase, t->kernel,
			        (unsigned long long)t->calls, t->ns / 1e6, total ? 100.0 * t->ns / total : 0.0);
		}
		fprintf(out, "%-20s %-9s %-24s %8llu %12.3f %6.1f%%\n", rt->totals[i].label, "", "(layer total)",
		        (unsigned long long)layer_calls, layer_ns / 1e6, total ? 100.0 * layer_ns / total : 0.0);
	}
	fprintf(out, "%-20s %-9s %-24s %8s %12.3f %6.1f%%\n", "total", "", "", "", total / 1e6, 100.0);
	return STRATA_OK;
}

uint64_t strata_runtime_gemm_flops(const strata_runtime *rt)
{
	return rt->gemm_flops;
}

strata_status strata_runtime_reset_profile(strata_runtime *rt, strata_error *err)
{
	strata_status st = st_finish(rt, err);
	if (st)
		return st;
	for (size_t i = 0; i < rt->n_totals; i++) {
		free(rt->totals[i].label);
		free(rt->totals[i].kernel);
	}
	free(rt->totals);
	rt->totals = NULL;
	rt->n_totals = 0;
	return STRATA_OK;
}
