/* strata_runtime_create: the device's runtime (runtime.c) with its stored tuning applied
 * (tuning.c). The runtime itself knows nothing of the tuner, which sets its results through the
 * runtime's setters. */
#include <string.h>

#include "device/runtime.h"
#include "tune/tuning.h"

strata_status strata_runtime_create(strata_registry *reg, const strata_runtime_options *options,
                                    strata_runtime **out, strata_error *err)
{
	strata_status st = st_runtime_create(reg, options, out, err);
	if (st)
		return st;
	strata_runtime_options opts = {.size = sizeof(opts)};
	if (options)
		memcpy(&opts, options, options->size < sizeof(opts) ? options->size : sizeof(opts));
	st_tune_apply_stored(*out, opts.cache_dir); /* NULL: the default folder */
	return STRATA_OK;
}
