/* Device-side random numbers for the plugins' training-only layers (noise, augmentation),
 * prepended at build time to every plugin program (plugins/meson.build). Counter-based: a draw is
 * a pure function of (key, counter) through Philox-4x32-10 (Salmon et al., "Parallel random
 * numbers: as easy as 1, 2, 3", SC'11), so a backward pass recomputes the forward pass's draws bit
 * for bit and the same seed gives the same numbers on every device. The host side of a stream (the
 * key from the run's seed and the layer's name, the step) is plugins/common/random.h. Dropout keeps
 * its own vectorized copy of the rounds (plugins/dropout/dropout.cl), tuned for CPUs. */

#define RANDOM_PHILOX_M0 0xD2511F53u
#define RANDOM_PHILOX_M1 0xCD9E8D57u
#define RANDOM_PHILOX_W0 0x9E3779B9u
#define RANDOM_PHILOX_W1 0xBB67AE85u

/* Philox-4x32-10 of counter `c` under key (k0, k1): four words of 32 random bits. The high halves
 * of the 32x32-bit products come from 64-bit products (PoCL's mul_hi is slow). */
static inline uint4 random_philox(uint4 c, uint k0, uint k1)
{
	for (int round = 0; round < 10; round++) {
		const ulong p0 = (ulong)c.x * RANDOM_PHILOX_M0;
		const ulong p1 = (ulong)c.z * RANDOM_PHILOX_M1;
		c = (uint4)((uint)(p1 >> 32) ^ c.y ^ k0, (uint)p1, (uint)(p0 >> 32) ^ c.w ^ k1, (uint)p0);
		k0 += RANDOM_PHILOX_W0;
		k1 += RANDOM_PHILOX_W1;
	}
	return c;
}

/* The four words of draw `index` of a stream: counter (index, lane, step_lo, step_hi), so two
 * lanes (e.g. a sample's parameters and its pixels' noise) never share a counter. */
static inline uint4 random_draw(uint index, uint lane, uint key_lo, uint key_hi, uint step_lo, uint step_hi)
{
	return random_philox((uint4)(index, lane, step_lo, step_hi), key_lo, key_hi);
}

/* A float uniform in [0, 1) from 32 random bits (their top 24, exactly representable). */
static inline float random_uniform(uint bits)
{
	return (float)(bits >> 8) * (1.0f / 16777216.0f);
}

/* Two independent standard normal floats from two words, by Box-Muller; 1 - u is in (0, 1], so
 * the logarithm is finite. */
static inline float2 random_normal2(uint a, uint b)
{
	const float r = sqrt(-2.0f * log(1.0f - random_uniform(a)));
	const float t = 6.283185307179586f * random_uniform(b);
	return (float2)(r * cos(t), r * sin(t));
}
