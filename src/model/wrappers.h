/* Keras' wrapper layers (wrappers.c): Bidirectional, read as the plain layers it stands for, and
 * TimeDistributed, the wrapped layer run on every step. */
#ifndef ST_WRAPPERS_H
#define ST_WRAPPERS_H

#include <stdbool.h>
#include <stddef.h>

#include "model/model_file.h"

/* Whether a layer item of the file is a bidirectional wrapper. */
bool st_wrapper_is_bidirectional(const st_ynode *item);
/* Whether a layer item is a time_distributed wrapper. */
bool st_wrapper_is_time_distributed(const st_ynode *item);
/* Reads a time_distributed wrapper into layer i: the wrapped layer, distributed over the steps. */
strata_status st_wrapper_read_distributed(st_loader *ld, size_t i, const st_ynode *item);
/* How many of the model's layers the item becomes: 3 for a bidirectional wrapper, else 1. */
size_t st_wrapper_width(const st_ynode *item);
/* Reads a bidirectional wrapper into layers i (forward), i + 1 (backward) and i + 2 (the merge,
 * by the wrapper's name). */
strata_status st_wrapper_read(st_loader *ld, size_t i, const st_ynode *item);
/* After every layer is named: wires the directions of wrappers without `inputs:` to the layer
 * before them. */
strata_status st_wrapper_finish(st_loader *ld);

#endif
