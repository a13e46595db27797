/* IDX files (MNIST's format) from memory, for callers that hold the bytes already (the fuzzer),
 * and the rule by which an IDX file's samples fit a model's input. strata_idx_load (strata.h)
 * reads files, plain or gzip, through the same parser. */
#ifndef ST_IDX_H
#define ST_IDX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <strata/strata.h>

/* `data` holds an uncompressed IDX file; `name` stands for its path in messages (NULL:
 * "(memory)"). The result is freed with strata_idx_free. */
strata_status st_idx_load_memory(const void *data, size_t len, const char *name, strata_idx **out,
                                 strata_error *err);

/* "23 x 17": `rank` dimensions as messages show them. */
void st_idx_dims_text(const uint32_t *dims, uint32_t rank, char *buf, size_t size);
/* Whether samples of `rank` dimensions `dims` (an IDX file's dimensions after the first) fit a
 * model input of shape `input`: the same dimensions, or the input's without a last axis of 1. The
 * rule and its reasons are at its definition (idx.c). */
bool st_idx_samples_fit(const uint32_t *dims, uint32_t rank, const strata_shape *input);
/* Refuses samples that do not fit (st_idx_samples_fit), naming the file `path`, `what` it is ("the
 * training data") and both shapes; STRATA_ERR_INVALID. */
strata_status st_idx_check_fit(const char *path, const char *what, const uint32_t *dims, uint32_t rank,
                               const strata_shape *input, strata_error *err);

#endif
