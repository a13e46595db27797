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
#include "model/model.h"
#include "model/params.h"
#include "model/yaml_doc.h"

/* Far above any real model; refuses to read a wrong path's gigabytes into memory. */
#define MODEL_FILE_MAX ((uint64_t)16 << 20)

typedef struct loader {
	strata_model *m;
	const char *file;
	strata_error *err;
	st_pos *name_pos;  /* per layer: where its name was given, or its mapping */
	bool *name_given;  /* per layer: explicit `name:` */
	/* per layer, for graph.c: its `inputs:` node, its `shares:` name and where it stood */
	const st_ynode **layer_inputs;
	char **shares;
	st_pos *shares_pos;
} loader;

static strata_status fail_at(loader *ld, st_pos pos, strata_status status, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static strata_status fail_at(loader *ld, st_pos pos, strata_status status, const char *fmt, ...)
{
	char msg[STRATA_ERROR_MAX];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	return st_fail(ld->err, status, "%s:%u:%u: %s", ld->file, pos.line, pos.col, msg);
}

static strata_status no_memory(loader *ld)
{
	return st_fail(ld->err, STRATA_ERR_NO_MEMORY, "%s: out of memory", ld->file);
}

static char *dup_or_null(const char *s)
{
	return s ? strdup(s) : NULL;
}

/* A value of one of params.c's own tables; a name missing there is a bug in this file, which
 * then reads as the zero value instead of crashing. */
static const st_param_value *value(const st_param_value *values, const st_schema *schema, const char *name)
{
	static const st_param_value none;
	const st_param_value *v = st_param_find(values, schema->n_params, name);
	return v ? v : &none;
}

static strata_status read_section(loader *ld, const st_schema *schema, const st_ynode *node, st_pos pos,
                                  const char *where, const char *const *handled, st_param_value **values)
{
	*values = calloc(schema->n_params ? schema->n_params : 1, sizeof(**values));
	if (!*values)
		return no_memory(ld);
	st_param_group g = {schema->params, schema->n_params, *values};
	return st_params_read(ld->file, node, pos, where, &g, 1, handled, ld->err);
}

static void free_values(st_param_value *values, uint32_t n)
{
	st_params_release(values, n);
	free(values);
}

/* ---- Sections ----------------------------------------------------------------------------- */

/* One input's mapping: {shape: [...], name: ..., dtype: ...}; `index` numbers default names. */
static strata_status read_one_input(loader *ld, const st_ynode *node, size_t index, st_input *in)
{
	st_param_value *v;
	char where[32];
	snprintf(where, sizeof(where), index ? "inputs" : "input");
	strata_status st = read_section(ld, &st_schema_input, node, node->pos, where, NULL, &v);
	if (st)
		goto out_free;
	const st_param_value *shape = value(v, &st_schema_input, "shape");
	const char *name = value(v, &st_schema_input, "name")->s;
	const char *dtype = value(v, &st_schema_input, "dtype")->s;
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
		st = fail_at(ld, value(v, &st_schema_input, "name")->pos, STRATA_ERR_INVALID, "an input name cannot be empty");
		goto out_free;
	}
	char fallback[32];
	snprintf(fallback, sizeof(fallback), "input_%zu", index + 1); /* Keras' InputLayer names */
	in->name = strdup(name ? name : fallback);
	if (!in->name) {
		st = no_memory(ld);
		goto out_free;
	}
	if (overflow || count > INT32_MAX) {
		char text[160];
		st_shape_text(&in->shape, text, sizeof(text));
		st = fail_at(ld, shape->pos, STRATA_ERR_INVALID, "input shape %s has more than %d values per sample",
		             text, INT32_MAX);
	}
out_free:
	free_values(v, st_schema_input.n_params);
	return st;
}

/* `input: {shape: ...}` (one float32 input, as every model file before graphs), or `inputs:`, a
 * list of named inputs, each with a shape and optionally a dtype. */
static strata_status read_inputs(loader *ld, const st_ynode *root)
{
	strata_model *m = ld->m;
	const st_ynode *one = st_ynode_get(root, "input"), *many = st_ynode_get(root, "inputs");
	char got[96];
	if (one && many)
		return fail_at(ld, many->pos, STRATA_ERR_INVALID,
		               "'input' and 'inputs' both given: use 'inputs' for several, 'input' for one");
	if (!one && !many)
		return fail_at(ld, root->pos, STRATA_ERR_INVALID,
		               "missing required key 'input', e.g. input: {shape: [28, 28, 1]} (or 'inputs', a list)");
	const st_ynode *const *items = &one;
	size_t n = 1;
	if (many) {
		if (many->kind != ST_YNODE_SEQUENCE || many->u.seq.n == 0) {
			st_ynode_describe(many, got, sizeof(got));
			return fail_at(ld, many->pos, STRATA_ERR_INVALID,
			               "'inputs' must be a list of inputs, each {name: NAME, shape: [...]}, got %s",
			               many->kind == ST_YNODE_SEQUENCE ? "an empty list" : got);
		}
		items = (const st_ynode *const *)many->u.seq.items;
		n = many->u.seq.n;
		m->functional = true;
	}
	m->inputs = calloc(n, sizeof(*m->inputs));
	if (!m->inputs)
		return no_memory(ld);
	m->n_inputs = n;
	for (size_t i = 0; i < n; i++) {
		strata_status st = read_one_input(ld, items[i], many ? i : 0, &m->inputs[i]);
		if (st)
			return st;
		for (size_t j = 0; j < i; j++)
			if (strcmp(m->inputs[j].name, m->inputs[i].name) == 0)
				return fail_at(ld, items[i]->pos, STRATA_ERR_INVALID, "duplicate input name '%s' (first at %u:%u)",
				               m->inputs[i].name, m->inputs[j].pos.line, m->inputs[j].pos.col);
	}
	m->input = m->inputs[0].shape;
	m->input_pos = m->inputs[0].pos;
	return STRATA_OK;
}

static strata_status read_optimizer(loader *ld, const st_ynode *root)
{
	static const char *const handled[] = {"type", NULL};
	const st_ynode *node = st_ynode_get(root, "optimizer");
	const st_ynode *type_node = node, *map = NULL;
	st_param_value tv = {0};
	char where[64];
	/* Keras' compile() default. */
	const char *type = "rmsprop";
	strata_status st;

	if (node && node->kind == ST_YNODE_MAPPING) {
		map = node;
		type_node = st_ynode_get(node, "type");
		if (!type_node)
			return fail_at(
			        ld, node->pos, STRATA_ERR_INVALID,
			        "missing required key 'type' in optimizer (sgd, adadelta, adam or rmsprop)");
	} else if (node && node->kind == ST_YNODE_SEQUENCE) {
		return fail_at(ld, node->pos, STRATA_ERR_INVALID,
		               "'optimizer' must be a name or a mapping with a type, got a sequence");
	}
	if (type_node) {
		st = st_param_read_one(ld->file, &st_schema_optimizer_type.params[0], type_node, &tv,
		                       ld->err);
		if (st)
			return st;
		type = tv.s;
	}
	/* The enum above holds exactly the names st_optimizer_schema() knows. */
	const st_schema *schema = st_optimizer_schema(type);
	st_section *sec = &ld->m->optimizer;
	sec->type = strdup(type);
	st_params_release(&tv, 1);
	if (!sec->type)
		return no_memory(ld);
	if (!schema)
		return fail_at(ld, type_node->pos, STRATA_ERR_INVALID,
		               "optimizer '%s' has no parameter table", sec->type);
	sec->pos = node ? node->pos : root->pos;
	sec->decl = schema->params;
	sec->n_params = schema->n_params;
	snprintf(where, sizeof(where), "optimizer %s", sec->type);
	return read_section(ld, schema, map, sec->pos, where, handled, &sec->values);
}

static strata_status read_metrics(loader *ld, const st_ynode *root)
{
	const st_ynode *node = st_ynode_get(root, "metrics");
	if (!node || st_ynode_is_null(node))
		return STRATA_OK;
	if (node->kind == ST_YNODE_MAPPING)
		return fail_at(ld, node->pos, STRATA_ERR_INVALID,
		               "'metrics' must be a list of metric names, got a mapping");
	const st_ynode *const *items = (const st_ynode *const *)&node;
	size_t n = 1;
	if (node->kind == ST_YNODE_SEQUENCE) {
		items = (const st_ynode *const *)node->u.seq.items;
		n = node->u.seq.n;
	}
	ld->m->metrics = calloc(n ? n : 1, sizeof(char *));
	if (!ld->m->metrics)
		return no_memory(ld);
	for (size_t i = 0; i < n; i++) {
		st_param_value v;
		strata_status st =
		        st_param_read_one(ld->file, &st_schema_metric.params[0], items[i], &v, ld->err);
		if (st)
			return st;
		ld->m->metrics[ld->m->n_metrics++] = v.s;
	}
	return STRATA_OK;
}

/* Relative paths name files beside the model file, wherever the program runs from. */
static char *resolve(const char *base, const char *path)
{
	if (!path)
		return NULL;
	if (!base || !*base || path[0] == '/')
		return strdup(path);
	size_t bl = strlen(base), n = bl + strlen(path) + 2;
	char *p = malloc(n);
	if (p)
		snprintf(p, n, "%s%s%s", base, base[bl - 1] == '/' ? "" : "/", path);
	return p;
}

/* data.keep_labels: a list of distinct classes below num_classes. */
static strata_status read_keep_labels(loader *ld, const st_ynode *data)
{
	strata_model *m = ld->m;
	const st_ynode *node = data ? st_ynode_get(data, "keep_labels") : NULL;
	char got[96];
	if (!node || st_ynode_is_null(node))
		return STRATA_OK;
	if (node->kind != ST_YNODE_SEQUENCE) {
		st_ynode_describe(node, got, sizeof(got));
		return fail_at(ld, node->pos, STRATA_ERR_INVALID,
		               "'keep_labels' must be a list of classes, e.g. [0, 1, 2], got %s", got);
	}
	if (node->u.seq.n == 0)
		return fail_at(ld, node->pos, STRATA_ERR_INVALID,
		               "'keep_labels' is empty: list the classes to keep, or leave it out to keep all");
	if (m->num_classes == 0)
		return fail_at(ld, node->pos, STRATA_ERR_INVALID,
		               "'keep_labels' needs 'num_classes' in data: classes are numbered below it");
	size_t n = node->u.seq.n;
	m->keep_labels = calloc(n, sizeof(*m->keep_labels));
	if (!m->keep_labels)
		return no_memory(ld);
	for (size_t i = 0; i < n; i++) {
		const st_ynode *item = node->u.seq.items[i];
		st_param_value v;
		strata_status st = st_param_read_one(ld->file, &st_schema_keep_label.params[0], item, &v, ld->err);
		if (st)
			return st;
		if (v.i >= m->num_classes)
			return fail_at(ld, item->pos, STRATA_ERR_INVALID,
			               "'keep_labels' holds class %lld, but num_classes is %u (classes 0 to %u)",
			               (long long)v.i, m->num_classes, m->num_classes - 1);
		for (size_t j = 0; j < i; j++)
			if (m->keep_labels[j] == (uint32_t)v.i)
				return fail_at(ld, item->pos, STRATA_ERR_INVALID,
				               "class %lld is listed twice in 'keep_labels' (first at %u:%u)",
				               (long long)v.i, node->u.seq.items[j]->pos.line,
				               node->u.seq.items[j]->pos.col);
		m->keep_labels[m->n_keep_labels++] = (uint32_t)v.i;
	}
	return STRATA_OK;
}

static strata_status read_data(loader *ld, const st_ynode *root)
{
	static const char *const keys[4] = {"train_images", "train_labels", "test_images", "test_labels"};
	static const char *const handled[] = {"keep_labels", NULL};
	strata_model *m = ld->m;
	char **dst[4] = {&m->train_images, &m->train_labels, &m->test_images, &m->test_labels};
	const st_ynode *node = st_ynode_get(root, "data");
	st_param_value *v;
	strata_status st = read_section(ld, &st_schema_data, node, root->pos, "data", handled, &v);
	if (st)
		goto out_free;
	for (int i = 0; i < 4; i++) {
		const char *p = value(v, &st_schema_data, keys[i])->s;
		if (p && !(*dst[i] = resolve(m->base_dir, p))) {
			st = no_memory(ld);
			goto out_free;
		}
	}
	m->data_scale = value(v, &st_schema_data, "scale")->f;
	m->num_classes = (uint32_t)value(v, &st_schema_data, "num_classes")->i;
	m->data_standardize = value(v, &st_schema_data, "standardize")->i != 0;
	st = read_keep_labels(ld, node);
out_free:
	free_values(v, st_schema_data.n_params);
	return st;
}

static strata_status read_training(loader *ld, const st_ynode *root)
{
	const st_schema *s = &st_schema_training;
	st_param_value *v;
	strata_status st =
	        read_section(ld, s, st_ynode_get(root, "training"), root->pos, "training", NULL, &v);
	if (st)
		goto out_free;
	const st_param_value *split = value(v, s, "validation_split");
	/* Keras refuses 1 too: nothing would be left to train on. */
	if (split->f >= 1.0) {
		st = fail_at(ld, split->pos, STRATA_ERR_INVALID, "'validation_split' must be below 1, got %g",
		             split->f);
		goto out_free;
	}
	ld->m->training = (strata_training_config){
		.batch_size = (uint32_t)value(v, s, "batch_size")->i,
		.epochs = (uint32_t)value(v, s, "epochs")->i,
		.seed = (uint64_t)value(v, s, "seed")->i,
		.validation_split = split->f,
		.shuffle = value(v, s, "shuffle")->i != 0,
	};
out_free:
	free_values(v, s->n_params);
	return st;
}

/* name, loss, device, and the refusal of keys the format does not know. */
static strata_status read_top(loader *ld, const st_ynode *root, const char *display_name)
{
	static const char *const handled[] = {"input", "inputs",   "outputs",   "layers", "optimizer",
	                                      "metrics", "data", "training", "init_from", NULL};
	const st_schema *s = &st_schema_model;
	strata_model *m = ld->m;
	st_param_value *v;
	strata_status st = read_section(ld, s, root, root->pos, "the model file", handled, &v);
	if (st)
		goto out_free;
	const char *name = value(v, s, "name")->s;
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
	m->loss = dup_or_null(value(v, s, "loss")->s);
	m->device = dup_or_null(value(v, s, "device")->s);
	if (!m->name || (value(v, s, "loss")->s && !m->loss) || (value(v, s, "device")->s && !m->device))
		st = no_memory(ld);
out_free:
	free_values(v, s->n_params);
	return st;
}

/* ---- Layers ------------------------------------------------------------------------------- */

static strata_status read_layer(loader *ld, size_t i, const st_ynode *item)
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
		return fail_at(ld, item->pos, STRATA_ERR_INVALID,
		               "a layer must be a mapping with a 'type', got %s", got);
	}
	const st_ynode *t = st_ynode_get(item, "type");
	st_registry_layer_list(m->reg, list, sizeof(list));
	if (!list[0])
		snprintf(list, sizeof(list), "none, no layer plugins are loaded");
	if (!t)
		return fail_at(ld, item->pos, STRATA_ERR_INVALID,
		               "missing required key 'type' in layer %zu; available: %s", i + 1, list);
	if (t->kind != ST_YNODE_SCALAR || st_ynode_is_null(t)) {
		st_ynode_describe(t, got, sizeof(got));
		return fail_at(ld, t->pos, STRATA_ERR_INVALID,
		               "'type' must be a layer type, got %s; available: %s", got, list);
	}
	layer->type = st_registry_find_layer(m->reg, t->u.scalar.text);
	if (!layer->type) {
		st_yquote(t, got, sizeof(got));
		return fail_at(ld, t->pos, STRATA_ERR_INVALID, "unknown layer type %s; available: %s", got,
		               list);
	}

	const strata_layer_ops *ops = &layer->type->ops;
	const st_schema *common = &st_schema_layer;
	st_param_value *cv = calloc(common->n_params, sizeof(*cv));
	layer->params = calloc(ops->n_params ? ops->n_params : 1, sizeof(*layer->params));
	if (!cv || !layer->params) {
		st = no_memory(ld);
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
	const st_param_value *name = value(cv, common, "name");
	if (name->s) {
		if (!name->s[0]) {
			st = fail_at(ld, name->pos, STRATA_ERR_INVALID, "a layer name cannot be empty");
			goto out_free;
		}
		layer->name = strdup(name->s);
		if (!layer->name) {
			st = no_memory(ld);
			goto out_free;
		}
		ld->name_given[i] = true;
		ld->name_pos[i] = name->pos;
	}
	layer->trainable = value(cv, common, "trainable")->i != 0;
	ld->layer_inputs[i] = st_ynode_get(item, "inputs");
	const st_param_value *shares = value(cv, common, "shares");
	if (shares->s) {
		ld->shares[i] = strdup(shares->s);
		ld->shares_pos[i] = shares->pos;
		if (!ld->shares[i])
			st = no_memory(ld);
	}
out_free:
	if (cv)
		free_values(cv, common->n_params);
	return st;
}

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
static strata_status assign_names(loader *ld)
{
	strata_model *m = ld->m;
	const char **prefixes = calloc(m->n_layers, sizeof(*prefixes));
	uint32_t *counts = calloc(m->n_layers, sizeof(*counts));
	size_t n_prefixes = 0;
	strata_status st = STRATA_OK;
	if (!prefixes || !counts) {
		st = no_memory(ld);
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
			st = no_memory(ld);
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
static strata_status check_names(loader *ld)
{
	strata_model *m = ld->m;
	name_ref *refs = malloc(m->n_layers * sizeof(*refs));
	if (!refs)
		return no_memory(ld);
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
		return fail_at(ld, ld->name_pos[second], STRATA_ERR_INVALID,
		               "duplicate layer name '%s' (first at %u:%u)", m->layers[second].name, fp.line,
		               fp.col);
	return fail_at(ld, ld->name_pos[second], STRATA_ERR_INVALID,
	               "duplicate layer name '%s', this layer's default (first at %u:%u): give it a name",
	               m->layers[second].name, fp.line, fp.col);
}

static strata_status read_layers(loader *ld, const st_ynode *root)
{
	strata_model *m = ld->m;
	const st_ynode *node = st_ynode_get(root, "layers");
	char got[96];
	if (!node)
		return fail_at(ld, root->pos, STRATA_ERR_INVALID,
		               "missing required key 'layers': a list of layers, each with a 'type'");
	if (node->kind != ST_YNODE_SEQUENCE) {
		st_ynode_describe(node, got, sizeof(got));
		return fail_at(ld, node->pos, STRATA_ERR_INVALID, "'layers' must be a list of layers, got %s",
		               got);
	}
	if (node->u.seq.n == 0)
		return fail_at(ld, node->pos, STRATA_ERR_INVALID,
		               "'layers' is empty: a model needs at least one layer");
	size_t n = node->u.seq.n;
	m->layers = calloc(n, sizeof(*m->layers));
	ld->name_pos = calloc(n, sizeof(*ld->name_pos));
	ld->name_given = calloc(n, sizeof(*ld->name_given));
	ld->layer_inputs = calloc(n, sizeof(*ld->layer_inputs));
	ld->shares = calloc(n, sizeof(*ld->shares));
	ld->shares_pos = calloc(n, sizeof(*ld->shares_pos));
	if (!m->layers || !ld->name_pos || !ld->name_given || !ld->layer_inputs || !ld->shares || !ld->shares_pos)
		return no_memory(ld);
	m->n_layers = n;
	for (size_t i = 0; i < n; i++) {
		strata_status st = read_layer(ld, i, node->u.seq.items[i]);
		if (st)
			return st;
	}
	strata_status st = assign_names(ld);
	if (st || (st = check_names(ld)))
		return st;
	/* A layer and an input of one name would make `inputs:` ambiguous. */
	for (size_t i = 0; i < n; i++)
		for (size_t k = 0; k < m->n_inputs; k++)
			if (strcmp(m->layers[i].name, m->inputs[k].name) == 0)
				return fail_at(ld, ld->name_pos[i], STRATA_ERR_INVALID,
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

/* ---- init_from ---------------------------------------------------------------------------- */

/* "conv2d_1, conv2d_2, ..." for messages, cut short in a long model. */
static void layer_names(const strata_model *m, char *buf, size_t size)
{
	size_t o = 0;
	buf[0] = '\0';
	for (size_t i = 0; i < m->n_layers && o + 1 < size; i++) {
		int n = snprintf(buf + o, size - o, "%s%s", i ? ", " : "", m->layers[i].name);
		if (n < 0)
			break;
		o += (size_t)n;
	}
}

static strata_status read_init_layers(loader *ld, const st_ynode *node)
{
	strata_model *m = ld->m;
	st_init_from *ini = &m->init_from;
	char got[96], names[1024];
	if (!node || st_ynode_is_null(node))
		return STRATA_OK;
	if (node->kind != ST_YNODE_SEQUENCE) {
		st_ynode_describe(node, got, sizeof(got));
		return fail_at(ld, node->pos, STRATA_ERR_INVALID,
		               "'layers' in init_from must be a list of layer names, got %s", got);
	}
	size_t n = node->u.seq.n;
	if (n == 0)
		return fail_at(ld, node->pos, STRATA_ERR_INVALID,
		               "'layers' in init_from is empty: name the layers to take, or leave it out to "
		               "take every layer the file holds");
	ini->layers = calloc(n, sizeof(*ini->layers));
	ini->layer_pos = calloc(n, sizeof(*ini->layer_pos));
	if (!ini->layers || !ini->layer_pos)
		return no_memory(ld);
	for (size_t i = 0; i < n; i++) {
		const st_ynode *item = node->u.seq.items[i];
		if (item->kind != ST_YNODE_SCALAR || st_ynode_is_null(item)) {
			st_ynode_describe(item, got, sizeof(got));
			return fail_at(ld, item->pos, STRATA_ERR_INVALID,
			               "'layers' in init_from must be a list of layer names, got %s", got);
		}
		size_t k = 0;
		while (k < m->n_layers && strcmp(m->layers[k].name, item->u.scalar.text))
			k++;
		if (k == m->n_layers) {
			st_yquote(item, got, sizeof(got));
			layer_names(m, names, sizeof(names));
			return fail_at(ld, item->pos, STRATA_ERR_INVALID,
			               "init_from: no layer %s in the model; its layers: %s", got, names);
		}
		for (size_t j = 0; j < ini->n_layers; j++)
			if (ini->layers[j] == k)
				return fail_at(ld, item->pos, STRATA_ERR_INVALID,
				               "layer '%s' is listed twice in init_from (first at %u:%u)",
				               m->layers[k].name, ini->layer_pos[j].line, ini->layer_pos[j].col);
		ini->layers[ini->n_layers] = k;
		ini->layer_pos[ini->n_layers++] = item->pos;
	}
	return STRATA_OK;
}

/* `init_from: PATH` or `init_from: {weights: PATH, layers: [NAME, ...]}`; layer names resolve
 * against the model's (given or default) names, so this runs after read_layers(). */
static strata_status read_init_from(loader *ld, const st_ynode *root)
{
	static const char *const handled[] = {"layers", NULL};
	const st_ynode *node = st_ynode_get(root, "init_from");
	st_init_from *ini = &ld->m->init_from;
	st_param_value *v = NULL;
	const char *path;
	st_pos pos;
	char got[96];
	strata_status st = STRATA_OK;
	if (!node || st_ynode_is_null(node))
		return STRATA_OK;
	if (node->kind == ST_YNODE_SEQUENCE) {
		st_ynode_describe(node, got, sizeof(got));
		return fail_at(ld, node->pos, STRATA_ERR_INVALID,
		               "'init_from' must be a weights file or a mapping {weights: PATH, layers: [...]}, "
		               "got %s", got);
	}
	if (node->kind == ST_YNODE_SCALAR) {
		path = node->u.scalar.text;
		pos = node->pos;
	} else {
		if ((st = read_section(ld, &st_schema_init_from, node, node->pos, "init_from", handled, &v)))
			goto out_free;
		const st_param_value *w = value(v, &st_schema_init_from, "weights");
		path = w->s;
		pos = w->pos;
	}
	if (!path[0]) {
		st = fail_at(ld, pos, STRATA_ERR_INVALID, "the weights file of init_from cannot be empty");
		goto out_free;
	}
	ini->pos = pos;
	if (!(ini->weights = resolve(ld->m->base_dir, path))) {
		st = no_memory(ld);
		goto out_free;
	}
	if (node->kind == ST_YNODE_MAPPING)
		st = read_init_layers(ld, st_ynode_get(node, "layers"));
out_free:
	if (v)
		free_values(v, st_schema_init_from.n_params);
	return st;
}

/* After shape inference: a layer listed in init_from must have weights to take. */
static strata_status check_init_from(loader *ld)
{
	const st_init_from *ini = &ld->m->init_from;
	for (size_t i = 0; i < ini->n_layers; i++) {
		const struct strata_layer *layer = &ld->m->layers[ini->layers[i]];
		if (layer->n_weights == 0)
			return fail_at(ld, ini->layer_pos[i], STRATA_ERR_INVALID,
			               "init_from: layer '%s' (%s) has no weights to take", layer->name,
			               layer->type->ops.type);
	}
	return STRATA_OK;
}

/* ---- Entry points ------------------------------------------------------------------------- */

static strata_status load_tree(loader *ld, const st_ydoc *doc, const char *display_name)
{
	const st_ynode *root = doc->root;
	char got[96];
	strata_status st;
	if (!root)
		return fail_at(ld, (st_pos){1, 1}, STRATA_ERR_INVALID,
		               "the model file is empty: expected a mapping with 'input' and 'layers'");
	if (root->kind != ST_YNODE_MAPPING) {
		st_ynode_describe(root, got, sizeof(got));
		return fail_at(ld, root->pos, STRATA_ERR_INVALID,
		               "the top level must be a mapping with 'input' and 'layers', got %s", got);
	}
	if ((st = read_top(ld, root, display_name)) || (st = read_inputs(ld, root)) ||
	    (st = read_layers(ld, root)) || (st = read_optimizer(ld, root)) ||
	    (st = read_metrics(ld, root)) || (st = read_data(ld, root)) || (st = read_training(ld, root)) ||
	    (st = read_init_from(ld, root)) || (st = st_model_infer_shapes(ld->m, ld->err)))
		return st;
	return check_init_from(ld);
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
	loader ld = {.m = m, .file = file, .err = err};
	if (!m->file || (base_dir && !m->base_dir)) {
		st = no_memory(&ld);
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
	free(m->optimizer.type);
	free_values(m->optimizer.values, m->optimizer.n_params);
	for (size_t i = 0; i < m->n_metrics; i++)
		free(m->metrics[i]);
	free(m->metrics);
	free(m->train_images);
	free(m->train_labels);
	free(m->test_images);
	free(m->test_labels);
	free(m->keep_labels);
	free(m->init_from.weights);
	free(m->init_from.layers);
	free(m->init_from.layer_pos);
	free(m->loss);
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
	return m ? m->training : none;
}

strata_data_config strata_model_data(const strata_model *m)
{
	strata_data_config none = {0};
	if (!m)
		return none;
	return (strata_data_config){
		.train_images = m->train_images,
		.train_labels = m->train_labels,
		.test_images = m->test_images,
		.test_labels = m->test_labels,
		.scale = m->data_scale,
		.num_classes = m->num_classes,
		.standardize = m->data_standardize,
		.keep_labels = m->keep_labels,
		.n_keep_labels = m->n_keep_labels,
	};
}
