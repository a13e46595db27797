/* MaxPooling2D's forward kernel over NHWC tensors. */

/* out[b, oy, ox, ci] = max of in[b, oy*SH - PT + ky, ox*SW - PL + kx, ci] over the window's
 * positions inside the input: 'same' padding never wins a max, as in TensorFlow. Every window
 * holds at least one input position (the host's padding is smaller than the window). */
__kernel void maxpool2d_forward(__global const float *in, __global float *out, const int n, const int h,
                                const int w, const int c, const int ph, const int pw, const int sh,
                                const int sw, const int pad_top, const int pad_left, const int oh,
                                const int ow)
{
	const int i = get_global_id(0);
	if (i >= n * oh * ow * c)
		return;
	int t = i;
	const int ci = t % c;
	t /= c;
	const int ox = t % ow;
	t /= ow;
	const int oy = t % oh;
	const int b = t / oh;
	const int y0 = oy * sh - pad_top, x0 = ox * sw - pad_left;
	const int y_lo = max(y0, 0), y_hi = min(y0 + ph, h);
	const int x_lo = max(x0, 0), x_hi = min(x0 + pw, w);
	float m = -INFINITY;
	for (int y = y_lo; y < y_hi; y++)
		for (int x = x_lo; x < x_hi; x++)
			m = fmax(m, in[((b * h + y) * w + x) * c + ci]);
	out[i] = m;
}
