/* The HTTP server (server.h) on libmicrohttpd. */
#include "serve/server.h"

#include <jansson.h>
#include <microhttpd.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <strata/strata.h>

#include "serve/protocol.h"

void sv_server_defaults(sv_server_options *o)
{
	memset(o, 0, sizeof(*o));
	o->host = "127.0.0.1";
	o->port = 8000;
	o->max_body_bytes = (size_t)64 << 20;
	o->max_header_bytes = (size_t)16 << 10;
	o->max_connections = 256;
	o->client_timeout_s = 30;
}

/* One request's body as it arrives. */
typedef struct request_ctx {
	char *body;
	size_t len, cap;
	bool too_large;
} request_ctx;

static void count_response(sv_server *s, int status)
{
	size_t k = 0;
	while (k < SV_STATUS_KINDS && sv_status_codes[k] != status)
		k++;
	pthread_mutex_lock(&s->lock);
	s->metrics.responses[k]++;
	pthread_mutex_unlock(&s->lock);
}

/* Queues `body` (malloc'd, taken; NULL: out of memory, a 500 without a body). */
static enum MHD_Result reply(sv_server *s, struct MHD_Connection *c, int status, char *body, size_t len,
                             const char *type, size_t json_len)
{
	if (!body) {
		status = MHD_HTTP_INTERNAL_SERVER_ERROR;
		len = 0;
	}
	struct MHD_Response *r = MHD_create_response_from_buffer(len, body ? body : (char *)"", body ? MHD_RESPMEM_MUST_FREE
	                                                                                             : MHD_RESPMEM_PERSISTENT);
	if (!r) {
		free(body);
		return MHD_NO;
	}
	if (type)
		MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
	if (json_len < len) {
		char n[32];
		snprintf(n, sizeof(n), "%zu", json_len);
		MHD_add_response_header(r, "Inference-Header-Content-Length", n);
	}
	if (status == MHD_HTTP_SERVICE_UNAVAILABLE)
		MHD_add_response_header(r, MHD_HTTP_HEADER_RETRY_AFTER, "1");
	enum MHD_Result ret = MHD_queue_response(c, (unsigned)status, r);
	MHD_destroy_response(r);
	count_response(s, status);
	return ret;
}

static enum MHD_Result reply_json(sv_server *s, struct MHD_Connection *c, int status, char *json)
{
	return reply(s, c, status, json, json ? strlen(json) : 0, "application/json", SIZE_MAX);
}

static enum MHD_Result reply_error(sv_server *s, struct MHD_Connection *c, int status, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static enum MHD_Result reply_error(sv_server *s, struct MHD_Connection *c, int status, const char *fmt, ...)
{
	char message[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(message, sizeof(message), fmt, ap);
	va_end(ap);
	return reply_json(s, c, status, sv_error_json(message));
}

static sv_model *find_model(sv_server *s, const char *name, size_t len)
{
	for (size_t i = 0; i < s->n_models; i++)
		if (strlen(s->models[i].name) == len && !strncmp(s->models[i].name, name, len))
			return &s->models[i];
	return NULL;
}

/* ---- Endpoints ----------------------------------------------------------------------------- */

/* A PNG or PGM body, told by its first bytes. */
static bool is_image(const request_ctx *ctx)
{
	const unsigned char *b = (const unsigned char *)ctx->body;
	return ctx->len >= 8 ? !memcmp(b, "\x89PNG\r\n\x1a\n", 8) || (b[0] == 'P' && (b[1] == '2' || b[1] == '5'))
	                     : false;
}

/* A picture as the body, as `strata predict` reads one: a model of one image input (H, W, 1), the
 * picture's gray pixels times the model's data scale, a batch of one; every output as JSON. */
static int image_request(const sv_model *m, const request_ctx *ctx, sv_request *req, char *message, size_t size)
{
	memset(req, 0, sizeof(*req));
	const sv_io *in = &m->info.inputs[0];
	if (m->info.n_inputs != 1 || in->ids || in->rank != 3 || in->dims[2] != 1) {
		snprintf(message, size, "a picture as the body needs a model of one (height, width, 1) input; send tensors");
		return 400;
	}
	strata_image img = {0};
	strata_error err = {0};
	if (strata_image_decode((const uint8_t *)ctx->body, ctx->len, &img, &err) != STRATA_OK) {
		snprintf(message, size, "the body: %.400s", err.message);
		return 400;
	}
	int status = 0;
	if (img.height != in->dims[0] || img.width != in->dims[1]) {
		snprintf(message, size, "the picture is %ux%u (width x height); input '%s' takes %lldx%lld", img.width,
		         img.height, in->name, (long long)in->dims[1], (long long)in->dims[0]);
		status = 400;
	} else if (!(req->inputs[0] = malloc((size_t)img.width * img.height * sizeof(float)))) {
		snprintf(message, size, "out of memory");
		status = 500;
	} else {
		for (size_t i = 0; i < (size_t)img.width * img.height; i++)
			req->inputs[0][i] = (float)img.pixels[i] * m->info.uint8_scale;
		req->batch = 1;
		for (uint32_t k = 0; k < m->info.n_outputs; k++)
			req->want[k] = true;
	}
	strata_image_free(&img);
	return status;
}

static enum MHD_Result infer(sv_server *s, struct MHD_Connection *c, sv_model *m, request_ctx *ctx)
{
	size_t json_len = ctx->len;
	const char *header = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Inference-Header-Content-Length");
	if (header) {
		char *end;
		unsigned long long v = strtoull(header, &end, 10);
		if (*header < '0' || *header > '9' || *end || v > ctx->len)
			return reply_error(s, c, MHD_HTTP_BAD_REQUEST,
			                   "Inference-Header-Content-Length: '%s' is not a length within the body's %zu bytes",
			                   header, ctx->len);
		json_len = (size_t)v;
	}
	sv_request req;
	char message[512];
	int status = is_image(ctx) ? image_request(m, ctx, &req, message, sizeof(message))
	                           : sv_request_parse(&m->info, ctx->body ? ctx->body : "", ctx->len, json_len, &req,
	                                              message, sizeof(message));
	if (status) {
		pthread_mutex_lock(&m->lock);
		sv_model_metrics_request(&m->metrics, status);
		pthread_mutex_unlock(&m->lock);
		sv_request_free(&req);
		return reply_error(s, c, status, "%s", message);
	}
	sv_job job = {.req = &req};
	sv_model_infer(m, &job);
	enum MHD_Result ret;
	if (job.status != 200) {
		ret = reply_error(s, c, job.status, "%s", job.message);
	} else {
		char *body;
		size_t len, jlen;
		if (sv_response_write(&m->info, &req, job.outputs, &body, &len, &jlen))
			ret = reply_error(s, c, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory for the response");
		else
			ret = reply(s, c, MHD_HTTP_OK, body, len, jlen < len ? "application/octet-stream" : "application/json",
			            jlen);
	}
	sv_job_free(&job);
	sv_request_free(&req);
	return ret;
}

/* POST /v2/repository/models/NAME/load: the weights again (or {"parameters": {"weights": PATH}}),
 * swapped in between batches. */
static enum MHD_Result load_model(sv_server *s, struct MHD_Connection *c, sv_model *m, request_ctx *ctx)
{
	char path[4096] = "";
	if (ctx->len) {
		/* The body's one optional field, read without the protocol's request parser. */
		const char *key = "\"weights\"";
		char *at = ctx->body ? strstr(ctx->body, key) : NULL;
		char *q = at ? strchr(at + strlen(key), '"') : NULL;
		char *end = q ? strchr(q + 1, '"') : NULL;
		if (at && (!q || !end || (size_t)(end - q - 1) >= sizeof(path)))
			return reply_error(s, c, MHD_HTTP_BAD_REQUEST, "parameters.weights: not a path in quotes");
		if (at)
			snprintf(path, sizeof(path), "%.*s", (int)(end - q - 1), q + 1);
	}
	char message[512];
	if (sv_model_reload(m, path[0] ? path : NULL, message, sizeof(message)))
		return reply_error(s, c, MHD_HTTP_BAD_REQUEST, "model '%s' keeps its weights: %s", m->name, message);
	fprintf(stderr, "strata serve: model '%s' reloaded its weights\n", m->name);
	return reply_json(s, c, MHD_HTTP_OK, strdup("{}"));
}

static enum MHD_Result metrics(sv_server *s, struct MHD_Connection *c)
{
	char *text = NULL;
	size_t len = 0;
	FILE *out = open_memstream(&text, &len);
	if (!out)
		return reply_error(s, c, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory");
	size_t n = s->n_models, room = n ? n : 1;
	const char **names = calloc(room, sizeof(*names));
	const sv_model_metrics **snap = calloc(room, sizeof(*snap));
	uint64_t *memory = calloc(room, sizeof(*memory));
	sv_model_metrics *copies = calloc(room, sizeof(*copies));
	if (!names || !snap || !memory) {
		free(copies);
		copies = NULL;
	}
	for (size_t i = 0; copies && i < n; i++) {
		pthread_mutex_lock(&s->models[i].lock);
		copies[i] = s->models[i].metrics;
		pthread_mutex_unlock(&s->models[i].lock);
		memory[i] = sv_model_memory_bytes(&s->models[i]);
		names[i] = s->models[i].name;
		snap[i] = &copies[i];
	}
	pthread_mutex_lock(&s->lock);
	sv_server_metrics server = s->metrics;
	pthread_mutex_unlock(&s->lock);
	if (copies)
		sv_metrics_write(out, &server, names, snap, memory, n);
	fclose(out);
	free(copies);
	free(names);
	free(snap);
	free(memory);
	return reply(s, c, copies ? MHD_HTTP_OK : MHD_HTTP_INTERNAL_SERVER_ERROR, text, len,
	             "text/plain; version=0.0.4; charset=utf-8", SIZE_MAX);
}

/* POST /v2/repository/index (Triton's model repository extension): every model with its state. */
static enum MHD_Result repository_index(sv_server *s, struct MHD_Connection *c)
{
	static const char *const states[] = {[SV_LOADING] = "LOADING", [SV_READY] = "READY", [SV_UNLOADED] = "UNAVAILABLE"};
	json_t *list = json_array();
	for (size_t i = 0; list && i < s->n_models; i++) {
		sv_state state = sv_model_state(&s->models[i]);
		json_t *entry = json_pack("{s:s, s:s, s:s, s:s}", "name", s->models[i].name, "version", "1", "state",
		                          states[state], "reason", state == SV_UNLOADED ? "unloaded" : "");
		if (!entry || json_array_append_new(list, entry)) {
			json_decref(list);
			list = NULL;
		}
	}
	char *body = list ? json_dumps(list, JSON_COMPACT) : NULL;
	json_decref(list);
	return reply_json(s, c, MHD_HTTP_OK, body);
}

static bool is(const char *a, const char *b)
{
	return !strcmp(a, b);
}

/* /v2/models/NAME[/versions/1][/REST]: the model and REST ("" for the model itself). */
static enum MHD_Result model_route(sv_server *s, struct MHD_Connection *c, const char *method, const char *path,
                                   request_ctx *ctx, bool repository)
{
	const char *slash = strchr(path, '/');
	size_t len = slash ? (size_t)(slash - path) : strlen(path);
	sv_model *m = find_model(s, path, len);
	const char *rest = slash ? slash : "";
	if (!repository && !strncmp(rest, "/versions/", 10)) {
		const char *v = rest + 10, *after = strchr(v, '/');
		size_t vlen = after ? (size_t)(after - v) : strlen(v);
		if (vlen != 1 || v[0] != '1')
			return reply_error(s, c, MHD_HTTP_NOT_FOUND, "model '%.*s' has one version, 1", (int)len, path);
		rest = after ? after : "";
	}
	if (!m)
		return reply_error(s, c, MHD_HTTP_NOT_FOUND, "no model '%.*s' is served", (int)len, path);
	sv_state state = sv_model_state(m);
	if (state == SV_LOADING)
		return reply_error(s, c, MHD_HTTP_SERVICE_UNAVAILABLE, "model '%s' is loading", m->name);
	if (repository) {
		if (is(method, "POST") && is(rest, "/load"))
			return load_model(s, c, m, ctx);
		if (is(method, "POST") && is(rest, "/unload")) {
			sv_model_unload(m);
			fprintf(stderr, "strata serve: model '%s' unloaded\n", m->name);
			return reply_json(s, c, MHD_HTTP_OK, strdup("{}"));
		}
	} else if (is(rest, "") && is(method, "GET")) {
		return reply_json(s, c, MHD_HTTP_OK, sv_metadata_json(&m->info));
	} else if (is(rest, "/ready") && is(method, "GET")) {
		return state == SV_UNLOADED ? reply_error(s, c, MHD_HTTP_SERVICE_UNAVAILABLE, "model '%s' is unloaded", m->name)
		                : reply(s, c, MHD_HTTP_OK, strdup(""), 0, NULL, SIZE_MAX);
	} else if (is(rest, "/infer") && is(method, "POST")) {
		return infer(s, c, m, ctx);
	}
	return reply_error(s, c, MHD_HTTP_NOT_FOUND, "no endpoint %s %s", method, rest);
}

static enum MHD_Result route(sv_server *s, struct MHD_Connection *c, const char *url, const char *method,
                             request_ctx *ctx)
{
	if (is(url, "/v2/health/live") && is(method, "GET"))
		return reply(s, c, MHD_HTTP_OK, strdup(""), 0, NULL, SIZE_MAX);
	if (is(url, "/v2/health/ready") && is(method, "GET")) {
		pthread_mutex_lock(&s->lock);
		bool ready = s->ready;
		pthread_mutex_unlock(&s->lock);
		return ready ? reply(s, c, MHD_HTTP_OK, strdup(""), 0, NULL, SIZE_MAX)
		             : reply_error(s, c, MHD_HTTP_SERVICE_UNAVAILABLE, "models are loading, or the server is stopping");
	}
	if (is(url, "/v2/repository/index") && is(method, "POST"))
		return repository_index(s, c);
	if (is(url, "/v2") && is(method, "GET"))
		return reply_json(s, c, MHD_HTTP_OK,
		                  strdup("{\"name\":\"strata\",\"version\":\"" STRATA_VERSION "\",\"extensions\":"
		                         "[\"binary_tensor_data\",\"model_repository\"]}"));
	if (is(url, "/metrics") && is(method, "GET"))
		return metrics(s, c);
	if (!strncmp(url, "/v2/models/", 11))
		return model_route(s, c, method, url + 11, ctx, false);
	if (!strncmp(url, "/v2/repository/models/", 22))
		return model_route(s, c, method, url + 22, ctx, true);
	return reply_error(s, c, MHD_HTTP_NOT_FOUND, "no endpoint %s %s", method, url);
}

/* ---- libmicrohttpd's callbacks ------------------------------------------------------------- */

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                                  const char *version, const char *upload, size_t *upload_size, void **con_cls)
{
	(void)version;
	sv_server *s = cls;
	request_ctx *ctx = *con_cls;
	if (!ctx) {
		if (!(ctx = calloc(1, sizeof(*ctx))))
			return MHD_NO;
		*con_cls = ctx;
		pthread_mutex_lock(&s->lock);
		s->metrics.in_flight++;
		pthread_mutex_unlock(&s->lock);
		/* A declared body past the limit is refused before it is read. */
		const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
		if (cl && strtoull(cl, NULL, 10) > s->options.max_body_bytes)
			ctx->too_large = true;
		else
			return MHD_YES;
	}
	if (*upload_size && !ctx->too_large) {
		if (ctx->len + *upload_size > s->options.max_body_bytes) {
			ctx->too_large = true;
		} else {
			if (ctx->len + *upload_size + 1 > ctx->cap) {
				size_t cap = ctx->cap ? ctx->cap : 4096;
				while (cap < ctx->len + *upload_size + 1)
					cap *= 2;
				char *body = realloc(ctx->body, cap);
				if (!body)
					return MHD_NO;
				ctx->body = body;
				ctx->cap = cap;
			}
			memcpy(ctx->body + ctx->len, upload, *upload_size);
			ctx->len += *upload_size;
			ctx->body[ctx->len] = '\0';
		}
		*upload_size = 0;
		return MHD_YES;
	}
	if (ctx->too_large) {
		pthread_mutex_lock(&s->lock);
		s->metrics.refused[SV_REFUSED_BODY_SIZE]++;
		pthread_mutex_unlock(&s->lock);
		*upload_size = 0;
		return reply_error(s, c, MHD_HTTP_CONTENT_TOO_LARGE, "the body is larger than the server's limit of %zu bytes "
		                   "(strata serve --max-body-bytes)", s->options.max_body_bytes);
	}
	return route(s, c, url, method, ctx);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls, enum MHD_RequestTerminationCode toe)
{
	(void)c;
	sv_server *s = cls;
	request_ctx *ctx = *con_cls;
	pthread_mutex_lock(&s->lock);
	if (ctx)
		s->metrics.in_flight--;
	if (toe == MHD_REQUEST_TERMINATED_TIMEOUT_REACHED)
		s->metrics.refused[SV_REFUSED_SLOW_CLIENT]++;
	else if (toe == MHD_REQUEST_TERMINATED_WITH_ERROR && !ctx)
		s->metrics.refused[SV_REFUSED_HEADER_SIZE]++;
	pthread_mutex_unlock(&s->lock);
	if (ctx) {
		free(ctx->body);
		free(ctx);
		*con_cls = NULL;
	}
}

static void on_connection(void *cls, struct MHD_Connection *c, void **socket_ctx,
                          enum MHD_ConnectionNotificationCode toe)
{
	(void)c;
	(void)socket_ctx;
	sv_server *s = cls;
	pthread_mutex_lock(&s->lock);
	if (toe == MHD_CONNECTION_NOTIFY_STARTED)
		s->connections++;
	else if (s->connections)
		s->connections--;
	pthread_mutex_unlock(&s->lock);
}

/* Connections past the limit are closed as they arrive, and counted. */
static enum MHD_Result on_accept(void *cls, const struct sockaddr *addr, socklen_t len)
{
	(void)addr;
	(void)len;
	sv_server *s = cls;
	pthread_mutex_lock(&s->lock);
	bool full = s->connections >= s->options.max_connections;
	if (full)
		s->metrics.refused[SV_REFUSED_CONNECTIONS]++;
	pthread_mutex_unlock(&s->lock);
	return full ? MHD_NO : MHD_YES;
}

/* ---- Start and stop ------------------------------------------------------------------------ */

int sv_server_start(sv_server *s, const sv_server_options *o, sv_model *models, size_t n_models, char *message,
                    size_t size)
{
	memset(s, 0, sizeof(*s));
	s->listen_fd = -1;
	s->options = *o;
	s->models = models;
	s->n_models = n_models;
	pthread_mutex_init(&s->lock, NULL);
	struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE}, *ai = NULL;
	char port[16];
	snprintf(port, sizeof(port), "%u", (unsigned)o->port);
	int rc = getaddrinfo(o->host, port, &hints, &ai);
	if (rc) {
		snprintf(message, size, "--host %s: %s", o->host, gai_strerror(rc));
		return 1;
	}
	unsigned flags = MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ITC |
	                 (ai->ai_family == AF_INET6 ? MHD_USE_IPv6 : 0);
	s->daemon = MHD_start_daemon(flags, o->port, on_accept, s, on_request, s, MHD_OPTION_SOCK_ADDR, ai->ai_addr,
	                             MHD_OPTION_CONNECTION_LIMIT, o->max_connections + 16, MHD_OPTION_CONNECTION_TIMEOUT,
	                             o->client_timeout_s, MHD_OPTION_CONNECTION_MEMORY_LIMIT, o->max_header_bytes,
	                             MHD_OPTION_NOTIFY_COMPLETED, on_completed, s, MHD_OPTION_NOTIFY_CONNECTION,
	                             on_connection, s, MHD_OPTION_END);
	freeaddrinfo(ai);
	if (!s->daemon) {
		snprintf(message, size, "cannot listen on %s port %u (in use, or not an address of this machine)", o->host,
		         (unsigned)o->port);
		return 1;
	}
	return 0;
}

void sv_server_set_ready(sv_server *s, bool ready)
{
	pthread_mutex_lock(&s->lock);
	s->ready = ready;
	pthread_mutex_unlock(&s->lock);
}

uint16_t sv_server_port(const sv_server *s)
{
	const union MHD_DaemonInfo *info = MHD_get_daemon_info(s->daemon, MHD_DAEMON_INFO_BIND_PORT);
	return info ? info->port : 0;
}

void sv_server_quiesce(sv_server *s)
{
	/* The listening socket comes back to the caller, to close once the daemon's threads have
	 * stopped using it (sv_server_stop). */
	sv_server_set_ready(s, false);
	if (s->daemon && s->listen_fd < 0)
		s->listen_fd = MHD_quiesce_daemon(s->daemon);
}

void sv_server_wait_idle(sv_server *s)
{
	for (unsigned waited_ms = 0; s->daemon && waited_ms < s->options.client_timeout_s * 1000u; waited_ms += 10) {
		pthread_mutex_lock(&s->lock);
		uint64_t in_flight = s->metrics.in_flight;
		pthread_mutex_unlock(&s->lock);
		if (in_flight == 0)
			break;
		nanosleep(&(struct timespec){.tv_nsec = 10 * 1000 * 1000}, NULL);
	}
}

void sv_server_stop(sv_server *s)
{
	/* Responses queued but not yet sent would be cut off by MHD_stop_daemon. */
	sv_server_wait_idle(s);
	if (s->daemon)
		MHD_stop_daemon(s->daemon);
	if (s->listen_fd >= 0)
		close(s->listen_fd);
	s->listen_fd = -1;
	pthread_mutex_destroy(&s->lock);
	s->daemon = NULL;
}
