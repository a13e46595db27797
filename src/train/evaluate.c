/* Evaluation: the loss and accuracy on the device, the ranking metric on the host. */
#include <stdlib.h>

#include "train/dataset.h"
#include "train/metrics.h"
#include "exec/session.h"

strata_status strata_evaluate(strata_session *s, strata_dataset *ds, uint32_t batch_size, strata_eval_result *result,
                              strata_error *err)
{
	strata_model *m = s->model;
	uint32_t bs = batch_size && batch_size <= s->max_batch ? batch_size : s->max_batch;
	uint64_t classes = st_model_output_elems(m);
	strata_status st;
	if ((st = st_session_check_data(s, ds, "evaluation", err)) || (st = st_loss_prepare(s, err)) || (st = st_dataset_set_order(ds, false, 0, 0, err)) ||
	    (st = st_loss_zero_sums(s, err)))
		return st;
	float *scores = malloc((size_t)ds->n * classes * sizeof(float));
	int *labels = malloc((size_t)ds->n * sizeof(int));
	if (!scores || !labels) {
		st = st_fail(err, STRATA_ERR_NO_MEMORY, "out of memory for %u predictions", ds->n);
		goto out_free;
	}
	for (uint32_t start = 0; start < ds->n; start += bs) {
		uint32_t n = ds->n - start < bs ? ds->n - start : bs;
		if ((st = st_dataset_gather(ds, start, n, &s->input, &s->batch_labels, err)) ||
		    (st = st_session_forward_device(s, n, false, err)) || (st = st_loss_compute(s, n, err)) ||
		    (st = st_tensor_read(s->rt, st_session_output(s), 0, scores + (size_t)start * classes,
		                         (size_t)n * classes * sizeof(float), err)))
			goto out_free;
	}
	double loss_sum, correct_sum, reg;
	if ((st = st_loss_read_sums(s, &loss_sum, &correct_sum, &reg, err)))
		goto out_free;
	for (uint32_t i = 0; i < ds->n; i++)
		labels[i] = ds->host_labels[i];
	result->count = ds->n;
	result->loss = loss_sum / ds->n + reg;
	result->accuracy = correct_sum / ds->n;
	result->lrap = st_lrap(scores, labels, ds->n, classes);
out_free:
	free(scores);
	free(labels);
	return st;
}
