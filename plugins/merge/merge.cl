/* The merge layers' kernels (Add, Subtract, Multiply, Average, Maximum, Minimum, Concatenate,
 * Divide), and the expansion and gradient sums of an input that broadcasts (merge.c).
 * OpenCL kernels take a fixed number of arguments, so the number of tensors a launch reads is a
 * build option (-DN_IN=1 to 8): one program per count actually used, each cached apart; the host
 * chains launches for a layer with more inputs than that (merge.c). */

#define MERGE_ADD 0
#define MERGE_SUBTRACT 1
#define MERGE_MULTIPLY 2
#define MERGE_MAXIMUM 3
#define MERGE_MINIMUM 4
#define MERGE_DIVIDE 5

/* The operation of merge_fold, fixed when the program is built (-DOP=code): a branch on a kernel
 * argument would keep PoCL from vectorizing over the work-items. */
#ifndef OP
#define OP MERGE_ADD
#endif
/* Tensors a launch reads, 1 to 8 (merge.c's MERGE_LAUNCH_INPUTS). */
#ifndef N_IN
#define N_IN 2
#endif
#if N_IN < 1 || N_IN > 8
#error "N_IN must be 1 to 8"
#endif
/* VW, floatv, VLOAD and VSTORE come from cl/vector.cl, prepended at build time. */

/* a OP b, for scalars and vectors alike. Maximum and minimum keep `a` on ties, so the value that
 * wins is always the earliest input holding it, bit for bit: their backward pass finds the winner
 * by comparing each input with the output. */
#if OP == MERGE_ADD
#define COMBINE(a, b) ((a) + (b))
#elif OP == MERGE_SUBTRACT
#define COMBINE(a, b) ((a) - (b))
#elif OP == MERGE_MULTIPLY
#define COMBINE(a, b) ((a) * (b))
#elif OP == MERGE_MAXIMUM
#define COMBINE(a, b) select((a), (b), (b) > (a))
#elif OP == MERGE_MINIMUM
#define COMBINE(a, b) select((a), (b), (b) < (a))
#elif OP == MERGE_DIVIDE
#define COMBINE(a, b) ((a) / (b))
#else
#error "unknown OP"
#endif

/* Applies COMBINE of in1 .. in(N_IN - 1) to `acc` with LOAD(p) reading the current element(s). */
#if N_IN >= 2
#define FOLD1(acc, LOAD) acc = COMBINE(acc, LOAD(in1))
#else
#define FOLD1(acc, LOAD)
#endif
#if N_IN >= 3
#define FOLD2(acc, LOAD) acc = COMBINE(acc, LOAD(in2))
#else
#define FOLD2(acc, LOAD)
#endif
#if N_IN >= 4
#define FOLD3(acc, LOAD) acc = COMBINE(acc, LOAD(in3))
#else
#define FOLD3(acc, LOAD)
#endif
#if N_IN >= 5
#define FOLD4(acc, LOAD) acc = COMBINE(acc, LOAD(in4))
#else
#define FOLD4(acc, LOAD)
#endif
#if N_IN >= 6
#define FOLD5(acc, LOAD) acc = COMBINE(acc, LOAD(in5))
#else
#define FOLD5(acc, LOAD)
#endif
#if N_IN >= 7
#define FOLD6(acc, LOAD) acc = COMBINE(acc, LOAD(in6))
#else
#define FOLD6(acc, LOAD)
#endif
#if N_IN >= 8
#define FOLD7(acc, LOAD) acc = COMBINE(acc, LOAD(in7))
#else
#define FOLD7(acc, LOAD)
#endif
#define FOLD(acc, LOAD)                                                                            \
	do {                                                                                       \
		FOLD1(acc, LOAD);                                                                  \
		FOLD2(acc, LOAD);                                                                  \
		FOLD3(acc, LOAD);                                                                  \
		FOLD4(acc, LOAD);                                                                  \
		FOLD5(acc, LOAD);                                                                  \
		FOLD6(acc, LOAD);                                                                  \
		FOLD7(acc, LOAD);                                                                  \
	} while (0)

/* Unused inputs past N_IN are absent from the signature, not passed as dummies. */
#if N_IN >= 2
#define ARG1 , __global const float *in1
#else
#define ARG1
#endif
#if N_IN >= 3
#define ARG2 , __global const float *in2
#else
#define ARG2
#endif
#if N_IN >= 4
#define ARG3 , __global const float *in3
#else
#define ARG3
#endif
#if N_IN >= 5
#define ARG4 , __global const float *in4
#else
#define ARG4
#endif
#if N_IN >= 6
#define ARG5 , __global const float *in5
#else
#define ARG5
#endif
#if N_IN >= 7
#define ARG6 , __global const float *in6
#else
#define ARG6
#endif
#if N_IN >= 8
#define ARG7 , __global const float *in7
#else
#define ARG7
#endif

/* out[0..n) = scale * (in0 OP in1 OP ... OP in(N_IN - 1)), left to right. `scale` is 1 but for
 * Average (1 / inputs) and Subtract's second gradient (-1); multiplying by 1 is exact, so Maximum's
 * output stays bit-identical to its winner. in0 may be `out` (a chained launch continues from what
 * the previous one left there: each work-item reads its elements before writing them). With N_IN
 * 1 it is a scaled copy: Add's, Subtract's and Average's gradients. Multiply's gradient of input i
 * is this with in0 = dy and the other inputs after it.
 *
 * A work-item handles VW consecutive floats, so PoCL vectorizes it; the last one, the tail. */
__kernel void merge_fold(__global float *out, const int n, const float scale, __global const float *in0 ARG1 ARG2
                         ARG3 ARG4 ARG5 ARG6 ARG7)
{
	const int i = get_global_id(0), full = n / VW;
	if (i < full) {
#define LOAD_VEC(p) VLOAD(i, p)
		floatv acc = VLOAD(i, in0);
		FOLD(acc, LOAD_VEC);
		VSTORE(acc * scale, i, out);
		return;
	}
	if (i != full)
		return;
#define LOAD_ONE(p) (p)[j]
	for (int j = full * VW; j < n; j++) {
		float acc = in0[j];
		FOLD(acc, LOAD_ONE);
		out[j] = acc * scale;
	}
}

/* Maximum's and Minimum's gradient of one input x, the inputs taken in order: the gradient goes
 * to the first input equal to the output y (ties go to the earliest, as TensorFlow's pairwise
 * greater_equal gradient does). With -DPICK_WRITE=1, grad = dy where x == y, else 0; with
 * -DPICK_CLAIM=1, dy is cleared where x == y, so no later input equal to y gets it too (the host
 * lets a layer overwrite its output gradient). `grad` is not touched without PICK_WRITE (the host
 * then passes dy there). Where y is NaN no input equals it and every gradient is 0. */
#ifndef PICK_WRITE
#define PICK_WRITE 1
#endif
#ifndef PICK_CLAIM
#define PICK_CLAIM 1
#endif
__kernel void merge_pick(__global float *grad, __global float *dy, __global const float *y,
                         __global const float *x, const int n)
{
#if !PICK_WRITE
	(void)grad; /* the host passes dy there */
#endif
	const int i = get_global_id(0), full = n / VW;
	if (i < full) {
		const floatv d = VLOAD(i, dy);
		const intv won = VLOAD(i, x) == VLOAD(i, y);
#if PICK_WRITE
		VSTORE(select((floatv)(0.0f), d, won), i, grad);
#endif
#if PICK_CLAIM
		VSTORE(select(d, (floatv)(0.0f), won), i, dy);
#endif
		return;
	}
	if (i != full)
		return;
	for (int j = full * VW; j < n; j++) {
		const float d = dy[j];
		const int won = x[j] == y[j];
#if PICK_WRITE
		grad[j] = won ? d : 0.0f;
#endif
#if PICK_CLAIM
		dy[j] = won ? 0.0f : d;
#endif
	}
}

/* Concatenate: a 2-D launch, dimension 0 over the columns this launch writes, 1 over the rows
 * (rows = batch x the dimensions before the axis; a row of input k holds len_k floats: its
 * extent on the axis times the dimensions after it). out's rows hold out_len floats; this launch
 * fills columns col0 .. col0 + len0 + ... + len(N_IN - 1) of each from its N_IN inputs, in order.
 * The 2-D launch gives row and column without a division per element. */
#if N_IN >= 2
#define CARG1 , __global const float *in1, const int len1
#else
#define CARG1
#endif
#if N_IN >= 3
#define CARG2 , __global const float *in2, const int len2
#else
#define CARG2
#endif
#if N_IN >= 4
#define CARG3 , __global const float *in3, const int len3
#else
#define CARG3
#endif
#if N_IN >= 5
#define CARG4 , __global const float *in4, const int len4
#else
#define CARG4
#endif
#if N_IN >= 6
#define CARG5 , __global const float *in5, const int len5
#else
#define CARG5
#endif
#if N_IN >= 7
#define CARG6 , __global const float *in6, const int len6
#else
#define CARG6
#endif
#if N_IN >= 8
#define CARG7 , __global const float *in7, const int len7
#else
#define CARG7
#endif

/* Reads column c of input k when c falls in it, else moves c past it. */
#define TAKE(k)                                                                                    \
	if (c < len##k) {                                                                          \
		out[o] = in##k[(size_t)row * len##k + c];                                          \
		return;                                                                            \
	}                                                                                          \
	c -= len##k

__kernel void merge_concat(__global float *out, const int rows, const int out_len, const int col0,
                           const int cols, __global const float *in0, const int len0 CARG1 CARG2 CARG3 CARG4
                           CARG5 CARG6 CARG7)
{
	const int col = get_global_id(0), row = get_global_id(1);
	if (col >= cols || row >= rows)
		return;
	const size_t o = (size_t)row * out_len + col0 + col;
	int c = col;
	TAKE(0);
#if N_IN >= 2
	TAKE(1);
#endif
#if N_IN >= 3
	TAKE(2);
#endif
#if N_IN >= 4
	TAKE(3);
#endif
#if N_IN >= 5
	TAKE(4);
#endif
#if N_IN >= 6
	TAKE(5);
#endif
#if N_IN >= 7
	TAKE(6);
#endif
#if N_IN >= 8
	TAKE(7);
#endif
}

/* Concatenate's gradient of one input: its columns col0 .. col0 + len of each row of dy. */
__kernel void merge_slice(__global float *grad, __global const float *dy, const int rows, const int len,
                          const int out_len, const int col0)
{
	const int col = get_global_id(0), row = get_global_id(1);
	if (col >= len || row >= rows)
		return;
	grad[(size_t)row * len + col] = dy[(size_t)row * out_len + col0 + col];
}

/* Broadcasting. Samples of up to 4 axes: o0..o3 are the output's dimensions, i0..i3 an input's,
 * both aligned on the last axis and padded with leading 1s; where i_d is 1 and o_d is not, the
 * input stretches along axis d. */

/* out (n floats: samples of the output's shape) = the input stretched, sample by sample. */
__kernel void merge_expand(__global float *out, __global const float *in, const int n, const int o0,
                           const int o1, const int o2, const int o3, const int i0, const int i1, const int i2,
                           const int i3)
{
	const int g = get_global_id(0);
	if (g >= n)
		return;
	const int out_elems = o0 * o1 * o2 * o3, b = g / out_elems;
	int r = g - b * out_elems;
	const int c3 = r % o3;
	r /= o3;
	const int c2 = r % o2;
	r /= o2;
	const int c1 = r % o1, c0 = r / o1;
	/* the input's coordinates: 0 along its stretched axes */
	const int k0 = i0 == 1 ? 0 : c0, k1 = i1 == 1 ? 0 : c1, k2 = i2 == 1 ? 0 : c2, k3 = i3 == 1 ? 0 : c3;
	out[g] = in[(size_t)b * (i0 * i1 * i2 * i3) + ((k0 * i1 + k1) * i2 + k2) * i3 + k3];
}

/* grad (n floats: samples of the input's shape) = the sums of g (samples of the output's shape)
 * over the axes the input stretched along: the gradient of merge_expand. One work-item per input
 * element adds its elements of g in a fixed order, so the sums are the same every run. */
__kernel void merge_reduce(__global float *grad, __global const float *g, const int n, const int o0,
                           const int o1, const int o2, const int o3, const int i0, const int i1, const int i2,
                           const int i3)
{
	const int e = get_global_id(0);
	if (e >= n)
		return;
	const int in_elems = i0 * i1 * i2 * i3, b = e / in_elems;
	int r = e - b * in_elems;
	const int c3 = r % i3;
	r /= i3;
	const int c2 = r % i2;
	r /= i2;
	const int c1 = r % i1, c0 = r / i1;
	const int s2 = o3, s1 = o2 * o3, s0 = o1 * o2 * o3;
	const int n0 = i0 == 1 ? o0 : 1, n1 = i1 == 1 ? o1 : 1, n2 = i2 == 1 ? o2 : 1, n3 = i3 == 1 ? o3 : 1;
	__global const float *base = g + (size_t)b * (o0 * s0) + c0 * s0 + c1 * s1 + c2 * s2 + c3;
	float sum = 0.0f;
	for (int a0 = 0; a0 < n0; a0++)
		for (int a1 = 0; a1 < n1; a1++)
			for (int a2 = 0; a2 < n2; a2++)
				for (int a3 = 0; a3 < n3; a3++)
					sum += base[a0 * s0 + a1 * s1 + a2 * s2 + a3];
	grad[e] = sum;
}
