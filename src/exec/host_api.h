/* The function table handed to plugins (strata_host): parameters, weights, kernels, launches,
 * GEMMs and errors, each served by the session the layer is bound to. */
#ifndef ST_HOST_API_H
#define ST_HOST_API_H

#include <strata/plugin.h>

extern const strata_host st_host_api;

#endif
