#include <stdio.h>

#include "cli.h"

int cmd_layers(cli_context *ctx)
{
	int rc = cli_open_registry(ctx);
	if (rc == CLI_OK) {
		printf("Plugin search path:\n");
		strata_registry_print_search_path(ctx->reg, stdout);
		printf("\n");
		strata_registry_print_layers(ctx->reg, stdout);
	}
	return cli_close(ctx, rc);
}
