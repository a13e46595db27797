/* The host side of the device's random streams (cl/random.cl, prepended to every plugin program):
 * a layer's key from the run's seed and its name, so two layers of one model draw differently from
 * the same seed and step, and a backward pass finds its forward pass's draws again from the same
 * (seed, step). Header-only, like the other common/ headers. */
#ifndef PLUGINS_COMMON_RANDOM_H
#define PLUGINS_COMMON_RANDOM_H

#include <stdint.h>

#include <strata/plugin.h>

/* FNV-1a of a layer's name. */
static inline uint32_t random_name_hash(const char *name)
{
	uint32_t h = 2166136261u;
	for (; name && *name; name++)
		h = (h ^ (uint8_t)*name) * 16777619u;
	return h;
}

/* What the kernels of cl/random.cl take besides the draw's index: key and step, as four uints. */
typedef struct random_stream {
	uint32_t key_lo, key_hi, step_lo, step_hi;
} random_stream;

static inline random_stream random_stream_of(const strata_layer *layer, const strata_host *host, uint64_t seed,
                                             uint64_t step)
{
	return (random_stream){
		.key_lo = (uint32_t)seed ^ random_name_hash(host->layer_name(layer)),
		.key_hi = (uint32_t)(seed >> 32),
		.step_lo = (uint32_t)step,
		.step_hi = (uint32_t)(step >> 32),
	};
}

/* The stream's four kernel arguments, in the order cl/random.cl's random_draw takes them. */
static inline void random_stream_args(const random_stream *s, strata_arg out[4])
{
	out[0] = strata_arg_uint(s->key_lo);
	out[1] = strata_arg_uint(s->key_hi);
	out[2] = strata_arg_uint(s->step_lo);
	out[3] = strata_arg_uint(s->step_hi);
}

#endif
