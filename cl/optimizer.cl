/* Parameter updates, registered as program "strata_optimizer". Each kernel updates n values of
 * one weight tensor in place, with the formulas of Keras 2 (TensorFlow 2) so a model trains here
 * as it does there. One work-item per value. */

/* g += l1 * sign(w) + 2 * l2 * w: the gradient of Keras' L1/L2 regularization terms. */
__kernel void regularize(__global float *g, __global const float *w, const int n, const float l1, const float l2)
{
	const int i = get_global_id(0);
	if (i >= n)
		return;
	const float s = w[i] > 0.0f ? 1.0f : (w[i] < 0.0f ? -1.0f : 0.0f);
	g[i] += l1 * s + 2.0f * l2 * w[i];
}

/* SGD: v = momentum * v - lr * g; w += v, or with Nesterov w += momentum * v - lr * g. Without
 * momentum (v unused) w -= lr * g. */
__kernel void sgd(__global float *w, __global const float *g, __global float *v, const int n, const float lr,
                  const float momentum, const int nesterov)
{
	const int i = get_global_id(0);
	if (i >= n)
		return;
	if (momentum == 0.0f) {
		w[i] -= lr * g[i];
		return;
	}
	const float vi = momentum * v[i] - lr * g[i];
	v[i] = vi;
	w[i] += nesterov ? momentum * vi - lr * g[i] : vi;
}

/* Adadelta (Zeiler 2012, Keras' form with a learning rate). */
__kernel void adadelta(__global float *w, __global const float *g, __global float *accum_grad,
                       __global float *accum_var, const int n, const float lr, const float rho, const float eps)
{
	const int i = get_global_id(0);
	if (i >= n)
		return;
	const float gi = g[i];
	const float ag = rho * accum_grad[i] + (1.0f - rho) * gi * gi;
	const float update = gi * sqrt(accum_var[i] + eps) / sqrt(ag + eps);
	accum_grad[i] = ag;
	accum_var[i] = rho * accum_var[i] + (1.0f - rho) * update * update;
	w[i] -= lr * update;
}

/* Adam as TensorFlow's kernel (ResourceApplyAdam, ResourceApplyAdamWithAmsgrad) computes it, in
 * float32 and in its order: the host folds the bias corrections into
 * alpha = lr * sqrt(1 - beta_2^t) / (1 - beta_1^t), in float32 too, so that its 1 - beta_2 rounds
 * as the one in v does (epsilon outside the correction). With amsgrad, vhat keeps the running
 * max. No fused multiply-adds: TensorFlow rounds each product. */
__kernel void adam(__global float *w, __global const float *g, __global float *m, __global float *v,
                   __global float *vhat, const int n, const float alpha, const float beta_1, const float beta_2,
                   const float eps, const int amsgrad)
{
#pragma OPENCL FP_CONTRACT OFF
	const int i = get_global_id(0);
	if (i >= n)
		return;
	const float gi = g[i];
	float mi = m[i], vi = v[i];
	mi += (gi - mi) * (1.0f - beta_1);
	vi += (gi * gi - vi) * (1.0f - beta_2);
	m[i] = mi;
	v[i] = vi;
	float denom = vi;
	if (amsgrad) {
		denom = fmax(vhat[i], vi);
		vhat[i] = denom;
	}
	w[i] -= (mi * alpha) / (sqrt(denom) + eps);
}

/* RMSprop as TensorFlow 2: ms = rho * ms + (1 - rho) g^2 (centered: minus the squared running
 * mean mg); without momentum w -= lr * g / (sqrt(ms) + eps), with momentum
 * mom = momentum * mom + lr * g / sqrt(ms + eps), w -= mom. */
__kernel void rmsprop(__global float *w, __global const float *g, __global float *ms, __global float *mom,
                      __global float *mg, const int n, const float lr, const float rho, const float momentum,
                      const float eps, const int centered)
{
	const int i = get_global_id(0);
	if (i >= n)
		return;
	const float gi = g[i];
	const float msi = rho * ms[i] + (1.0f - rho) * gi * gi;
	ms[i] = msi;
	float denom = msi;
	if (centered) {
		const float mgi = rho * mg[i] + (1.0f - rho) * gi;
		mg[i] = mgi;
		denom = msi - mgi * mgi;
	}
	if (momentum > 0.0f) {
		const float m = momentum * mom[i] + lr * gi / sqrt(denom + eps);
		mom[i] = m;
		w[i] -= m;
	} else {
		w[i] -= lr * gi / (sqrt(denom) + eps);
	}
}

/* Keras' constraints, applied to a weight after every update (keras.constraints). */

/* The offset of element i of a slice (or of slice i) whose axes have sizes d0..d3 and strides
 * s0..s3 in the weight (the last axis fastest; unused axes have size 1). */
static int slice_offset(int i, const int d0, const int d1, const int d2, const int d3, const int s0, const int s1,
                        const int s2, const int s3)
{
	const int i3 = i % d3;
	i /= d3;
	const int i2 = i % d2;
	i /= d2;
	const int i1 = i % d1;
	return (i / d1) * s0 + i1 * s1 + i2 * s2 + i3 * s3;
}

/* MaxNorm: every slice of the weight over the constrained axes (its members: sizes r0..r3,
 * strides rs0..rs3) is scaled by clip(norm, 0, max_value) / (1e-7 + norm), Keras' formula with its epsilon; one
 * work-item per slice (the other axes: sizes k0..k3, strides ks0..ks3), its members summed in
 * order. */
__kernel void max_norm(__global float *w, const int slices, const int members, const float max_value,
                       const int k0, const int k1, const int k2, const int k3, const int ks0, const int ks1,
                       const int ks2, const int ks3, const int r0, const int r1, const int r2, const int r3,
                       const int rs0, const int rs1, const int rs2, const int rs3)
{
	const int slice = get_global_id(0);
	if (slice >= slices)
		return;
	const int base = slice_offset(slice, k0, k1, k2, k3, ks0, ks1, ks2, ks3);
	float sum = 0.0f;
	for (int m = 0; m < members; m++) {
		const float v = w[base + slice_offset(m, r0, r1, r2, r3, rs0, rs1, rs2, rs3)];
		sum += v * v;
	}
	const float norm = sqrt(sum);
	const float scale = clamp(norm, 0.0f, max_value) / (1e-7f + norm);
	for (int m = 0; m < members; m++)
		w[base + slice_offset(m, r0, r1, r2, r3, rs0, rs1, rs2, rs3)] *= scale;
}

/* NonNeg: w * (w >= 0). */
__kernel void non_neg(__global float *w, const int n)
{
	const int i = get_global_id(0);
	if (i < n && !(w[i] >= 0.0f))
		w[i] = 0.0f;
}

/* ---- Keras' gradient clipping (before the update) ---------------------------------------------- */

/* partial[out + b] = the sum of squares of g's block b of `per` values (n values in all): the
 * squared norm in parts, in a fixed order. */
__kernel void clip_partials(__global const float *g, const int n, const int per, __global float *partial,
                            const int out)
{
	const int b = get_global_id(0), start = b * per;
	if (start >= n)
		return;
	const int end = start + per < n ? start + per : n;
	float s = 0.0f;
	for (int i = start; i < end; i++)
		s += g[i] * g[i];
	partial[out + b] = s;
}

/* One work-item: factor[at] = min(1, clip / the norm of partial[from, from + blocks)). */
__kernel void clip_factor(__global const float *partial, const int from, const int blocks, const float clip,
                          __global float *factor, const int at)
{
	if (get_global_id(0) != 0)
		return;
	float s = 0.0f;
	for (int b = 0; b < blocks; b++)
		s += partial[from + b];
	const float norm = sqrt(s);
	factor[at] = norm > clip ? clip / norm : 1.0f;
}

/* g *= factor[at]. */
__kernel void clip_scale(__global float *g, const int n, __global const float *factor, const int at)
{
	const int i = get_global_id(0);
	if (i < n)
		g[i] *= factor[at];
}

/* g = clamp(g, -v, v). */
__kernel void clip_value(__global float *g, const int n, const float v)
{
	const int i = get_global_id(0);
	if (i < n)
		g[i] = clamp(g[i], -v, v);
}
