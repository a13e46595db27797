/* Training: epochs of shuffled batches through forward, loss, backward and the optimizer, all on
 * the device; the host reads only the running loss sums, when it shows them. */
#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "train/dataset.h"
#include "train/parallel.h"
#include "exec/session.h"

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}


static strata_status train_step(strata_session *s, strata_dataset *train, uint32_t start, uint32_t batch,
                                strata_error *err)
{
	strata_status st;
	/* A model that trains itself (no loss): its layers learn in the training forward pass. */
	if (s->n_heads == 0) {
		if ((st = st_dataset_gather_session(train, start, batch, s, false, err)) ||
		    (st = st_session_forward_device(s, batch, true, err)) || (st = st_session_throttle(s, err)))
			return st;
		s->step++;
		return STRATA_OK;
	}
	if ((st = st_dataset_gather_session(train, start, batch, s, true, err)) ||
	    (st = st_session_forward_device(s, batch, true, err)) || (st = st_loss_compute(s, batch, err)) ||
	    (st = st_session_backward(s, batch, true, NULL, err)) ||
	    (st = st_optimizer_step(s->rt, &s->opt, err)) || (st = st_session_throttle(s, err)))
		return st;
	s->step++;
	return STRATA_OK;
}

/* Fills the running figures of `p` from the device's sums of `seen` samples (a wait for the
 * queue): the total loss, the first head's accuracy, and each head's loss and accuracy; the speed
 * from `images` (every rank's samples). With other ranks and `par` (a collective call: every rank
 * makes it, at an epoch's end), the sums and samples of every rank. */
static strata_status measure(strata_session *s, strata_progress *p, double *outputs, uint32_t seen, uint32_t images,
                             double t0, st_parallel *par, strata_error *err)
{
	double reg = 0.0;
	size_t n = s->n_heads;
	/* The steps run asynchronously: the clock stops only once the queue has done them. */
	strata_status st = n > 0 ? st_loss_read_sums(s, outputs, outputs + n, &reg, err) : st_finish(s->rt, err);
	if (st)
		return st;
	double elapsed = now_s() - t0;
	if (par && n > 0) {
		outputs[2 * n] = seen;
		if ((st = st_parallel_sum_figures(par, outputs, 2 * n + 1, err)))
			return st;
		seen = (uint32_t)outputs[2 * n];
	}
	p->epoch_seconds = elapsed;
	p->images_per_second = elapsed > 0 ? images / elapsed : 0.0;
	p->eta_seconds = p->batch ? elapsed * (p->batches - p->batch) / p->batch : 0.0;
	if (n == 0) { /* no loss: a model that trains itself */
		p->loss = p->accuracy = NAN;
		p->n_outputs = 0;
		return STRATA_OK;
	}
	p->loss = st_loss_total(s, outputs, seen, reg);
	p->accuracy = outputs[n] / seen;
	for (size_t h = 0; h < n; h++) {
		outputs[h] /= seen;
		outputs[n + h] /= seen;
	}
	p->n_outputs = n;
	p->output_loss = outputs;
	p->output_accuracy = outputs + n;
	return STRATA_OK;
}

/* The epochs of strata_fit(), from where the session stands. */
static strata_status run_epochs(strata_session *s, strata_dataset *train, strata_dataset *validation,
                                const strata_fit_options *options, uint32_t bs, double *figures,
                                strata_eval_result *val, st_parallel *par, strata_error *err)
{
	strata_fit_options o = *options;
	strata_status st;
	size_t n = s->n_heads;
	uint32_t batches = (train->n + bs - 1) / bs;
	/* A checkpoint taken mid-epoch (an interruption) holds the steps of its partial epoch: the
	 * epoch's order is fixed by (seed, epoch), so training goes on from the next batch. */
	uint64_t done_in_epoch = s->step > s->epoch * batches ? s->step - s->epoch * batches : 0;
	uint32_t first = done_in_epoch < batches ? (uint32_t)done_in_epoch : 0;
	/* 64 bits: `epochs` may be UINT32_MAX, and a 32-bit counter would wrap instead of ending. */
	for (uint64_t e = s->epoch + 1; e <= o.epochs; e++, first = 0) {
		uint32_t epoch = (uint32_t)e; /* the checkpoint reader keeps s->epoch below UINT32_MAX */
		strata_progress p = {.epoch = epoch, .epochs = o.epochs, .batches = batches};
		if ((st = st_dataset_set_order(train, !o.no_shuffle, s->seed, epoch, err)) ||
		    (st = st_loss_zero_sums(s, err)))
			return st;
		double t0 = now_s(), last = t0;
		uint32_t seen = 0, images = 0;
		for (uint32_t b = first; b < batches; b++) {
			uint32_t start = b * bs, n = train->n - start < bs ? train->n - start : bs;
			/* Every rank stops after the same step: any rank's wish travels with the gradients. */
			bool stop = o.stop && *o.stop;
			if ((st = par ? st_parallel_step(par, s, train, start, n, &stop, err) : train_step(s, train, start, n, err)))
				return st;
			seen += par ? par->counts[par->par->rank] : n;
			images += n;
			p.batch = b + 1;
			if (stop && b + 1 < batches) {
				if (o.save_path && (st = strata_session_save(s, o.save_path, err)))
					return st;
				return st_fail(err, STRATA_ERR_INTERRUPTED,
				               "interrupted in epoch %u after batch %u of %u%s%s", epoch, b + 1, batches,
				               o.save_path ? "; checkpoint saved to " : "", o.save_path ? o.save_path : "");
			}
			if (o.progress && b + 1 < batches && now_s() - last >= o.progress_interval) {
				/* Mid-epoch, this rank's figures: ranks show progress at different times. */
				if ((st = measure(s, &p, figures, seen, images, t0, NULL, err)))
					return st;
				o.progress(o.progress_user, &p);
				last = now_s();
			}
		}
		/* The epoch's figures, before validation reuses the sums. */
		if ((st = measure(s, &p, figures, seen, images, t0, par, err)))
			return st;
		p.epoch_done = true;
		if (validation && n == 0) {
			/* A self-organizing map: its quantization and topographic errors. */
			strata_map_result r;
			if ((st = strata_evaluate_map(s, validation, bs, &r, err)))
				return st;
			p.has_validation = true;
			p.val_loss = r.quantization_error;
			p.val_accuracy = r.topographic_error;
		} else if (validation) {
			strata_eval_result r;
			if ((st = strata_evaluate_outputs(s, validation, bs, &r, val, n, err)))
				return st;
			p.has_validation = true;
			p.val_loss = r.loss;
			p.val_accuracy = r.accuracy;
			for (size_t h = 0; h < n; h++) {
				figures[2 * n + h] = val[h].loss;
				figures[3 * n + h] = val[h].accuracy;
			}
			p.val_output_loss = figures + 2 * n;
			p.val_output_accuracy = figures + 3 * n;
		}
		s->epoch = epoch;
		if (o.epoch_end)
			o.epoch_end(o.progress_user, &p);
		if (o.save_path) {
			if ((st = strata_session_save(s, o.save_path, err)))
				return st;
			p.checkpoint_saved = true;
		}
		if (o.progress)
			o.progress(o.progress_user, &p);
		if (o.stop && *o.stop && epoch < o.epochs)
			return st_fail(err, STRATA_ERR_INTERRUPTED, "interrupted after epoch %u%s%s", epoch,
			               o.save_path ? "; checkpoint saved to " : "", o.save_path ? o.save_path : "");
	}
	return st_finish(s->rt, err);
}

strata_status strata_fit(strata_session *s, strata_dataset *train, strata_dataset *validation,
                         const strata_fit_options *options, strata_error *err)
{
	strata_fit_options o = {.size = sizeof(o), .progress_interval = 1.0};
	memcpy(&o, options, options->size < sizeof(o) ? options->size : sizeof(o));
	if (options->size < offsetof(strata_fit_options, parallel) + sizeof(o.parallel))
		o.parallel = NULL;
	uint32_t bs = o.batch_size ? o.batch_size : s->max_batch;
	uint64_t batches = bs ? (train->n + (uint64_t)bs - 1) / bs : 0;
	s->total_steps = o.epochs && batches > UINT64_MAX / o.epochs ? UINT64_MAX : o.epochs * batches;
	if (bs > s->max_batch)
		return st_fail(err, STRATA_ERR_INVALID, "batch size %u is larger than the session's %u", bs, s->max_batch);
	strata_status st;
	if ((st = st_session_check_data(s, train, "training", err)) ||
	    (validation && (st = st_session_check_data(s, validation, "validation", err))) ||
	    (st = st_session_enable_training(s, err)) || (st = st_loss_prepare(s, err)))
		return st;
	if (o.resume_path && (st = strata_session_load(s, o.resume_path, err)))
		return st;
	st_parallel par;
	if (o.parallel && (st = st_parallel_init(&par, s, o.parallel, bs, err)))
		return st;
	/* Per head: training loss and accuracy, then validation's. */
	double *figures = malloc(4 * (s->n_heads ? s->n_heads : 1) * sizeof(double));
	strata_eval_result *val = malloc((s->n_heads ? s->n_heads : 1) * sizeof(*val));
	if (!figures || !val)
		st = st_fail(err, STRATA_ERR_NO_MEMORY, "out of memory");
	else
		st = run_epochs(s, train, validation, &o, bs, figures, val, o.parallel ? &par : NULL, err);
	free(figures);
	free(val);
	if (o.parallel)
		st_parallel_release(&par);
	return st;
}

/* Consecutive batches of `ds`, wrapping around, for the benchmark loops. */
static uint32_t bench_start(const strata_dataset *ds, uint64_t i, uint32_t batch)
{
	uint32_t per_pass = ds->n / batch;
	return per_pass ? (uint32_t)(i % per_pass) * batch : 0;
}

strata_status strata_session_train_steps(strata_session *s, strata_dataset *ds, uint32_t batch, uint32_t steps,
                                         strata_error *err)
{
	strata_status st;
	if (batch == 0 || batch > s->max_batch || batch > ds->n)
		return st_fail(err, STRATA_ERR_INVALID, "batch of %u: the session holds %u, the data set %u", batch,
		               s->max_batch, ds->n);
	if ((st = st_session_check_data(s, ds, "benchmark", err)) || (st = st_session_enable_training(s, err)) ||
	    (st = st_loss_prepare(s, err)))
		return st;
	for (uint32_t i = 0; i < steps; i++)
		if ((st = train_step(s, ds, bench_start(ds, s->step, batch), batch, err)))
			return st;
	return st_finish(s->rt, err);
}

strata_status strata_session_infer_steps(strata_session *s, strata_dataset *ds, uint32_t batch, uint32_t steps,
                                         strata_error *err)
{
	strata_status st;
	if (batch == 0 || batch > s->max_batch || batch > ds->n)
		return st_fail(err, STRATA_ERR_INVALID, "batch of %u: the session holds %u, the data set %u", batch,
		               s->max_batch, ds->n);
	if ((st = st_session_check_data(s, ds, "benchmark", err)))
		return st;
	/* Each batch's predictions come back to the host, as a user of them needs. */
	strata_model *m = s->model;
	size_t bytes = (size_t)batch * sizeof(float) * st_model_output_elems(m);
	float *host = malloc(bytes);
	if (!host)
		return st_fail(err, STRATA_ERR_NO_MEMORY, "out of memory");
	for (uint32_t i = 0; i < steps && st == STRATA_OK; i++) {
		if (!(st = st_dataset_gather_session(ds, bench_start(ds, i, batch), batch, s, false, err)) &&
		    !(st = st_session_forward_device(s, batch, false, err)) && !(st = st_session_throttle(s, err)))
			st = st_tensor_read(s->rt, st_session_output(s), 0, host, bytes, err);
	}
	free(host);
	if (st)
		return st;
	return st_finish(s->rt, err);
}
