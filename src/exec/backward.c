/* The backward pass over the model's graph, and the buffers it needs.
 *
 * Gradients are planned once, when training is enabled: the gradient of a value (a model input
 * or a layer's output) is live from the backward step of its last reader in the model's order
 * (or from the loss, for an output) to the backward step of its producer, and values whose
 * intervals do not meet share a slot, so a chain needs two buffers used in turn, as before
 * graphs. Any subset of the graph (a pass from one layer, for filter pictures) fits the same
 * slots: a value's interval there only shrinks, but for the root's, which no live value meets.
 *
 * A value read by several layers (or twice by one) gets its first contribution written in place
 * and the others through a scratch buffer and an accumulate; a layer that shares another's
 * weights writes its weight gradients apart, added to the owner's at the end of the pass. */
#include <stdlib.h>
#include <string.h>

#include "device/tensor_pool.h"
#include "exec/host_api.h"
#include "exec/session.h"

/* ---- the plan ---------------------------------------------------------------------------------- */

static uint64_t value_elems(const strata_model *m, uint32_t v)
{
	return st_shape_elems(st_value_shape(m, v));
}

void st_session_release_training(strata_session *s)
{
	strata_model *m = s->model;
	for (size_t i = 0; s->binds && i < m->n_layers; i++) {
		st_layer_bind *b = &s->binds[i];
		for (uint32_t w = 0; b->grads && w < m->layers[i].n_weights; w++)
			st_tensor_release(&b->grads[w]);
		free(b->grads);
		b->grads = NULL;
	}
	for (size_t k = 0; k < s->n_grad_slots; k++)
		st_tensor_release(&s->grad_slots[k]);
	free(s->grad_slots);
	s->grad_slots = NULL;
	s->n_grad_slots = 0;
	for (size_t k = 0; k < s->n_grad_scratch; k++)
		st_tensor_release(&s->grad_scratch[k]);
	free(s->grad_scratch);
	s->grad_scratch = NULL;
	s->n_grad_scratch = 0;
	free(s->grad_slot);
	s->grad_slot = NULL;
	st_pool_release(&s->grad_pool);
	if (s->has_optimizer)
		st_optimizer_release(&s->opt);
	s->has_optimizer = false;
	s->training_ready = false;
}

/* Slots by liveness: step t of the backward pass runs the layer at position n - 1 - t of the
 * model's order; a value's gradient is written from `first` (-1: by the loss, before step 0) and
 * read last at `last`. Two values may share a slot when one's last step comes before the
 * other's first: a layer never reads and writes one buffer in a call. */
static strata_status plan_slots(strata_session *s, strata_error *err)
{
	strata_model *m = s->model;
	size_t n = m->n_layers, n_values = m->n_inputs + n;
	int64_t *first = malloc(n_values * sizeof(*first)), *last = malloc(n_values * sizeof(*last));
	int64_t *pos = malloc((n ? n : 1) * sizeof(*pos));
	int64_t *slot_free = malloc(n_values * sizeof(*slot_free));
	uint64_t *slot_size = calloc(n_values, sizeof(*slot_size));
	s->grad_slot = malloc(n_values * sizeof(*s->grad_slot));
	strata_status st = STRATA_OK;
	if (!first || !last || !pos || !slot_free || !slot_size || !s->grad_slot) {
		st = st_fail(err, STRATA_ERR_NO_MEMORY, "out of memory");
		goto out_free;
	}
	for (size_t o = 0; o < n; o++)
		pos[m->order[o]] = (int64_t)o;
	for (size_t v = 0; v < n_values; v++) {
		first[v] = INT64_MAX;
		/* A layer's gradient is read when it runs backward; an input's after every step (the
		 * input gradient of filter pictures). */
		last[v] = v < m->n_inputs ? (int64_t)n : (int64_t)n - 1 - pos[v - m->n_inputs];
		s->grad_slot[v] = ST_NO_SLOT;
	}
	for (size_t k = 0; k < m->n_outputs; k++)
		first[st_layer_value(m, m->outputs[k])] = -1;
	for (size_t i = 0; i < n; i++)
		for (uint32_t k = 0; k < m->layers[i].n_inputs; k++) {
			uint32_t v = m->layers[i].inputs[k];
			int64_t t = (int64_t)n - 1 - pos[i];
			first[v] = t < first[v] ? t : first[v];
		}
	/* A layer no output reads from still gets a slot of its own: a pass from it (filter
	 * pictures) starts there. */
	for (size_t i = 0; i < n; i++) {
		uint32_t v = st_layer_value(m, i);
		if (first[v] == INT64_MAX)
			first[v] = -1;
	}
	/* Greedy interval colouring in order of first use; only input 0 of the model inputs. */
	size_t n_slots = 0;
	for (int64_t t = -1; t <= (int64_t)n; t++) {
		for (size_t v = 0; v < n_values; v++) {
			if (first[v] != t || (v < m->n_inputs && v != 0))
				continue;
			size_t k = 0;
			while (k < n_slots && slot_free[k] >= t)
				k++;
			if (k == n_slots)
				slot_free[n_slots++] = INT64_MIN;
			slot_free[k] = last[v];
			s->grad_slot[v] = (uint32_t)k;
			uint64_t e = value_elems(m, (uint32_t)v);
			slot_size[k] = e > slot_size[k] ? e : slot_size[k];
		}
	}
	/* Scratch for the contributions after the first: as many as a layer has inputs. */
	uint64_t most = 0;
	uint32_t inputs = 0;
	for (size_t i = 0; i < n; i++) {
		for (uint32_t k = 0; k < m->layers[i].n_inputs; k++) {
			uint64_t e = value_elems(m, m->layers[i].inputs[k]);
			most = e > most ? e : most;
		}
		inputs = m->layers[i].n_inputs > inputs ? m->layers[i].n_inputs : inputs;
	}
	s->grad_scratch = calloc(inputs ? inputs : 1, sizeof(*s->grad_scratch));
	if (!s->grad_scratch) {
		st = st_fail(err, STRATA_ERR_NO_MEMORY, "out of memory");
		goto out_free;
	}
	s->n_grad_scratch = inputs;
	/* Needed only where a gradient has several contributions: a value read twice, or an output
	 * (written by the loss) that a layer reads too. */
	bool fans_out = false;
	for (size_t v = 0; v < n_values && !fans_out; v++) {
		unsigned readers = 0;
		for (size_t i = 0; i < n; i++)
			for (uint32_t k = 0; k < m->layers[i].n_inputs; k++)
				readers += m->layers[i].inputs[k] == v;
		for (size_t k = 0; k < m->n_outputs; k++)
			readers += st_layer_value(m, m->outputs[k]) == v;
		fans_out = readers > 1;
	}
	/* Weighed against the device's memory before any of it is made: activations, gradients,
	 * and the weights twice (their gradients). */
	uint64_t weights = 0, per_sample = st_session_training_bytes(m, &weights);
	uint64_t grad_elems = fans_out ? most * inputs : 0;
	for (size_t k = 0; k < n_slots; k++)
		grad_elems += slot_size[k];
	if ((st = st_session_check_fits(s, "training", per_sample + grad_elems * sizeof(float), 2 * weights, err)))
		goto out_free;
	s->grad_slots = calloc(n_slots ? n_slots : 1, sizeof(*s->grad_slots));
	if (!s->grad_slots) {
		st = st_fail(err, STRATA_ERR_NO_MEMORY, "out of memory");
		goto out_free;
	}
	s->n_grad_slots = n_slots;
	for (size_t k = 0; k < n_slots; k++)
		if ((st = st_tensor_alloc(s->rt, &s->grad_slots[k], slot_size[k] * s->max_batch * sizeof(float),
		                          "the gradient buffers", err)))
			goto out_free;
	for (size_t k = 0; fans_out && k < inputs; k++)
		if ((st = st_tensor_alloc(s->rt, &s->grad_scratch[k], most * s->max_batch * sizeof(float),
		                          "the gradient scratch", err)))
			goto out_free;
out_free:
	free(first);
	free(last);
	free(pos);
	free(slot_free);
	free(slot_size);
	return st;
}

static strata_status alloc_training(strata_session *s, strata_error *err)
{
	strata_model *m = s->model;
	strata_status st;
	for (size_t i = 0; i < m->n_layers; i++) {
		strata_layer *layer = &m->layers[i];
		/* A model that trains itself runs no backward pass (trainer.c). */
		if (!layer->type->ops.backward && !strata_model_trains_itself(m))
			return st_fail(err, STRATA_ERR_UNSUPPORTED, "%s:%u:%u: %s: layer type '%s' has no backward pass",
			               m->file, layer->pos.line, layer->pos.col, layer->name, layer->type->ops.type);
	}
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
			if (layer->weights[w].state)
				continue; /* no gradient: the layer updates it itself */
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
	/* The backward pass reads every layer's output: one buffer each from here on. */
	if ((st = plan_slots(s, err)) || (st = st_session_plan_activations(s, true, err)))
		return st;
	/* The loss of an evaluation writes here when training is off; training has the slots. */
	st_tensor_release(&s->eval_grad);
	s->loss_ready = false;
	st = st_optimizer_create(s, &s->opt, err);
	s->has_optimizer = true; /* even when partly created: st_session_release_training() frees it */
	return st;
}

strata_status st_session_enable_training(strata_session *s, strata_error *err)
{
	if (s->training_ready)
		return STRATA_OK;
	strata_status st = alloc_training(s, err);
	if (st) {
		st_session_release_training(s);
		return st;
	}
	s->training_ready = true;
	return STRATA_OK;
}

strata_tensor *st_session_layer_grad(strata_session *s, size_t layer)
{
	uint32_t v = st_layer_value(s->model, layer);
	if (!s->training_ready || s->grad_slot[v] == ST_NO_SLOT)
		return &s->eval_grad;
	return &s->grad_slots[s->grad_slot[v]];
}

strata_tensor *st_session_output_grad(strata_session *s)
{
	return s->model->n_layers ? st_session_layer_grad(s, s->model->outputs[0]) : &s->eval_grad;
}

/* ---- the pass ---------------------------------------------------------------------------------- */

/* dst += src over n floats, on the device. */
static strata_status accumulate(strata_session *s, strata_tensor *dst, strata_tensor *src, uint64_t n,
                                strata_error *err)
{
	if (n == 0)
		return STRATA_OK;
	if (n > INT32_MAX)
		return st_fail(err, STRATA_ERR_OVERFLOW, "summing %llu gradient values exceeds int indexing",
		               (unsigned long long)n);
	strata_kernel *k = NULL;
	strata_status st = st_kernel_get(s->rt, "core", "accumulate", NULL, &k, err);
	if (st)
		return st;
	size_t global = (size_t)n;
	strata_arg args[] = {strata_arg_tensor(dst), strata_arg_tensor(src), strata_arg_int((int32_t)n)};
	return st_launch(s->rt, "strata", k, 1, &global, NULL, 3, args, err);
}

/* Which layers the pass runs: the roots and every layer they read, directly or not. */
static void mark_active(const strata_model *m, const bool *root, bool *active)
{
	memcpy(active, root, m->n_layers * sizeof(*active));
	for (size_t o = m->n_layers; o-- > 0;) {
		size_t i = m->order[o];
		if (!active[i])
			continue;
		for (uint32_t k = 0; k < m->layers[i].n_inputs; k++)
			if (m->layers[i].inputs[k] >= m->n_inputs)
				active[m->layers[i].inputs[k] - m->n_inputs] = true;
	}
}

static strata_status zero_weight_grads(strata_session *s, size_t layer, strata_error *err)
{
	strata_layer *l = &s->model->layers[layer];
	for (uint32_t w = 0; w < l->n_weights; w++) {
		strata_tensor *g = &s->binds[layer].grads[w];
		strata_status st = g->mem ? st_tensor_zero(s->rt, s->pool_mode, g, 0, l->weights[w].count,
		                                           "a weight gradient", err)
		                          : STRATA_OK;
		if (st)
			return st;
	}
	return STRATA_OK;
}

/* A layer that shares weights wrote its gradients apart (grads_of); they go to the owner's. */
static strata_status add_shared_grads(strata_session *s, const bool *active, strata_error *err)
{
	strata_model *m = s->model;
	strata_status st;
	for (size_t i = 0; i < m->n_layers; i++) {
		strata_layer *l = &m->layers[i];
		if (l->shares < 0 || !active[i])
			continue;
		size_t owner = (size_t)l->shares;
		if (!active[owner] && (st = zero_weight_grads(s, owner, err)))
			return st;
		for (uint32_t w = 0; w < l->n_weights; w++)
			if ((st = accumulate(s, &s->binds[owner].grads[w], &s->binds[i].grads[w], l->weights[w].count, err)))
				return st;
	}
	return STRATA_OK;
}

/* Which values' gradients a pass needs: a layer's output when the layer has weights (their
 * gradients come from it) or reads a value that is needed; model input 0 when the caller asks for
 * its gradient. A Flatten right after the input then computes nothing, and the Dense after it no
 * input gradient: a GEMM as large as the layer's weight gradient saved in every step. */
static void mark_needed(const strata_model *m, bool input_grad, bool *needed)
{
	size_t n = m->n_layers;
	for (size_t v = 0; v < m->n_inputs; v++)
		needed[v] = v == 0 && input_grad;
	for (size_t o = 0; o < n; o++) {
		size_t i = m->order[o];
		const strata_layer *l = &m->layers[i];
		bool need = l->n_weights > 0;
		for (uint32_t k = 0; k < l->n_inputs && !need; k++)
			need = needed[l->inputs[k]];
		needed[st_layer_value(m, i)] = need;
	}
}

/* Backpropagates from the gradients of the roots' outputs (already in their slots) through every
 * layer they read; folded[i] says the gradient given at root i is already past its softmax.
 * Layers no root reads keep zero weight gradients when `whole` (a training step, whose optimizer
 * sweeps every weight). */
/* The gradient of the layer's activity regularizer (exec/loss.c's penalty, divided by the batch
 * size) added to its output's, before the layer's own backward pass reads it. */
static strata_status add_activity_gradient(strata_session *s, const strata_layer *layer, strata_tensor *y,
                                           strata_tensor *g, uint32_t batch, strata_error *err)
{
	strata_kernel *k = NULL;
	strata_status st = st_kernel_get(s->rt, "strata_loss", "activity_gradient", NULL, &k, err);
	if (st)
		return st;
	size_t n = st_shape_elems(&layer->out) * batch;
	strata_arg a[] = {strata_arg_tensor(g), strata_arg_tensor(y), strata_arg_int((int)n),
	                  strata_arg_float((float)layer->activity_l1), strata_arg_float((float)layer->activity_l2),
	                  strata_arg_float(1.0f / (float)(s->loss_batch ? s->loss_batch : batch))};
	return st_launch(s->rt, layer->name, k, 1, &n, NULL, 6, a, err);
}

static strata_status backward_graph(strata_session *s, uint32_t batch, const bool *root, const bool *folded,
                                    bool training, bool whole, strata_tensor **input_grad, strata_error *err)
{
	strata_model *m = s->model;
	if (!s->training_ready)
		return st_fail(err, STRATA_ERR_INVALID, "the session was not prepared for training");
	if (batch == 0 || batch > s->max_batch)
		return st_fail(err, STRATA_ERR_INVALID, "batch of %u samples, the session holds 1 to %u", batch,
		               s->max_batch);
	size_t n = m->n_layers, n_values = m->n_inputs + n;
	bool *active = malloc((n ? n : 1) * sizeof(*active)), *written = calloc(n_values, sizeof(*written));
	bool *needed = malloc(n_values * sizeof(*needed));
	strata_tensor **targets = malloc((s->n_grad_scratch ? s->n_grad_scratch : 1) * sizeof(*targets));
	strata_status st = STRATA_OK;
	if (!active || !written || !targets || !needed) {
		st = st_fail(err, STRATA_ERR_NO_MEMORY, "out of memory");
		goto out_free;
	}
	mark_active(m, root, active);
	mark_needed(m, input_grad != NULL, needed);
	s->rt->phase = "backward";
	for (size_t i = 0; i < n; i++)
		written[st_layer_value(m, i)] = root[i];
	for (size_t o = n; o-- > 0;) {
		size_t i = m->order[o];
		if (!active[i] || !needed[st_layer_value(m, i)]) {
			if (whole && (st = zero_weight_grads(s, i, err)))
				goto out_free;
			continue;
		}
		strata_layer *layer = &m->layers[i];
		st_layer_bind *b = &s->binds[i];
		uint32_t scratch = 0;
		for (uint32_t k = 0; k < layer->n_inputs; k++) {
			uint32_t v = layer->inputs[k];
			bool wanted = needed[v];
			targets[k] = NULL;
			if (!wanted || s->grad_slot[v] == ST_NO_SLOT)
				continue;
			bool taken = written[v];
			for (uint32_t j = 0; j < k; j++)
				taken |= layer->inputs[j] == v && targets[j] == &s->grad_slots[s->grad_slot[v]];
			targets[k] = taken ? &s->grad_scratch[scratch++] : &s->grad_slots[s->grad_slot[v]];
		}
		strata_backward_args args = {
			.size = sizeof(args),
			.batch = st_layer_batch(layer, batch),
			.seed = s->seed,
			.step = s->step,
			.input = b->in[0],
			.output = &b->output,
			.grad_output = &s->grad_slots[s->grad_slot[st_layer_value(m, i)]],
			.grad_input = targets[0],
			.activation_folded = folded[i],
			.training = training,
			.workspaces_kept = b->kept_batch == batch,
			.inputs = b->in,
			.grad_inputs = targets,
			.n_inputs = layer->n_inputs,
			.frozen = !layer->trainable,
			.sample_offset = training ? st_layer_batch(layer, s->sample_offset) : 0,
		};
		if (whole && (layer->activity_l1 != 0.0 || layer->activity_l2 != 0.0) &&
		    (st = add_activity_gradient(s, layer, &b->output, args.grad_output, batch, err)))
			goto out_free;
		b->kept_batch = 0; /* backward may overwrite them (Conv2D: cols with dcols) */
		if ((st = st_host_backward(layer, &args, err)))
			goto out_free;
		for (uint32_t k = 0; k < layer->n_inputs; k++) {
			uint32_t v = layer->inputs[k];
			if (!targets[k])
				continue;
			if (targets[k] != &s->grad_slots[s->grad_slot[v]] &&
			    (st = accumulate(s, &s->grad_slots[s->grad_slot[v]], targets[k], value_elems(m, v) * batch, err)))
				goto out_free;
			written[v] = true;
		}
	}
	if ((st = add_shared_grads(s, active, err)))
		goto out_free;
	if (input_grad)
		*input_grad = written[0] ? &s->grad_slots[s->grad_slot[0]] : NULL;
	if (input_grad && !*input_grad) {
		size_t first = 0;
		while (first + 1 < n && !root[first])
			first++;
		st = st_fail(err, STRATA_ERR_INVALID, "%s does not depend on the model's input %s", m->layers[first].name,
		             m->inputs[0].name);
	}
out_free:
	free(active);
	free(written);
	free(needed);
	free(targets);
	return st;
}

/* The roots of a pass from one layer, or from the model's outputs. */
static strata_status make_roots(const strata_model *m, bool **root, bool **folded, strata_error *err)
{
	*root = calloc(m->n_layers ? m->n_layers : 1, sizeof(**root));
	*folded = calloc(m->n_layers ? m->n_layers : 1, sizeof(**folded));
	if (!*root || !*folded) {
		free(*root);
		free(*folded);
		return st_fail(err, STRATA_ERR_NO_MEMORY, "out of memory");
	}
	return STRATA_OK;
}

strata_status st_session_backward(strata_session *s, uint32_t batch, bool folded, strata_tensor **input_grad,
                                  strata_error *err)
{
	strata_model *m = s->model;
	bool *root, *fold;
	strata_status st = make_roots(m, &root, &fold, err);
	if (st)
		return st;
	/* From every output the loss wrote a gradient for; without loss heads (a caller that wrote
	 * the gradients itself), from every output, `folded` then meaning the first's. */
	if (s->n_heads) {
		for (size_t h = 0; h < s->n_heads; h++) {
			root[s->heads[h].layer] = true;
			fold[s->heads[h].layer] = folded && s->heads[h].folded;
		}
	} else {
		for (size_t k = 0; k < m->n_outputs; k++)
			root[m->outputs[k]] = true;
		if (m->n_outputs)
			fold[m->outputs[0]] = folded;
	}
	st = backward_graph(s, batch, root, fold, true, true, input_grad, err);
	free(root);
	free(fold);
	return st;
}

strata_status st_session_backward_from(strata_session *s, uint32_t batch, size_t layer, bool training,
                                       strata_tensor **input_grad, strata_error *err)
{
	if (layer >= s->model->n_layers)
		return st_fail(err, STRATA_ERR_NOT_FOUND, "no layer %zu: the model has %zu", layer, s->model->n_layers);
	bool *root, *fold;
	strata_status st = make_roots(s->model, &root, &fold, err);
	if (st)
		return st;
	root[layer] = true;
	st = backward_graph(s, batch, root, fold, training, false, input_grad, err);
	free(root);
	free(fold);
	return st;
}
