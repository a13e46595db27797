/* The loss of a batch on the device: for each output with a loss (a head), per-sample values,
 * correctness and the gradient that starts backpropagation there, with running sums that stay on
 * the device until someone shows them. The total is Keras': the heads' losses weighted by
 * loss_weights, plus the regularization terms. */
#include <stdlib.h>
#include <string.h>

#include "exec/session.h"

/* sums[0]: regularization; head h: loss at 1 + 2h, correct at 2 + 2h; after the heads, the
 * activity regularizers' penalties (a sum over samples, like a loss). */
#define SUM_REG 0
#define SUM_LOSS(h) (1 + 2 * (h))
#define SUM_ACTIVITY(s) (1 + 2 * (s)->n_heads)

static bool has_activity(const strata_layer *layer)
{
	return layer->activity_l1 != 0.0 || layer->activity_l2 != 0.0;
}

static strata_status make_heads(strata_session *s, strata_error *err)
{
	strata_model *m = s->model;
	const st_recipe *r = &m->recipe;
	size_t n = 0;
	for (size_t k = 0; k < r->n_outputs; k++)
		n += r->outputs[k].loss != NULL;
	/* A model that trains itself (a self-organizing map) has no loss: no heads. */
	if (n == 0 && strata_model_trains_itself(m))
		return STRATA_OK;
	if (n == 0)
		return st_fail(err, STRATA_ERR_INVALID, "%s: the model has no loss; add e.g. `loss: categorical_crossentropy`",
		               m->file);
	s->heads = calloc(n, sizeof(*s->heads));
	if (!s->heads)
		return st_fail(err, STRATA_ERR_NO_MEMORY, "out of memory");
	for (size_t k = 0; k < r->n_outputs; k++) {
		const st_output_recipe *o = &r->outputs[k];
		if (!o->loss)
			continue;
		st_loss_head *h = &s->heads[s->n_heads++];
		h->output = (uint32_t)k;
		h->layer = m->outputs[k];
		h->weight = (float)o->weight;
		h->classes = (uint32_t)st_shape_elems(&m->layers[h->layer].out);
		if (strcmp(o->loss, "mean_squared_error") == 0) {
			h->kind = ST_LOSS_MSE;
		} else {
			h->kind = ST_LOSS_CROSSENTROPY;
			/* The softmax derivative is folded into the loss only where the output layer applies it. */
			const st_param_value *act = st_layer_param(&m->layers[h->layer], "activation");
			/* An activity regularizer's gradient is a gradient of the output, which folding
			 * would skip. */
			const strata_layer *out = &m->layers[h->layer];
			h->folded = ((act && act->s && strcmp(act->s, "softmax") == 0) ||
			             strcmp(out->type->ops.type, "softmax") == 0) &&
			            !has_activity(out);
			/* One label per sample is one class vector per sample: a softmax over the last of
			 * several axes makes a vector per row, which this loss does not take yet. */
			if (h->folded && out->out.rank > 1 && (uint64_t)out->out.dims[out->out.rank - 1] != h->classes)
				return st_fail(err, STRATA_ERR_UNSUPPORTED,
				               "%s: %s on output '%s': its softmax makes a class vector per row of its "
				               "last axis (%u axes), and the losses take one class vector per sample; "
				               "flatten before the output layer",
				               m->file, o->loss, out->name, out->out.rank);
		}
		strata_status st = st_tensor_alloc(s->rt, &h->labels, (size_t)s->max_batch * sizeof(int),
		                                   "the batch's labels", err);
		if (st)
			return st;
	}
	return STRATA_OK;
}

strata_status st_loss_prepare(strata_session *s, strata_error *err)
{
	if (s->loss_ready)
		return STRATA_OK;
	strata_model *m = s->model;
	strata_status st;
	/* Called again after st_session_enable_training() (an evaluation before the first fit): the
	 * buffers of the first call go, or they would leak. */
	st_loss_release(s);
	if ((st = make_heads(s, err)) ||
	    (st = st_tensor_alloc(s->rt, &s->sample_loss, (size_t)s->max_batch * sizeof(float), "per-sample losses",
	                          err)) ||
	    (st = st_tensor_alloc(s->rt, &s->sample_correct, (size_t)s->max_batch * sizeof(float),
	                          "per-sample correctness", err)) ||
	    (st = st_tensor_alloc(s->rt, &s->sums, (2 + 2 * s->n_heads) * sizeof(float), "the loss sums", err)))
		return st;
	/* Zeroed now, not only when someone is about to read them: strata_session_train_steps()
	 * accumulates into them without ever reading or resetting them. */
	if ((st = st_loss_zero_sums(s, err)))
		return st;
	if (!s->training_ready && !s->eval_grad.mem && s->n_heads > 0) {
		/* Evaluation without training still needs somewhere for the loss gradients to go. */
		uint64_t most = 0;
		for (size_t h = 0; h < s->n_heads; h++)
			most = s->heads[h].classes > most ? s->heads[h].classes : most;
		if ((st = st_tensor_alloc(s->rt, &s->eval_grad, most * s->max_batch * sizeof(float), "the loss gradient",
		                          err)))
			return st;
	}
	(void)m;
	s->loss_ready = true;
	return STRATA_OK;
}

strata_status st_loss_zero_sums(strata_session *s, strata_error *err)
{
	return st_tensor_zero(s->rt, s->pool_mode, &s->sums, 0, s->sums.bytes / sizeof(float), "the loss sums", err);
}

strata_status st_loss_compute(strata_session *s, uint32_t batch, strata_error *err)
{
	strata_kernel *acc;
	strata_status st;
	if ((st = st_kernel_get(s->rt, "strata_loss", "accumulate", NULL, &acc, err)))
		return st;
	s->rt->phase = "loss";
	for (size_t h = 0; h < s->n_heads; h++) {
		st_loss_head *head = &s->heads[h];
		strata_kernel *lk;
		const char *name = head->kind == ST_LOSS_MSE ? "mean_squared_error" : "categorical_crossentropy";
		if ((st = st_kernel_get(s->rt, "strata_loss", name, NULL, &lk, err)))
			return st;
		strata_arg a[] = {strata_arg_tensor(st_session_value(s, st_layer_value(s->model, head->layer))),
		                  strata_arg_tensor(&head->labels), /* no float targets: the labels stand in */
		                  strata_arg_tensor(&head->labels),
		                  strata_arg_int(1),
		                  strata_arg_tensor(st_session_layer_grad(s, head->layer)),
		                  strata_arg_tensor(&s->sample_loss),
		                  strata_arg_tensor(&s->sample_correct),
		                  strata_arg_int((int)batch),
		                  strata_arg_int((int)head->classes),
		                  strata_arg_int(head->folded),
		                  strata_arg_float(head->weight / (float)(s->loss_batch ? s->loss_batch : batch))};
		size_t global = batch;
		if ((st = st_launch(s->rt, "loss", lk, 1, &global, NULL, 11, a, err)))
			return st;
		strata_arg b[] = {strata_arg_tensor(&s->sample_loss), strata_arg_tensor(&s->sample_correct),
		                  strata_arg_int((int)batch), strata_arg_tensor(&s->sums), strata_arg_int(SUM_LOSS(h))};
		size_t g2 = 2 * 64, l2 = 64;
		if ((st = st_launch(s->rt, "loss", acc, 1, &g2, &l2, 5, b, err)))
			return st;
	}
	/* Activity regularizers: l1 * |y| + l2 * y^2 over the batch's outputs of each such layer,
	 * summed over the samples like a loss (st_loss_total divides by the count). */
	strata_kernel *rk = NULL;
	for (size_t i = 0; i < s->model->n_layers; i++) {
		const strata_layer *layer = &s->model->layers[i];
		if (!has_activity(layer))
			continue;
		if (!rk && (st = st_kernel_get(s->rt, "strata_loss", "regularization_loss", NULL, &rk, err)))
			return st;
		uint64_t n = st_shape_elems(&layer->out) * batch;
		strata_arg a[] = {strata_arg_tensor(st_session_value(s, st_layer_value(s->model, i))), strata_arg_int((int)n),
		                  strata_arg_float((float)layer->activity_l1), strata_arg_float((float)layer->activity_l2),
		                  strata_arg_tensor(&s->sums), strata_arg_int((int)SUM_ACTIVITY(s))};
		size_t g = 64, l = 64;
		if ((st = st_launch(s->rt, layer->name, rk, 1, &g, &l, 6, a, err)))
			return st;
	}
	return STRATA_OK;
}

strata_status st_loss_read_sums(strata_session *s, double *loss, double *correct, double *regularization,
                                strata_error *err)
{
	strata_model *m = s->model;
	strata_kernel *rk = NULL;
	strata_status st;
	if ((st = st_tensor_zero(s->rt, s->pool_mode, &s->sums, SUM_REG, 1, "the regularization sum", err)))
		return st;
	for (size_t i = 0; i < m->n_layers; i++) {
		for (uint32_t w = 0; w < m->layers[i].n_weights; w++) {
			const st_weight_decl *d = &m->layers[i].weights[w];
			/* A layer sharing weights holds the owner's: counted once, at the owner. */
			if ((d->l1 == 0.0 && d->l2 == 0.0) || m->layers[i].shares >= 0)
				continue;
			if (!rk && (st = st_kernel_get(s->rt, "strata_loss", "regularization_loss", NULL, &rk, err)))
				return st;
			strata_arg a[] = {strata_arg_tensor(&s->binds[i].weights[w]), strata_arg_int((int)d->count),
			                  strata_arg_float((float)d->l1), strata_arg_float((float)d->l2),
			                  strata_arg_tensor(&s->sums), strata_arg_int(SUM_REG)};
			size_t g = 64, l = 64;
			if ((st = st_launch(s->rt, "loss", rk, 1, &g, &l, 6, a, err)))
				return st;
		}
	}
	size_t n = 2 + 2 * s->n_heads;
	float *sums = malloc(n * sizeof(float));
	if (!sums)
		return st_fail(err, STRATA_ERR_NO_MEMORY, "out of memory");
	if ((st = st_tensor_read(s->rt, &s->sums, 0, sums, n * sizeof(float), err))) {
		free(sums);
		return st;
	}
	for (size_t h = 0; h < s->n_heads; h++) {
		if (loss)
			loss[h] = sums[SUM_LOSS(h)];
		if (correct)
			correct[h] = sums[SUM_LOSS(h) + 1];
	}
	*regularization = sums[SUM_REG];
	s->activity_sum = sums[SUM_ACTIVITY(s)];
	free(sums);
	return STRATA_OK;
}

double st_loss_total(const strata_session *s, const double *loss_sums, uint32_t count, double regularization)
{
	double total = regularization;
	for (size_t h = 0; h < s->n_heads && count; h++)
		total += s->heads[h].weight * (loss_sums[h] / count);
	if (count)
		total += s->activity_sum / count;
	return total;
}
