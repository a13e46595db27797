/* Copies, fills and windowed GEMMs on the device through the host's declared services
 * (host->copy, host->fill, host->gemm_window, plugin.h). Until 0.3 plugins launched the runtime's
 * "core" kernels by name from here; the services keep those kernels' names and arguments out of
 * the ABI. Header-only, like the rest of common/, so every plugin stays one self-contained shared
 * object. */
#ifndef PLUGINS_COMMON_CORE_H
#define PLUGINS_COMMON_CORE_H

#include <strata/plugin.h>

/* The in-tree plugins are built with their host, which always has the services; a plugin copied
 * out of tree and run on an older host is told so instead of crashing. */
#define CORE_NEED(layer, host, service)                                                          \
	do {                                                                                         \
		if (!STRATA_HOST_HAS(host, service))                                                     \
			return (host)->fail(layer, STRATA_ERR_UNSUPPORTED, "the host has no " #service       \
			                    " service (added in 0.3): use a newer Strata");                  \
	} while (0)

/* Makes g's A the im2col matrix `win` of the images at `images`, read in place, when the host's
 * GEMM takes that for g (host->gemm_window, 0.2); else leaves g as it was and returns false, and
 * the caller builds the matrix. `win` must outlive the GEMM's launch. */
static inline bool core_gemm_window(strata_layer *layer, const strata_host *host, strata_gemm *g,
                                    strata_tensor *images, const strata_gemm_window *win)
{
	if (!STRATA_HOST_HAS(host, gemm_window))
		return false;
	strata_tensor *a = g->a;
	g->a = images;
	g->a_window = win;
	if (host->gemm_window(layer, g))
		return true;
	g->a = a;
	g->a_window = NULL;
	return false;
}

/* dst[0..n) = src[0..n) on the device. */
static inline strata_status core_copy(strata_layer *layer, const strata_host *host, strata_tensor *dst,
                                      strata_tensor *src, size_t n)
{
	CORE_NEED(layer, host, copy);
	return host->copy(layer, dst, src, n);
}

/* dst[0..n) = value on the device. */
static inline strata_status core_fill(strata_layer *layer, const strata_host *host, strata_tensor *dst,
                                      float value, size_t n)
{
	CORE_NEED(layer, host, fill);
	return host->fill(layer, dst, value, n);
}

#endif
