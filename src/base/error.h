/* Error reporting: messages go to a caller-owned strata_error, never to exit(). */
#ifndef ST_ERROR_H
#define ST_ERROR_H

#include <stdarg.h>

#include <strata/strata.h>

#include <CL/cl.h>

/* Fills `err` (if not NULL) and returns `status`. */
strata_status st_fail(strata_error *err, strata_status status, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
strata_status st_vfail(strata_error *err, strata_status status, const char *fmt, va_list ap);

/* Reports a failed OpenCL call: "<what>: <CL_NAME> (<code>)", status STRATA_ERR_OPENCL, or
 * STRATA_ERR_DEVICE_MEMORY for allocation failures (with a hint to lower the batch size). */
strata_status st_cl_fail(strata_error *err, cl_int code, const char *what_fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* "CL_OUT_OF_RESOURCES" for -5; "CL_UNKNOWN_ERROR" for codes no header names. */
const char *st_cl_error_name(cl_int code);

void st_error_clear(strata_error *err);

/* Formats a log line and hands it to `log` when one is set and `level` is within `verbosity`:
 * the registry's and the runtime's logs (strata_registry_options, strata_runtime_options). */
void st_log_v(strata_log_fn log, void *user, int verbosity, int level, const char *fmt, va_list ap);

#endif
