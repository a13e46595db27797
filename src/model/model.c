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

strata_status st_model_infer_shapes(struct strata_model *model, strata_error *err)
{
	strata_shape in = model->input;
	for (size_t i = 0; i < model->n_layers; i++) {
		struct strata_layer *layer = &model->layers[i];
		strata_shape out = {0};
		char a[128], b[128];

		st_error_clear(err);
		layer->in = in;
		layer->err = err;
		layer->last_status = STRATA_OK;
		strata_status st = layer->type->ops.build(layer, model->reg->host, &in, &out);
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
		if (!shape_fits(&out))
			return layer_fail(layer, err, STRATA_ERR_INVALID,
			                  "output shape %s has more than %d values per sample", b, INT32_MAX);
		layer->out = out;
		in = out;
	}
	st_error_clear(err);
	return STRATA_OK;
}
