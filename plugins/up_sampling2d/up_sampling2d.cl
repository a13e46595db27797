/* UpSampling2D's kernels over NHWC tensors. Every launch is 2-D: dimension 0 runs over vectors of
 * VW channels (neighbouring work-items touch neighbouring floats), dimension 1 over the pixels
 * (b, y, x) of the tensor written: the output for the forward passes, the input for the backward
 * passes, which are gathers: each input pixel adds up, in a fixed order, what the output pixels
 * that read it send back. No atomics, one writer per element, the same bits for the same input.
 * A work-item works out its pixel's coordinates before its bounds check, so that PoCL can hoist
 * the integer divisions out of its loop over dimension 0. */

/* VW, floatv, VLOAD and VSTORE come from cl/vector.cl, prepended at build time; the host passes
 * -DVW=N with N dividing the channels (plugins/common/tune.h). */

/* The vector of channels cv*VW .. of pixel (b, y, x) of an (h, w, c) NHWC tensor p. */
#define UP_AT(p, b, y, x, h, w, c, cv) \
	((p) + ((size_t)(((b) * (h) + (y)) * (w) + (x)) * (size_t)(c) + (size_t)((cv) * VW)))

/* Nearest: out[b, y, x, :] = in[b, y / sh, x / sw, :], each input pixel repeated sh x sw times.
 * Dimension 1: the output pixel. */
__kernel void up_sampling2d_nearest_forward(__global const float *in, __global float *out, const int n,
                                            const int h, const int w, const int c, const int sh, const int sw)
{
	const int cv = get_global_id(0), pixel = get_global_id(1);
	const int ow = w * sw, oh = h * sh;
	const int x = pixel % ow, y = pixel / ow % oh, b = pixel / ow / oh;
	if (cv >= c / VW || pixel >= n * oh * ow)
		return;
	const floatv v = VLOAD(0, UP_AT(in, b, y / sh, x / sw, h, w, c, cv));
	VSTORE(v, 0, out + ((size_t)pixel * (size_t)c + (size_t)(cv * VW)));
}

/* dx[b, y, x, :] = the sum of dy over the sh x sw block of output pixels that repeat (y, x), in
 * row-major order. Dimension 1: the input pixel. */
__kernel void up_sampling2d_nearest_backward(__global const float *dy, __global float *dx, const int n,
                                             const int h, const int w, const int c, const int sh, const int sw)
{
	const int cv = get_global_id(0), pixel = get_global_id(1);
	const int x = pixel % w, y = pixel / w % h, b = pixel / w / h;
	if (cv >= c / VW || pixel >= n * h * w)
		return;
	const int oh = h * sh, ow = w * sw;
	floatv g = (floatv)(0.0f);
	for (int i = 0; i < sh; i++)
		for (int j = 0; j < sw; j++)
			g += VLOAD(0, UP_AT(dy, b, y * sh + i, x * sw + j, oh, ow, c, cv));
	VSTORE(g, 0, dx + ((size_t)pixel * (size_t)c + (size_t)(cv * VW)));
}

/* Where output position o of one axis samples the input, as TensorFlow's resize with half-pixel
 * centers (what Keras 3's bilinear UpSampling2D calls; PyTorch's bilinear interpolate with
 * align_corners=False gives the same values): the source position (o + 0.5) * scale - 0.5, scale
 * = in / out; the two input positions around it, clamped to [0, size), in *lo and *hi; the
 * weight of *hi, the position's fraction, returned (*lo's is 1 minus it). Before the first
 * input position or past the last, both are the edge's, so the edge's value is taken. */
static float up_axis(const int o, const float scale, const int size, int *lo, int *hi)
{
	const float src = ((float)o + 0.5f) * scale - 0.5f;
	const float f = floor(src);
	const int i = (int)f;
	*lo = max(i, 0);
	*hi = min(i + 1, size - 1);
	return src - f;
}

/* The weight output position o of one axis gives input position i (0 when it does not read it). */
static float up_weight(const int o, const int i, const float scale, const int size)
{
	int lo, hi;
	const float l = up_axis(o, scale, size, &lo, &hi);
	return (lo == i ? 1.0f - l : 0.0f) + (hi == i ? l : 0.0f);
}

/* Bilinear: out[b, y, x, :] interpolates the 4 input pixels around its source position, as
 * TensorFlow does: top and bottom rows along x first, then between them along y. Dimension 1:
 * the output pixel. */
__kernel void up_sampling2d_bilinear_forward(__global const float *in, __global float *out, const int n,
                                             const int h, const int w, const int c, const int sh, const int sw,
                                             const float scale_h, const float scale_w)
{
	const int cv = get_global_id(0), pixel = get_global_id(1);
	const int ow = w * sw, oh = h * sh;
	const int x = pixel % ow, y = pixel / ow % oh, b = pixel / ow / oh;
	if (cv >= c / VW || pixel >= n * oh * ow)
		return;
	int y0, y1, x0, x1;
	const float ly = up_axis(y, scale_h, h, &y0, &y1), lx = up_axis(x, scale_w, w, &x0, &x1);
	const floatv tl = VLOAD(0, UP_AT(in, b, y0, x0, h, w, c, cv)), tr = VLOAD(0, UP_AT(in, b, y0, x1, h, w, c, cv));
	const floatv bl = VLOAD(0, UP_AT(in, b, y1, x0, h, w, c, cv)), br = VLOAD(0, UP_AT(in, b, y1, x1, h, w, c, cv));
	const floatv top = tl + (tr - tl) * lx, bottom = bl + (br - bl) * lx;
	VSTORE(top + (bottom - top) * ly, 0, out + ((size_t)pixel * (size_t)c + (size_t)(cv * VW)));
}

/* dx[b, y, x, :] = the sum over the output pixels (oy, ox) that read input pixel (y, x) of their
 * weight for it times dy[b, oy, ox, :], in row-major order of (oy, ox). An output row reads input
 * rows floor(src) and floor(src) + 1 (clamped), src = (oy + 0.5) / sh - 0.5, so the rows that can
 * read row y lie in [sh * (y - 1), sh * (y + 2)); the weights are worked out exactly as the
 * forward pass does, and those of the rows that do not read it are 0. Dimension 1: the input
 * pixel. */
__kernel void up_sampling2d_bilinear_backward(__global const float *dy, __global float *dx, const int n,
                                              const int h, const int w, const int c, const int sh, const int sw,
                                              const float scale_h, const float scale_w)
{
	const int cv = get_global_id(0), pixel = get_global_id(1);
	const int x = pixel % w, y = pixel / w % h, b = pixel / w / h;
	if (cv >= c / VW || pixel >= n * h * w)
		return;
	const int oh = h * sh, ow = w * sw;
	const int oy_lo = max(sh * (y - 1), 0), oy_hi = min(sh * (y + 2), oh);
	const int ox_lo = max(sw * (x - 1), 0), ox_hi = min(sw * (x + 2), ow);
	floatv g = (floatv)(0.0f);
	for (int oy = oy_lo; oy < oy_hi; oy++) {
		const float wy = up_weight(oy, y, scale_h, h);
		if (wy == 0.0f)
			continue;
		for (int ox = ox_lo; ox < ox_hi; ox++) {
			const float wx = up_weight(ox, x, scale_w, w);
			if (wx != 0.0f)
				g += VLOAD(0, UP_AT(dy, b, oy, ox, oh, ow, c, cv)) * (wy * wx);
		}
	}
	VSTORE(g, 0, dx + ((size_t)pixel * (size_t)c + (size_t)(cv * VW)));
}
