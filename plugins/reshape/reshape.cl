/* Permute's and RepeatVector's kernels (Reshape moves no data around: the host's copy does it).
 * Every launch is 2-D, dimension 0 along the innermost axis of the tensor written, so that
 * neighbouring work-items write neighbouring floats, dimension 1 over its rows; a work-item works
 * out its row's coordinates before the bounds check, so that PoCL can hoist the integer divisions
 * out of its loop over dimension 0. One writer per element, sums in a fixed order: the same input
 * gives the same bits. */

/* A transpose of samples padded to rank 4, dst[b, i0, i1, i2, i3] = src[b] at element
 * i0 * s0 + i1 * s1 + i2 * s2 + i3 * s3: dst's axes are (d0, d1, d2, d3), s0..s3 the strides in
 * src of the axes they come from (0 for the padding axes, of size 1), `sample` the floats of a
 * sample. Permute's forward pass takes src = x, its backward pass src = dy with the inverse
 * permutation. Dimension 0: i3; dimension 1: the row (b, i0, i1, i2). */
__kernel void permute_transpose(__global const float *src, __global float *dst, const int n, const int d0,
                                const int d1, const int d2, const int d3, const int s0, const int s1, const int s2,
                                const int s3, const int sample)
{
	const int i3 = get_global_id(0), row = get_global_id(1);
	const int i2 = row % d2, i1 = row / d2 % d1, i0 = row / d2 / d1 % d0, b = row / d2 / d1 / d0;
	if (i3 >= d3 || row >= n * d0 * d1 * d2)
		return;
	const int at = i0 * s0 + i1 * s1 + i2 * s2 + i3 * s3;
	dst[(size_t)row * (size_t)d3 + (size_t)i3] = src[(size_t)b * (size_t)sample + (size_t)at];
}

/* RepeatVector: out[b, i, :] = in[b, :] for i < repeats. Dimension 0: the feature; dimension 1:
 * the output row (b, i). */
__kernel void repeat_vector_forward(__global const float *in, __global float *out, const int n, const int repeats,
                                    const int features)
{
	const int f = get_global_id(0), row = get_global_id(1);
	const int b = row / repeats;
	if (f >= features || row >= n * repeats)
		return;
	out[(size_t)row * (size_t)features + (size_t)f] = in[(size_t)b * (size_t)features + (size_t)f];
}

/* dx[b, :] = the sum of dy[b, i, :] over i in order. Dimension 0: the feature; dimension 1: the
 * sample. */
__kernel void repeat_vector_backward(__global const float *dy, __global float *dx, const int n, const int repeats,
                                     const int features)
{
	const int f = get_global_id(0), b = get_global_id(1);
	if (f >= features || b >= n)
		return;
	__global const float *p = dy + ((size_t)b * (size_t)repeats * (size_t)features + (size_t)f);
	float g = 0.0f;
	for (int i = 0; i < repeats; i++)
		g += p[(size_t)i * (size_t)features];
	dx[(size_t)b * (size_t)features + (size_t)f] = g;
}
