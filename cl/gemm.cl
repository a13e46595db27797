/* Strata's SGEMM for CPU OpenCL drivers (program "strata_gemm", src/gemm_tile.c): row-major
 * C = alpha * A B + beta * C, where A's element (i, k) sits at A[i * ars + k * acs], so A or
 * its transpose costs nothing, or is read from images as their im2col matrix (WINDOW), and row
 * k of B is contiguous (the host transposes a B that is not).
 *
 * Why not CLBlast here: its kernels are written for GPUs' work-group parallelism, and on PoCL
 * they reached 23 to 90 GFLOP/s on a convolution's shapes, against ~100 for this one. PoCL runs
 * a work-group of one work-item as a plain loop nest, so each work-item is written as a CPU
 * micro-kernel: an MR x NR block of C held in MR * NV float16 accumulators (registers, once the
 * constant-trip loops are unrolled), updated per k from one broadcast element of A per row and
 * NV vectors of B's row: the outer-product form of BLIS' micro-kernels, with no packing because
 * B's rows are contiguous already and A's elements are broadcast one at a time. */

/* Rows of the block (1 to 16) and float16 vectors across it (1 to 4): tunables, passed as -D. */
#ifndef MR
#define MR 6
#endif
#ifndef NV
#define NV 4
#endif
#define NR (16 * NV)

/* What A is: 0 a matrix, a(i, k) = A[i * ars + k * acs]; 1 the im2col matrix of a batch of NHWC
 * images, read in place (row i a window, column k an element of it: (ky, kx, c)); 2 its
 * transpose (row i an element, column k a window). The image geometry comes as arguments. */
#ifndef WINDOW
#define WINDOW 0
#endif

/* The epilogue (-DBIAS=1, -DRELU=1; st_gemm_fused): what bias_activation (cl/core.cl) would do
 * to C afterwards, done as C is stored: bias[col] added, then relu, in the same order and
 * rounding, so fused or not the numbers are the same. It saves a pass over C. */
#ifndef BIAS
#define BIAS 0
#endif
#ifndef RELU
#define RELU 0
#endif

/* The epilogue of one element r of column j. */
inline float epilogue(float r, __global const float *bias, int j)
{
#if BIAS
	r += bias[j];
#endif
#if RELU
	r = fmax(r, 0.0f);
#endif
	return r;
}

/* Offset of window p's first element, for windows numbered (n, oy, ox). */
inline int window_base(int p, int h, int w, int c, int sh, int sw, int oh, int ow)
{
	const int n = p / (oh * ow), r = p - n * oh * ow, oy = r / ow, ox = r - oy * ow;
	return ((n * h + oy * sh) * w + ox * sw) * c;
}

/* Offset of element q = (ky, kx, c) from its window's first. */
inline int window_elem(int q, int w, int c, int kw)
{
	const int t = q / c, kx = t % kw, ky = t / kw;
	return (ky * w + kx) * c + (q - t * c);
}

#if WINDOW == 1
#define ROW_OFFSET(i) window_base(i, wh, ww, wc, wsh, wsw, woh, wow)
#define COL_OFFSET(k) window_elem(k, ww, wc, wkw)
#elif WINDOW == 2
#define ROW_OFFSET(i) window_elem(i, ww, wc, wkw)
#define COL_OFFSET(k) window_base(k, wh, ww, wc, wsh, wsw, woh, wow)
#else
#define ROW_OFFSET(i) ((i) * ars)
#define COL_OFFSET(k) ((k) * acs)
#endif

/* Launched over (N blocks, any number of row-block walkers, K splits) with one work-item per
 * work-group. Split s covers k in [s * kc, (s + 1) * kc) and writes C + s * split_stride: with
 * more than one split the host points C at a scratch buffer of partial products, alpha = 1 and
 * beta = 0, and gemm_reduce finishes. Blocks that reach past N take a scalar path. */
__kernel void gemm_tile(int M, int N, int K, int kc,
                        __global const float *A, int a_off, int ars, int acs,
                        __global const float *B, int b_off, int ldb,
                        __global float *C, int c_off, int ldc, int split_stride,
                        float alpha, float beta,
                        int wh, int ww, int wc, int wkw, int wsh, int wsw, int woh, int wow,
                        __global const float *bias)
{
	const int tiles_m = (M + MR - 1) / MR;
	const int j0 = (int)get_global_id(0) * NR;
	const int split = (int)get_global_id(2);
	const int k0 = split * kc, k1 = min(K, k0 + kc);
	A += a_off;
	B += b_off;
	C += c_off + split * split_stride;
	for (int tm = (int)get_global_id(1); tm < tiles_m; tm += (int)get_global_size(1)) {
		const int i0 = tm * MR;
		if (j0 + NR <= N) {
			/* rows past M (the last block) repeat row M - 1 and are not stored: the loop
			 * stays branch-free and vectorized for a small M such as a kernel gradient's */
			int ro[MR];
#pragma unroll
			for (int i = 0; i < MR; i++)
				ro[i] = ROW_OFFSET(min(i0 + i, M - 1));
			float16 acc[MR][NV];
#pragma unroll
			for (int i = 0; i < MR; i++)
#pragma unroll
				for (int v = 0; v < NV; v++)
					acc[i][v] = (float16)(0.0f);
			__global const float *ap = A + COL_OFFSET(k0);
			__global const float *bp = B + k0 * ldb + j0;
			/* One k: NV vectors of B's row k, one broadcast of A per row, MR * NV FMAs. */
#define STEP_K(a_step)                                                                  \
	{                                                                                   \
		float16 b[NV];                                                                  \
		_Pragma("unroll") for (int v = 0; v < NV; v++) b[v] = vload16(v, bp);          \
		_Pragma("unroll") for (int i = 0; i < MR; i++)                                  \
		{                                                                               \
			const float16 a = (float16)(ap[ro[i]]);                                     \
			_Pragma("unroll") for (int v = 0; v < NV; v++) acc[i][v] = fma(a, b[v], acc[i][v]); \
		}                                                                               \
		ap += (a_step);                                                                 \
		bp += ldb;                                                                      \
	}
#if WINDOW == 1
			/* A window's elements lie in runs of kw * c, one per kernel row: each run is a
			 * plain loop (its next element the next float), and the jump to the next row
			 * comes between runs, not as a test at every k (that cost a third of the speed). */
			const int row_len = wkw * wc;
			int pos = k0 % row_len;
			for (int k = k0; k < k1;) {
				const int run = min(row_len - pos, k1 - k);
				for (int r = 0; r < run; r++)
					STEP_K(1)
				k += run;
				pos = 0;
				ap += (ww - wkw) * wc;
			}
#elif WINDOW == 2
			/* Windows along an output row are wsw * c apart: a run per output row, and the
			 * jumps to the next row (and image) between runs. */
			int ox_at = k0 % wow, oy_at = (k0 / wow) % woh;
			for (int k = k0; k < k1;) {
				const int run = min(wow - ox_at, k1 - k);
				for (int r = 0; r < run; r++)
					STEP_K(wsw * wc)
				k += run;
				ox_at = 0;
				ap += (wsh * ww - wow * wsw) * wc;
				if (++oy_at == woh) {
					oy_at = 0;
					ap += (wh - woh * wsh) * ww * wc;
				}
			}
#else
			for (int k = k0; k < k1; k++)
				STEP_K(acs)
#endif
#undef STEP_K
#pragma unroll
			for (int i = 0; i < MR; i++) {
				if (i0 + i >= M)
					break;
				__global float *cp = C + (i0 + i) * ldc + j0;
#pragma unroll
				for (int v = 0; v < NV; v++) {
					/* beta == 0 must not read C: it may hold NaN from an earlier use */
					float16 r = alpha * acc[i][v];
					if (beta != 0.0f)
						r = fma((float16)(beta), vload16(v, cp), r);
#if BIAS
					r += vload16(v, bias + j0);
#endif
#if RELU
					r = fmax(r, (float16)(0.0f));
#endif
					vstore16(r, v, cp);
				}
			}
		} else {
			for (int i = i0; i < min(M, i0 + MR); i++)
				for (int j = j0; j < min(N, j0 + NR); j++) {
					float sum = 0.0f;
					for (int k = k0; k < k1; k++)
						sum = fma(A[ROW_OFFSET(i) + COL_OFFSET(k)], B[k * ldb + j], sum);
					float r = alpha * sum;
					r = beta != 0.0f ? fma(beta, C[i * ldc + j], r) : r;
					C[i * ldc + j] = epilogue(r, bias, j);
				}
		}
	}
}

/* C = alpha * (sum of the splits' partial products) + beta * C, over (N, M). */
__kernel void gemm_reduce(int M, int N, int splits, __global const float *P, int split_stride,
                          __global float *C, int c_off, int ldc, float alpha, float beta,
                          __global const float *bias)
{
	const int j = (int)get_global_id(0), i = (int)get_global_id(1);
	if (j >= N || i >= M)
		return;
	float sum = 0.0f;
	for (int s = 0; s < splits; s++)
		sum += P[s * split_stride + i * N + j];
	__global float *c = C + c_off + i * ldc + j;
	float r = alpha * sum;
	r = beta != 0.0f ? fma(beta, *c, r) : r;
	*c = epilogue(r, bias, j);
}

/* dst[c * rows + r] = src[s_off + r * lds + c]: the transpose of a B that is stored by columns,
 * so that gemm_tile reads rows. One work-item moves an 8 x 8 block, launched over (cols / 8,
 * rows / 8) rounded up: eight rows read as vectors and written as eight column vectors, where an
 * element per work-item made every store a scattered one (on PoCL it cost as much as the GEMM
 * it prepared). Blocks that reach past the edges copy element by element. */
#define TRANSPOSED(j) (float8)(v[0].s##j, v[1].s##j, v[2].s##j, v[3].s##j, v[4].s##j, v[5].s##j, v[6].s##j, v[7].s##j)
__kernel void gemm_transpose(int rows, int cols, __global const float *src, int s_off, int lds,
                             __global float *dst)
{
	const int c0 = (int)get_global_id(0) * 8, r0 = (int)get_global_id(1) * 8;
	if (c0 >= cols || r0 >= rows)
		return;
	src += s_off;
	if (c0 + 8 <= cols && r0 + 8 <= rows) {
		float8 v[8];
#pragma unroll
		for (int i = 0; i < 8; i++)
			v[i] = vload8(0, src + (r0 + i) * lds + c0);
		__global float *d = dst + c0 * rows + r0;
		vstore8(TRANSPOSED(0), 0, d);
		vstore8(TRANSPOSED(1), 0, d + rows);
		vstore8(TRANSPOSED(2), 0, d + 2 * rows);
		vstore8(TRANSPOSED(3), 0, d + 3 * rows);
		vstore8(TRANSPOSED(4), 0, d + 4 * rows);
		vstore8(TRANSPOSED(5), 0, d + 5 * rows);
		vstore8(TRANSPOSED(6), 0, d + 6 * rows);
		vstore8(TRANSPOSED(7), 0, d + 7 * rows);
		return;
	}
	for (int r = r0; r < min(rows, r0 + 8); r++)
		for (int c = c0; c < min(cols, c0 + 8); c++)
			dst[c * rows + r] = src[r * lds + c];
}
