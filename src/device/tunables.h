/* Tunables of Strata's own kernels that the host chooses at launch time: vector widths and
 * work-group sizes, read by plugins through host->tunable() (plugins/common/tune.h). A runtime
 * starts from defaults for its device type, then applies what `strata tune` stored; a session
 * keeps the values it was created with, so one session never mixes two. */
#ifndef ST_TUNABLES_H
#define ST_TUNABLES_H

#include <stdbool.h>
#include <stddef.h>

#include <strata/strata.h>

enum st_tunable {
	ST_TUNABLE_VW,         /* widest vector of the windowed kernels and bias-gradient sums */
	ST_TUNABLE_WG,         /* work-items per work-group of the 2-D launches */
	ST_TUNABLE_DROPOUT_VW, /* Philox blocks per dropout work-item */
	ST_TUNABLE_SOFTMAX_WG, /* work-items reducing one row of softmax and its derivative */
	ST_TUNABLE_UPDATE_WG,  /* work-group of the optimizer's update; 0: the driver chooses */
	ST_TUNABLE_COUNT
};

typedef struct st_tunables {
	size_t v[ST_TUNABLE_COUNT];
} st_tunables;

const char *st_tunable_name(int t);
/* -1 for a name that is not a tunable. */
int st_tunable_index(const char *name);
size_t st_tunable_choice_count(int t);
size_t st_tunable_choice(int t, size_t i);
bool st_tunable_legal(int t, size_t value);
/* What measured best on PoCL's CPU device for CPUs, narrower vectors elsewhere. */
void st_tunables_defaults(const strata_device_info *dev, st_tunables *out);

#endif
