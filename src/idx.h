/* IDX files (MNIST's format) from memory, for callers that hold the bytes already (the fuzzer).
 * strata_idx_load (strata.h) reads files, plain or gzip, through the same parser. */
#ifndef ST_IDX_H
#define ST_IDX_H

#include <stddef.h>

#include <strata/strata.h>

/* `data` holds an uncompressed IDX file; `name` stands for its path in messages (NULL:
 * "(memory)"). The result is freed with strata_idx_free. */
strata_status st_idx_load_memory(const void *data, size_t len, const char *name, strata_idx **out,
                                 strata_error *err);

#endif
