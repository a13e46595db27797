/* The recipe's half of the model file: loss, loss_weights, metrics, optimizer, data, training and
 * init_from. Read after the layers and the graph, since outputs, inputs and layers are named by
 * the names those give. Values given per output or per input follow Keras' compile(): one value
 * for all, a list in order, or a mapping by name. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/model_file.h"
#include "model/recipe.h"

/* "digit, parity" (outputs) or "image, ids" (inputs), for messages. */
static void list_names(const char *const *names, size_t n, char *buf, size_t size)
{
	size_t o = 0;
	buf[0] = '\0';
	for (size_t i = 0; i < n && o + 1 < size; i++) {
		int k = snprintf(buf + o, size - o, "%s%s", i ? ", " : "", names[i]);
		if (k < 0)
			break;
		o += (size_t)k;
	}
}

/* The node of `key` that applies to each of `n` named things (outputs or inputs): `node` itself
 * when it is one value for all (a list too when `list_is_one`, as Keras' metrics), the k-th item
 * of a list, or the value under the k-th name in a mapping. per[k] is NULL where nothing is given. */
static strata_status by_name(st_loader *ld, const st_ynode *node, const char *key, const char *what,
                             const char *const *names, size_t n, bool list_is_one, const st_ynode **per)
{
	char list[512], q[96];
	for (size_t k = 0; k < n; k++)
		per[k] = NULL;
	if (!node || st_ynode_is_null(node))
		return STRATA_OK;
	if (node->kind == ST_YNODE_SCALAR || (node->kind == ST_YNODE_SEQUENCE && list_is_one)) {
		for (size_t k = 0; k < n; k++)
			per[k] = node;
		return STRATA_OK;
	}
	list_names(names, n, list, sizeof(list));
	if (node->kind == ST_YNODE_SEQUENCE) {
		if (node->u.seq.n != n)
			return st_ld_fail(ld, node->pos, STRATA_ERR_INVALID,
			                  "'%s' lists %zu values, the model has %zu %ss (%s); give one for each, in that "
			                  "order, or a mapping {%s: ...}",
			                  key, node->u.seq.n, n, what, list, names[0]);
		for (size_t k = 0; k < n; k++)
			per[k] = node->u.seq.items[k];
		return STRATA_OK;
	}
	for (size_t i = 0; i < node->u.map.n; i++) {
		const st_ynode *name = node->u.map.pairs[i].key;
		size_t k = 0;
		while (k < n && strcmp(names[k], name->u.scalar.text))
			k++;
		if (k == n) {
			st_yquote(name, q, sizeof(q));
			return st_ld_fail(ld, name->pos, STRATA_ERR_INVALID, "'%s': the model has no %s %s; its %ss: %s",
			                  key, what, q, what, list);
		}
		per[k] = node->u.map.pairs[i].value;
	}
	return STRATA_OK;
}

/* The names of the model's outputs (their layers') and inputs, for by_name(). */
static const char **output_names(const strata_model *m)
{
	const char **names = malloc((m->n_outputs ? m->n_outputs : 1) * sizeof(*names));
	for (size_t k = 0; names && k < m->n_outputs; k++)
		names[k] = m->layers[m->outputs[k]].name;
	return names;
}

static const char **input_names(const strata_model *m)
{
	const char **names = malloc((m->n_inputs ? m->n_inputs : 1) * sizeof(*names));
	for (size_t k = 0; names && k < m->n_inputs; k++)
		names[k] = m->inputs[k].name;
	return names;
}

/* ---- loss, loss_weights, metrics ---------------------------------------------------------- */

static strata_status read_losses(st_loader *ld, const st_ynode *root, const char **outs)
{
	st_recipe *r = &ld->m->recipe;
	size_t n = r->n_outputs;
	const st_ynode **per = calloc(n, sizeof(*per));
	if (!per)
		return st_ld_no_memory(ld);
	const st_ynode *loss = st_ynode_get(root, "loss"), *weights = st_ynode_get(root, "loss_weights");
	strata_status st = by_name(ld, loss, "loss", "output", outs, n, false, per);
	for (size_t k = 0; k < n && !st; k++) {
		if (!per[k] || st_ynode_is_null(per[k]))
			continue;
		st_param_value v;
		if ((st = st_param_read_one(ld->file, &st_schema_loss.params[0], per[k], &v, ld->err)))
			break;
		r->outputs[k].loss = v.s;
		r->outputs[k].loss_pos = per[k]->pos;
	}
	if (!st)
		st = by_name(ld, weights, "loss_weights", "output", outs, n, false, per);
	for (size_t k = 0; k < n && !st; k++) {
		if (!per[k])
			continue;
		st_param_value v = {0};
		if ((st = st_param_read_one(ld->file, &st_schema_loss.params[1], per[k], &v, ld->err)))
			break;
		r->outputs[k].weight = v.f;
		if (!r->outputs[k].loss)
			st = st_ld_fail(ld, per[k]->pos, STRATA_ERR_INVALID,
			                "loss_weights: output '%s' has no loss to weigh", outs[k]);
	}
	free(per);
	return st;
}

static strata_status read_metric_list(st_loader *ld, const st_ynode *node, st_output_recipe *o)
{
	if (node->kind == ST_YNODE_MAPPING)
		return st_ld_fail(ld, node->pos, STRATA_ERR_INVALID,
		                  "'metrics' must be a list of metric names, got a mapping");
	const st_ynode *const *items = (const st_ynode *const *)&node;
	size_t n = 1;
	if (node->kind == ST_YNODE_SEQUENCE) {
		items = (const st_ynode *const *)node->u.seq.items;
		n = node->u.seq.n;
	}
	o->metrics = calloc(n ? n : 1, sizeof(char *));
	if (!o->metrics)
		return st_ld_no_memory(ld);
	for (size_t i = 0; i < n; i++) {
		st_param_value v;
		strata_status st = st_param_read_one(ld->file, &st_schema_metric.params[0], items[i], &v, ld->err);
		if (st)
			return st;
		o->metrics[o->n_metrics++] = v.s;
	}
	return STRATA_OK;
}

/* `metrics: [accuracy]` for every output, or `metrics: {digit: [accuracy], parity: accuracy}`. */
static strata_status read_metrics(st_loader *ld, const st_ynode *root, const char **outs)
{
	st_recipe *r = &ld->m->recipe;
	const st_ynode *node = st_ynode_get(root, "metrics");
	const st_ynode **per = calloc(r->n_outputs, sizeof(*per));
	if (!per)
		return st_ld_no_memory(ld);
	strata_status st = by_name(ld, node, "metrics", "output", outs, r->n_outputs, true, per);
	for (size_t k = 0; k < r->n_outputs && !st; k++)
		if (per[k] && !st_ynode_is_null(per[k]))
			st = read_metric_list(ld, per[k], &r->outputs[k]);
	free(per);
	return st;
}

/* ---- optimizer ------------------------------------------------------------------------------ */

/* `sec` as the section of `type` (`schema`, NULL when the type has none), its values read from
 * `map` (NULL: all defaults); `where` gets "LABEL TYPE" for messages. The optimizer and its
 * learning-rate schedule are both such a section. */
static strata_status read_typed_section(st_loader *ld, st_section *sec, const char *label, const char *type,
                                        const st_schema *schema, const st_ynode *type_node, const st_ynode *map,
                                        st_pos pos, const char *const *handled, char *where, size_t where_size)
{
	sec->type = strdup(type);
	if (!sec->type)
		return st_ld_no_memory(ld);
	if (!schema)
		return st_ld_fail(ld, type_node->pos, STRATA_ERR_INVALID, "%s '%s' has no parameter table", label,
		                  sec->type);
	sec->pos = pos;
	sec->decl = schema->params;
	sec->n_params = schema->n_params;
	snprintf(where, where_size, "%s %s", label, sec->type);
	return st_ld_section(ld, schema, map, sec->pos, where, handled, &sec->values);
}

/* `learning_rate: {type: NAME, ...}`: a schedule of keras.optimizers.schedules in place of a
 * constant rate. */
static strata_status read_lr_schedule(st_loader *ld, const st_ynode *node)
{
	static const char *const handled[] = {"type", NULL};
	const st_ynode *type_node = st_ynode_get(node, "type");
	st_param_value tv = {0};
	st_section *sec = &ld->m->recipe.lr_schedule;
	char where[64];
	if (!type_node)
		return st_ld_fail(ld, node->pos, STRATA_ERR_INVALID,
		                  "missing required key 'type' in learning_rate (a number, or a schedule: "
		                  "exponential_decay, inverse_time_decay, polynomial_decay, cosine_decay or "
		                  "piecewise_constant_decay)");
	strata_status st = st_param_read_one(ld->file, &st_schema_lr_schedule_type.params[0], type_node, &tv, ld->err);
	if (st)
		return st;
	/* The enum holds exactly the names st_lr_schedule_schema() knows. */
	st = read_typed_section(ld, sec, "learning_rate", tv.s, st_lr_schedule_schema(tv.s), type_node, node, node->pos,
	                        handled, where, sizeof(where));
	st_params_release(&tv, 1);
	if (st)
		return st;
	if (strcmp(sec->type, "piecewise_constant_decay") != 0)
		return STRATA_OK;
	const st_param_value *b = st_section_param(sec, "boundaries"), *v = st_section_param(sec, "values");
	if (b->n_ints >= STRATA_MAX_RANK)
		return st_ld_fail(ld, b->pos, STRATA_ERR_INVALID, "'boundaries' in %s: at most %d steps, got %u", where,
		                  STRATA_MAX_RANK - 1, b->n_ints);
	for (uint32_t i = 1; i < b->n_ints; i++)
		if (b->ints[i] <= b->ints[i - 1])
			return st_ld_fail(ld, b->pos, STRATA_ERR_INVALID,
			                  "'boundaries' in %s must increase: %lld does not come after %lld", where,
			                  (long long)b->ints[i], (long long)b->ints[i - 1]);
	if (v->n_floats != b->n_ints + 1)
		return st_ld_fail(ld, v->pos, STRATA_ERR_INVALID,
		                  "'values' in %s: one rate more than boundaries (%u), got %u", where, b->n_ints + 1,
		                  v->n_floats);
	return STRATA_OK;
}

static strata_status read_optimizer(st_loader *ld, const st_ynode *root)
{
	static const char *const handled[] = {"type", NULL};
	static const char *const handled_scheduled[] = {"type", "learning_rate", NULL};
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
			return st_ld_fail(ld, node->pos, STRATA_ERR_INVALID,
			                  "missing required key 'type' in optimizer (sgd, adadelta, adam or rmsprop)");
	} else if (node && node->kind == ST_YNODE_SEQUENCE) {
		return st_ld_fail(ld, node->pos, STRATA_ERR_INVALID,
		                  "'optimizer' must be a name or a mapping with a type, got a sequence");
	}
	if (type_node) {
		st = st_param_read_one(ld->file, &st_schema_optimizer_type.params[0], type_node, &tv, ld->err);
		if (st)
			return st;
		type = tv.s;
	}
	const st_ynode *lr = map ? st_ynode_get(map, "learning_rate") : NULL;
	bool scheduled = lr && lr->kind == ST_YNODE_MAPPING;
	/* The enum above holds exactly the names st_optimizer_schema() knows. */
	st = read_typed_section(ld, &ld->m->recipe.optimizer, "optimizer", type, st_optimizer_schema(type), type_node,
	                        map, node ? node->pos : root->pos, scheduled ? handled_scheduled : handled, where,
	                        sizeof(where));
	st_params_release(&tv, 1);
	if (st)
		return st;
	return scheduled ? read_lr_schedule(ld, lr) : STRATA_OK;
}

/* ---- data ----------------------------------------------------------------------------------- */

/* data.keep_labels: a list of distinct classes below the first trained output's num_classes. */
static strata_status read_keep_labels(st_loader *ld, const st_ynode *data)
{
	st_recipe *r = &ld->m->recipe;
	const st_ynode *node = data ? st_ynode_get(data, "keep_labels") : NULL;
	char got[96];
	if (!node || st_ynode_is_null(node))
		return STRATA_OK;
	if (node->kind != ST_YNODE_SEQUENCE) {
		st_ynode_describe(node, got, sizeof(got));
		return st_ld_fail(ld, node->pos, STRATA_ERR_INVALID,
		                  "'keep_labels' must be a list of classes, e.g. [0, 1, 2], got %s", got);
	}
	if (node->u.seq.n == 0)
		return st_ld_fail(ld, node->pos, STRATA_ERR_INVALID,
		                  "'keep_labels' is empty: list the classes to keep, or leave it out to keep all");
	/* Of the first output with a loss: the labels loaded first. */
	size_t first = 0;
	while (first + 1 < r->n_outputs && !r->outputs[first].loss)
		first++;
	uint32_t classes = r->n_outputs ? r->outputs[first].num_classes : 0;
	if (classes == 0)
		return st_ld_fail(ld, node->pos, STRATA_ERR_INVALID,
		                  "'keep_labels' needs 'num_classes' in data: classes are numbered below it");
	size_t n = node->u.seq.n;
	r->keep_labels = calloc(n, sizeof(*r->keep_labels));
	if (!r->keep_labels)
		return st_ld_no_memory(ld);
	for (size_t i = 0; i < n; i++) {
		const st_ynode *item = node->u.seq.items[i];
		st_param_value v;
		strata_status st = st_param_read_one(ld->file, &st_schema_keep_label.params[0], item, &v, ld->err);
		if (st)
			return st;
		if (v.i >= classes)
			return st_ld_fail(ld, item->pos, STRATA_ERR_INVALID,
			                  "'keep_labels' holds class %lld, but num_classes is %u (classes 0 to %u)",
			                  (long long)v.i, classes, classes - 1);
		for (size_t j = 0; j < i; j++)
			if (r->keep_labels[j] == (uint32_t)v.i)
				return st_ld_fail(ld, item->pos, STRATA_ERR_INVALID,
				                  "class %lld is listed twice in 'keep_labels' (first at %u:%u)", (long long)v.i,
				                  node->u.seq.items[j]->pos.line, node->u.seq.items[j]->pos.col);
		r->keep_labels[r->n_keep_labels++] = (uint32_t)v.i;
	}
	return STRATA_OK;
}

/* One file name per input (train_images, test_images) or per output (train_labels, test_labels):
 * a single name for a model of one input, or for every output (heads trained on the same labels);
 * {NAME: FILE} otherwise. `decl` is the key's entry of st_schema_data_file. */
static strata_status read_files(st_loader *ld, const st_ynode *data, const strata_param *decl,
                                const char *const *names, size_t n, const char *what, char **out)
{
	const st_ynode *node = data ? st_ynode_get(data, decl->name) : NULL;
	const st_ynode **per = calloc(n, sizeof(*per));
	char list[512], got[96];
	strata_status st = STRATA_OK;
	if (!per)
		return st_ld_no_memory(ld);
	if (node && node->kind == ST_YNODE_SEQUENCE) {
		st_ynode_describe(node, got, sizeof(got));
		st = st_ld_fail(ld, node->pos, STRATA_ERR_INVALID, "'%s' must be a file name or {%s: FILE}, got %s",
		                decl->name, names[0], got);
		goto out_free;
	}
	if (node && node->kind == ST_YNODE_SCALAR && n > 1 && strcmp(what, "input") == 0) {
		list_names(names, n, list, sizeof(list));
		st = st_ld_fail(ld, node->pos, STRATA_ERR_INVALID,
		                "'%s' names one file, the model has %zu inputs (%s): give {%s: FILE, ...}", decl->name, n,
		                list, names[0]);
		goto out_free;
	}
	if ((st = by_name(ld, node, decl->name, what, names, n, false, per)))
		goto out_free;
	for (size_t k = 0; k < n; k++) {
		if (!per[k] || st_ynode_is_null(per[k]))
			continue;
		st_param_value v = {0};
		if ((st = st_param_read_one(ld->file, decl, per[k], &v, ld->err)))
			goto out_free;
		if (!v.s[0]) {
			free(v.s);
			st = st_ld_fail(ld, per[k]->pos, STRATA_ERR_INVALID, "'%s' of %s '%s' is an empty file name",
			                decl->name, what, names[k]);
			goto out_free;
		}
		out[k] = st_ld_resolve(ld->m->base_dir, v.s);
		free(v.s);
		if (!out[k]) {
			st = st_ld_no_memory(ld);
			goto out_free;
		}
	}
	/* Files for some but not all: the data set could not feed the model. */
	if (node) {
		for (size_t k = 0; k < n; k++)
			if (!out[k] && (strcmp(what, "input") == 0 || ld->m->recipe.outputs[k].loss)) {
				list_names(names, n, list, sizeof(list));
				st = st_ld_fail(ld, node->pos, STRATA_ERR_INVALID, "'%s' names no file for %s '%s' (%ss: %s)",
				                decl->name, what, names[k], what, list);
				goto out_free;
			}
	}
out_free:
	free(per);
	return st;
}

static strata_status read_num_classes(st_loader *ld, const st_ynode *data, const char **outs)
{
	st_recipe *r = &ld->m->recipe;
	const st_ynode *node = data ? st_ynode_get(data, "num_classes") : NULL;
	const st_ynode **per = calloc(r->n_outputs, sizeof(*per));
	if (!per)
		return st_ld_no_memory(ld);
	strata_status st = by_name(ld, node, "num_classes", "output", outs, r->n_outputs, false, per);
	for (size_t k = 0; k < r->n_outputs && !st; k++) {
		if (!per[k] || st_ynode_is_null(per[k]))
			continue;
		st_param_value v = {0};
		if (!(st = st_param_read_one(ld->file, &st_schema_data_file.params[4], per[k], &v, ld->err)))
			r->outputs[k].num_classes = (uint32_t)v.i;
	}
	free(per);
	return st;
}

static strata_status read_data(st_loader *ld, const st_ynode *root, const char **outs, const char **ins)
{
	static const char *const handled[] = {"keep_labels", "train_images", "train_labels", "test_images",
	                                      "test_labels", "num_classes", NULL};
	strata_model *m = ld->m;
	st_recipe *r = &m->recipe;
	const st_ynode *node = st_ynode_get(root, "data");
	const strata_param *files = st_schema_data_file.params;
	st_param_value *v;
	strata_status st = st_ld_section(ld, &st_schema_data, node, root->pos, "data", handled, &v);
	if (st)
		goto out_free;
	r->data_scale = st_ld_value(v, &st_schema_data, "scale")->f;
	r->data_standardize = st_ld_value(v, &st_schema_data, "standardize")->i != 0;
	r->n_inputs = m->n_inputs;
	for (int which = ST_TRAIN; which <= ST_TEST; which++) {
		r->inputs[which] = calloc(m->n_inputs, sizeof(char *));
		if (!r->inputs[which]) {
			st = st_ld_no_memory(ld);
			goto out_free;
		}
	}
	for (int which = ST_TRAIN; which <= ST_TEST && !st; which++) {
		char **per = calloc(r->n_outputs, sizeof(char *));
		if (!per) {
			st = st_ld_no_memory(ld);
			break;
		}
		st = read_files(ld, node, &files[which == ST_TRAIN ? 0 : 2], ins, m->n_inputs, "input", r->inputs[which]);
		if (!st)
			st = read_files(ld, node, &files[which == ST_TRAIN ? 1 : 3], outs, r->n_outputs, "output", per);
		for (size_t k = 0; k < r->n_outputs; k++)
			r->outputs[k].labels[which] = per[k];
		free(per);
	}
	if (!st && !(st = read_num_classes(ld, node, outs)))
		st = read_keep_labels(ld, node);
out_free:
	st_ld_free_values(v, st_schema_data.n_params);
	return st;
}

/* ---- training ------------------------------------------------------------------------------- */

static strata_status read_training(st_loader *ld, const st_ynode *root)
{
	const st_schema *s = &st_schema_training;
	st_param_value *v;
	strata_status st = st_ld_section(ld, s, st_ynode_get(root, "training"), root->pos, "training", NULL, &v);
	if (st)
		goto out_free;
	const st_param_value *split = st_ld_value(v, s, "validation_split");
	/* Keras refuses 1 too: nothing would be left to train on. */
	if (split->f >= 1.0) {
		st = st_ld_fail(ld, split->pos, STRATA_ERR_INVALID, "'validation_split' must be below 1, got %g", split->f);
		goto out_free;
	}
	ld->m->recipe.training = (strata_training_config){
		.batch_size = (uint32_t)st_ld_value(v, s, "batch_size")->i,
		.epochs = (uint32_t)st_ld_value(v, s, "epochs")->i,
		.seed = (uint64_t)st_ld_value(v, s, "seed")->i,
		.validation_split = split->f,
		.shuffle = st_ld_value(v, s, "shuffle")->i != 0,
	};
out_free:
	st_ld_free_values(v, s->n_params);
	return st;
}

/* ---- init_from ------------------------------------------------------------------------------ */

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

static strata_status read_init_layers(st_loader *ld, const st_ynode *node)
{
	strata_model *m = ld->m;
	st_init_from *ini = &m->recipe.init_from;
	char got[96], names[1024];
	if (!node || st_ynode_is_null(node))
		return STRATA_OK;
	if (node->kind != ST_YNODE_SEQUENCE) {
		st_ynode_describe(node, got, sizeof(got));
		return st_ld_fail(ld, node->pos, STRATA_ERR_INVALID,
		                  "'layers' in init_from must be a list of layer names, got %s", got);
	}
	size_t n = node->u.seq.n;
	if (n == 0)
		return st_ld_fail(ld, node->pos, STRATA_ERR_INVALID,
		                  "'layers' in init_from is empty: name the layers to take, or leave it out to "
		                  "take every layer the file holds");
	ini->layers = calloc(n, sizeof(*ini->layers));
	ini->layer_pos = calloc(n, sizeof(*ini->layer_pos));
	if (!ini->layers || !ini->layer_pos)
		return st_ld_no_memory(ld);
	for (size_t i = 0; i < n; i++) {
		const st_ynode *item = node->u.seq.items[i];
		if (item->kind != ST_YNODE_SCALAR || st_ynode_is_null(item)) {
			st_ynode_describe(item, got, sizeof(got));
			return st_ld_fail(ld, item->pos, STRATA_ERR_INVALID,
			                  "'layers' in init_from must be a list of layer names, got %s", got);
		}
		size_t k = 0;
		while (k < m->n_layers && strcmp(m->layers[k].name, item->u.scalar.text))
			k++;
		if (k == m->n_layers) {
			st_yquote(item, got, sizeof(got));
			layer_names(m, names, sizeof(names));
			return st_ld_fail(ld, item->pos, STRATA_ERR_INVALID, "init_from: no layer %s in the model; its layers: %s",
			                  got, names);
		}
		for (size_t j = 0; j < ini->n_layers; j++)
			if (ini->layers[j] == k)
				return st_ld_fail(ld, item->pos, STRATA_ERR_INVALID,
				                  "layer '%s' is listed twice in init_from (first at %u:%u)", m->layers[k].name,
				                  ini->layer_pos[j].line, ini->layer_pos[j].col);
		ini->layers[ini->n_layers] = k;
		ini->layer_pos[ini->n_layers++] = item->pos;
	}
	return STRATA_OK;
}

/* `init_from: PATH` or `init_from: {weights: PATH, layers: [NAME, ...]}`. */
static strata_status read_init_from(st_loader *ld, const st_ynode *root)
{
	static const char *const handled[] = {"layers", NULL};
	const st_ynode *node = st_ynode_get(root, "init_from");
	st_init_from *ini = &ld->m->recipe.init_from;
	st_param_value *v = NULL;
	const char *path;
	st_pos pos;
	char got[96];
	strata_status st = STRATA_OK;
	if (!node || st_ynode_is_null(node))
		return STRATA_OK;
	if (node->kind == ST_YNODE_SEQUENCE) {
		st_ynode_describe(node, got, sizeof(got));
		return st_ld_fail(ld, node->pos, STRATA_ERR_INVALID,
		                  "'init_from' must be a weights file or a mapping {weights: PATH, layers: [...]}, "
		                  "got %s",
		                  got);
	}
	if (node->kind == ST_YNODE_SCALAR) {
		path = node->u.scalar.text;
		pos = node->pos;
	} else {
		if ((st = st_ld_section(ld, &st_schema_init_from, node, node->pos, "init_from", handled, &v)))
			goto out_free;
		const st_param_value *w = st_ld_value(v, &st_schema_init_from, "weights");
		path = w->s;
		pos = w->pos;
	}
	if (!path[0]) {
		st = st_ld_fail(ld, pos, STRATA_ERR_INVALID, "the weights file of init_from cannot be empty");
		goto out_free;
	}
	ini->pos = pos;
	if (!(ini->weights = st_ld_resolve(ld->m->base_dir, path))) {
		st = st_ld_no_memory(ld);
		goto out_free;
	}
	if (node->kind == ST_YNODE_MAPPING)
		st = read_init_layers(ld, st_ynode_get(node, "layers"));
out_free:
	if (v)
		st_ld_free_values(v, st_schema_init_from.n_params);
	return st;
}

/* The heads' arrays of st_recipe. */
static strata_status list_heads(st_loader *ld)
{
	st_recipe *r = &ld->m->recipe;
	size_t n = r->n_outputs ? r->n_outputs : 1;
	r->labels[ST_TRAIN] = calloc(n, sizeof(char *));
	r->labels[ST_TEST] = calloc(n, sizeof(char *));
	r->head_classes = calloc(n, sizeof(uint32_t));
	if (!r->labels[ST_TRAIN] || !r->labels[ST_TEST] || !r->head_classes)
		return st_ld_no_memory(ld);
	for (size_t k = 0; k < r->n_outputs; k++) {
		if (!r->outputs[k].loss)
			continue;
		r->labels[ST_TRAIN][r->n_heads] = r->outputs[k].labels[ST_TRAIN];
		r->labels[ST_TEST][r->n_heads] = r->outputs[k].labels[ST_TEST];
		r->head_classes[r->n_heads++] = r->outputs[k].num_classes;
	}
	return STRATA_OK;
}

/* ---- entry points --------------------------------------------------------------------------- */

strata_status st_recipe_read(st_loader *ld, const st_ynode *root)
{
	strata_model *m = ld->m;
	st_recipe *r = &m->recipe;
	r->outputs = calloc(m->n_outputs ? m->n_outputs : 1, sizeof(*r->outputs));
	const char **outs = output_names(m), **ins = input_names(m);
	strata_status st;
	if (!r->outputs || !outs || !ins) {
		st = st_ld_no_memory(ld);
		goto out_free;
	}
	r->n_outputs = m->n_outputs;
	for (size_t k = 0; k < r->n_outputs; k++)
		r->outputs[k].weight = 1.0;
	if (!(st = read_losses(ld, root, outs)) && !(st = read_optimizer(ld, root)) &&
	    !(st = read_metrics(ld, root, outs)) && !(st = read_data(ld, root, outs, ins)) &&
	    !(st = read_training(ld, root)) && !(st = read_init_from(ld, root)))
		st = list_heads(ld);
out_free:
	free(outs);
	free(ins);
	return st;
}

strata_status st_recipe_check(st_loader *ld)
{
	const st_init_from *ini = &ld->m->recipe.init_from;
	for (size_t i = 0; i < ini->n_layers; i++) {
		const struct strata_layer *layer = &ld->m->layers[ini->layers[i]];
		if (layer->n_weights == 0)
			return st_ld_fail(ld, ini->layer_pos[i], STRATA_ERR_INVALID,
			                  "init_from: layer '%s' (%s) has no weights to take", layer->name,
			                  layer->type->ops.type);
	}
	return STRATA_OK;
}

void st_recipe_release(st_recipe *r)
{
	for (size_t k = 0; r->outputs && k < r->n_outputs; k++) {
		st_output_recipe *o = &r->outputs[k];
		free(o->loss);
		for (size_t i = 0; i < o->n_metrics; i++)
			free(o->metrics[i]);
		free(o->metrics);
		free(o->labels[ST_TRAIN]);
		free(o->labels[ST_TEST]);
	}
	free(r->outputs);
	for (int which = ST_TRAIN; which <= ST_TEST; which++) {
		for (size_t i = 0; r->inputs[which] && i < r->n_inputs; i++)
			free(r->inputs[which][i]);
		free(r->inputs[which]);
	}
	free(r->labels[ST_TRAIN]);
	free(r->labels[ST_TEST]);
	free(r->head_classes);
	free(r->keep_labels);
	free(r->optimizer.type);
	st_ld_free_values(r->optimizer.values, r->optimizer.n_params);
	free(r->lr_schedule.type);
	st_ld_free_values(r->lr_schedule.values, r->lr_schedule.n_params);
	free(r->init_from.weights);
	free(r->init_from.layers);
	free(r->init_from.layer_pos);
	memset(r, 0, sizeof(*r));
}
