#include <stdio.h>
#include <stdlib.h>

#include "cli.h"

int cmd_devices(cli_context *ctx)
{
	strata_device_info *devs = NULL;
	size_t n = 0, chosen = 0;
	strata_error err = {0};
	if (strata_devices_list(&devs, &n, &err) != STRATA_OK) {
		cli_error("%s", err.message);
		return CLI_FAILED;
	}
	const char *sel = cli_device_selector(ctx, NULL);
	bool have_choice = strata_device_select(devs, n, sel, &chosen, &err) == STRATA_OK;
	for (size_t i = 0; i < n; i++) {
		const strata_device_info *d = &devs[i];
		printf("%s %s:%u  %s\n", have_choice && i == chosen ? "*" : " ", d->type, d->type_index, d->name);
		printf("    platform        %s (%s)\n", d->platform, d->platform_version);
		printf("    vendor          %s\n", d->vendor);
		printf("    driver          %s\n", d->driver_version);
		printf("    OpenCL C        %s\n", d->opencl_c_version);
		printf("    compute units   %u\n", d->compute_units);
		printf("    global memory   %.1f MiB (largest buffer %.1f MiB)\n", d->global_mem_bytes / 1048576.0,
		       d->max_alloc_bytes / 1048576.0);
		printf("    local memory    %.1f KiB\n", d->local_mem_bytes / 1024.0);
		printf("    max work-group  %zu\n", d->max_work_group_size);
	}
	if (have_choice)
		printf("* the device selector '%s' chooses\n", sel && *sel ? sel : "auto");
	else
		cli_error("%s", err.message);
	free(devs);
	return have_choice ? CLI_OK : CLI_USAGE;
}
