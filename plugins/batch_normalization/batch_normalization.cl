/* BatchNormalization's kernels (batch_normalization.c). The input is a [rows, cols] matrix: rows
 * are every position of every sample (N x H x W for images, N for vectors), cols the channels
 * (the last axis). Per-channel statistics are reductions over the rows, done deterministically and
 * in parallel without atomics: a first kernel writes one partial result per block of `per_item`
 * rows and column group, a second combines the blocks of each channel in a fixed order (bn_stats_finish).
 *
 * Variance: each block computes its mean, then the sum of squared deviations from that mean (two
 * passes over the block's rows, the second from cache), and the blocks are combined with Chan,
 * Golub and LeVeque's pairwise update, in a fixed order. That is as accurate as a two-pass mean
 * then centered variance over the whole batch, without a second pass over the data in memory,
 * and far better than sums of x and x^2 (which cancel catastrophically when |mean| >> std).
 *
 * VW (cl/vector.cl, prepended) is the number of channels a work-item handles, a power of two
 * dividing cols; the host passes it with -DVW. 2-D launches: dimension 0 over the cols / VW
 * column groups, dimension 1 over the row blocks; every id is bounds-checked. */

/* min(r0 + per_item, rows) without overflow near INT_MAX. */
#define BN_BLOCK_END(r0, rows, per_item) (min((r0), (rows) - (per_item)) + (per_item))

/* partial[blk] holds two rows of cols floats: the block's mean, then its sum of squared
 * deviations from that mean (M2), for the rows [blk * per_item, ...) of block blk. */
__kernel void bn_stats_partials(__global const float *x, __global float *partial, const int rows, const int cols,
                                const int per_item)
{
	const int group = get_global_id(0), blk = get_global_id(1);
	const int groups = cols / VW;
	if (group >= groups || blk > (rows - 1) / per_item)
		return;
	const int r0 = blk * per_item, r1 = BN_BLOCK_END(r0, rows, per_item);
	const size_t first = (size_t)r0 * groups + group; /* in vectors */
	floatv s = (floatv)(0.0f);
	size_t i = first;
	for (int r = r0; r < r1; r++, i += groups)
		s += VLOAD(i, x);
	const floatv mean = s / (float)(r1 - r0);
	floatv m2 = (floatv)(0.0f);
	i = first;
	for (int r = r0; r < r1; r++, i += groups) {
		const floatv d = VLOAD(i, x) - mean;
		m2 += d * d;
	}
	VSTORE(mean, (size_t)(2 * blk) * groups + group, partial);
	VSTORE(m2, (size_t)(2 * blk + 1) * groups + group, partial);
}

/* The final reductions over the blocks run FWG work-items per channel (a work-group, -DFWG, a
 * power of two; 1 where the device allows no more): each combines the blocks lid, lid + FWG, ...
 * in order, then the work-group combines their results in a fixed tree order through local
 * memory. The result depends only on FWG, never on scheduling. */
#ifndef FWG
#define FWG 1
#endif
#if FWG > 1 && (FWG & (FWG - 1)) != 0
#error "FWG must be a power of two"
#endif

/* Chan et al.'s combination of (n, mean, M2) with (nb, mb, m2b), into the first. */
#define BN_CHAN(n, m, m2, nb, mb, m2b)                                                                \
	do {                                                                                          \
		const float total_ = (n) + (nb), d_ = (mb) - (m);                                     \
		if ((nb) > 0.0f) {                                                                    \
			(m) += d_ * ((nb) / total_);                                                  \
			(m2) += (m2b) + d_ * d_ * ((n) * ((nb) / total_));                            \
			(n) = total_;                                                                 \
		}                                                                                     \
	} while (0)

/* The blocks' (count, mean, M2) of each channel combined (Chan, Golub and LeVeque) into the batch
 * mean and biased variance, written to mean[] and var[]. With `update`, the moving statistics
 * follow Keras 3: moving = moving * momentum + batch * (1 - momentum), the variance being the
 * biased batch variance. A backward pass that recomputes the statistics passes 0. One work-group
 * of FWG work-items per channel: global size cols x FWG, local FWG. */
__kernel void bn_stats_finish(__global const float *partial, __global float *mean, __global float *var,
                              __global float *moving_mean, __global float *moving_var, const int rows,
                              const int cols, const int per_item, const int blocks, const float momentum,
                              const int update)
{
#if FWG > 1
	__local float ln[FWG], lm[FWG], lm2[FWG];
	const int c = get_group_id(0), lid = get_local_id(0);
	const int live = c < cols; /* no early return: every work-item reaches the barriers */
#else
	const int c = get_global_id(0), lid = 0;
	if (c >= cols)
		return;
	const int live = 1;
#endif
	float n = 0.0f, m = 0.0f, m2 = 0.0f;
	for (int b = lid; live && b < blocks; b += FWG) {
		const int r0 = b * per_item;
		const float nb = (float)(BN_BLOCK_END(r0, rows, per_item) - r0);
		BN_CHAN(n, m, m2, nb, partial[(size_t)(2 * b) * cols + c], partial[(size_t)(2 * b + 1) * cols + c]);
	}
#if FWG > 1
	ln[lid] = n;
	lm[lid] = m;
	lm2[lid] = m2;
	barrier(CLK_LOCAL_MEM_FENCE);
	for (int s = FWG / 2; s > 0; s >>= 1) {
		if (lid < s) {
			float nn = ln[lid], mm = lm[lid], mm2 = lm2[lid];
			BN_CHAN(nn, mm, mm2, ln[lid + s], lm[lid + s], lm2[lid + s]);
			ln[lid] = nn;
			lm[lid] = mm;
			lm2[lid] = mm2;
		}
		barrier(CLK_LOCAL_MEM_FENCE);
	}
	if (lid != 0 || !live)
		return;
	m = lm[0];
	m2 = lm2[0];
#endif
	const float v = m2 / (float)rows;
	mean[c] = m;
	var[c] = v;
	if (update) {
		moving_mean[c] = moving_mean[c] * momentum + m * (1.0f - momentum);
		moving_var[c] = moving_var[c] * momentum + v * (1.0f - momentum);
	}
}

/* The channel's scale a = gamma / sqrt(var + eps) (gamma 1 without `has_gamma`) and the shift
 * (beta, 0 without `has_beta`), for the VW channels of column group `group`. */
#define BN_AFFINE(group, mean_p, var_p, gamma_p, beta_p)                                              \
	const floatv mu = VLOAD(group, mean_p);                                                           \
	floatv a = rsqrt(VLOAD(group, var_p) + eps);                                                      \
	if (has_gamma)                                                                                    \
		a *= VLOAD(group, gamma_p);                                                               \
	const floatv shift = has_beta ? VLOAD(group, beta_p) : (floatv)(0.0f)

/* y = (x - mean) * gamma / sqrt(var + eps) + beta: the batch statistics while training, the moving
 * ones at inference. gamma and beta are read only with has_gamma and has_beta (the host passes
 * another buffer otherwise). (x - mean) * a rather than x * a + (beta - mean * a): no cancellation
 * when |mean| >> std. y may not be x. */
__kernel void bn_apply(__global const float *x, __global float *y, __global const float *mean,
                       __global const float *var, __global const float *gamma, __global const float *beta,
                       const int rows, const int cols, const int per_item, const float eps, const int has_gamma,
                       const int has_beta)
{
	const int group = get_global_id(0), blk = get_global_id(1);
	const int groups = cols / VW;
	if (group >= groups || blk > (rows - 1) / per_item)
		return;
	BN_AFFINE(group, mean, var, gamma, beta);
	const int r0 = blk * per_item, r1 = BN_BLOCK_END(r0, rows, per_item);
	size_t i = (size_t)r0 * groups + group;
	for (int r = r0; r < r1; r++, i += groups)
		VSTORE((VLOAD(i, x) - mu) * a + shift, i, y);
}

/* The backward pass, stage 1: per block of rows and column group, the sums of dy and of
 * dy * xhat, xhat = (x - mean) / sqrt(var + eps) with the statistics the forward pass used.
 * partial[blk] holds two rows of cols floats: sum(dy), then sum(dy * xhat). */
__kernel void bn_grad_partials(__global const float *x, __global const float *dy, __global const float *mean,
                               __global const float *var, __global float *partial, const int rows, const int cols,
                               const int per_item, const float eps)
{
	const int group = get_global_id(0), blk = get_global_id(1);
	const int groups = cols / VW;
	if (group >= groups || blk > (rows - 1) / per_item)
		return;
	const floatv mu = VLOAD(group, mean);
	const floatv inv = rsqrt(VLOAD(group, var) + eps);
	const int r0 = blk * per_item, r1 = BN_BLOCK_END(r0, rows, per_item);
	size_t i = (size_t)r0 * groups + group;
	floatv s = (floatv)(0.0f), sx = (floatv)(0.0f);
	for (int r = r0; r < r1; r++, i += groups) {
		const floatv d = VLOAD(i, dy);
		s += d;
		sx += d * ((VLOAD(i, x) - mu) * inv);
	}
	VSTORE(s, (size_t)(2 * blk) * groups + group, partial);
	VSTORE(sx, (size_t)(2 * blk + 1) * groups + group, partial);
}

/* Stage 2, FWG work-items per channel (as bn_stats_finish): the block sums added in a fixed order
 * into sums[0..cols) (sum of dy: beta's gradient) and sums[cols..2 cols) (sum of dy * xhat: gamma's
 * gradient), and copied to the gradients the layer has (has_gamma, has_beta; the host passes
 * `sums` for a missing one). Overwrites, never adds. */
__kernel void bn_grad_finish(__global const float *partial, __global float *sums, __global float *dgamma,
                             __global float *dbeta, const int cols, const int blocks, const int has_gamma,
                             const int has_beta)
{
#if FWG > 1
	__local float ls[FWG], lsx[FWG];
	const int c = get_group_id(0), lid = get_local_id(0);
	const int live = c < cols;
#else
	const int c = get_global_id(0), lid = 0;
	if (c >= cols)
		return;
	const int live = 1;
#endif
	float s = 0.0f, sx = 0.0f;
	for (int b = lid; live && b < blocks; b += FWG) {
		s += partial[(size_t)(2 * b) * cols + c];
		sx += partial[(size_t)(2 * b + 1) * cols + c];
	}
#if FWG > 1
	ls[lid] = s;
	lsx[lid] = sx;
	barrier(CLK_LOCAL_MEM_FENCE);
	for (int k = FWG / 2; k > 0; k >>= 1) {
		if (lid < k) {
			ls[lid] += ls[lid + k];
			lsx[lid] += lsx[lid + k];
		}
		barrier(CLK_LOCAL_MEM_FENCE);
	}
	if (lid != 0 || !live)
		return;
	s = ls[0];
	sx = lsx[0];
#endif
	sums[c] = s;
	sums[cols + c] = sx;
	if (has_gamma)
		dgamma[c] = sx;
	if (has_beta)
		dbeta[c] = s;
}

/* Stage 3, the input gradient. With `training` (the batch statistics were used, and depend on
 * every row): dx = a * (dy - sum(dy) / rows - xhat * sum(dy * xhat) / rows), a = gamma / sqrt(var
 * + eps), the exact gradient through the mean and the biased variance. Without (inference, the
 * moving statistics are constants): dx = a * dy, and `sums` is not read. */
__kernel void bn_grad_input(__global const float *x, __global const float *dy, __global float *dx,
                            __global const float *mean, __global const float *var, __global const float *gamma,
                            __global const float *sums, const int rows, const int cols, const int per_item,
                            const float eps, const int has_gamma, const int training)
{
	const int group = get_global_id(0), blk = get_global_id(1);
	const int groups = cols / VW;
	if (group >= groups || blk > (rows - 1) / per_item)
		return;
	const floatv mu = VLOAD(group, mean);
	const floatv inv = rsqrt(VLOAD(group, var) + eps);
	const floatv a = has_gamma ? inv * VLOAD(group, gamma) : inv;
	floatv mean_dy = (floatv)(0.0f), mean_dyx = (floatv)(0.0f);
	if (training) {
		const float per_row = 1.0f / (float)rows;
		mean_dy = VLOAD(group, sums) * per_row;
		mean_dyx = VLOAD(groups + group, sums) * per_row;
	}
	const int r0 = blk * per_item, r1 = BN_BLOCK_END(r0, rows, per_item);
	size_t i = (size_t)r0 * groups + group;
	for (int r = r0; r < r1; r++, i += groups) {
		const floatv xhat = (VLOAD(i, x) - mu) * inv;
		VSTORE(a * (VLOAD(i, dy) - mean_dy - xhat * mean_dyx), i, dx);
	}
}
