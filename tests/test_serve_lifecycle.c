/* A served model's life on the real server (src/serve/server.c, served_model.c) over loopback,
 * driven step by step so each state is seen for certain:
 *  - loading: the server listens and is live, but /v2/health/ready, the model's metadata, ready
 *    and infer endpoints answer 503 "loading", and the repository index says LOADING;
 *  - ready: 200 everywhere, an inference, the device memory its session holds in /metrics;
 *  - unloaded: 503 on ready and infer, UNAVAILABLE in the index, the session's device memory
 *    given back; loaded again: READY and serving;
 *  - two models on one server, each answering under its own name, and the serving: section's
 *    batching and warm-up as each model's. */
#include <arpa/inet.h>
#include <check.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "serve/server.h"
#include "serve/served_model.h"
#include "support.h"

/* One HTTP/1.0 exchange with the server on loopback: the status, and the body in `body`. */
static int http(uint16_t port, const char *method, const char *path, const char *payload, char *body, size_t size)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	ck_assert_int_ge(fd, 0);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ck_assert_int_eq(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	char req[4096];
	size_t plen = payload ? strlen(payload) : 0;
	int n = snprintf(req, sizeof(req), "%s %s HTTP/1.0\r\nContent-Length: %zu\r\n\r\n%s", method, path, plen,
	                 payload ? payload : "");
	ck_assert_int_eq(write(fd, req, (size_t)n), n);
	static char reply[1 << 16];
	size_t got = 0;
	ssize_t r;
	while ((r = read(fd, reply + got, sizeof(reply) - 1 - got)) > 0)
		got += (size_t)r;
	close(fd);
	reply[got] = '\0';
	int status = 0;
	ck_assert_msg(sscanf(reply, "HTTP/1.%*d %d", &status) == 1, "no status line: %s", reply);
	const char *b = strstr(reply, "\r\n\r\n");
	snprintf(body, size, "%s", b ? b + 4 : "");
	return status;
}

/* A dense model on 4 inputs; `serving` its serving: section's body or NULL. */
static char *write_model(const char *dir, const char *name, const char *serving)
{
	char file[64];
	snprintf(file, sizeof(file), "%s.yaml", name);
	char *path = ts_join(dir, file);
	FILE *f = fopen(path, "w");
	ck_assert_ptr_nonnull(f);
	fprintf(f, "name: %s\ninput: {shape: [4]}\nlayers:\n  - {type: dense, units: 3, activation: softmax}\n", name);
	if (serving)
		fprintf(f, "serving: %s\n", serving);
	fclose(f);
	return path;
}

/* The model's serving: section, as strata serve takes it. */
static strata_serving_config serving_of(strata_registry *reg, const char *path)
{
	strata_model *m = NULL;
	strata_error err = {0};
	ck_assert_msg(strata_model_load(reg, path, &m, &err) == STRATA_OK, "%s", err.message);
	strata_serving_config c = strata_model_serving(m);
	strata_model_free(m);
	return c;
}

/* The value of the metrics line starting with `series`, or -1. */
static double metric(uint16_t port, const char *series)
{
	char text[1 << 16];
	ck_assert_int_eq(http(port, "GET", "/metrics", NULL, text, sizeof(text)), 200);
	const char *at = strstr(text, series);
	return at ? strtod(at + strlen(series), NULL) : -1;
}

START_TEST(test_loading_ready_unloaded)
{
	char dir[256], body[8192];
	ts_tmpdir_make(dir, sizeof(dir), "serve_lifecycle");
	char *a_path = write_model(dir, "alpha", "{max_batch_size: 8, preferred_batch_sizes: [2, 4]}");
	char *b_path = write_model(dir, "beta", "{warmup: false}");
	strata_registry *reg = ts_registry();
	pthread_mutex_t load_lock = PTHREAD_MUTEX_INITIALIZER;
	static sv_model models[2];
	char message[1024];
	strata_serving_config a_serving = serving_of(reg, a_path), b_serving = serving_of(reg, b_path);
	const char *device = getenv("STRATA_TEST_DEVICE");
	ck_assert_int_eq(sv_model_init(&models[0], "alpha", a_path, NULL, &a_serving, device, reg, &load_lock, message,
	                               sizeof(message)), 0);
	ck_assert_int_eq(sv_model_init(&models[1], "beta", b_path, NULL, &b_serving, device, reg, &load_lock, message,
	                               sizeof(message)), 0);
	sv_server_options so;
	sv_server_defaults(&so);
	so.port = 0;
	sv_server server;
	ck_assert_msg(sv_server_start(&server, &so, models, 2, message, sizeof(message)) == 0, "%s", message);
	uint16_t port = sv_server_port(&server);

	/* Loading: live, not ready; the models' endpoints say so. */
	ck_assert_int_eq(http(port, "GET", "/v2/health/live", NULL, body, sizeof(body)), 200);
	ck_assert_int_eq(http(port, "GET", "/v2/health/ready", NULL, body, sizeof(body)), 503);
	ck_assert_int_eq(http(port, "GET", "/v2/models/alpha", NULL, body, sizeof(body)), 503);
	ck_assert_msg(strstr(body, "model 'alpha' is loading"), "%s", body);
	ck_assert_int_eq(http(port, "GET", "/v2/models/alpha/ready", NULL, body, sizeof(body)), 503);
	ck_assert_int_eq(http(port, "POST", "/v2/models/alpha/infer", "{}", body, sizeof(body)), 503);
	ck_assert_int_eq(http(port, "POST", "/v2/repository/models/alpha/load", "", body, sizeof(body)), 503);
	ck_assert_int_eq(http(port, "POST", "/v2/repository/index", "", body, sizeof(body)), 200);
	ck_assert_msg(strstr(body, "\"name\":\"alpha\"") && strstr(body, "\"state\":\"LOADING\""), "%s", body);
	ck_assert_double_eq(metric(port, "strata_device_memory_bytes{model=\"alpha\"} "), 0);

	/* Ready: both models, each with its own batching. */
	for (int i = 0; i < 2; i++)
		ck_assert_msg(sv_model_start(&models[i], message, sizeof(message)) == 0, "%s", message);
	ck_assert_uint_eq(models[0].batching.max_batch_size, 8);
	ck_assert_uint_eq(models[0].batching.n_preferred_batch_sizes, 2);
	ck_assert_uint_eq(models[1].batching.max_batch_size, 64);
	/* alpha computed a batch of each size 1 to 8 before serving, beta none; neither counts. */
	ck_assert(models[0].warmup_seconds > 0);
	ck_assert(models[1].warmup_seconds == 0);
	ck_assert_double_eq(metric(port, "strata_batch_executions_total{model=\"alpha\"} "), 0);
	ck_assert_int_eq(http(port, "GET", "/v2/health/ready", NULL, body, sizeof(body)), 503);
	sv_server_set_ready(&server, true);
	ck_assert_int_eq(http(port, "GET", "/v2/health/ready", NULL, body, sizeof(body)), 200);
	ck_assert_int_eq(http(port, "POST", "/v2/repository/index", "", body, sizeof(body)), 200);
	ck_assert_msg(strstr(body, "\"state\":\"READY\"") && !strstr(body, "LOADING"), "%s", body);
	static const char *const request = "{\"inputs\":[{\"name\":\"input_1\",\"shape\":[1,4],\"datatype\":\"FP32\","
	                                   "\"data\":[1,2,3,4]}]}";
	const char *names[] = {"alpha", "beta"};
	for (int i = 0; i < 2; i++) {
		char path[64];
		snprintf(path, sizeof(path), "/v2/models/%s/infer", names[i]);
		ck_assert_int_eq(http(port, "POST", path, request, body, sizeof(body)), 200);
		char name[64];
		snprintf(name, sizeof(name), "\"model_name\":\"%s\"", names[i]);
		ck_assert_msg(strstr(body, name) && strstr(body, "\"shape\":[1,3]"), "%s", body);
	}
	/* Weights (4 x 3 + 3) and a batch of 8 inputs and outputs at least, on the device. */
	double held = metric(port, "strata_device_memory_bytes{model=\"alpha\"} ");
	ck_assert_msg(held >= (4 * 3 + 3 + 8 * 4 + 8 * 3) * 4.0, "%g bytes", held);
	ck_assert_double_eq(held, (double)sv_model_memory_bytes(&models[0]));

	/* Unloaded: refused, its session's memory back; the other model serves on. */
	ck_assert_int_eq(http(port, "POST", "/v2/repository/models/alpha/unload", "", body, sizeof(body)), 200);
	ck_assert_int_eq(http(port, "GET", "/v2/models/alpha/ready", NULL, body, sizeof(body)), 503);
	ck_assert_int_eq(http(port, "POST", "/v2/models/alpha/infer", request, body, sizeof(body)), 503);
	ck_assert_msg(strstr(body, "unloaded"), "%s", body);
	ck_assert_int_eq(http(port, "POST", "/v2/models/beta/infer", request, body, sizeof(body)), 200);
	ck_assert_int_eq(http(port, "POST", "/v2/repository/index", "", body, sizeof(body)), 200);
	ck_assert_msg(strstr(body, "\"state\":\"UNAVAILABLE\""), "%s", body);
	double after = -1;
	for (int tries = 0; tries < 500; tries++) { /* the worker frees the session once its queue is empty */
		after = metric(port, "strata_device_memory_bytes{model=\"alpha\"} ");
		if (after < held)
			break;
		nanosleep(&(struct timespec){.tv_nsec = 10 * 1000 * 1000}, NULL);
	}
	ck_assert_msg(after < held - (4 * 3 + 3) * 4.0, "%g bytes after the unload, %g before", after, held);

	/* Loaded again. */
	ck_assert_int_eq(http(port, "POST", "/v2/repository/models/alpha/load", "", body, sizeof(body)), 200);
	ck_assert_int_eq(http(port, "GET", "/v2/models/alpha/ready", NULL, body, sizeof(body)), 200);
	ck_assert_int_eq(http(port, "POST", "/v2/models/alpha/infer", request, body, sizeof(body)), 200);
	ck_assert_double_eq(metric(port, "strata_device_memory_bytes{model=\"alpha\"} "), held);

	sv_server_quiesce(&server);
	ck_assert_int_eq(server.ready, false);
	for (int i = 0; i < 2; i++)
		sv_model_drain(&models[i]);
	sv_server_stop(&server);
	for (int i = 0; i < 2; i++)
		sv_model_close(&models[i]);
	strata_registry_close(reg);
	free(a_path);
	free(b_path);
	ts_tmpdir_remove(dir);
}
END_TEST

static Suite *lifecycle_suite(void)
{
	Suite *s = suite_create("serve_lifecycle");
	TCase *tc = tcase_create("states");
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_loading_ready_unloaded);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return ts_run(lifecycle_suite());
}
