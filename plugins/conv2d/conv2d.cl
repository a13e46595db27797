/* Conv2D's (and Conv1D's) kernels. The convolution itself is a GEMM (host->gemm): im2col lays
 * the input out as rows so that cols[N*OH*OW, KH*KW*C] x kernel[KH*KW*C, F] is the NHWC
 * output; backward, col2im folds the GEMM's dcols back onto the input.
 *
 * Both are 2-D launches whose dimension 0 runs over vectors of VW channels and dimension 1 over
 * pixels: neighbouring work-items move neighbouring floats (coalesced on GPUs), and on a CPU a
 * work-item moves whole vectors. Each work-item works out its pixel's coordinates before its
 * bounds check, where they depend on dimension 1 only: PoCL runs a work-group as loops over the
 * work-items, and LLVM can then hoist the integer divisions out of the loop over dimension 0. */

/* Vector width in floats, 1, 2, 4, 8 or 16: the host passes -DVW=N with N dividing C, for the
 * general kernels C / G (plugins/common/tune.h). */
/* VW, floatv, VLOAD and VSTORE come from cl/vector.cl, prepended at build time. */

/* cols[((b*OH + oy)*OW + ox), ((ky*KW + kx)*C + ci)] = in[b, oy*SH - PT + ky, ox*SW - PL + kx, ci],
 * zero outside the input ('same' padding). The column order (ky, kx, ci) is the row order of
 * the Keras HWIO kernel (KH, KW, C, F) read as a [KH*KW*C, F] matrix.
 *
 * Dimension 0: vector j of a kernel row's KW*C values, which are contiguous in both the NHWC
 * input and the cols row; dimension 1: the output pixel. The work-item copies vector j of each
 * of the KH kernel rows. With C a multiple of VW a vector holds channels of a single kx, so it
 * lies wholly inside the input row or wholly outside: x in [0, W) exactly when the float
 * offset (x0*C + j*VW) is in [0, W*C). */
__kernel void im2col(__global const float *in, __global float *cols, const int n, const int h,
                     const int w, const int c, const int kh, const int kw, const int sh, const int sw,
                     const int pad_top, const int pad_left, const int oh, const int ow)
{
	const int j = get_global_id(0), pixel = get_global_id(1);
	const int ox = pixel % ow, oy = pixel / ow % oh, b = pixel / ow / oh;
	const int span = kw * c / VW; /* vectors per kernel row */
	if (j >= span || pixel >= n * oh * ow)
		return;
	const int pos = (ox * sw - pad_left) * c + j * VW;
	const bool x_inside = pos >= 0 && pos < w * c;
	const int y0 = oy * sh - pad_top;
	size_t dst = (size_t)pixel * kh * span + j; /* in vectors */
	for (int ky = 0; ky < kh; ky++, dst += span) {
		const int y = y0 + ky;
		floatv v = (floatv)(0.0f);
		if (x_inside && y >= 0 && y < h)
			v = VLOAD(0, in + ((size_t)(b * h + y) * w * c + pos));
		VSTORE(v, dst, cols);
	}
}

/* The adjoint of im2col: dx[b, iy, ix, ci] = the sum of the cols entries that im2col copied from
 * in[b, iy, ix, ci], one for every (output pixel, ky, kx) whose window reads that element. A
 * gather, so overlapping windows need neither atomics nor a zeroed output. In padded
 * coordinates (py, px) = (iy + PT, ix + PL), the windows reading the element are the output
 * rows oy with 0 <= ky = py - oy*SH < KH, i.e. oy in [ceil((py - KH + 1) / SH), py / SH] within
 * [0, OH), and the same along x.
 *
 * Dimension 0: a vector of VW channels; dimension 1: the input pixel (b, iy, ix). */
__kernel void col2im(__global const float *cols, __global float *dx, const int n, const int h, const int w,
                     const int c, const int kh, const int kw, const int sh, const int sw, const int pad_top,
                     const int pad_left, const int oh, const int ow)
{
	const int cv = get_global_id(0), pixel = get_global_id(1);
	const int px = pixel % w + pad_left, py = pixel / w % h + pad_top, b = pixel / w / h;
	const int oy_lo = py < kh ? 0 : (py - kh) / sh + 1, oy_hi = min(py / sh, oh - 1);
	const int ox_lo = px < kw ? 0 : (px - kw) / sw + 1, ox_hi = min(px / sw, ow - 1);
	if (cv >= c / VW || pixel >= n * h * w)
		return;
	const int depth = kh * kw * c;
	floatv acc = (floatv)(0.0f);
	for (int oy = oy_lo; oy <= oy_hi; oy++) {
		/* cols row of output pixel (b, oy, 0), at tap (py - oy*SH, 0) and channel vector cv */
		const int tap_row = (py - oy * sh) * kw * c + cv * VW;
		__global const float *row = cols + ((size_t)(b * oh + oy) * ow * depth + tap_row);
		for (int ox = ox_lo; ox <= ox_hi; ox++)
			acc += VLOAD(0, row + ((size_t)ox * depth + (px - ox * sw) * c));
	}
	VSTORE(acc, 0, dx + ((size_t)pixel * c + cv * VW));
}

/* The general kernels, for a dilated (DH, DW) or grouped (G groups of CG = C / G channels)
 * convolution; with DH = DW = G = 1 they compute what im2col and col2im do. Columns are
 * group-major:
 *
 *   cols[((b*OH + oy)*OW + ox), ((g*KH + ky)*KW + kx)*CG + ci]
 *     = in[b, oy*SH - PT + ky*DH, ox*SW - PL + kx*DW, g*CG + ci], zero outside the input,
 *
 * so group g's columns are one block of KH*KW*CG, the row order of its [KH*KW*CG, F / G] slice
 * of the Keras kernel (KH, KW, CG, F). VW divides CG: a vector holds channels of one group and
 * one tap, which lies wholly inside the input or wholly outside.
 *
 * Dimension 0: vector v of the (g, kx) run of CG channels, v fastest, then kx, then g; dimension
 * 1: the output pixel. The work-item copies its vector for each of the KH kernel rows. */
__kernel void im2col_general(__global const float *in, __global float *cols, const int n, const int h,
                             const int w, const int c, const int kh, const int kw, const int sh, const int sw,
                             const int dh, const int dw, const int groups, const int pad_top, const int pad_left,
                             const int oh, const int ow)
{
	const int j = get_global_id(0), pixel = get_global_id(1);
	const int ox = pixel % ow, oy = pixel / ow % oh, b = pixel / ow / oh;
	const int cg = c / groups, span = cg / VW; /* vectors per (g, kx) run */
	if (j >= groups * kw * span || pixel >= n * oh * ow)
		return;
	const int v = j % span, kx = j / span % kw, g = j / span / kw;
	const int x = ox * sw - pad_left + kx * dw;
	const bool x_inside = x >= 0 && x < w;
	const int y0 = oy * sh - pad_top;
	const int channel = g * cg + v * VW;
	/* in vectors: row `pixel` of kh*kw*c floats, then (g, 0, kx, v) */
	size_t dst = (size_t)pixel * (kh * kw * span * groups) + (size_t)(g * kh * kw + kx) * span + v;
	for (int ky = 0; ky < kh; ky++, dst += kw * span) {
		const int y = y0 + ky * dh;
		floatv val = (floatv)(0.0f);
		if (x_inside && y >= 0 && y < h)
			val = VLOAD(0, in + ((size_t)((b * h + y) * w + x) * c + channel));
		VSTORE(val, dst, cols);
	}
}

/* The taps k (0 <= k < K) and outputs o (0 <= o < O) along one axis with o*S + k*D == p, for a
 * padded coordinate p >= 0. Keras never has both S and D above 1 (the host refuses them), so one
 * of them is 1 and the pairs form a range: k = *k0 + i * *kstep and o = *o0 - i * *ostep for i
 * from 0 below the count returned (none when it is <= 0). */
static int taps(const int p, const int k, const int s, const int d, const int o, int *k0, int *kstep, int *o0,
                int *ostep)
{
	if (s == 1) {
		/* o = p - k*D within [0, O): k from ceil((p - O + 1) / D) to p / D */
		const int lo = p - o + 1 <= 0 ? 0 : (p - o + d) / d, hi = min(k - 1, p / d);
		*k0 = lo;
		*kstep = 1;
		*o0 = p - lo * d;
		*ostep = d;
		return hi - lo + 1;
	}
	/* D == 1: k = p - o*S within [0, K): o from ceil((p - K + 1) / S) to p / S, k ascending */
	const int lo = p < k ? 0 : (p - k) / s + 1, hi = min(p / s, o - 1);
	*k0 = p - hi * s;
	*kstep = s;
	*o0 = hi;
	*ostep = 1;
	return hi - lo + 1;
}

/* The adjoint of im2col_general, a gather like col2im: dx[b, iy, ix, g*CG + ci] = the sum of the
 * cols entries copied from that element, over the taps (ky, kx) and output pixels (oy, ox) with
 * (oy*SH + ky*DH, ox*SW + kx*DW) = (py, px), its padded coordinates (iy + PT, ix + PL) (taps());
 * ky, then kx, ascending, a fixed order.
 *
 * Dimension 0: a vector of VW channels (VW divides CG: one group); dimension 1: the input pixel. */
__kernel void col2im_general(__global const float *cols, __global float *dx, const int n, const int h,
                             const int w, const int c, const int kh, const int kw, const int sh, const int sw,
                             const int dh, const int dw, const int groups, const int pad_top, const int pad_left,
                             const int oh, const int ow)
{
	const int cv = get_global_id(0), pixel = get_global_id(1);
	const int px = pixel % w + pad_left, py = pixel / w % h + pad_top, b = pixel / w / h;
	int ky0, kystep, oy0, oystep, kx0, kxstep, ox0, oxstep;
	const int ny = taps(py, kh, sh, dh, oh, &ky0, &kystep, &oy0, &oystep);
	const int nx = taps(px, kw, sw, dw, ow, &kx0, &kxstep, &ox0, &oxstep);
	if (cv >= c / VW || pixel >= n * h * w)
		return;
	const int cg = c / groups, channel = cv * VW, g = channel / cg, ci = channel - g * cg;
	const int depth = kh * kw * c;
	floatv acc = (floatv)(0.0f);
	for (int i = 0; i < ny; i++) {
		const int ky = ky0 + i * kystep, oy = oy0 - i * oystep;
		/* cols row of output pixel (b, oy, 0), at tap (ky, 0) of group g and channel ci */
		__global const float *row = cols + ((size_t)(b * oh + oy) * ow * depth + (size_t)((g * kh + ky) * kw) * cg + ci);
		for (int j = 0; j < nx; j++)
			acc += VLOAD(0, row + ((size_t)(ox0 - j * oxstep) * depth + (size_t)(kx0 + j * kxstep) * cg));
	}
	VSTORE(acc, 0, dx + ((size_t)pixel * c + channel));
}

/* The input gradient of a stride-1, undilated, one-group convolution is itself a convolution:
 *
 *   dx[b, y, x, ci] = sum over (ky, kx, f) of dz[b, y + PT - ky, x + PL - kx, f] * K[ky, kx, ci, f]
 *
 * which is the GEMM window(P) x K', P being dz zero-padded to (H + KH - 1) x (W + KW - 1) with
 * dz's pixel (oy, ox) at (oy + KH - 1 - PT, ox + KW - 1 - PL), read in place as its im2col matrix
 * (KH x KW windows, F channels), and K' the kernel with both taps reversed and C and F swapped:
 * K'[(KH-1-ky, KW-1-kx, f), ci] = K[ky, kx, ci, f]. The host's GEMM then writes dx directly: no
 * [N*OH*OW, KH*KW*C] matrix of products and no col2im gather over it.
 *
 * dz_pad writes all of P, the zeros too (a workspace keeps nothing between calls). Dimension 0: a
 * vector of VW filters (VW divides F); dimension 1: the padded pixel (b, py, px). */
__kernel void dz_pad(__global const float *dz, __global float *padded, const int offset, const int n, const int oh,
                     const int ow, const int f, const int ph, const int pw, const int top, const int left)
{
	const int v = get_global_id(0), pixel = get_global_id(1);
	const int x = pixel % pw - left, y = pixel / pw % ph - top, b = pixel / pw / ph;
	if (v >= f / VW || pixel >= n * ph * pw)
		return;
	floatv val = (floatv)(0.0f);
	if (y >= 0 && y < oh && x >= 0 && x < ow)
		val = VLOAD(0, dz + ((size_t)((b * oh + y) * ow + x) * f + v * VW));
	VSTORE(val, 0, padded + (offset + (size_t)pixel * f + v * VW));
}

/* K' = flipped[(t' * F + fi) * C + ci] = weights[((T - 1 - t') * C + ci) * F + fi] (K), T = KH*KW taps
 * (reversing the tap index reverses ky and kx both). Dimension 0: ci; dimension 1: (t', fi). A
 * few thousand floats a step, read with a stride: not worth vectors. The host puts K' at the
 * workspace's start and P after it (dz_pad's `offset`, K's size). */
__kernel void kernel_flip(__global const float *weights, __global float *flipped, const int taps, const int c,
                          const int f)
{
	const int ci = get_global_id(0), row = get_global_id(1);
	if (ci >= c || row >= taps * f)
		return;
	const int fi = row % f, t = taps - 1 - row / f;
	flipped[(size_t)row * c + ci] = weights[((size_t)t * c + ci) * f + fi];
}
