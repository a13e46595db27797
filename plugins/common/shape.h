/* Shape arithmetic shared by the layer plugins: Keras/TensorFlow output sizes and padding for
 * windowed layers (conv2d, maxpool2d), overflow-checked products, and shapes in messages. */
#ifndef PLUGINS_COMMON_SHAPE_H
#define PLUGINS_COMMON_SHAPE_H

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include <strata/plugin.h>

/* Writes "(28, 28, 1)" into buf. */
static inline const char *shape_format(const strata_shape *shape, char *buf, size_t size)
{
	size_t used = 0;
	int n = snprintf(buf, size, "(");
	for (uint32_t i = 0; i < shape->rank && n >= 0 && (used += (size_t)n) < size; i++)
		n = snprintf(buf + used, size - used, "%s%lld", i ? ", " : "", (long long)shape->dims[i]);
	if (n >= 0 && (used += (size_t)n) < size)
		snprintf(buf + used, size - used, ")");
	return buf;
}

/* *out = a * b unless the product exceeds `limit`. */
static inline bool shape_mul(int64_t a, int64_t b, int64_t limit, int64_t *out)
{
	if (a < 0 || b < 0 || (b != 0 && a > limit / b))
		return false;
	*out = a * b;
	return true;
}

/* One spatial dimension of a windowed layer, as TensorFlow computes it: 'valid' gives
 * floor((in - window) / stride) + 1 and no padding; 'same' gives ceil(in / stride) with
 * max((out - 1) * stride + window - in, 0) padding, the odd element after (bottom/right).
 * Returns false when a 'valid' window does not fit in the input. */
static inline bool shape_window(int64_t in, int64_t window, int64_t stride, bool same, int64_t *out,
                                int64_t *pad_before)
{
	if (same) {
		*out = (in + stride - 1) / stride;
		int64_t pad = (*out - 1) * stride + window - in;
		*pad_before = pad > 0 ? pad / 2 : 0;
		return true;
	}
	if (window > in)
		return false;
	*out = (in - window) / stride + 1;
	*pad_before = 0;
	return true;
}

/* Refuses a batch whose element count would exceed the kernels' int indexing. */
static inline strata_status shape_check_batch(strata_layer *layer, const strata_host *host, uint32_t batch,
                                              size_t per_sample)
{
	if (per_sample != 0 && batch > INT_MAX / per_sample)
		return host->fail(layer, STRATA_ERR_OVERFLOW, "a batch of %u x %zu values exceeds the "
		                  "kernels' int indexing: lower the batch size", batch, per_sample);
	return STRATA_OK;
}

#endif
