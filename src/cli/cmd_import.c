/* strata import MODEL.onnx -o NAME.yaml: an ONNX model as a model file and its weights. */
#include <stdio.h>

#include "cli.h"

int cmd_import(cli_context *ctx)
{
	if (!ctx->opt.output) {
		cli_error("import: -o NAME.yaml, the model file to write, is required");
		return cli_close(ctx, CLI_USAGE);
	}
	int rc = cli_open_registry(ctx);
	if (rc != CLI_OK)
		return cli_close(ctx, rc);
	strata_onnx_import_options options = {
		.size = sizeof(options),
		.model_path = ctx->opt.output,
		.weights_path = ctx->opt.weights,
	};
	strata_onnx_import_result *result = NULL;
	strata_error err = {0};
	strata_status st = strata_onnx_import(ctx->reg, ctx->opt.model_path, &options, &result, &err);
	if (st == STRATA_ERR_UNSUPPORTED && result && strata_onnx_import_refusals(result)[0]) {
		/* The message may be cut at its size; the result holds every refusal. */
		size_t n = 0;
		for (const char *p = strata_onnx_import_refusals(result); *p; p++)
			n += *p == '\n';
		cli_error("%s: %zu node%s cannot be imported (nothing was written):\n%s", ctx->opt.model_path, n,
		          n == 1 ? "" : "s", strata_onnx_import_refusals(result));
		strata_onnx_import_result_free(result);
		return cli_close(ctx, CLI_USAGE);
	}
	if (st) {
		cli_error("%s", err.message);
		strata_onnx_import_result_free(result);
		return cli_close(ctx, st == STRATA_ERR_UNSUPPORTED ? CLI_USAGE : cli_exit_status(st));
	}
	size_t layers = 0;
	strata_model *m = NULL;
	if (strata_model_load(ctx->reg, ctx->opt.output, &m, &err) == STRATA_OK) {
		layers = strata_model_layer_count(m);
		strata_model_free(m);
	}
	printf("Imported %s: %zu layers, %zu input%s, %zu output%s -> %s\n", ctx->opt.model_path, layers,
	       strata_onnx_import_io_count(result, false), strata_onnx_import_io_count(result, false) == 1 ? "" : "s",
	       strata_onnx_import_io_count(result, true), strata_onnx_import_io_count(result, true) == 1 ? "" : "s",
	       ctx->opt.output);
	strata_onnx_import_result_free(result);
	return cli_close(ctx, CLI_OK);
}
