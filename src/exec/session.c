/* Sessions: a model's buffers on a device, weights initialized from the seed, forward passes. */
#include "exec/session.h"

#include <stdlib.h>
#include <string.h>

#include "exec/host_api.h"
#include "base/initializers.h"

uint64_t st_shape_elems(const strata_shape *shape)
{
	uint64_t n = 1;
	for (uint32_t i = 0; i < shape->rank; i++)
		n *= (uint64_t)shape->dims[i];
	return n;
}

uint64_t st_model_output_elems(const strata_model *m)
{
	return st_shape_elems(m->n_layers ? &m->layers[m->n_layers - 1].out : &m->input);
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

/* Drivers accept buffers larger than the device's memory and fail, or abort (PoCL 3.1 asserts), when
 * they are first used, so the session's buffers are weighed against the device's global memory
 * before any is made: `per_sample` bytes for each sample of the batch plus `fixed` bytes. */
static strata_status check_fits(const strata_session *s, const char *what, uint64_t per_sample,
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
static uint64_t inference_bytes(const strata_model *m, uint64_t *weights)
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
	if (st)
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
	if (shape_elems(&layer->out, &elems) != STRATA_OK)
		return st_fail(err, STRATA_ERR_OVERFLOW, "%s: output shape overflows", layer->name);
	if ((st = batch_bytes(elems * sizeof(float), s->max_batch, &bytes, err)))
		return st;
	snprintf(what, sizeof(what), "the output of %s", layer->name);
	if ((st = st_tensor_alloc(s->rt, &b->output, bytes, what, err)))
		return st;

	b->weights = calloc(layer->n_weights ? layer->n_weights : 1, sizeof(*b->weights));
	b->workspaces = calloc(layer->n_workspaces ? layer->n_workspaces : 1, sizeof(*b->workspaces));
	if (!b->weights || !b->workspaces || !b->pool_offsets)
		return st_fail(err, STRATA_ERR_NO_MEMORY, "out of memory");
	for (uint32_t w = 0; w < layer->n_weights; w++)
		if ((st = init_weight(s, layer, w, err)))
			return st;
	for (uint32_t w = 0; w < layer->n_workspaces; w++) {
		if ((st = batch_bytes(layer->workspaces[w], s->max_batch, &bytes, err)))
			return st;
		snprintf(what, sizeof(what), "workspace %u of %s", w, layer->name);
		if ((st = st_tensor_alloc(s->rt, &b->workspaces[w], bytes, what, err)))
			return st;
	}
	return STRATA_OK;
}

/* Places every trainable weight in one pool; frozen layers' weights stay apart. */
static strata_status plan_weight_pool(strata_session *s, strata_error *err)
{
	strata_model *m = s->model;
	size_t n = 0;
	for (size_t i = 0; i < m->n_layers; i++) {
		s->binds[i].pool_offsets = calloc(m->layers[i].n_weights ? m->layers[i].n_weights : 1, sizeof(uint64_t));
		if (!s->binds[i].pool_offsets)
			return st_fail(err, STRATA_ERR_NO_MEMORY, "out of memory");
		if (m->layers[i].trainable)
			n += m->layers[i].n_weights;
	}
	uint64_t *counts = calloc(n ? n : 1, sizeof(*counts)), *offsets = calloc(n ? n : 1, sizeof(*offsets));
	strata_status st = STRATA_OK;
	if (!counts || !offsets) {
		st = st_fail(err, STRATA_ERR_NO_MEMORY, "out of memory");
		goto out_free;
	}
	size_t k = 0;
	for (size_t i = 0; i < m->n_layers; i++)
		for (uint32_t w = 0; m->layers[i].trainable && w < m->layers[i].n_weights; w++)
			counts[k++] = m->layers[i].weights[w].count;
	uint64_t total = st_pool_layout(s->rt, counts, n, offsets);
	k = 0;
	for (size_t i = 0; i < m->n_layers; i++)
		for (uint32_t w = 0; w < m->layers[i].n_weights; w++)
			s->binds[i].pool_offsets[w] = m->layers[i].trainable ? offsets[k++] : ST_NOT_POOLED;
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
	uint64_t per_sample = inference_bytes(model, &weights);
	if ((st = check_fits(s, "the model", per_sample, weights, err)))
		goto out_destroy;
	if ((st = batch_bytes(elems * sizeof(float), max_batch, &bytes, err)) ||
	    (st = st_tensor_alloc(rt, &s->input, bytes, "the input batch", err)))
		goto out_destroy;
	if ((st = st_pool_mode_from_env(&s->pool_mode, err)) || (st = plan_weight_pool(s, err)))
		goto out_destroy;
	for (size_t i = 0; i < model->n_layers; i++)
		if ((st = bind_layer(s, &model->layers[i], err)))
			goto out_destroy;
	*out = s;
	return STRATA_OK;

out_destroy:
	strata_session_destroy(s);
	return st;
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
		for (uint32_t w = 0; b->weights && w < layer->n_weights; w++)
			st_tensor_release(&b->weights[w]);
		for (uint32_t w = 0; b->grads && w < layer->n_weights; w++)
			st_tensor_release(&b->grads[w]);
		for (uint32_t w = 0; b->workspaces && w < layer->n_workspaces; w++)
			st_tensor_release(&b->workspaces[w]);
		st_tensor_release(&b->output);
		free(b->weights);
		free(b->grads);
		free(b->workspaces);
		free(b->pool_offsets);
		layer->session = NULL;
	}
	st_pool_release(&s->weight_pool);
	st_pool_release(&s->grad_pool);
	if (s->step_done)
		clReleaseEvent(s->step_done);
	st_tensor_release(&s->input);
	st_tensor_release(&s->staging);
	st_tensor_release(&s->grad[0]);
	st_tensor_release(&s->grad[1]);
	st_tensor_release(&s->batch_labels);
	st_tensor_release(&s->sample_loss);
	st_tensor_release(&s->sample_correct);
	st_tensor_release(&s->sums);
	if (s->has_optimizer)
		st_optimizer_release(&s->opt);
	free(s->binds);
	if (m->session == s)
		m->session = NULL;
	free(s);
}

/* Every call into a plugin runs with the layer's error sink set, and leaves a message even when
 * the plugin wrote none. */
static strata_error *begin_call(strata_layer *layer, strata_error *err, strata_error *local)
{
	layer->err = err ? err : local;
	layer->err->message[0] = '\0';
	layer->last_status = STRATA_OK;
	return layer->err;
}

static strata_status end_call(strata_layer *layer, strata_status st, const char *pass)
{
	if (st != STRATA_OK && layer->err->message[0] == '\0')
		st_fail(layer->err, st, "%s: %s pass failed: %s", layer->name, pass, strata_status_name(st));
	layer->err = NULL;
	return st;
}

static strata_status run_forward(strata_layer *layer, const strata_forward_args *args, strata_error *err)
{
	strata_error local = {0};
	begin_call(layer, err, &local);
	return end_call(layer, layer->type->ops.forward(layer, &st_host_api, args), "forward");
}

static strata_status check_batch(const strata_session *s, uint32_t batch, strata_error *err)
{
	if (batch == 0 || batch > s->max_batch)
		return st_fail(err, STRATA_ERR_INVALID, "batch of %u samples, the session holds 1 to %u", batch,
		               s->max_batch);
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
	s->rt->phase = "forward";
	strata_tensor *x = &s->input;
	for (size_t i = 0; i < n_layers; i++) {
		strata_forward_args args = {
			.size = sizeof(args),
			.batch = batch,
			.training = training,
			.seed = s->seed,
			.step = s->step,
			.input = x,
			.output = &s->binds[i].output,
		};
		s->binds[i].kept_batch = 0;
		if ((st = run_forward(&m->layers[i], &args, err)))
			return st;
		s->binds[i].kept_batch = batch;
		x = &s->binds[i].output;
	}
	return STRATA_OK;
}

strata_status st_session_forward_device(strata_session *s, uint32_t batch, bool training, strata_error *err)
{
	return st_session_forward_layers(s, batch, training, s->model->n_layers, err);
}

strata_tensor *st_session_output(strata_session *s)
{
	return st_session_layer_output(s, s->model->n_layers);
}

strata_tensor *st_session_layer_output(strata_session *s, size_t n_layers)
{
	return n_layers ? &s->binds[n_layers - 1].output : &s->input;
}

/* Inference through the first n_layers layers, their last output read back. */
static strata_status forward_host(strata_session *s, const float *input, uint32_t batch, size_t n_layers,
                                  float *output, strata_error *err)
{
	strata_model *m = s->model;
	strata_status st = check_batch(s, batch, err);
	if (st)
		return st;
	uint64_t in_elems = st_shape_elems(&m->input);
	uint64_t out_elems = st_shape_elems(n_layers ? &m->layers[n_layers - 1].out : &m->input);
	if ((st = st_tensor_write_prefix(s->rt, s->pool_mode, &s->input, input, in_elems * batch, &s->staging, err)) ||
	    (st = st_session_forward_layers(s, batch, false, n_layers, err)))
		return st;
	strata_tensor *y = st_session_layer_output(s, n_layers);
	if ((st = st_tensor_read(s->rt, y, 0, output, out_elems * batch * sizeof(float), err)))
		return st;
	return s->rt->profile ? st_finish(s->rt, err) : STRATA_OK;
}

strata_status strata_session_forward(strata_session *s, const float *input, uint32_t batch, float *output,
                                     strata_error *err)
{
	return forward_host(s, input, batch, s->model->n_layers, output, err);
}

strata_status strata_session_forward_to(strata_session *s, const float *input, uint32_t batch, size_t layer,
                                        float *output, strata_error *err)
{
	if (layer >= s->model->n_layers)
		return st_fail(err, STRATA_ERR_NOT_FOUND, "no layer %zu: the model has %zu", layer, s->model->n_layers);
	return forward_host(s, input, batch, layer + 1, output, err);
}

/* Undoes a partial st_session_enable_training(), so a later call starts clean. */
static void release_training(strata_session *s)
{
	strata_model *m = s->model;
	for (size_t i = 0; i < m->n_layers; i++) {
		st_layer_bind *b = &s->binds[i];
		for (uint32_t w = 0; b->grads && w < m->layers[i].n_weights; w++)
			st_tensor_release(&b->grads[w]);
		free(b->grads);
		b->grads = NULL;
	}
	st_tensor_release(&s->grad[0]);
	st_tensor_release(&s->grad[1]);
	st_pool_release(&s->grad_pool);
	if (s->has_optimizer)
		st_optimizer_release(&s->opt);
	s->has_optimizer = false;
	s->loss_ready = false; /* its gradient buffer was grad[0] */
}

static strata_status alloc_training(strata_session *s, strata_error *err)
{
	strata_model *m = s->model;
	uint64_t largest = st_shape_elems(&m->input);
	strata_status st;
	for (size_t i = 0; i < m->n_layers; i++) {
		strata_layer *layer = &m->layers[i];
		if (!layer->type->ops.backward)
			return st_fail(err, STRATA_ERR_UNSUPPORTED, "%s:%u:%u: %s: layer type '%s' has no backward pass",
			               m->file, layer->pos.line, layer->pos.col, layer->name, layer->type->ops.type);
		uint64_t n = st_shape_elems(&layer->out);
		largest = n > largest ? n : largest;
	}
	/* Two gradient buffers of the largest activation, and a gradient for every weight; the
	 * optimizer's state comes on top. */
	uint64_t weights = 0, per_sample = inference_bytes(m, &weights) + 2 * largest * sizeof(float);
	if ((st = check_fits(s, "training", per_sample, 2 * weights, err)))
		return st;
	if ((st = st_pool_create(s->rt, &s->grad_pool, s->pool_mode, s->weight_pool.elems, "the weight gradients",
	                         err)))
		return st;
	for (size_t i = 0; i < m->n_layers; i++) {
		strata_layer *layer = &m->layers[i];
		st_layer_bind *b = &s->binds[i];
		b->grads = calloc(layer->n_weights ? layer->n_weights : 1, sizeof(*b->grads));
		if (!b->grads)
			return st_fail(err, STRATA_ERR_NO_MEMORY, "out of memory");
		for (uint32_t w = 0; w < layer->n_weights; w++) {
			char what[160];
			snprintf(what, sizeof(what), "the gradient of %s/%s", layer->name, layer->weights[w].name);
			uint64_t count = layer->weights[w].count;
			st = b->pool_offsets[w] == ST_NOT_POOLED
			             ? st_tensor_alloc(s->rt, &b->grads[w], count * sizeof(float), what, err)
			             : st_pool_view(s->rt, &s->grad_pool, b->pool_offsets[w], count, &b->grads[w], err);
			if (st)
				return st;
		}
	}
	size_t bytes = 0;
	if ((st = batch_bytes(largest * sizeof(float), s->max_batch, &bytes, err)))
		return st;
	/* Evaluation may have made a smaller grad[0] for the loss alone. */
	st_tensor_release(&s->grad[0]);
	s->loss_ready = false;
	for (int i = 0; i < 2; i++)
		if ((st = st_tensor_alloc(s->rt, &s->grad[i], bytes, "the gradient buffers", err)))
			return st;
	st = st_optimizer_create(s, &s->opt, err);
	s->has_optimizer = true; /* even when partly created: release_training() frees what it holds */
	return st;
}

strata_status st_session_enable_training(strata_session *s, strata_error *err)
{
	if (s->training_ready)
		return STRATA_OK;
	strata_status st = alloc_training(s, err);
	if (st) {
		release_training(s);
		return st;
	}
	s->training_ready = true;
	return STRATA_OK;
}

strata_tensor *st_session_output_grad(strata_session *s)
{
	return &s->grad[0];
}

static strata_status run_backward(strata_layer *layer, const strata_backward_args *args, strata_error *err)
{
	strata_error local = {0};
	begin_call(layer, err, &local);
	return end_call(layer, layer->type->ops.backward(layer, &st_host_api, args), "backward");
}

/* Backpropagates through layers n_layers - 1 down to 0. */
static strata_status backward_layers(strata_session *s, uint32_t batch, size_t n_layers, bool folded,
                                     bool training, strata_tensor **input_grad, strata_error *err)
{
	strata_model *m = s->model;
	if (!s->training_ready)
		return st_fail(err, STRATA_ERR_INVALID, "the session was not prepared for training");
	strata_status st = check_batch(s, batch, err);
	if (st)
		return st;
	if (n_layers > m->n_layers)
		return st_fail(err, STRATA_ERR_INVALID, "%zu layers asked of a model of %zu", n_layers, m->n_layers);
	s->rt->phase = "backward";
	int cur = 0;
	for (size_t i = n_layers; i-- > 0;) {
		bool need_input_grad = i > 0 || input_grad != NULL;
		strata_backward_args args = {
			.size = sizeof(args),
			.batch = batch,
			.seed = s->seed,
			.step = s->step,
			.input = i > 0 ? &s->binds[i - 1].output : &s->input,
			.output = &s->binds[i].output,
			.grad_output = &s->grad[cur],
			.grad_input = need_input_grad ? &s->grad[1 - cur] : NULL,
			.activation_folded = folded && i == n_layers - 1,
			.training = training,
			.workspaces_kept = s->binds[i].kept_batch == batch,
		};
		s->binds[i].kept_batch = 0; /* backward may overwrite them (Conv2D: cols with dcols) */
		if ((st = run_backward(&m->layers[i], &args, err)))
			return st;
		cur = 1 - cur;
	}
	if (input_grad)
		*input_grad = &s->grad[cur];
	return STRATA_OK;
}

strata_status st_session_backward(strata_session *s, uint32_t batch, bool folded, strata_tensor **input_grad,
                                  strata_error *err)
{
	return backward_layers(s, batch, s->model->n_layers, folded, true, input_grad, err);
}

strata_status st_session_backward_from(strata_session *s, uint32_t batch, size_t layer, bool training,
                                       strata_tensor **input_grad, strata_error *err)
{
	if (layer >= s->model->n_layers)
		return st_fail(err, STRATA_ERR_NOT_FOUND, "no layer %zu: the model has %zu", layer, s->model->n_layers);
	return backward_layers(s, batch, layer + 1, false, training, input_grad, err);
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
