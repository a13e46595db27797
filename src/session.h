/* A session: a model bound to a runtime, with device buffers for weights, activations and
 * workspaces planned once for the largest batch. */
#ifndef ST_SESSION_H
#define ST_SESSION_H

#include "model.h"
#include "runtime.h"

typedef struct st_layer_bind {
	strata_tensor *weights;    /* n_weights */
	strata_tensor *grads;      /* n_weights */
	strata_tensor *workspaces; /* n_workspaces */
	strata_tensor output;      /* max_batch x out shape */
} st_layer_bind;

struct strata_session {
	strata_runtime *rt;
	strata_model *model;
	uint32_t max_batch;
	uint64_t seed;
	uint64_t step;
	strata_tensor input;
	st_layer_bind *binds; /* one per layer */
};

#endif
