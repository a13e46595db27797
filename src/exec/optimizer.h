/* Optimizers on the device: state buffers per trainable weight and the update launches, with
 * Keras' names, defaults and formulas (cl/optimizer.cl). */
#ifndef ST_OPTIMIZER_H
#define ST_OPTIMIZER_H

#include "exec/checkpoint.h"
#include "model/model.h"
#include "device/runtime.h"
#include "device/tensor_pool.h"
#include "exec/lr_schedule.h"

#define ST_OPT_MAX_SLOTS 3

typedef enum st_opt_kind { ST_OPT_SGD, ST_OPT_ADADELTA, ST_OPT_ADAM, ST_OPT_RMSPROP } st_opt_kind;

/* One trainable weight: its value, gradient and the optimizer's state slots (views into the
 * pools, for checkpoints and regularization). */
typedef struct st_opt_param {
	const strata_layer *layer;
	uint32_t weight;
	strata_tensor *w, *g;
	strata_tensor slots[ST_OPT_MAX_SLOTS];
	uint64_t count;
	double l1, l2;
	const st_weight_decl *decl; /* its shape and constraint */
} st_opt_param;

typedef struct st_optimizer {
	st_opt_kind kind;
	char name[32];
	double lr, rho, epsilon, momentum, beta_1, beta_2; /* lr: the current step's, from schedule */
	st_lr_schedule schedule;
	bool nesterov, amsgrad, centered;
	uint32_t n_slots;
	const char *slot_names[ST_OPT_MAX_SLOTS];
	st_opt_param *params;
	size_t n_params;
	uint64_t iterations; /* updates applied */
	/* The update sweeps all weights at once: the session's weight and gradient pools and one
	 * state pool per slot, in the same layout; with STRATA_POOL=separate (tensor_pool.h) no
	 * buffer holds them all, and each tensor gets a launch. */
	strata_tensor *all_weights, *all_grads;
	st_pool slot_pools[ST_OPT_MAX_SLOTS];
	uint64_t elems;
	st_pool_mode pool_mode;
	/* Keras' gradient clipping, 0 when off: each weight's gradient to a norm, all of them to a
	 * joint norm, every value to a range. The norms come from partial sums of squares of blocks
	 * of each gradient (clip_partials: clip_first[i] is weight i's first, clip_blocks in all) and
	 * a factor per weight and one for all (clip_factors). */
	double clipnorm, clipvalue, global_clipnorm;
	strata_tensor clip_partials, clip_factors;
	uint32_t *clip_first;
	uint32_t clip_blocks;
} st_optimizer;

/* Reads the model's optimizer section (Keras defaults for what it leaves out; Keras' when the
 * model names none: rmsprop, as Keras) and allocates zeroed state for every weight of every trainable layer. */
strata_status st_optimizer_create(strata_session *s, st_optimizer *opt, strata_error *err);
void st_optimizer_release(st_optimizer *opt);
/* Adds regularization gradients, then applies one update to every parameter. */
strata_status st_optimizer_step(strata_runtime *rt, st_optimizer *opt, strata_error *err);
/* Appends the state slots as named tensors ("LAYER/WEIGHT:SLOT") for checkpoints. */
size_t st_optimizer_slot_count(const st_optimizer *opt);
void st_optimizer_slots(st_optimizer *opt, st_named_tensor *out);

#endif
