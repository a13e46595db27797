/* The function table handed to plugins (strata_host): parameters, weights, kernels, launches,
 * GEMMs and errors, each served by the session the layer is bound to. */
#ifndef ST_HOST_API_H
#define ST_HOST_API_H

#include <strata/plugin.h>

extern const strata_host st_host_api;

/* A layer's forward or backward pass through its plugin, with the layer's error sink set to `err`
 * (or a local one) and a message left even when the plugin wrote none. */
strata_status st_host_forward(strata_layer *layer, const strata_forward_args *args, strata_error *err);
strata_status st_host_backward(strata_layer *layer, const strata_backward_args *args, strata_error *err);

#endif
