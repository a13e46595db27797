/* y = a * x0 + b * x1, one work-item per element (bounds-checked: the global size may be rounded
 * up); with b = 0 and x1 = x0 it scales one tensor, which the backward pass uses. */
__kernel void blend_pair(__global const float *x0, __global const float *x1, __global float *y, const uint n,
                         const float a, const float b)
{
	const size_t i = get_global_id(0);

	if (i >= n)
		return;
	y[i] = a * x0[i] + b * x1[i];
}
