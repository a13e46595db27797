/* Tunables of the plugin kernels, CLBlast style: each kernel file defines its vector width with an
 * #ifndef default, and the host passes the value it launches with as -D options, so the program
 * cache keeps one build per value; the work-group sizes below shape the 2-D launches, whose
 * kernels take any work-group. The defaults were measured on PoCL (2-core AVX-512 Xeon,
 * bench/kernels.md); the host's values (host->tunable: its defaults per device type, or what
 * `strata tune` measured) replace them at launch. TUNE_COLSUM_ROWS stays fixed: it sizes a
 * workspace when the model is built, before any device is known. Header-only, like the rest of
 * common/. */
#ifndef PLUGINS_COMMON_TUNE_H
#define PLUGINS_COMMON_TUNE_H

#include <stddef.h>
#include <stdio.h>

#include <strata/plugin.h>

/* Widest vector, in floats, that a work-item of the windowed kernels (im2col, col2im, pooling)
 * and of the bias-gradient sums handles: 1, 2, 4, 8 or 16. On PoCL a work-item that moves a
 * whole AVX-512 vector beat narrower ones (1.2x to 4x); GPUs may prefer 4. */
#define TUNE_VW 16u
/* Work-items per work-group of the 2-D launches. */
#define TUNE_WG 256u
/* Rows per block of the bias gradient's partial sums: the weighted layers size their workspace
 * for blocks of this many rows, which gives host->column_sums room for its most parallel pass
 * (blocks of 64 rows; plugin.h). */
#define TUNE_COLSUM_ROWS 64u
/* Philox blocks (4 floats each) per dropout work-item, 1 to 16: one vector of generators. */
#define TUNE_DROPOUT_VW 16u

/* The device's value of a launch-time tunable (host->tunable), the compiled-in default with an
 * older host. `strata tune` measures them per device; the defaults above are CPU values. */
static inline size_t tune_value(strata_layer *layer, const strata_host *host, const char *name, size_t fallback)
{
	return STRATA_HOST_HAS(host, tunable) ? host->tunable(layer, name, fallback) : fallback;
}

static inline unsigned tune_vw(strata_layer *layer, const strata_host *host)
{
	return (unsigned)tune_value(layer, host, "vw", TUNE_VW);
}

/* The largest power of two <= widest that divides len: a vector width that tiles rows of len
 * floats exactly (1 for an odd len). */
static inline unsigned tune_vector_width(size_t len, unsigned widest)
{
	unsigned vw = 1;
	while (vw * 2 <= widest && len % (vw * 2) == 0)
		vw *= 2;
	return vw;
}

/* "-DVW=N": the options of a kernel built for vector width N. */
static inline const char *tune_vw_options(char *buf, size_t size, unsigned vw)
{
	snprintf(buf, size, "-DVW=%u", vw);
	return buf;
}

/* A work-group of about "wg" work-items for a 2-D launch of global size (g0, g1), within what
 * the device runs for kernel k: all of dimension 0 when it fits, so a group covers whole rows,
 * and as many rows as the rest allows. */
static inline void tune_local_2d(strata_layer *layer, const strata_host *host, strata_kernel *k, size_t g0,
                                 size_t g1, size_t local[2])
{
	size_t wg = host->max_work_group_size(layer, k), want = tune_value(layer, host, "wg", TUNE_WG);
	if (wg == 0 || wg > want)
		wg = wg == 0 ? 1 : want;
	local[0] = g0 < wg ? (g0 ? g0 : 1) : wg;
	local[1] = wg / local[0];
	if (local[1] > g1)
		local[1] = g1 ? g1 : 1;
}

/* Enqueues kernel k over the 2-D range (g0, g1) with a tune_local_2d work-group. */
static inline strata_status tune_launch_2d(strata_layer *layer, const strata_host *host, strata_kernel *k,
                                           size_t g0, size_t g1, uint32_t n_args, const strata_arg *args)
{
	size_t global[2] = {g0, g1}, local[2];
	tune_local_2d(layer, host, k, g0, g1, local);
	return host->launch(layer, k, 2, global, local, n_args, args);
}

#endif
