/* The recurrent layers' per-step kernels (issue 15): SimpleRNN (Elman), LSTM and GRU cells in
 * Keras' gate orders and formulas. The host code (recurrent.c) runs the input projection of every
 * step as one GEMM into xw and the recurrent product of each step as one GEMM into hu; these
 * kernels add the biases, apply the gates and carry the state, one work-item per (unit, sample).
 *
 * Layouts, per sample b (rows of [batch x steps, width] matrices; p is the time position of a step,
 * which runs backwards through the input with go_backwards):
 *   xw     [steps, G*U]  the input projection x_p . kernel (forward), then dLoss/dPreactivation
 *                        (backward; GRU with reset_after: [steps, 2*G*U], its recurrent half next)
 *   hprev  [steps, U]    the state each step starts from: h0 = 0 at the first step's position
 *   cache  [steps, G*U]  the gates' activations (SimpleRNN: h)
 *   extra  [steps, U]    LSTM: the cell state c; GRU with reset_after: h_prev . U_h + b_rh; GRU
 *                        without: r * h_prev
 *   hu     [G*U]         this step's h_prev . recurrent_kernel
 *   dh, dc [U]           the gradient carried to the step before (dh: the part that reaches
 *                        h_prev directly, as the GRU's z h_prev)
 *   drec   [U]           the part through the recurrent product, dg . recurrent_kernel^T
 * With recurrent_dropout the recurrent product reads hdrop = h_prev * rmask ([steps, U], a mask
 * [U] per sample for every step, as Keras 3), so drec reaches h_prev times rmask; without it
 * hdrop is hprev itself.
 * ACT (activation) and RACT (recurrent_activation) are fixed when the program is built, as codes
 * of cl/core.cl's list; only activations whose derivative is a function of their output are
 * taken, so the backward pass reads the kept activations. Portable OpenCL C 1.2. */

#ifndef ACT
#define ACT 3
#endif
#ifndef RACT
#define RACT 2
#endif

#define A_LINEAR 0
#define A_RELU 1
#define A_SIGMOID 2
#define A_TANH 3
#define A_ELU 5
#define A_SELU 6
#define A_SOFTPLUS 9
#define A_SOFTSIGN 10
#define A_HARD_SIGMOID 11
#define A_EXPONENTIAL 12
#define A_RELU6 13
#define A_LEAKY_RELU 14

/* f(v) for activation `code` (a compile-time constant, so the switch folds away). */
static float rnn_act(const int code, const float v)
{
	switch (code) {
	case A_RELU: return fmax(v, 0.0f);
	case A_SIGMOID: {
		const float e = exp(-fabs(v));
		return (v >= 0.0f ? 1.0f : e) / (1.0f + e);
	}
	case A_TANH: return tanh(v);
	case A_ELU: return v > 0.0f ? v : expm1(v);
	case A_SELU: return 1.0507009873554805f * (v > 0.0f ? v : 1.6732632423543772f * expm1(v));
	case A_SOFTPLUS: return fmax(v, 0.0f) + log1p(exp(-fabs(v)));
	case A_SOFTSIGN: return v / (1.0f + fabs(v));
	case A_HARD_SIGMOID: return clamp(v * (1.0f / 6.0f) + 0.5f, 0.0f, 1.0f);
	case A_EXPONENTIAL: return exp(v);
	case A_RELU6: return clamp(v, 0.0f, 6.0f);
	case A_LEAKY_RELU: return v > 0.0f ? v : 0.2f * v;
	default: return v;
	}
}

/* f'(x) from the output y = f(x). */
static float rnn_grad(const int code, const float y)
{
	switch (code) {
	case A_RELU: return y > 0.0f ? 1.0f : 0.0f;
	case A_SIGMOID: return y * (1.0f - y);
	case A_TANH: return 1.0f - y * y;
	case A_ELU: return y > 0.0f ? 1.0f : y + 1.0f;
	case A_SELU: return y > 0.0f ? 1.0507009873554805f : y + 1.0507009873554805f * 1.6732632423543772f;
	case A_SOFTPLUS: return -expm1(-y);
	case A_SOFTSIGN: return (1.0f - fabs(y)) * (1.0f - fabs(y));
	case A_HARD_SIGMOID: return y > 0.0f && y < 1.0f ? 1.0f / 6.0f : 0.0f;
	case A_EXPONENTIAL: return y;
	case A_RELU6: return y > 0.0f && y < 6.0f ? 1.0f : 0.0f;
	case A_LEAKY_RELU: return y > 0.0f ? 1.0f : 0.2f;
	default: return 1.0f;
	}
}

/* Where step s writes its state: the next step's hprev row (next >= 0) and the layer's output,
 * whose samples are out_stride floats apart: row out_row of the sequence (out_row >= 0) and, the
 * last step of a layer with return_state, the final state at row state_row (>= 0). */
static void rnn_emit(__global float *hprev, __global float *out, const int b, const int j, const int units,
                     const int steps, const int next, const int out_stride, const int out_row, const int state_row,
                     const float h, __global float *hdrop, __global const float *rmask, const int has_rdrop)
{
	if (next >= 0) {
		hprev[(b * steps + next) * units + j] = h;
		if (has_rdrop)
			hdrop[(b * steps + next) * units + j] = h * rmask[b * units + j];
	}
	if (out_row >= 0)
		out[b * out_stride + out_row * units + j] = h;
	if (state_row >= 0)
		out[b * out_stride + state_row * units + j] = h;
}

/* Whether step position p of sample b is real: no mask, or its mask is not 0. A masked step leaves
 * the state as it was and outputs it again (Keras: the previous output; zero before the first). */
static bool rnn_keep(__global const float *mask, const int has_mask, const int b, const int steps, const int p)
{
	return !has_mask || mask[b * steps + p] != 0.0f;
}

/* ---- dropout (training only) ------------------------------------------------------------------- */

/* Keras 3's dropout masks of a recurrent layer: one per sample, the same for every step; an
 * element is dropped when its 32 random bits are below `threshold`, else scaled by `scale`.
 * `lane` keeps the input's mask (0) and the state's (1) apart. Sample b draws as sample first + b of
 * its global batch (data-parallel training computes a slice of it). */
__kernel void rnn_dropout_mask(__global float *mask, const int n, const int batch, const uint lane,
                               const uint threshold, const float scale, const uint key_lo, const uint key_hi,
                               const uint step_lo, const uint step_hi, const uint first)
{
	const int i = get_global_id(0), b = get_global_id(1);
	if (i >= n || b >= batch)
		return;
	const uint bits = random_draw((first + (uint)b) * (uint)n + (uint)i, lane, key_lo, key_hi, step_lo, step_hi).x;
	mask[b * n + i] = bits < threshold ? 0.0f : scale;
}

/* y[b, t, f] = x[b, t, f] * mask[b, f]: the input with its dropout mask (forward), or the input's
 * gradient through it (backward, in place). One work-item per (feature, row). */
__kernel void rnn_apply_mask(__global const float *x, __global float *y, __global const float *mask,
                             const int features, const int rows, const int steps)
{
	const int f = get_global_id(0), r = get_global_id(1);
	if (f >= features || r >= rows)
		return;
	y[r * features + f] = x[r * features + f] * mask[(r / steps) * features + f];
}

/* ---- forward ---------------------------------------------------------------------------------- */

/* SimpleRNN: h = act(x W + b + h_prev U). `first`: h_prev = 0 (hu is not read; hprev's row is
 * zeroed for the backward pass's recurrent-kernel gradient). */
__kernel void simple_forward(__global const float *xw, __global const float *hu, __global const float *bias,
                             const int has_bias, __global float *hprev, __global float *cache, __global float *out,
                             const int units, const int batch, const int steps, const int p, const int next,
                             const int out_stride, const int out_row, const int state_row, const int first,
                             __global const float *mask, const int has_mask,
                             __global float *hdrop, __global const float *rmask, const int has_rdrop)
{
	const int j = get_global_id(0), b = get_global_id(1);
	if (j >= units || b >= batch)
		return;
	const int row = b * steps + p;
	float v = xw[row * units + j];
	if (has_bias)
		v += bias[j];
	if (first) {
		hprev[row * units + j] = 0.0f;
		if (has_rdrop)
			hdrop[row * units + j] = 0.0f;
	} else {
		v += hu[b * units + j];
	}
	const float h_new = rnn_act(ACT, v);
	cache[row * units + j] = h_new;
	const float h = rnn_keep(mask, has_mask, b, steps, p) ? h_new : first ? 0.0f : hprev[row * units + j];
	rnn_emit(hprev, out, b, j, units, steps, next, out_stride, out_row, state_row, h, hdrop, rmask, has_rdrop);
}

/* LSTM, gates i, f, c, o: c = f c_prev + i act(c~), h = o act(c). `prev`: the previous step's
 * position (c_prev in extra), unused at the first step; -1: c_prev is the initial state c0. */
__kernel void lstm_forward(__global const float *xw, __global const float *hu, __global const float *bias,
                           const int has_bias, __global float *hprev, __global float *cache, __global float *extra,
                           __global const float *c0, __global float *out, const int units, const int batch, const int steps, const int p,
                           const int prev, const int next, const int out_stride, const int out_row, const int state_row, const int first,
                           __global const float *mask, const int has_mask,
                           __global float *hdrop, __global const float *rmask, const int has_rdrop)
{
	const int j = get_global_id(0), b = get_global_id(1);
	if (j >= units || b >= batch)
		return;
	const int row = b * steps + p, w = 4 * units;
	float pre[4];
	for (int g = 0; g < 4; g++) {
		float v = xw[row * w + g * units + j];
		if (has_bias)
			v += bias[g * units + j];
		if (!first)
			v += hu[b * w + g * units + j];
		pre[g] = v;
	}
	const float i = rnn_act(RACT, pre[0]), f = rnn_act(RACT, pre[1]);
	const float cc = rnn_act(ACT, pre[2]), o = rnn_act(RACT, pre[3]);
	const float c_prev = first ? 0.0f : prev < 0 ? c0[b * units + j] : extra[(b * steps + prev) * units + j];
	const bool keep = rnn_keep(mask, has_mask, b, steps, p);
	const float c = keep ? f * c_prev + i * cc : c_prev;
	const float h = keep ? o * rnn_act(ACT, c) : first ? 0.0f : hprev[row * units + j];
	if (first) {
		hprev[row * units + j] = 0.0f;
		if (has_rdrop)
			hdrop[row * units + j] = 0.0f;
	}
	cache[row * w + j] = i;
	cache[row * w + units + j] = f;
	cache[row * w + 2 * units + j] = cc;
	cache[row * w + 3 * units + j] = o;
	extra[row * units + j] = c;
	rnn_emit(hprev, out, b, j, units, steps, next, out_stride, out_row, state_row, h, hdrop, rmask, has_rdrop);
	if (state_row >= 0) /* return_state: the final cell state after the final h */
		out[b * out_stride + (state_row + 1) * units + j] = c;
}

/* GRU with reset_after (Keras' default, cuDNN's and PyTorch's form), gates z, r, h: the recurrent
 * product has its own bias b_r (bias row 1): z = ract(x W_z + b_z + h U_z + b_rz), r likewise,
 * h~ = act(x W_h + b_h + r (h U_h + b_rh)), h = z h_prev + (1 - z) h~. */
__kernel void gru_forward(__global const float *xw, __global const float *hu, __global const float *bias,
                          const int has_bias, __global float *hprev, __global float *cache, __global float *extra,
                          __global float *out, const int units, const int batch, const int steps, const int p,
                          const int next, const int out_stride, const int out_row, const int state_row, const int first,
                          __global const float *mask, const int has_mask,
                          __global float *hdrop, __global const float *rmask, const int has_rdrop)
{
	const int j = get_global_id(0), b = get_global_id(1);
	if (j >= units || b >= batch)
		return;
	const int row = b * steps + p, w = 3 * units;
	float x[3], inner[3];
	for (int g = 0; g < 3; g++) {
		x[g] = xw[row * 2 * w + g * units + j]; /* xw's rows are 2w wide: the backward pass's dg */
		inner[g] = first ? 0.0f : hu[b * w + g * units + j];
		if (has_bias) {
			x[g] += bias[g * units + j];
			inner[g] += bias[w + g * units + j];
		}
	}
	const float z = rnn_act(RACT, x[0] + inner[0]), r = rnn_act(RACT, x[1] + inner[1]);
	const float hh = rnn_act(ACT, x[2] + r * inner[2]);
	const float h_prev = first ? 0.0f : hprev[row * units + j];
	const float h = rnn_keep(mask, has_mask, b, steps, p) ? z * h_prev + (1.0f - z) * hh : h_prev;
	if (first) {
		hprev[row * units + j] = 0.0f;
		if (has_rdrop)
			hdrop[row * units + j] = 0.0f;
	}
	cache[row * w + j] = z;
	cache[row * w + units + j] = r;
	cache[row * w + 2 * units + j] = hh;
	extra[row * units + j] = inner[2];
	rnn_emit(hprev, out, b, j, units, steps, next, out_stride, out_row, state_row, h, hdrop, rmask, has_rdrop);
}

/* GRU without reset_after (the original GRU, Keras 2.2's default), first half: z and r, then
 * r * h_prev into extra for the candidate's recurrent product (a second GEMM). hu holds h U_z and
 * h U_r in its first two blocks. */
__kernel void gru_gates(__global const float *xw, __global const float *hu, __global const float *bias,
                        const int has_bias, __global float *hprev, __global float *cache, __global float *extra,
                        const int units, const int batch, const int steps, const int p, const int first,
                        __global float *hdrop, __global const float *rmask, const int has_rdrop)
{
	const int j = get_global_id(0), b = get_global_id(1);
	if (j >= units || b >= batch)
		return;
	const int row = b * steps + p, w = 3 * units;
	float v[2];
	for (int g = 0; g < 2; g++) {
		v[g] = xw[row * w + g * units + j];
		if (has_bias)
			v[g] += bias[g * units + j];
		if (!first)
			v[g] += hu[b * w + g * units + j];
	}
	const float z = rnn_act(RACT, v[0]), r = rnn_act(RACT, v[1]);
	/* Keras: the candidate's product reads r * h_prev with h_prev dropped */
	const float h_prev = first ? 0.0f : has_rdrop ? hdrop[row * units + j] : hprev[row * units + j];
	if (first) {
		hprev[row * units + j] = 0.0f;
		if (has_rdrop)
			hdrop[row * units + j] = 0.0f;
	}
	cache[row * w + j] = z;
	cache[row * w + units + j] = r;
	extra[row * units + j] = r * h_prev;
}

/* Second half: h~ = act(x W_h + b_h + (r h_prev) U_h) (hu's third block), h = z h_prev + (1 - z) h~. */
__kernel void gru_candidate(__global const float *xw, __global const float *hu, __global const float *bias,
                            const int has_bias, __global float *hprev, __global float *cache, __global float *out,
                            const int units, const int batch, const int steps, const int p, const int next,
                            const int out_stride, const int out_row, const int state_row, const int first,
                            __global const float *mask, const int has_mask,
                            __global float *hdrop, __global const float *rmask, const int has_rdrop)
{
	const int j = get_global_id(0), b = get_global_id(1);
	if (j >= units || b >= batch)
		return;
	const int row = b * steps + p, w = 3 * units;
	float v = xw[row * w + 2 * units + j];
	if (has_bias)
		v += bias[2 * units + j];
	if (!first)
		v += hu[b * w + 2 * units + j];
	const float hh = rnn_act(ACT, v);
	const float z = cache[row * w + j];
	const float h_prev = hprev[row * units + j];
	const float h = rnn_keep(mask, has_mask, b, steps, p) ? z * h_prev + (1.0f - z) * hh : h_prev;
	cache[row * w + 2 * units + j] = hh;
	rnn_emit(hprev, out, b, j, units, steps, next, out_stride, out_row, state_row, h, hdrop, rmask, has_rdrop);
}

/* ---- backward (through time, last step first) ------------------------------------------------- */

/* dLoss/dh of step s: what the later steps carried back (directly, and through the recurrent
 * product, dropped as h_prev was) plus the layer's output gradient at s (every step with
 * return_sequences, the last one without: out_row >= 0). */
static float rnn_dh(__global const float *dy, __global const float *dh, __global const float *drec,
                    __global const float *rmask, const int has_rdrop, const int b, const int j, const int units,
                    const int out_stride, const int out_row, const int state_row)
{
	const float rec = drec[b * units + j];
	float g = dh[b * units + j] + (has_rdrop ? rec * rmask[b * units + j] : rec);
	if (out_row >= 0)
		g += dy[b * out_stride + out_row * units + j];
	if (state_row >= 0) /* return_state: the final state's own gradient */
		g += dy[b * out_stride + state_row * units + j];
	return g;
}

/* A masked step passed h_prev (and c_prev) on: its `blocks` blocks of dg are 0 and the whole of dh
 * goes to the step before. True when step p of sample b is masked. */
static bool rnn_skip_masked(__global const float *mask, const int has_mask, const int b, const int steps,
                            const int p, __global float *dg_row, const int blocks, const int units, const int j,
                            __global float *dh, const float g)
{
	if (rnn_keep(mask, has_mask, b, steps, p))
		return false;
	for (int k = 0; k < blocks; k++)
		dg_row[k * units + j] = 0.0f;
	dh[b * units + j] = g;
	return true;
}

/* SimpleRNN: dLoss/dPreactivation into dg's row; dh restarts at 0 for the recurrent GEMM to add
 * dg U^T. */
__kernel void simple_backward(__global const float *dy, __global float *dh, __global const float *cache,
                              __global float *dg, const int units, const int batch, const int steps, const int p,
                              const int out_stride, const int out_row, const int state_row,
                              __global const float *mask, const int has_mask,
                              __global const float *drec, __global const float *rmask, const int has_rdrop)
{
	const int j = get_global_id(0), b = get_global_id(1);
	if (j >= units || b >= batch)
		return;
	const int row = b * steps + p;
	const float g = rnn_dh(dy, dh, drec, rmask, has_rdrop, b, j, units, out_stride, out_row, state_row);
	if (rnn_skip_masked(mask, has_mask, b, steps, p, dg + row * units, 1, units, j, dh, g))
		return;
	dg[row * units + j] = g * rnn_grad(ACT, cache[row * units + j]);
	dh[b * units + j] = 0.0f;
}

/* LSTM: the four gates' preactivation gradients, and dc carried to the step before (dc f). */
__kernel void lstm_backward(__global const float *dy, __global float *dh, __global float *dc,
                            __global const float *cache, __global const float *extra, __global const float *c0,
                            __global float *dg,
                            const int units, const int batch, const int steps, const int p, const int prev,
                            const int out_stride, const int out_row, const int state_row, const int first,
                            __global const float *mask, const int has_mask,
                            __global const float *drec, __global const float *rmask, const int has_rdrop)
{
	const int j = get_global_id(0), b = get_global_id(1);
	if (j >= units || b >= batch)
		return;
	const int row = b * steps + p, w = 4 * units;
	const float g = rnn_dh(dy, dh, drec, rmask, has_rdrop, b, j, units, out_stride, out_row, state_row);
	if (state_row >= 0) /* return_state: the final cell state's gradient */
		dc[b * units + j] += dy[b * out_stride + (state_row + 1) * units + j];
	if (rnn_skip_masked(mask, has_mask, b, steps, p, dg + row * w, 4, units, j, dh, g))
		return; /* dc goes through whole too */
	const float i = cache[row * w + j], f = cache[row * w + units + j];
	const float cc = cache[row * w + 2 * units + j], o = cache[row * w + 3 * units + j];
	const float tc = rnn_act(ACT, extra[row * units + j]);
	const float c_prev = first ? 0.0f : prev < 0 ? c0[b * units + j] : extra[(b * steps + prev) * units + j];
	const float dct = dc[b * units + j] + g * o * rnn_grad(ACT, tc);
	dg[row * w + j] = dct * cc * rnn_grad(RACT, i);
	dg[row * w + units + j] = dct * c_prev * rnn_grad(RACT, f);
	dg[row * w + 2 * units + j] = dct * i * rnn_grad(ACT, cc);
	dg[row * w + 3 * units + j] = g * tc * rnn_grad(RACT, o);
	dc[b * units + j] = dct * f;
	dh[b * units + j] = 0.0f;
}

/* GRU with reset_after: dg's row holds the input side's preactivation gradients (3 blocks), then
 * the recurrent side's (3 more: the same for z and r, times r for h~'s); dh carries dh z. */
__kernel void gru_backward(__global const float *dy, __global float *dh, __global const float *hprev,
                           __global const float *cache, __global const float *extra, __global float *dg,
                           const int units, const int batch, const int steps, const int p, const int out_stride,
                           const int out_row, const int state_row,
                           __global const float *mask, const int has_mask,
                           __global const float *drec, __global const float *rmask, const int has_rdrop)
{
	const int j = get_global_id(0), b = get_global_id(1);
	if (j >= units || b >= batch)
		return;
	const int row = b * steps + p, w = 3 * units;
	const float g = rnn_dh(dy, dh, drec, rmask, has_rdrop, b, j, units, out_stride, out_row, state_row);
	if (rnn_skip_masked(mask, has_mask, b, steps, p, dg + row * 2 * w, 6, units, j, dh, g))
		return;
	const float z = cache[row * w + j], r = cache[row * w + units + j], hh = cache[row * w + 2 * units + j];
	const float h_prev = hprev[row * units + j];
	const float dph = g * (1.0f - z) * rnn_grad(ACT, hh);
	const float dpz = g * (h_prev - hh) * rnn_grad(RACT, z);
	const float dpr = dph * extra[row * units + j] * rnn_grad(RACT, r);
	__global float *d = dg + row * 2 * w;
	d[j] = dpz;
	d[units + j] = dpr;
	d[2 * units + j] = dph;
	d[w + j] = dpz;
	d[w + units + j] = dpr;
	d[w + 2 * units + j] = dph * r;
	dh[b * units + j] = g * z;
}

/* GRU without reset_after, first half: z's and h~'s preactivation gradients; dh carries dh z. */
__kernel void gru_backward_candidate(__global const float *dy, __global float *dh, __global const float *hprev,
                                     __global const float *cache, __global float *dg, const int units,
                                     const int batch, const int steps, const int p, const int out_stride,
                                     const int out_row, const int state_row,
                                     __global const float *mask, const int has_mask,
                                     __global const float *drec, __global const float *rmask, const int has_rdrop)
{
	const int j = get_global_id(0), b = get_global_id(1);
	if (j >= units || b >= batch)
		return;
	const int row = b * steps + p, w = 3 * units;
	const float g = rnn_dh(dy, dh, drec, rmask, has_rdrop, b, j, units, out_stride, out_row, state_row);
	/* All three blocks 0: gru_backward_reset's r block would be 0 from a dh~ of 0 anyway. */
	if (rnn_skip_masked(mask, has_mask, b, steps, p, dg + row * w, 3, units, j, dh, g))
		return;
	const float z = cache[row * w + j], hh = cache[row * w + 2 * units + j];
	const float h_prev = hprev[row * units + j];
	dg[row * w + j] = g * (h_prev - hh) * rnn_grad(RACT, z);
	dg[row * w + 2 * units + j] = g * (1.0f - z) * rnn_grad(ACT, hh);
	dh[b * units + j] = g * z;
}

/* Second half, from d(r h_prev) = dh~ U_h^T (drh): r's preactivation gradient, and drh r into the
 * carried dh. */
__kernel void gru_backward_reset(__global const float *drh, __global float *dh, __global const float *hdrop,
                                 __global const float *cache, __global float *dg, const int units, const int batch,
                                 const int steps, const int p, __global const float *rmask, const int has_rdrop)
{
	const int j = get_global_id(0), b = get_global_id(1);
	if (j >= units || b >= batch)
		return;
	const int row = b * steps + p, w = 3 * units;
	const float r = cache[row * w + units + j];
	const float d = drh[b * units + j];
	/* hdrop: h_prev as the product read it (dropped, or hprev itself) */
	dg[row * w + units + j] = d * hdrop[row * units + j] * rnn_grad(RACT, r);
	dh[b * units + j] += d * r * (has_rdrop ? rmask[b * units + j] : 1.0f);
}

/* ---- initial states and return_state ------------------------------------------------------------ */

/* An initial state h0 (batch x units, the layer's input 1) as step p's h_prev: its hprev row, and
 * dropped as the recurrent product reads it. */
__kernel void rnn_initial(__global const float *h0, __global float *hprev, __global float *hdrop,
                          __global const float *rmask, const int has_rdrop, const int units, const int batch,
                          const int steps, const int p)
{
	const int j = get_global_id(0), b = get_global_id(1);
	if (j >= units || b >= batch)
		return;
	const float h = h0[b * units + j];
	hprev[(b * steps + p) * units + j] = h;
	if (has_rdrop)
		hdrop[(b * steps + p) * units + j] = h * rmask[b * units + j];
}

/* dLoss/dh0 after the first step's backward pass: what it carried back directly (dh) and through
 * the recurrent product (drec, dropped as h0 was). */
__kernel void rnn_initial_grad(__global const float *dh, __global const float *drec, __global const float *rmask,
                               const int has_rdrop, __global float *dh0, const int units, const int batch)
{
	const int j = get_global_id(0), b = get_global_id(1);
	if (j >= units || b >= batch)
		return;
	const float rec = drec[b * units + j];
	dh0[b * units + j] = dh[b * units + j] + (has_rdrop ? rec * rmask[b * units + j] : rec);
}

/* A part of a recurrent layer's output with return_state (rnn_part): y[b, k] = x[b, offset + k]
 * for k < n, the layer's output being `len` floats a sample. */
__kernel void rnn_part_forward(__global const float *x, __global float *y, const int len, const int offset,
                               const int n, const int batch)
{
	const int k = get_global_id(0), b = get_global_id(1);
	if (k < n && b < batch)
		y[b * n + k] = x[b * len + offset + k];
}

/* Its gradient: dy in the part's place, zeros elsewhere (the other parts add theirs). */
__kernel void rnn_part_backward(__global const float *dy, __global float *dx, const int len, const int offset,
                                const int n, const int batch)
{
	const int i = get_global_id(0), b = get_global_id(1);
	if (i >= len || b >= batch)
		return;
	const int k = i - offset;
	dx[b * len + i] = k >= 0 && k < n ? dy[b * n + k] : 0.0f;
}
