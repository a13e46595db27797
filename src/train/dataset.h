/* Data sets staged on the device: for each model input its samples (bytes, or int32 ids), for
 * each output with a loss its class labels, and the order of the current epoch. */
#ifndef ST_DATASET_H
#define ST_DATASET_H

#include "device/runtime.h"

/* One model input's samples. */
typedef struct st_feed {
	char *path;            /* its IDX file, for messages */
	uint32_t per_sample;   /* values per sample */
	uint32_t sample_rank;  /* the file's dimensions after the first: one sample's */
	uint32_t sample_dims[7];
	bool ints;             /* an int32 IDX: ids, staged as ints; otherwise bytes */
	strata_tensor data;    /* n x per_sample bytes, or ints */
	/* Standardization (bytes only): host copies (a reference set's, when given) and the device's. */
	float *mean, *inv_std;
	strata_tensor dev_mean, dev_inv_std;
} st_feed;

/* One output's labels: a class per sample. */
typedef struct st_target {
	char *path;
	uint32_t classes;
	uint8_t *host;         /* for host-side metrics */
	strata_tensor dev;     /* n bytes */
} st_target;

struct strata_dataset {
	strata_runtime *rt;
	uint32_t n;
	st_feed *feeds;        /* one per model input, in the model's order */
	uint32_t n_feeds;
	st_target *targets;    /* one per output with a loss, in the outputs' order */
	uint32_t n_targets;
	float scale;           /* bytes of float inputs are multiplied by it */
	bool standardize;
	strata_tensor order;   /* n ints: the sample taken at each position this epoch */
};

/* Sets the order of the samples: identity, or a Fisher-Yates shuffle from (seed, epoch). */
strata_status st_dataset_set_order(strata_dataset *ds, bool shuffle, uint64_t seed, uint64_t epoch, strata_error *err);
/* Writes samples [start, start + batch) of the current order: feed 0 to `x` as floats and, when
 * `labels` is not NULL, target 0's labels to it as ints. */
strata_status st_dataset_gather(strata_dataset *ds, uint32_t start, uint32_t batch, strata_tensor *x,
                                strata_tensor *labels, strata_error *err);
/* Writes samples [start, start + batch) of the current order into a session: every feed into its
 * model input (floats, or ints for an int32 input) and, with `labels`, every target into its loss
 * head's labels. */
strata_status st_dataset_gather_session(strata_dataset *ds, uint32_t start, uint32_t batch, strata_session *s,
                                        bool labels, strata_error *err);

#endif
