/* DepthwiseConv2D's kernels, also the depthwise half of SeparableConv2D. Input channel c of an
 * NHWC image is convolved with its own filter into output channel c; the Keras kernel (KH, KW, C)
 * read as [KH*KW, C] holds the weight of tap t = ky*KW + kx for channel c at t*C + c. Tap (ky, kx)
 * of output pixel (oy, ox) reads input pixel (oy*SH - PT + ky*DH, ox*SW - PL + kx*DW), zero
 * outside the image ('same' padding).
 *
 * A depth multiplier DM > 1 is the same convolution over the input with each channel repeated
 * DM times (dw_expand: channel c*DM + m of the repeated image is channel c), whose kernel
 * (KH, KW, C, DM) read as (KH, KW, C*DM) is Keras' own layout; the input gradient is then the
 * repeated image's, folded back by summing each channel's DM copies (dw_fold). So every kernel
 * below runs over vectors of neighbouring channels.
 *
 * Every kernel is a gather: each output element is one work-item's sum in a fixed order, so the
 * results are the same bits on every run, with no atomics. VW (dividing C), floatv, VLOAD and
 * VSTORE come from cl/vector.cl, prepended. */

/* rep[p, c*dm + m] = x[p, c] for the pixels p of the batch.
 * Dimension 0: channel j = c*dm + m of the repeated image; dimension 1: the pixel. */
__kernel void dw_expand(__global const float *x, __global float *rep, const int pixels, const int c, const int dm)
{
	const int j = get_global_id(0), p = get_global_id(1);
	if (j >= c * dm || p >= pixels)
		return;
	rep[(size_t)p * c * dm + j] = x[(size_t)p * c + j / dm];
}

/* dx[p, c] = the sum over m of drep[p, c*dm + m], in order.
 * Dimension 0: channel c; dimension 1: the pixel. */
__kernel void dw_fold(__global const float *drep, __global float *dx, const int pixels, const int c, const int dm)
{
	const int ci = get_global_id(0), p = get_global_id(1);
	if (ci >= c || p >= pixels)
		return;
	__global const float *src = drep + ((size_t)p * c + ci) * dm;
	float acc = 0.0f;
	for (int m = 0; m < dm; m++)
		acc += src[m];
	dx[(size_t)p * c + ci] = acc;
}

/* out[b, oy, ox, c..c+VW) = (bias, when has_bias, +) the sum over the taps of in * kernel.
 * Dimension 0: vector v of the C channels; dimension 1: the output pixel (b, oy, ox). */
__kernel void dw_forward(__global const float *in, __global const float *kern, __global const float *bias,
                         const int has_bias, __global float *out, const int n, const int h, const int w,
                         const int c, const int oh, const int ow, const int kh, const int kw, const int sh,
                         const int sw, const int dh, const int dw, const int pad_top, const int pad_left)
{
	const int v = get_global_id(0), pixel = get_global_id(1);
	const int ox = pixel % ow, oy = pixel / ow % oh, b = pixel / ow / oh;
	if (v >= c / VW || pixel >= n * oh * ow)
		return;
	const int ci = v * VW;
	const int y0 = oy * sh - pad_top, x0 = ox * sw - pad_left;
	floatv acc = has_bias ? VLOAD(0, bias + ci) : (floatv)(0.0f);
	for (int ky = 0; ky < kh; ky++) {
		const int y = y0 + ky * dh;
		if (y < 0 || y >= h)
			continue;
		__global const float *row = in + ((size_t)(b * h + y) * w * c + ci);
		__global const float *krow = kern + ((size_t)ky * kw * c + ci);
		for (int kx = 0; kx < kw; kx++) {
			const int x = x0 + kx * dw;
			if (x < 0 || x >= w)
				continue;
			acc += VLOAD(0, row + (size_t)x * c) * VLOAD(0, krow + (size_t)kx * c);
		}
	}
	VSTORE(acc, 0, out + ((size_t)pixel * c + ci));
}

/* dx[b, iy, ix, ci] = the sum, over the output pixels whose window reads input pixel (iy, ix) at
 * some tap, of dz[.., ci] * kernel[tap, ci]. In padded coordinates (py, px) = (iy + PT, ix + PL),
 * tap ky reads it from output row oy when py - ky*DH = oy*SH with 0 <= oy < OH.
 * Dimension 0: vector v of the C channels; dimension 1: the input pixel (b, iy, ix). */
__kernel void dw_backward_input(__global const float *dz, __global const float *kern, __global float *dx,
                                const int n, const int h, const int w, const int c, const int oh, const int ow,
                                const int kh, const int kw, const int sh, const int sw, const int dh, const int dw,
                                const int pad_top, const int pad_left)
{
	const int v = get_global_id(0), pixel = get_global_id(1);
	const int px = pixel % w + pad_left, py = pixel / w % h + pad_top, b = pixel / w / h;
	if (v >= c / VW || pixel >= n * h * w)
		return;
	const int ci = v * VW;
	floatv acc = (floatv)(0.0f);
	for (int ky = 0; ky < kh; ky++) {
		const int t = py - ky * dh;
		if (t < 0)
			break;
		const int oy = t / sh;
		if (oy * sh != t || oy >= oh)
			continue;
		for (int kx = 0; kx < kw; kx++) {
			const int u = px - kx * dw;
			if (u < 0)
				break;
			const int ox = u / sw;
			if (ox * sw != u || ox >= ow)
				continue;
			acc += VLOAD(0, dz + ((size_t)((b * oh + oy) * ow + ox) * c + ci)) *
			       VLOAD(0, kern + ((size_t)(ky * kw + kx) * c + ci));
		}
	}
	VSTORE(acc, 0, dx + ((size_t)pixel * c + ci));
}

/* The kernel gradient's partial sums: partial[blk, t*C + ci] = the sum over the output rows
 * r = (b, oy, ox) of block blk (rows [blk*R, blk*R + R) of the batch's N*OH*OW) of
 * dz[r, ci] * in[b, oy*SH - PT + ky*DH, ox*SW - PL + kx*DW, ci]. Rows in order, so the sum is the
 * same bits every time; dw_kernel_finish adds the blocks up.
 * Dimension 0: vector j of the KH*KW*C kernel elements (tap-major); dimension 1: the block. */
__kernel void dw_kernel_partials(__global const float *in, __global const float *dz, __global float *partial,
                                 const int n, const int h, const int w, const int c, const int oh, const int ow,
                                 const int kh, const int kw, const int sh, const int sw, const int dh,
                                 const int dw, const int pad_top, const int pad_left, const int block_rows,
                                 const int blocks)
{
	const int j = get_global_id(0), blk = get_global_id(1);
	const int vecs = c / VW;
	if (j >= kh * kw * vecs || blk >= blocks)
		return;
	const int tap = j / vecs, ci = (j - tap * vecs) * VW;
	const int ky = tap / kw, kx = tap - ky * kw;
	const int dy0 = ky * dh - pad_top, dx0 = kx * dw - pad_left;
	const int rows = n * oh * ow;
	int r = blk * block_rows;
	const int end = min(r + block_rows, rows);
	int ox = r % ow, oy = r / ow % oh, b = r / ow / oh;
	floatv acc = (floatv)(0.0f);
	for (; r < end; r++) {
		const int y = oy * sh + dy0, x = ox * sw + dx0;
		if (y >= 0 && y < h && x >= 0 && x < w)
			acc += VLOAD(0, in + ((size_t)((b * h + y) * w + x) * c + ci)) * VLOAD(0, dz + ((size_t)r * c + ci));
		if (++ox == ow) {
			ox = 0;
			if (++oy == oh) {
				oy = 0;
				b++;
			}
		}
	}
	VSTORE(acc, 0, partial + ((size_t)blk * kh * kw * c + (size_t)j * VW));
}

/* dk[e] = the sum of partial[blk, e] over the blocks, in block order, for the k kernel elements.
 * Dimension 0: vector j of the k elements. */
__kernel void dw_kernel_finish(__global const float *partial, __global float *dk, const int k, const int blocks)
{
	const int j = get_global_id(0);
	if (j >= k / VW)
		return;
	floatv acc = (floatv)(0.0f);
	for (int blk = 0; blk < blocks; blk++)
		acc += VLOAD(0, partial + ((size_t)blk * k + (size_t)j * VW));
	VSTORE(acc, 0, dk + (size_t)j * VW);
}
