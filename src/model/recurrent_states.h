/* Keras' return_state (issue 15): a recurrent layer's final states as outputs of their own. */
#ifndef ST_RECURRENT_STATES_H
#define ST_RECURRENT_STATES_H

#include <stddef.h>

#include "model/model_file.h"

/* How many layers a layer item adds for return_state: 0, or its parts (the output and each
 * state: 2 for simple_rnn and gru, 3 for lstm). */
size_t st_states_width(const st_ynode *item);
/* Reads a recurrent layer item with return_state into layer i and its parts into the layers
 * after it: NAME_state_h (, NAME_state_c), then NAME_output, which a layer without `inputs:`
 * after it reads, as the layer's output in a plain chain. */
strata_status st_states_read(st_loader *ld, size_t i, const st_ynode *item);
/* After every layer is wired by name: refuses a layer that reads a layer with return_state
 * itself instead of one of its parts. */
strata_status st_states_check(st_loader *ld);

#endif
