/* Data sets staged on the device: samples as bytes, labels, and the order of the current epoch. */
#ifndef ST_DATASET_H
#define ST_DATASET_H

#include "device/runtime.h"

struct strata_dataset {
	strata_runtime *rt;
	uint32_t n;
	uint32_t per_sample;   /* values per sample */
	char *path;            /* the images file, for messages */
	uint32_t sample_rank;  /* the images file's dimensions after the first: one sample's */
	uint32_t sample_dims[7];
	uint32_t classes;
	float scale;
	strata_tensor images;  /* n x per_sample bytes */
	strata_tensor labels;  /* n bytes */
	strata_tensor order;   /* n ints: the sample taken at each position this epoch */
	uint8_t *host_labels;  /* for host-side metrics */
	bool standardize;
	float *mean, *inv_std; /* per_sample each, host copies (a reference set's, when standardized) */
	strata_tensor dev_mean, dev_inv_std;
};

/* Sets the order of the samples: identity, or a Fisher-Yates shuffle from (seed, epoch). */
strata_status st_dataset_set_order(strata_dataset *ds, bool shuffle, uint64_t seed, uint64_t epoch, strata_error *err);
/* Writes samples [start, start + batch) of the current order to `x` (floats) and `labels` (ints). */
strata_status st_dataset_gather(strata_dataset *ds, uint32_t start, uint32_t batch, strata_tensor *x,
                                strata_tensor *labels, strata_error *err);

#endif
