/* strata_runtime_create: the device's runtime (runtime.c) with its stored tuning applied
 * (tuning.c). The runtime itself knows nothing of the tuner, which sets its results through the
 * runtime's setters. Also the guard's entry points for `strata check-plugin`: one plugin loaded,
 * its programs built, a training pass of a session on seeded values. */
#include <stdlib.h>
#include <string.h>

#include "device/runtime.h"
#include "device/tensor_pool.h"
#include "exec/session.h"
#include "model/model.h"
#include "plugin/registry.h"
#include "tune/tuning.h"

strata_status strata_runtime_create(strata_registry *reg, const strata_runtime_options *options,
                                    strata_runtime **out, strata_error *err)
{
	strata_status st = st_runtime_create(reg, options, out, err);
	if (st)
		return st;
	strata_runtime_options opts = {.size = sizeof(opts)};
	if (options)
		memcpy(&opts, options, options->size < sizeof(opts) ? options->size : sizeof(opts));
	st_tune_apply_stored(*out, opts.cache_dir); /* NULL: the default folder */
	return STRATA_OK;
}

/* ---- Guard (added in 0.3): what `strata check-plugin` needs ---------------------------------- */

strata_status strata_registry_load_plugin(strata_registry *reg, const char *path, strata_error *err)
{
	return st_plugin_load_file(reg, path, err);
}

size_t strata_registry_program_count(const strata_registry *reg)
{
	return reg->n_programs;
}

const char *strata_registry_program_name(const strata_registry *reg, size_t i)
{
	return i < reg->n_programs ? reg->programs[i].name : NULL;
}

const char *strata_registry_program_plugin(const strata_registry *reg, size_t i)
{
	return i < reg->n_programs ? reg->programs[i].owner : NULL;
}

void strata_registry_layer_inputs(const strata_registry *reg, size_t i, uint32_t *min, uint32_t *max)
{
	*min = *max = 0;
	if (i >= reg->n_types)
		return;
	const strata_layer_ops *ops = &reg->types[i].ops;
	size_t lo = ops->min_inputs ? ops->min_inputs : 1, hi = ops->max_inputs ? ops->max_inputs : 1;
	*min = lo > UINT32_MAX ? UINT32_MAX : (uint32_t)lo;
	*max = hi == STRATA_INPUTS_ANY || hi > UINT32_MAX ? 0 : (uint32_t)hi;
}

bool strata_registry_layer_has_backward(const strata_registry *reg, size_t i)
{
	return i < reg->n_types && reg->types[i].ops.backward;
}

size_t strata_registry_layer_param_count(const strata_registry *reg, size_t i)
{
	return i < reg->n_types ? reg->types[i].ops.n_params : 0;
}

const char *strata_registry_layer_param(const strata_registry *reg, size_t i, size_t j, const char **default_value)
{
	*default_value = NULL;
	if (i >= reg->n_types || j >= reg->types[i].ops.n_params)
		return NULL;
	const strata_param *p = &reg->types[i].ops.params[j];
	*default_value = p->default_value;
	return p->name;
}

strata_status strata_runtime_build_program(strata_runtime *rt, const char *program, strata_error *err)
{
	const st_program_src *src = st_registry_find_program(rt->reg, program);
	if (!src)
		return st_fail(err, STRATA_ERR_NOT_FOUND, "no OpenCL program named '%s' is registered", program);
	(void)src;
	return st_program_build(rt, program, NULL, err);
}

bool strata_runtime_guarded(const strata_runtime *rt)
{
	return rt->guard;
}

/* splitmix64: the check's inputs and gradients, the same for a seed everywhere. */
static float check_uniform(uint64_t *state)
{
	uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
	z ^= z >> 31;
	return (float)((z >> 40) * (1.0 / 16777216.0));
}

/* n values written to the start of `t`: uniform in [lo, lo + span), or zeros for int32 ids. */
static strata_status check_fill(strata_session *s, strata_tensor *t, size_t n, bool ids, float lo, float span,
                                uint64_t *state, strata_error *err)
{
	if (n == 0 || !t->mem)
		return STRATA_OK;
	float *v = malloc(n * sizeof(float));
	if (!v)
		return st_fail(err, STRATA_ERR_NO_MEMORY, "out of memory");
	for (size_t i = 0; i < n; i++)
		v[i] = ids ? 0.0f : lo + span * check_uniform(state);
	strata_status st = st_tensor_write_prefix(s->rt, s->pool_mode, t, v, n, &s->staging, err);
	free(v);
	return st;
}

strata_status strata_session_check_pass(strata_session *s, uint32_t batch, uint64_t seed, bool backward,
                                        strata_error *err)
{
	strata_model *m = s->model;
	if (batch == 0 || batch > s->max_batch)
		return st_fail(err, STRATA_ERR_INVALID, "a batch of %u: the session takes 1 to %u", batch, s->max_batch);
	uint64_t state = seed;
	strata_status st;
	for (uint32_t v = 0; v < m->n_inputs; v++) {
		const strata_shape *shape = &m->inputs[v].shape;
		if ((st = check_fill(s, st_session_value(s, v), st_shape_elems(shape) * batch,
		                     shape->dtype == STRATA_DTYPE_INT32, 0.0f, 1.0f, &state, err)))
			return st;
	}
	if ((st = st_session_enable_training(s, err)) || (st = st_session_forward_device(s, batch, true, err)))
		return st;
	if (backward) {
		for (size_t k = 0; k < m->n_outputs; k++) {
			size_t layer = m->outputs[k];
			if ((st = check_fill(s, st_session_layer_grad(s, layer), st_shape_elems(&m->layers[layer].out) * batch,
			                     false, -1.0f, 2.0f, &state, err)))
				return st;
		}
		strata_tensor *dx = NULL;
		if ((st = st_session_backward(s, batch, false, &dx, err)))
			return st;
	}
	return st_finish(s->rt, err);
}
