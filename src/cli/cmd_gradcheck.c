/* `strata gradcheck`: one layer's backward pass against central finite differences
 * (strata_gradcheck), on random inputs of the layer's input shapes, in training and in inference
 * mode. Exit 0 when every gradient is within the tolerance, 1 when one is not, 2 on bad usage. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "cli.h"

#define DEFAULT_INPUTS 2
#define DEFAULT_TOLERANCE 1e-2

static int parse_tolerance(const char *text, double *out)
{
	char *end;
	errno = 0;
	double v = strtod(text, &end);
	if (errno || *end || end == text || !isfinite(v) || v <= 0.0 || v >= 1.0) {
		cli_error("--tolerance: '%s' is not a number above 0 and below 1", text);
		return CLI_USAGE;
	}
	*out = v;
	return CLI_OK;
}

static void print_tensor(const strata_gradcheck_tensor *t, double tolerance)
{
	const char *verdict = t->passed ? "ok" : "FAILED";
	(void)tolerance;
	if (t->checked > 0)
		printf("  %-9s %-28s %8zu %7zu %7zu  %10.3g  %10zu  %12.6g %12.6g  %s\n", t->training ? "training" : "inference",
		       t->name, t->elements, t->checked, t->skipped, t->worst, t->worst_index, t->backward, t->differences,
		       verdict);
	else
		printf("  %-9s %-28s %8zu %7s %7s  %10s  %10s  %12s %12s  %s\n", t->training ? "training" : "inference",
		       t->name, t->elements, "-", "-", "-", "-", "-", "-", verdict);
}

int cmd_gradcheck(cli_context *ctx)
{
	if (!ctx->opt.layer) {
		cli_error("gradcheck needs --layer NAME (see strata gradcheck --help)");
		return CLI_USAGE;
	}
	double tolerance = DEFAULT_TOLERANCE;
	size_t layer = 0;
	/* Always under the guard: a check of small tensors costs little more, and a backward pass
	 * that writes outside its gradient is named instead of passing on lucky numbers. */
	ctx->opt.guard = true;
	int rc = ctx->opt.tolerance ? parse_tolerance(ctx->opt.tolerance, &tolerance) : CLI_OK;
	if (rc || (rc = cli_open_model(ctx)) || (rc = cli_find_layer(ctx, &layer)) || (rc = cli_open_runtime(ctx)))
		return cli_close(ctx, rc);
	if (ctx->opt.batch < 0)
		ctx->opt.batch = DEFAULT_INPUTS;
	strata_session *s = NULL;
	uint32_t batch = 0;
	strata_error err = {0};
	strata_gradcheck_report report = {0};
	if ((rc = cli_open_session(ctx, &s, &batch)))
		goto out_free;
	if (ctx->opt.weights && strata_session_load(s, ctx->opt.weights, &err) != STRATA_OK) {
		cli_error("%s", err.message);
		rc = cli_exit_status(err.status);
		goto out_free;
	}
	strata_training_config tc = strata_model_training(ctx->model);
	uint64_t seed = ctx->opt.seed >= 0 ? (uint64_t)ctx->opt.seed : tc.seed;
	strata_gradcheck_options o = {
		.size = sizeof(o),
		.layer = layer,
		.batch = batch,
		.seed = seed,
		.tolerance = tolerance,
		.mode = STRATA_GRADCHECK_BOTH,
		.ids = ctx->opt.ids > 0 ? (uint32_t)ctx->opt.ids : 0,
	};
	strata_status st = strata_gradcheck(s, &o, &report, &err);
	if (st != STRATA_OK) {
		cli_error("%s", err.message);
		rc = cli_exit_status(st) == CLI_USAGE ? CLI_USAGE : CLI_FAILED;
		goto out_free;
	}
	printf("gradcheck of %s (%s) in %s: %u samples, seed %llu, %s weights; step %g x max(|v|, 1), "
	       "tolerance %g\n",
	       ctx->opt.layer, strata_model_layer_type(ctx->model, layer), ctx->opt.model_path, report.batch,
	       (unsigned long long)seed, ctx->opt.weights ? ctx->opt.weights : "initial", report.step, report.tolerance);
	printf("  %-9s %-28s %8s %7s %7s  %10s  %10s  %12s %12s\n", "mode", "gradient", "elements", "checked", "kinks",
	       "worst err", "at", "backward", "differences");
	size_t failed = 0;
	for (size_t i = 0; i < report.n_tensors; i++) {
		print_tensor(&report.tensors[i], report.tolerance);
		failed += !report.tensors[i].passed;
	}
	for (size_t i = 0; i < report.n_tensors; i++)
		if (!report.tensors[i].passed)
			fprintf(stderr, "strata: %s of %s, %s mode: %s\n", report.tensors[i].input >= 0 ? "input gradient" : "weight gradient",
			        ctx->opt.layer, report.tensors[i].training ? "training" : "inference", report.tensors[i].message);
	if (report.n_tensors == 0)
		printf("%s has no float32 input and no trainable weight: nothing to check\n", ctx->opt.layer);
	if (report.passed)
		printf("passed: %zu gradients within %g\n", report.n_tensors, report.tolerance);
	else
		printf("FAILED: %zu of %zu gradients above %g or not written\n", failed, report.n_tensors, report.tolerance);
	rc = report.passed ? CLI_OK : CLI_FAILED;
out_free:
	strata_gradcheck_report_free(&report);
	strata_session_destroy(s);
	return cli_close(ctx, rc);
}
