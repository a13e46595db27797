/* A shared object without the entry symbol. */
#include <strata/plugin.h>

STRATA_PLUGIN_EXPORT int test_not_a_plugin(void);
STRATA_PLUGIN_EXPORT int test_not_a_plugin(void)
{
	return 42;
}
