/* Transfer learning: a session's weights taken, layer by layer, from another model's weights file
 * (the model file's `init_from`), before training starts.
 *
 * A listed layer takes every one of its weights from the file ("LAYER/WEIGHT" entries), each with
 * the model's shape or one that differs only in a smaller last dimension: the layer's outputs
 * (a dense layer's units, a convolution's filters) when that dimension runs over them. Then the
 * file's values fill the first outputs and the initializer's stay in the new ones, so a 10-class
 * classifier grows to 12. Without a list, every layer whose weights the file holds is taken.
 * Optimizer state in the file is ignored. */
#ifndef ST_TRANSFER_H
#define ST_TRANSFER_H

#include "exec/session.h"

/* Checks every listed layer against the file, then writes the weights; on any refusal no weight
 * has changed. Messages start "MODEL:LINE:COL: init_from:" at the entry they are about. */
strata_status st_transfer_apply(strata_session *s, char *report, size_t report_size, strata_error *err);

#endif
