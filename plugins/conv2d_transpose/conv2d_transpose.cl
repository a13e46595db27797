/* Conv2DTranspose's kernels. The layer is the adjoint of a convolution: the convolution from the
 * (OH, OW, F) output image to the (H, W, C) input, with kernel (KH, KW, F, C), strides (SH, SW),
 * dilation (DH, DW) and TensorFlow's padding (PT, PL before). Its tap (ky, kx) of input pixel
 * (iy, ix) sits at output pixel (iy*SH - PT + ky*DH, ix*SW - PL + kx*DW).
 *
 * Forward: a GEMM gives cols[N*H*W, KH*KW*F] = x[N*H*W, C] kernel^T, the contribution of each
 * input pixel to each tap's F channels; ct_gather sums, for each output pixel, the taps that land
 * on it (a gather in a fixed order: no atomics, the same bits every run) and adds the bias.
 * Backward: ct_im2col lays dLoss/dy out as the rows of that convolution, cols[(b, iy, ix),
 * (ky, kx, f)], for the GEMMs of the input and kernel gradients.
 *
 * Both run over (vectors of VW of the F channels, pixels): neighbouring work-items move
 * neighbouring floats. VW, floatv, VLOAD and VSTORE come from cl/vector.cl, prepended; the host
 * passes -DVW (dividing F). */

/* out[b, oy, ox, f] = bias[f] (when has_bias) + the sum over the taps (ky, kx) and input pixels (iy, ix) with
 * iy*SH + ky*DH = oy + PT and ix*SW + kx*DW = ox + PL of cols[(b, iy, ix), (ky, kx, f)].
 * Dimension 0: vector v of the F channels; dimension 1: the output pixel (b, oy, ox). */
__kernel void ct_gather(__global const float *cols, __global const float *bias, const int has_bias,
                        __global float *out, const int n,
                        const int h, const int w, const int f, const int oh, const int ow, const int kh,
                        const int kw, const int sh, const int sw, const int dh, const int dw, const int pad_top,
                        const int pad_left)
{
	const int v = get_global_id(0), pixel = get_global_id(1);
	const int px = pixel % ow + pad_left, py = pixel / ow % oh + pad_top, b = pixel / ow / oh;
	if (v >= f / VW || pixel >= n * oh * ow)
		return;
	const int depth = kh * kw * f, fo = v * VW;
	floatv acc = has_bias ? VLOAD(0, bias + fo) : (floatv)(0.0f);
	for (int ky = 0; ky < kh; ky++) {
		const int t = py - ky * dh;
		if (t < 0)
			break;
		const int iy = t / sh;
		if (iy * sh != t || iy >= h)
			continue;
		for (int kx = 0; kx < kw; kx++) {
			const int u = px - kx * dw;
			if (u < 0)
				break;
			const int ix = u / sw;
			if (ix * sw != u || ix >= w)
				continue;
			acc += VLOAD(0, cols + ((size_t)((b * h + iy) * w + ix) * depth + (size_t)(ky * kw + kx) * f + fo));
		}
	}
	VSTORE(acc, 0, out + ((size_t)pixel * f + fo));
}

/* cols[(b, iy, ix), (ky, kx, f)] = img[b, iy*SH - PT + ky*DH, ix*SW - PL + kx*DW, f], zero
 * outside the (OH, OW, F) image.
 * Dimension 0: vector v of the F channels; dimension 1: the input pixel (b, iy, ix). */
__kernel void ct_im2col(__global const float *img, __global float *cols, const int n, const int h, const int w,
                        const int f, const int oh, const int ow, const int kh, const int kw, const int sh,
                        const int sw, const int dh, const int dw, const int pad_top, const int pad_left)
{
	const int v = get_global_id(0), pixel = get_global_id(1);
	const int ix = pixel % w, iy = pixel / w % h, b = pixel / w / h;
	if (v >= f / VW || pixel >= n * h * w)
		return;
	const int fo = v * VW, y0 = iy * sh - pad_top, x0 = ix * sw - pad_left;
	__global float *dst = cols + ((size_t)pixel * kh * kw * f + fo);
	for (int ky = 0; ky < kh; ky++) {
		const int y = y0 + ky * dh;
		const bool y_inside = y >= 0 && y < oh;
		for (int kx = 0; kx < kw; kx++, dst += f) {
			const int x = x0 + kx * dw;
			floatv val = (floatv)(0.0f);
			if (y_inside && x >= 0 && x < ow)
				val = VLOAD(0, img + ((size_t)((b * oh + y) * ow + x) * f + fo));
			VSTORE(val, 0, dst);
		}
	}
}
