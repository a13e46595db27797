/* Dropout's kernels. The mask is never stored: it is a pure function of (key, step, element
 * index) through the counter-based Philox-4x32-10 generator (Salmon et al., "Parallel random
 * numbers: as easy as 1, 2, 3", SC'11), so a backward pass recomputes it bit for bit. */

#define PHILOX_M0 0xD2511F53u
#define PHILOX_M1 0xCD9E8D57u
#define PHILOX_W0 0x9E3779B9u
#define PHILOX_W1 0xBB67AE85u

static uint4 philox4x32_10(uint4 ctr, uint2 key)
{
	for (int round = 0; round < 10; round++) {
		const uint hi0 = mul_hi(PHILOX_M0, ctr.x), lo0 = PHILOX_M0 * ctr.x;
		const uint hi1 = mul_hi(PHILOX_M1, ctr.z), lo1 = PHILOX_M1 * ctr.z;
		ctr = (uint4)(hi1 ^ ctr.y ^ key.x, lo1, hi0 ^ ctr.w ^ key.y, lo0);
		key += (uint2)(PHILOX_W0, PHILOX_W1);
	}
	return ctr;
}

/* The 32 random bits of elements 4*block .. 4*block+3 at training step (step_hi:step_lo). */
static uint4 dropout_bits(const uint block, const uint2 key, const uint step_lo, const uint step_hi)
{
	return philox4x32_10((uint4)(block, 0u, step_lo, step_hi), key);
}

/* Inverted dropout: out[i] = in[i] * scale where the element's bits are >= threshold (kept with
 * probability 1 - threshold / 2^32), else 0. One work-item per 4 elements. Linear in `in`, so
 * the backward pass runs it on the gradient with the same (key, step) to apply the same mask. */
__kernel void dropout_forward(__global const float *in, __global float *out, const int n,
                              const uint threshold, const float scale, const uint key_lo,
                              const uint key_hi, const uint step_lo, const uint step_hi)
{
	const int block = get_global_id(0);
	if (block >= n / 4 + (n % 4 != 0))
		return;
	const uint4 r = dropout_bits((uint)block, (uint2)(key_lo, key_hi), step_lo, step_hi);
	const uint bits[4] = {r.x, r.y, r.z, r.w};
	for (int j = 0; j < 4; j++) {
		const int i = block * 4 + j;
		if (i < n)
			out[i] = bits[j] >= threshold ? in[i] * scale : 0.0f;
	}
}
