/* GlobalAveragePooling2D's and GlobalMaxPooling2D's kernels over NHWC tensors. Every launch is 2-D:
 * dimension 0 runs over vectors of VW channels, so neighbouring work-items touch neighbouring
 * floats (coalesced on GPUs, whole vectors on a CPU), dimension 1 over samples (the reductions
 * and the max's backward pass) or over input pixels (the average's backward pass). A work-item
 * works out its coordinates from dimension 1 before its bounds check, so that PoCL can hoist the
 * integer divisions out of its loop over dimension 0. No atomics: every output element has one
 * writer, and every reduction runs in a fixed order (pixels in row-major order), so the same
 * input gives the same bits. */

/* VW, floatv, intv, VLOAD and VSTORE come from cl/vector.cl, prepended at build time; the host
 * passes -DVW=N with N dividing the channels (plugins/common/tune.h). */

/* The maximum over the hw pixels of sample b's channels [cv*VW, cv*VW + VW), and in *at the
 * pixel of the FIRST maximum in row-major order: the forward value and the backward routing agree
 * on ties by construction, as in MaxPooling2D (plugins/maxpool2d). NaNs never win, as with fmax;
 * a channel of NaNs only gives -inf and routes its gradient to pixel 0. */
static floatv global_max(__global const float *in, const int b, const int cv, const int hw, const int c,
                         intv *at)
{
	__global const float *p = in + ((size_t)b * (size_t)hw * (size_t)c + (size_t)(cv * VW));
	floatv m = (floatv)(-INFINITY);
	intv pos = (intv)(0);
	for (int i = 0; i < hw; i++) {
		const floatv v = VLOAD(0, p + (size_t)i * (size_t)c);
		const intv better = isgreater(v, m);
		m = select(m, v, better);
		pos = select(pos, (intv)(i), better);
	}
	*at = pos;
	return m;
}

/* out[b, :] = the mean of in[b, y, x, :] over the h * w pixels, summed in row-major order and
 * divided by their count, as Keras' mean. Dimension 1: the sample. */
__kernel void global_average_pooling2d_forward(__global const float *in, __global float *out, const int n,
                                               const int hw, const int c)
{
	const int cv = get_global_id(0), b = get_global_id(1);
	if (cv >= c / VW || b >= n)
		return;
	__global const float *p = in + ((size_t)b * (size_t)hw * (size_t)c + (size_t)(cv * VW));
	floatv s = (floatv)(0.0f);
	for (int i = 0; i < hw; i++)
		s += VLOAD(0, p + (size_t)i * (size_t)c);
	VSTORE(s / (float)hw, 0, out + ((size_t)b * (size_t)c + (size_t)(cv * VW)));
}

/* dx[b, y, x, :] = dy[b, :] / (h * w). Dimension 1: the input pixel (b, y, x). */
__kernel void global_average_pooling2d_backward(__global const float *dy, __global float *dx, const int n,
                                                const int hw, const int c)
{
	const int cv = get_global_id(0), pixel = get_global_id(1);
	const int b = pixel / hw;
	if (cv >= c / VW || pixel >= n * hw)
		return;
	const floatv g = VLOAD(0, dy + ((size_t)b * (size_t)c + (size_t)(cv * VW)));
	VSTORE(g / (float)hw, 0, dx + ((size_t)pixel * (size_t)c + (size_t)(cv * VW)));
}

/* out[b, :] = the maximum of in[b, y, x, :] over the pixels. Dimension 1: the sample. */
__kernel void global_max_pooling2d_forward(__global const float *in, __global float *out, const int n,
                                           const int hw, const int c)
{
	const int cv = get_global_id(0), b = get_global_id(1);
	if (cv >= c / VW || b >= n)
		return;
	intv at;
	const floatv m = global_max(in, b, cv, hw, c, &at);
	VSTORE(m, 0, out + ((size_t)b * (size_t)c + (size_t)(cv * VW)));
}

/* dx[b, y, x, :] = dy[b, :] at each channel's first maximum (found again from the forward pass's
 * input), 0 elsewhere. The work-item of (b, channel vector) writes that vector of every pixel of
 * sample b: each dx element has exactly one writer, so no atomics and no zeroing pass.
 * Dimension 1: the sample. */
__kernel void global_max_pooling2d_backward(__global const float *in, __global const float *dy,
                                            __global float *dx, const int n, const int hw, const int c)
{
	const int cv = get_global_id(0), b = get_global_id(1);
	if (cv >= c / VW || b >= n)
		return;
	intv at;
	global_max(in, b, cv, hw, c, &at);
	const floatv g = VLOAD(0, dy + ((size_t)b * (size_t)c + (size_t)(cv * VW)));
	__global float *p = dx + ((size_t)b * (size_t)hw * (size_t)c + (size_t)(cv * VW));
	for (int i = 0; i < hw; i++)
		VSTORE(select((floatv)(0.0f), g, at == (intv)(i)), 0, p + (size_t)i * (size_t)c);
}
