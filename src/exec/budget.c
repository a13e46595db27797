/* The device-memory budget of a session: what its buffers will take, weighed against the device's
 * global memory before any is made; and the activation buffers, planned by liveness for inference
 * (st_session_plan_activations, here rather than in session.c because backward.c calls it when
 * training is enabled, and session.c calls backward.c: the files must not call each other in a
 * circle). */
#include "exec/session.h"

#include <stdlib.h>

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

/* ---- the activation plan ------------------------------------------------------------------------ */

/* Inference: the output of the layer at position p of m->order is written at step p and read
 * last at step `last` (the position of its last reader; to the end for a model output, and for
 * the last layer of the file, which st_session_forward_layers() runs the whole model to reach).
 * Buffers are coloured greedily in the model's order: a buffer is free at step p only when the
 * `last` of the value in it comes before p, so a layer never writes its output where one of its
 * inputs lives (plugins do not compute in place), and a chain uses two buffers in turn. Of the
 * free buffers, the smallest that holds the value is taken, else the largest (which grows
 * least); ties go to the first.
 *
 * A forward pass that stops at a layer (st_session_forward_layers: the probes, forward_to) runs
 * a prefix of the order, whose every input is as intact as in a whole pass, and the layer it
 * stops at runs last, so nothing overwrites its output. Training keeps every output (backward
 * reads them): one buffer per layer, numbered as the layers.
 *
 * A session in STRATA_POOL=separate mode, for memory checkers, plans for training always: every
 * tensor its own buffer (Oclgrind then bounds each output's accesses on its own), and no buffer
 * released and made again when training starts (Oclgrind hands a released buffer's number, with
 * what it knew of its contents, to the next buffer made: tests/oclgrind.sh). */
strata_status st_session_activation_plan(const strata_model *m, bool training, uint32_t *buffer_of,
                                         uint64_t *buffer_elems, size_t *n_buffers)
{
	size_t n = m->n_layers, nb = 0;
	*n_buffers = 0;
	if (training) {
		for (size_t i = 0; i < n; i++) {
			buffer_of[i] = (uint32_t)i;
			buffer_elems[i] = st_shape_elems(&m->layers[i].out);
		}
		*n_buffers = n;
		return STRATA_OK;
	}
	size_t *pos = malloc((n ? n : 1) * sizeof(*pos)), *last = malloc((n ? n : 1) * sizeof(*last));
	size_t *busy_until = malloc((n ? n : 1) * sizeof(*busy_until)); /* per buffer: its value's last */
	if (!pos || !last || !busy_until) {
		free(pos);
		free(last);
		free(busy_until);
		return STRATA_ERR_NO_MEMORY;
	}
	for (size_t o = 0; o < n; o++)
		pos[m->order[o]] = o;
	for (size_t i = 0; i < n; i++)
		last[i] = pos[i]; /* read by no layer: free once written */
	for (size_t j = 0; j < n; j++)
		for (uint32_t k = 0; k < m->layers[j].n_inputs; k++) {
			uint32_t v = m->layers[j].inputs[k];
			if (v >= m->n_inputs && pos[j] > last[v - m->n_inputs])
				last[v - m->n_inputs] = pos[j];
		}
	for (size_t k = 0; k < m->n_outputs; k++)
		last[m->outputs[k]] = SIZE_MAX;
	if (n)
		last[n - 1] = SIZE_MAX;
	for (size_t o = 0; o < n; o++) {
		size_t i = m->order[o], pick = SIZE_MAX;
		uint64_t need = st_shape_elems(&m->layers[i].out);
		for (size_t k = 0; k < nb; k++) {
			if (busy_until[k] >= o)
				continue;
			bool fits = buffer_elems[k] >= need;
			bool picked_fits = pick != SIZE_MAX && buffer_elems[pick] >= need;
			if (pick == SIZE_MAX || (fits && (!picked_fits || buffer_elems[k] < buffer_elems[pick])) ||
			    (!fits && !picked_fits && buffer_elems[k] > buffer_elems[pick]))
				pick = k;
		}
		if (pick == SIZE_MAX) {
			pick = nb++;
			buffer_elems[pick] = 0;
		}
		buffer_of[i] = (uint32_t)pick;
		buffer_elems[pick] = need > buffer_elems[pick] ? need : buffer_elems[pick];
		busy_until[pick] = last[i];
	}
	free(pos);
	free(last);
	free(busy_until);
	*n_buffers = nb;
	return STRATA_OK;
}

/* Bytes a sample of a session's buffers takes: its inputs, the activation buffers of the plan
 * for `training` and every layer's workspaces, as the session allocates them; the weights' bytes
 * into *weights. Without the host memory to plan, the inference figure is the training one, which
 * bounds it. */
static uint64_t session_bytes(const strata_model *m, bool training, uint64_t *weights)
{
	size_t n = m->n_layers, nb = 0;
	training |= m->session && m->session->pool_mode == ST_POOL_SEPARATE;
	uint64_t per_sample = st_shape_elems(&m->input) * sizeof(float);
	for (size_t v = 1; v < m->n_inputs; v++)
		per_sample += st_shape_elems(&m->inputs[v].shape) * sizeof(float);
	*weights = 0;
	for (size_t i = 0; i < n; i++) {
		const strata_layer *layer = &m->layers[i];
		for (uint32_t w = 0; w < layer->n_workspaces; w++)
			per_sample += layer->workspaces[w];
		for (uint32_t w = 0; w < layer->n_weights; w++)
			*weights += layer->weights[w].count * sizeof(float);
	}
	uint32_t *buffer_of = malloc((n ? n : 1) * sizeof(*buffer_of));
	uint64_t *elems = malloc((n ? n : 1) * sizeof(*elems));
	if (!training && buffer_of && elems && st_session_activation_plan(m, false, buffer_of, elems, &nb) == STRATA_OK)
		for (size_t k = 0; k < nb; k++)
			per_sample += elems[k] * sizeof(float);
	else
		for (size_t i = 0; i < n; i++)
			per_sample += st_shape_elems(&m->layers[i].out) * sizeof(float);
	free(buffer_of);
	free(elems);
	return per_sample;
}

uint64_t st_session_inference_bytes(const strata_model *m, uint64_t *weights)
{
	return session_bytes(m, false, weights);
}

uint64_t st_session_training_bytes(const strata_model *m, uint64_t *weights)
{
	return session_bytes(m, true, weights);
}

/* ---- the activation buffers --------------------------------------------------------------------- */

/* max_batch samples of `elems` floats, refusing overflow. */
static strata_status buffer_bytes(uint64_t elems, uint32_t batch, size_t *out, strata_error *err)
{
	uint64_t n;
	if (__builtin_mul_overflow(elems, (uint64_t)sizeof(float), &n) || __builtin_mul_overflow(n, (uint64_t)batch, &n) ||
	    n > SIZE_MAX)
		return st_fail(err, STRATA_ERR_OVERFLOW, "a batch of %u needs more than %zu bytes", batch, (size_t)SIZE_MAX);
	*out = (size_t)n;
	return STRATA_OK;
}

strata_status st_session_plan_activations(strata_session *s, bool training, strata_error *err)
{
	strata_model *m = s->model;
	size_t n = m->n_layers, nb = 0;
	training |= s->pool_mode == ST_POOL_SEPARATE;
	if (s->act_planned && s->act_training == training)
		return STRATA_OK;
	uint32_t *buffer_of = malloc((n ? n : 1) * sizeof(*buffer_of));
	uint64_t *elems = malloc((n ? n : 1) * sizeof(*elems));
	strata_tensor *bufs = calloc(n ? n : 1, sizeof(*bufs)), *outs = calloc(n ? n : 1, sizeof(*outs));
	strata_status st = STRATA_OK;
	if (!buffer_of || !elems || !bufs || !outs ||
	    st_session_activation_plan(m, training, buffer_of, elems, &nb) != STRATA_OK) {
		st = st_fail(err, STRATA_ERR_NO_MEMORY, "out of memory");
		goto out_free;
	}
	/* A session is weighed for inference when it is made; training's outputs are weighed here,
	 * before any is made, and again with the gradients by backward.c. */
	uint64_t weights = 0, per_sample = training ? st_session_training_bytes(m, &weights) : 0;
	if (training && (st = st_session_check_fits(s, "training", per_sample, weights, err)))
		goto out_free;
	for (size_t k = 0; k < nb; k++) {
		char what[160];
		size_t bytes = 0;
		if (training)
			snprintf(what, sizeof(what), "the output of %s", m->layers[k].name);
		else
			snprintf(what, sizeof(what), "activation buffer %zu of %zu", k + 1, nb);
		if ((st = buffer_bytes(elems[k], s->max_batch, &bytes, err)) ||
		    (st = st_tensor_alloc(s->rt, &bufs[k], bytes, what, err)))
			goto out_free;
	}
	/* Each layer's output: a reference of its own to its buffer, as long as its own output. */
	for (size_t i = 0; i < n; i++) {
		size_t bytes = 0;
		strata_tensor *b = &bufs[buffer_of[i]];
		if ((st = buffer_bytes(st_shape_elems(&m->layers[i].out), s->max_batch, &bytes, err)))
			goto out_free;
		cl_int rc = b->mem ? clRetainMemObject(b->mem) : CL_SUCCESS;
		if (rc != CL_SUCCESS) {
			st = st_cl_fail(err, rc, "clRetainMemObject of the output of %s", m->layers[i].name);
			goto out_free;
		}
		outs[i].mem = b->mem;
		outs[i].bytes = bytes;
	}
	/* Nothing fails past here: the old buffers go (OpenCL keeps them until the commands queued on
	 * them complete), the new ones take their place. binds[j].in[k] point at the binds' output
	 * tensors (st_session_value), so they read the new buffers as they are. What the outputs held
	 * is gone, and with it what a backward pass would need of the last forward one. */
	for (size_t i = 0; i < n; i++) {
		st_tensor_release(&s->binds[i].output);
		s->binds[i].output = outs[i];
		s->binds[i].kept_batch = 0;
	}
	for (size_t k = 0; k < s->n_act_bufs; k++)
		st_tensor_release(&s->act_bufs[k]);
	free(s->act_bufs);
	s->act_bufs = bufs;
	s->n_act_bufs = nb;
	s->act_training = training;
	s->act_planned = true;
	bufs = NULL;
	nb = 0;
	free(outs);
	outs = NULL;
out_free:
	for (size_t i = 0; outs && i < n; i++)
		st_tensor_release(&outs[i]);
	for (size_t k = 0; bufs && k < nb; k++)
		st_tensor_release(&bufs[k]);
	free(outs);
	free(bufs);
	free(buffer_of);
	free(elems);
	return st;
}

size_t st_session_activation_buffers(const strata_session *s, uint64_t *bytes)
{
	uint64_t total = 0;
	for (size_t k = 0; k < s->n_act_bufs; k++)
		total += s->act_bufs[k].bytes;
	if (bytes)
		*bytes = total;
	return s->n_act_bufs;
}
