/* strata_session_forward_training_to: a training forward pass up to a layer, on the host's
 * samples, read back (strata visualize --augmented shows what augmentation layers make of the
 * training images). */
#include "base/error.h"
#include "device/runtime.h"
#include "device/tensor_pool.h"
#include "exec/session.h"
#include "model/model.h"

strata_status strata_session_forward_training_to(strata_session *s, const float *input, uint32_t batch, size_t layer,
                                                 float *output, strata_error *err)
{
	strata_model *m = s->model;
	if (layer >= m->n_layers)
		return st_fail(err, STRATA_ERR_NOT_FOUND, "no layer %zu: the model has %zu", layer, m->n_layers);
	if (batch == 0 || batch > s->max_batch)
		return st_fail(err, STRATA_ERR_INVALID, "batch of %u samples, the session holds 1 to %u", batch,
		               s->max_batch);
	if (m->n_inputs > 1)
		return st_fail(err, STRATA_ERR_UNSUPPORTED, "%s has %zu inputs: this call feeds one", m->name, m->n_inputs);
	uint64_t in_elems = st_shape_elems(&m->input), out_elems = st_shape_elems(&m->layers[layer].out);
	strata_status st;
	if ((st = st_tensor_write_prefix(s->rt, s->pool_mode, &s->input, input, in_elems * batch, &s->staging, err)) ||
	    (st = st_session_forward_layers(s, batch, true, layer + 1, err)) ||
	    (st = st_tensor_read(s->rt, st_session_layer_output(s, layer + 1), 0, output,
	                         out_elems * batch * sizeof(float), err)))
		return st;
	return s->rt->profile ? st_finish(s->rt, err) : STRATA_OK;
}
