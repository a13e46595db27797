/* `strata tune`: searches CLBlast's GEMM parameters for the device on the model's training
 * shapes, then per shape the faster of CLBlast and Strata's own GEMM, and stores the winners,
 * which every later runtime on the device applies. */
#include <stdio.h>

#include "cli.h"

int cmd_tune(cli_context *ctx)
{
	int rc = cli_open_model(ctx);
	if (rc || (rc = cli_open_runtime(ctx)))
		return cli_close(ctx, rc);
	const strata_device_info *dev = strata_runtime_device(ctx->rt);
	strata_tune_options o = {
		.size = sizeof(o),
		.batch_size = ctx->opt.batch > 0 ? (uint32_t)ctx->opt.batch : 0,
		.budget_seconds = ctx->opt.budget > 0 ? (double)ctx->opt.budget : 0,
		.seed = ctx->opt.seed >= 0 ? (uint64_t)ctx->opt.seed : 1,
		.report = stdout,
	};
	printf("Tuning GEMMs for %s on %s (%s)\n", strata_model_name(ctx->model), dev->name, dev->platform);
	strata_tune_result r;
	strata_error err = {0};
	if (strata_tune(ctx->rt, ctx->model, &o, &r, &err) != STRATA_OK) {
		cli_error("%s", err.message);
		return cli_close(ctx, cli_exit_status(err.status) == CLI_USAGE ? CLI_USAGE : CLI_FAILED);
	}
	printf("%u candidates tried: %u computed wrong results, %u did not build or run\n", r.tried, r.rejected,
	       r.failed);
	if (r.after_ms < 0) {
		cli_error("no candidate passed its checks; nothing was stored");
		return cli_close(ctx, CLI_FAILED);
	}
	if (!r.improved) {
		printf("No GEMM choice beat those in force (%.1f ms vs %.1f ms of GEMMs per step)\n", r.after_ms,
		       r.before_ms);
		if (r.stored)
			printf("Kernel tunables saved to %s\n", r.path);
		else
			printf("Nothing stored\n");
		return cli_close(ctx, CLI_OK);
	}
	if (r.before_ms > 0)
		printf("GEMMs per training step: %.1f ms -> %.1f ms (%.2fx)\n", r.before_ms, r.after_ms,
		       r.before_ms / r.after_ms);
	else
		printf("GEMMs per training step: %.1f ms (the parameters in force before failed their checks)\n",
		       r.after_ms);
	if (r.stored)
		printf("Saved to %s\n", r.path);
	return cli_close(ctx, CLI_OK);
}
