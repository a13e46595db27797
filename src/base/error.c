#include "base/error.h"

#include <stdio.h>
#include <string.h>

static const char *const status_names[STRATA_STATUS_COUNT] = {
	[STRATA_OK] = "ok",
	[STRATA_ERR_INVALID] = "invalid",
	[STRATA_ERR_NO_MEMORY] = "out of host memory",
	[STRATA_ERR_IO] = "i/o error",
	[STRATA_ERR_PARSE] = "parse error",
	[STRATA_ERR_NOT_FOUND] = "not found",
	[STRATA_ERR_PLUGIN] = "plugin error",
	[STRATA_ERR_OPENCL] = "OpenCL error",
	[STRATA_ERR_BUILD] = "kernel build error",
	[STRATA_ERR_UNSUPPORTED] = "unsupported",
	[STRATA_ERR_OVERFLOW] = "size overflow",
	[STRATA_ERR_DEVICE_MEMORY] = "out of device memory",
	[STRATA_ERR_INTERRUPTED] = "interrupted",
};

const char *strata_status_name(strata_status status)
{
	if ((unsigned)status >= STRATA_STATUS_COUNT)
		return "unknown status";
	return status_names[status];
}

void st_error_clear(strata_error *err)
{
	if (!err)
		return;
	err->status = STRATA_OK;
	err->message[0] = '\0';
}

strata_status st_vfail(strata_error *err, strata_status status, const char *fmt, va_list ap)
{
	if (err) {
		err->status = status;
		vsnprintf(err->message, sizeof(err->message), fmt, ap);
	}
	return status;
}

strata_status st_fail(strata_error *err, strata_status status, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	st_vfail(err, status, fmt, ap);
	va_end(ap);
	return status;
}

strata_status st_cl_fail(strata_error *err, cl_int code, const char *what_fmt, ...)
{
	char what[STRATA_ERROR_MAX / 2];
	va_list ap;
	va_start(ap, what_fmt);
	vsnprintf(what, sizeof(what), what_fmt, ap);
	va_end(ap);

	/* Drivers also answer CL_OUT_OF_RESOURCES for a kernel that faulted or a device that was
	 * reset, so that message names both causes. */
	if (code == CL_OUT_OF_RESOURCES)
		return st_fail(err, STRATA_ERR_DEVICE_MEMORY,
		               "%s: %s (%d): the device ran out of resources (memory, or it failed or was reset); "
		               "try a smaller --batch-size", what, st_cl_error_name(code), (int)code);
	bool memory = code == CL_MEM_OBJECT_ALLOCATION_FAILURE || code == CL_INVALID_BUFFER_SIZE;
	if (memory)
		return st_fail(err, STRATA_ERR_DEVICE_MEMORY,
		               "%s: %s (%d): the device ran out of memory; try a smaller --batch-size", what,
		               st_cl_error_name(code), (int)code);
	return st_fail(err, STRATA_ERR_OPENCL, "%s: %s (%d)", what, st_cl_error_name(code), (int)code);
}

const char *strata_version_string(void)
{
	return STRATA_VERSION;
}

void st_log_v(strata_log_fn log, void *user, int verbosity, int level, const char *fmt, va_list ap)
{
	if (!log || level > verbosity)
		return;
	char msg[1024];
	vsnprintf(msg, sizeof(msg), fmt, ap);
	log(user, level, msg);
}
