/* The function table handed to plugins (strata_host): parameters, weights, kernels, launches,
 * GEMMs, the runtime's shared kernels and errors, each served by the session the layer is bound
 * to. */
#ifndef ST_HOST_API_H
#define ST_HOST_API_H

#include <stdarg.h>

#include <strata/plugin.h>

#include "model/model.h"

extern const strata_host st_host_api;

/* A layer's forward or backward pass through its plugin, with the layer's error sink set to `err`
 * (or a local one) and a message left even when the plugin wrote none. */
strata_status st_host_forward(strata_layer *layer, const strata_forward_args *args, strata_error *err);
strata_status st_host_backward(strata_layer *layer, const strata_backward_args *args, strata_error *err);

/* host_services.c: the table's declared services over cl/core.cl's kernels (plugin.h says what
 * each does). */
strata_status st_host_activation_forward(strata_layer *layer, const char *activation, strata_tensor *y,
                                         strata_tensor *x, strata_tensor *bias, size_t rows, size_t cols);
strata_status st_host_activation_backward(strata_layer *layer, const char *activation, strata_tensor *dz,
                                          strata_tensor *dy, strata_tensor *y, size_t rows, size_t cols);
strata_status st_host_activation_backward_input(strata_layer *layer, const char *activation, strata_tensor *dz,
                                                strata_tensor *dy, strata_tensor *x, strata_tensor *bias, size_t rows,
                                                size_t cols);
strata_status st_host_column_sums(strata_layer *layer, const char *activation, strata_tensor *sums,
                                  strata_tensor *dz, strata_tensor *y, size_t rows, size_t cols,
                                  strata_tensor *scratch, size_t scratch_floats);
strata_status st_host_copy(strata_layer *layer, strata_tensor *dst, strata_tensor *src, size_t n);
strata_status st_host_fill(strata_layer *layer, strata_tensor *dst, float value, size_t n);
/* A layer's error as host->fail words it, "FILE:LINE:COLUMN: LAYER: message" at `pos`, into the
 * layer's error sink when a call into its plugin has one; records `status` as its last. */
strata_status st_layer_vfail(strata_layer *layer, st_pos pos, strata_status status, const char *fmt, va_list ap);
/* The same at the layer's place in the file: host->fail, and the services' refusals. */
strata_status st_layer_fail(strata_layer *layer, strata_status status, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#endif
