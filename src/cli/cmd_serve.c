/* strata serve [MODEL.yaml [--weights W.stw]]... [--repository DIR] [--host H] [--port N]
 * [batching and limits]: models over HTTP with the Open Inference Protocol (src/serve/).
 *
 * The server listens first and says so, then loads the models one by one (GET /v2/health/ready
 * answers 503 until every one is ready, as Triton's does), then says it is ready. The main thread
 * then only waits for signals (blocked in every thread, taken with sigwait): SIGTERM and SIGINT
 * drain and exit 0, SIGHUP reloads every model's weights. */
#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"
#include "serve/server.h"
#include "serve/served_model.h"

/* One model to serve: its name, files, device and batching. */
typedef struct served {
	char name[128];
	char *yaml, *weights;
	char *device;
	strata_serving_config batching;
} served;

typedef struct served_list {
	served *items;
	size_t n;
} served_list;

static void list_free(served_list *l)
{
	for (size_t i = 0; i < l->n; i++) {
		free(l->items[i].yaml);
		free(l->items[i].weights);
		free(l->items[i].device);
	}
	free(l->items);
	l->items = NULL;
	l->n = 0;
}

/* "4,8,16": increasing sizes within the batch. */
static int parse_preferred(const char *text, strata_serving_config *b)
{
	const char *p = text;
	b->n_preferred_batch_sizes = 0;
	while (*p) {
		char *end;
		unsigned long v = strtoul(p, &end, 10);
		uint32_t n = b->n_preferred_batch_sizes;
		if (end == p || v < 1 || v > b->max_batch_size || n == STRATA_MAX_PREFERRED_BATCH_SIZES ||
		    (n && v <= b->preferred_batch_sizes[n - 1]) || (*end && *end != ',')) {
			cli_error("--preferred-batch-sizes: '%s' is not a list of up to %d increasing sizes from 1 to the "
			          "batch size (%u), such as 8,16,32", text, STRATA_MAX_PREFERRED_BATCH_SIZES, b->max_batch_size);
			return CLI_USAGE;
		}
		b->preferred_batch_sizes[b->n_preferred_batch_sizes++] = (uint32_t)v;
		p = *end ? end + 1 : end;
	}
	return CLI_OK;
}

/* The model file's serving: section, with the command line's settings over it. */
static int batching_of(const cli_options *o, const strata_model *model, strata_serving_config *b)
{
	*b = strata_model_serving(model);
	if (o->max_batch_size > 0) {
		b->max_batch_size = (uint32_t)o->max_batch_size;
		/* Preferred sizes the new batch size cannot form are dropped. */
		uint32_t kept = 0;
		for (uint32_t i = 0; i < b->n_preferred_batch_sizes; i++)
			if (b->preferred_batch_sizes[i] <= b->max_batch_size)
				b->preferred_batch_sizes[kept++] = b->preferred_batch_sizes[i];
		b->n_preferred_batch_sizes = kept;
	}
	if (o->max_queue_delay_us >= 0)
		b->max_queue_delay_us = (uint64_t)o->max_queue_delay_us;
	if (o->max_queue_size > 0)
		b->max_queue_size = (uint32_t)o->max_queue_size;
	if (o->timeout_us > 0)
		b->timeout_us = (uint64_t)o->timeout_us;
	if (o->no_warmup)
		b->warmup = false;
	return o->preferred_batch_sizes ? parse_preferred(o->preferred_batch_sizes, b) : CLI_OK;
}

/* Reads the model file (its name, device and serving: section) and adds it to the list as `name`
 * (NULL: the model file's name). The served model reads the file again when it loads, and at
 * every reload: this first reading only lets a bad file or name end `strata serve` before it
 * listens. */
static int add_model(cli_context *ctx, served_list *l, const char *yaml, const char *weights, const char *name)
{
	const cli_options *o = &ctx->opt;
	strata_model *model = NULL;
	strata_error err = {0};
	strata_status st = strata_model_load(ctx->reg, yaml, &model, &err);
	if (st) {
		fprintf(stderr, "%s\n", err.message); /* FILE:LINE:COLUMN: ... */
		return cli_exit_status(st);
	}
	served *grown = realloc(l->items, (l->n + 1) * sizeof(*grown));
	if (!grown) {
		strata_model_free(model);
		cli_error("out of memory");
		return CLI_FAILED;
	}
	l->items = grown;
	served *s = &l->items[l->n++];
	memset(s, 0, sizeof(*s));
	snprintf(s->name, sizeof(s->name), "%s", name ? name : strata_model_name(model));
	const char *device = cli_device_selector(ctx, model);
	s->yaml = strdup(yaml);
	s->weights = weights ? strdup(weights) : NULL;
	s->device = device ? strdup(device) : NULL;
	int rc = batching_of(o, model, &s->batching);
	strata_model_free(model);
	if (rc)
		return rc;
	if (!s->yaml || (weights && !s->weights) || (device && !s->device)) {
		cli_error("out of memory");
		return CLI_FAILED;
	}
	for (size_t i = 0; i + 1 < l->n; i++)
		if (!strcmp(l->items[i].name, s->name)) {
			cli_error("two models are named '%s' (%s and %s); a model file's name: or its repository folder "
			          "names it", s->name, l->items[i].yaml, yaml);
			return CLI_USAGE;
		}
	return CLI_OK;
}

static int by_name(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static char *join(const char *dir, const char *a, const char *b)
{
	size_t n = strlen(dir) + strlen(a) + (b ? strlen(b) + 1 : 0) + 2;
	char *p = malloc(n);
	if (p)
		snprintf(p, n, "%s/%s%s%s", dir, a, b ? "/" : "", b ? b : "");
	return p;
}

/* --repository DIR: each folder NAME in it (in name order) holds NAME/model.yaml and, when
 * present, NAME/model.stw; Triton's layout, a folder per model, named by the folder. */
static int add_repository(cli_context *ctx, served_list *l, const char *dir)
{
	DIR *d = opendir(dir);
	if (!d) {
		cli_error("--repository %s: %s", dir, strerror(errno));
		return CLI_FAILED;
	}
	char **names = NULL;
	size_t n = 0;
	int rc = CLI_OK;
	struct dirent *e;
	while (rc == CLI_OK && (e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		char *path = join(dir, e->d_name, NULL);
		struct stat st;
		bool folder = path && stat(path, &st) == 0 && S_ISDIR(st.st_mode);
		free(path);
		if (!folder)
			continue;
		char **grown = realloc(names, (n + 1) * sizeof(*names));
		if (!grown || !(grown[n] = strdup(e->d_name))) {
			names = grown ? grown : names;
			cli_error("out of memory");
			rc = CLI_FAILED;
			break;
		}
		names = grown;
		n++;
	}
	closedir(d);
	if (rc == CLI_OK && n == 0) {
		cli_error("--repository %s holds no model folder (NAME/model.yaml, NAME/model.stw)", dir);
		rc = CLI_FAILED;
	}
	if (n)
		qsort(names, n, sizeof(*names), by_name);
	for (size_t i = 0; rc == CLI_OK && i < n; i++) {
		char *yaml = join(dir, names[i], "model.yaml"), *weights = join(dir, names[i], "model.stw");
		struct stat st;
		if (!yaml || !weights) {
			cli_error("out of memory");
			rc = CLI_FAILED;
		} else if (stat(yaml, &st) != 0) {
			cli_error("--repository %s: the folder '%s' has no model.yaml (%s)", dir, names[i], strerror(errno));
			rc = CLI_FAILED;
		} else {
			rc = add_model(ctx, l, yaml, stat(weights, &st) == 0 ? weights : NULL, names[i]);
		}
		free(yaml);
		free(weights);
	}
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
	return rc;
}

static void server_options(const cli_options *o, sv_server_options *so)
{
	sv_server_defaults(so);
	if (o->host)
		so->host = o->host;
	if (o->port >= 0)
		so->port = (uint16_t)o->port;
	if (o->max_body_bytes > 0)
		so->max_body_bytes = (size_t)o->max_body_bytes;
	if (o->max_header_bytes > 0)
		so->max_header_bytes = (size_t)o->max_header_bytes;
	if (o->max_connections > 0)
		so->max_connections = (unsigned)o->max_connections;
	if (o->client_timeout > 0)
		so->client_timeout_s = (unsigned)o->client_timeout;
}

/* Serves the listed models until SIGTERM or SIGINT. */
static int serve(cli_context *ctx, const served_list *l)
{
	sv_server_options so;
	server_options(&ctx->opt, &so);

	/* Signals go to the main thread's sigwait only: blocked before any thread starts. */
	sigset_t signals;
	sigemptyset(&signals);
	sigaddset(&signals, SIGTERM);
	sigaddset(&signals, SIGINT);
	sigaddset(&signals, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &signals, NULL);

	pthread_mutex_t load_lock = PTHREAD_MUTEX_INITIALIZER;
	sv_model *models = calloc(l->n, sizeof(*models));
	if (!models) {
		cli_error("out of memory");
		return CLI_FAILED;
	}
	char message[1024];
	int rc = CLI_OK;
	size_t n_init = 0;
	for (; n_init < l->n && rc == CLI_OK; n_init++) {
		const served *s = &l->items[n_init];
		if (sv_model_init(&models[n_init], s->name, s->yaml, s->weights, &s->batching, s->device, ctx->reg,
		                  &load_lock, message, sizeof(message))) {
			cli_error("%s", message);
			rc = CLI_FAILED;
		}
	}
	sv_server server;
	bool listening = false;
	if (rc == CLI_OK) {
		if (sv_server_start(&server, &so, models, l->n, message, sizeof(message))) {
			cli_error("%s", message);
			rc = CLI_FAILED;
		} else {
			listening = true;
			printf("strata serve: listening on http://%s:%u\n", so.host, (unsigned)sv_server_port(&server));
			fflush(stdout);
		}
	}
	for (size_t i = 0; rc == CLI_OK && i < l->n; i++) {
		sv_model *m = &models[i];
		if (sv_model_start(m, message, sizeof(message))) {
			cli_error("%s", message);
			rc = CLI_FAILED;
			break;
		}
		const strata_device_info *dev = strata_runtime_device(m->rt);
		printf("strata serve: model '%s' on %s, batches of up to %u (warmed up in %.1f s), %.1f MiB of device "
		       "memory\n", m->name, dev ? dev->name : "the device", m->batching.max_batch_size, m->warmup_seconds,
		       (double)sv_model_memory_bytes(m) / (1 << 20));
		fflush(stdout);
	}
	if (rc == CLI_OK) {
		sv_server_set_ready(&server, true);
		printf("strata serve: ready: %zu model%s\n", l->n, l->n == 1 ? "" : "s");
		fflush(stdout);
		for (;;) {
			int sig = 0;
			if (sigwait(&signals, &sig) != 0)
				continue;
			if (sig != SIGHUP)
				break;
			for (size_t i = 0; i < l->n; i++) {
				if (sv_model_reload(&models[i], NULL, message, sizeof(message)))
					fprintf(stderr, "strata serve: SIGHUP: model '%s' keeps its weights: %s\n", models[i].name,
					        message);
				else
					fprintf(stderr, "strata serve: SIGHUP: model '%s' reloaded its weights\n", models[i].name);
			}
		}
		fprintf(stderr, "strata serve: stopping: no new connections; answering what is queued\n");
	}
	if (listening) {
		/* The requests already received are answered before the models stop taking any: one
		 * still being read when SIGTERM came would otherwise reach a stopping model (503). */
		sv_server_quiesce(&server);
		sv_server_wait_idle(&server);
	}
	for (size_t i = 0; i < n_init; i++)
		sv_model_drain(&models[i]);
	if (listening)
		sv_server_stop(&server);
	for (size_t i = 0; i < n_init; i++)
		sv_model_close(&models[i]);
	free(models);
	if (rc == CLI_OK)
		fprintf(stderr, "strata serve: stopped\n");
	return rc;
}

int cmd_serve(cli_context *ctx)
{
	const cli_options *o = &ctx->opt;
	int rc = cli_open_registry(ctx);
	served_list list = {0};
	for (int i = 0; rc == CLI_OK && i < o->n_models; i++)
		rc = add_model(ctx, &list, o->models[i], o->model_weights[i], NULL);
	if (rc == CLI_OK && o->repository)
		rc = add_repository(ctx, &list, o->repository);
	if (rc == CLI_OK)
		rc = serve(ctx, &list);
	list_free(&list);
	return cli_close(ctx, rc);
}
