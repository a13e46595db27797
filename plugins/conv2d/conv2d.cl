/* Conv2D's kernels. The convolution itself is a GEMM (host->gemm): im2col lays the input out as
 * rows so that cols[N*OH*OW, KH*KW*C] x kernel[KH*KW*C, F] is the NHWC output. */

/* cols[((b*OH + oy)*OW + ox), ((ky*KW + kx)*C + ci)] = in[b, oy*SH - PT + ky, ox*SW - PL + kx, ci],
 * zero outside the input ('same' padding). The column order (ky, kx, ci) is the row order of
 * the Keras HWIO kernel (KH, KW, C, F) read as a [KH*KW*C, F] matrix. One work-item per element
 * of cols, so consecutive work-items write consecutive addresses. */
__kernel void im2col(__global const float *in, __global float *cols, const int n, const int h,
                     const int w, const int c, const int kh, const int kw, const int sh, const int sw,
                     const int pad_top, const int pad_left, const int oh, const int ow)
{
	const int i = get_global_id(0);
	if (i >= n * oh * ow * kh * kw * c)
		return;
	int t = i;
	const int ci = t % c;
	t /= c;
	const int kx = t % kw;
	t /= kw;
	const int ky = t % kh;
	t /= kh;
	const int ox = t % ow;
	t /= ow;
	const int oy = t % oh;
	const int b = t / oh;
	const int iy = oy * sh - pad_top + ky;
	const int ix = ox * sw - pad_left + kx;
	float v = 0.0f;
	if (iy >= 0 && iy < h && ix >= 0 && ix < w)
		v = in[((b * h + iy) * w + ix) * c + ci];
	cols[i] = v;
}
