/* strata serve MODEL.yaml [--weights W.stw] [--host H] [--port N] [batching and limits]: the model
 * over HTTP with the Open Inference Protocol (src/serve/). The main thread only waits for signals
 * (blocked in every thread, taken with sigwait): SIGTERM and SIGINT drain and exit 0, SIGHUP
 * reloads the weights. */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "serve/server.h"
#include "serve/served_model.h"

/* "4,8,16": increasing sizes within the batch. */
static int parse_preferred(const char *text, sv_batching *b)
{
	const char *p = text;
	while (*p) {
		char *end;
		unsigned long v = strtoul(p, &end, 10);
		if (end == p || v < 1 || v > b->max_batch_size || b->n_preferred == SV_MAX_PREFERRED ||
		    (b->n_preferred && v <= b->preferred[b->n_preferred - 1]) || (*end && *end != ',')) {
			cli_error("--preferred-batch-sizes: '%s' is not a list of up to %d increasing sizes from 1 to "
			          "--max-batch-size (%u), such as 8,16,32", text, SV_MAX_PREFERRED, b->max_batch_size);
			return CLI_USAGE;
		}
		b->preferred[b->n_preferred++] = (uint32_t)v;
		p = *end ? end + 1 : end;
	}
	return CLI_OK;
}

int cmd_serve(cli_context *ctx)
{
	const cli_options *o = &ctx->opt;
	int rc = cli_open_model(ctx);
	if (rc)
		return cli_close(ctx, rc);
	sv_batching batching;
	sv_batching_defaults(&batching);
	if (o->max_batch_size > 0)
		batching.max_batch_size = (uint32_t)o->max_batch_size;
	if (o->max_queue_delay_us >= 0)
		batching.max_queue_delay_us = (uint64_t)o->max_queue_delay_us;
	if (o->max_queue_size > 0)
		batching.max_queue_size = (uint32_t)o->max_queue_size;
	if (o->timeout_us > 0)
		batching.timeout_us = (uint64_t)o->timeout_us;
	if (o->preferred_batch_sizes && (rc = parse_preferred(o->preferred_batch_sizes, &batching)))
		return cli_close(ctx, rc);
	sv_server_options so;
	sv_server_defaults(&so);
	if (o->host)
		so.host = o->host;
	if (o->port >= 0)
		so.port = (uint16_t)o->port;
	if (o->max_body_bytes > 0)
		so.max_body_bytes = (size_t)o->max_body_bytes;
	if (o->max_header_bytes > 0)
		so.max_header_bytes = (size_t)o->max_header_bytes;
	if (o->max_connections > 0)
		so.max_connections = (unsigned)o->max_connections;
	if (o->client_timeout > 0)
		so.client_timeout_s = (unsigned)o->client_timeout;
	const char *device = o->device && *o->device ? o->device : strata_model_device(ctx->model);

	/* Signals go to the main thread's sigwait only: blocked before any thread starts. */
	sigset_t signals;
	sigemptyset(&signals);
	sigaddset(&signals, SIGTERM);
	sigaddset(&signals, SIGINT);
	sigaddset(&signals, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &signals, NULL);

	pthread_mutex_t load_lock = PTHREAD_MUTEX_INITIALIZER;
	static sv_model model; /* large (its metrics): off the stack */
	sv_server server;
	char message[1024];
	if (sv_model_open(&model, strata_model_name(ctx->model), o->model_path, o->weights, &batching, device, ctx->reg,
	                  &load_lock, message, sizeof(message))) {
		cli_error("%s", message);
		sv_model_close(&model);
		return cli_close(ctx, CLI_FAILED);
	}
	if (sv_server_start(&server, &so, &model, 1, message, sizeof(message))) {
		cli_error("%s", message);
		sv_model_close(&model);
		return cli_close(ctx, CLI_FAILED);
	}
	const strata_device_info *dev = strata_runtime_device(model.rt);
	printf("strata serve: model '%s' on %s, batches of up to %u; listening on http://%s:%u\n", model.name,
	       dev ? dev->name : "the device", batching.max_batch_size, so.host, (unsigned)sv_server_port(&server));
	fflush(stdout);
	for (;;) {
		int sig = 0;
		if (sigwait(&signals, &sig) != 0)
			continue;
		if (sig != SIGHUP)
			break;
		if (sv_model_reload(&model, NULL, message, sizeof(message)))
			fprintf(stderr, "strata serve: SIGHUP: model '%s' keeps its weights: %s\n", model.name, message);
		else
			fprintf(stderr, "strata serve: SIGHUP: model '%s' reloaded its weights\n", model.name);
	}
	fprintf(stderr, "strata serve: stopping: no new connections; answering what is queued\n");
	sv_server_quiesce(&server);
	sv_model_drain(&model);
	sv_server_stop(&server);
	sv_model_close(&model);
	fprintf(stderr, "strata serve: stopped\n");
	return cli_close(ctx, CLI_OK);
}
