/* Data-parallel training steps (parallel.h). */
#include "train/parallel.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/error.h"

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* The optimizer's gradients: one pool, or (STRATA_POOL=separate) one tensor per weight. */
static size_t gradient_floats(const strata_session *s)
{
	if (s->opt.pool_mode == ST_POOL_SHARED)
		return (size_t)s->opt.elems;
	size_t n = 0;
	for (size_t i = 0; i < s->opt.n_params; i++)
		n += (size_t)s->opt.params[i].count;
	return n;
}

/* Copies every gradient between the device and `host` (one float array in parameter order):
 * to the host when `to_host`, else back to the device. */
static strata_status copy_gradients(strata_session *s, float *host, bool to_host, strata_error *err)
{
	/* A shared pool holds them all in one buffer: one copy. */
	bool pool = s->opt.pool_mode == ST_POOL_SHARED;
	size_t at = 0, buffers = pool ? 1 : s->opt.n_params;
	for (size_t i = 0; i < buffers; i++) {
		strata_tensor *t = pool ? s->opt.all_grads : s->opt.params[i].g;
		size_t count = pool ? (size_t)s->opt.elems : (size_t)s->opt.params[i].count;
		strata_status st = !count ? STRATA_OK
		                   : to_host ? st_tensor_read(s->rt, t, 0, host + at, count * sizeof(float), err)
		                             : st_tensor_write(s->rt, t, 0, host + at, count * sizeof(float), err);
		if (st)
			return st;
		at += count;
	}
	return STRATA_OK;
}

strata_status st_parallel_init(st_parallel *p, strata_session *s, const strata_parallel *par, uint32_t batch_size,
                               strata_error *err)
{
	memset(p, 0, sizeof(*p));
	p->par = par;
	if (par->ranks == 0 || par->rank >= par->ranks)
		return st_fail(err, STRATA_ERR_INVALID, "rank %u of %u ranks", par->rank, par->ranks);
	if (s->n_heads == 0)
		return st_fail(err, STRATA_ERR_INVALID,
		               "a model that trains itself (no loss: a self-organizing map) cannot train on several ranks");
	if (par->ranks > 1 && !par->sum)
		return st_fail(err, STRATA_ERR_INVALID, "data-parallel training over %u ranks needs a sum", par->ranks);
	if (par->shards && (par->shards % par->ranks || (par->ranks > 1 && !par->gather)))
		return st_fail(err, STRATA_ERR_INVALID,
		               "deterministic training: %u shards do not divide among %u ranks, or no gather", par->shards,
		               par->ranks);
	if (!par->shards && batch_size < par->ranks)
		return st_fail(err, STRATA_ERR_INVALID, "a batch of %u samples cannot be shared by %u ranks", batch_size,
		               par->ranks);
	p->floats = gradient_floats(s);
	size_t mine = (par->shards ? par->shards / par->ranks : 1) * p->floats + 1;
	p->counts = calloc(par->ranks, sizeof(*p->counts));
	p->mine = malloc(mine * sizeof(float));
	p->all = par->shards ? malloc(mine * par->ranks * sizeof(float)) : NULL;
	if (!p->counts || !p->mine || (par->shards && !p->all)) {
		st_parallel_release(p);
		return st_fail(err, STRATA_ERR_NO_MEMORY, "out of memory for the gradients' host staging (%zu floats)",
		               mine * (par->shards ? par->ranks : 1));
	}
	return STRATA_OK;
}

void st_parallel_release(st_parallel *p)
{
	free(p->counts);
	free(p->mine);
	free(p->all);
	memset(p, 0, sizeof(*p));
}

/* Forward, loss and backward of samples [start + offset, + count) of the epoch's order, as part
 * of a global batch of n, and its gradients into `out`. */
static strata_status slice(strata_session *s, strata_dataset *train, uint32_t start, uint32_t offset, uint32_t count,
                           uint32_t n, float *out, size_t floats, strata_error *err)
{
	if (count == 0) {
		memset(out, 0, floats * sizeof(float));
		return STRATA_OK;
	}
	s->sample_offset = offset;
	s->loss_batch = n;
	strata_status st;
	if ((st = st_dataset_gather_session(train, start + offset, count, s, true, err)) ||
	    (st = st_session_forward_device(s, count, true, err)) || (st = st_loss_compute(s, count, err)) ||
	    (st = st_session_backward(s, count, true, NULL, err)))
		goto out;
	st = copy_gradients(s, out, true, err);
out:
	s->sample_offset = 0;
	s->loss_batch = 0;
	return st;
}

/* Even slices: the first n % ranks ranks take one more. */
static void even(uint32_t n, uint32_t ranks, uint32_t *counts)
{
	for (uint32_t r = 0; r < ranks; r++)
		counts[r] = n / ranks + (r < n % ranks);
}

/* The fast step: this rank's slice, the sum of every rank's gradients. */
static strata_status fast_step(st_parallel *p, strata_session *s, strata_dataset *train, uint32_t start, uint32_t n,
                               bool *stop, strata_error *err)
{
	const strata_parallel *par = p->par;
	if (par->split)
		par->split(par->user, n, p->seconds, p->counts);
	else
		even(n, par->ranks, p->counts);
	uint64_t total = 0;
	uint32_t offset = 0;
	for (uint32_t r = 0; r < par->ranks; r++) {
		total += p->counts[r];
		if (r < par->rank)
			offset += p->counts[r];
	}
	if (total != n)
		return st_fail(err, STRATA_ERR_INVALID, "the ranks' slices of a batch of %u samples add up to %llu", n,
		               (unsigned long long)total);
	double t0 = now_s();
	strata_status st = slice(s, train, start, offset, p->counts[par->rank], n, p->mine, p->floats, err);
	if (st)
		return st;
	p->seconds = now_s() - t0;
	p->mine[p->floats] = *stop ? 1.0f : 0.0f;
	if (par->ranks > 1 && (st = par->sum(par->user, p->mine, p->floats + 1, err)))
		return st;
	*stop = p->mine[p->floats] > 0.0f;
	return copy_gradients(s, p->mine, false, err);
}

/* The deterministic step: this rank's shards one by one, every shard to every rank, their sum in
 * shard order. */
static strata_status deterministic_step(st_parallel *p, strata_session *s, strata_dataset *train, uint32_t start,
                                        uint32_t n, bool *stop, strata_error *err)
{
	const strata_parallel *par = p->par;
	uint32_t k = par->shards, per = k / par->ranks, base = n / k, extra = n % k;
	double t0 = now_s();
	p->counts[par->rank] = 0;
	for (uint32_t i = 0; i < per; i++) {
		uint32_t j = par->rank * per + i;
		uint32_t offset = j * base + (j < extra ? j : extra), count = base + (j < extra);
		p->counts[par->rank] += count;
		strata_status st = slice(s, train, start, offset, count, n, p->mine + (size_t)i * p->floats, p->floats, err);
		if (st)
			return st;
	}
	p->seconds = now_s() - t0;
	size_t block = (size_t)per * p->floats + 1;
	p->mine[block - 1] = *stop ? 1.0f : 0.0f;
	strata_status st;
	if (par->ranks > 1) {
		if ((st = par->gather(par->user, p->mine, block, p->all, err)))
			return st;
	} else {
		memcpy(p->all, p->mine, block * sizeof(float));
	}
	/* Shard j's gradients sit at rank j / per's block, row j % per: the sum runs over them in
	 * shard order, whoever computed them; the result goes to `mine`. */
	*stop = false;
	for (uint32_t r = 0; r < par->ranks; r++)
		*stop |= p->all[r * block + block - 1] > 0.0f;
	float *sum = p->mine;
	memcpy(sum, p->all, p->floats * sizeof(float));
	for (uint32_t j = 1; j < k; j++) {
		const float *g = p->all + (size_t)(j / per) * block + (size_t)(j % per) * p->floats;
		for (size_t i = 0; i < p->floats; i++)
			sum[i] += g[i];
	}
	return copy_gradients(s, sum, false, err);
}

strata_status st_parallel_step(st_parallel *p, strata_session *s, strata_dataset *train, uint32_t start, uint32_t n,
                               bool *stop, strata_error *err)
{
	strata_status st = p->par->shards ? deterministic_step(p, s, train, start, n, stop, err)
	                                  : fast_step(p, s, train, start, n, stop, err);
	if (st || (st = st_optimizer_step(s->rt, &s->opt, err)) || (st = st_session_throttle(s, err)))
		return st;
	s->step++;
	return STRATA_OK;
}

strata_status st_parallel_sum_figures(st_parallel *p, double *values, size_t count, strata_error *err)
{
	if (p->par->ranks < 2 || count == 0)
		return STRATA_OK;
	float *f = malloc(count * sizeof(float));
	if (!f)
		return st_fail(err, STRATA_ERR_NO_MEMORY, "out of memory");
	for (size_t i = 0; i < count; i++)
		f[i] = (float)values[i];
	strata_status st = p->par->sum(p->par->user, f, count, err);
	for (size_t i = 0; !st && i < count; i++)
		values[i] = f[i];
	free(f);
	return st;
}
