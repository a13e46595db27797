/* Artificial data on the device: the kernels of Keras' RandomTranslation, RandomRotation,
 * RandomZoom (one affine map per sample, shared), RandomFlip and RandomContrast over NHWC images.
 * Every random number comes from cl/random.cl (prepended): sample n of a training step draws the
 * four words of counter (n, 0, step) under the layer's key, so a pass is a pure function of
 * (input, seed, step) and the backward pass recomputes the forward pass's transform bit for bit.
 *
 * augment_params writes each sample's parameters into a workspace of AUG_PARAMS floats per
 * sample, read by the kernels that follow it in the same pass:
 *   [0..5]  the affine map a0 a1 a2 b0 b1 b2 from an output pixel (x, y) (x the column, y the row,
 *           both pixel indices) to the input point (a0 x + a1 y + a2, b0 x + b1 y + b2), as
 *           Keras' transform matrices [a0 a1 a2 b0 b1 b2 0 0] for ops.image.affine_transform;
 *           the identity for flips and contrast;
 *   [6, 7]  the drawn values: translation (height fraction, width fraction), rotation (angle in
 *           radians, 0), zoom (height zoom, width zoom), flip (1 flipped / 0 kept, 0), contrast
 *           (contrast factor, 0). */

/* No fused multiply-adds: a device computes every coordinate and value with the same roundings
 * as another (and as the tests' host references), so a seed gives the same images everywhere. */
#pragma OPENCL FP_CONTRACT OFF

#define AUG_PARAMS 8

/* Layer kinds (augment.c's aug_kind). */
#define AUG_TRANSLATION 0
#define AUG_ROTATION 1
#define AUG_ZOOM 2
#define AUG_FLIP 3
#define AUG_CONTRAST 4

/* fill_mode: how a point outside the image reads (Keras' documentation):
 *   constant  k k k k | a b c d | k k k k   (k = fill_value)
 *   nearest   a a a a | a b c d | d d d d
 *   reflect   d c b a | a b c d | d c b a   (about the edge of the last pixel)
 *   wrap      a b c d | a b c d | a b c d
 * The pattern extends the image to every integer pixel index, and interpolation reads that
 * extended image: nearest takes the pixel at the rounded point (halves away from zero, as
 * TensorFlow's std::round), bilinear the four pixels around it. (TensorFlow's kernel folds the
 * point into the image before interpolating, which gives the same values for constant, nearest
 * and reflect; for wrap it blends the last column with fill_value instead of with the first.) */
#define AUG_FILL_CONSTANT 0
#define AUG_FILL_NEAREST 1
#define AUG_FILL_REFLECT 2
#define AUG_FILL_WRAP 3

/* The image's pixel that extended index i reads along a dimension of len pixels, or -1 for
 * fill_value (constant mode outside the image). */
static int aug_index(const int i, const int len, const int fill)
{
	if (i >= 0 && i < len)
		return i;
	if (fill == AUG_FILL_NEAREST)
		return i < 0 ? 0 : len - 1;
	if (fill == AUG_FILL_REFLECT) {
		const int period = 2 * len;
		int m = i % period;
		m = m < 0 ? m + period : m;
		return m < len ? m : period - 1 - m;
	}
	if (fill == AUG_FILL_WRAP) {
		const int m = i % len;
		return m < 0 ? m + len : m;
	}
	return -1;
}

/* Points far outside the image (a zoom out of a large image) stay within int range; beyond
 * 2^22 pixels every mode reads what it reads at the bound's distance anyway, or fill_value. */
#define AUG_COORD_LIMIT 4194304.0f

/* The up to four input pixels (index y * w + x, or -1 for fill_value) and weights that output
 * pixel (ox, oy) of the sample with parameters p reads: the weights of TensorFlow's bilinear
 * interpolation (x1 - x) (y1 - y), (x - x0) (y1 - y), (x1 - x) (y - y0), (x - x0) (y - y0) over
 * the pixels (x0, y0), (x1, y0), (x0, y1), (x1, y1) around the point, x1 = x0 + 1, y1 = y0 + 1;
 * nearest: one tap of weight 1. The same taps and weights serve the backward pass. */
static void aug_taps(__global const float *p, const int ox, const int oy, const int h, const int w,
                     const int fill, const int bilinear, int tap[4], float weight[4])
{
	const float fx = (float)ox, fy = (float)oy;
	const float x = clamp(p[0] * fx + p[1] * fy + p[2], -AUG_COORD_LIMIT, AUG_COORD_LIMIT);
	const float y = clamp(p[3] * fx + p[4] * fy + p[5], -AUG_COORD_LIMIT, AUG_COORD_LIMIT);
	if (!bilinear) {
		const int xi = aug_index((int)round(x), w, fill), yi = aug_index((int)round(y), h, fill);
		tap[0] = xi < 0 || yi < 0 ? -1 : yi * w + xi;
		weight[0] = 1.0f;
		for (int k = 1; k < 4; k++) {
			tap[k] = -1;
			weight[k] = 0.0f;
		}
		return;
	}
	const float x0f = floor(x), y0f = floor(y);
	const float wx0 = (x0f + 1.0f) - x, wx1 = x - x0f;
	const float wy0 = (y0f + 1.0f) - y, wy1 = y - y0f;
	const int x0 = aug_index((int)x0f, w, fill), x1 = aug_index((int)x0f + 1, w, fill);
	const int y0 = aug_index((int)y0f, h, fill), y1 = aug_index((int)y0f + 1, h, fill);
	tap[0] = x0 < 0 || y0 < 0 ? -1 : y0 * w + x0;
	tap[1] = x1 < 0 || y0 < 0 ? -1 : y0 * w + x1;
	tap[2] = x0 < 0 || y1 < 0 ? -1 : y1 * w + x0;
	tap[3] = x1 < 0 || y1 < 0 ? -1 : y1 * w + x1;
	weight[0] = wx0 * wy0;
	weight[1] = wx1 * wy0;
	weight[2] = wx0 * wy1;
	weight[3] = wx1 * wy1;
}

/* Each sample's parameters (the layout above) from its draw: uniform values lo + (hi - lo) u, u
 * in [0, 1) (exactly lo when lo == hi), as Keras' random.uniform(minval, maxval). The bounds come
 * from the host already in the drawn quantity's unit: fractions of the height and width
 * (translation), radians (rotation), zoom factors 1 + factor (zoom), contrast factors (contrast).
 * One work-item per sample; sample n draws as sample first + n of its global batch (data-parallel
 * training computes a slice of it). */
__kernel void augment_params(__global float *params, const int batch, const int kind, const float lo0,
                             const float hi0, const float lo1, const float hi1, const int same_zoom, const int h,
                             const int w, const uint key_lo, const uint key_hi, const uint step_lo,
                             const uint step_hi, const uint first)
{
	const int n = get_global_id(0);
	if (n >= batch)
		return;
	const uint4 r = random_draw(first + (uint)n, 0u, key_lo, key_hi, step_lo, step_hi);
	const float u0 = random_uniform(r.x), u1 = random_uniform(r.y);
	const float v0 = lo0 + (hi0 - lo0) * u0, v1 = lo1 + (hi1 - lo1) * u1;
	float p[AUG_PARAMS] = {1.0f, 0.0f, 0.0f, 0.0f, 1.0f, 0.0f, 0.0f, 0.0f};
	const float wm1 = (float)(w - 1), hm1 = (float)(h - 1);
	if (kind == AUG_TRANSLATION) {
		/* Keras: the image moves by (dx, dy) = (v1 w, v0 h): out(x, y) = in(x - dx, y - dy). */
		p[2] = -(v1 * (float)w);
		p[5] = -(v0 * (float)h);
		p[6] = v0;
		p[7] = v1;
	} else if (kind == AUG_ROTATION) {
		/* Keras: about the image's center ((w - 1) / 2, (h - 1) / 2). */
		const float c = cos(v0), s = sin(v0);
		p[0] = c;
		p[1] = -s;
		p[2] = (wm1 - (c * wm1 - s * hm1)) / 2.0f;
		p[3] = s;
		p[4] = c;
		p[5] = (hm1 - (s * wm1 + c * hm1)) / 2.0f;
		p[6] = v0;
	} else if (kind == AUG_ZOOM) {
		/* Keras: zooms above 1 read a larger part of the image (zoom out), about its center. */
		const float zy = v0, zx = same_zoom ? v0 : v1;
		p[0] = zx;
		p[2] = wm1 / 2.0f * (1.0f - zx);
		p[4] = zy;
		p[5] = hm1 / 2.0f * (1.0f - zy);
		p[6] = zy;
		p[7] = zx;
	} else if (kind == AUG_FLIP) {
		/* Keras: flipped when its uniform draw is <= 0.5. */
		p[6] = u0 <= 0.5f ? 1.0f : 0.0f;
	} else {
		p[6] = v0;
	}
	for (int k = 0; k < AUG_PARAMS; k++)
		params[n * AUG_PARAMS + k] = p[k];
}

/* out = the input read through each sample's affine map (RandomTranslation, RandomRotation,
 * RandomZoom). Dimension 0: the output column; dimension 1: sample and row (n * h + y); a
 * work-item does every channel of its pixel. */
__kernel void augment_affine_forward(__global const float *in, __global float *out,
                                     __global const float *params, const int batch, const int h, const int w,
                                     const int c, const int fill, const int bilinear, const float fill_value)
{
	const int ox = get_global_id(0), row = get_global_id(1);
	if (ox >= w || row >= batch * h)
		return;
	const int n = row / h, oy = row - n * h;
	int tap[4];
	float weight[4];
	aug_taps(params + n * AUG_PARAMS, ox, oy, h, w, fill, bilinear, tap, weight);
	const size_t image = (size_t)n * h * w * c;
	__global float *o = out + image + ((size_t)oy * w + ox) * c;
	for (int ch = 0; ch < c; ch++) {
		/* The sum of weight * value over the taps in order (nearest: one tap of weight 1). */
		float sum = 0.0f;
		for (int k = 0; k < (bilinear ? 4 : 1); k++)
			sum += weight[k] * (tap[k] < 0 ? fill_value : in[image + (size_t)tap[k] * c + ch]);
		o[ch] = sum;
	}
}

/* The input gradient of augment_affine_forward: the exact transpose of its interpolation, for
 * every fill mode (points outside the image in constant mode read fill_value, which no input
 * moves). One work-item per (sample, channel) clears its slice of grad_in, then visits the output
 * pixels in row-major order and adds each one's gradient times its weights into the pixels it
 * read: a fixed order and no two work-items writing one element, so the result is deterministic
 * without atomics. Serial over the pixels, hence slow for large images; these layers normally
 * sit right after the model's input, where nobody asks for this gradient (training never calls
 * it there; `strata gradcheck` and input-gradient probes do). */
__kernel void augment_affine_backward(__global const float *grad_out, __global float *grad_in,
                                      __global const float *params, const int batch, const int h, const int w,
                                      const int c, const int fill, const int bilinear)
{
	const int id = get_global_id(0);
	if (id >= batch * c)
		return;
	const int n = id / c, ch = id - n * c;
	const size_t image = (size_t)n * h * w * c;
	__global float *g = grad_in + image + ch;
	__global const float *dy = grad_out + image + ch;
	for (int i = 0; i < h * w; i++)
		g[(size_t)i * c] = 0.0f;
	for (int oy = 0; oy < h; oy++)
		for (int ox = 0; ox < w; ox++) {
			int tap[4];
			float weight[4];
			aug_taps(params + n * AUG_PARAMS, ox, oy, h, w, fill, bilinear, tap, weight);
			const float d = dy[((size_t)oy * w + ox) * c];
			for (int k = 0; k < 4; k++)
				if (tap[k] >= 0)
					g[(size_t)tap[k] * c] += weight[k] * d;
		}
}

/* RandomFlip: out = in mirrored left-right (mode bit 1) and/or top-bottom (bit 2) in the samples
 * whose draw flipped them, both axes at once for horizontal_and_vertical as Keras 3 does (one
 * draw per sample). A permutation that is its own inverse: the backward pass runs it on the
 * gradient. Dimension 0: column and channel (x * c + ch); dimension 1: n * h + y. */
__kernel void augment_flip(__global const float *in, __global float *out, __global const float *params,
                           const int batch, const int h, const int w, const int c, const int mode)
{
	const int i = get_global_id(0), row = get_global_id(1);
	if (i >= w * c || row >= batch * h)
		return;
	const int n = row / h, y = row - n * h;
	const int x = i / c, ch = i - x * c;
	const bool flip = params[n * AUG_PARAMS + 6] != 0.0f;
	const int sx = flip && (mode & 1) ? w - 1 - x : x;
	const int sy = flip && (mode & 2) ? h - 1 - y : y;
	out[(((size_t)n * h + y) * w + x) * c + ch] = in[(((size_t)n * h + sy) * w + sx) * c + ch];
}

/* The mean of one channel of one image, summed in row-major order. */
static float aug_channel_mean(__global const float *x, const int hw, const int c)
{
	float sum = 0.0f;
	for (int i = 0; i < hw; i++)
		sum += x[(size_t)i * c];
	return sum / (float)hw;
}

/* RandomContrast, step 1: stats[n * 2c + 2 ch] = the mean of channel ch of image n. One
 * work-item per (sample, channel). */
__kernel void augment_contrast_mean(__global const float *in, __global float *stats, const int batch,
                                    const int hw, const int c)
{
	const int id = get_global_id(0);
	if (id >= batch * c)
		return;
	const int n = id / c, ch = id - n * c;
	stats[(size_t)id * 2] = aug_channel_mean(in + (size_t)n * hw * c + ch, hw, c);
	stats[(size_t)id * 2 + 1] = 0.0f;
}

/* Step 2: out = clip((in - mean) * factor + mean, lo, hi), Keras' value_range clip. Dimension 0:
 * pixel and channel within the image (i = pixel * c + ch); dimension 1: the sample. */
__kernel void augment_contrast_forward(__global const float *in, __global float *out,
                                       __global const float *params, __global const float *stats,
                                       const int batch, const int hwc, const int c, const float lo,
                                       const float hi)
{
	const int i = get_global_id(0), n = get_global_id(1);
	if (i >= hwc || n >= batch)
		return;
	const int ch = i % c;
	const float f = params[n * AUG_PARAMS + 6], m = stats[((size_t)n * c + ch) * 2];
	const size_t at = (size_t)n * hwc + i;
	out[at] = fmin(fmax((in[at] - m) * f + m, lo), hi);
}

/* The backward pass, step 1: per (sample, channel) the mean again and S = the sum of the output
 * gradient over the elements the clip let through (lo <= value <= hi), into stats. */
__kernel void augment_contrast_grad_sums(__global const float *in, __global const float *grad_out,
                                         __global const float *params, __global float *stats, const int batch,
                                         const int hw, const int c, const float lo, const float hi)
{
	const int id = get_global_id(0);
	if (id >= batch * c)
		return;
	const int n = id / c, ch = id - n * c;
	const size_t first = (size_t)n * hw * c + ch;
	const float f = params[n * AUG_PARAMS + 6];
	const float m = aug_channel_mean(in + first, hw, c);
	float s = 0.0f;
	for (int i = 0; i < hw; i++) {
		const size_t at = first + (size_t)i * c;
		const float v = (in[at] - m) * f + m;
		s += v >= lo && v <= hi ? grad_out[at] : 0.0f;
	}
	stats[(size_t)id * 2] = m;
	stats[(size_t)id * 2 + 1] = s;
}

/* Step 2: with v = (x - m) f + m = f x + (1 - f) m and m the channel's mean, dL/dx_j =
 * f g_j [lo <= v_j <= hi] + (1 - f) / hw * S. Launched as augment_contrast_forward. */
__kernel void augment_contrast_backward(__global const float *in, __global const float *grad_out,
                                        __global float *grad_in, __global const float *params,
                                        __global const float *stats, const int batch, const int hwc,
                                        const int c, const float lo, const float hi)
{
	const int i = get_global_id(0), n = get_global_id(1);
	if (i >= hwc || n >= batch)
		return;
	const int ch = i % c;
	const float f = params[n * AUG_PARAMS + 6];
	const size_t s_at = ((size_t)n * c + ch) * 2;
	const float m = stats[s_at], s = stats[s_at + 1];
	const size_t at = (size_t)n * hwc + i;
	const float v = (in[at] - m) * f + m;
	const float through = v >= lo && v <= hi ? f * grad_out[at] : 0.0f;
	grad_in[at] = through + (1.0f - f) * s / (float)(hwc / c);
}
