/* Batch assembly on the device, registered as program "strata_data": the data set is staged
 * once as bytes and each batch is gathered through the epoch's shuffled order. */

/* out[b, k] = (images[order[start + b], k] * scale - mean[k]) * inv_std[k], or without
 * standardization just images * scale. */
__kernel void gather_images(__global const uchar *images, __global const int *order, const int start,
                            const int batch, const int per_sample, const float scale, const int standardize,
                            __global const float *mean, __global const float *inv_std, __global float *out)
{
	const int k = get_global_id(0);
	const int b = get_global_id(1);
	if (k >= per_sample || b >= batch)
		return;
	const long src = (long)order[start + b] * per_sample + k;
	float v = images[src] * scale;
	if (standardize)
		v = (v - mean[k]) * inv_std[k];
	out[(long)b * per_sample + k] = v;
}

__kernel void gather_labels(__global const uchar *labels, __global const int *order, const int start,
                            const int batch, __global int *out)
{
	const int b = get_global_id(0);
	if (b >= batch)
		return;
	out[b] = labels[order[start + b]];
}

/* Ids for an int32 input: out[b, k] = ids[order[start + b], k], from an int32 file (ints) or a
 * byte file (bytes taken as ids, unscaled). */
__kernel void gather_ids(__global const int *ids, __global const int *order, const int start, const int batch,
                         const int per_sample, __global int *out)
{
	const int k = get_global_id(0);
	const int b = get_global_id(1);
	if (k >= per_sample || b >= batch)
		return;
	out[(long)b * per_sample + k] = ids[(long)order[start + b] * per_sample + k];
}

__kernel void gather_byte_ids(__global const uchar *ids, __global const int *order, const int start,
                              const int batch, const int per_sample, __global int *out)
{
	const int k = get_global_id(0);
	const int b = get_global_id(1);
	if (k >= per_sample || b >= batch)
		return;
	out[(long)b * per_sample + k] = ids[(long)order[start + b] * per_sample + k];
}
