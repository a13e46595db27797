/* Dropout's kernels. The mask is never stored: it is a pure function of (key, step, element
 * index) through the counter-based Philox-4x32-10 generator (Salmon et al., "Parallel random
 * numbers: as easy as 1, 2, 3", SC'11), so a backward pass recomputes it bit for bit. */

/* Philox blocks per work-item, 1, 2, 4, 8 or 16 (4 floats each): the rounds run on vectors of
 * this many generators, which is what makes them fast on a CPU (plugins/common/tune.h). */
#ifndef VW
#define VW 16
#endif
#if VW == 1
typedef uint uintv;
typedef ulong ulongv;
#define CONVERT_UINTV convert_uint
#define CONVERT_ULONGV convert_ulong
#define LANES 0u
#define VSTORE_UINT(v, p) (*(p) = (v))
#elif VW == 2
typedef uint2 uintv;
typedef ulong2 ulongv;
#define CONVERT_UINTV convert_uint2
#define CONVERT_ULONGV convert_ulong2
#define LANES (uint2)(0u, 1u)
#define VSTORE_UINT(v, p) vstore2(v, 0, p)
#elif VW == 4
typedef uint4 uintv;
typedef ulong4 ulongv;
#define CONVERT_UINTV convert_uint4
#define CONVERT_ULONGV convert_ulong4
#define LANES (uint4)(0u, 1u, 2u, 3u)
#define VSTORE_UINT(v, p) vstore4(v, 0, p)
#elif VW == 8
typedef uint8 uintv;
typedef ulong8 ulongv;
#define CONVERT_UINTV convert_uint8
#define CONVERT_ULONGV convert_ulong8
#define LANES (uint8)(0u, 1u, 2u, 3u, 4u, 5u, 6u, 7u)
#define VSTORE_UINT(v, p) vstore8(v, 0, p)
#elif VW == 16
typedef uint16 uintv;
typedef ulong16 ulongv;
#define CONVERT_UINTV convert_uint16
#define CONVERT_ULONGV convert_ulong16
#define LANES (uint16)(0u, 1u, 2u, 3u, 4u, 5u, 6u, 7u, 8u, 9u, 10u, 11u, 12u, 13u, 14u, 15u)
#define VSTORE_UINT(v, p) vstore16(v, 0, p)
#else
#error "VW must be 1, 2, 4, 8 or 16"
#endif

#define PHILOX_M0 0xD2511F53u
#define PHILOX_M1 0xCD9E8D57u
#define PHILOX_W0 0x9E3779B9u
#define PHILOX_W1 0xBB67AE85u

/* Philox-4x32-10 of the VW counters (block0 + lane, 0, step_lo, step_hi) under key (key_lo,
 * key_hi): bits[k][lane] is word k of block block0 + lane, the 32 random bits of element
 * 4 * (block0 + lane) + k. The high halves of the 32x32-bit products come from 64-bit
 * products: PoCL's mul_hi made the generator several times slower. */
static void philox_blocks(const uint block0, const uint key_lo, const uint key_hi, const uint step_lo,
                          const uint step_hi, uint bits[4][VW])
{
	uintv c0 = (uintv)(block0) + LANES, c1 = (uintv)(0u), c2 = (uintv)(step_lo), c3 = (uintv)(step_hi);
	uint k0 = key_lo, k1 = key_hi;
	for (int round = 0; round < 10; round++) {
		const ulongv p0 = CONVERT_ULONGV(c0) * (ulongv)(PHILOX_M0);
		const ulongv p1 = CONVERT_ULONGV(c2) * (ulongv)(PHILOX_M1);
		const uintv next0 = CONVERT_UINTV(p1 >> 32) ^ c1 ^ (uintv)(k0);
		const uintv next2 = CONVERT_UINTV(p0 >> 32) ^ c3 ^ (uintv)(k1);
		c1 = CONVERT_UINTV(p1);
		c3 = CONVERT_UINTV(p0);
		c0 = next0;
		c2 = next2;
		k0 += PHILOX_W0;
		k1 += PHILOX_W1;
	}
	VSTORE_UINT(c0, bits[0]);
	VSTORE_UINT(c1, bits[1]);
	VSTORE_UINT(c2, bits[2]);
	VSTORE_UINT(c3, bits[3]);
}

/* Inverted dropout: out[i] = in[i] * scale where element i's bits are >= threshold (kept with
 * probability 1 - threshold / 2^32), else 0. One work-item per VW blocks of 4 elements, all four
 * words of every Philox block used. Linear in `in`, so the backward pass runs it on the gradient
 * with the same (key, step) to apply the same mask. Element i is element 4 * first_block + shift
 * + i of the global batch (data-parallel training computes a slice of it; shift < 4): its bits
 * are those one process computing the whole batch draws for it. */
__kernel void dropout_forward(__global const float *in, __global float *out, const int n,
                              const uint threshold, const float scale, const uint key_lo,
                              const uint key_hi, const uint step_lo, const uint step_hi,
                              const uint first_block, const int shift)
{
	const int block0 = get_global_id(0) * VW, blocks = (n + shift + 3) / 4;
	if (block0 >= blocks)
		return;
	uint bits[4][VW];
	philox_blocks(first_block + (uint)block0, key_lo, key_hi, step_lo, step_hi, bits);
	if (shift == 0 && n / 4 - block0 >= VW) {
		for (int l = 0; l < VW; l++) {
			const uint4 r = (uint4)(bits[0][l], bits[1][l], bits[2][l], bits[3][l]);
			const float4 x = vload4(block0 + l, in) * scale;
			vstore4(select((float4)(0.0f), x, r >= (uint4)(threshold)), block0 + l, out);
		}
		return;
	}
	/* The last work-item (blocks past the end, a last block of fewer than 4 elements), or a slice
	 * that starts within a block. */
	for (int l = 0; l < VW && block0 + l < blocks; l++)
		for (int k = 0; k < 4; k++) {
			const int i = (block0 + l) * 4 + k - shift;
			if (i >= 0 && i < n)
				out[i] = bits[k][l] >= threshold ? in[i] * scale : 0.0f;
		}
}
