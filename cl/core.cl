/* The runtime's shared kernels, registered as program "core". Layer plugins reach them through
 * the host's declared services (host->activation_forward, activation_backward, column_sums, copy,
 * fill in plugin.h; src/exec/host_services.c launches them). Plugins built before those services
 * launch the kernels by name (host->kernel(layer, "core", NAME, options)), so their names,
 * arguments and -D options stay as they are. Portable OpenCL C 1.2: every kernel bounds-checks
 * its global ids, because the runtime may round the global size up to a work-group multiple.
 *
 * Activation codes (src/exec/host_services.c holds the matching names, Keras' names):
 *   0 linear, 1 relu, 2 sigmoid, 3 tanh, 4 softmax (row-wise; see softmax_rows), then, added with
 *   issue 14 in Keras 3's definitions: 5 elu, 6 selu, 7 gelu (exact, with erf), 8 swish (silu),
 *   9 softplus, 10 softsign, 11 hard_sigmoid (relu6(x + 3) / 6), 12 exponential, 13 relu6,
 *   14 leaky_relu (slope 0.2, Keras' activation default), 15 hard_silu (hard_swish), 16 mish, then,
 *   with issue 16: 17 log_softmax (row-wise; see log_softmax_rows).
 * The derivative of most of them is a function of their output y, which the forward pass keeps
 * (act_grad_y); gelu, swish, hard_silu and mish are not invertible, so their derivative needs the
 * input (act_grad_x, kernel activation_backward_input). */

#define ACT_LINEAR 0
#define ACT_RELU 1
#define ACT_SIGMOID 2
#define ACT_TANH 3
#define ACT_SOFTMAX 4
#define ACT_ELU 5
#define ACT_SELU 6
#define ACT_GELU 7
#define ACT_SWISH 8
#define ACT_SOFTPLUS 9
#define ACT_SOFTSIGN 10
#define ACT_HARD_SIGMOID 11
#define ACT_EXPONENTIAL 12
#define ACT_RELU6 13
#define ACT_LEAKY_RELU 14
#define ACT_HARD_SILU 15
#define ACT_MISH 16
#define ACT_LOG_SOFTMAX 17

#define SELU_ALPHA 1.6732632423543772f
#define SELU_SCALE 1.0507009873554805f
#define LEAKY_SLOPE 0.2f

/* Work-group size of the row-wise softmax kernels: one work-group reduces one row. A power of
 * two; the host lowers it with -DSOFTMAX_WG=N where the device allows fewer work-items. */
#ifndef SOFTMAX_WG
#define SOFTMAX_WG 64
#endif

/* Widest vector, in floats, that a work-item of bias_grad_partials handles: 1, 2, 4, 8 or 16. The
 * host passes -DVW=N with N dividing the column count, up to its "vw" tunable. */
/* VW, floatv, VLOAD and VSTORE come from cl/vector.cl, prepended at build time. */

/* The activation of bias_activation and activation_backward, fixed when the program is built
 * (-DACT=code): with the code a kernel argument, the branches on it kept PoCL from vectorizing
 * the kernels' loops over their work-items, which made bias_activation's relu 4x slower. */
#ifndef ACT
#define ACT ACT_LINEAR
#endif

/* sigmoid(v) without overflow: exp() of minus |v| never overflows. */
static float act_sigmoid(const float v)
{
	const float e = exp(-fabs(v));
	return (v >= 0.0f ? 1.0f : e) / (1.0f + e);
}

/* softplus(v) = log(1 + e^v) without overflow or loss for large |v|. */
static float act_softplus(const float v)
{
	return fmax(v, 0.0f) + log1p(exp(-fabs(v)));
}

/* The elementwise activation ACT of v (softmax, log_softmax and linear: v). */
static float act_forward(float v)
{
#if ACT == ACT_RELU
	v = fmax(v, 0.0f);
#elif ACT == ACT_SIGMOID
	v = act_sigmoid(v);
#elif ACT == ACT_TANH
	v = tanh(v);
#elif ACT == ACT_ELU
	v = v > 0.0f ? v : expm1(v);
#elif ACT == ACT_SELU
	v = SELU_SCALE * (v > 0.0f ? v : SELU_ALPHA * expm1(v));
#elif ACT == ACT_GELU
	v = 0.5f * v * (1.0f + erf(v * 0.7071067811865476f));
#elif ACT == ACT_SWISH
	v = v * act_sigmoid(v);
#elif ACT == ACT_SOFTPLUS
	v = act_softplus(v);
#elif ACT == ACT_SOFTSIGN
	v = v / (1.0f + fabs(v));
#elif ACT == ACT_HARD_SIGMOID
	v = clamp(v * (1.0f / 6.0f) + 0.5f, 0.0f, 1.0f);
#elif ACT == ACT_EXPONENTIAL
	v = exp(v);
#elif ACT == ACT_RELU6
	v = clamp(v, 0.0f, 6.0f);
#elif ACT == ACT_LEAKY_RELU
	v = v > 0.0f ? v : LEAKY_SLOPE * v;
#elif ACT == ACT_HARD_SILU
	v = v * clamp(v * (1.0f / 6.0f) + 0.5f, 0.0f, 1.0f);
#elif ACT == ACT_MISH
	v = v * tanh(act_softplus(v));
#endif
	return v;
}

/* ACT'(x) as a function of the output y = ACT(x), for the activations where that is a function
 * (every one but gelu, swish, hard_silu and mish, which take act_grad_x). */
static float act_grad_y(const float y)
{
#if ACT == ACT_RELU
	return y > 0.0f ? 1.0f : 0.0f;
#elif ACT == ACT_SIGMOID
	return y * (1.0f - y);
#elif ACT == ACT_TANH
	return 1.0f - y * y;
#elif ACT == ACT_ELU
	return y > 0.0f ? 1.0f : y + 1.0f;
#elif ACT == ACT_SELU
	return y > 0.0f ? SELU_SCALE : y + SELU_SCALE * SELU_ALPHA;
#elif ACT == ACT_SOFTPLUS
	return -expm1(-y); /* sigmoid(x) = 1 - e^-softplus(x) */
#elif ACT == ACT_SOFTSIGN
	return (1.0f - fabs(y)) * (1.0f - fabs(y)); /* 1 / (1 + |x|)^2 */
#elif ACT == ACT_HARD_SIGMOID
	return y > 0.0f && y < 1.0f ? 1.0f / 6.0f : 0.0f;
#elif ACT == ACT_EXPONENTIAL
	return y;
#elif ACT == ACT_RELU6
	return y > 0.0f && y < 6.0f ? 1.0f : 0.0f;
#elif ACT == ACT_LEAKY_RELU
	return y > 0.0f ? 1.0f : LEAKY_SLOPE;
#else
	return 1.0f;
#endif
}

/* ACT'(x) from the input x, for every elementwise activation. */
static float act_grad_x(const float x)
{
#if ACT == ACT_RELU
	return x > 0.0f ? 1.0f : 0.0f;
#elif ACT == ACT_SIGMOID
	const float s = act_sigmoid(x);
	return s * (1.0f - s);
#elif ACT == ACT_TANH
	const float t = tanh(x);
	return 1.0f - t * t;
#elif ACT == ACT_ELU
	return x > 0.0f ? 1.0f : exp(x);
#elif ACT == ACT_SELU
	return x > 0.0f ? SELU_SCALE : SELU_SCALE * SELU_ALPHA * exp(x);
#elif ACT == ACT_GELU
	/* Phi(x) + x phi(x) */
	return 0.5f * (1.0f + erf(x * 0.7071067811865476f)) + x * 0.3989422804014327f * exp(-0.5f * x * x);
#elif ACT == ACT_SWISH
	const float s = act_sigmoid(x);
	return s + x * s * (1.0f - s);
#elif ACT == ACT_SOFTPLUS
	return act_sigmoid(x);
#elif ACT == ACT_SOFTSIGN
	const float d = 1.0f + fabs(x);
	return 1.0f / (d * d);
#elif ACT == ACT_HARD_SIGMOID
	return x > -3.0f && x < 3.0f ? 1.0f / 6.0f : 0.0f;
#elif ACT == ACT_EXPONENTIAL
	return exp(x);
#elif ACT == ACT_RELU6
	return x > 0.0f && x < 6.0f ? 1.0f : 0.0f;
#elif ACT == ACT_LEAKY_RELU
	return x > 0.0f ? 1.0f : LEAKY_SLOPE;
#elif ACT == ACT_HARD_SILU
	return x < -3.0f ? 0.0f : x > 3.0f ? 1.0f : x * (1.0f / 3.0f) + 0.5f;
#elif ACT == ACT_MISH
	const float t = tanh(act_softplus(x));
	return t + x * (1.0f - t * t) * act_sigmoid(x);
#else
	return 1.0f;
#endif
}

/* dst[rows, cols] = ACT(src + bias[col]); dst may be src (in place). Softmax needs a whole row,
 * so for ACT_SOFTMAX this adds the bias only and the host follows with softmax_rows. `bias` is
 * never read when has_bias is 0 (the host then passes any valid buffer).
 *
 * A 2-D launch, dimension 0 over the columns and 1 over the rows: the column comes without the
 * integer modulo that a 1-D launch needs per element (on PoCL it cost more than the memory
 * traffic), neighbouring work-items touch neighbouring floats (coalesced on GPUs), and PoCL
 * vectorizes its loop over dimension 0. */
__kernel void bias_activation(__global float *dst, __global const float *src, __global const float *bias,
                              const int rows, const int cols, const int has_bias)
{
	const int col = get_global_id(0), row = get_global_id(1);
	if (col >= cols || row >= rows)
		return;
	const size_t i = (size_t)row * cols + col;
	float v = src[i];
	if (has_bias)
		v += bias[col];
	dst[i] = act_forward(v);
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

/* dz[i] = dy[i] * ACT'(i) for the elementwise activations, the derivative written in terms of
 * the activation's output y (what the forward pass kept; act_grad_y): relu y > 0, sigmoid
 * y (1 - y), tanh 1 - y^2, linear 1, ... dz may be dy (in place). Softmax: see
 * softmax_backward_rows. The activation is fixed at build time (-DACT=code), as for
 * bias_activation. Relu keeps its select: dy * 0 would turn an infinite dy into NaN. */
__kernel void activation_backward(__global float *dz, __global const float *dy, __global const float *y,
                                  const int n)
{
	const int i = get_global_id(0);
	if (i >= n)
		return;
	const float g = dy[i], v = y[i];
#if ACT == ACT_RELU
	dz[i] = v > 0.0f ? g : 0.0f;
#else
	dz[i] = g * act_grad_y(v);
#endif
}

/* dz[rows, cols] = dy * ACT'(x + bias[col]), the derivative from the activation's input x (and
 * the bias added before it; has_bias 0 never reads `bias`): the activations whose derivative is
 * no function of their output (gelu, swish, hard_silu, mish) and any other elementwise one. dz
 * may be dy. Launched like bias_activation. */
__kernel void activation_backward_input(__global float *dz, __global const float *dy, __global const float *x,
                                        __global const float *bias, const int rows, const int cols,
                                        const int has_bias)
{
	const int col = get_global_id(0), row = get_global_id(1);
	if (col >= cols || row >= rows)
		return;
	const size_t i = (size_t)row * cols + col;
	float v = x[i];
	if (has_bias)
		v += bias[col];
	dz[i] = dy[i] * act_grad_x(v);
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

/* Row-wise log-softmax of src[rows, cols] into dst (which may be src): x - max - log(sum exp(x -
 * max)), stable for any x. Launched like softmax_rows; each work-item reads and writes only its
 * own columns. */
__kernel __attribute__((reqd_work_group_size(SOFTMAX_WG, 1, 1)))
void log_softmax_rows(__global float *dst, __global const float *src, const int rows, const int cols)
{
	__local float scratch[SOFTMAX_WG];
	const int row = get_group_id(0);
	const int lid = get_local_id(0);
	const int n = row < rows ? cols : 0; /* no early return: see softmax_rows */
	__global const float *s_row = src + (size_t)row * cols;
	__global float *d_row = dst + (size_t)row * cols;

	float m = -INFINITY;
	for (int j = lid; j < n; j += SOFTMAX_WG)
		m = fmax(m, s_row[j]);
	scratch[lid] = m;
	m = group_reduce(scratch, lid, SOFTMAX_WG, 1);

	float s = 0.0f;
	for (int j = lid; j < n; j += SOFTMAX_WG)
		s += exp(s_row[j] - m);
	scratch[lid] = s;
	s = group_reduce(scratch, lid, SOFTMAX_WG, 0);

	const float shift = m + log(s);
	for (int j = lid; j < n; j += SOFTMAX_WG)
		d_row[j] = s_row[j] - shift;
}

/* Row-wise log-softmax Jacobian-vector product from its output y (exp(y) is the softmax):
 * dz[r, j] = dy[r, j] - exp(y[r, j]) * sum_k dy[r, k]. Launched like softmax_rows; dz may be dy
 * (every dy a work-item reads for the sum is read before the reduction's barriers). */
__kernel __attribute__((reqd_work_group_size(SOFTMAX_WG, 1, 1)))
void log_softmax_backward_rows(__global float *dz, __global const float *dy, __global const float *y,
                               const int rows, const int cols)
{
	__local float scratch[SOFTMAX_WG];
	const int row = get_group_id(0);
	const int lid = get_local_id(0);
	const int n = row < rows ? cols : 0; /* no early return: see softmax_rows */
	const size_t base = (size_t)row * cols;

	float sum = 0.0f;
	for (int j = lid; j < n; j += SOFTMAX_WG)
		sum += dy[base + j];
	scratch[lid] = sum;
	sum = group_reduce(scratch, lid, SOFTMAX_WG, 0);

	for (int j = lid; j < n; j += SOFTMAX_WG)
		dz[base + j] = dy[base + j] - exp(y[base + j]) * sum;
}

/* The bias gradient, stage 1: dz = dy * act'(y) in place over dz[rows, cols] (the derivative of
 * activation_backward; ACT_LINEAR leaves dz as it is and never reads y, for a linear or softmax
 * layer whose dz is already final), and partial[blk, col] = the sum of dz[r, col] over the rows
 * r of block blk, [blk * per_item, (blk + 1) * per_item). One pass over dz for the derivative
 * and the column sums together.
 *
 * A 2-D launch: dimension 0 over the column groups of VW floats (the host picks VW dividing
 * cols), dimension 1 over the row blocks. A work-item walks its block's rows with one vector:
 * neighbouring work-items read neighbouring columns of a row (coalesced on GPUs), a CPU work-item
 * a contiguous vector per row, and the blocks give both CPU cores and GPU work. */
__kernel void bias_grad_partials(__global float *dz, __global const float *y, __global float *partial,
                                 const int rows, const int cols, const int per_item, const int act)
{
	const int group = get_global_id(0), blk = get_global_id(1);
	const int groups = cols / VW;
	if (group >= groups || blk > (rows - 1) / per_item)
		return;
	/* min(r0 + per_item, rows), without overflow for rows near INT_MAX */
	const int r0 = blk * per_item, r1 = min(r0, rows - per_item) + per_item;
	size_t i = (size_t)r0 * groups + group; /* in vectors */
	floatv s = (floatv)(0.0f);
	for (int r = r0; r < r1; r++, i += groups) {
		floatv d = VLOAD(i, dz);
		if (act != ACT_LINEAR) {
			const floatv v = VLOAD(i, y);
			switch (act) {
			case ACT_RELU:
				d = select((floatv)(0.0f), d, isgreater(v, (floatv)(0.0f)));
				break;
			case ACT_SIGMOID:
				d = d * v * (1.0f - v);
				break;
			case ACT_TANH:
				d = d * (1.0f - v * v);
				break;
			default:
				break;
			}
			VSTORE(d, i, dz);
		}
		s += d;
	}
	VSTORE(s, (size_t)blk * groups + group, partial);
}

/* The bias gradient, stage 2: sums[col] = the sum of partial[blk, col] over `blocks` blocks. One
 * work-item per column; neighbouring work-items read neighbouring floats. */
__kernel void column_sums_finish(__global const float *partial, __global float *sums, const int blocks,
                                 const int cols)
{
	const int col = get_global_id(0);
	if (col >= cols)
		return;
	float s = 0.0f;
	for (int b = 0; b < blocks; b++)
		s += partial[(size_t)b * cols + col];
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

/* dst[0..n) += src[0..n): a gradient summed where a value feeds several layers, and weight
 * gradients of layers that share weights. */
__kernel void accumulate(__global float *dst, __global const float *src, const int n)
{
	const int i = get_global_id(0);
	if (i < n)
		dst[i] += src[i];
}

/* dst[0..n) *= src[0..n): the masks of a merge's inputs combined, as Keras ANDs them (1 where every
 * input's step is real). */
__kernel void multiply(__global float *dst, __global const float *src, const int n)
{
	const int i = get_global_id(0);
	if (i < n)
		dst[i] *= src[i];
}
