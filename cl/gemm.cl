/* Strata's SGEMM for CPU OpenCL drivers (program "strata_gemm", src/gemm_tile.c): row-major
 * C = alpha * A B + beta * C, where A's element (i, k) sits at A[i * ars + k * acs], so A or
 * its transpose costs nothing, and row k of B is contiguous (the host transposes a B that is
 * not).
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

/* Launched over (N blocks, any number of row-block walkers, K splits) with one work-item per
 * work-group. Split s covers k in [s * kc, (s + 1) * kc) and writes C + s * split_stride: with
 * more than one split the host points C at a scratch buffer of partial products, alpha = 1 and
 * beta = 0, and gemm_reduce finishes. Blocks that reach past N take a scalar path. */
__kernel void gemm_tile(int M, int N, int K, int kc,
                        __global const float *A, int a_off, int ars, int acs,
                        __global const float *B, int b_off, int ldb,
                        __global float *C, int c_off, int ldc, int split_stride,
                        float alpha, float beta)
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
				ro[i] = min(i, M - 1 - i0) * ars;
			float16 acc[MR][NV];
#pragma unroll
			for (int i = 0; i < MR; i++)
#pragma unroll
				for (int v = 0; v < NV; v++)
					acc[i][v] = (float16)(0.0f);
			__global const float *ap = A + i0 * ars + k0 * acs;
			__global const float *bp = B + k0 * ldb + j0;
			for (int k = k0; k < k1; k++) {
				float16 b[NV];
#pragma unroll
				for (int v = 0; v < NV; v++)
					b[v] = vload16(v, bp);
#pragma unroll
				for (int i = 0; i < MR; i++) {
					const float16 a = (float16)(ap[ro[i]]);
#pragma unroll
					for (int v = 0; v < NV; v++)
						acc[i][v] = fma(a, b[v], acc[i][v]);
				}
				ap += acs;
				bp += ldb;
			}
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
					vstore16(r, v, cp);
				}
			}
		} else {
			for (int i = i0; i < min(M, i0 + MR); i++)
				for (int j = j0; j < min(N, j0 + NR); j++) {
					float sum = 0.0f;
					for (int k = k0; k < k1; k++)
						sum = fma(A[i * ars + k * acs], B[k * ldb + j], sum);
					float r = alpha * sum;
					C[i * ldc + j] = beta != 0.0f ? fma(beta, C[i * ldc + j], r) : r;
				}
		}
	}
}

/* C = alpha * (sum of the splits' partial products) + beta * C, over (N, M). */
__kernel void gemm_reduce(int M, int N, int splits, __global const float *P, int split_stride,
                          __global float *C, int c_off, int ldc, float alpha, float beta)
{
	const int j = (int)get_global_id(0), i = (int)get_global_id(1);
	if (j >= N || i >= M)
		return;
	float sum = 0.0f;
	for (int s = 0; s < splits; s++)
		sum += P[s * split_stride + i * N + j];
	__global float *c = C + c_off + i * ldc + j;
	const float r = alpha * sum;
	*c = beta != 0.0f ? fma(beta, *c, r) : r;
}

/* dst[c * rows + r] = src[s_off + r * lds + c] over (cols, rows): the transpose of a B that is
 * stored by columns, so that gemm_tile reads rows. */
__kernel void gemm_transpose(int rows, int cols, __global const float *src, int s_off, int lds,
                             __global float *dst)
{
	const int c = (int)get_global_id(0), r = (int)get_global_id(1);
	if (c >= cols || r >= rows)
		return;
	dst[c * rows + r] = src[s_off + r * lds + c];
}
