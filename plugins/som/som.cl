/* The self-organizing map (issue 15): a codebook of U = rows x columns prototypes of F features.
 * The distances of a batch to every unit come from one GEMM (-2 X W^T, written straight into the
 * output's distance slots) plus the squared norms; the Kohonen update is two launches and a GEMM:
 * the neighbourhood h of every (sample, unit), then W[j] <- W[j] (1 - rate sum_i h_ij) and
 * W += rate H^T X, rate = learning_rate / batch. Every kernel walks its sums in a fixed order:
 * the same seed and data give the same codebook. Portable OpenCL C 1.2. */

#define SOM_GAUSSIAN 0
#define SOM_MEXICAN_HAT 1
#define SOM_BUBBLE 2
#define SOM_TRIANGLE 3

/* ww[j] = |W[j]|^2 for the u units of f features. */
__kernel void som_norms(__global const float *w, __global float *ww, const int u, const int f)
{
	const int j = get_global_id(0);
	if (j >= u)
		return;
	float s = 0.0f;
	for (int k = 0; k < f; k++) {
		const float v = w[j * f + k];
		s += v * v;
	}
	ww[j] = s;
}

/* For each of n samples: its row of the output (2 + u floats) holds -2 x.W[j] in slots 2..; they
 * become the Euclidean distances |x - W[j]|, slots 0 and 1 the best-matching unit's row and column
 * (the first of equal distances), and bmu[i] its index. */
__kernel void som_bmu(__global const float *x, __global float *out, __global const float *ww, __global int *bmu,
                      const int n, const int u, const int f, const int columns)
{
	const int i = get_global_id(0);
	if (i >= n)
		return;
	float xx = 0.0f;
	for (int k = 0; k < f; k++) {
		const float v = x[i * f + k];
		xx += v * v;
	}
	__global float *row = out + (size_t)i * (size_t)(u + 2);
	int best = 0;
	float best_d2 = 0.0f;
	for (int j = 0; j < u; j++) {
		const float d2 = fmax(xx + ww[j] + row[2 + j], 0.0f);
		row[2 + j] = sqrt(d2);
		if (j == 0 || d2 < best_d2) {
			best = j;
			best_d2 = d2;
		}
	}
	row[0] = (float)(best / columns);
	row[1] = (float)(best % columns);
	bmu[i] = best;
}

/* The position of unit j on the map: (x, y) = (column, row) on a rectangular grid; on a hexagonal
 * one odd rows shift half a unit right and rows lie sqrt(3)/2 apart, so all six neighbours are at
 * distance 1. */
static inline float2 som_position(const int j, const int columns, const int hexagonal)
{
	const int r = j / columns, c = j % columns;
	if (hexagonal)
		return (float2)((float)c + ((r & 1) ? 0.5f : 0.0f), (float)r * 0.8660254037844386f);
	return (float2)((float)c, (float)r);
}

/* h[i, j]: the neighbourhood of sample i's best-matching unit at unit j, for radius sigma. */
__kernel void som_neighbourhood(__global const int *bmu, __global float *h, const int n, const int u,
                                const int columns, const int hexagonal, const int function, const float sigma)
{
	const int j = get_global_id(0), i = get_global_id(1);
	if (j >= u || i >= n)
		return;
	const float2 d = som_position(j, columns, hexagonal) - som_position(bmu[i], columns, hexagonal);
	const float p = d.x * d.x + d.y * d.y, s2 = sigma * sigma;
	float v;
	if (function == SOM_GAUSSIAN)
		v = exp(-p / (2.0f * s2));
	else if (function == SOM_MEXICAN_HAT)
		v = exp(-p / (2.0f * s2)) * (1.0f - p / s2);
	else if (function == SOM_BUBBLE)
		v = fabs(d.x) < sigma && fabs(d.y) < sigma ? 1.0f : 0.0f;
	else
		v = fmax(1.0f - fabs(d.x) / sigma, 0.0f) * fmax(1.0f - fabs(d.y) / sigma, 0.0f);
	h[i * u + j] = v;
}

/* W[j] <- W[j] (1 - rate sum_i h[i, j]): the part of the update the GEMM W += rate H^T X does not
 * make. One work-group row per unit; each work-item sums the column of h itself (n is a batch). */
__kernel void som_shrink(__global float *w, __global const float *h, const int n, const int u, const int f,
                         const float rate)
{
	const int k = get_global_id(0), j = get_global_id(1);
	if (k >= f || j >= u)
		return;
	float s = 0.0f;
	for (int i = 0; i < n; i++)
		s += h[i * u + j];
	w[j * f + k] *= 1.0f - rate * s;
}

/* ---- Initialization from the first training batch, once: `flag` (the layer's state) is 0 until
 * then. The kernels that write the codebook do nothing once it is 1; som_set_flag comes last. */

/* random: unit j takes the features of sample (draw of j) mod n. */
__kernel void som_init_random(__global const float *x, __global float *w, __global const float *flag, const int n,
                              const int u, const int f, const uint key_lo, const uint key_hi)
{
	const int k = get_global_id(0), j = get_global_id(1);
	if (k >= f || j >= u || flag[0] != 0.0f)
		return;
	const uint4 r = random_draw((uint)j, 0u, key_lo, key_hi, 0u, 0u);
	w[j * f + k] = x[(int)(r.x % (uint)n) * f + k];
}

/* mean[k] over the n samples, and xc = x - mean. */
__kernel void som_center(__global const float *x, __global float *mean, __global float *xc, const int n, const int f)
{
	const int k = get_global_id(0);
	if (k >= f)
		return;
	float s = 0.0f;
	for (int i = 0; i < n; i++)
		s += x[i * f + k];
	s /= (float)n;
	mean[k] = s;
	for (int i = 0; i < n; i++)
		xc[i * f + k] = x[i * f + k] - s;
}

/* The power iteration's start: a fixed vector of mixed signs (a hash of the index), the same on
 * every run. */
__kernel void som_start(__global float *v, const int f)
{
	const int k = get_global_id(0);
	if (k < f)
		v[k] = (float)(((uint)k * 2654435761u) >> 8) / 16777216.0f - 0.5f;
}

/* One work-item: v <- v - (v.prev) prev when `deflate` (orthogonal to the first component), then
 * v / |v| with the sign that makes its largest-magnitude element positive (so the direction does
 * not depend on the start); with `measure` only scales[which] = |v| (v then holds Xc^T Xc u of a
 * unit u: its norm is the eigenvalue). */
__kernel void som_normalize(__global float *v, __global const float *prev, __global float *scales, const int which,
                            const int f, const int deflate, const int measure)
{
	if (get_global_id(0) != 0)
		return;
	if (deflate) {
		float dot = 0.0f;
		for (int k = 0; k < f; k++)
			dot += v[k] * prev[k];
		for (int k = 0; k < f; k++)
			v[k] -= dot * prev[k];
	}
	float ss = 0.0f, big = 0.0f;
	for (int k = 0; k < f; k++) {
		ss += v[k] * v[k];
		if (fabs(v[k]) > fabs(big))
			big = v[k];
	}
	const float norm = sqrt(ss);
	if (measure) {
		scales[which] = norm;
		return;
	}
	if (norm == 0.0f)
		return;
	const float m = (big < 0.0f ? -1.0f : 1.0f) / norm;
	for (int k = 0; k < f; k++)
		v[k] *= m;
}

/* pca: unit (r, c) = mean + a s1 v1 + b s2 v2, a and b evenly spaced over [-1, 1] along the
 * columns and the rows, s1 and s2 the components' standard deviations (sqrt of eigenvalue / (n-1)). */
__kernel void som_init_pca(__global float *w, __global const float *flag, __global const float *mean,
                           __global const float *v1, __global const float *v2, __global const float *scales,
                           const int n, const int u, const int f, const int rows, const int columns)
{
	const int k = get_global_id(0), j = get_global_id(1);
	if (k >= f || j >= u || flag[0] != 0.0f)
		return;
	const int r = j / columns, c = j % columns;
	const float a = columns > 1 ? -1.0f + 2.0f * (float)c / (float)(columns - 1) : 0.0f;
	const float b = rows > 1 ? -1.0f + 2.0f * (float)r / (float)(rows - 1) : 0.0f;
	const float denom = n > 1 ? (float)(n - 1) : 1.0f;
	const float s1 = sqrt(scales[0] / denom), s2 = sqrt(scales[1] / denom);
	w[j * f + k] = mean[k] + a * s1 * v1[k] + b * s2 * v2[k];
}

__kernel void som_set_flag(__global float *flag)
{
	if (get_global_id(0) == 0)
		flag[0] = 1.0f;
}
