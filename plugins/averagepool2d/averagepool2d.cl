/* AveragePooling2D's kernels over NHWC tensors. */

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

/* out[b, oy, ox, ci] = the mean of in[b, y, x, ci] over the window's positions inside the
 * input. One work-item per output element. */
__kernel void averagepool2d_forward(__global const float *in, __global float *out, const int n,
                                    const int h, const int w, const int c, const int ph, const int pw,
                                    const int sh, const int sw, const int pad_top, const int pad_left,
                                    const int oh, const int ow)
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
	const int2 ys = pool_span(oy, ph, sh, pad_top, h), xs = pool_span(ox, pw, sw, pad_left, w);
	float s = 0.0f;
	for (int y = ys.x; y < ys.y; y++)
		for (int x = xs.x; x < xs.y; x++)
			s += in[((b * h + y) * w + x) * c + ci];
	out[i] = s / (float)((ys.y - ys.x) * (xs.y - xs.x));
}

/* dx[b, y, x, ci] = the sum of dy / (window count) over the windows that hold this element. A
 * gather, one work-item per input element: overlapping windows need no atomics, and an element
 * no window holds ('valid' padding's dropped rows and columns) gets 0. */
__kernel void averagepool2d_backward(__global const float *dy, __global float *dx, const int n,
                                     const int h, const int w, const int c, const int ph, const int pw,
                                     const int sh, const int sw, const int pad_top, const int pad_left,
                                     const int oh, const int ow)
{
	const int i = get_global_id(0);
	if (i >= n * h * w * c)
		return;
	int t = i;
	const int ci = t % c;
	t /= c;
	const int x = t % w;
	t /= w;
	const int y = t % h;
	const int b = t / h;
	const int2 rows = pool_covering(y + pad_top, ph, sh, oh);
	const int2 cols = pool_covering(x + pad_left, pw, sw, ow);
	float g = 0.0f;
	for (int oy = rows.x; oy < rows.y; oy++) {
		const int2 ys = pool_span(oy, ph, sh, pad_top, h);
		for (int ox = cols.x; ox < cols.y; ox++) {
			const int2 xs = pool_span(ox, pw, sw, pad_left, w);
			g += dy[((b * oh + oy) * ow + ox) * c + ci] / (float)((ys.y - ys.x) * (xs.y - xs.x));
		}
	}
	dx[i] = g;
}
