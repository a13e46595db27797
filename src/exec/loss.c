/* The loss of a batch on the device: per-sample values, correctness and the gradient that starts
 * backpropagation, with running sums that stay on the device until someone shows them. */
#include <string.h>

#include "exec/session.h"

strata_status st_loss_prepare(strata_session *s, strata_error *err)
{
	if (s->loss_ready)
		return STRATA_OK;
	strata_model *m = s->model;
	if (!m->loss)
		return st_fail(err, STRATA_ERR_INVALID, "%s: the model has no loss; add e.g. `loss: categorical_crossentropy`",
		               m->file);
	if (strcmp(m->loss, "mean_squared_error") == 0) {
		s->loss_kind = ST_LOSS_MSE;
	} else {
		s->loss_kind = ST_LOSS_CROSSENTROPY;
		/* The softmax derivative is folded into the loss only where the last layer applies it. */
		const st_param_value *act = m->n_layers ? st_layer_param(&m->layers[m->outputs[0]], "activation") : NULL;
		s->loss_folded = act && act->s && strcmp(act->s, "softmax") == 0;
	}
	strata_status st;
	/* Called again after st_session_enable_training() replaced grad[0] (an evaluation before the
	 * first fit): the buffers of the first call go, or they would leak. */
	st_tensor_release(&s->batch_labels);
	st_tensor_release(&s->sample_loss);
	st_tensor_release(&s->sample_correct);
	st_tensor_release(&s->sums);
	if ((st = st_tensor_alloc(s->rt, &s->batch_labels, (size_t)s->max_batch * sizeof(int), "the batch's labels",
	                          err)) ||
	    (st = st_tensor_alloc(s->rt, &s->sample_loss, (size_t)s->max_batch * sizeof(float), "per-sample losses",
	                          err)) ||
	    (st = st_tensor_alloc(s->rt, &s->sample_correct, (size_t)s->max_batch * sizeof(float),
	                          "per-sample correctness", err)) ||
	    (st = st_tensor_alloc(s->rt, &s->sums, 4 * sizeof(float), "the loss sums", err)))
		return st;
	/* Zeroed now, not only when someone is about to read them: strata_session_train_steps()
	 * accumulates into them without ever reading or resetting them. */
	if ((st = st_loss_zero_sums(s, err)))
		return st;
	if (!s->training_ready && !s->eval_grad.mem) {
		/* Evaluation without training still needs somewhere for the loss gradient to go. */
		uint64_t out = st_model_output_elems(m);
		if ((st = st_tensor_alloc(s->rt, &s->eval_grad, out * s->max_batch * sizeof(float), "the loss gradient",
		                          err)))
			return st;
	}
	s->loss_ready = true;
	return STRATA_OK;
}

strata_status st_loss_zero_sums(strata_session *s, strata_error *err)
{
	return st_tensor_zero(s->rt, s->pool_mode, &s->sums, 0, s->sums.bytes / sizeof(float), "the loss sums", err);
}

strata_status st_loss_compute(strata_session *s, uint32_t batch, strata_error *err)
{
	strata_model *m = s->model;
	strata_kernel *lk, *acc;
	strata_status st;
	const char *name = s->loss_kind == ST_LOSS_MSE ? "mean_squared_error" : "categorical_crossentropy";
	if ((st = st_kernel_get(s->rt, "strata_loss", name, NULL, &lk, err)) ||
	    (st = st_kernel_get(s->rt, "strata_loss", "accumulate", NULL, &acc, err)))
		return st;
	s->rt->phase = "loss";
	int cols = (int)st_model_output_elems(m);
	strata_tensor *y = st_session_output(s);
	strata_arg a[] = {strata_arg_tensor(y),
	                  strata_arg_tensor(&s->batch_labels), /* no float targets: the labels stand in */
	                  strata_arg_tensor(&s->batch_labels),
	                  strata_arg_int(1),
	                  strata_arg_tensor(st_session_output_grad(s)),
	                  strata_arg_tensor(&s->sample_loss),
	                  strata_arg_tensor(&s->sample_correct),
	                  strata_arg_int((int)batch),
	                  strata_arg_int(cols),
	                  strata_arg_int(s->loss_folded),
	                  strata_arg_float(1.0f / (float)batch)};
	size_t global = batch;
	if ((st = st_launch(s->rt, "loss", lk, 1, &global, NULL, 11, a, err)))
		return st;
	strata_arg b[] = {strata_arg_tensor(&s->sample_loss), strata_arg_tensor(&s->sample_correct),
	                  strata_arg_int((int)batch), strata_arg_tensor(&s->sums)};
	size_t g2 = 2 * 64, l2 = 64;
	return st_launch(s->rt, "loss", acc, 1, &g2, &l2, 4, b, err);
}

strata_status st_loss_read_sums(strata_session *s, double *loss_sum, double *correct_sum, double *regularization,
                                strata_error *err)
{
	strata_model *m = s->model;
	strata_kernel *rk = NULL;
	strata_status st;
	if ((st = st_tensor_zero(s->rt, s->pool_mode, &s->sums, 2, 1, "the regularization sum", err)))
		return st;
	for (size_t i = 0; i < m->n_layers; i++) {
		for (uint32_t w = 0; w < m->layers[i].n_weights; w++) {
			const st_weight_decl *d = &m->layers[i].weights[w];
			if (d->l1 == 0.0 && d->l2 == 0.0)
				continue;
			if (!rk && (st = st_kernel_get(s->rt, "strata_loss", "regularization_loss", NULL, &rk, err)))
				return st;
			strata_arg a[] = {strata_arg_tensor(&s->binds[i].weights[w]), strata_arg_int((int)d->count),
			                  strata_arg_float((float)d->l1), strata_arg_float((float)d->l2),
			                  strata_arg_tensor(&s->sums), strata_arg_int(2)};
			size_t g = 64, l = 64;
			if ((st = st_launch(s->rt, "loss", rk, 1, &g, &l, 6, a, err)))
				return st;
		}
	}
	float sums[3];
	if ((st = st_tensor_read(s->rt, &s->sums, 0, sums, sizeof(sums), err)))
		return st;
	*loss_sum = sums[0];
	*correct_sum = sums[1];
	*regularization = sums[2];
	return STRATA_OK;
}
