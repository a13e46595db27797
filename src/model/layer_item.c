/* One layer item of a model file read into a layer of the model: its type from the registry, its
 * parameters validated against the type's declaration and the keys every layer takes (name,
 * trainable, activity_regularizer, shares), its `inputs:` node kept for the graph. Called by the
 * loader for plain items and by wrappers.c for the layers a wrapper stands for. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/model_file.h"
#include "model/params.h"
#include "model/yaml_doc.h"
#include "plugin/registry.h"

strata_status st_ld_read_layer(st_loader *ld, size_t i, const st_ynode *item)
{
	static const char *const handled[] = {"type", "inputs", NULL};
	strata_model *m = ld->m;
	struct strata_layer *layer = &m->layers[i];
	char list[1024], got[96];
	strata_status st;

	layer->model = m;
	layer->index = (uint32_t)i;
	layer->pos = item->pos;
	layer->trainable = true;
	ld->name_pos[i] = item->pos;
	if (item->kind != ST_YNODE_MAPPING) {
		st_ynode_describe(item, got, sizeof(got));
		return st_ld_fail(ld, item->pos, STRATA_ERR_INVALID,
		               "a layer must be a mapping with a 'type', got %s", got);
	}
	const st_ynode *t = st_ynode_get(item, "type");
	st_registry_layer_list(m->reg, list, sizeof(list));
	if (!list[0])
		snprintf(list, sizeof(list), "none, no layer plugins are loaded");
	if (!t)
		return st_ld_fail(ld, item->pos, STRATA_ERR_INVALID,
		               "missing required key 'type' in layer %zu; available: %s", i + 1, list);
	if (t->kind != ST_YNODE_SCALAR || st_ynode_is_null(t)) {
		st_ynode_describe(t, got, sizeof(got));
		return st_ld_fail(ld, t->pos, STRATA_ERR_INVALID,
		               "'type' must be a layer type, got %s; available: %s", got, list);
	}
	layer->type = st_registry_find_layer(m->reg, t->u.scalar.text);
	if (!layer->type) {
		st_yquote(t, got, sizeof(got));
		return st_ld_fail(ld, t->pos, STRATA_ERR_INVALID, "unknown layer type %s; available: %s", got,
		               list);
	}

	const strata_layer_ops *ops = &layer->type->ops;
	const st_schema *common = &st_schema_layer;
	st_param_value *cv = calloc(common->n_params, sizeof(*cv));
	layer->params = calloc(ops->n_params ? ops->n_params : 1, sizeof(*layer->params));
	if (!cv || !layer->params) {
		st = st_ld_no_memory(ld);
		goto out_free;
	}
	st_param_group groups[2] = {
		{common->params, common->n_params, cv},
		{ops->params, ops->n_params, layer->params},
	};
	char where[128];
	snprintf(where, sizeof(where), "%s layer", ops->type);
	st = st_params_read(ld->file, item, item->pos, where, groups, 2, handled, ld->err);
	if (st)
		goto out_free;
	const st_param_value *name = st_ld_value(cv, common, "name");
	if (name->s) {
		if (!name->s[0]) {
			st = st_ld_fail(ld, name->pos, STRATA_ERR_INVALID, "a layer name cannot be empty");
			goto out_free;
		}
		layer->name = strdup(name->s);
		if (!layer->name) {
			st = st_ld_no_memory(ld);
			goto out_free;
		}
		ld->name_given[i] = true;
		ld->name_pos[i] = name->pos;
	}
	layer->trainable = st_ld_value(cv, common, "trainable")->i != 0;
	layer->activity_l1 = st_ld_value(cv, common, "activity_regularizer")->l1;
	layer->activity_l2 = st_ld_value(cv, common, "activity_regularizer")->l2;
	ld->layer_inputs[i] = st_ynode_get(item, "inputs");
	const st_param_value *source = st_ld_value(cv, common, "source");
	if (source->s && !(layer->source = strdup(source->s))) {
		st = st_ld_no_memory(ld);
		goto out_free;
	}
	const st_param_value *shares = st_ld_value(cv, common, "shares");
	if (shares->s) {
		ld->shares[i] = strdup(shares->s);
		ld->shares_pos[i] = shares->pos;
		if (!ld->shares[i])
			st = st_ld_no_memory(ld);
	}
out_free:
	if (cv)
		st_ld_free_values(cv, common->n_params);
	return st;
}
