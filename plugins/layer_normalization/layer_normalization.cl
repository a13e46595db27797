/* LayerNormalization's kernels (layer_normalization.c). The input is a [rows, cols] matrix: a row
 * is one position of one sample (a sample of a vector input, a pixel of an image), cols its last
 * axis, which is normalized by the row's own mean and biased variance (two passes over the row:
 * the mean, then the centered variance), then scaled by gamma[col] and shifted by beta[col].
 *
 * The row kernels come in two forms, chosen by -DWG: WG 1 gives one work-item per row (many short
 * rows: the pixels of an image), WG > 1 (a power of two) one work-group of WG work-items per row
 * (few long rows: a dense layer's features), its sums reduced through local memory in a fixed
 * tree order. Either way the result does not depend on scheduling. Both read and write a row VW
 * floats at a time (cl/vector.cl, prepended; the host passes -DVW dividing cols), which keeps a
 * CPU's vector units busy on short rows. */

#ifndef WG
#define WG 1
#endif
#if WG > 1 && (WG & (WG - 1)) != 0
#error "WG must be a power of two"
#endif

/* The sum of a vector's lanes, in a fixed order. */
static float ln_lanes(const floatv v)
{
#if VW == 1
	return v;
#elif VW == 2
	return v.s0 + v.s1;
#elif VW == 4
	return (v.s0 + v.s1) + (v.s2 + v.s3);
#elif VW == 8
	const float4 h = v.lo + v.hi;
	return (h.s0 + h.s1) + (h.s2 + h.s3);
#else
	const float8 e = v.lo + v.hi;
	const float4 h = e.lo + e.hi;
	return (h.s0 + h.s1) + (h.s2 + h.s3);
#endif
}

#if WG > 1
/* The sum of every work-item's v, in a fixed tree order, returned to all of them. Every
 * work-item of the group calls it (no early return before it). */
static float ln_group_sum(__local float *scratch, const int lid, const float v)
{
	scratch[lid] = v;
	barrier(CLK_LOCAL_MEM_FENCE);
	for (int s = WG / 2; s > 0; s >>= 1) {
		if (lid < s)
			scratch[lid] += scratch[lid + s];
		barrier(CLK_LOCAL_MEM_FENCE);
	}
	const float sum = scratch[0];
	barrier(CLK_LOCAL_MEM_FENCE); /* everyone has read it before the next call writes */
	return sum;
}
/* The row of this work-group: its nv vectors start at float `base`; a work-item takes every WG-th. */
#define LN_ROW_BEGIN                                                                                 \
	__local float scratch[WG];                                                                   \
	const int row = get_group_id(0), lid = get_local_id(0);                                      \
	/* no early return: every work-item reaches the barriers */                                  \
	const int nv = row < rows ? cols / VW : 0;                                                   \
	const size_t base = (size_t)(row < rows ? row : 0) * cols
#define LN_FOR(v) for (int v = lid; v < nv; v += WG)
#define LN_SUM(v) ln_group_sum(scratch, lid, ln_lanes(v))
#define LN_LEADER (lid == 0 && row < rows)
#else
/* The row of this work-item: its nv vectors start at float `base`. */
#define LN_ROW_BEGIN                                                                                 \
	const int row = get_global_id(0);                                                            \
	if (row >= rows)                                                                             \
		return;                                                                              \
	const int nv = cols / VW;                                                                    \
	const size_t base = (size_t)row * cols
#define LN_FOR(v) for (int v = 0; v < nv; v++)
#define LN_SUM(v) ln_lanes(v)
#define LN_LEADER 1
#endif

/* y = (x - mean) / sqrt(var + eps) * gamma + beta along each row; gamma and beta are read only with
 * has_gamma and has_beta (the host passes another buffer otherwise). y may not be x. */
__kernel void ln_forward(__global const float *x, __global float *y, __global const float *gamma,
                         __global const float *beta, const int rows, const int cols, const float eps,
                         const int has_gamma, const int has_beta)
{
	LN_ROW_BEGIN;
	__global const float *xr = x + base;
	floatv s = (floatv)(0.0f);
	LN_FOR(v) s += VLOAD(v, xr);
	const float mean = LN_SUM(s) / (float)cols;
	floatv q = (floatv)(0.0f);
	LN_FOR(v)
	{
		const floatv d = VLOAD(v, xr) - mean;
		q += d * d;
	}
	const float inv = rsqrt(LN_SUM(q) / (float)cols + eps);
	LN_FOR(v)
	{
		floatv o = (VLOAD(v, xr) - mean) * inv;
		if (has_gamma)
			o *= VLOAD(v, gamma);
		if (has_beta)
			o += VLOAD(v, beta);
		VSTORE(o, v, y + base);
	}
}

/* The backward pass along each row: its mean and 1 / sqrt(var + eps) into stats[2 row], stats[2 row
 * + 1] (for ln_param_partials), and with write_dx the input gradient, exact through the row's
 * statistics: g = dy * gamma, xhat = (x - mean) * inv,
 * dx = inv * (g - sum(g) / cols - xhat * sum(g * xhat) / cols). */
__kernel void ln_backward_rows(__global const float *x, __global const float *dy, __global float *dx,
                               __global const float *gamma, __global float *stats, const int rows, const int cols,
                               const float eps, const int has_gamma, const int write_dx)
{
	LN_ROW_BEGIN;
	__global const float *xr = x + base, *dyr = dy + base;
	floatv s = (floatv)(0.0f);
	LN_FOR(v) s += VLOAD(v, xr);
	const float mean = LN_SUM(s) / (float)cols;
	floatv q = (floatv)(0.0f);
	LN_FOR(v)
	{
		const floatv d = VLOAD(v, xr) - mean;
		q += d * d;
	}
	const float inv = rsqrt(LN_SUM(q) / (float)cols + eps);
	if (LN_LEADER) {
		stats[2 * (size_t)row] = mean;
		stats[2 * (size_t)row + 1] = inv;
	}
	if (!write_dx)
		return; /* uniform across the group: every work-item leaves here or none does */
	floatv sg = (floatv)(0.0f), sgx = (floatv)(0.0f);
	LN_FOR(v)
	{
		const floatv g = has_gamma ? VLOAD(v, dyr) * VLOAD(v, gamma) : VLOAD(v, dyr);
		sg += g;
		sgx += g * ((VLOAD(v, xr) - mean) * inv);
	}
	const float per_col = 1.0f / (float)cols;
	const float mean_g = LN_SUM(sg) * per_col;
	const float mean_gx = LN_SUM(sgx) * per_col;
	LN_FOR(v)
	{
		const floatv g = has_gamma ? VLOAD(v, dyr) * VLOAD(v, gamma) : VLOAD(v, dyr);
		const floatv xhat = (VLOAD(v, xr) - mean) * inv;
		VSTORE(inv * (g - mean_g - xhat * mean_gx), v, dx + base);
	}
}

/* gamma's and beta's gradients, stage 1: per block of `per_item` rows and group of VW columns
 * (cl/vector.cl; the host passes -DVW dividing cols), the sums of dy * xhat and of dy, with each
 * row's statistics from ln_backward_rows. partial[blk] holds two rows of cols floats: sum(dy *
 * xhat), then sum(dy). A 2-D launch: dimension 0 over the column groups, 1 over the blocks. */
__kernel void ln_param_partials(__global const float *x, __global const float *dy, __global const float *stats,
                                __global float *partial, const int rows, const int cols, const int per_item)
{
	const int group = get_global_id(0), blk = get_global_id(1);
	const int groups = cols / VW;
	if (group >= groups || blk > (rows - 1) / per_item)
		return;
	const int r0 = blk * per_item, r1 = min(r0, rows - per_item) + per_item;
	size_t i = (size_t)r0 * groups + group;
	floatv sg = (floatv)(0.0f), sb = (floatv)(0.0f);
	for (int r = r0; r < r1; r++, i += groups) {
		const float mean = stats[2 * (size_t)r], inv = stats[2 * (size_t)r + 1];
		const floatv d = VLOAD(i, dy);
		sg += d * ((VLOAD(i, x) - mean) * inv);
		sb += d;
	}
	VSTORE(sg, (size_t)(2 * blk) * groups + group, partial);
	VSTORE(sb, (size_t)(2 * blk + 1) * groups + group, partial);
}

/* Stage 2, FWG work-items per column (a work-group, -DFWG, a power of two; 1 where the device
 * allows no more): each adds the blocks lid, lid + FWG, ... in order, then the work-group adds
 * their sums in a fixed tree order; written to the gradients the layer has (has_gamma, has_beta;
 * the host passes `partial` for a missing one). Overwrites. Global size cols x FWG, local FWG. */
#ifndef FWG
#define FWG 1
#endif
#if FWG > 1 && (FWG & (FWG - 1)) != 0
#error "FWG must be a power of two"
#endif
__kernel void ln_param_finish(__global const float *partial, __global float *dgamma, __global float *dbeta,
                              const int cols, const int blocks, const int has_gamma, const int has_beta)
{
#if FWG > 1
	__local float lg[FWG], lb[FWG];
	const int c = get_group_id(0), lid = get_local_id(0);
	const int live = c < cols; /* no early return: every work-item reaches the barriers */
#else
	const int c = get_global_id(0), lid = 0;
	if (c >= cols)
		return;
	const int live = 1;
#endif
	float sg = 0.0f, sb = 0.0f;
	for (int b = lid; live && b < blocks; b += FWG) {
		sg += partial[(size_t)(2 * b) * cols + c];
		sb += partial[(size_t)(2 * b + 1) * cols + c];
	}
#if FWG > 1
	lg[lid] = sg;
	lb[lid] = sb;
	barrier(CLK_LOCAL_MEM_FENCE);
	for (int k = FWG / 2; k > 0; k >>= 1) {
		if (lid < k) {
			lg[lid] += lg[lid + k];
			lb[lid] += lb[lid + k];
		}
		barrier(CLK_LOCAL_MEM_FENCE);
	}
	if (lid != 0 || !live)
		return;
	sg = lg[0];
	sb = lb[0];
#endif
	if (has_gamma)
		dgamma[c] = sg;
	if (has_beta)
		dbeta[c] = sb;
}
