/* The server's counters and histograms, and their Prometheus text exposition (format 0.0.4), for
 * GET /metrics. Each model owns an sv_model_metrics, the server an sv_server_metrics; the caller
 * holds the lock that guards them while it updates or renders them. */
#ifndef ST_SERVE_METRICS_H
#define ST_SERVE_METRICS_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* The HTTP statuses an inference request ends with, counted by model. */
#define SV_STATUS_KINDS 6
extern const int sv_status_codes[SV_STATUS_KINDS]; /* 200, 400, 404, 500, 503, 504 */

#define SV_HIST_BUCKETS 16

typedef struct sv_histogram {
	const double *bounds; /* upper bounds, increasing; +Inf is implicit */
	size_t n_bounds;
	uint64_t counts[SV_HIST_BUCKETS + 1]; /* per bucket, not cumulative; the last one past every bound */
	double sum;
	uint64_t count;
} sv_histogram;

void sv_histogram_init_seconds(sv_histogram *h); /* 100 us to 10 s */
void sv_histogram_init_batch(sv_histogram *h);   /* 1 to 1024 samples */
void sv_histogram_add(sv_histogram *h, double v);

typedef struct sv_model_metrics {
	uint64_t requests[SV_STATUS_KINDS]; /* by sv_status_codes */
	uint64_t inferences;                /* samples computed */
	uint64_t executions;                /* batches computed */
	uint64_t reloads, reload_failures;
	sv_histogram queue_seconds;   /* per request: from queued to its batch starting */
	sv_histogram compute_seconds; /* per batch */
	sv_histogram batch_size;      /* per batch, in samples */
} sv_model_metrics;

void sv_model_metrics_init(sv_model_metrics *m);
/* Counts a request that ended with `status` (another status counts as 500). */
void sv_model_metrics_request(sv_model_metrics *m, int status);

/* Requests refused before reaching a model, by reason. */
enum sv_refusal {
	SV_REFUSED_BODY_SIZE,
	SV_REFUSED_HEADER_SIZE,
	SV_REFUSED_CONNECTIONS,
	SV_REFUSED_SLOW_CLIENT,
	SV_REFUSED_KINDS
};

typedef struct sv_server_metrics {
	uint64_t in_flight;                      /* requests being handled */
	uint64_t refused[SV_REFUSED_KINDS];
	uint64_t responses[SV_STATUS_KINDS + 1]; /* every HTTP response by status; the last: others */
} sv_server_metrics;

/* Writes every metric: the server's, then each model's (labelled by name) with its device memory
 * in bytes (device_bytes NULL: not known, not written). */
void sv_metrics_write(FILE *out, const sv_server_metrics *s, const char *const *model_names,
                      const sv_model_metrics *const *models, const uint64_t *device_bytes, size_t n_models);

#endif
