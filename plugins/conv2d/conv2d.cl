/* Conv2D's kernels. The convolution itself is a GEMM (host->gemm): im2col lays the input out as
 * rows so that cols[N*OH*OW, KH*KW*C] x kernel[KH*KW*C, F] is the NHWC output; backward, col2im
 * folds the GEMM's dcols back onto the input. */

/* cols[((b*OH + oy)*OW + ox), ((ky*KW + kx)*C + ci)] = in[b, oy*SH - PT + ky, ox*SW - PL + kx, ci],
 * zero outside the input ('same' padding). The column order (ky, kx, ci) is the row order of
 * the Keras HWIO kernel (KH, KW, C, F) read as a [KH*KW*C, F] matrix.
 *
 * One work-item per (output pixel, ky) copies one kernel row of the patch: KW*C values that are
 * contiguous in both the NHWC input and the cols row. On PoCL (CPU) this ran the MNIST CNN's
 * second im2col 11x faster than one work-item per element, whose five integer divisions per
 * value dominated. */
__kernel void im2col(__global const float *in, __global float *cols, const int n, const int h,
                     const int w, const int c, const int kh, const int kw, const int sh, const int sw,
                     const int pad_top, const int pad_left, const int oh, const int ow)
{
	const int t = get_global_id(0);
	if (t >= n * oh * ow * kh)
		return;
	const int span = kw * c;
	const int ky = t % kh;
	const int pixel = t / kh;
	const int ox = pixel % ow;
	const int oy = (pixel / ow) % oh;
	const int b = pixel / (ow * oh);
	const int iy = oy * sh - pad_top + ky;
	const int x0 = ox * sw - pad_left;
	__global float *dst = cols + (size_t)t * span;
	if (iy < 0 || iy >= h) {
		for (int j = 0; j < span; j++)
			dst[j] = 0.0f;
		return;
	}
	__global const float *row = in + (b * h + iy) * w * c;
	for (int kx = 0; kx < kw; kx++) {
		const int x = x0 + kx;
		if (x >= 0 && x < w) {
			for (int ci = 0; ci < c; ci++)
				dst[kx * c + ci] = row[x * c + ci];
		} else {
			for (int ci = 0; ci < c; ci++)
				dst[kx * c + ci] = 0.0f;
		}
	}
}

/* The adjoint of im2col: dx[b, iy, ix, ci] = the sum of the cols entries that im2col copied from
 * in[b, iy, ix, ci], one for every (output pixel, ky, kx) whose window reads that element. A
 * gather, one work-item per input element, so overlapping windows need neither atomics nor a
 * zeroed output. In padded coordinates (py, px) = (iy + PT, ix + PL), the windows reading the
 * element have ky = py - oy*SH, i.e. ky = py mod SH, py mod SH + SH, ... while oy stays in range. */
__kernel void col2im(__global const float *cols, __global float *dx, const int n, const int h, const int w,
                     const int c, const int kh, const int kw, const int sh, const int sw, const int pad_top,
                     const int pad_left, const int oh, const int ow)
{
	const int i = get_global_id(0);
	if (i >= n * h * w * c)
		return;
	int t = i;
	const int ci = t % c;
	t /= c;
	const int px = t % w + pad_left;
	t /= w;
	const int py = t % h + pad_top;
	const int b = t / h;
	const int depth = kh * kw * c;
	float acc = 0.0f;
	for (int ky = py % sh; ky < kh && ky <= py; ky += sh) {
		const int oy = (py - ky) / sh;
		if (oy >= oh)
			continue; /* past the bottom output row; a larger ky may still land inside */
		__global const float *out_row = cols + (size_t)(b * oh + oy) * ow * depth + ky * kw * c + ci;
		for (int kx = px % sw; kx < kw && kx <= px; kx += sw) {
			const int ox = (px - kx) / sw;
			if (ox < ow)
				acc += out_row[(size_t)ox * depth + kx * c];
		}
	}
	dx[i] = acc;
}
