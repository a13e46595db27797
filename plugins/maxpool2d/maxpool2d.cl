/* MaxPooling2D's kernels over NHWC tensors. Each is a 2-D launch whose dimension 0 runs over
 * vectors of VW channels and dimension 1 over the pixels (b, y, x) of the tensor it is launched
 * for: neighbouring work-items touch neighbouring floats (coalesced on GPUs), a CPU work-item
 * whole vectors. A work-item works out its pixel's coordinates before its bounds check, where
 * they depend on dimension 1 only, so that PoCL (which runs a work-group as loops over the
 * work-items) can hoist the integer divisions out of the loop over dimension 0. */

/* Vector width in floats, 1, 2, 4, 8 or 16: the host passes -DVW=N with N dividing C
 * (plugins/common/tune.h). */
/* VW, floatv, VLOAD and VSTORE come from cl/vector.cl, prepended at build time. */

/* The maximum of in[b, y, x, cv*VW ...] over window (oy, ox)'s positions inside the input, per
 * channel ('same' padding never wins a max, as in TensorFlow), and in *at its position y * W + x:
 * the FIRST maximum in row-major window order, so the forward value and the backward routing
 * agree on ties by construction. Every window holds at least one input position (the host's
 * padding is smaller than the window); NaNs never win, as with fmax. */
static floatv maxpool_window(__global const float *in, const int b, const int cv, const int oy, const int ox,
                             const int h, const int w, const int c, const int ph, const int pw, const int sh,
                             const int sw, const int pad_top, const int pad_left, intv *at)
{
	const int y0 = oy * sh - pad_top, x0 = ox * sw - pad_left;
	const int y_lo = max(y0, 0), y_hi = min(y0 + ph, h);
	const int x_lo = max(x0, 0), x_hi = min(x0 + pw, w);
	floatv m = (floatv)(-INFINITY);
	intv pos = (intv)(y_lo * w + x_lo);
	for (int y = y_lo; y < y_hi; y++)
		for (int x = x_lo; x < x_hi; x++) {
			const floatv v = VLOAD(0, in + ((size_t)((b * h + y) * w + x) * c + cv * VW));
			const intv better = isgreater(v, m);
			m = select(m, v, better);
			pos = select(pos, (intv)(y * w + x), better);
		}
	*at = pos;
	return m;
}

/* First and one-past-last output index along one dimension whose windows cover padded
 * position p (= input position + leading padding): o * stride <= p < o * stride + window. */
static int2 pool_covering(const int p, const int window, const int stride, const int out)
{
	const int first = p - window + 1;
	const int lo = first <= 0 ? 0 : (first + stride - 1) / stride;
	return (int2)(lo, min(p / stride + 1, out));
}

/* One dimension of output o's cell, for the backward passes of windows that do not overlap: the
 * input positions [o * stride - pad, (o + 1) * stride - pad) within [0, size), the last cell
 * stretched to the input's end. The cells of 0 .. out - 1 tile [0, size). */
static int2 pool_cell(const int o, const int stride, const int pad, const int out, const int size)
{
	const int end = o == out - 1 ? size : min((o + 1) * stride - pad, size);
	return (int2)(max(o * stride - pad, 0), end);
}

/* out[b, oy, ox, :] = the maximum of its window. Dimension 1: the output pixel. */
__kernel void maxpool2d_forward(__global const float *in, __global float *out, const int n, const int h,
                                const int w, const int c, const int ph, const int pw, const int sh,
                                const int sw, const int pad_top, const int pad_left, const int oh,
                                const int ow)
{
	const int cv = get_global_id(0), pixel = get_global_id(1);
	const int ox = pixel % ow, oy = pixel / ow % oh, b = pixel / ow / oh;
	if (cv >= c / VW || pixel >= n * oh * ow)
		return;
	intv at;
	const floatv m = maxpool_window(in, b, cv, oy, ox, h, w, c, ph, pw, sh, sw, pad_top, pad_left, &at);
	VSTORE(m, 0, out + ((size_t)pixel * c + cv * VW));
}

/* Backward for windows that do not overlap (strides >= pool size): each input element lies in
 * exactly one output's cell, the rows [oy*SH - PT, (oy+1)*SH - PT) and columns likewise, the
 * first and last cells stretched to the input's edges (rows and columns no window reads). The
 * work-item of output (b, oy, ox) finds its window's maximum once and writes its whole cell:
 * dy at the maximum, 0 elsewhere. Every dx element has one writer, so no race and no zeroing
 * pass. Dimension 1: the output pixel. */
__kernel void maxpool2d_backward_cells(__global const float *in, __global const float *dy, __global float *dx,
                                       const int n, const int h, const int w, const int c, const int ph,
                                       const int pw, const int sh, const int sw, const int pad_top,
                                       const int pad_left, const int oh, const int ow)
{
	const int cv = get_global_id(0), pixel = get_global_id(1);
	const int ox = pixel % ow, oy = pixel / ow % oh, b = pixel / ow / oh;
	if (cv >= c / VW || pixel >= n * oh * ow)
		return;
	intv at;
	maxpool_window(in, b, cv, oy, ox, h, w, c, ph, pw, sh, sw, pad_top, pad_left, &at);
	const floatv g = VLOAD(0, dy + ((size_t)pixel * c + cv * VW));
	const int2 ys = pool_cell(oy, sh, pad_top, oh, h), xs = pool_cell(ox, sw, pad_left, ow, w);
	for (int y = ys.x; y < ys.y; y++)
		for (int x = xs.x; x < xs.y; x++) {
			const floatv d = select((floatv)(0.0f), g, at == (intv)(y * w + x));
			VSTORE(d, 0, dx + ((size_t)((b * h + y) * w + x) * c + cv * VW));
		}
}

/* Backward for overlapping windows: dx[b, y, x, :] = the sum of dy over the windows whose
 * maximum (maxpool_window's) is this element. A gather, one work-item per input pixel and vector
 * of channels, that finds the maximum of each window covering it: no atomics, and an element no
 * window picks gets 0. Dimension 1: the input pixel. */
__kernel void maxpool2d_backward(__global const float *in, __global const float *dy, __global float *dx,
                                 const int n, const int h, const int w, const int c, const int ph,
                                 const int pw, const int sh, const int sw, const int pad_top,
                                 const int pad_left, const int oh, const int ow)
{
	const int cv = get_global_id(0), pixel = get_global_id(1);
	const int x = pixel % w, y = pixel / w % h, b = pixel / w / h;
	if (cv >= c / VW || pixel >= n * h * w)
		return;
	const int2 rows = pool_covering(y + pad_top, ph, sh, oh);
	const int2 cols = pool_covering(x + pad_left, pw, sw, ow);
	const intv here = (intv)(y * w + x);
	floatv g = (floatv)(0.0f);
	for (int oy = rows.x; oy < rows.y; oy++)
		for (int ox = cols.x; ox < cols.y; ox++) {
			intv at;
			maxpool_window(in, b, cv, oy, ox, h, w, c, ph, pw, sh, sw, pad_top, pad_left, &at);
			const floatv d = VLOAD(0, dy + ((size_t)((b * oh + oy) * ow + ox) * c + cv * VW));
			g += select((floatv)(0.0f), d, at == here);
		}
	VSTORE(g, 0, dx + ((size_t)pixel * c + cv * VW));
}
