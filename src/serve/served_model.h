/* A model being served: its session on the device, owned by one worker thread, and the queue of
 * requests that thread forms batches from (dynamic batching with Triton's knobs).
 *
 * Request threads (one per HTTP connection) submit a job and wait for it (on its own condition
 * variable, so a finished batch wakes only the threads it finished); the worker takes the
 * queued samples in arrival order, up to max_batch_size of them, as soon as that many wait, a
 * preferred batch size is reached, or the oldest has waited max_queue_delay_us, and computes them
 * in one strata_session_run. A request larger than a batch is split over several; a batch may
 * hold parts of several requests. A request that waited past its timeout before any of it was
 * computed ends with 504. Reloads run on the worker between batches: in-flight batches finish on
 * the old weights, later ones use the new, and a weights file that fails to load leaves the old
 * session serving. */
#ifndef ST_SERVE_SERVED_MODEL_H
#define ST_SERVE_SERVED_MODEL_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include <strata/strata.h>

#include "serve/metrics.h"
#include "serve/protocol.h"

/* Where a model stands. Loading: its session is being made (requests get 503, the server is not
 * ready). Unloaded: new requests get 503; the worker frees the session once the queue is empty
 * (unload_pending), and a reload (the load endpoint) makes a new one and serves again. */
typedef enum sv_state { SV_LOADING = 0, SV_READY, SV_UNLOADED } sv_state;

/* One request's passage through the queue. Owned by the submitting thread. */
typedef struct sv_job {
	sv_request *req;
	float *outputs[SV_MAX_IO]; /* req->batch samples of each wanted output, filled batch by batch */
	uint32_t handed;           /* samples given to batches */
	uint32_t computed;         /* samples computed */
	int status;                /* 0 while pending, then 200 or the error */
	char message[512];
	double queued_at;
	pthread_cond_t done; /* signalled when status is set (sv_model_infer makes it) */
	struct sv_job *next;
} sv_job;

typedef struct sv_model {
	char name[128];
	char *yaml_path, *weights_path;
	sv_model_info info;
	strata_serving_config batching; /* the model file's serving: section, the command line's over it */
	double warmup_seconds;          /* what the warm-up took (batching.warmup) */
	char *device;                   /* the device selector */
	strata_registry *reg;
	pthread_mutex_t *load_lock; /* the registry's: models are loaded one at a time */
	strata_runtime *rt;
	strata_model *model;
	strata_session *session;
	float *in[SV_MAX_IO], *out[SV_MAX_IO]; /* one batch, host side */

	pthread_t worker;
	bool worker_started;
	pthread_mutex_t lock;
	pthread_cond_t wake; /* the worker: a job queued, a reload asked, stopping */
	pthread_cond_t done; /* reloads and unloads done */
	sv_job *head, *tail;
	uint32_t queued;
	bool stopping;
	sv_state state;
	bool unload_pending;
	/* Reloads: asked (generation past served) with the weights to load (NULL: the same file). */
	uint64_t reload_asked, reload_done;
	char *reload_path;
	int reload_status;
	char reload_message[512];
	sv_model_metrics metrics;
} sv_model;

/* A model to serve as `name`, loading: nothing is read yet, and the server may already answer
 * for it (503 until sv_model_start). 0, or non-zero with `message` (out of memory). */
int sv_model_init(sv_model *m, const char *name, const char *yaml_path, const char *weights_path,
                  const strata_serving_config *batching, const char *device, strata_registry *reg,
                  pthread_mutex_t *load_lock, char *message, size_t size);
/* Loads the model file and its weights (NULL: the seed's initial weights) on the device its
 * selector picks, starts its worker and makes it ready. 0, or non-zero with `message` saying why
 * (the model stays loading; sv_model_close frees it). */
int sv_model_start(sv_model *m, char *message, size_t size);
sv_state sv_model_state(sv_model *m);
/* The bytes of device memory its runtime holds (0 before it starts). */
uint64_t sv_model_memory_bytes(sv_model *m);
/* Finishes what is queued and stops the worker; requests after it get 503. */
void sv_model_drain(sv_model *m);
/* Drains, then frees everything: no request thread may still use the model. */
void sv_model_close(sv_model *m);

/* Queues the job and waits for it: job->status and, on 200, job->outputs. The job's outputs are
 * allocated here (freed by sv_job_free). */
void sv_model_infer(sv_model *m, sv_job *job);
void sv_job_free(sv_job *job);

/* Stops serving the model (Triton's unload): requests queued are answered, later ones get 503,
 * and its session's device memory is freed. sv_model_reload loads it again. */
void sv_model_unload(sv_model *m);

/* Reloads the weights from `path` (NULL: the file the model was opened with) between batches and
 * waits: 0, or non-zero with `message` (the old weights still serve). */
int sv_model_reload(sv_model *m, const char *path, char *message, size_t size);

#endif
