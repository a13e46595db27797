/* MaxPooling2D's kernels over NHWC tensors. */

/* The maximum of in[b, y, x, ci] over window (oy, ox)'s positions inside the input ('same'
 * padding never wins a max, as in TensorFlow), and in *at its position y * W + x: the FIRST
 * maximum in row-major window order, so the forward value and the backward routing agree on
 * ties by construction. Every window holds at least one input position (the host's padding is
 * smaller than the window); NaNs never win, as with fmax. */
static float maxpool_window(__global const float *in, const int b, const int ci, const int oy, const int ox,
                            const int h, const int w, const int c, const int ph, const int pw, const int sh,
                            const int sw, const int pad_top, const int pad_left, int *at)
{
	const int y0 = oy * sh - pad_top, x0 = ox * sw - pad_left;
	const int y_lo = max(y0, 0), y_hi = min(y0 + ph, h);
	const int x_lo = max(x0, 0), x_hi = min(x0 + pw, w);
	float m = -INFINITY;
	*at = y_lo * w + x_lo;
	for (int y = y_lo; y < y_hi; y++)
		for (int x = x_lo; x < x_hi; x++) {
			const float v = in[((b * h + y) * w + x) * c + ci];
			if (v > m) {
				m = v;
				*at = y * w + x;
			}
		}
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

/* out[b, oy, ox, ci] = the maximum of its window. One work-item per output element. */
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
	int at;
	out[i] = maxpool_window(in, b, ci, oy, ox, h, w, c, ph, pw, sh, sw, pad_top, pad_left, &at);
}

/* dx[b, y, x, ci] = the sum of dy over the windows whose maximum (maxpool_window's) is this
 * element. A gather, one work-item per input element: overlapping windows need no atomics,
 * and an element no window picks gets 0. */
__kernel void maxpool2d_backward(__global const float *in, __global const float *dy, __global float *dx,
                                 const int n, const int h, const int w, const int c, const int ph,
                                 const int pw, const int sh, const int sw, const int pad_top,
                                 const int pad_left, const int oh, const int ow)
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
	for (int oy = rows.x; oy < rows.y; oy++)
		for (int ox = cols.x; ox < cols.y; ox++) {
			int at;
			maxpool_window(in, b, ci, oy, ox, h, w, c, ph, pw, sh, sw, pad_top, pad_left, &at);
			if (at == y * w + x)
				g += dy[((b * oh + oy) * ow + ox) * c + ci];
		}
	dx[i] = g;
}
