/* Claims a future ABI version: the loader must refuse it before reading anything else. */
#include <strata/plugin.h>

static const strata_plugin plugin = {
	.abi_version = STRATA_PLUGIN_ABI_VERSION + 1,
	.size = sizeof(strata_plugin),
	.name = "test_bad_abi",
};

STRATA_PLUGIN_DEFINE(plugin)
