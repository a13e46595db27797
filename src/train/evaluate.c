/* Evaluation: the losses and accuracies on the device, the ranking metric on the host; for each
 * output with a loss, and their total as Keras reports it. */
#include <stdlib.h>

#include "train/dataset.h"
#include "train/metrics.h"
#include "exec/session.h"

strata_status strata_evaluate_outputs(strata_session *s, strata_dataset *ds, uint32_t batch_size,
                                      strata_eval_result *total, strata_eval_result *outputs, size_t n_outputs,
                                      strata_error *err)
{
	uint32_t bs = batch_size && batch_size <= s->max_batch ? batch_size : s->max_batch;
	strata_status st;
	if ((st = st_session_check_data(s, ds, "evaluation", err)) || (st = st_loss_prepare(s, err)) ||
	    (st = st_dataset_set_order(ds, false, 0, 0, err)) || (st = st_loss_zero_sums(s, err)))
		return st;
	size_t n = s->n_heads;
	if (outputs && n_outputs != n)
		return st_fail(err, STRATA_ERR_INVALID, "%zu output figures asked, the model has %zu outputs with a loss",
		               n_outputs, n);
	float **scores = calloc(n, sizeof(*scores));
	int *labels = malloc((size_t)ds->n * sizeof(int));
	double *sums = malloc(2 * n * sizeof(double));
	if (!scores || !labels || !sums) {
		st = st_fail(err, STRATA_ERR_NO_MEMORY, "out of memory for %u predictions", ds->n);
		goto out_free;
	}
	for (size_t h = 0; h < n; h++)
		if (!(scores[h] = malloc((size_t)ds->n * s->heads[h].classes * sizeof(float)))) {
			st = st_fail(err, STRATA_ERR_NO_MEMORY, "out of memory for %u predictions", ds->n);
			goto out_free;
		}
	for (uint32_t start = 0; start < ds->n; start += bs) {
		uint32_t b = ds->n - start < bs ? ds->n - start : bs;
		if ((st = st_dataset_gather_session(ds, start, b, s, true, err)) ||
		    (st = st_session_forward_device(s, b, false, err)) || (st = st_loss_compute(s, b, err)))
			goto out_free;
		for (size_t h = 0; h < n; h++) {
			size_t c = s->heads[h].classes;
			strata_tensor *y = st_session_value(s, st_layer_value(s->model, s->heads[h].layer));
			if ((st = st_tensor_read(s->rt, y, 0, scores[h] + (size_t)start * c, (size_t)b * c * sizeof(float), err)))
				goto out_free;
		}
	}
	double reg;
	if ((st = st_loss_read_sums(s, sums, sums + n, &reg, err)))
		goto out_free;
	for (size_t h = 0; h < n; h++) {
		for (uint32_t i = 0; i < ds->n; i++)
			labels[i] = ds->targets[h].host[i];
		strata_eval_result r = {
			.count = ds->n,
			.loss = sums[h] / ds->n,
			.accuracy = sums[n + h] / ds->n,
			.lrap = st_lrap(scores[h], labels, ds->n, s->heads[h].classes),
		};
		if (outputs)
			outputs[h] = r;
		if (h == 0)
			*total = r;
	}
	total->loss = st_loss_total(s, sums, ds->n, reg);
out_free:
	for (size_t h = 0; scores && h < n; h++)
		free(scores[h]);
	free(scores);
	free(labels);
	free(sums);
	return st;
}

strata_status strata_evaluate(strata_session *s, strata_dataset *ds, uint32_t batch_size, strata_eval_result *result,
                              strata_error *err)
{
	return strata_evaluate_outputs(s, ds, batch_size, result, NULL, 0, err);
}
