/* The last part of `strata tune`: the launch-time tunables of Strata's own kernels (tunables.h:
 * vector widths and work-group sizes of im2col, col2im, pooling, bias sums, dropout, softmax
 * and the optimizer's update), one at a time over its legal values, each value kept only if it
 * is faster and leaves the results unchanged.
 *
 * A candidate runs the model's training step (forward, backward and, for the timing, the
 * optimizer's update) in a fresh session, so every layer sees one set of values for its whole
 * life, on a fixed pseudo-random batch (every model input) and output gradient (every output's).
 * Its network outputs, every weight gradient and every weight after one update must match those
 * of the values in force when the search began (only the summation order may differ), before its
 * time counts: the fastest window of a few steps. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "exec/session.h"
#include "tune/tuner_private.h"

#define WARM_STEPS 2
#define WINDOWS 3
#define WINDOW_STEPS 3
/* The largest difference allowed, relative to the buffer's largest magnitude: the order of a
 * float sum over ~10^5 terms, far below what a wrong index or a missed element gives. */
#define REL_TOL 1e-4
/* A value must beat the best so far by this much to replace it: runs of one value vary by a
 * few percent on a quiet machine. */
#define MARGIN 0.98

/* The step's results: every output, then every weight gradient and updated weight, layer by layer. */
typedef struct results {
	float *v;
	size_t n;
} results;

static void fill_pseudo_random(float *x, size_t n, uint64_t seed)
{
	for (size_t i = 0; i < n; i++) {
		seed = seed * 6364136223846793005ull + 1442695040888963407ull;
		x[i] = (float)((seed >> 40) & 0xFFFF) / 65536.0f - 0.25f;
	}
}

static strata_status upload_random(strata_runtime *rt, strata_tensor *t, uint64_t seed, strata_error *err)
{
	size_t n = t->bytes / sizeof(float);
	float *host = malloc(n ? n * sizeof(float) : 1);
	if (!host)
		return st_fail(err, STRATA_ERR_NO_MEMORY, "out of memory");
	fill_pseudo_random(host, n, seed);
	strata_status st = st_tensor_write(rt, t, 0, host, n * sizeof(float), err);
	free(host);
	return st;
}

strata_status st_tuner_feed_step(strata_session *s, strata_error *err)
{
	strata_model *m = s->model;
	strata_status st = STRATA_OK;
	for (uint32_t v = 0; v < m->n_inputs && st == STRATA_OK; v++) {
		strata_tensor *t = st_session_value(s, v);
		if (m->inputs[v].shape.dtype == STRATA_DTYPE_INT32) {
			cl_int zero = 0;
			cl_int rc = t->bytes ? clEnqueueFillBuffer(s->rt->queue, t->mem, &zero, sizeof(zero), 0, t->bytes, 0,
			                                           NULL, NULL)
			                     : CL_SUCCESS;
			if (rc != CL_SUCCESS)
				st = st_cl_fail(err, rc, "clearing input '%s' of the tuner's step", m->inputs[v].name);
		} else {
			st = upload_random(s->rt, t, 1 + 2 * (uint64_t)v, err);
		}
	}
	for (size_t k = 0; k < m->n_outputs && st == STRATA_OK; k++)
		st = upload_random(s->rt, st_session_layer_grad(s, m->outputs[k]), 2 + 2 * (uint64_t)k, err);
	return st;
}

/* Values per sample of every model output together. */
static size_t output_elems(const strata_model *m)
{
	size_t n = 0;
	for (size_t k = 0; k < m->n_outputs; k++)
		n += st_shape_elems(&m->layers[m->outputs[k]].out);
	return n;
}

/* Every output, then every weight gradient and every updated weight, layer by layer. */
static strata_status read_results(strata_session *s, uint32_t batch, results *out, strata_error *err)
{
	strata_model *m = s->model;
	size_t n = (size_t)batch * output_elems(m);
	for (size_t i = 0; i < m->n_layers; i++)
		for (uint32_t w = 0; w < m->layers[i].n_weights; w++)
			n += (s->binds[i].grads[w].bytes + s->binds[i].weights[w].bytes) / sizeof(float);
	out->v = malloc((n ? n : 1) * sizeof(float));
	out->n = n;
	if (!out->v)
		return st_fail(err, STRATA_ERR_NO_MEMORY, "out of memory");
	size_t at = 0;
	strata_status st = STRATA_OK;
	for (size_t k = 0; k < m->n_outputs && st == STRATA_OK; k++) {
		size_t count = (size_t)batch * st_shape_elems(&m->layers[m->outputs[k]].out);
		st = st_tensor_read(s->rt, &s->binds[m->outputs[k]].output, 0, out->v + at, count * sizeof(float), err);
		at += count;
	}
	for (size_t i = 0; i < m->n_layers && st == STRATA_OK; i++)
		for (uint32_t w = 0; w < m->layers[i].n_weights && st == STRATA_OK; w++) {
			strata_tensor *t[2] = {&s->binds[i].grads[w], &s->binds[i].weights[w]};
			for (int j = 0; j < 2 && st == STRATA_OK; j++) {
				st = st_tensor_read(s->rt, t[j], 0, out->v + at, t[j]->bytes, err);
				at += t[j]->bytes / sizeof(float);
			}
		}
	return st;
}

static strata_status step(strata_session *s, uint32_t batch, strata_error *err)
{
	strata_status st;
	if ((st = st_session_forward_device(s, batch, true, err)) ||
	    (st = st_session_backward(s, batch, false, NULL, err)))
		return st;
	return st_optimizer_step(s->rt, &s->opt, err);
}

static bool same_results(const results *a, const results *b)
{
	if (a->n != b->n)
		return false;
	double big = 0;
	for (size_t i = 0; i < a->n; i++)
		big = fmax(big, fabs(a->v[i]));
	for (size_t i = 0; i < a->n; i++)
		if (!(fabs((double)a->v[i] - b->v[i]) <= REL_TOL * big)) /* NaN fails too */
			return false;
	return true;
}

/* One candidate: the values in rt->tunables, in a fresh session. `out` receives its results;
 * *seconds the fastest window's time per step (INFINITY when not timed). */
static strata_status run_candidate(strata_runtime *rt, strata_model *model, uint32_t batch, bool timed,
                                   results *out, double *seconds, strata_error *err)
{
	*seconds = INFINITY;
	strata_session *s = NULL;
	strata_status st = strata_session_create(rt, model, batch, 1, &s, err);
	if (st)
		return st;
	if ((st = st_session_enable_training(s, err)) || (st = st_tuner_feed_step(s, err)) || (st = step(s, batch, err)) || (st = read_results(s, batch, out, err)))
		goto out_destroy;
	for (int i = 0; timed && i < WARM_STEPS + WINDOWS * WINDOW_STEPS; i++) {
		double t0 = st_tuner_now();
		for (int j = 0; j < (i < WARM_STEPS ? 1 : WINDOW_STEPS); j++)
			if ((st = step(s, batch, err)))
				goto out_destroy;
		if ((st = st_finish(rt, err)))
			goto out_destroy;
		double per_step = (st_tuner_now() - t0) / WINDOW_STEPS;
		if (i >= WARM_STEPS && per_step < *seconds)
			*seconds = per_step;
	}
out_destroy:
	strata_session_destroy(s);
	return st;
}

strata_status st_tune_kernel_tunables(strata_runtime *rt, strata_model *model, uint32_t batch, double budget,
                                      FILE *report, st_tunables *best, double *before_s, double *after_s,
                                      strata_error *err)
{
	st_tunables start = rt->tunables;
	*best = start;
	*before_s = *after_s = INFINITY;
	results ref = {0}, got = {0};
	double deadline = st_tuner_now() + budget;
	strata_status st = run_candidate(rt, model, batch, true, &ref, before_s, err);
	if (st)
		goto out;
	*after_s = *before_s;
	if (report) {
		fprintf(report, "Strata's kernels' tunables (%.0f s):", budget);
		for (int t = 0; t < ST_TUNABLE_COUNT; t++)
			fprintf(report, " %s=%zu", st_tunable_name(t), start.v[t]);
		fprintf(report, ", %.2f ms per step\n", *before_s * 1e3);
	}
	for (int t = 0; t < ST_TUNABLE_COUNT; t++)
		for (size_t i = 0; i < st_tunable_choice_count(t) && st_tuner_now() < deadline; i++) {
			size_t value = st_tunable_choice(t, i);
			if (value == best->v[t])
				continue;
			rt->tunables = *best;
			rt->tunables.v[t] = value;
			double secs;
			free(got.v);
			got = (results){0};
			if ((st = run_candidate(rt, model, batch, true, &got, &secs, err)))
				goto out;
			bool right = same_results(&ref, &got);
			if (report)
				fprintf(report, "  %s=%zu: %.2f ms%s\n", st_tunable_name(t), value, secs * 1e3,
				        right ? "" : ", DIFFERENT RESULTS, rejected");
			if (right && secs < MARGIN * *after_s) {
				*after_s = secs;
				*best = rt->tunables;
			}
		}
out:
	rt->tunables = st == STRATA_OK ? *best : start;
	free(ref.v);
	free(got.v);
	return st;
}
