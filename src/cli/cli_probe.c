/* What `strata visualize` and `strata embed` share: the layer --layer names, the -o path checked
 * before any work, and the weights. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"

int cli_find_layer(cli_context *ctx, size_t *layer)
{
	size_t n = strata_model_layer_count(ctx->model);
	for (size_t i = 0; i < n; i++)
		if (strcmp(strata_model_layer_name(ctx->model, i), ctx->opt.layer) == 0) {
			*layer = i;
			return CLI_OK;
		}
	char names[1024] = "";
	size_t used = 0;
	for (size_t i = 0; i < n && used < sizeof(names); i++)
		used += (size_t)snprintf(names + used, sizeof(names) - used, "%s%s", i ? ", " : "",
		                         strata_model_layer_name(ctx->model, i));
	cli_error("%s has no layer '%s'; its layers: %s", ctx->opt.model_path, ctx->opt.layer,
	          n ? names : "none");
	return CLI_USAGE;
}

int cli_check_output(const char *path)
{
	struct stat sb;
	if (stat(path, &sb) == 0 && S_ISDIR(sb.st_mode)) {
		cli_error("cannot write %s: it is a folder", path);
		return CLI_USAGE;
	}
	char *dir = strdup(path);
	if (!dir) {
		cli_error("out of memory");
		return CLI_FAILED;
	}
	char *slash = strrchr(dir, '/');
	const char *folder = !slash ? "." : slash == dir ? "/" : (*slash = '\0', dir);
	int rc = CLI_OK;
	if (access(folder, W_OK) != 0) {
		cli_error("cannot write %s: folder %s: %s", path, folder, strerror(errno));
		rc = CLI_USAGE;
	}
	free(dir);
	return rc;
}

int cli_load_weights(cli_context *ctx, strata_session *s)
{
	if (!ctx->opt.weights) {
		strata_training_config tc = strata_model_training(ctx->model);
		long long seed = ctx->opt.seed >= 0 ? ctx->opt.seed : (long long)tc.seed;
		fprintf(stderr, "strata: warning: no --weights: the initial weights of seed %lld, untrained\n", seed);
		return CLI_OK;
	}
	strata_error err = {0};
	if (strata_session_load(s, ctx->opt.weights, &err) != STRATA_OK) {
		cli_error("%s", err.message);
		return cli_exit_status(err.status);
	}
	return CLI_OK;
}
