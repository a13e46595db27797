/* Launching the runtime's "core" kernels (cl/core.cl) from a plugin: the reductions sized to what
 * the device allows, copies and fills. Header-only, like the rest of common/, so every plugin
 * stays one self-contained shared object. */
#ifndef PLUGINS_COMMON_CORE_H
#define PLUGINS_COMMON_CORE_H

#include <limits.h>
#include <stdio.h>

#include <strata/plugin.h>

/* The core kernel `name`, built with -D`define`=N for the largest power of two N <= `max` that
 * the device runs in one work-group of that kernel: for the kernels that reduce in local memory
 * with a fixed (reqd_work_group_size) group. */
static inline strata_status core_kernel_sized(strata_layer *layer, const strata_host *host, const char *name,
                                              const char *define, size_t max, strata_kernel **kernel,
                                              size_t *wg)
{
	for (size_t size = max; size >= 1; size /= 2) {
		char options[64];
		snprintf(options, sizeof(options), "-D%s=%zu", define, size);
		strata_kernel *k = host->kernel(layer, "core", name, options);
		if (!k)
			return host->last_status(layer);
		if (host->max_work_group_size(layer, k) >= size) {
			*kernel = k;
			*wg = size;
			return STRATA_OK;
		}
	}
	return host->fail(layer, STRATA_ERR_UNSUPPORTED, "the device runs no %s work-group", name);
}

/* dst[0..n) = src[0..n) on the device. */
static inline strata_status core_copy(strata_layer *layer, const strata_host *host, strata_tensor *dst,
                                      strata_tensor *src, size_t n)
{
	if (n == 0)
		return STRATA_OK;
	if (n > INT_MAX)
		return host->fail(layer, STRATA_ERR_OVERFLOW, "copying %zu values exceeds the kernels' int "
		                  "indexing: lower the batch size", n);
	strata_kernel *k = host->kernel(layer, "core", "copy", NULL);
	if (!k)
		return host->last_status(layer);
	strata_arg args[] = {strata_arg_tensor(dst), strata_arg_tensor(src), strata_arg_int((int32_t)n)};
	return host->launch(layer, k, 1, &n, NULL, sizeof(args) / sizeof(args[0]), args);
}

/* dst[0..n) = value on the device. */
static inline strata_status core_fill(strata_layer *layer, const strata_host *host, strata_tensor *dst,
                                      float value, size_t n)
{
	if (n == 0)
		return STRATA_OK;
	if (n > INT_MAX)
		return host->fail(layer, STRATA_ERR_OVERFLOW, "filling %zu values exceeds the kernels' int "
		                  "indexing", n);
	strata_kernel *k = host->kernel(layer, "core", "fill", NULL);
	if (!k)
		return host->last_status(layer);
	strata_arg args[] = {strata_arg_tensor(dst), strata_arg_float(value), strata_arg_int((int32_t)n)};
	return host->launch(layer, k, 1, &n, NULL, sizeof(args) / sizeof(args[0]), args);
}

#endif
