/* AveragePooling2D's kernels over NHWC tensors. Each is a 2-D launch whose dimension 0 runs over
 * vectors of VW channels and dimension 1 over the pixels (b, y, x) of the tensor it is launched
 * for: neighbouring work-items touch neighbouring floats (coalesced on GPUs), a CPU work-item
 * whole vectors. A work-item works out its pixel's coordinates before its bounds check, where
 * they depend on dimension 1 only, so that PoCL (which runs a work-group as loops over the
 * work-items) can hoist the integer divisions out of the loop over dimension 0. */

/* Vector width in floats, 1, 2, 4, 8 or 16: the host passes -DVW=N with N dividing C
 * (plugins/common/tune.h). */
/* VW, floatv, VLOAD and VSTORE come from cl/vector.cl, prepended at build time. */

/* One dimension of window o: its positions inside the input, [lo, hi). Their count is the
 * divisor: with 'same' padding the padded positions do not count, as in TensorFlow. */
static int2 pool_span(const int o, const int window, const int stride, const int pad, const int size)
{
	const int start = o * stride - pad;
	return (int2)(max(start, 0), min(start + window, size));
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

/* out[b, oy, ox, :] = the mean of in[b, y, x, :] over the window's positions inside the input.
 * Dimension 1: the output pixel. */
__kernel void averagepool2d_forward(__global const float *in, __global float *out, const int n,
                                    const int h, const int w, const int c, const int ph, const int pw,
                                    const int sh, const int sw, const int pad_top, const int pad_left,
                                    const int oh, const int ow)
{
	const int cv = get_global_id(0), pixel = get_global_id(1);
	const int ox = pixel % ow, oy = pixel / ow % oh, b = pixel / ow / oh;
	if (cv >= c / VW || pixel >= n * oh * ow)
		return;
	const int2 ys = pool_span(oy, ph, sh, pad_top, h), xs = pool_span(ox, pw, sw, pad_left, w);
	floatv s = (floatv)(0.0f);
	for (int y = ys.x; y < ys.y; y++)
		for (int x = xs.x; x < xs.y; x++)
			s += VLOAD(0, in + ((size_t)((b * h + y) * w + x) * c + cv * VW));
	VSTORE(s / (float)((ys.y - ys.x) * (xs.y - xs.x)), 0, out + ((size_t)pixel * c + cv * VW));
}

/* Backward for windows that do not overlap (strides >= pool size): each input element lies in
 * exactly one output's cell, the rows [oy*SH - PT, (oy+1)*SH - PT) and columns likewise, the
 * first and last cells stretched to the input's edges (rows and columns no window reads). The
 * work-item of output (b, oy, ox) writes its whole cell: dy / (window count) inside the window,
 * 0 elsewhere. Every dx element has one writer, so no race and no zeroing pass. Dimension 1:
 * the output pixel. */
__kernel void averagepool2d_backward_cells(__global const float *dy, __global float *dx, const int n,
                                           const int h, const int w, const int c, const int ph, const int pw,
                                           const int sh, const int sw, const int pad_top, const int pad_left,
                                           const int oh, const int ow)
{
	const int cv = get_global_id(0), pixel = get_global_id(1);
	const int ox = pixel % ow, oy = pixel / ow % oh, b = pixel / ow / oh;
	if (cv >= c / VW || pixel >= n * oh * ow)
		return;
	const int2 ys = pool_span(oy, ph, sh, pad_top, h), xs = pool_span(ox, pw, sw, pad_left, w);
	const int2 cy = pool_cell(oy, sh, pad_top, oh, h), cx = pool_cell(ox, sw, pad_left, ow, w);
	const float count = (float)((ys.y - ys.x) * (xs.y - xs.x));
	const floatv g = VLOAD(0, dy + ((size_t)pixel * c + cv * VW)) / count;
	for (int y = cy.x; y < cy.y; y++)
		for (int x = cx.x; x < cx.y; x++) {
			const bool inside = y >= ys.x && y < ys.y && x >= xs.x && x < xs.y;
			__global float *d = dx + ((size_t)((b * h + y) * w + x) * c + cv * VW);
			VSTORE(inside ? g : (floatv)(0.0f), 0, d);
		}
}

/* Backward for overlapping windows: dx[b, y, x, :] = the sum of dy / (window count) over the
 * windows that hold this element. A gather, one work-item per input pixel and vector of
 * channels: no atomics, and an element no window holds ('valid' padding's dropped rows and
 * columns) gets 0. Dimension 1: the input pixel. */
__kernel void averagepool2d_backward(__global const float *dy, __global float *dx, const int n,
                                     const int h, const int w, const int c, const int ph, const int pw,
                                     const int sh, const int sw, const int pad_top, const int pad_left,
                                     const int oh, const int ow)
{
	const int cv = get_global_id(0), pixel = get_global_id(1);
	const int x = pixel % w, y = pixel / w % h, b = pixel / w / h;
	if (cv >= c / VW || pixel >= n * h * w)
		return;
	const int2 rows = pool_covering(y + pad_top, ph, sh, oh);
	const int2 cols = pool_covering(x + pad_left, pw, sw, ow);
	floatv g = (floatv)(0.0f);
	for (int oy = rows.x; oy < rows.y; oy++) {
		const int2 ys = pool_span(oy, ph, sh, pad_top, h);
		for (int ox = cols.x; ox < cols.y; ox++) {
			const int2 xs = pool_span(ox, pw, sw, pad_left, w);
			const floatv d = VLOAD(0, dy + ((size_t)((b * oh + oy) * ow + ox) * c + cv * VW));
			g += d / (float)((ys.y - ys.x) * (xs.y - xs.x));
		}
	}
	VSTORE(g, 0, dx + ((size_t)pixel * c + cv * VW));
}
