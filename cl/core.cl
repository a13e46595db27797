/* The runtime's shared kernels, registered as program "core". Layer plugins reach them with
 * host->kernel(layer, "core", NAME, options), through plugins/common/core.h and activation.h.
 * Portable OpenCL C 1.2: every kernel bounds-checks its global ids, because the runtime may round
 * the global size up to a work-group multiple.
 *
 * Activation codes (plugins/common/activation.h holds the matching C table):
 *   0 linear, 1 relu, 2 sigmoid, 3 tanh, 4 softmax (row-wise; see softmax_rows). */

#define ACT_LINEAR 0
#define ACT_RELU 1
#define ACT_SIGMOID 2
#define ACT_TANH 3
#define ACT_SOFTMAX 4

/* Work-group size of the row-wise softmax kernels: one work-group reduces one row. A power of
 * two; the host lowers it with -DSOFTMAX_WG=N where the device allows fewer work-items. */
#ifndef SOFTMAX_WG
#define SOFTMAX_WG 64
#endif

/* Work-group size of column_sums: one work-group reduces one column. A power of two, lowered
 * by the host with -DCOLSUM_WG=N like SOFTMAX_WG. */
#ifndef COLSUM_WG
#define COLSUM_WG 64
#endif

/* dst[rows, cols] = act(src + bias[col]); dst may be src (in place). Softmax needs a whole row,
 * so for ACT_SOFTMAX this adds the bias only and the host follows with softmax_rows. `bias` is
 * never read when has_bias is 0 (the host then passes any valid buffer). */
__kernel void bias_activation(__global float *dst, __global const float *src, __global const float *bias,
                              const int rows, const int cols, const int has_bias, const int act)
{
	const int i = get_global_id(0);
	if (i >= rows * cols)
		return;
	float v = src[i];
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
	dst[i] = v;
}

/* Tree reduction of scratch[0..size) into the return value; `is_max` picks max over sum. `size`
 * is a power of two, the work-group size. Every work-item of the group must call it. */
static float group_reduce(__local float *scratch, const int lid, const int size, const int is_max)
{
	for (int span = size / 2; span > 0; span >>= 1) {
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

/* Numerically stable row-wise softmax of src[rows, cols] into dst (which may be src): one
 * work-group of SOFTMAX_WG work-items per row (global size rows * SOFTMAX_WG, local size
 * SOFTMAX_WG). Each work-item reads and writes only its own columns, so in place is safe. */
__kernel __attribute__((reqd_work_group_size(SOFTMAX_WG, 1, 1)))
void softmax_rows(__global float *dst, __global const float *src, const int rows, const int cols)
{
	__local float scratch[SOFTMAX_WG];
	const int row = get_group_id(0);
	const int lid = get_local_id(0);
	/* A group past the last row touches no data but still meets every barrier: no early return,
	 * which PoCL 3.1 compiles into a crash when barriers follow it, even though it is uniform. */
	const int n = row < rows ? cols : 0;
	__global const float *s_row = src + (size_t)row * cols;
	__global float *d_row = dst + (size_t)row * cols;

	float m = -INFINITY;
	for (int j = lid; j < n; j += SOFTMAX_WG)
		m = fmax(m, s_row[j]);
	scratch[lid] = m;
	m = group_reduce(scratch, lid, SOFTMAX_WG, 1);

	float s = 0.0f;
	for (int j = lid; j < n; j += SOFTMAX_WG) {
		const float e = exp(s_row[j] - m);
		d_row[j] = e;
		s += e;
	}
	scratch[lid] = s;
	s = group_reduce(scratch, lid, SOFTMAX_WG, 0);

	const float inv = 1.0f / s;
	for (int j = lid; j < n; j += SOFTMAX_WG)
		d_row[j] *= inv;
}

/* dz[i] = dy[i] * act'(i) for the elementwise activations, the derivative written in terms of
 * the activation's output y (what the forward pass kept): relu y > 0, sigmoid y (1 - y),
 * tanh 1 - y^2, linear 1. dz may be dy (in place). Softmax: see softmax_backward_rows. */
__kernel void activation_backward(__global float *dz, __global const float *dy, __global const float *y,
                                  const int n, const int act)
{
	const int i = get_global_id(0);
	if (i >= n)
		return;
	const float g = dy[i], v = y[i];
	float d;
	switch (act) {
	case ACT_RELU:
		d = v > 0.0f ? g : 0.0f;
		break;
	case ACT_SIGMOID:
		d = g * v * (1.0f - v);
		break;
	case ACT_TANH:
		d = g * (1.0f - v * v);
		break;
	default:
		d = g;
		break;
	}
	dz[i] = d;
}

/* Row-wise softmax Jacobian-vector product from the softmax output y:
 * dz[r, j] = y[r, j] * (dy[r, j] - sum_k dy[r, k] * y[r, k]). Launched like softmax_rows; dz may
 * be dy, since every dy a work-item reads for the dot product is read before the reduction's
 * barriers and each work-item then writes only its own columns. */
__kernel __attribute__((reqd_work_group_size(SOFTMAX_WG, 1, 1)))
void softmax_backward_rows(__global float *dz, __global const float *dy, __global const float *y,
                           const int rows, const int cols)
{
	__local float scratch[SOFTMAX_WG];
	const int row = get_group_id(0);
	const int lid = get_local_id(0);
	const int n = row < rows ? cols : 0; /* no early return: see softmax_rows */
	const size_t base = (size_t)row * cols;

	float dot = 0.0f;
	for (int j = lid; j < n; j += SOFTMAX_WG)
		dot += dy[base + j] * y[base + j];
	scratch[lid] = dot;
	dot = group_reduce(scratch, lid, SOFTMAX_WG, 0);

	for (int j = lid; j < n; j += SOFTMAX_WG)
		dz[base + j] = y[base + j] * (dy[base + j] - dot);
}

/* sums[col] = sum over the rows of x[rows, cols]: bias gradients. One work-group of COLSUM_WG
 * work-items per column (global size cols * COLSUM_WG, local size COLSUM_WG); each work-item
 * adds every COLSUM_WG-th row, then the group reduces its partial sums in local memory. */
__kernel __attribute__((reqd_work_group_size(COLSUM_WG, 1, 1)))
void column_sums(__global const float *x, __global float *sums, const int rows, const int cols)
{
	__local float scratch[COLSUM_WG];
	const int col = get_group_id(0);
	const int lid = get_local_id(0);
	const int n = col < cols ? rows : 0; /* no early return: see softmax_rows */

	float s = 0.0f;
	for (int r = lid; r < n; r += COLSUM_WG)
		s += x[(size_t)r * cols + col];
	scratch[lid] = s;
	s = group_reduce(scratch, lid, COLSUM_WG, 0);
	if (lid == 0 && col < cols)
		sums[col] = s;
}

/* dst[0..n) = src[0..n): identity layers (flatten, dropout at inference) and their gradients. */
__kernel void copy(__global float *dst, __global const float *src, const int n)
{
	const int i = get_global_id(0);
	if (i < n)
		dst[i] = src[i];
}

/* dst[0..n) = value: zero gradients of an empty batch. */
__kernel void fill(__global float *dst, const float value, const int n)
{
	const int i = get_global_id(0);
	if (i < n)
		dst[i] = value;
}
