/* Types shared by the application API (strata.h) and the plugin ABI (plugin.h).
 * Append-only: values and fields are never renumbered or removed. */
#ifndef STRATA_TYPES_H
#define STRATA_TYPES_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Status codes returned by every fallible call of the library and of plugins. */
typedef enum strata_status {
	STRATA_OK = 0,
	STRATA_ERR_INVALID = 1,      /* bad argument or bad model description */
	STRATA_ERR_NO_MEMORY = 2,    /* host allocation failed */
	STRATA_ERR_IO = 3,           /* file could not be read or written */
	STRATA_ERR_PARSE = 4,        /* malformed input file */
	STRATA_ERR_NOT_FOUND = 5,    /* device, plugin, layer or file not found */
	STRATA_ERR_PLUGIN = 6,       /* plugin failed to load or was refused */
	STRATA_ERR_OPENCL = 7,       /* an OpenCL call failed */
	STRATA_ERR_BUILD = 8,        /* an OpenCL program failed to compile */
	STRATA_ERR_UNSUPPORTED = 9,  /* feature not available on this device or layer */
	STRATA_ERR_OVERFLOW = 10,    /* a size computation would overflow */
	STRATA_ERR_DEVICE_MEMORY = 11, /* device allocation failed: lower the batch size */
	STRATA_ERR_INTERRUPTED = 12, /* stopped on request (e.g. Ctrl-C), state saved where asked */
	STRATA_STATUS_COUNT
} strata_status;

/* Levels of log messages, most severe first. */
enum strata_log_level { STRATA_LOG_ERROR = 0, STRATA_LOG_WARN = 1, STRATA_LOG_INFO = 2, STRATA_LOG_DEBUG = 3 };

/* Largest rank of a per-sample shape (batch dimension excluded): H, W, C plus one spare. */
#define STRATA_MAX_RANK 4

/* Element types of tensors. Append-only. */
typedef enum strata_dtype {
	STRATA_DTYPE_FLOAT32 = 0, /* every tensor of a plugin built before element types existed */
	STRATA_DTYPE_INT32 = 1,   /* ids, e.g. an embedding's input */
	STRATA_DTYPE_COUNT
} strata_dtype;

/* Per-sample shape in channels-last order (Keras' default): (H, W, C) for images,
 * (N) for vectors. The batch dimension is never part of a strata_shape. */
typedef struct strata_shape {
	uint32_t rank;
	/* Added in 0.3 in what was padding (the struct keeps its size and layout): a strata_dtype.
	 * The host reads it from a plugin only when the plugin says it knows it (its ops' size). */
	uint32_t dtype;
	int64_t dims[STRATA_MAX_RANK];
} strata_shape;

#ifdef __cplusplus
}
#endif
#endif
