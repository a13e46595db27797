/* y = factor * x + offset, one work-item per element. The runtime may round the global size up
 * to a multiple of the work-group size, so every id is bounds-checked. */
__kernel void scale_affine(__global const float *x, __global float *y, const uint n, const float factor,
                           const float offset)
{
	const size_t i = get_global_id(0);

	if (i >= n)
		return;
	y[i] = factor * x[i] + offset;
}
