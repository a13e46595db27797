/* Embedding (issue 15): the forward pass gathers one row of the table per id; the backward pass
 * adds the output gradients of every position into the row of its id, exactly and
 * deterministically without float atomics: the (id, position) pairs are sorted (a bitonic sort of
 * 64-bit keys id << 32 | position, so positions of one id stay in order), then one work-item per
 * (run of one id, column) sums its run in position order and writes the row once. An id outside
 * [0, input_dim) reads as a row of zeros (as TensorFlow on a GPU) and takes no gradient.
 * Portable OpenCL C 1.2. */

#define NO_KEY 0xffffffffffffffffUL

/* out[i, d] = table[ids[i], d] over n ids of `dim` columns. */
__kernel void embedding_gather(__global const int *ids, __global const float *table, __global float *out, const int n,
                               const int dim, const int input_dim)
{
	const int d = get_global_id(0), i = get_global_id(1);
	if (d >= dim || i >= n)
		return;
	const int id = ids[i];
	out[i * dim + d] = id >= 0 && id < input_dim ? table[id * dim + d] : 0.0f;
}

/* mask_zero: id 0 is padding. mask[i] = 0 for it, 1 for every other id. */
__kernel void embedding_mask(__global const int *ids, __global float *mask, const int n)
{
	const int i = get_global_id(0);
	if (i < n)
		mask[i] = ids[i] != 0 ? 1.0f : 0.0f;
}

/* keys[0..padded): id << 32 | position for the n ids in range, NO_KEY for the rest (they sort
 * last). */
__kernel void embedding_keys(__global const int *ids, __global ulong *keys, const int n, const int padded,
                             const int input_dim)
{
	const int i = get_global_id(0);
	if (i >= padded)
		return;
	const int id = i < n ? ids[i] : -1;
	keys[i] = id >= 0 && id < input_dim ? ((ulong)id << 32) | (ulong)i : NO_KEY;
}

/* One compare-exchange pass of the bitonic sort of `padded` (a power of two) keys: stage size
 * `k`, distance `j`. */
__kernel void embedding_bitonic(__global ulong *keys, const int padded, const int k, const int j)
{
	const int i = get_global_id(0);
	if (i >= padded)
		return;
	const int l = i ^ j;
	if (l <= i)
		return;
	const ulong a = keys[i], b = keys[l];
	const bool up = (i & k) == 0;
	if (up ? a > b : a < b) {
		keys[i] = b;
		keys[l] = a;
	}
}

/* dtable[id, d] = the sum of dy[position, d] over the run of sorted keys of that id, in position
 * order; the work-item at the run's first key writes it. Rows of ids that did not occur keep the
 * zeros filled before. */
__kernel void embedding_sums(__global const ulong *keys, __global const float *dy, __global float *dtable,
                             const int padded, const int dim)
{
	const int d = get_global_id(0), s = get_global_id(1);
	if (d >= dim || s >= padded)
		return;
	const ulong key = keys[s];
	if (key == NO_KEY)
		return;
	const uint id = (uint)(key >> 32);
	if (s > 0 && (uint)(keys[s - 1] >> 32) == id)
		return;
	float sum = 0.0f;
	for (int t = s; t < padded && keys[t] != NO_KEY && (uint)(keys[t] >> 32) == id; t++)
		sum += dy[(int)(keys[t] & 0xffffffffUL) * dim + d];
	dtable[(int)id * dim + d] = sum;
}
