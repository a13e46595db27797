/* `strata serve`'s HTTP side: libmicrohttpd with a thread per connection (a request blocks its
 * own thread while its samples wait in a model's queue), the Open Inference Protocol's endpoints,
 * /metrics, and the limits that keep bad clients from hurting good ones. */
#ifndef ST_SERVE_SERVER_H
#define ST_SERVE_SERVER_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "serve/metrics.h"
#include "serve/served_model.h"

typedef struct sv_server_options {
	const char *host;          /* the address to listen on (default 127.0.0.1) */
	uint16_t port;             /* default 8000; 0 picks a free one (sv_server_port says which) */
	size_t max_body_bytes;     /* larger bodies get 413 (default 64 MiB) */
	size_t max_header_bytes;   /* the request line and headers (default 16 KiB) */
	unsigned max_connections;  /* connections past this are closed at once (default 256) */
	unsigned client_timeout_s; /* a connection idle this long is closed (default 30) */
} sv_server_options;

void sv_server_defaults(sv_server_options *o);

typedef struct sv_server {
	struct MHD_Daemon *daemon;
	sv_server_options options;
	sv_model *models;
	size_t n_models;
	pthread_mutex_t lock; /* metrics, connections */
	sv_server_metrics metrics;
	unsigned connections;
	bool ready; /* under lock */
	int listen_fd; /* after sv_server_quiesce: the listening socket, closed by sv_server_stop */
} sv_server;

/* Listens and serves `models` (which outlive the server). 0, or non-zero with `message`. */
int sv_server_start(sv_server *s, const sv_server_options *o, sv_model *models, size_t n_models, char *message,
                    size_t size);
uint16_t sv_server_port(const sv_server *s);
/* GET /v2/health/ready answers 200 once the server is made ready (every model loaded); 503
 * before, and after sv_server_quiesce. */
void sv_server_set_ready(sv_server *s, bool ready);
/* Stops accepting connections; requests on open ones still get answers. */
void sv_server_quiesce(sv_server *s);
/* Waits until no request is in progress (answered, response sent), at most the client timeout. */
void sv_server_wait_idle(sv_server *s);
/* Closes every connection (waiting for requests in progress) and frees the server. */
void sv_server_stop(sv_server *s);

#endif
