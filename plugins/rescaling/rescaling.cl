/* Rescaling (plugins/rescaling/rescaling.c): y = x * scale + offset, scale and offset each one
 * number or one per channel (the last axis, at most 4 channels: the parameters' lists). The
 * product is rounded before the sum, as Keras computes it (and as ONNX's Mul then Add do), on
 * every device: no contraction into a fused multiply-add. */
#pragma OPENCL FP_CONTRACT OFF

/* The value of a per-channel parameter for channel c: one number (count 1) or one of four. */
static float rescaling_pick(const int count, const int c, const float v0, const float v1, const float v2,
                            const float v3)
{
	const int k = count == 1 ? 0 : c;
	return k == 0 ? v0 : k == 1 ? v1 : k == 2 ? v2 : v3;
}

/* y[i] = x[i] * scale(c) + offset(c), c = i % channels. */
__kernel void rescaling_forward(__global float *y, __global const float *x, const int n, const int channels,
                                const int n_scale, const float s0, const float s1, const float s2, const float s3,
                                const int n_offset, const float o0, const float o1, const float o2, const float o3)
{
	const int i = get_global_id(0);
	if (i >= n)
		return;
	const int c = i % channels;
	y[i] = x[i] * rescaling_pick(n_scale, c, s0, s1, s2, s3) + rescaling_pick(n_offset, c, o0, o1, o2, o3);
}

/* dx[i] = dy[i] * scale(c): the offset has no gradient, the layer no weights. */
__kernel void rescaling_backward(__global float *dx, __global const float *dy, const int n, const int channels,
                                 const int n_scale, const float s0, const float s1, const float s2, const float s3)
{
	const int i = get_global_id(0);
	if (i >= n)
		return;
	dx[i] = dy[i] * rescaling_pick(n_scale, i % channels, s0, s1, s2, s3);
}
