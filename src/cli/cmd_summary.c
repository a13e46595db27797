#include <stdio.h>

#include "cli.h"

int cmd_summary(cli_context *ctx)
{
	int rc = cli_open_model(ctx);
	if (rc == CLI_OK)
		strata_model_print_summary(ctx->model, stdout);
	return cli_close(ctx, rc);
}
