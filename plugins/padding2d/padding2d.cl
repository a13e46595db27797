/* ZeroPadding2D's and Cropping2D's kernel over NHWC tensors: one shift that both layers use both
 * ways. Zero padding's forward pass and cropping's backward pass place the smaller tensor inside
 * the larger one, with zeros around it; cropping's forward pass and zero padding's backward pass
 * cut the smaller one out of the larger. A 2-D launch: dimension 0 runs over vectors of VW
 * channels (neighbouring work-items touch neighbouring floats), dimension 1 over the output
 * pixels (b, y, x), whose coordinates are worked out before the bounds check so that PoCL can
 * hoist the integer divisions out of its loop over dimension 0. Every output element has one
 * writer. */

/* VW, floatv, VLOAD and VSTORE come from cl/vector.cl, prepended at build time; the host passes
 * -DVW=N with N dividing the channels (plugins/common/tune.h). */

/* out[b, y, x, :] = in[b, y - top, x - left, :] where that pixel lies inside the input, else 0.
 * top and left are negative when the output is cut out of the input. */
__kernel void padding2d_shift(__global const float *in, __global float *out, const int n, const int ih,
                              const int iw, const int oh, const int ow, const int c, const int top, const int left)
{
	const int cv = get_global_id(0), pixel = get_global_id(1);
	const int x = pixel % ow, y = pixel / ow % oh, b = pixel / ow / oh;
	if (cv >= c / VW || pixel >= n * oh * ow)
		return;
	const int sy = y - top, sx = x - left;
	floatv v = (floatv)(0.0f);
	if (sy >= 0 && sy < ih && sx >= 0 && sx < iw)
		v = VLOAD(0, in + ((size_t)((b * ih + sy) * iw + sx) * (size_t)c + (size_t)(cv * VW)));
	VSTORE(v, 0, out + ((size_t)pixel * (size_t)c + (size_t)(cv * VW)));
}
