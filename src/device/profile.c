/* What the runtime reports: its log lines, and the time of every launch summed per layer and
 * kernel (events recorded at launch, folded when the queue is waited for). */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "device/runtime.h"

void st_runtime_log(const strata_runtime *rt, int level, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	st_log_v(rt->log, rt->log_user, rt->verbosity, level, fmt, ap);
	va_end(ap);
}

/* Keeps the event of a launch for the profile; takes ownership of `ev`. */
strata_status st_profile_record(strata_runtime *rt, const char *label, const char *kernel, cl_event ev,
                                cl_event start_marker, uint64_t flops, uint64_t bytes, strata_error *err)
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
	e->flops = flops;
	e->bytes = bytes;
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

void st_profile_release(strata_runtime *rt)
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

strata_status st_finish(strata_runtime *rt, strata_error *err)
{
	cl_int rc = clFinish(rt->queue);
	if (rc != CL_SUCCESS)
		return st_cl_fail(err, rc, "waiting for the device (clFinish)");
	return rt->profile ? st_profile_fold(rt, err) : STRATA_OK;
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
			t->flops += e->flops;
			t->bytes += e->bytes;
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

/* One row of the profile: a layer's kernel or its total, with the rates it knows. */
static void print_row(FILE *out, const st_profile_total *t, uint64_t total_ns)
{
	char gflops[16] = "", gbs[16] = "";
	if (t->flops && t->ns)
		snprintf(gflops, sizeof(gflops), "%.1f", (double)t->flops / t->ns);
	if (t->bytes && t->ns)
		snprintf(gbs, sizeof(gbs), "%.1f", (double)t->bytes / t->ns);
	fprintf(out, "%-20s %-9s %-24s %8llu %12.3f %6.1f%% %9s %8s\n", t->label, t->phase, t->kernel,
	        (unsigned long long)t->calls, t->ns / 1e6, total_ns ? 100.0 * t->ns / total_ns : 0.0, gflops, gbs);
}

strata_status strata_runtime_print_profile(strata_runtime *rt, FILE *out, strata_error *err)
{
	if (!rt->profile)
		return st_fail(err, STRATA_ERR_INVALID, "profiling was not enabled for this runtime");
	strata_status st = st_finish(rt, err);
	if (st)
		return st;
	uint64_t total = 0, flops = 0;
	for (size_t i = 0; i < rt->n_totals; i++) {
		total += rt->totals[i].ns;
		flops += rt->totals[i].flops;
	}
	fprintf(out, "Kernel time on %s\n", rt->info.name);
	/* Rates where they are known: GFLOP/s and GB/s of the launches that said what they compute
	 * and move (the GEMMs: 2mnk, and their matrices read and written once). */
	fprintf(out, "%-20s %-9s %-24s %8s %12s %7s %9s %8s\n", "Layer", "Phase", "Kernel", "Calls", "Total ms", "Share",
	        "GFLOP/s", "GB/s");
	/* Layers in order of first launch; each layer's kernels beneath it, then its total. */
	for (size_t i = 0; i < rt->n_totals; i++) {
		bool first = true;
		for (size_t j = 0; j < i; j++)
			if (strcmp(rt->totals[j].label, rt->totals[i].label) == 0)
				first = false;
		if (!first)
			continue;
		st_profile_total layer = {.label = rt->totals[i].label, .phase = "", .kernel = "(layer total)"};
		for (size_t j = i; j < rt->n_totals; j++) {
			const st_profile_total *t = &rt->totals[j];
			if (strcmp(t->label, layer.label) != 0)
				continue;
			print_row(out, t, total);
			layer.calls += t->calls;
			layer.ns += t->ns;
			layer.flops += t->flops;
			layer.bytes += t->bytes;
		}
		print_row(out, &layer, total);
	}
	char gflops[16] = "";
	if (flops && total)
		snprintf(gflops, sizeof(gflops), "%.1f", (double)flops / total);
	fprintf(out, "%-20s %-9s %-24s %8s %12.3f %6.1f%% %9s\n", "total", "", "", "", total / 1e6, 100.0, gflops);
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
