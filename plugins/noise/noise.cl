/* The noise layers' kernels (plugins/noise/noise.c): GaussianNoise, GaussianDropout and
 * SpatialDropout2D while training. Every random number comes from cl/random.cl's counter-based
 * streams, a pure function of (key, step, index), so a backward pass draws the forward pass's
 * numbers again instead of storing them. One work-item per four elements (one Philox draw, four
 * words, two Box-Muller pairs), every id checked. Element i of a pass is element 4 * first + shift
 * + i of its global batch (data-parallel training computes a slice of it; shift < 4), and draws
 * what one process computing the whole batch draws for it. */

/* The four standard normals of draw `q`: elements 4q to 4q + 3. */
static float4 noise_normals(const uint q, const uint key_lo, const uint key_hi, const uint step_lo,
                            const uint step_hi)
{
	const uint4 w = random_draw(q, 0u, key_lo, key_hi, step_lo, step_hi);
	const float2 a = random_normal2(w.x, w.y), b = random_normal2(w.z, w.w);
	return (float4)(a.x, a.y, b.x, b.y);
}

/* GaussianNoise: out = in + stddev z. */
__kernel void gaussian_noise_forward(__global const float *in, __global float *out, const int n, const float stddev,
                                     const uint key_lo, const uint key_hi, const uint step_lo, const uint step_hi,
                                     const uint first, const int shift)
{
	const int q = get_global_id(0);
	if (q > (n + shift - 1) / 4)
		return;
	const float4 z = noise_normals(first + (uint)q, key_lo, key_hi, step_lo, step_hi);
	const float zs[4] = {z.x, z.y, z.z, z.w};
	for (int k = 0; k < 4; k++) {
		const int i = 4 * q + k - shift;
		if (i >= 0 && i < n)
			out[i] = in[i] + stddev * zs[k];
	}
}

/* GaussianDropout: dst = src (1 + stddev z), stddev = sqrt(rate / (1 - rate)). Linear in src: the
 * backward pass runs it on the gradient with the same stream. */
__kernel void gaussian_dropout_apply(__global const float *src, __global float *dst, const int n,
                                     const float stddev, const uint key_lo, const uint key_hi, const uint step_lo,
                                     const uint step_hi, const uint first, const int shift)
{
	const int q = get_global_id(0);
	if (q > (n + shift - 1) / 4)
		return;
	const float4 z = noise_normals(first + (uint)q, key_lo, key_hi, step_lo, step_hi);
	const float zs[4] = {z.x, z.y, z.z, z.w};
	for (int k = 0; k < 4; k++) {
		const int i = 4 * q + k - shift;
		if (i >= 0 && i < n)
			dst[i] = src[i] * (1.0f + stddev * zs[k]);
	}
}

/* SpatialDropout2D's mask: one value per (sample, channel), `count` in all: 0 where the channel is
 * dropped (its draw's first word below `threshold`, probability rate), else `scale`. Value i is
 * value first + i of the global batch. */
__kernel void spatial_dropout_mask(__global float *mask, const int count, const uint threshold, const float scale,
                                   const uint key_lo, const uint key_hi, const uint step_lo, const uint step_hi,
                                   const uint first)
{
	const int i = get_global_id(0);
	if (i >= count)
		return;
	const uint4 w = random_draw(first + (uint)i, 0u, key_lo, key_hi, step_lo, step_hi);
	mask[i] = w.x >= threshold ? scale : 0.0f;
}

/* dst = src times its (sample, channel)'s mask value; `per_sample` elements a sample, `channels` the
 * last axis. Linear in src: the backward pass applies the same mask to the gradient. */
__kernel void spatial_dropout_apply(__global const float *src, __global const float *mask, __global float *dst,
                                    const int n, const int per_sample, const int channels)
{
	const int i = get_global_id(0);
	if (i >= n)
		return;
	dst[i] = src[i] * mask[(i / per_sample) * channels + i % channels];
}
