/* Saving and loading a session's weights (and optimizer state) as checkpoints. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "exec/checkpoint.h"
#include "exec/session.h"

strata_status st_session_named_tensors(strata_session *s, bool with_optimizer, st_named_tensor **out, size_t *n,
                                       strata_error *err)
{
	strata_model *m = s->model;
	size_t count = 0;
	/* A layer sharing another's weights is saved once, under the owner's name. */
	for (size_t i = 0; i < m->n_layers; i++)
		count += m->layers[i].shares < 0 ? m->layers[i].n_weights : 0;
	size_t slots = with_optimizer && s->has_optimizer ? st_optimizer_slot_count(&s->opt) : 0;
	st_named_tensor *t = calloc(count + slots + 1, sizeof(*t));
	if (!t)
		return st_fail(err, STRATA_ERR_NO_MEMORY, "out of memory");
	size_t k = 0;
	for (size_t i = 0; i < m->n_layers; i++) {
		strata_layer *layer = &m->layers[i];
		for (uint32_t w = 0; layer->shares < 0 && w < layer->n_weights; w++, k++) {
			snprintf(t[k].name, sizeof(t[k].name), "%s/%s", layer->name, layer->weights[w].name);
			t[k].kind = ST_TENSOR_WEIGHT;
			t[k].shape = layer->weights[w].shape;
			t[k].count = layer->weights[w].count;
			t[k].tensor = &s->binds[i].weights[w];
		}
	}
	if (slots)
		st_optimizer_slots(&s->opt, t + k);
	*out = t;
	*n = count + slots;
	return STRATA_OK;
}

static void fill_info(const strata_session *s, st_checkpoint_info *info)
{
	memset(info, 0, sizeof(*info));
	info->epoch = s->epoch;
	info->step = s->step;
	info->seed = s->seed;
	info->iterations = s->has_optimizer ? s->opt.iterations : 0;
	snprintf(info->model, sizeof(info->model), "%s", s->model->name);
	if (s->has_optimizer)
		snprintf(info->optimizer, sizeof(info->optimizer), "%s", s->opt.name);
}

strata_status strata_session_save(strata_session *s, const char *path, strata_error *err)
{
	st_named_tensor *t = NULL;
	size_t n = 0;
	strata_status st = st_session_named_tensors(s, true, &t, &n, err);
	if (st)
		return st;
	st_checkpoint_info info;
	fill_info(s, &info);
	st = st_checkpoint_save(s->rt, path, &info, t, n, err);
	free(t);
	return st;
}

/* Loads weights, and the optimizer state and counters when the session trains, so that training
 * resumes exactly where the checkpoint was taken. */
strata_status strata_session_load(strata_session *s, const char *path, strata_error *err)
{
	st_named_tensor *t = NULL;
	size_t n = 0;
	strata_status st = st_session_named_tensors(s, s->has_optimizer, &t, &n, err);
	if (st)
		return st;
	st_checkpoint_info info;
	fill_info(s, &info);
	st = st_checkpoint_load(s->rt, path, &info, t, n, s->has_optimizer, err);
	free(t);
	if (st)
		return st;
	/* The seed orders every epoch's samples and keys the dropout masks: a resumed run goes on
	 * with the seed it started with, or it would not be the run that stopped. */
	if (s->has_optimizer && info.seed != s->seed) {
		st_runtime_log(s->rt, STRATA_LOG_WARN, "%s was trained with seed %llu: continuing with it, not %llu",
		               path, (unsigned long long)info.seed, (unsigned long long)s->seed);
		s->seed = info.seed;
	}
	s->epoch = info.epoch;
	s->step = info.step;
	if (s->has_optimizer)
		s->opt.iterations = info.iterations;
	return STRATA_OK;
}
