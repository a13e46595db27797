/* Learning-rate schedules: the rate of each update as a function of the updates before it, with
 * the formulas of keras.optimizers.schedules (ExponentialDecay, InverseTimeDecay, PolynomialDecay,
 * CosineDecay with its linear warmup, PiecewiseConstantDecay). The model file names one in the
 * optimizer (`learning_rate: {type: cosine_decay, ...}`, recipe.c); the optimizer asks it for the
 * rate of every step. */
#ifndef ST_LR_SCHEDULE_H
#define ST_LR_SCHEDULE_H

#include <stdbool.h>
#include <stdint.h>

#include <strata/types.h>

#include "model/recipe.h"

typedef enum st_lr_kind {
	ST_LR_CONSTANT = 0,
	ST_LR_EXPONENTIAL,
	ST_LR_INVERSE_TIME,
	ST_LR_POLYNOMIAL,
	ST_LR_COSINE,
	ST_LR_PIECEWISE,
} st_lr_kind;

typedef struct st_lr_schedule {
	st_lr_kind kind;
	double initial;             /* CONSTANT: the rate */
	double decay_steps, decay_rate;
	bool staircase, cycle;
	double end, power;          /* POLYNOMIAL */
	double alpha;               /* COSINE: the end, a fraction of the rate decayed from */
	double warmup_target;       /* COSINE: 0: no warmup */
	double warmup_steps;
	uint32_t n_boundaries;      /* PIECEWISE: boundaries, and n_boundaries + 1 values */
	double boundaries[STRATA_MAX_RANK];
	double values[STRATA_MAX_RANK];
} st_lr_schedule;

/* The schedule the recipe's section names (type NULL: the constant `rate`). */
st_lr_schedule st_lr_schedule_from(const st_section *sec, double rate);
/* The rate of the update that follows `step` earlier ones (Keras' optimizer.iterations). */
double st_lr_at(const st_lr_schedule *s, uint64_t step);

#endif
