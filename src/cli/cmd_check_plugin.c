/* strata check-plugin PLUGIN.so: a plugin author's check. The plugin is loaded alone (beside the
 * runtime's own programs), every OpenCL program it registers is compiled for the device, each
 * layer type it declares is built on a small input and run forward and backward on a small batch
 * under the guard (canaries around every tensor, checked after every launch). With --oclgrind
 * the same check runs again in a child process under Oclgrind, with the settings of
 * tests/oclgrind.sh, and any report fails it. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli.h"

#define CHECK_BATCH 2
#define CHECK_SEED 1
#define MAX_PARAMS 32

/* The per-sample inputs tried, in order, until the layer builds on one. */
static const char *const shapes[] = {"[8]", "[6, 6, 2]", "[4, 6]", "[4, 4, 4, 2]", "[16, 16, 3]",
                                     "[8], dtype: int32", "[4, 6], dtype: int32"};
#define N_SHAPES (sizeof(shapes) / sizeof(shapes[0]))
/* Values tried for every required parameter that --params leaves out, each for all at once: the
 * check then says what it guessed, and skips the layer when none builds. */
static const char *const guesses[] = {"2", "0.5", "relu", "[2, 2]", "true"};
#define N_GUESSES (sizeof(guesses) / sizeof(guesses[0]))

typedef struct param_kv {
	char key[64];
	char value[192];
} param_kv;

static char *trim(char *s)
{
	while (*s == ' ' || *s == '\t')
		s++;
	size_t n = strlen(s);
	while (n && (s[n - 1] == ' ' || s[n - 1] == '\t'))
		s[--n] = '\0';
	return s;
}

/* "k: v, k2: [1, 2]" into pairs; commas inside brackets or braces belong to the value. */
static int parse_params(const char *text, param_kv *out, size_t *n)
{
	*n = 0;
	if (!text)
		return CLI_OK;
	char buf[4096];
	if (strlen(text) >= sizeof(buf)) {
		cli_error("--params: too long");
		return CLI_USAGE;
	}
	snprintf(buf, sizeof(buf), "%s", text);
	char *start = buf;
	int depth = 0;
	for (char *p = buf;; p++) {
		if (*p == '[' || *p == '{')
			depth++;
		else if ((*p == ']' || *p == '}') && depth > 0)
			depth--;
		if (*p != '\0' && !(*p == ',' && depth == 0))
			continue;
		bool last = *p == '\0';
		*p = '\0';
		char *item = trim(start), *colon = strchr(item, ':');
		if (*item) {
			if (!colon || *n == MAX_PARAMS) {
				cli_error("--params: '%s' is not 'key: value' (at most %d of them)", item, MAX_PARAMS);
				return CLI_USAGE;
			}
			*colon = '\0';
			char *key = trim(item), *value = trim(colon + 1);
			if (!*key || !*value || strlen(key) >= sizeof(out->key) || strlen(value) >= sizeof(out->value)) {
				cli_error("--params: '%s' needs a key and a value", key);
				return CLI_USAGE;
			}
			snprintf(out[*n].key, sizeof(out->key), "%s", key);
			snprintf(out[*n].value, sizeof(out->value), "%s", value);
			(*n)++;
		}
		if (last)
			break;
		start = p + 1;
	}
	return CLI_OK;
}

static const char *given(const param_kv *kv, size_t n, const char *key)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(kv[i].key, key) == 0)
			return kv[i].value;
	return NULL;
}

/* The model of one layer of type `i` on inputs of `shape` (with --params, and `guess` for the
 * required parameters they leave out), into buf; false when it does not fit. */
static bool check_model(const strata_registry *reg, size_t i, const char *shape, const param_kv *kv, size_t n_kv,
                        const char *guess, char *buf, size_t size)
{
	uint32_t lo, hi;
	strata_registry_layer_inputs(reg, i, &lo, &hi);
	uint32_t n_in = lo ? lo : 1;
	const char *type = strata_registry_layer_type(reg, i);
	size_t at = 0;
	int w = snprintf(buf, size, "name: check_%s\ninputs: [", type);
	for (uint32_t k = 0; w >= 0 && (size_t)w < size - at && k < n_in; k++) {
		at += (size_t)w;
		w = snprintf(buf + at, size - at, "%s{name: in_%u, shape: %s}", k ? ", " : "", k + 1, shape);
	}
	if (w >= 0 && (size_t)w < size - at) {
		at += (size_t)w;
		w = snprintf(buf + at, size - at, "]\nlayers:\n  - {type: %s, name: check_1, inputs: [", type);
	}
	for (uint32_t k = 0; w >= 0 && (size_t)w < size - at && k < n_in; k++) {
		at += (size_t)w;
		w = snprintf(buf + at, size - at, "%sin_%u", k ? ", " : "", k + 1);
	}
	if (w >= 0 && (size_t)w < size - at) {
		at += (size_t)w;
		w = snprintf(buf + at, size - at, "]");
	}
	size_t n_params = strata_registry_layer_param_count(reg, i);
	for (size_t j = 0; j < n_params && w >= 0 && (size_t)w < size - at; j++) {
		const char *def, *name = strata_registry_layer_param(reg, i, j, &def);
		const char *value = name ? given(kv, n_kv, name) : NULL;
		if (!value && name && !def)
			value = guess;
		if (!value)
			continue;
		at += (size_t)w;
		w = snprintf(buf + at, size - at, ", %s: %s", name, value);
	}
	if (w >= 0 && (size_t)w < size - at) {
		at += (size_t)w;
		w = snprintf(buf + at, size - at, "}\n");
	}
	return w >= 0 && (size_t)w < size - at;
}

/* The required parameters of type i that --params does not give, into buf ("" when none). */
static void missing_params(const strata_registry *reg, size_t i, const param_kv *kv, size_t n_kv, char *buf,
                           size_t size)
{
	buf[0] = '\0';
	size_t n = strata_registry_layer_param_count(reg, i), at = 0;
	for (size_t j = 0; j < n; j++) {
		const char *def, *name = strata_registry_layer_param(reg, i, j, &def);
		if (!name || def || given(kv, n_kv, name))
			continue;
		int w = snprintf(buf + at, size - at, "%s%s", at ? ", " : "", name);
		if (w < 0 || (size_t)w >= size - at)
			break;
		at += (size_t)w;
	}
}

/* Builds type i on the first shape it accepts and runs a training pass (forward, and backward
 * when it has one) on it; prints the type's line; returns CLI_OK when it passed or was skipped,
 * CLI_FAILED when it failed, CLI_USAGE when --params is not YAML. */
static int check_layer(cli_context *ctx, size_t i, const param_kv *kv, size_t n_kv)
{
	const char *type = strata_registry_layer_type(ctx->reg, i);
	char missing[512];
	missing_params(ctx->reg, i, kv, n_kv, missing, sizeof(missing));
	strata_error first = {0}, err = {0};
	strata_model *model = NULL;
	const char *shape = NULL, *guess = NULL;
	for (size_t g = 0; g < (*missing ? N_GUESSES : 1) && !model; g++) {
		for (size_t k = 0; k < N_SHAPES && !model; k++) {
			char text[8192];
			if (!check_model(ctx->reg, i, shapes[k], kv, n_kv, *missing ? guesses[g] : NULL, text, sizeof(text)))
				continue;
			char display[160];
			snprintf(display, sizeof(display), "check-plugin:%s", type);
			memset(&err, 0, sizeof(err));
			if (strata_model_load_string(ctx->reg, text, strlen(text), display, NULL, &model, &err) == STRATA_OK) {
				shape = shapes[k];
				guess = *missing ? guesses[g] : NULL;
			} else if (!first.message[0]) {
				first = err;
			}
			if (err.status == STRATA_ERR_PARSE)
				break; /* --params that are not YAML: no shape helps */
		}
	}
	if (!model && first.status == STRATA_ERR_PARSE && n_kv) {
		cli_error("--params: not YAML values (%s)", first.message);
		return CLI_USAGE;
	}
	if (!model && *missing) {
		printf("skip  layer %-16s required parameter(s) without a default: %s; no guess built (first error: %s); "
		       "give them with --params 'NAME: VALUE, ...'\n",
		       type, missing, first.message);
		return CLI_OK;
	}
	if (!model) {
		printf("FAIL  layer %-16s builds on none of the small inputs tried (%s ...): %s\n", type, shapes[0],
		       first.message);
		return CLI_FAILED;
	}
	char guessed[640] = "";
	if (guess)
		snprintf(guessed, sizeof(guessed), " (guessed %s for: %s)", guess, missing);
	bool backward = strata_registry_layer_has_backward(ctx->reg, i);
	strata_session *s = NULL;
	memset(&err, 0, sizeof(err));
	strata_status st = strata_session_create(ctx->rt, model, CHECK_BATCH, CHECK_SEED, &s, &err);
	if (!st)
		st = strata_session_check_pass(s, CHECK_BATCH, CHECK_SEED, backward, &err);
	strata_session_destroy(s);
	strata_model_free(model);
	const char *how = ctx->opt.no_guard ? "" : " under the guard";
	if (st) {
		printf("FAIL  layer %-16s on input %s%s: %s\n", type, shape, guessed, err.message);
		return CLI_FAILED;
	}
	printf("ok    layer %-16s forward%s on input %s, batch %d%s%s\n", type,
	       backward ? " and backward" : " (no backward)", shape, CHECK_BATCH, how, guessed);
	return CLI_OK;
}

/* ---- --oclgrind ------------------------------------------------------------------------------ */

/* The oclgrind wrapper: STRATA_OCLGRIND, else the first `oclgrind` on PATH; false when none. */
static bool find_oclgrind(char *out, size_t size)
{
	const char *forced = getenv("STRATA_OCLGRIND");
	if (forced && *forced) {
		snprintf(out, size, "%s", forced);
		return access(out, X_OK) == 0;
	}
	const char *path = getenv("PATH");
	if (!path || !*path)
		path = "/usr/local/bin:/usr/bin:/bin";
	while (*path) {
		size_t n = strcspn(path, ":");
		if (n && (size_t)snprintf(out, size, "%.*s/oclgrind", (int)n, path) < size && access(out, X_OK) == 0)
			return true;
		path += n + (path[n] == ':');
	}
	return false;
}

static void remove_tree(const char *dir)
{
	const char *names[] = {"oclgrind.log", "child.err"};
	char p[4200];
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		snprintf(p, sizeof(p), "%s/%s", dir, names[i]);
		unlink(p);
	}
	snprintf(p, sizeof(p), "%s/cache", dir);
	rmdir(p);
	rmdir(dir);
}

/* Oclgrind's reports: the log, and the child's stderr lines that are not its own ("strata: ...",
 * or the lines of a message it printed), as tests/oclgrind.sh counts them. Prints the first ones;
 * returns how many lines there were. */
static size_t print_reports(const char *log, const char *child_err)
{
	size_t lines = 0;
	FILE *f = fopen(log, "r");
	char line[4096];
	if (f) {
		while (fgets(line, sizeof(line), f)) {
			if (lines == 0)
				printf("check-plugin: Oclgrind reported errors; the first reports:\n");
			if (lines++ < 60)
				fputs(line, stdout);
		}
		fclose(f);
	}
	f = fopen(child_err, "r");
	if (f) {
		bool in_message = false;
		while (fgets(line, sizeof(line), f)) {
			bool own = strncmp(line, "strata:", 7) == 0;
			/* The lines after a "strata:" line that ends in ':' (a build log) are the message's. */
			if (own || in_message) {
				fputs(line, stderr);
				size_t n = strlen(line);
				in_message = (own && n > 1 && line[n - 2] == ':') || (in_message && n > 1);
				continue;
			}
			if (lines == 0)
				printf("check-plugin: Oclgrind reported errors; the first reports:\n");
			if (lines++ < 60)
				fputs(line, stdout);
		}
		fclose(f);
	}
	return lines;
}

static int check_under_oclgrind(cli_context *ctx)
{
	char oclgrind[4096], self[4096];
	if (!find_oclgrind(oclgrind, sizeof(oclgrind))) {
		cli_error("check-plugin --oclgrind: oclgrind is not installed (no executable 'oclgrind' on PATH%s)",
		          getenv("STRATA_OCLGRIND") ? " or at STRATA_OCLGRIND" : "");
		return CLI_FAILED;
	}
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n <= 0) {
		cli_error("check-plugin --oclgrind: cannot find this program (/proc/self/exe): %s", strerror(errno));
		return CLI_FAILED;
	}
	self[n] = '\0';
	const char *tmp = getenv("TMPDIR");
	char dir[4096], log[4200], child_err[4200], cache[4200];
	snprintf(dir, sizeof(dir), "%s/strata-check-plugin.XXXXXX", tmp && *tmp ? tmp : "/tmp");
	if (!mkdtemp(dir)) {
		cli_error("check-plugin --oclgrind: cannot make a temporary folder %s: %s", dir, strerror(errno));
		return CLI_FAILED;
	}
	snprintf(log, sizeof(log), "%s/oclgrind.log", dir);
	snprintf(child_err, sizeof(child_err), "%s/child.err", dir);
	snprintf(cache, sizeof(cache), "%s/cache", dir);
	printf("check-plugin: STRATA_POOL=separate %s --check-api --data-races --uninitialized --build-options "
	       "-cl-opt-disable --log %s strata check-plugin %s --device oclgrind\n",
	       oclgrind, log, ctx->opt.model_path);
	fflush(stdout);
	pid_t pid = fork();
	if (pid < 0) {
		cli_error("check-plugin --oclgrind: fork: %s", strerror(errno));
		remove_tree(dir);
		return CLI_FAILED;
	}
	if (pid == 0) {
		/* The child: Oclgrind's OpenCL library (its wrapper preloads it), the Oclgrind device chosen
		 * by name, a buffer per tensor and no host write covering part of one (see tensor_pool.h),
		 * no guard (Oclgrind bounds every buffer itself) and no kernel cache from another device. */
		FILE *e = freopen(child_err, "w", stderr);
		if (!e)
			_exit(127);
		if (setenv("STRATA_POOL", "separate", 1) || setenv("XDG_CACHE_HOME", cache, 1) ||
		    unsetenv("STRATA_GUARD") || unsetenv("STRATA_DEVICE"))
			_exit(127);
		const char *argv[16];
		int a = 0;
		argv[a++] = oclgrind;
		argv[a++] = "--check-api";
		argv[a++] = "--data-races";
		argv[a++] = "--uninitialized";
		argv[a++] = "--build-options";
		argv[a++] = "-cl-opt-disable";
		argv[a++] = "--log";
		argv[a++] = log;
		argv[a++] = self;
		argv[a++] = "check-plugin";
		argv[a++] = ctx->opt.model_path;
		argv[a++] = "--device=oclgrind";
		argv[a++] = "--no-guard";
		if (ctx->opt.params) {
			argv[a++] = "--params";
			argv[a++] = ctx->opt.params;
		}
		argv[a] = NULL;
		execv(oclgrind, (char *const *)argv);
		fprintf(stderr, "strata: check-plugin --oclgrind: cannot run %s: %s\n", oclgrind, strerror(errno));
		_exit(127);
	}
	int status = 0;
	while (waitpid(pid, &status, 0) < 0) {
		if (errno != EINTR) {
			cli_error("check-plugin --oclgrind: waitpid: %s", strerror(errno));
			remove_tree(dir);
			return CLI_FAILED;
		}
	}
	size_t reports = print_reports(log, child_err);
	int rc = CLI_OK;
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		if (WIFEXITED(status))
			cli_error("check-plugin --oclgrind: the check under Oclgrind failed (status %d)", WEXITSTATUS(status));
		else
			cli_error("check-plugin --oclgrind: the check under Oclgrind was killed by signal %d",
			          WIFSIGNALED(status) ? WTERMSIG(status) : 0);
		rc = CLI_FAILED;
	}
	if (reports) {
		cli_error("check-plugin --oclgrind: Oclgrind reported %zu line(s) of errors for %s", reports,
		          ctx->opt.model_path);
		rc = CLI_FAILED;
	} else if (rc == CLI_OK) {
		printf("check-plugin: no Oclgrind reports\n");
	}
	remove_tree(dir);
	return rc;
}

/* ---- the check ------------------------------------------------------------------------------- */

int cmd_check_plugin(cli_context *ctx)
{
	const char *path = ctx->opt.model_path;
	param_kv kv[MAX_PARAMS];
	size_t n_kv = 0;
	int rc = parse_params(ctx->opt.params, kv, &n_kv);
	if (rc)
		return rc;
	struct stat sb;
	if (stat(path, &sb) != 0 || !S_ISREG(sb.st_mode)) {
		cli_error("check-plugin: %s: %s", path, stat(path, &sb) != 0 ? strerror(errno) : "not a regular file");
		return CLI_USAGE;
	}
	if (ctx->opt.oclgrind)
		return check_under_oclgrind(ctx);

	/* The plugin alone: its layers are checked one at a time, each on the model input directly. */
	strata_registry_options ro = {
		.size = sizeof(ro),
		.no_default_paths = true,
		.log = cli_log,
		.verbosity = ctx->opt.verbose ? STRATA_LOG_INFO : STRATA_LOG_WARN,
	};
	strata_error err = {0};
	if (strata_registry_open(&ro, &ctx->reg, &err) != STRATA_OK ||
	    strata_registry_load_plugin(ctx->reg, path, &err) != STRATA_OK) {
		cli_error("%s", err.message);
		return cli_close(ctx, CLI_FAILED);
	}
	ctx->opt.guard = !ctx->opt.no_guard;
	if ((rc = cli_open_runtime(ctx)))
		return cli_close(ctx, rc);
	printf("check-plugin: %s on %s%s\n", path, strata_runtime_device(ctx->rt)->name,
	       strata_runtime_guarded(ctx->rt) ? ", guard mode" : "");

	size_t failed = 0, programs = 0, layers = 0;
	for (size_t i = 0; i < strata_registry_program_count(ctx->reg); i++) {
		const char *name = strata_registry_program_name(ctx->reg, i);
		if (strcmp(strata_registry_program_plugin(ctx->reg, i), "strata") == 0)
			continue; /* the runtime's own */
		programs++;
		memset(&err, 0, sizeof(err));
		if (strata_runtime_build_program(ctx->rt, name, &err) == STRATA_OK) {
			printf("ok    program %-14s compiled\n", name);
		} else {
			printf("FAIL  program %-14s %s\n", name, err.message);
			failed++;
		}
	}
	for (size_t i = 0; i < strata_registry_layer_count(ctx->reg); i++, layers++) {
		if ((rc = check_layer(ctx, i, kv, n_kv)) == CLI_USAGE)
			return cli_close(ctx, rc);
		failed += rc != CLI_OK;
	}
	if (programs + layers == 0) {
		printf("FAIL  %s registers no program and no layer type\n", path);
		failed++;
	}
	printf("check-plugin: %zu program(s), %zu layer type(s): %s\n", programs, layers,
	       failed ? "FAILED" : "all passed");
	fflush(stdout);
	return cli_close(ctx, failed ? CLI_FAILED : CLI_OK);
}
