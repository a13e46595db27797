#include "exec/optimizer.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "exec/session.h"

static double section_float(const st_section *sec, const char *name, double fallback)
{
	const st_param_value *v = sec->type ? st_section_param(sec, name) : NULL;
	return v ? v->f : fallback;
}

static bool section_bool(const st_section *sec, const char *name)
{
	const st_param_value *v = sec->type ? st_section_param(sec, name) : NULL;
	return v ? v->i != 0 : false;
}

/* Slot names are part of the checkpoint format: never rename one. */
static strata_status configure(st_optimizer *opt, const st_section *sec, strata_error *err)
{
	const char *type = sec->type ? sec->type : "rmsprop"; /* Keras compile()'s default */
	snprintf(opt->name, sizeof(opt->name), "%s", type);
	opt->epsilon = section_float(sec, "epsilon", 1e-7);
	if (strcmp(type, "sgd") == 0) {
		opt->kind = ST_OPT_SGD;
		opt->lr = section_float(sec, "learning_rate", 0.01);
		opt->momentum = section_float(sec, "momentum", 0.0);
		opt->nesterov = section_bool(sec, "nesterov");
		opt->n_slots = opt->momentum > 0.0 ? 1 : 0;
		opt->slot_names[0] = "momentum";
	} else if (strcmp(type, "adadelta") == 0) {
		opt->kind = ST_OPT_ADADELTA;
		opt->lr = section_float(sec, "learning_rate", 1.0);
		opt->rho = section_float(sec, "rho", 0.95);
		opt->n_slots = 2;
		opt->slot_names[0] = "accum_grad";
		opt->slot_names[1] = "accum_var";
	} else if (strcmp(type, "adam") == 0) {
		opt->kind = ST_OPT_ADAM;
		opt->lr = section_float(sec, "learning_rate", 0.001);
		opt->beta_1 = section_float(sec, "beta_1", 0.9);
		opt->beta_2 = section_float(sec, "beta_2", 0.999);
		opt->amsgrad = section_bool(sec, "amsgrad");
		opt->n_slots = opt->amsgrad ? 3 : 2;
		opt->slot_names[0] = "m";
		opt->slot_names[1] = "v";
		opt->slot_names[2] = "vhat";
	} else if (strcmp(type, "rmsprop") == 0) {
		opt->kind = ST_OPT_RMSPROP;
		opt->lr = section_float(sec, "learning_rate", 0.001);
		opt->rho = section_float(sec, "rho", 0.9);
		opt->momentum = section_float(sec, "momentum", 0.0);
		opt->centered = section_bool(sec, "centered");
		opt->n_slots = 3; /* ms, momentum, mg: unused ones stay zero but keep the layout fixed */
		opt->slot_names[0] = "ms";
		opt->slot_names[1] = "momentum";
		opt->slot_names[2] = "mg";
	} else {
		return st_fail(err, STRATA_ERR_INVALID, "unknown optimizer '%s'", type);
	}
	opt->clipnorm = section_float(sec, "clipnorm", 0.0);
	opt->clipvalue = section_float(sec, "clipvalue", 0.0);
	opt->global_clipnorm = section_float(sec, "global_clipnorm", 0.0);
	if (opt->clipnorm > 0.0 && opt->global_clipnorm > 0.0)
		return st_fail(err, STRATA_ERR_INVALID, "optimizer %s: only one of clipnorm and global_clipnorm can be set, "
		               "as in Keras", type);
	return STRATA_OK;
}

/* Values of a gradient per block of the clipping's partial sums. */
#define CLIP_BLOCK 1024u

/* The clipping's buffers, once every weight is known. */
static strata_status clip_prepare(strata_session *s, st_optimizer *opt, strata_error *err)
{
	if (opt->clipnorm <= 0.0 && opt->global_clipnorm <= 0.0)
		return STRATA_OK;
	opt->clip_first = calloc(opt->n_params ? opt->n_params : 1, sizeof(*opt->clip_first));
	if (!opt->clip_first)
		return st_fail(err, STRATA_ERR_NO_MEMORY, "out of memory");
	uint64_t blocks = 0;
	for (size_t i = 0; i < opt->n_params; i++) {
		opt->clip_first[i] = (uint32_t)blocks;
		blocks += (opt->params[i].count + CLIP_BLOCK - 1) / CLIP_BLOCK;
		if (blocks > INT32_MAX)
			return st_fail(err, STRATA_ERR_OVERFLOW, "too many gradients to clip");
	}
	opt->clip_blocks = (uint32_t)blocks;
	strata_status st = st_tensor_alloc(s->rt, &opt->clip_partials, (blocks ? blocks : 1) * sizeof(float),
	                                   "the gradient clipping's partial sums", err);
	if (!st)
		st = st_tensor_alloc(s->rt, &opt->clip_factors, (opt->n_params + 1) * sizeof(float),
		                     "the gradient clipping's factors", err);
	return st;
}

/* Keras' clipping of the gradients, regularization included, before the update: clipnorm (each
 * weight's) or global_clipnorm (all of them jointly), then clipvalue. */
static strata_status clip_gradients(strata_runtime *rt, st_optimizer *opt, strata_error *err)
{
	strata_kernel *partials = NULL, *factor = NULL, *scale = NULL, *value = NULL;
	strata_status st;
	double norm = opt->clipnorm > 0.0 ? opt->clipnorm : opt->global_clipnorm;
	if (norm > 0.0 && ((st = st_kernel_get(rt, "strata_optimizer", "clip_partials", NULL, &partials, err)) ||
	                   (st = st_kernel_get(rt, "strata_optimizer", "clip_factor", NULL, &factor, err)) ||
	                   (st = st_kernel_get(rt, "strata_optimizer", "clip_scale", NULL, &scale, err))))
		return st;
	if (opt->clipvalue > 0.0 && (st = st_kernel_get(rt, "strata_optimizer", "clip_value", NULL, &value, err)))
		return st;
	bool global = opt->global_clipnorm > 0.0;
	size_t one = 1;
	/* Sums of squares per block; with clipnorm each weight's factor at once. */
	for (size_t i = 0; norm > 0.0 && i < opt->n_params; i++) {
		st_opt_param *p = &opt->params[i];
		int n = (int)p->count, blocks = (int)((p->count + CLIP_BLOCK - 1) / CLIP_BLOCK), first = (int)opt->clip_first[i];
		size_t global_size = (size_t)blocks;
		strata_arg a[] = {strata_arg_tensor(p->g), strata_arg_int(n), strata_arg_int((int)CLIP_BLOCK),
		                  strata_arg_tensor(&opt->clip_partials), strata_arg_int(first)};
		strata_arg f[] = {strata_arg_tensor(&opt->clip_partials), strata_arg_int(first), strata_arg_int(blocks),
		                  strata_arg_float((float)norm), strata_arg_tensor(&opt->clip_factors), strata_arg_int((int)i)};
		if (blocks && (st = st_launch(rt, p->layer->name, partials, 1, &global_size, NULL, 5, a, err)))
			return st;
		if (!global && (st = st_launch(rt, p->layer->name, factor, 1, &one, NULL, 6, f, err)))
			return st;
	}
	if (global) {
		strata_arg f[] = {strata_arg_tensor(&opt->clip_partials), strata_arg_int(0), strata_arg_int((int)opt->clip_blocks),
		                  strata_arg_float((float)norm), strata_arg_tensor(&opt->clip_factors),
		                  strata_arg_int((int)opt->n_params)};
		if ((st = st_launch(rt, "optimizer", factor, 1, &one, NULL, 6, f, err)))
			return st;
	}
	for (size_t i = 0; i < opt->n_params; i++) {
		st_opt_param *p = &opt->params[i];
		size_t count = p->count;
		if (!count)
			continue;
		strata_arg a[] = {strata_arg_tensor(p->g), strata_arg_int((int)count), strata_arg_tensor(&opt->clip_factors),
		                  strata_arg_int(global ? (int)opt->n_params : (int)i)};
		strata_arg v[] = {strata_arg_tensor(p->g), strata_arg_int((int)count), strata_arg_float((float)opt->clipvalue)};
		if ((norm > 0.0 && (st = st_launch(rt, p->layer->name, scale, 1, &count, NULL, 4, a, err))) ||
		    (value && (st = st_launch(rt, p->layer->name, value, 1, &count, NULL, 3, v, err))))
			return st;
	}
	return STRATA_OK;
}

strata_status st_optimizer_create(strata_session *s, st_optimizer *opt, strata_error *err)
{
	memset(opt, 0, sizeof(*opt));
	strata_status st = configure(opt, &s->model->recipe.optimizer, err);
	if (st)
		return st;
	opt->schedule = st_lr_schedule_from(&s->model->recipe.lr_schedule, opt->lr);
	strata_model *m = s->model;
	size_t n = 0;
	for (size_t i = 0; i < m->n_layers; i++)
		if (m->layers[i].trainable)
			n += m->layers[i].n_weights;
	opt->params = calloc(n ? n : 1, sizeof(*opt->params));
	if (!opt->params)
		return st_fail(err, STRATA_ERR_NO_MEMORY, "out of memory");
	opt->all_weights = &s->weight_pool.whole;
	opt->all_grads = &s->grad_pool.whole;
	opt->elems = s->weight_pool.elems;
	opt->pool_mode = s->pool_mode;
	for (uint32_t k = 0; k < opt->n_slots; k++) {
		char what[64];
		snprintf(what, sizeof(what), "the optimizer's %s", opt->slot_names[k]);
		if ((st = st_pool_create(s->rt, &opt->slot_pools[k], s->pool_mode, opt->elems, what, err)))
			return st;
	}
	for (size_t i = 0; i < m->n_layers; i++) {
		strata_layer *layer = &m->layers[i];
		if (!layer->trainable)
			continue;
		for (uint32_t w = 0; w < layer->n_weights; w++) {
			/* The optimizer's are the pool's: not the weights a layer borrows (`shares:`, updated
			 * once, through their owner) nor persistent state. */
			if (s->binds[i].pool_offsets[w] == ST_NOT_POOLED)
				continue;
			st_opt_param *p = &opt->params[opt->n_params++];
			p->layer = layer;
			p->weight = w;
			p->w = &s->binds[i].weights[w];
			p->g = &s->binds[i].grads[w];
			p->count = layer->weights[w].count;
			p->l1 = layer->weights[w].l1;
			p->l2 = layer->weights[w].l2;
			p->decl = &layer->weights[w];
			for (uint32_t k = 0; k < opt->n_slots; k++)
				if ((st = st_pool_view(s->rt, &opt->slot_pools[k], s->binds[i].pool_offsets[w], p->count,
				                       &p->slots[k], err)))
					return st;
		}
	}
	return clip_prepare(s, opt, err);
}

void st_optimizer_release(st_optimizer *opt)
{
	for (size_t i = 0; i < opt->n_params; i++)
		for (uint32_t k = 0; k < ST_OPT_MAX_SLOTS; k++)
			st_tensor_release(&opt->params[i].slots[k]);
	for (uint32_t k = 0; k < ST_OPT_MAX_SLOTS; k++)
		st_pool_release(&opt->slot_pools[k]);
	st_tensor_release(&opt->clip_partials);
	st_tensor_release(&opt->clip_factors);
	free(opt->clip_first);
	free(opt->params);
	memset(opt, 0, sizeof(*opt));
}

/* One launch of the update kernel over n floats of w, g and the slots. A slot this configuration
 * never uses (SGD without momentum, Adam without amsgrad) is still an argument: any valid buffer
 * does, the kernel does not touch it. alpha is Adam's step size, bias corrections folded in. */
static strata_status launch_update(strata_runtime *rt, const st_optimizer *opt, strata_kernel *update, float alpha,
                                   strata_tensor *w, strata_tensor *g, strata_tensor *const slots[ST_OPT_MAX_SLOTS],
                                   uint64_t count, strata_error *err)
{
	strata_tensor *s[ST_OPT_MAX_SLOTS];
	for (uint32_t k = 0; k < ST_OPT_MAX_SLOTS; k++)
		s[k] = k < opt->n_slots ? slots[k] : w;
	int n = (int)count;
	strata_arg a[12];
	uint32_t na = 0;
	a[na++] = strata_arg_tensor(w);
	a[na++] = strata_arg_tensor(g);
	switch (opt->kind) {
	case ST_OPT_SGD:
		a[na++] = strata_arg_tensor(s[0]);
		a[na++] = strata_arg_int(n);
		a[na++] = strata_arg_float((float)opt->lr);
		a[na++] = strata_arg_float((float)opt->momentum);
		a[na++] = strata_arg_int(opt->nesterov);
		break;
	case ST_OPT_ADADELTA:
		a[na++] = strata_arg_tensor(s[0]);
		a[na++] = strata_arg_tensor(s[1]);
		a[na++] = strata_arg_int(n);
		a[na++] = strata_arg_float((float)opt->lr);
		a[na++] = strata_arg_float((float)opt->rho);
		a[na++] = strata_arg_float((float)opt->epsilon);
		break;
	case ST_OPT_ADAM:
		a[na++] = strata_arg_tensor(s[0]);
		a[na++] = strata_arg_tensor(s[1]);
		a[na++] = strata_arg_tensor(s[2]);
		a[na++] = strata_arg_int(n);
		a[na++] = strata_arg_float(alpha);
		a[na++] = strata_arg_float((float)opt->beta_1);
		a[na++] = strata_arg_float((float)opt->beta_2);
		a[na++] = strata_arg_float((float)opt->epsilon);
		a[na++] = strata_arg_int(opt->amsgrad);
		break;
	case ST_OPT_RMSPROP:
		a[na++] = strata_arg_tensor(s[0]);
		a[na++] = strata_arg_tensor(s[1]);
		a[na++] = strata_arg_tensor(s[2]);
		a[na++] = strata_arg_int(n);
		a[na++] = strata_arg_float((float)opt->lr);
		a[na++] = strata_arg_float((float)opt->rho);
		a[na++] = strata_arg_float((float)opt->momentum);
		a[na++] = strata_arg_float((float)opt->epsilon);
		a[na++] = strata_arg_int(opt->centered);
		break;
	}
	size_t global = count, local = rt->tunables.v[ST_TUNABLE_UPDATE_WG];
	if (local > update->max_work_group_size)
		local = 0;
	return st_launch(rt, "optimizer", update, 1, &global, local ? &local : NULL, na, a, err);
}

/* Keras' constraint of one weight after its update: MaxNorm over the axes the weight declares
 * (a launch over the slices of the other axes), NonNeg over every value. */
static strata_status constrain(strata_runtime *rt, const st_opt_param *p, strata_error *err)
{
	const st_weight_decl *d = p->decl;
	strata_kernel *k = NULL;
	strata_status st;
	if (d->constraint == ST_CONSTRAINT_NON_NEG) {
		if ((st = st_kernel_get(rt, "strata_optimizer", "non_neg", NULL, &k, err)))
			return st;
		size_t global = p->count;
		strata_arg a[] = {strata_arg_tensor(p->w), strata_arg_int((int)p->count)};
		return st_launch(rt, p->layer->name, k, 1, &global, NULL, 2, a, err);
	}
	/* Sizes and strides of the kept axes (the slices) and of the constrained ones (their
	 * members), each padded to four axes of size 1 in front. */
	int kdim[4] = {1, 1, 1, 1}, kstr[4] = {0, 0, 0, 0}, rdim[4] = {1, 1, 1, 1}, rstr[4] = {0, 0, 0, 0};
	int nk = 0, nr = 0, slices = 1, members = 1;
	int64_t stride = 1, strides[STRATA_MAX_RANK];
	for (int a = (int)d->shape.rank - 1; a >= 0; a--) {
		strides[a] = stride;
		stride *= d->shape.dims[a];
	}
	for (uint32_t a = 0; a < d->shape.rank; a++) {
		if (d->constraint_axes & (1u << a)) {
			rdim[nr] = (int)d->shape.dims[a];
			rstr[nr++] = (int)strides[a];
			members *= (int)d->shape.dims[a];
		} else {
			kdim[nk] = (int)d->shape.dims[a];
			kstr[nk++] = (int)strides[a];
			slices *= (int)d->shape.dims[a];
		}
	}
	/* Right-align the used axes, so the padding axes of size 1 come first. */
	for (int *v[4] = {kdim, kstr, rdim, rstr}, j = 0; j < 4; j++) {
		int n = j < 2 ? nk : nr, pad = j % 2 == 0 ? 1 : 0, tmp[4];
		for (int i = 0; i < 4; i++)
			tmp[i] = i < 4 - n ? pad : v[j][i - (4 - n)];
		memcpy(v[j], tmp, sizeof(tmp));
	}
	if ((st = st_kernel_get(rt, "strata_optimizer", "max_norm", NULL, &k, err)))
		return st;
	strata_arg a[20];
	uint32_t na = 0;
	a[na++] = strata_arg_tensor(p->w);
	a[na++] = strata_arg_int(slices);
	a[na++] = strata_arg_int(members);
	a[na++] = strata_arg_float((float)d->max_value);
	for (int i = 0; i < 4; i++)
		a[na++] = strata_arg_int(kdim[i]);
	for (int i = 0; i < 4; i++)
		a[na++] = strata_arg_int(kstr[i]);
	for (int i = 0; i < 4; i++)
		a[na++] = strata_arg_int(rdim[i]);
	for (int i = 0; i < 4; i++)
		a[na++] = strata_arg_int(rstr[i]);
	size_t global = (size_t)slices;
	return st_launch(rt, p->layer->name, k, 1, &global, NULL, na, a, err);
}

/* The constraints, after the update of every weight. */
static strata_status constrain_all(strata_runtime *rt, const st_optimizer *opt, strata_error *err)
{
	for (size_t i = 0; i < opt->n_params; i++) {
		strata_status st;
		if (opt->params[i].decl && opt->params[i].decl->constraint != ST_CONSTRAINT_NONE &&
		    (st = constrain(rt, &opt->params[i], err)))
			return st;
	}
	return STRATA_OK;
}

strata_status st_optimizer_step(strata_runtime *rt, st_optimizer *opt, strata_error *err)
{
	strata_status st;
	strata_kernel *reg = NULL, *update = NULL;
	static const char *const kernels[] = {"sgd", "adadelta", "adam", "rmsprop"};
	if ((st = st_kernel_get(rt, "strata_optimizer", kernels[opt->kind], NULL, &update, err)))
		return st;
	opt->lr = st_lr_at(&opt->schedule, opt->iterations); /* Keras: the schedule of the updates before */
	opt->iterations++;
	rt->phase = "update";
	for (size_t i = 0; i < opt->n_params; i++) {
		st_opt_param *p = &opt->params[i];
		if (p->l1 == 0.0 && p->l2 == 0.0)
			continue;
		if (!reg && (st = st_kernel_get(rt, "strata_optimizer", "regularize", NULL, &reg, err)))
			return st;
		size_t global = p->count;
		strata_arg a[] = {strata_arg_tensor(p->g), strata_arg_tensor(p->w), strata_arg_int((int)p->count),
		                  strata_arg_float((float)p->l1), strata_arg_float((float)p->l2)};
		if ((st = st_launch(rt, p->layer->name, reg, 1, &global, NULL, 5, a, err)))
			return st;
	}
	if (opt->elems == 0)
		return STRATA_OK;
	if ((opt->clipnorm > 0.0 || opt->global_clipnorm > 0.0 || opt->clipvalue > 0.0) &&
	    (st = clip_gradients(rt, opt, err)))
		return st;
	/* TensorFlow's Adam folds both bias corrections into the step size, in float32 as it does:
	 * the kernel's v holds 1 - beta_2 rounded to float32, and only the same rounding here lets
	 * the two cancel (in double the first step came out 7e-6 larger than TensorFlow's). */
	float alpha = (float)opt->lr;
	if (opt->kind == ST_OPT_ADAM) {
		const float local_step = (float)opt->iterations;
		const float beta_1_power = powf((float)opt->beta_1, local_step);
		const float beta_2_power = powf((float)opt->beta_2, local_step);
		alpha = alpha * sqrtf(1.0f - beta_2_power) / (1.0f - beta_1_power);
	}
	strata_tensor *slots[ST_OPT_MAX_SLOTS];
	if (opt->pool_mode == ST_POOL_SHARED) {
		for (uint32_t k = 0; k < ST_OPT_MAX_SLOTS; k++)
			slots[k] = &opt->slot_pools[k].whole;
		if ((st = launch_update(rt, opt, update, alpha, opt->all_weights, opt->all_grads, slots, opt->elems, err)))
			return st;
		return constrain_all(rt, opt, err);
	}
	/* STRATA_POOL=separate: no buffer holds all the weights, so each tensor gets its own launch. */
	for (size_t i = 0; i < opt->n_params; i++) {
		st_opt_param *p = &opt->params[i];
		for (uint32_t k = 0; k < ST_OPT_MAX_SLOTS; k++)
			slots[k] = &p->slots[k];
		if (p->count && (st = launch_update(rt, opt, update, alpha, p->w, p->g, slots, p->count, err)))
			return st;
	}
	return constrain_all(rt, opt, err);
}

size_t st_optimizer_slot_count(const st_optimizer *opt)
{
	return opt->n_params * opt->n_slots;
}

void st_optimizer_slots(st_optimizer *opt, st_named_tensor *out)
{
	size_t k = 0;
	for (size_t i = 0; i < opt->n_params; i++) {
		st_opt_param *p = &opt->params[i];
		const st_weight_decl *d = &p->layer->weights[p->weight];
		for (uint32_t j = 0; j < opt->n_slots; j++, k++) {
			st_named_tensor *t = &out[k];
			memset(t, 0, sizeof(*t));
			snprintf(t->name, sizeof(t->name), "%s/%s:%s", p->layer->name, d->name, opt->slot_names[j]);
			t->kind = ST_TENSOR_OPTIMIZER;
			t->shape = d->shape;
			t->count = d->count;
			t->tensor = &p->slots[j];
		}
	}
}
