/* `strata eval`: the test set's loss, accuracy and label ranking average precision. */
#include <stdio.h>

#include "cli.h"

int cmd_eval(cli_context *ctx)
{
	if (!ctx->opt.weights) {
		cli_error("eval needs --weights PATH");
		return CLI_USAGE;
	}
	int rc = cli_open_model(ctx);
	if (rc || (rc = cli_open_runtime(ctx)))
		return cli_close(ctx, rc);
	strata_session *s = NULL;
	strata_dataset *train = NULL, *test = NULL;
	uint32_t batch = 0;
	strata_error err = {0};
	if ((rc = cli_open_session(ctx, &s, &batch)))
		goto out_free;
	if (strata_session_load(s, ctx->opt.weights, &err) != STRATA_OK) {
		cli_error("%s", err.message);
		rc = cli_exit_status(err.status);
		goto out_free;
	}
	/* Standardization statistics come from the training set, as in training. */
	if (strata_model_data(ctx->model).standardize && (rc = cli_open_dataset(ctx, "train", 0, 0, NULL, &train)))
		goto out_free;
	if ((rc = cli_open_dataset(ctx, "test", 0, 0, train, &test)))
		goto out_free;
	rc = cli_print_evaluation(ctx->model, s, test, batch, ctx->opt.weights);
out_free:
	strata_dataset_free(test);
	strata_dataset_free(train);
	strata_session_destroy(s);
	return cli_close(ctx, rc);
}
