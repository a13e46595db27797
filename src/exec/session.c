/* Sessions: a model's buffers on a device, weights initialized from the seed, forward passes. */
#include "exec/session.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "exec/host_api.h"
#include "base/initializers.h"

uint64_t st_model_output_elems(const strata_model *m)
{
	return st_shape_elems(m->n_layers ? &m->layers[m->outputs[0]].out : &m->input);
}

static strata_status shape_elems(const strata_shape *s, uint64_t *out)
{
	uint64_t n = 1;
	for (uint32_t i = 0; i < s->rank; i++)
		if (s->dims[i] < 1 || __builtin_mul_overflow(n, (uint64_t)s->dims[i], &n))
			return STRATA_ERR_OVERFLOW;
	*out = n;
	return STRATA_OK;
}

/* Bytes for `batch` samples of `per_sample` bytes each, refusing overflow. */
static strata_status batch_bytes(uint64_t per_sample, uint32_t batch, size_t *out, strata_error *err)
{
	uint64_t n;
	if (__builtin_mul_overflow(per_sample, (uint64_t)batch, &n) || n > SIZE_MAX)
		return st_fail(err, STRATA_ERR_OVERFLOW, "a batch of %u needs more than %zu bytes", batch, (size_t)SIZE_MAX);
	*out = (size_t)n;
	return STRATA_OK;
}

static strata_status init_weight(strata_session *s, strata_layer *layer, uint32_t w, strata_error *err)
{
	const st_weight_decl *d = &layer->weights[w];
	st_layer_bind *b = &s->binds[layer->index];
	strata_tensor *t = &b->weights[w];
	char what[160];
	snprintf(what, sizeof(what), "weight %s/%s", layer->name, d->name);
	strata_status st = b->pool_offsets[w] == ST_NOT_POOLED
	                           ? st_tensor_alloc(s->rt, t, d->count * sizeof(float), what, err)
	                           : st_pool_view(s->rt, &s->weight_pool, b->pool_offsets[w], d->count, t, err);
	if (st)
		return st;
	float *host = malloc(d->count * sizeof(float));
	if (!host)
		return st_fail(err, STRATA_ERR_NO_MEMORY, "out of memory initializing %s", what);
	/* One stream per (layer, weight): adding a layer leaves the others' weights unchanged. */
	st_rng rng;
	st_rng_seed(&rng, s->seed, ((uint64_t)layer->index << 16) | w);
	st = st_initialize(d->initializer, &d->shape, host, d->count, &rng);
	if (st == STRATA_ERR_UNSUPPORTED)
		st = st_fail(err, st, "%s: '%s' needs a weight of two axes or more, as Keras' (its shape has %u)", what,
		             d->initializer, d->shape.rank);
	else if (st == STRATA_ERR_OVERFLOW)
		st = st_fail(err, st, "%s: too large for the '%s' initializer", what, d->initializer);
	else if (st == STRATA_ERR_NO_MEMORY)
		st = st_fail(err, st, "out of memory initializing %s", what);
	else if (st)
		st = st_fail(err, st, "%s: unknown initializer '%s'", what, d->initializer);
	else
		st = st_tensor_write(s->rt, t, 0, host, d->count * sizeof(float), err);
	free(host);
	return st;
}

static strata_status bind_layer(strata_session *s, strata_layer *layer, strata_error *err)
{
	st_layer_bind *b = &s->binds[layer->index];
	uint64_t elems = 0;
	size_t bytes = 0;
	char what[160];
	strata_status st;
	/* The output's buffer comes with the others' (st_session_plan_activations, after every bind). */
	if (shape_elems(&layer->out, &elems) != STRATA_OK || __builtin_mul_overflow(elems, sizeof(float), &elems))
		return st_fail(err, STRATA_ERR_OVERFLOW, "%s: output shape overflows", layer->name);
	if ((st = batch_bytes(elems, s->max_batch, &bytes, err)))
		return st;

	if (layer->distributed && (uint64_t)s->max_batch * (uint64_t)layer->steps > INT32_MAX)
		return st_fail(err, STRATA_ERR_OVERFLOW, "%s: %u samples of %lld steps are too many", layer->name,
		               s->max_batch, (long long)layer->steps);
	b->weights = calloc(layer->n_weights ? layer->n_weights : 1, sizeof(*b->weights));
	b->workspaces = calloc(layer->n_workspaces ? layer->n_workspaces : 1, sizeof(*b->workspaces));
	b->in = calloc(layer->n_inputs ? layer->n_inputs : 1, sizeof(*b->in));
	if (!b->weights || !b->workspaces || !b->pool_offsets || !b->in)
		return st_fail(err, STRATA_ERR_NO_MEMORY, "out of memory");
	for (uint32_t k = 0; k < layer->n_inputs; k++)
		b->in[k] = st_session_value(s, layer->inputs[k]);
	/* A layer that shares another's weights uses its tensors (bound first: see create). */
	b->borrowed = layer->shares >= 0;
	for (uint32_t w = 0; w < layer->n_weights; w++)
		if (b->borrowed)
			b->weights[w] = s->binds[layer->shares].weights[w];
		else if ((st = init_weight(s, layer, w, err)))
			return st;
	for (uint32_t w = 0; w < layer->n_workspaces; w++) {
		if ((st = batch_bytes(layer->workspaces[w], s->max_batch, &bytes, err)))
			return st;
		snprintf(what, sizeof(what), "workspace %u of %s", w, layer->name);
		if ((st = st_tensor_alloc(s->rt, &b->workspaces[w], bytes, what, err)))
			return st;
	}
	if (layer->mask_of == (int64_t)layer->index) {
		if ((st = batch_bytes(layer->mask_elems * sizeof(float), s->max_batch, &bytes, err)))
			return st;
		snprintf(what, sizeof(what), "mask of %s", layer->name);
		if ((st = st_tensor_alloc(s->rt, &b->mask, bytes, what, err)))
			return st;
	}
	return STRATA_OK;
}

/* What the optimizer sweeps: the weights of trainable layers that own them, not persistent state. */
static bool pooled(const strata_layer *layer, uint32_t w)
{
	return layer->trainable && layer->shares < 0 && !layer->weights[w].state;
}

/* Places every trainable weight in one pool; frozen layers' weights (and state) stay apart. */
static strata_status plan_weight_pool(strata_session *s, strata_error *err)
{
	strata_model *m = s->model;
	size_t n = 0;
	for (size_t i = 0; i < m->n_layers; i++) {
		s->binds[i].pool_offsets = calloc(m->layers[i].n_weights ? m->layers[i].n_weights : 1, sizeof(uint64_t));
		if (!s->binds[i].pool_offsets)
			return st_fail(err, STRATA_ERR_NO_MEMORY, "out of memory");
		for (uint32_t w = 0; w < m->layers[i].n_weights; w++)
			n += pooled(&m->layers[i], w);
	}
	uint64_t *counts = calloc(n ? n : 1, sizeof(*counts)), *offsets = calloc(n ? n : 1, sizeof(*offsets));
	strata_status st = STRATA_OK;
	if (!counts || !offsets) {
		st = st_fail(err, STRATA_ERR_NO_MEMORY, "out of memory");
		goto out_free;
	}
	size_t k = 0;
	for (size_t i = 0; i < m->n_layers; i++)
		for (uint32_t w = 0; w < m->layers[i].n_weights; w++)
			if (pooled(&m->layers[i], w))
				counts[k++] = m->layers[i].weights[w].count;
	uint64_t total = st_pool_layout(s->rt, counts, n, offsets);
	k = 0;
	for (size_t i = 0; i < m->n_layers; i++)
		for (uint32_t w = 0; w < m->layers[i].n_weights; w++)
			s->binds[i].pool_offsets[w] = pooled(&m->layers[i], w) ? offsets[k++] : ST_NOT_POOLED;
	st = st_pool_create(s->rt, &s->weight_pool, s->pool_mode, total, "the weights", err);
out_free:
	free(counts);
	free(offsets);
	return st;
}

strata_status strata_session_create(strata_runtime *rt, strata_model *model, uint32_t max_batch, uint64_t seed,
                                    strata_session **out, strata_error *err)
{
	*out = NULL;
	if (max_batch == 0)
		return st_fail(err, STRATA_ERR_INVALID, "the batch size must be at least 1");
	if (model->session)
		return st_fail(err, STRATA_ERR_INVALID, "model '%s' is already bound to a session", model->name);
	if (model->reg != rt->reg)
		return st_fail(err, STRATA_ERR_INVALID, "the model and the runtime use different registries");
	strata_session *s = calloc(1, sizeof(*s));
	if (!s)
		return st_fail(err, STRATA_ERR_NO_MEMORY, "out of memory");
	s->rt = rt;
	s->model = model;
	s->max_batch = max_batch;
	s->seed = seed;
	s->tunables = rt->tunables;
	s->binds = calloc(model->n_layers ? model->n_layers : 1, sizeof(*s->binds));
	strata_status st;
	if (!s->binds) {
		st = st_fail(err, STRATA_ERR_NO_MEMORY, "out of memory");
		goto out_destroy;
	}
	model->session = s;
	for (size_t i = 0; i < model->n_layers; i++)
		model->layers[i].session = s;

	uint64_t elems = 0, weights = 0;
	size_t bytes = 0;
	if (shape_elems(&model->input, &elems) != STRATA_OK) {
		st = st_fail(err, STRATA_ERR_OVERFLOW, "the input shape overflows");
		goto out_destroy;
	}
	/* Read first: the activation plan depends on it (one buffer per output when separate). */
	if ((st = st_pool_mode_for(rt, &s->pool_mode, err)))
		goto out_destroy;
	uint64_t per_sample = st_session_inference_bytes(model, &weights);
	if ((st = st_session_check_fits(s, "the model", per_sample, weights, err)))
		goto out_destroy;
	if ((st = batch_bytes(elems * sizeof(float), max_batch, &bytes, err)) ||
	    (st = st_tensor_alloc(rt, &s->input, bytes, "the input batch", err)))
		goto out_destroy;
	s->more_inputs = calloc(model->n_inputs, sizeof(*s->more_inputs));
	if (!s->more_inputs) {
		st = st_fail(err, STRATA_ERR_NO_MEMORY, "out of memory");
		goto out_destroy;
	}
	for (size_t v = 1; v < model->n_inputs; v++) {
		char what[160];
		snprintf(what, sizeof(what), "the batch of input %s", model->inputs[v].name);
		if ((st = batch_bytes(st_shape_elems(&model->inputs[v].shape) * sizeof(float), max_batch, &bytes, err)) ||
		    (st = st_tensor_alloc(rt, &s->more_inputs[v - 1], bytes, what, err)))
			goto out_destroy;
	}
	if ((st = plan_weight_pool(s, err)))
		goto out_destroy;
	/* Owners of weights first: a layer that shares them takes their tensors. */
	for (int sharing = 0; sharing < 2; sharing++)
		for (size_t i = 0; i < model->n_layers; i++)
			if ((model->layers[i].shares >= 0) == sharing && (st = bind_layer(s, &model->layers[i], err)))
				goto out_destroy;
	if ((st = st_session_plan_activations(s, false, err)))
		goto out_destroy;
	*out = s;
	return STRATA_OK;

out_destroy:
	strata_session_destroy(s);
	return st;
}

/* The loss's buffers (loss.c makes them): here, so destroying a session calls nothing above it. */
void st_loss_release(strata_session *s)
{
	for (size_t h = 0; h < s->n_heads; h++)
		st_tensor_release(&s->heads[h].labels);
	free(s->heads);
	s->heads = NULL;
	s->n_heads = 0;
	st_tensor_release(&s->sample_loss);
	st_tensor_release(&s->sample_correct);
	st_tensor_release(&s->sums);
	s->loss_ready = false;
}

void strata_session_destroy(strata_session *s)
{
	if (!s)
		return;
	strata_model *m = s->model;
	if (s->rt->queue)
		clFinish(s->rt->queue);
	for (size_t i = 0; s->binds && i < m->n_layers; i++) {
		st_layer_bind *b = &s->binds[i];
		strata_layer *layer = &m->layers[i];
		for (uint32_t w = 0; b->weights && !b->borrowed && w < layer->n_weights; w++)
			st_tensor_release(&b->weights[w]);
		for (uint32_t w = 0; b->workspaces && w < layer->n_workspaces; w++)
			st_tensor_release(&b->workspaces[w]);
		st_tensor_release(&b->output);
		st_tensor_release(&b->mask);
		free(b->weights);
		free(b->workspaces);
		free(b->pool_offsets);
		free(b->in);
		layer->session = NULL;
	}
	for (size_t k = 0; k < s->n_act_bufs; k++)
		st_tensor_release(&s->act_bufs[k]);
	free(s->act_bufs);
	st_session_release_training(s);
	st_pool_release(&s->weight_pool);
	if (s->step_done)
		clReleaseEvent(s->step_done);
	st_tensor_release(&s->input);
	for (size_t v = 1; s->more_inputs && v < m->n_inputs; v++)
		st_tensor_release(&s->more_inputs[v - 1]);
	free(s->more_inputs);
	st_tensor_release(&s->staging);
	st_tensor_release(&s->eval_grad);
	st_loss_release(s);
	free(s->binds);
	if (m->session == s)
		m->session = NULL;
	free(s);
}

static strata_status check_batch(const strata_session *s, uint32_t batch, strata_error *err)
{
	if (batch == 0 || batch > s->max_batch)
		return st_fail(err, STRATA_ERR_INVALID, "batch of %u samples, the session holds 1 to %u", batch,
		               s->max_batch);
	return STRATA_OK;
}

strata_tensor *st_session_value(strata_session *s, uint32_t v)
{
	const strata_model *m = s->model;
	if (v == 0)
		return &s->input;
	return v < m->n_inputs ? &s->more_inputs[v - 1] : &s->binds[v - m->n_inputs].output;
}

/* The mask of a merge whose inputs carry different masks: their product (Keras' AND), inputs
 * without a mask counting as all ones. */
static strata_status combine_masks(strata_session *s, const strata_layer *layer, uint32_t batch, strata_error *err)
{
	strata_model *m = s->model;
	uint64_t n = (uint64_t)batch * layer->mask_elems;
	if (n > INT32_MAX)
		return st_fail(err, STRATA_ERR_OVERFLOW, "%s: a mask of %llu values exceeds int indexing", layer->name,
		               (unsigned long long)n);
	bool first = true;
	for (uint32_t k = 0; k < layer->n_inputs && n > 0; k++) {
		int64_t of = st_value_mask_of(m, layer->inputs[k]);
		if (of < 0)
			continue;
		strata_kernel *kernel = NULL;
		strata_status st = st_kernel_get(s->rt, "core", first ? "copy" : "multiply", NULL, &kernel, err);
		if (st)
			return st;
		size_t global = (size_t)n;
		strata_arg args[] = {strata_arg_tensor(&s->binds[layer->index].mask), strata_arg_tensor(&s->binds[of].mask),
		                     strata_arg_int((int32_t)n)};
		if ((st = st_launch(s->rt, layer->name, kernel, 1, &global, NULL, 3, args, err)))
			return st;
		first = false;
	}
	return STRATA_OK;
}

strata_status st_session_forward_layers(strata_session *s, uint32_t batch, bool training, size_t n_layers,
                                        strata_error *err)
{
	strata_model *m = s->model;
	strata_status st = check_batch(s, batch, err);
	if (st)
		return st;
	if (n_layers > m->n_layers)
		return st_fail(err, STRATA_ERR_INVALID, "%zu layers asked of a model of %zu", n_layers, m->n_layers);
	/* A session made ready for training keeps every output for the backward pass: normally
	 * st_session_enable_training() planned so already; this covers a caller that did not. */
	if (s->training_ready && !s->act_training && (st = st_session_plan_activations(s, true, err)))
		return st;
	s->rt->phase = "forward";
	/* All of them for the whole model: the last layer of the file need not be the last to run. */
	size_t stop = n_layers == m->n_layers ? SIZE_MAX : n_layers - 1;
	for (size_t o = 0; n_layers > 0 && o < m->n_layers; o++) {
		size_t i = m->order[o];
		st_layer_bind *b = &s->binds[i];
		strata_forward_args args = {
			.size = sizeof(args),
			.batch = st_layer_batch(&m->layers[i], batch),
			.training = training,
			.seed = s->seed,
			.step = s->step,
			.total_steps = training ? s->total_steps : 0,
			.frozen = !m->layers[i].trainable,
			.sample_offset = training ? st_layer_batch(&m->layers[i], s->sample_offset) : 0,
			.input = b->in[0],
			.output = &b->output,
			.inputs = b->in,
			.n_inputs = m->layers[i].n_inputs,
		};
		b->kept_batch = 0;
		if ((m->layers[i].mask_combine && (st = combine_masks(s, &m->layers[i], batch, err))) ||
		    (st = st_host_forward(&m->layers[i], &args, err)))
			return st;
		b->kept_batch = batch;
		if (i == stop)
			break;
	}
	return STRATA_OK;
}

strata_status st_session_forward_device(strata_session *s, uint32_t batch, bool training, strata_error *err)
{
	return st_session_forward_layers(s, batch, training, s->model->n_layers, err);
}

strata_tensor *st_session_output(strata_session *s)
{
	return s->model->n_layers ? &s->binds[s->model->outputs[0]].output : &s->input;
}

strata_tensor *st_session_layer_output(strata_session *s, size_t n_layers)
{
	return n_layers ? &s->binds[n_layers - 1].output : &s->input;
}

/* Writes host floats into the device buffer of model input v (ids converted for int32 inputs). */
static strata_status write_input(strata_session *s, uint32_t v, const float *input, uint32_t batch,
                                 strata_error *err)
{
	const strata_model *m = s->model;
	const strata_shape *shape = &m->inputs[v].shape;
	uint64_t elems = st_shape_elems(shape) * batch;
	float *ids = NULL;
	if (shape->dtype == STRATA_DTYPE_INT32) {
		if (!(ids = malloc(elems * sizeof(float) + 1)))
			return st_fail(err, STRATA_ERR_NO_MEMORY, "out of memory for %u samples of ids", batch);
		for (uint64_t i = 0; i < elems; i++) {
			int32_t id = isfinite(input[i]) && fabsf(input[i]) < 2147483520.0f ? (int32_t)lrintf(input[i]) : -1;
			memcpy(&ids[i], &id, sizeof(id));
		}
		input = ids;
	}
	strata_status st = st_tensor_write_prefix(s->rt, s->pool_mode, st_session_value(s, v), input, elems,
	                                          &s->staging, err);
	free(ids);
	return st;
}

/* Inference through the first n_layers layers, their last output read back. */
static strata_status forward_host(strata_session *s, const float *input, uint32_t batch, size_t n_layers,
                                  float *output, strata_error *err)
{
	strata_model *m = s->model;
	strata_status st = check_batch(s, batch, err);
	if (st)
		return st;
	uint64_t out_elems = st_shape_elems(n_layers ? &m->layers[n_layers - 1].out : &m->input);
	if (m->n_inputs > 1)
		return st_fail(err, STRATA_ERR_UNSUPPORTED, "%s has %zu inputs: this call feeds one", m->name, m->n_inputs);
	if ((st = write_input(s, 0, input, batch, err)) ||
	    (st = st_session_forward_layers(s, batch, false, n_layers, err)))
		return st;
	strata_tensor *y = st_session_layer_output(s, n_layers);
	if ((st = st_tensor_read(s->rt, y, 0, output, out_elems * batch * sizeof(float), err)))
		return st;
	return s->rt->profile ? st_finish(s->rt, err) : STRATA_OK;
}

strata_status strata_session_run(strata_session *s, const float *const *inputs, uint32_t batch,
                                 float *const *outputs, strata_error *err)
{
	strata_model *m = s->model;
	strata_status st = check_batch(s, batch, err);
	for (uint32_t v = 0; !st && v < m->n_inputs; v++)
		st = write_input(s, v, inputs[v], batch, err);
	if (st || (st = st_session_forward_layers(s, batch, false, m->n_layers, err)))
		return st;
	for (size_t k = 0; k < m->n_outputs; k++) {
		const strata_layer *l = &m->layers[m->outputs[k]];
		if ((st = st_tensor_read(s->rt, &s->binds[m->outputs[k]].output, 0, outputs[k],
		                         st_shape_elems(&l->out) * batch * sizeof(float), err)))
			return st;
	}
	return s->rt->profile ? st_finish(s->rt, err) : STRATA_OK;
}

strata_status strata_session_forward(strata_session *s, const float *input, uint32_t batch, float *output,
                                     strata_error *err)
{
	return forward_host(s, input, batch, s->model->n_layers ? s->model->outputs[0] + 1 : 0, output, err);
}

strata_status strata_session_forward_to(strata_session *s, const float *input, uint32_t batch, size_t layer,
                                        float *output, strata_error *err)
{
	if (layer >= s->model->n_layers)
		return st_fail(err, STRATA_ERR_NOT_FOUND, "no layer %zu: the model has %zu", layer, s->model->n_layers);
	return forward_host(s, input, batch, layer + 1, output, err);
}

size_t strata_session_weight_count(const strata_session *s, size_t layer)
{
	return layer < s->model->n_layers ? s->model->layers[layer].n_weights : 0;
}

static strata_status weight_at(const strata_session *s, size_t layer, size_t index, const st_weight_decl **d,
                               strata_error *err)
{
	if (layer >= s->model->n_layers || index >= s->model->layers[layer].n_weights)
		return st_fail(err, STRATA_ERR_NOT_FOUND, "no weight %zu in layer %zu", index, layer);
	*d = &s->model->layers[layer].weights[index];
	return STRATA_OK;
}

strata_status strata_session_weight_info(const strata_session *s, size_t layer, size_t index, const char **name,
                                         strata_shape *shape)
{
	const st_weight_decl *d = NULL;
	strata_status st = weight_at(s, layer, index, &d, NULL);
	if (st)
		return st;
	if (name)
		*name = d->name;
	if (shape)
		*shape = d->shape;
	return STRATA_OK;
}

strata_status strata_session_read_weight(strata_session *s, size_t layer, size_t index, float *dst, size_t count,
                                         strata_error *err)
{
	const st_weight_decl *d = NULL;
	strata_status st = weight_at(s, layer, index, &d, err);
	if (st)
		return st;
	if (count != d->count)
		return st_fail(err, STRATA_ERR_INVALID, "%s/%s holds %llu values, not %zu", s->model->layers[layer].name,
		               d->name, (unsigned long long)d->count, count);
	return st_tensor_read(s->rt, &s->binds[layer].weights[index], 0, dst, count * sizeof(float), err);
}

strata_status strata_session_write_weight(strata_session *s, size_t layer, size_t index, const float *src,
                                          size_t count, strata_error *err)
{
	const st_weight_decl *d = NULL;
	strata_status st = weight_at(s, layer, index, &d, err);
	if (st)
		return st;
	if (count != d->count)
		return st_fail(err, STRATA_ERR_INVALID, "%s/%s holds %llu values, not %zu", s->model->layers[layer].name,
		               d->name, (unsigned long long)d->count, count);
	return st_tensor_write(s->rt, &s->binds[layer].weights[index], 0, src, count * sizeof(float), err);
}

strata_status st_session_throttle(strata_session *s, strata_error *err)
{
	cl_event done;
	cl_int rc = clEnqueueMarkerWithWaitList(s->rt->queue, 0, NULL, &done);
	if (rc != CL_SUCCESS)
		return st_cl_fail(err, rc, "clEnqueueMarkerWithWaitList after a step");
	cl_event previous = s->step_done;
	s->step_done = done;
	if (!previous)
		return STRATA_OK;
	/* Submit what is queued before blocking, or a lazy driver might not start it. */
	rc = clFlush(s->rt->queue);
	if (rc == CL_SUCCESS)
		rc = clWaitForEvents(1, &previous);
	clReleaseEvent(previous);
	return rc == CL_SUCCESS ? STRATA_OK : st_cl_fail(err, rc, "clWaitForEvents on the previous step");
}
