/* Weight initializers with Keras' names and fan rules, on the host, from a seeded generator, so
 * the same seed gives the same weights on every device. */
#ifndef ST_INITIALIZERS_H
#define ST_INITIALIZERS_H

#include <stdbool.h>
#include <stdint.h>

#include <strata/types.h>

/* A name, or a comma-separated list of names that splits the weight's last axis into that many
 * equal blocks, each initialized as a weight of its own ("zeros,ones,zeros,zeros": Keras' LSTM bias
 * with unit_forget_bias). */
bool st_initializer_known(const char *name);
/* How many blocks a name list makes: 1 for a plain name. */
uint64_t st_initializer_blocks(const char *name);
/* Comma-separated names, for messages. */
const char *st_initializer_names(void);

/* splitmix64-seeded xoshiro256** stream; one per weight, derived from (seed, layer, weight). */
typedef struct st_rng {
	uint64_t s[4];
} st_rng;

void st_rng_seed(st_rng *rng, uint64_t seed, uint64_t stream);
uint64_t st_rng_next(st_rng *rng);
/* Uniform in [0, 1). */
double st_rng_uniform(st_rng *rng);

/* Fills `count` floats of a weight of Keras shape `shape`: STRATA_ERR_INVALID for an unknown name,
 * STRATA_ERR_UNSUPPORTED for orthogonal on fewer than two axes, STRATA_ERR_OVERFLOW for one too
 * large to orthogonalize. */
strata_status st_initialize(const char *name, const strata_shape *shape, float *dst, uint64_t count, st_rng *rng);

#endif
