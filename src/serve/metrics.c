/* Counters, histograms and the Prometheus text format (metrics.h). Names follow Prometheus'
 * conventions: a _total suffix on counters, base units (seconds, bytes), one HELP and TYPE per
 * family, label values escaped. */
#include "serve/metrics.h"

#include <string.h>

const int sv_status_codes[SV_STATUS_KINDS] = {200, 400, 404, 500, 503, 504};

static const double seconds_bounds[] = {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
                                        0.05,   0.1,     0.25,   0.5,   1,      2.5,   5,    10};
static const double batch_bounds[] = {1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024};

_Static_assert(sizeof(seconds_bounds) / sizeof(seconds_bounds[0]) <= SV_HIST_BUCKETS, "too many buckets");

void sv_histogram_init_seconds(sv_histogram *h)
{
	memset(h, 0, sizeof(*h));
	h->bounds = seconds_bounds;
	h->n_bounds = sizeof(seconds_bounds) / sizeof(seconds_bounds[0]);
}

void sv_histogram_init_batch(sv_histogram *h)
{
	memset(h, 0, sizeof(*h));
	h->bounds = batch_bounds;
	h->n_bounds = sizeof(batch_bounds) / sizeof(batch_bounds[0]);
}

void sv_histogram_add(sv_histogram *h, double v)
{
	size_t b = 0;
	while (b < h->n_bounds && v > h->bounds[b])
		b++;
	h->counts[b]++;
	h->sum += v;
	h->count++;
}

void sv_model_metrics_init(sv_model_metrics *m)
{
	memset(m, 0, sizeof(*m));
	sv_histogram_init_seconds(&m->queue_seconds);
	sv_histogram_init_seconds(&m->compute_seconds);
	sv_histogram_init_batch(&m->batch_size);
}

static size_t status_index(int status)
{
	for (size_t i = 0; i < SV_STATUS_KINDS; i++)
		if (sv_status_codes[i] == status)
			return i;
	return 3; /* 500 */
}

void sv_model_metrics_request(sv_model_metrics *m, int status)
{
	m->requests[status_index(status)]++;
}

/* A label value in the exposition format: backslash, double quote and newline escaped. */
static void label(FILE *out, const char *v)
{
	for (; *v; v++) {
		if (*v == '\\' || *v == '"')
			fprintf(out, "\\%c", *v);
		else if (*v == '\n')
			fputs("\\n", out);
		else
			fputc(*v, out);
	}
}

static void family(FILE *out, const char *name, const char *type, const char *help)
{
	fprintf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void histogram(FILE *out, const char *name, const char *model, const sv_histogram *h)
{
	uint64_t cumulative = 0;
	for (size_t b = 0; b <= h->n_bounds; b++) {
		cumulative += h->counts[b];
		fprintf(out, "%s_bucket{model=\"", name);
		label(out, model);
		if (b < h->n_bounds)
			fprintf(out, "\",le=\"%g\"} %llu\n", h->bounds[b], (unsigned long long)cumulative);
		else
			fprintf(out, "\",le=\"+Inf\"} %llu\n", (unsigned long long)cumulative);
	}
	fprintf(out, "%s_sum{model=\"", name);
	label(out, model);
	fprintf(out, "\"} %.9g\n%s_count{model=\"", h->sum, name);
	label(out, model);
	fprintf(out, "\"} %llu\n", (unsigned long long)h->count);
}

/* One counter per model: field at `offset` of sv_model_metrics. */
static void per_model(FILE *out, const char *name, const char *const *names, const sv_model_metrics *const *models,
                      size_t n, size_t offset)
{
	for (size_t i = 0; i < n; i++) {
		uint64_t v;
		memcpy(&v, (const char *)models[i] + offset, sizeof(v));
		fprintf(out, "%s{model=\"", name);
		label(out, names[i]);
		fprintf(out, "\"} %llu\n", (unsigned long long)v);
	}
}

void sv_metrics_write(FILE *out, const sv_server_metrics *s, const char *const *names,
                      const sv_model_metrics *const *models, const uint64_t *device_bytes, size_t n)
{
	static const char *const reasons[SV_REFUSED_KINDS] = {"body_size", "header_size", "connections", "slow_client"};
	family(out, "strata_in_flight_requests", "gauge", "HTTP requests being handled.");
	fprintf(out, "strata_in_flight_requests %llu\n", (unsigned long long)s->in_flight);
	family(out, "strata_refused_total", "counter",
	       "Requests refused before reaching a model: body or header too large, too many connections, "
	       "a client too slow to send its request.");
	for (size_t r = 0; r < SV_REFUSED_KINDS; r++)
		fprintf(out, "strata_refused_total{reason=\"%s\"} %llu\n", reasons[r], (unsigned long long)s->refused[r]);
	family(out, "strata_http_responses_total", "counter", "HTTP responses by status code.");
	for (size_t k = 0; k <= SV_STATUS_KINDS; k++)
		if (k < SV_STATUS_KINDS)
			fprintf(out, "strata_http_responses_total{code=\"%d\"} %llu\n", sv_status_codes[k],
			        (unsigned long long)s->responses[k]);
		else
			fprintf(out, "strata_http_responses_total{code=\"other\"} %llu\n", (unsigned long long)s->responses[k]);

	family(out, "strata_inference_requests_total", "counter", "Inference requests by model and HTTP status code.");
	for (size_t i = 0; i < n; i++)
		for (size_t k = 0; k < SV_STATUS_KINDS; k++) {
			fprintf(out, "strata_inference_requests_total{model=\"");
			label(out, names[i]);
			fprintf(out, "\",code=\"%d\"} %llu\n", sv_status_codes[k], (unsigned long long)models[i]->requests[k]);
		}
	family(out, "strata_inferences_total", "counter", "Samples computed, by model.");
	per_model(out, "strata_inferences_total", names, models, n, offsetof(sv_model_metrics, inferences));
	family(out, "strata_batch_executions_total", "counter",
	       "Batches computed, by model: inferences / executions is the mean batch formed.");
	per_model(out, "strata_batch_executions_total", names, models, n, offsetof(sv_model_metrics, executions));
	family(out, "strata_reloads_total", "counter", "Weights reloaded, by model.");
	per_model(out, "strata_reloads_total", names, models, n, offsetof(sv_model_metrics, reloads));
	family(out, "strata_reload_failures_total", "counter", "Reloads that failed (the old weights kept serving).");
	per_model(out, "strata_reload_failures_total", names, models, n, offsetof(sv_model_metrics, reload_failures));
	family(out, "strata_queue_seconds", "histogram", "Time from a request queued to its batch starting.");
	for (size_t i = 0; i < n; i++)
		histogram(out, "strata_queue_seconds", names[i], &models[i]->queue_seconds);
	family(out, "strata_compute_seconds", "histogram", "Time the device took for a batch.");
	for (size_t i = 0; i < n; i++)
		histogram(out, "strata_compute_seconds", names[i], &models[i]->compute_seconds);
	family(out, "strata_batch_size", "histogram", "Samples in each batch computed.");
	for (size_t i = 0; i < n; i++)
		histogram(out, "strata_batch_size", names[i], &models[i]->batch_size);
	if (!device_bytes)
		return;
	family(out, "strata_device_memory_bytes", "gauge", "Device memory a model's sessions hold.");
	for (size_t i = 0; i < n; i++) {
		fprintf(out, "strata_device_memory_bytes{model=\"");
		label(out, names[i]);
		fprintf(out, "\"} %llu\n", (unsigned long long)device_bytes[i]);
	}
}
