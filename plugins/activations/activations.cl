/* The activation layers with parameters (plugins/activations/activations.c): ReLU with its
 * options (and LeakyReLU, which is ReLU with a negative slope only), ELU, and PReLU's learned
 * slopes. One work-item per element, every id checked; the PReLU slopes' gradient is a two-pass
 * reduction in a fixed order, so every result is the same bits from run to run. */

/* Keras' ReLU (keras.activations.relu): y = min(x > t ? x : 0, max_value) - slope * max(t - x, 0),
 * max_value < 0 meaning none. LeakyReLU is t = 0, no max_value: x >= 0 ? x : slope * x. */
__kernel void relu_forward(__global const float *x, __global float *y, const int n, const float max_value,
                           const float slope, const float threshold)
{
	const int i = get_global_id(0);
	if (i >= n)
		return;
	const float v = x[i];
	float a = v > threshold ? v : 0.0f;
	if (max_value >= 0.0f)
		a = fmin(a, max_value);
	if (slope != 0.0f)
		a -= slope * fmax(threshold - v, 0.0f);
	y[i] = a;
}

/* dy/dx = [x > t] [x <= max_value] + slope [x < t]: TensorFlow's gradients of the ops above (the
 * clip passes the gradient at its bounds, relu does not at 0). Keras computes a ReLU with a slope
 * but no threshold or max_value (and LeakyReLU) as leaky_relu, whose gradient at 0 is the slope. */
__kernel void relu_backward(__global const float *x, __global const float *dy, __global float *dx, const int n,
                            const float max_value, const float slope, const float threshold)
{
	const int i = get_global_id(0);
	if (i >= n)
		return;
	const float v = x[i];
	const bool leaky = max_value < 0.0f && threshold == 0.0f;
	float d = v > threshold && (max_value < 0.0f || v <= max_value) ? 1.0f : 0.0f;
	if (v < threshold || (leaky && v == threshold))
		d += slope;
	dx[i] = dy[i] * d;
}

/* Keras' ELU: y = x > 0 ? x : alpha (exp(x) - 1). */
__kernel void elu_forward(__global const float *x, __global float *y, const int n, const float alpha)
{
	const int i = get_global_id(0);
	if (i >= n)
		return;
	const float v = x[i];
	y[i] = v > 0.0f ? v : alpha * expm1(v);
}

/* dy/dx = x > 0 ? 1 : alpha exp(x). */
__kernel void elu_backward(__global const float *x, __global const float *dy, __global float *dx, const int n,
                           const float alpha)
{
	const int i = get_global_id(0);
	if (i >= n)
		return;
	const float v = x[i];
	dx[i] = v > 0.0f ? dy[i] : dy[i] * alpha * exp(v);
}

/* PReLU's slope of element e of a sample: a sample's shape is (d0, d1, d2, d3) (leading 1s for a
 * rank below 4); `shared` has bit k set where axis k shares one slope (Keras' shared_axes), and
 * the slopes form the shape with those axes 1, row-major. */
static int prelu_alpha_index(int e, const int d0, const int d1, const int d2, const int d3, const int shared)
{
	const int i3 = e % d3;
	e /= d3;
	const int i2 = e % d2;
	e /= d2;
	const int i1 = e % d1;
	const int i0 = e / d1;
	const int a1 = (shared & 2) ? 1 : d1, a2 = (shared & 4) ? 1 : d2, a3 = (shared & 8) ? 1 : d3;
	int j = (shared & 1) ? 0 : i0;
	j = j * a1 + ((shared & 2) ? 0 : i1);
	j = j * a2 + ((shared & 4) ? 0 : i2);
	return j * a3 + ((shared & 8) ? 0 : i3);
}

/* y = x > 0 ? x : alpha x, as Keras' relu(x) - alpha relu(-x); per_sample = d0 d1 d2 d3. */
__kernel void prelu_forward(__global const float *x, __global const float *alpha, __global float *y, const int n,
                            const int per_sample, const int d0, const int d1, const int d2, const int d3,
                            const int shared)
{
	const int i = get_global_id(0);
	if (i >= n)
		return;
	const float v = x[i];
	const int j = prelu_alpha_index(i % per_sample, d0, d1, d2, d3, shared);
	y[i] = v > 0.0f ? v : alpha[j] * v;
}

/* dx = dy where x > 0, alpha dy where x < 0, 0 at 0 (the two relus' gradients). */
__kernel void prelu_backward(__global const float *x, __global const float *alpha, __global const float *dy,
                             __global float *dx, const int n, const int per_sample, const int d0, const int d1,
                             const int d2, const int d3, const int shared)
{
	const int i = get_global_id(0);
	if (i >= n)
		return;
	const float v = x[i];
	const int j = prelu_alpha_index(i % per_sample, d0, d1, d2, d3, shared);
	dx[i] = v > 0.0f ? dy[i] : (v < 0.0f ? alpha[j] * dy[i] : 0.0f);
}

/* dLoss/dalpha[j] = sum of dy min(x, 0) over the elements of slope j: the batch and the shared
 * axes, `reduce` = batch x (elements per sample sharing a slope) terms in all, in blocks of
 * `block`. Work-item (j, b) sums block b in order into partial[b * n_alpha + j]; with one block
 * that is the gradient itself. */
__kernel void prelu_alpha_partial(__global const float *x, __global const float *dy, __global float *partial,
                                  const int n_alpha, const int reduce, const int block, const int per_sample,
                                  const int d0, const int d1, const int d2, const int d3, const int shared)
{
	const int j = get_global_id(0), b = get_global_id(1);
	if (j >= n_alpha || b > (reduce - 1) / block)
		return;
	/* j's coordinates along the axes with their own slopes; the shared ones come from r. */
	const int a1 = (shared & 2) ? 1 : d1, a2 = (shared & 4) ? 1 : d2, a3 = (shared & 8) ? 1 : d3;
	const int s0 = (shared & 1) ? d0 : 1, s1 = (shared & 2) ? d1 : 1, s2 = (shared & 4) ? d2 : 1,
	          s3 = (shared & 8) ? d3 : 1;
	const int spread = s0 * s1 * s2 * s3;
	int t = j;
	const int j3 = t % a3;
	t /= a3;
	const int j2 = t % a2;
	t /= a2;
	const int j1 = t % a1;
	const int j0 = t / a1;
	const int start = b * block, end = reduce - start > block ? start + block : reduce;
	float sum = 0.0f;
	for (int r = start; r < end; r++) {
		const int sample = r / spread;
		int s = r % spread;
		const int k3 = s % s3;
		s /= s3;
		const int k2 = s % s2;
		s /= s2;
		const int k1 = s % s1;
		const int k0 = s / s1;
		const int e = (((j0 + k0) * d1 + (j1 + k1)) * d2 + (j2 + k2)) * d3 + (j3 + k3);
		const int i = sample * per_sample + e;
		sum += dy[i] * fmin(x[i], 0.0f);
	}
	partial[b * n_alpha + j] = sum;
}

/* dalpha[j] = the sum of the `blocks` partial sums of slope j, in block order. */
__kernel void prelu_alpha_sum(__global const float *partial, __global float *dalpha, const int n_alpha,
                              const int blocks)
{
	const int j = get_global_id(0);
	if (j >= n_alpha)
		return;
	float sum = 0.0f;
	for (int b = 0; b < blocks; b++)
		sum += partial[b * n_alpha + j];
	dalpha[j] = sum;
}
