/* The YAML model loader: the file's tree (yaml_doc.c) checked against the model format and the
 * plugins' parameter declarations (params.c), layer names as Keras gives them, then shape
 * inference through each plugin's build() (model.c). Every message points at the file, line and
 * column of what it is about. */
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "base/error.h"
#include "base/fsutil.h"
#include "model/graph.h"
#include "model/model_file.h"
#include "model/wrappers.h"
#include "model/recurrent_states.h"
#include "model/model.h"
#include "model/params.h"
#include "model/yaml_doc.h"

/* Far above any real model; refuses to read a wrong path's gigabytes into memory. */
#define MODEL_FILE_MAX ((uint64_t)16 << 20)


static char *dup_or_null(const char *s)
{
	return s ? strdup(s) : NULL;
}

/* ---- Sections ----------------------------------------------------------------------------- */

/* One input's mapping: {shape: [...], name: ..., dtype: ...}; `index` numbers default names. */
static strata_status read_one_input(st_loader *ld, const st_ynode *node, size_t index, st_input *in)
{
	st_param_value *v;
	char where[32];
	snprintf(where, sizeof(where), index ? "inputs" : "input");
	strata_status st = st_ld_section(ld, &st_schema_input, node, node->pos, where, NULL, &v);
	if (st)
		goto out_free;
	const st_param_value *shape = st_ld_value(v, &st_schema_input, "shape");
	const char *name = st_ld_value(v, &st_schema_input, "name")->s;
	const char *dtype = st_ld_value(v, &st_schema_input, "dtype")->s;
	int64_t count = 1;
	bool overflow = false;
	in->pos = node->pos;
	in->shape.rank = shape->n_ints;
	in->shape.dtype = dtype && strcmp(dtype, "int32") == 0 ? STRATA_DTYPE_INT32 : STRATA_DTYPE_FLOAT32;
	for (uint32_t i = 0; i < shape->n_ints; i++) {
		in->shape.dims[i] = shape->ints[i];
		overflow |= __builtin_mul_overflow(count, in->shape.dims[i], &count);
	}
	if (name && !name[0]) {
		st = st_ld_fail(ld, st_ld_value(v, &st_schema_input, "name")->pos, STRATA_ERR_INVALID, "an input name cannot be empty");
		goto out_free;
	}
	char fallback[32];
	snprintf(fallback, sizeof(fallback), "input_%zu", index + 1); /* Keras' InputLayer names */
	in->name = strdup(name ? name : fallback);
	if (!in->name) {
		st = st_ld_no_memory(ld);
		goto out_free;
	}
	if (overflow || count > INT32_MAX) {
		char text[160];
		st_shape_text(&in->shape, text, sizeof(text));
		st = st_ld_fail(ld, shape->pos, STRATA_ERR_INVALID, "input shape %s has more than %d values per sample",
		             text, INT32_MAX);
	}
out_free:
	st_ld_free_values(v, st_schema_input.n_params);
	return st;
}

/* `input: {shape: ...}` (one float32 input, as every model file before graphs), or `inputs:`, a
 * list of named inputs, each with a shape and optionally a dtype. */
static strata_status read_inputs(st_loader *ld, const st_ynode *root)
{
	strata_model *m = ld->m;
	const st_ynode *one = st_ynode_get(root, "input"), *many = st_ynode_get(root, "inputs");
	char got[96];
	if (one && many)
		return st_ld_fail(ld, many->pos, STRATA_ERR_INVALID,
		               "'input' and 'inputs' both given: use 'inputs' for several, 'input' for one");
	if (!one && !many)
		return st_ld_fail(ld, root->pos, STRATA_ERR_INVALID,
		               "missing required key 'input', e.g. input: {shape: [28, 28, 1]} (or 'inputs', a list)");
	const st_ynode *const *items = &one;
	size_t n = 1;
	if (many) {
		if (many->kind != ST_YNODE_SEQUENCE || many->u.seq.n == 0) {
			st_ynode_describe(many, got, sizeof(got));
			return st_ld_fail(ld, many->pos, STRATA_ERR_INVALID,
			               "'inputs' must be a list of inputs, each {name: NAME, shape: [...]}, got %s",
			               many->kind == ST_YNODE_SEQUENCE ? "an empty list" : got);
		}
		items = (const st_ynode *const *)many->u.seq.items;
		n = many->u.seq.n;
		m->functional = true;
	}
	m->inputs = calloc(n, sizeof(*m->inputs));
	if (!m->inputs)
		return st_ld_no_memory(ld);
	m->n_inputs = n;
	for (size_t i = 0; i < n; i++) {
		strata_status st = read_one_input(ld, items[i], many ? i : 0, &m->inputs[i]);
		if (st)
			return st;
		for (size_t j = 0; j < i; j++)
			if (strcmp(m->inputs[j].name, m->inputs[i].name) == 0)
				return st_ld_fail(ld, items[i]->pos, STRATA_ERR_INVALID, "duplicate input name '%s' (first at %u:%u)",
				               m->inputs[i].name, m->inputs[j].pos.line, m->inputs[j].pos.col);
	}
	m->input = m->inputs[0].shape;
	m->input_pos = m->inputs[0].pos;
	return STRATA_OK;
}

/* name, device, and the refusal of keys the format does not know. */
static strata_status read_top(st_loader *ld, const st_ynode *root, const char *display_name)
{
	static const char *const handled[] = {"input", "inputs",   "outputs",   "layers", "optimizer",
	                                      "metrics", "data", "training", "init_from", "loss", "loss_weights", "serving", NULL};
	const st_schema *s = &st_schema_model;
	strata_model *m = ld->m;
	st_param_value *v;
	strata_status st = st_ld_section(ld, s, root, root->pos, "the model file", handled, &v);
	if (st)
		goto out_free;
	const char *name = st_ld_value(v, s, "name")->s;
	if (name) {
		m->name = strdup(name);
	} else {
		/* The file name without folder and extension. */
		if (!display_name)
			display_name = "model";
		const char *base = strrchr(display_name, '/');
		base = base ? base + 1 : display_name;
		const char *dot = strrchr(base, '.');
		size_t len = dot && dot != base ? (size_t)(dot - base) : strlen(base);
		m->name = len ? strndup(base, len) : strdup("model");
	}
	m->device = dup_or_null(st_ld_value(v, s, "device")->s);
	if (!m->name || (st_ld_value(v, s, "device")->s && !m->device))
		st = st_ld_no_memory(ld);
out_free:
	st_ld_free_values(v, s->n_params);
	return st;
}

/* ---- Layers ------------------------------------------------------------------------------- */

typedef struct name_ref {
	const char *name;
	size_t index;
} name_ref;

static int name_ref_cmp(const void *a, const void *b)
{
	const name_ref *x = a, *y = b;
	int c = strcmp(x->name, y->name);
	if (c)
		return c;
	return x->index < y->index ? -1 : x->index > y->index;
}

/* Keras' default names: prefix_N, N counting from 1 per prefix over the unnamed layers. */
static strata_status assign_names(st_loader *ld)
{
	strata_model *m = ld->m;
	const char **prefixes = calloc(m->n_layers, sizeof(*prefixes));
	uint32_t *counts = calloc(m->n_layers, sizeof(*counts));
	size_t n_prefixes = 0;
	strata_status st = STRATA_OK;
	if (!prefixes || !counts) {
		st = st_ld_no_memory(ld);
		goto out_free;
	}
	for (size_t i = 0; i < m->n_layers; i++) {
		struct strata_layer *layer = &m->layers[i];
		if (layer->name)
			continue;
		const char *prefix =
		        layer->type->ops.name_prefix ? layer->type->ops.name_prefix : layer->type->ops.type;
		size_t p = 0;
		while (p < n_prefixes && strcmp(prefixes[p], prefix))
			p++;
		if (p == n_prefixes)
			prefixes[n_prefixes++] = prefix;
		size_t len = strlen(prefix) + 12;
		layer->name = malloc(len);
		if (!layer->name) {
			st = st_ld_no_memory(ld);
			goto out_free;
		}
		snprintf(layer->name, len, "%s_%u", prefix, ++counts[p]);
	}
out_free:
	free(prefixes);
	free(counts);
	return st;
}

/* Sorting finds every clash in O(n log n); the one reported is the earliest second occurrence,
 * the first a reader meets going down the file. */
static strata_status check_names(st_loader *ld)
{
	strata_model *m = ld->m;
	name_ref *refs = malloc(m->n_layers * sizeof(*refs));
	if (!refs)
		return st_ld_no_memory(ld);
	for (size_t i = 0; i < m->n_layers; i++)
		refs[i] = (name_ref){m->layers[i].name, i};
	qsort(refs, m->n_layers, sizeof(*refs), name_ref_cmp);
	size_t first = SIZE_MAX, second = SIZE_MAX, group = 0;
	for (size_t k = 1; k < m->n_layers; k++) {
		if (strcmp(refs[k].name, refs[k - 1].name)) {
			group = k;
			continue;
		}
		if (refs[k].index < second) {
			second = refs[k].index;
			first = refs[group].index;
		}
	}
	free(refs);
	if (second == SIZE_MAX)
		return STRATA_OK;
	st_pos fp = ld->name_pos[first];
	if (ld->name_given[second])
		return st_ld_fail(ld, ld->name_pos[second], STRATA_ERR_INVALID,
		               "duplicate layer name '%s' (first at %u:%u)", m->layers[second].name, fp.line,
		               fp.col);
	return st_ld_fail(ld, ld->name_pos[second], STRATA_ERR_INVALID,
	               "duplicate layer name '%s', this layer's default (first at %u:%u): give it a name",
	               m->layers[second].name, fp.line, fp.col);
}

static strata_status read_layers(st_loader *ld, const st_ynode *root)
{
	strata_model *m = ld->m;
	const st_ynode *node = st_ynode_get(root, "layers");
	char got[96];
	if (!node)
		return st_ld_fail(ld, root->pos, STRATA_ERR_INVALID,
		               "missing required key 'layers': a list of layers, each with a 'type'");
	if (node->kind != ST_YNODE_SEQUENCE) {
		st_ynode_describe(node, got, sizeof(got));
		return st_ld_fail(ld, node->pos, STRATA_ERR_INVALID, "'layers' must be a list of layers, got %s",
		               got);
	}
	if (node->u.seq.n == 0)
		return st_ld_fail(ld, node->pos, STRATA_ERR_INVALID,
		               "'layers' is empty: a model needs at least one layer");
	/* A wrapper (bidirectional) item stands for several layers. */
	size_t n = 0;
	for (size_t k = 0; k < node->u.seq.n; k++)
		n += st_wrapper_width(node->u.seq.items[k]);
	m->layers = calloc(n, sizeof(*m->layers));
	ld->read_previous = calloc(n, sizeof(*ld->read_previous));
	ld->name_pos = calloc(n, sizeof(*ld->name_pos));
	ld->name_given = calloc(n, sizeof(*ld->name_given));
	ld->layer_inputs = calloc(n, sizeof(*ld->layer_inputs));
	ld->shares = calloc(n, sizeof(*ld->shares));
	ld->shares_pos = calloc(n, sizeof(*ld->shares_pos));
	if (!m->layers || !ld->name_pos || !ld->name_given || !ld->layer_inputs || !ld->shares || !ld->shares_pos ||
	    !ld->read_previous)
		return st_ld_no_memory(ld);
	m->n_layers = n;
	for (size_t k = 0, i = 0; k < node->u.seq.n; i += st_wrapper_width(node->u.seq.items[k]), k++) {
		const st_ynode *item = node->u.seq.items[k];
		strata_status st = st_wrapper_is_bidirectional(item)        ? st_wrapper_read(ld, i, item)
		                   : st_wrapper_is_time_distributed(item) ? st_wrapper_read_distributed(ld, i, item)
		                   : st_states_width(item)               ? st_states_read(ld, i, item)
		                                                          : st_ld_read_layer(ld, i, item);
		if (st)
			return st;
	}
	strata_status st = assign_names(ld);
	if (st || (st = check_names(ld)) || (st = st_wrapper_finish(ld)) || (st = st_states_check(ld)))
		return st;
	/* A layer and an input of one name would make `inputs:` ambiguous. */
	for (size_t i = 0; i < n; i++)
		for (size_t k = 0; k < m->n_inputs; k++)
			if (strcmp(m->layers[i].name, m->inputs[k].name) == 0)
				return st_ld_fail(ld, ld->name_pos[i], STRATA_ERR_INVALID,
				               "duplicate name '%s': the model has an input of that name (at %u:%u)",
				               m->layers[i].name, m->inputs[k].pos.line, m->inputs[k].pos.col);
	st_graph_spec spec = {
		.layer_inputs = ld->layer_inputs,
		.shares = (const char **)ld->shares,
		.shares_pos = ld->shares_pos,
		.outputs = st_ynode_get(root, "outputs"),
	};
	return st_graph_resolve(m, &spec, ld->err);
}

/* ---- Entry points ------------------------------------------------------------------------- */

static strata_status load_tree(st_loader *ld, const st_ydoc *doc, const char *display_name)
{
	const st_ynode *root = doc->root;
	char got[96];
	strata_status st;
	if (!root)
		return st_ld_fail(ld, (st_pos){1, 1}, STRATA_ERR_INVALID,
		               "the model file is empty: expected a mapping with 'input' and 'layers'");
	if (root->kind != ST_YNODE_MAPPING) {
		st_ynode_describe(root, got, sizeof(got));
		return st_ld_fail(ld, root->pos, STRATA_ERR_INVALID,
		               "the top level must be a mapping with 'input' and 'layers', got %s", got);
	}
	if ((st = read_top(ld, root, display_name)) || (st = read_inputs(ld, root)) ||
	    (st = read_layers(ld, root)) || (st = st_recipe_read(ld, root)) || (st = st_serving_read(ld, root)) ||
	    (st = st_model_infer_shapes(ld->m, ld->err)))
		return st;
	return st_recipe_check(ld);
}

strata_status strata_model_load_string(strata_registry *reg, const char *text, size_t len,
                                       const char *display_name, const char *base_dir, strata_model **out,
                                       strata_error *err)
{
	strata_error local;
	if (!err)
		err = &local;
	if (!reg || !out || (!text && len))
		return st_fail(err, STRATA_ERR_INVALID,
		               "strata_model_load_string: reg, text and out are required");
	*out = NULL;
	const char *file = display_name ? display_name : "(string)";

	strata_status st;
	st_ydoc *doc = NULL;
	strata_model *m = calloc(1, sizeof(*m));
	if (!m)
		return st_fail(err, STRATA_ERR_NO_MEMORY, "%s: out of memory", file);
	m->reg = reg;
	m->file = strdup(file);
	m->base_dir = dup_or_null(base_dir);
	st_loader ld = {.m = m, .file = file, .err = err};
	if (!m->file || (base_dir && !m->base_dir)) {
		st = st_ld_no_memory(&ld);
		goto out_free_model;
	}
	st = st_ydoc_parse(text ? text : "", len, file, &doc, err);
	if (st)
		goto out_free_model;
	st = load_tree(&ld, doc, display_name);
	st_ydoc_free(doc);
	free(ld.name_pos);
	free(ld.name_given);
	free(ld.layer_inputs);
	for (size_t i = 0; ld.shares && i < m->n_layers; i++)
		free(ld.shares[i]);
	free(ld.shares);
	free(ld.shares_pos);
	free(ld.read_previous);
	st_ld_free_made(&ld);
	if (st)
		goto out_free_model;
	*out = m;
	return STRATA_OK;

out_free_model:
	strata_model_free(m);
	return st;
}

strata_status strata_model_load(strata_registry *reg, const char *path, strata_model **out, strata_error *err)
{
	char *text = NULL, *dir = NULL;
	size_t len = 0;
	if (!reg || !path || !out)
		return st_fail(err, STRATA_ERR_INVALID, "strata_model_load: reg, path and out are required");
	*out = NULL;
	strata_status st = st_read_file(path, "model file", MODEL_FILE_MAX, &text, &len, err);
	if (st)
		return st;
	const char *slash = strrchr(path, '/');
	if (slash) {
		dir = slash == path ? strdup("/") : strndup(path, (size_t)(slash - path));
		if (!dir) {
			free(text);
			return st_fail(err, STRATA_ERR_NO_MEMORY, "%s: out of memory", path);
		}
	}
	st = strata_model_load_string(reg, text, len, path, dir, out, err);
	free(dir);
	free(text);
	return st;
}

void strata_model_free(strata_model *m)
{
	if (!m)
		return;
	for (size_t i = 0; i < m->n_layers; i++)
		st_layer_release(&m->layers[i]);
	free(m->layers);
	for (size_t i = 0; i < m->n_inputs; i++)
		free(m->inputs[i].name);
	free(m->inputs);
	free(m->order);
	free(m->outputs);
	st_recipe_release(&m->recipe);
	free(m->device);
	free(m->name);
	free(m->base_dir);
	free(m->file);
	free(m);
}

/* ---- Accessors ---------------------------------------------------------------------------- */

const char *strata_model_name(const strata_model *m)
{
	return m ? m->name : NULL;
}

size_t strata_model_layer_count(const strata_model *m)
{
	return m ? m->n_layers : 0;
}

const char *strata_model_layer_name(const strata_model *m, size_t i)
{
	return m && i < m->n_layers ? m->layers[i].name : NULL;
}

const char *strata_model_layer_type(const strata_model *m, size_t i)
{
	return m && i < m->n_layers ? m->layers[i].type->ops.type : NULL;
}

strata_shape strata_model_input_shape(const strata_model *m)
{
	strata_shape none = {0};
	return m ? m->input : none;
}

strata_shape strata_model_output_shape(const strata_model *m, size_t layer)
{
	strata_shape none = {0};
	return m && layer < m->n_layers ? m->layers[layer].out : none;
}

uint64_t strata_model_param_count(const strata_model *m, size_t layer)
{
	uint64_t n = 0;
	/* A layer sharing another's weights has none of its own: Keras counts them once. */
	if (!m || layer >= m->n_layers || m->layers[layer].shares >= 0)
		return 0;
	for (uint32_t w = 0; w < m->layers[layer].n_weights; w++)
		n += m->layers[layer].weights[w].count;
	return n;
}

const char *strata_model_device(const strata_model *m)
{
	return m ? m->device : NULL;
}

strata_training_config strata_model_training(const strata_model *m)
{
	strata_training_config none = {0};
	return m ? m->recipe.training : none;
}

strata_data_config strata_model_data(const strata_model *m)
{
	strata_data_config none = {0};
	if (!m)
		return none;
	const st_recipe *r = &m->recipe;
	return (strata_data_config){
		.train_images = r->inputs[ST_TRAIN][0],
		.train_labels = r->n_heads ? r->labels[ST_TRAIN][0] : r->n_outputs ? r->outputs[0].labels[ST_TRAIN] : NULL,
		.test_images = r->inputs[ST_TEST][0],
		.test_labels = r->n_heads ? r->labels[ST_TEST][0] : r->n_outputs ? r->outputs[0].labels[ST_TEST] : NULL,
		.scale = r->data_scale,
		.num_classes = r->n_heads ? r->head_classes[0] : r->n_outputs ? r->outputs[0].num_classes : 0,
		.standardize = r->data_standardize,
		.keep_labels = r->keep_labels,
		.n_keep_labels = r->n_keep_labels,
	};
}

size_t strata_model_input_count(const strata_model *m)
{
	return m ? m->n_inputs : 0;
}

const char *strata_model_input_name(const strata_model *m, size_t i)
{
	return m && i < m->n_inputs ? m->inputs[i].name : NULL;
}

strata_shape strata_model_input_shape_at(const strata_model *m, size_t i)
{
	strata_shape none = {0};
	return m && i < m->n_inputs ? m->inputs[i].shape : none;
}

size_t strata_model_output_count(const strata_model *m)
{
	return m ? m->n_outputs : 0;
}

size_t strata_model_output_layer(const strata_model *m, size_t k)
{
	return m && k < m->n_outputs ? m->outputs[k] : SIZE_MAX;
}

const char *strata_model_output_loss(const strata_model *m, size_t k)
{
	return m && k < m->recipe.n_outputs ? m->recipe.outputs[k].loss : NULL;
}

bool strata_model_output_has_metric(const strata_model *m, size_t k, const char *metric)
{
	if (!m || !metric || k >= m->recipe.n_outputs)
		return false;
	for (size_t i = 0; i < m->recipe.outputs[k].n_metrics; i++)
		if (strcmp(m->recipe.outputs[k].metrics[i], metric) == 0)
			return true;
	return false;
}

size_t strata_model_loss_count(const strata_model *m)
{
	size_t n = 0;
	for (size_t k = 0; m && k < m->recipe.n_outputs; k++)
		n += m->recipe.outputs[k].loss != NULL;
	return n;
}

bool strata_model_trains_itself(const strata_model *m)
{
	if (!m || strata_model_loss_count(m) > 0)
		return false;
	for (size_t i = 0; i < m->n_layers; i++)
		if (m->layers[i].type->ops.trains_itself)
			return true;
	return false;
}

strata_data_files strata_model_data_files(const strata_model *m, bool test)
{
	strata_data_files none = {0};
	if (!m)
		return none;
	int which = test ? ST_TEST : ST_TRAIN;
	const st_recipe *r = &m->recipe;
	return (strata_data_files){
		.inputs = (const char *const *)r->inputs[which],
		.labels = (const char *const *)r->labels[which],
		.num_classes = r->head_classes,
	};
}
