/* Data-parallel training steps (strata_parallel in strata.h): this rank's slice of a global batch
 * through forward, loss and backward, its gradients staged through host memory (OpenCL has no
 * device-to-device collectives) and summed over the ranks by the caller's transport, then the
 * same update on every rank. trainer.c calls it in place of its one-process step. */
#ifndef ST_TRAIN_PARALLEL_H
#define ST_TRAIN_PARALLEL_H

#include <stdbool.h>

#include "exec/session.h"
#include "train/dataset.h"

typedef struct st_parallel {
	const strata_parallel *par;
	uint32_t *counts;   /* per rank: its samples of the global batch under way (deterministic: this rank's only) */
	size_t floats;      /* of the gradients (all of the optimizer's, padding included) */
	float *mine;        /* this rank's gradients (fast) or its shards' (deterministic), then a stop flag */
	float *all;         /* deterministic: every rank's `mine`, in rank order */
	double seconds;     /* this rank's compute time in the last step */
} st_parallel;

/* Checks `par` against the session and batch size and allocates the host staging. */
strata_status st_parallel_init(st_parallel *p, strata_session *s, const strata_parallel *par, uint32_t batch_size,
                               strata_error *err);
void st_parallel_release(st_parallel *p);

/* One training step over samples [start, start + n) of the epoch's order (the global batch).
 * *stop: in, whether this rank was asked to stop; out, whether any rank was. */
strata_status st_parallel_step(st_parallel *p, strata_session *s, strata_dataset *train, uint32_t start, uint32_t n,
                               bool *stop, strata_error *err);

/* Sums `count` figures over the ranks, in place (training loss and accuracy sums: float is
 * plenty for a progress line). */
strata_status st_parallel_sum_figures(st_parallel *p, double *values, size_t count, strata_error *err);

#endif
