/* Shape inference through the plugins, and the lookups the host API and the loader share. */
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "model/model.h"
#include "model/params.h"

const st_param_value *st_layer_param(const struct strata_layer *layer, const char *name)
{
	if (!layer || !layer->type)
		return NULL;
	return st_param_find(layer->params, layer->type->ops.n_params, name);
}

const st_param_value *st_section_param(const st_section *section, const char *name)
{
	return section ? st_param_find(section->values, section->n_params, name) : NULL;
}

void st_layer_release(struct strata_layer *layer)
{
	if (!layer)
		return;
	if (layer->priv && layer->type && layer->type->ops.destroy)
		layer->type->ops.destroy(layer, layer->model->reg->host);
	layer->priv = NULL;
	if (layer->type)
		st_params_release(layer->params, layer->type->ops.n_params);
	free(layer->params);
	layer->params = NULL;
	for (uint32_t i = 0; i < layer->n_weights; i++) {
		free(layer->weights[i].name);
		free(layer->weights[i].initializer);
	}
	free(layer->weights);
	layer->weights = NULL;
	layer->n_weights = 0;
	free(layer->workspaces);
	layer->workspaces = NULL;
	layer->n_workspaces = 0;
	free(layer->name);
	layer->name = NULL;
	free(layer->source);
	layer->source = NULL;
	free(layer->inputs);
	layer->inputs = NULL;
	free(layer->in_shapes);
	free(layer->step_in_shapes);
	layer->step_in_shapes = NULL;
	layer->in_shapes = NULL;
	layer->n_inputs = 0;
}

uint64_t st_shape_elems(const strata_shape *shape)
{
	uint64_t n = 1;
	for (uint32_t i = 0; i < shape->rank; i++)
		n *= (uint64_t)shape->dims[i];
	return n;
}

void st_shape_text(const strata_shape *s, char *buf, size_t size)
{
	size_t o = 0;
	int n = snprintf(buf, size, "(");
	for (uint32_t i = 0; i < s->rank && i < STRATA_MAX_RANK && n >= 0 && (o += (size_t)n) < size; i++)
		n = snprintf(buf + o, size - o, "%s%lld", i ? ", " : "", (long long)s->dims[i]);
	if (n >= 0 && (o += (size_t)n) < size)
		snprintf(buf + o, size - o, ")");
}

/* Kernels index a sample with int, so a per-sample tensor stays within INT32_MAX elements. */
static bool shape_fits(const strata_shape *s)
{
	int64_t n = 1;
	if (s->rank < 1 || s->rank > STRATA_MAX_RANK)
		return false;
	for (uint32_t i = 0; i < s->rank; i++)
		if (s->dims[i] < 1 || __builtin_mul_overflow(n, s->dims[i], &n) || n > INT32_MAX)
			return false;
	return true;
}

static strata_status layer_fail(struct strata_layer *layer, strata_error *err, strata_status status,
                                const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static strata_status layer_fail(struct strata_layer *layer, strata_error *err, strata_status status,
                                const char *fmt, ...)
{
	char msg[STRATA_ERROR_MAX / 2];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	return st_fail(err, status, "%s:%u:%u: %s: %s", layer->model->file, layer->pos.line, layer->pos.col,
	               layer->name, msg);
}

const char *st_value_name(const struct strata_model *m, uint32_t v)
{
	return v < m->n_inputs ? m->inputs[v].name : m->layers[v - m->n_inputs].name;
}

const strata_shape *st_value_shape(const struct strata_model *m, uint32_t v)
{
	return v < m->n_inputs ? &m->inputs[v].shape : &m->layers[v - m->n_inputs].out;
}

int64_t st_value_mask_of(const struct strata_model *m, uint32_t v)
{
	return v < m->n_inputs ? -1 : m->layers[v - m->n_inputs].mask_of;
}

/* Elements of a shape without its last axis: a mask's per sample. */
static uint64_t leading_elems(const strata_shape *s)
{
	uint64_t n = 1;
	for (uint32_t d = 0; d + 1 < s->rank; d++)
		n *= (uint64_t)s->dims[d];
	return n;
}

/* Where the layer's output mask comes from, after its build() declared what it does with input
 * 0's (plugin.h, strata_mask_use). */
static void resolve_mask(struct strata_model *model, struct strata_layer *layer)
{
	uint64_t elems = leading_elems(&layer->out);
	layer->mask_of = -1;
	layer->mask_elems = 0;
	layer->mask_combine = false;
	if (layer->mask_use == STRATA_MASK_PRODUCE) {
		layer->mask_of = layer->index;
		layer->mask_elems = elems;
		return;
	}
	if (layer->mask_use != STRATA_MASK_PASS)
		return;
	/* Several inputs (a merge): Keras ANDs their masks, an input without one counting as all
	 * real. One mask among them passes as it is; different ones are combined (mask_combine). */
	int64_t first = -1;
	bool differ = false;
	for (uint32_t k = 0; k < layer->n_inputs; k++) {
		int64_t of = st_value_mask_of(model, layer->inputs[k]);
		if (of < 0)
			continue;
		if (model->layers[of].mask_elems != elems)
			return; /* a mask of another shape stops here */
		differ |= first >= 0 && of != first;
		first = first < 0 ? of : first;
	}
	/* (A time-distributed layer's batch is its samples times steps: its masks are not combined.) */
	if (first < 0 || (layer->distributed && differ))
		return;
	layer->mask_of = differ ? (int64_t)layer->index : first;
	layer->mask_elems = elems;
	layer->mask_combine = differ;
}

static const char *const dtype_names[] = {"float32", "int32"};

/* The inputs a layer type takes, before its build() sees them: their count, and float32 unless
 * the type says it knows element types. */
static strata_status check_inputs(struct strata_layer *layer, strata_error *err)
{
	const strata_layer_ops *ops = &layer->type->ops;
	size_t lo = ops->min_inputs ? ops->min_inputs : 1, hi = ops->max_inputs ? ops->max_inputs : 1;
	if (hi < lo)
		hi = lo;
	if (layer->n_inputs < lo || layer->n_inputs > hi) {
		char range[64];
		if (lo == hi)
			snprintf(range, sizeof(range), "%zu", lo);
		else if (hi == STRATA_INPUTS_ANY)
			snprintf(range, sizeof(range), "%zu or more", lo);
		else
			snprintf(range, sizeof(range), "%zu to %zu", lo, hi);
		return st_fail(err, STRATA_ERR_INVALID, "%s:%u:%u: %s: a %s layer takes %s input%s, %u given",
		               layer->model->file, layer->inputs_pos.line, layer->inputs_pos.col, layer->name, ops->type,
		               range, lo == 1 && hi == 1 ? "" : "s", layer->n_inputs);
	}
	for (uint32_t k = 0; k < layer->n_inputs; k++) {
		const strata_shape *in = &layer->in_shapes[k];
		if (in->dtype != STRATA_DTYPE_FLOAT32 && !ops->knows_dtypes)
			return st_fail(err, STRATA_ERR_INVALID, "%s:%u:%u: %s: a %s layer takes float32 inputs; %s is %s",
			               layer->model->file, layer->inputs_pos.line, layer->inputs_pos.col, layer->name,
			               ops->type, st_value_name(layer->model, layer->inputs[k]),
			               in->dtype < STRATA_DTYPE_COUNT ? dtype_names[in->dtype] : "of an unknown type");
	}
	return STRATA_OK;
}

/* A layer that shares another's weights declared exactly the same ones. */
static strata_status check_shared(struct strata_model *model, struct strata_layer *layer, strata_error *err)
{
	const struct strata_layer *owner = &model->layers[layer->shares];
	char a[128], b[128];
	if (owner->type != layer->type)
		return st_fail(err, STRATA_ERR_INVALID, "%s:%u:%u: %s shares the weights of %s, a %s layer, but is a %s layer",
		               model->file, layer->shares_pos.line, layer->shares_pos.col, layer->name, owner->name,
		               owner->type->ops.type, layer->type->ops.type);
	if (owner->n_weights != layer->n_weights)
		return st_fail(err, STRATA_ERR_INVALID, "%s:%u:%u: %s shares the weights of %s, which has %u, not %u",
		               model->file, layer->shares_pos.line, layer->shares_pos.col, layer->name, owner->name,
		               owner->n_weights, layer->n_weights);
	for (uint32_t w = 0; w < layer->n_weights; w++) {
		const st_weight_decl *x = &owner->weights[w], *y = &layer->weights[w];
		bool same = strcmp(x->name, y->name) == 0 && x->shape.rank == y->shape.rank;
		for (uint32_t d = 0; same && d < x->shape.rank; d++)
			same = x->shape.dims[d] == y->shape.dims[d];
		if (!same) {
			st_shape_text(&x->shape, a, sizeof(a));
			st_shape_text(&y->shape, b, sizeof(b));
			return st_fail(err, STRATA_ERR_INVALID,
			               "%s:%u:%u: %s shares the weights of %s, whose %s is %s; this layer's %s would be %s",
			               model->file, layer->shares_pos.line, layer->shares_pos.col, layer->name, owner->name,
			               x->name, a, y->name, b);
		}
	}
	if (owner->n_states || layer->n_states)
		return st_fail(err, STRATA_ERR_UNSUPPORTED, "%s:%u:%u: %s: layers with persistent state cannot share "
		               "weights", model->file, layer->shares_pos.line, layer->shares_pos.col, layer->name);
	return STRATA_OK;
}

/* A distributed layer's inputs without their first axis, the steps, which they must share. */
static strata_status step_shapes(struct strata_layer *layer, strata_error *err)
{
	free(layer->step_in_shapes);
	if (!(layer->step_in_shapes = calloc(layer->n_inputs, sizeof(*layer->step_in_shapes))))
		return st_fail(err, STRATA_ERR_NO_MEMORY, "%s: out of memory", layer->name);
	for (uint32_t k = 0; k < layer->n_inputs; k++) {
		const strata_shape *in = &layer->in_shapes[k];
		char a[128];
		st_shape_text(in, a, sizeof(a));
		if (in->rank < 2)
			return layer_fail(layer, err, STRATA_ERR_INVALID,
			                  "time_distributed needs inputs of (timesteps, ...) with at least one more axis, got %s", a);
		if (k == 0)
			layer->steps = in->dims[0];
		else if (in->dims[0] != layer->steps)
			return layer_fail(layer, err, STRATA_ERR_INVALID, "time_distributed: input %u has %lld steps, input 0 %lld",
			                  k, (long long)in->dims[0], (long long)layer->steps);
		strata_shape *s = &layer->step_in_shapes[k];
		*s = *in;
		s->rank = in->rank - 1;
		for (uint32_t d = 0; d < s->rank; d++)
			s->dims[d] = in->dims[d + 1];
		s->dims[s->rank] = 0;
	}
	return STRATA_OK;
}

/* After a distributed layer's build(): its output is `steps` of the plugin's, and each of its
 * samples holds that many of the plugin's, workspaces included. Its mask is its input's. */
static strata_status distribute(struct strata_layer *layer, strata_error *err)
{
	layer->step_out = layer->out;
	if (layer->out.rank >= STRATA_MAX_RANK)
		return layer_fail(layer, err, STRATA_ERR_INVALID, "time_distributed: an output of rank %u per step is too "
		                  "many axes with the steps", layer->out.rank);
	for (uint32_t d = layer->out.rank; d > 0; d--)
		layer->out.dims[d] = layer->out.dims[d - 1];
	layer->out.dims[0] = layer->steps;
	layer->out.rank++;
	if (!shape_fits(&layer->out))
		return layer_fail(layer, err, STRATA_ERR_INVALID, "time_distributed: the output has more than %d values a "
		                  "sample", INT32_MAX);
	for (uint32_t w = 0; w < layer->n_workspaces; w++)
		if (__builtin_mul_overflow(layer->workspaces[w], (size_t)layer->steps, &layer->workspaces[w]))
			return layer_fail(layer, err, STRATA_ERR_OVERFLOW, "time_distributed: workspace %u overflows", w);
	/* Keras' TimeDistributed keeps the mask of the steps. */
	layer->mask_use = STRATA_MASK_PASS;
	return STRATA_OK;
}

strata_status st_model_infer_shapes(struct strata_model *model, strata_error *err)
{
	for (size_t o = 0; o < model->n_layers; o++) {
		struct strata_layer *layer = &model->layers[model->order[o]];
		strata_shape out = {0};
		char a[128], b[128];

		st_error_clear(err);
		for (uint32_t k = 0; k < layer->n_inputs; k++)
			layer->in_shapes[k] = *st_value_shape(model, layer->inputs[k]);
		strata_status st = check_inputs(layer, err);
		if (st)
			return st;
		strata_shape in = layer->in_shapes[0];
		layer->in = in;
		if (layer->distributed && (st = step_shapes(layer, err)))
			return st;
		if (layer->distributed)
			in = layer->step_in_shapes[0];
		layer->err = err;
		layer->last_status = STRATA_OK;
		layer->mask_use = STRATA_MASK_NONE;
		st = layer->type->ops.build(layer, model->reg->host, &in, &out);
		layer->err = NULL;
		if (st != STRATA_OK) {
			if ((unsigned)st >= STRATA_STATUS_COUNT)
				st = STRATA_ERR_PLUGIN;
			if (!err || !err->message[0])
				return layer_fail(layer, err, st,
				                  "the %s plugin's build() failed (%s) without a message",
				                  layer->type->plugin, strata_status_name(st));
			err->status = st;
			return st;
		}
		/* A plugin that does not know element types leaves them as they came (or zero): its
		 * outputs are float32. */
		if (!layer->type->ops.knows_dtypes)
			out.dtype = STRATA_DTYPE_FLOAT32;
		st_shape_text(&in, a, sizeof(a));
		if (out.rank < 1 || out.rank > STRATA_MAX_RANK)
			return layer_fail(layer, err, STRATA_ERR_PLUGIN,
			                  "the %s plugin returned an output of rank %u for input %s",
			                  layer->type->plugin, out.rank, a);
		st_shape_text(&out, b, sizeof(b));
		for (uint32_t d = 0; d < out.rank; d++)
			if (out.dims[d] < 1)
				return layer_fail(layer, err, STRATA_ERR_PLUGIN,
				                  "the %s plugin returned output shape %s for input %s",
				                  layer->type->plugin, b, a);
		if (out.dtype >= STRATA_DTYPE_COUNT)
			return layer_fail(layer, err, STRATA_ERR_PLUGIN, "the %s plugin returned element type %u",
			                  layer->type->plugin, out.dtype);
		if (!shape_fits(&out))
			return layer_fail(layer, err, STRATA_ERR_INVALID,
			                  "output shape %s has more than %d values per sample", b, INT32_MAX);
		layer->out = out;
		if (layer->distributed && (st = distribute(layer, err)))
			return st;
		resolve_mask(model, layer);
	}
	for (size_t i = 0; i < model->n_layers; i++) {
		strata_status st = model->layers[i].shares >= 0 ? check_shared(model, &model->layers[i], err) : STRATA_OK;
		if (st)
			return st;
	}
	st_error_clear(err);
	return STRATA_OK;
}
