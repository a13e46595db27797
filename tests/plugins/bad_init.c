/* Registers a program under a name the runtime already uses: init must fail with that reason. */
#include <strata/plugin.h>

static strata_status init(const strata_host *host, strata_registry *reg)
{
	return host->register_program(reg, "core", "__kernel void k(void) {}", "");
}

static const strata_plugin plugin = {
	.abi_version = STRATA_PLUGIN_ABI_VERSION,
	.size = sizeof(strata_plugin),
	.name = "test_bad_init",
	.init = init,
};

STRATA_PLUGIN_DEFINE(plugin)
