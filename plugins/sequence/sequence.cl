/* Layers over the steps of a sequence (issue 15): Masking, and the global poolings over the steps
 * (average honouring a mask, max). A sequence is (steps, channels) per sample; a mask one float
 * per step, 1 for a real step, 0 for padding (plugin.h, strata_mask_use). One work-item per
 * (channel, sample) or (channel, row); portable OpenCL C 1.2. */

/* Masking: a step whose features all equal mask_value is masked: its mask 0 and its output zeros;
 * the others pass unchanged. One work-item per row (sample, step). */
__kernel void masking_forward(__global const float *x, __global float *y, __global float *mask, const int rows,
                              const int channels, const float mask_value)
{
	const int r = get_global_id(0);
	if (r >= rows)
		return;
	bool keep = false;
	for (int c = 0; c < channels; c++)
		keep |= x[r * channels + c] != mask_value;
	mask[r] = keep ? 1.0f : 0.0f;
	for (int c = 0; c < channels; c++)
		y[r * channels + c] = keep ? x[r * channels + c] : 0.0f;
}

/* dx = dy times the step's mask. */
__kernel void masking_backward(__global const float *dy, __global float *dx, __global const float *mask,
                               const int rows, const int channels)
{
	const int c = get_global_id(0), r = get_global_id(1);
	if (c >= channels || r >= rows)
		return;
	dx[r * channels + c] = dy[r * channels + c] * mask[r];
}

/* The mask's weight of step t of sample b: 1 without a mask. */
static float seq_weight(__global const float *mask, const int has_mask, const int b, const int steps, const int t)
{
	return has_mask ? mask[b * steps + t] : 1.0f;
}

/* The number of real steps of sample b (0 when every step is masked: the mean is then 0). */
static float seq_count(__global const float *mask, const int has_mask, const int b, const int steps)
{
	float n = 0.0f;
	for (int t = 0; t < steps; t++)
		n += seq_weight(mask, has_mask, b, steps, t);
	return n;
}

/* GlobalAveragePooling1D: the mean over the real steps, summed in step order. */
__kernel void gap1d_forward(__global const float *x, __global float *y, __global const float *mask,
                            const int has_mask, const int batch, const int steps, const int channels)
{
	const int c = get_global_id(0), b = get_global_id(1);
	if (c >= channels || b >= batch)
		return;
	float sum = 0.0f;
	for (int t = 0; t < steps; t++)
		sum += x[(b * steps + t) * channels + c] * seq_weight(mask, has_mask, b, steps, t);
	const float n = seq_count(mask, has_mask, b, steps);
	y[b * channels + c] = n > 0.0f ? sum / n : 0.0f;
}

/* dx[b, t, c] = dy[b, c] / n for the real steps, 0 for the masked ones. One work-item per (c, row). */
__kernel void gap1d_backward(__global const float *dy, __global float *dx, __global const float *mask,
                             const int has_mask, const int batch, const int steps, const int channels)
{
	const int c = get_global_id(0), r = get_global_id(1);
	if (c >= channels || r >= batch * steps)
		return;
	const int b = r / steps, t = r % steps;
	const float n = seq_count(mask, has_mask, b, steps);
	const float w = seq_weight(mask, has_mask, b, steps, t);
	dx[r * channels + c] = n > 0.0f ? dy[b * channels + c] * w / n : 0.0f;
}

/* GlobalMaxPooling1D: the maximum over the steps (Keras' takes no mask). */
__kernel void gmp1d_forward(__global const float *x, __global float *y, const int batch, const int steps,
                            const int channels)
{
	const int c = get_global_id(0), b = get_global_id(1);
	if (c >= channels || b >= batch)
		return;
	float m = x[b * steps * channels + c];
	for (int t = 1; t < steps; t++)
		m = fmax(m, x[(b * steps + t) * channels + c]);
	y[b * channels + c] = m;
}

/* The gradient goes to each channel's first maximum, found again from the input. One work-item
 * per (channel, sample) writes the sample's whole column. */
__kernel void gmp1d_backward(__global const float *x, __global const float *dy, __global float *dx,
                             const int batch, const int steps, const int channels)
{
	const int c = get_global_id(0), b = get_global_id(1);
	if (c >= channels || b >= batch)
		return;
	int arg = 0;
	float m = x[b * steps * channels + c];
	for (int t = 1; t < steps; t++) {
		const float v = x[(b * steps + t) * channels + c];
		if (v > m) {
			m = v;
			arg = t;
		}
	}
	for (int t = 0; t < steps; t++)
		dx[(b * steps + t) * channels + c] = t == arg ? dy[b * channels + c] : 0.0f;
}
