/* A served model's worker and queue (served_model.h). */
#include "serve/served_model.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static int fail(char *message, size_t size, const char *fmt, const char *a, const char *b)
{
	snprintf(message, size, fmt, a, b);
	return 1;
}

/* The protocol's view of a loaded model: its inputs' and outputs' names and sample shapes. */
static int describe(const strata_model *model, const char *name, sv_model_info *info, char *message, size_t size)
{
	memset(info, 0, sizeof(*info));
	size_t n_in = strata_model_input_count(model), n_out = strata_model_output_count(model);
	if (n_in > SV_MAX_IO || n_out > SV_MAX_IO)
		return fail(message, size, "model '%s' has more than 8 inputs or outputs%s", name, "");
	info->n_inputs = (uint32_t)n_in;
	info->n_outputs = (uint32_t)n_out;
	info->version = "1";
	for (size_t i = 0; i < n_in; i++) {
		strata_shape s = strata_model_input_shape_at(model, i);
		snprintf(info->inputs[i].name, sizeof(info->inputs[i].name), "%s", strata_model_input_name(model, i));
		info->inputs[i].rank = s.rank;
		memcpy(info->inputs[i].dims, s.dims, sizeof(s.dims));
		info->inputs[i].ids = s.dtype == STRATA_DTYPE_INT32;
	}
	for (size_t k = 0; k < n_out; k++) {
		size_t layer = strata_model_output_layer(model, k);
		strata_shape s = strata_model_output_shape(model, layer);
		snprintf(info->outputs[k].name, sizeof(info->outputs[k].name), "%s", strata_model_layer_name(model, layer));
		info->outputs[k].rank = s.rank;
		memcpy(info->outputs[k].dims, s.dims, sizeof(s.dims));
	}
	double scale = strata_model_data(model).scale;
	info->uint8_scale = scale > 0 ? (float)scale : 1.0f;
	return 0;
}

static bool same_io(const sv_model_info *a, const sv_model_info *b)
{
	if (a->n_inputs != b->n_inputs || a->n_outputs != b->n_outputs)
		return false;
	for (uint32_t i = 0; i < a->n_inputs; i++)
		if (memcmp(&a->inputs[i], &b->inputs[i], sizeof(a->inputs[i])))
			return false;
	for (uint32_t k = 0; k < a->n_outputs; k++)
		if (memcmp(&a->outputs[k], &b->outputs[k], sizeof(a->outputs[k])))
			return false;
	return true;
}

/* The model file and `weights` (NULL: the seed's initial weights) in a new session. */
static int load(sv_model *m, const char *weights, strata_model **model, strata_session **session, char *message,
                size_t size)
{
	strata_error err = {0};
	*model = NULL;
	*session = NULL;
	pthread_mutex_lock(m->load_lock);
	strata_status st = strata_model_load(m->reg, m->yaml_path, model, &err);
	if (st == STRATA_OK)
		st = strata_session_create(m->rt, *model, m->batching.max_batch_size, strata_model_training(*model).seed,
		                           session, &err);
	if (st == STRATA_OK && weights)
		st = strata_session_load(*session, weights, &err);
	pthread_mutex_unlock(m->load_lock);
	if (st == STRATA_OK)
		return 0;
	strata_session_destroy(*session);
	strata_model_free(*model);
	*session = NULL;
	*model = NULL;
	return fail(message, size, "%.480s%s", err.message, "");
}

/* ---- The worker ---------------------------------------------------------------------------- */

/* Part of a job in a batch: its samples [start, start + count) at batch row `row`. */
typedef struct segment {
	sv_job *job;
	uint32_t start, count, row;
} segment;

static uint32_t pending(const sv_model *m)
{
	uint32_t n = 0;
	for (const sv_job *j = m->head; j; j = j->next)
		n += j->req->batch - j->handed;
	return n;
}

/* Takes `job` out of the queue (it is there). */
static void unqueue(sv_model *m, sv_job *job)
{
	sv_job **p = &m->head, *prev = NULL;
	while (*p != job) {
		prev = *p;
		p = &(*p)->next;
	}
	*p = job->next;
	if (m->tail == job)
		m->tail = prev;
	job->next = NULL;
	m->queued--;
}

/* Ends `j` with `status` (its message written): wakes its request thread alone, not every
 * thread waiting on the model. The lock is held. */
static void end_job(sv_job *j, int status)
{
	j->status = status;
	pthread_cond_signal(&j->done);
}

/* Ends the queued jobs that waited past the timeout before any of their samples was computed. */
static void expire(sv_model *m, double t)
{
	if (!m->batching.timeout_us)
		return;
	for (sv_job *j = m->head, *next; j; j = next) {
		next = j->next;
		if (j->handed == 0 && t - j->queued_at > (double)m->batching.timeout_us * 1e-6) {
			unqueue(m, j);
			snprintf(j->message, sizeof(j->message), "the request waited more than %llu us in model '%s''s queue",
			         (unsigned long long)m->batching.timeout_us, m->name);
			end_job(j, 504);
		}
	}
}

/* The batch to form now from `p` pending samples, or 0 to wait for more (until *until). */
static uint32_t batch_now(const sv_model *m, uint32_t p, double *until)
{
	const strata_serving_config *b = &m->batching;
	if (p >= b->max_batch_size || m->stopping)
		return p < b->max_batch_size ? p : b->max_batch_size;
	uint32_t best = 0;
	for (uint32_t i = 0; i < b->n_preferred_batch_sizes; i++)
		if (b->preferred_batch_sizes[i] <= p && b->preferred_batch_sizes[i] > best)
			best = b->preferred_batch_sizes[i];
	if (best)
		return best;
	*until = m->head->queued_at + (double)b->max_queue_delay_us * 1e-6;
	return now() >= *until ? p : 0;
}

static void wait_until(sv_model *m, double until)
{
	struct timespec t;
	clock_gettime(CLOCK_REALTIME, &t);
	double wait = until - now();
	if (wait <= 0)
		return;
	double ns = (double)t.tv_nsec + wait * 1e9;
	t.tv_sec += (time_t)(ns / 1e9);
	t.tv_nsec = (long)(ns - (double)(time_t)(ns / 1e9) * 1e9);
	pthread_cond_timedwait(&m->wake, &m->lock, &t);
}

/* Up to `size` samples from the head of the queue into segs; jobs fully handed leave the queue. */
static uint32_t form(sv_model *m, uint32_t size, segment *segs, uint32_t *n_segs)
{
	uint32_t n = 0;
	double t = now();
	*n_segs = 0;
	for (sv_job *j = m->head, *next; j && n < size; j = next) {
		next = j->next;
		uint32_t take = j->req->batch - j->handed;
		if (take > size - n)
			take = size - n;
		if (j->handed == 0)
			sv_histogram_add(&m->metrics.queue_seconds, t - j->queued_at);
		segs[(*n_segs)++] = (segment){j, j->handed, take, n};
		j->handed += take;
		n += take;
		if (j->handed == j->req->batch)
			unqueue(m, j);
	}
	return n;
}

/* Computes the batch of `segs` (the lock not held): inputs gathered, one run, outputs scattered. */
static strata_status compute(sv_model *m, const segment *segs, uint32_t n_segs, uint32_t n, strata_error *err)
{
	for (uint32_t i = 0; i < m->info.n_inputs; i++) {
		uint64_t e = sv_io_elements(&m->info.inputs[i]);
		for (uint32_t s = 0; s < n_segs; s++)
			memcpy(m->in[i] + segs[s].row * e, segs[s].job->req->inputs[i] + segs[s].start * e,
			       segs[s].count * e * sizeof(float));
	}
	strata_status st = strata_session_run(m->session, (const float *const *)m->in, n, m->out, err);
	if (st != STRATA_OK)
		return st;
	for (uint32_t k = 0; k < m->info.n_outputs; k++) {
		uint64_t e = sv_io_elements(&m->info.outputs[k]);
		for (uint32_t s = 0; s < n_segs; s++)
			if (segs[s].job->outputs[k])
				memcpy(segs[s].job->outputs[k] + segs[s].start * e, m->out[k] + segs[s].row * e,
				       segs[s].count * e * sizeof(float));
	}
	return STRATA_OK;
}

/* A reload asked for: the new session made with the lock released, swapped in under it. */
static void reload(sv_model *m)
{
	uint64_t generation = m->reload_asked;
	char *path = m->reload_path;
	m->reload_path = NULL;
	pthread_mutex_unlock(&m->lock);
	char message[512] = "";
	strata_model *model;
	strata_session *session;
	int rc = load(m, path ? path : m->weights_path, &model, &session, message, sizeof(message));
	sv_model_info info;
	if (!rc && (rc = describe(model, m->name, &info, message, sizeof(message))) == 0 && !same_io(&info, &m->info)) {
		snprintf(message, sizeof(message), "the model file's inputs or outputs changed; restart the server to serve them");
		rc = 1;
	}
	if (rc) {
		strata_session_destroy(session);
		strata_model_free(model);
	} else {
		strata_session_destroy(m->session);
		strata_model_free(m->model);
		m->session = session;
		m->model = model;
	}
	pthread_mutex_lock(&m->lock);
	if (!rc && path) {
		free(m->weights_path);
		m->weights_path = path;
		path = NULL;
	}
	free(path);
	if (!rc) {
		m->state = SV_READY;
		m->unload_pending = false;
	}
	m->metrics.reloads += !rc;
	m->metrics.reload_failures += rc != 0;
	m->reload_status = rc;
	snprintf(m->reload_message, sizeof(m->reload_message), "%s", message);
	m->reload_done = generation;
	pthread_cond_broadcast(&m->done);
}

static void *worker(void *arg)
{
	sv_model *m = arg;
	uint32_t max = m->batching.max_batch_size;
	segment *segs = malloc(max * sizeof(*segs));
	pthread_mutex_lock(&m->lock);
	for (;;) {
		if (m->reload_asked > m->reload_done) {
			reload(m);
			continue;
		}
		if (!m->head) {
			if (m->unload_pending) {
				/* Unloaded and nothing queued: the device memory goes. */
				strata_session_destroy(m->session);
				strata_model_free(m->model);
				m->session = NULL;
				m->model = NULL;
				m->unload_pending = false;
				pthread_cond_broadcast(&m->done);
				continue;
			}
			if (m->stopping)
				break;
			pthread_cond_wait(&m->wake, &m->lock);
			continue;
		}
		expire(m, now());
		if (!m->head)
			continue;
		double until = 0;
		uint32_t size = batch_now(m, pending(m), &until);
		if (size == 0) {
			wait_until(m, until);
			continue;
		}
		uint32_t n_segs;
		if (!segs) {
			/* No room to note a batch: every queued request fails rather than waits forever. */
			for (sv_job *j = m->head; j; j = m->head) {
				unqueue(m, j);
				snprintf(j->message, sizeof(j->message), "out of memory");
				end_job(j, 500);
			}
			continue;
		}
		uint32_t n = form(m, size, segs, &n_segs);
		pthread_mutex_unlock(&m->lock);
		strata_error err = {0};
		double t0 = now();
		strata_status st = compute(m, segs, n_segs, n, &err);
		double t1 = now();
		pthread_mutex_lock(&m->lock);
		m->metrics.executions++;
		m->metrics.inferences += n;
		sv_histogram_add(&m->metrics.compute_seconds, t1 - t0);
		sv_histogram_add(&m->metrics.batch_size, n);
		for (uint32_t s = 0; s < n_segs; s++) {
			sv_job *j = segs[s].job;
			j->computed += segs[s].count;
			if (st != STRATA_OK && j->status == 0) {
				if (j->handed < j->req->batch)
					unqueue(m, j);
				snprintf(j->message, sizeof(j->message), "inference failed: %.440s", err.message);
				end_job(j, 500);
			} else if (j->status == 0 && j->computed == j->req->batch) {
				end_job(j, 200);
			}
		}
	}
	pthread_mutex_unlock(&m->lock);
	free(segs);
	return NULL;
}

/* ---- Opening, serving, closing ------------------------------------------------------------- */

/* A batch of every size from 1 to max_batch_size, of zeros (valid ids too), before the first
 * request: an OpenCL implementation may compile a kernel again for each new launch size (PoCL
 * does, some 100 to 250 ms on a CPU, then caches it on disk), which would otherwise stall the
 * first request batched at each size. Triton's model_warmup, done for every size. */
static int warm_up(sv_model *m, char *message, size_t size)
{
	double t0 = now();
	for (uint32_t i = 0; i < m->info.n_inputs; i++)
		memset(m->in[i], 0, m->batching.max_batch_size * sv_io_elements(&m->info.inputs[i]) * sizeof(float));
	for (uint32_t b = 1; b <= m->batching.max_batch_size; b++) {
		strata_error err = {0};
		if (strata_session_run(m->session, (const float *const *)m->in, b, m->out, &err) != STRATA_OK) {
			snprintf(message, size, "a batch of %u: %.400s", b, err.message);
			return 1;
		}
	}
	m->warmup_seconds = now() - t0;
	return 0;
}

int sv_model_init(sv_model *m, const char *name, const char *yaml_path, const char *weights_path,
                  const strata_serving_config *batching, const char *device, strata_registry *reg,
                  pthread_mutex_t *load_lock, char *message, size_t size)
{
	memset(m, 0, sizeof(*m));
	snprintf(m->name, sizeof(m->name), "%s", name);
	m->batching = *batching;
	if (m->batching.max_batch_size == 0)
		m->batching.max_batch_size = 1;
	m->reg = reg;
	m->load_lock = load_lock;
	m->state = SV_LOADING;
	m->yaml_path = strdup(yaml_path);
	m->weights_path = weights_path ? strdup(weights_path) : NULL;
	m->device = device ? strdup(device) : NULL;
	sv_model_metrics_init(&m->metrics);
	pthread_mutex_init(&m->lock, NULL);
	pthread_cond_init(&m->wake, NULL);
	pthread_cond_init(&m->done, NULL);
	if (!m->yaml_path || (weights_path && !m->weights_path) || (device && !m->device))
		return fail(message, size, "model '%s': out of memory%s", name, "");
	return 0;
}

int sv_model_start(sv_model *m, char *message, size_t size)
{
	const char *name = m->name;
	strata_runtime_options ro = {.size = sizeof(ro), .device = m->device};
	strata_error err = {0};
	strata_runtime *rt = NULL;
	pthread_mutex_lock(m->load_lock);
	strata_status st = strata_runtime_create(m->reg, &ro, &rt, &err);
	pthread_mutex_unlock(m->load_lock);
	if (st != STRATA_OK)
		return fail(message, size, "model '%.100s': %.400s", name, err.message);
	/* Request threads read rt (for the metrics) under the lock once the model is ready. */
	pthread_mutex_lock(&m->lock);
	m->rt = rt;
	pthread_mutex_unlock(&m->lock);
	char why[512] = "";
	if (load(m, m->weights_path, &m->model, &m->session, why, sizeof(why)) ||
	    describe(m->model, name, &m->info, why, sizeof(why)))
		return fail(message, size, "model '%.100s': %.400s", name, why);
	m->info.name = m->name;
	for (uint32_t i = 0; i < m->info.n_inputs; i++)
		if (!(m->in[i] = malloc(m->batching.max_batch_size * sv_io_elements(&m->info.inputs[i]) * sizeof(float))))
			return fail(message, size, "model '%s': out of memory%s", name, "");
	for (uint32_t k = 0; k < m->info.n_outputs; k++)
		if (!(m->out[k] = malloc(m->batching.max_batch_size * sv_io_elements(&m->info.outputs[k]) * sizeof(float))))
			return fail(message, size, "model '%s': out of memory%s", name, "");
	if (m->batching.warmup && warm_up(m, why, sizeof(why)))
		return fail(message, size, "model '%.100s': warming up: %.400s", name, why);
	int rc = pthread_create(&m->worker, NULL, worker, m);
	if (rc)
		return fail(message, size, "model '%s': no worker thread: %s", name, strerror(rc));
	m->worker_started = true;
	/* Everything request threads read of the model (info) is written before they may see it. */
	pthread_mutex_lock(&m->lock);
	m->state = SV_READY;
	pthread_mutex_unlock(&m->lock);
	return 0;
}

sv_state sv_model_state(sv_model *m)
{
	pthread_mutex_lock(&m->lock);
	sv_state s = m->state;
	pthread_mutex_unlock(&m->lock);
	return s;
}

uint64_t sv_model_memory_bytes(sv_model *m)
{
	pthread_mutex_lock(&m->lock);
	uint64_t bytes = m->rt ? strata_runtime_memory_bytes(m->rt) : 0;
	pthread_mutex_unlock(&m->lock);
	return bytes;
}

void sv_model_unload(sv_model *m)
{
	pthread_mutex_lock(&m->lock);
	if (m->state == SV_READY) {
		m->state = SV_UNLOADED;
		m->unload_pending = true;
		pthread_cond_signal(&m->wake);
	}
	pthread_mutex_unlock(&m->lock);
}

void sv_model_drain(sv_model *m)
{
	if (!m->worker_started)
		return;
	pthread_mutex_lock(&m->lock);
	m->stopping = true;
	pthread_cond_signal(&m->wake);
	pthread_mutex_unlock(&m->lock);
	pthread_join(m->worker, NULL);
	m->worker_started = false;
}

void sv_model_close(sv_model *m)
{
	sv_model_drain(m);
	strata_session_destroy(m->session);
	strata_model_free(m->model);
	strata_runtime_destroy(m->rt);
	for (uint32_t k = 0; k < SV_MAX_IO; k++) {
		free(m->in[k]);
		free(m->out[k]);
	}
	free(m->yaml_path);
	free(m->weights_path);
	free(m->device);
	free(m->reload_path);
	pthread_cond_destroy(&m->done);
	pthread_cond_destroy(&m->wake);
	pthread_mutex_destroy(&m->lock);
	memset(m, 0, sizeof(*m));
}

void sv_job_free(sv_job *job)
{
	for (uint32_t k = 0; k < SV_MAX_IO; k++)
		free(job->outputs[k]);
	memset(job->outputs, 0, sizeof(job->outputs));
}

void sv_model_infer(sv_model *m, sv_job *job)
{
	job->status = 0;
	job->handed = job->computed = 0;
	job->next = NULL;
	if (pthread_cond_init(&job->done, NULL)) {
		job->status = 500;
		snprintf(job->message, sizeof(job->message), "out of memory for the request's condition variable");
		pthread_mutex_lock(&m->lock);
		sv_model_metrics_request(&m->metrics, job->status);
		pthread_mutex_unlock(&m->lock);
		return;
	}
	for (uint32_t k = 0; k < m->info.n_outputs; k++)
		if (job->req->want[k] &&
		    !(job->outputs[k] = malloc((size_t)job->req->batch * sv_io_elements(&m->info.outputs[k]) * sizeof(float)))) {
			job->status = 500;
			snprintf(job->message, sizeof(job->message), "out of memory for the outputs");
		}
	pthread_mutex_lock(&m->lock);
	if (job->status) {
		/* reported below */
	} else if (m->stopping) {
		job->status = 503;
		snprintf(job->message, sizeof(job->message), "model '%s' is shutting down", m->name);
	} else if (m->state == SV_LOADING) {
		job->status = 503;
		snprintf(job->message, sizeof(job->message), "model '%s' is loading; retry later", m->name);
	} else if (m->state == SV_UNLOADED) {
		job->status = 503;
		snprintf(job->message, sizeof(job->message),
		         "model '%s' is unloaded; POST /v2/repository/models/%s/load to serve it again", m->name, m->name);
	} else if (m->queued >= m->batching.max_queue_size) {
		job->status = 503;
		snprintf(job->message, sizeof(job->message), "model '%s''s queue is full (%u requests); retry later", m->name,
		         m->batching.max_queue_size);
	} else {
		job->queued_at = now();
		if (m->tail)
			m->tail->next = job;
		else
			m->head = job;
		m->tail = job;
		m->queued++;
		pthread_cond_signal(&m->wake);
		while (job->status == 0)
			pthread_cond_wait(&job->done, &m->lock);
	}
	sv_model_metrics_request(&m->metrics, job->status);
	pthread_mutex_unlock(&m->lock);
	pthread_cond_destroy(&job->done);
}

int sv_model_reload(sv_model *m, const char *path, char *message, size_t size)
{
	char *copy = path ? strdup(path) : NULL;
	if (path && !copy)
		return fail(message, size, "out of memory%s%s", "", "");
	pthread_mutex_lock(&m->lock);
	if (m->stopping || m->state == SV_LOADING) {
		pthread_mutex_unlock(&m->lock);
		free(copy);
		return fail(message, size, "model '%s' is %s", m->name, m->stopping ? "shutting down" : "loading");
	}
	free(m->reload_path);
	m->reload_path = copy;
	uint64_t generation = ++m->reload_asked;
	pthread_cond_signal(&m->wake);
	while (m->reload_done < generation)
		pthread_cond_wait(&m->done, &m->lock);
	int rc = m->reload_status;
	snprintf(message, size, "%s", m->reload_message);
	pthread_mutex_unlock(&m->lock);
	return rc;
}
