/* The runtime's shared kernels, registered as program "core". Layer plugins reach them with
 * host->kernel(layer, "core", NAME, options). Portable OpenCL C 1.2: every kernel bounds-checks
 * its global ids, because the runtime may round the global size up to a work-group multiple.
 *
 * Activation codes (plugins/common/activation.h holds the matching C table):
 *   0 linear, 1 relu, 2 sigmoid, 3 tanh, 4 softmax (row-wise; see softmax_rows). */

#define ACT_LINEAR 0
#define ACT_RELU 1
#define ACT_SIGMOID 2
#define ACT_TANH 3
#define ACT_SOFTMAX 4

/* Work-group size of softmax_rows: one work-group reduces one row. A power of two; the host
 * lowers it with -DSOFTMAX_WG=N where the device allows fewer work-items per group. */
#ifndef SOFTMAX_WG
#define SOFTMAX_WG 64
#endif

/* x[rows, cols] = act(x + bias[col]) in place. Softmax needs a whole row, so for ACT_SOFTMAX this
 * adds the bias only and the host follows with softmax_rows. `bias` is never read when
 * has_bias is 0 (the host then passes any valid buffer). */
__kernel void bias_activation(__global float *x, __global const float *bias, const int rows,
                              const int cols, const int has_bias, const int act)
{
	const int i = get_global_id(0);
	if (i >= rows * cols)
		return;
	float v = x[i];
	if (has_bias)
		v += bias[i % cols];
	switch (act) {
	case ACT_RELU:
		v = fmax(v, 0.0f);
		break;
	case ACT_SIGMOID:
		/* Split by sign so exp() never overflows to inf/inf. */
		if (v >= 0.0f) {
			v = 1.0f / (1.0f + exp(-v));
		} else {
			const float e = exp(v);
			v = e / (1.0f + e);
		}
		break;
	case ACT_TANH:
		v = tanh(v);
		break;
	default:
		break;
	}
	x[i] = v;
}

/* Tree reduction of scratch[0..SOFTMAX_WG) into scratch[0]; `is_max` picks max over sum. Every
 * work-item of the group must call it. */
static float softmax_reduce(__local float *scratch, const int lid, const int is_max)
{
	for (int span = SOFTMAX_WG / 2; span > 0; span >>= 1) {
		barrier(CLK_LOCAL_MEM_FENCE);
		if (lid < span) {
			const float a = scratch[lid], b = scratch[lid + span];
			scratch[lid] = is_max ? fmax(a, b) : a + b;
		}
	}
	barrier(CLK_LOCAL_MEM_FENCE);
	const float r = scratch[0];
	/* Nobody may overwrite scratch[0] for the next reduction before all have read it. */
	barrier(CLK_LOCAL_MEM_FENCE);
	return r;
}

/* Numerically stable row-wise softmax in place over x[rows, cols]: one work-group of SOFTMAX_WG
 * work-items per row (global size rows * SOFTMAX_WG, local size SOFTMAX_WG). */
__kernel __attribute__((reqd_work_group_size(SOFTMAX_WG, 1, 1)))
void softmax_rows(__global float *x, const int rows, const int cols)
{
	__local float scratch[SOFTMAX_WG];
	const int row = get_group_id(0);
	const int lid = get_local_id(0);
	/* A group past the last row touches no data but still meets every barrier: no early return,
	 * which PoCL 3.1 compiles into a crash when barriers follow it, even though it is uniform. */
	const int n = row < rows ? cols : 0;
	__global float *r = x + (size_t)row * cols;

	float m = -INFINITY;
	for (int j = lid; j < n; j += SOFTMAX_WG)
		m = fmax(m, r[j]);
	scratch[lid] = m;
	m = softmax_reduce(scratch, lid, 1);

	float s = 0.0f;
	for (int j = lid; j < n; j += SOFTMAX_WG) {
		const float e = exp(r[j] - m);
		r[j] = e;
		s += e;
	}
	scratch[lid] = s;
	s = softmax_reduce(scratch, lid, 0);

	const float inv = 1.0f / s;
	for (int j = lid; j < n; j += SOFTMAX_WG)
		r[j] *= inv;
}

/* dst[0..n) = src[0..n): identity layers (flatten, dropout at inference). */
__kernel void copy(__global float *dst, __global const float *src, const int n)
{
	const int i = get_global_id(0);
	if (i < n)
		dst[i] = src[i];
}
