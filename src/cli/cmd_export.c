/* strata export MODEL.yaml [--weights W.stw] -o MODEL.onnx: a model and its weights as ONNX. */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "cli.h"

/* Without --weights: the seed's initial weights, saved to a temporary file by a session. */
static int initial_weights(cli_context *ctx, char *path, size_t size)
{
	snprintf(path, size, "%s/strata-export-XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
	int fd = mkstemp(path);
	if (fd < 0) {
		cli_error("export: cannot make a temporary weights file in %s", path);
		return CLI_FAILED;
	}
	close(fd);
	int rc = cli_open_runtime(ctx);
	if (rc)
		return rc;
	uint64_t seed = ctx->opt.seed >= 0 ? (uint64_t)ctx->opt.seed : strata_model_training(ctx->model).seed;
	strata_session *s = NULL;
	strata_error err = {0};
	strata_status st = strata_session_create(ctx->rt, ctx->model, 1, seed, &s, &err);
	if (!st)
		st = strata_session_save(s, path, &err);
	strata_session_destroy(s);
	if (st) {
		cli_error("%s", err.message);
		return cli_exit_status(st);
	}
	return CLI_OK;
}

int cmd_export(cli_context *ctx)
{
	if (!ctx->opt.output) {
		cli_error("export: -o MODEL.onnx, the file to write, is required");
		return cli_close(ctx, CLI_USAGE);
	}
	int rc = cli_open_model(ctx);
	if (rc)
		return cli_close(ctx, rc);
	char temp[512] = "";
	const char *weights = ctx->opt.weights;
	if (!weights) {
		if ((rc = initial_weights(ctx, temp, sizeof(temp)))) {
			if (temp[0])
				unlink(temp);
			return cli_close(ctx, rc);
		}
		weights = temp;
	}
	strata_error err = {0};
	strata_status st = strata_onnx_export(ctx->model, weights, ctx->opt.output, &err);
	if (temp[0])
		unlink(temp);
	if (st) {
		cli_error("%s", err.message);
		return cli_close(ctx, st == STRATA_ERR_UNSUPPORTED ? CLI_USAGE : cli_exit_status(st));
	}
	printf("Exported %s (%s) -> %s, ONNX opset 17\n", ctx->opt.model_path,
	       ctx->opt.weights ? ctx->opt.weights : "the seed's initial weights", ctx->opt.output);
	return cli_close(ctx, CLI_OK);
}
