/* The device-memory budget of a session: what its buffers will take, weighed against the device's
 * global memory before any is made. */
#include "exec/session.h"

/* Drivers accept buffers larger than the device's memory and fail, or abort (PoCL 3.1 asserts), when
 * they are first used, so the session's buffers are weighed against the device's global memory
 * before any is made: `per_sample` bytes for each sample of the batch plus `fixed` bytes. */
strata_status st_session_check_fits(const strata_session *s, const char *what, uint64_t per_sample,
                                uint64_t fixed, strata_error *err)
{
	const strata_device_info *dev = &s->rt->info;
	uint64_t total;
	if (dev->global_mem_bytes == 0 || per_sample == 0)
		return STRATA_OK;
	if (!__builtin_mul_overflow(per_sample, (uint64_t)s->max_batch, &total) &&
	    !__builtin_add_overflow(total, fixed, &total) && total <= dev->global_mem_bytes)
		return STRATA_OK;
	uint64_t fits = dev->global_mem_bytes > fixed ? (dev->global_mem_bytes - fixed) / per_sample : 0;
	return st_fail(err, STRATA_ERR_DEVICE_MEMORY,
	               "%s with a batch of %u needs %.1f MiB of device memory (%llu bytes a sample, %llu bytes "
	               "of weights), more than the %.1f MiB of global memory of %s; try --batch-size %llu or "
	               "less",
	               what, s->max_batch, ((double)per_sample * s->max_batch + (double)fixed) / 1048576.0,
	               (unsigned long long)per_sample, (unsigned long long)fixed,
	               dev->global_mem_bytes / 1048576.0, dev->name, (unsigned long long)(fits ? fits : 1));
}

/* Bytes a sample of the inference buffers takes: the input, every layer's output and workspaces. */
uint64_t st_session_inference_bytes(const strata_model *m, uint64_t *weights)
{
	uint64_t per_sample = st_shape_elems(&m->input) * sizeof(float);
	*weights = 0;
	for (size_t i = 0; i < m->n_layers; i++) {
		const strata_layer *layer = &m->layers[i];
		per_sample += st_shape_elems(&layer->out) * sizeof(float);
		for (uint32_t w = 0; w < layer->n_workspaces; w++)
			per_sample += layer->workspaces[w];
		for (uint32_t w = 0; w < layer->n_weights; w++)
			*weights += layer->weights[w].count * sizeof(float);
	}
	return per_sample;
}
