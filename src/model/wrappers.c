/* Keras' wrappers (issue 15). TimeDistributed,
 *
 *     {type: time_distributed, layer: {type: conv2d, filters: 8, kernel_size: 3}, name: td}
 *
 * is the wrapped layer itself, named td, marked distributed: the host runs it on every step of its
 * (timesteps, ...) input as on that many samples (model.h). Bidirectional is read as the plain
 * layers it stands for:
 *
 *     {type: bidirectional, layer: {type: lstm, units: 64}, merge_mode: concat, name: bi}
 *
 * becomes three layers of the model: bi_forward (the wrapped layer as written), bi_backward (the
 * same with go_backwards flipped and, when it returns sequences, its output put back in the
 * input's time order, as Keras reverses it) and bi, the merge of the two (concat: a
 * `concatenate`, sum: `add`, mul: `multiply`, ave: `average`), which later layers read by the
 * wrapper's name. Both directions read the wrapper's input and its mask. Their weights are
 * bi_forward/kernel, bi_backward/kernel and so on; `summary` shows the three layers, whose
 * parameter counts add up to Keras' one row. The loader calls this before naming and wiring the
 * layers, so everything downstream sees ordinary layers. */
#include "model/wrappers.h"
#include "model/recurrent_states.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/params.h"
#include "model/yaml_doc.h"

static const char *const merge_modes[][2] = {
	{"concat", "concatenate"}, {"sum", "add"}, {"mul", "multiply"}, {"ave", "average"},
};

static bool named(const st_ynode *node, const char *a, const char *b)
{
	return node && node->kind == ST_YNODE_SCALAR && (strcmp(node->u.scalar.text, a) == 0 ||
	                                                 strcmp(node->u.scalar.text, b) == 0);
}

bool st_wrapper_is_bidirectional(const st_ynode *item)
{
	return item && item->kind == ST_YNODE_MAPPING && named(st_ynode_get(item, "type"), "bidirectional", "Bidirectional");
}

bool st_wrapper_is_time_distributed(const st_ynode *item)
{
	return item && item->kind == ST_YNODE_MAPPING &&
	       named(st_ynode_get(item, "type"), "time_distributed", "TimeDistributed");
}

size_t st_wrapper_width(const st_ynode *item)
{
	return st_wrapper_is_bidirectional(item) ? 3 : 1 + st_states_width(item);
}

/* Sets a bool parameter the plugin declares (the loader already filled it from the file). */
static void set_bool(struct strata_layer *layer, const char *name, bool v)
{
	st_param_value *p = (st_param_value *)st_layer_param(layer, name);
	if (p)
		p->i = v;
}

static strata_status set_name(st_loader *ld, size_t i, const char *base, const char *suffix, st_pos pos)
{
	struct strata_layer *layer = &ld->m->layers[i];
	size_t len = strlen(base) + strlen(suffix) + 1;
	free(layer->name);
	if (!(layer->name = malloc(len)))
		return st_ld_no_memory(ld);
	snprintf(layer->name, len, "%s%s", base, suffix);
	ld->name_given[i] = true;
	ld->name_pos[i] = pos;
	return STRATA_OK;
}

/* Refuses a key of a wrapper item outside `keys` (NULL-ended), naming them; `hint` is added after
 * the list for a key that has one. */
static strata_status check_keys(st_loader *ld, const st_ynode *item, const char *what, const char *const *keys,
                                const char *hint_key, const char *hint)
{
	for (size_t k = 0; k < item->u.map.n; k++) {
		const st_ynode *key = item->u.map.pairs[k].key;
		bool known = false;
		for (size_t j = 0; keys[j] && !known; j++)
			known = strcmp(key->u.scalar.text, keys[j]) == 0;
		if (known)
			continue;
		char list[128] = "";
		for (size_t j = 0; keys[j]; j++)
			snprintf(list + strlen(list), sizeof(list) - strlen(list), "%s%s", j ? ", " : "", keys[j]);
		bool hinted = hint_key && strcmp(key->u.scalar.text, hint_key) == 0;
		return st_ld_fail(ld, key->pos, STRATA_ERR_INVALID, "unknown key '%s' in a %s layer (known: %s%s)",
		                  key->u.scalar.text, what, list, hinted ? hint : "");
	}
	return STRATA_OK;
}

/* A wrapper's `trainable`: true when absent. */
static strata_status read_trainable(st_loader *ld, const st_ynode *item, bool *trainable)
{
	const st_ynode *t = st_ynode_get(item, "trainable");
	*trainable = true;
	if (!t)
		return STRATA_OK;
	const char *v = t->kind == ST_YNODE_SCALAR ? t->u.scalar.text : "";
	if (!strcmp(v, "false") || !strcmp(v, "False"))
		*trainable = false;
	else if (strcmp(v, "true") && strcmp(v, "True")) {
		char got[96];
		st_ynode_describe(t, got, sizeof(got));
		return st_ld_fail(ld, t->pos, STRATA_ERR_INVALID, "'trainable' must be true or false, got %s", got);
	}
	return STRATA_OK;
}

/* A wrapper's `name` into name[size] (empty when absent), short enough for its suffixes. */
static strata_status read_name(st_loader *ld, const st_ynode *item, char *name, size_t size)
{
	const st_ynode *n = st_ynode_get(item, "name");
	name[0] = '\0';
	if (!n)
		return STRATA_OK;
	if (n->kind != ST_YNODE_SCALAR || st_ynode_is_null(n) || !n->u.scalar.text[0] || n->u.scalar.len >= size - 16) {
		char got[96];
		st_ynode_describe(n, got, sizeof(got));
		return st_ld_fail(ld, n->pos, STRATA_ERR_INVALID, "'name' must be a layer name, got %s", got);
	}
	snprintf(name, size, "%s", n->u.scalar.text);
	return STRATA_OK;
}

strata_status st_wrapper_read(st_loader *ld, size_t i, const st_ynode *item)
{
	static const char *const keys[] = {"type", "name", "inputs", "layer", "merge_mode", "trainable", NULL};
	strata_model *m = ld->m;
	char got[96], name[128];
	bool trainable;
	strata_status st = check_keys(ld, item, "bidirectional", keys, "backward_layer",
	                              "; a backward_layer of its own is not supported");
	if (st || (st = read_name(ld, item, name, sizeof(name))) || (st = read_trainable(ld, item, &trainable)))
		return st;
	const st_ynode *inner = st_ynode_get(item, "layer");
	if (!inner)
		return st_ld_fail(ld, item->pos, STRATA_ERR_INVALID,
		                  "a bidirectional layer needs 'layer': the recurrent layer it runs both ways, e.g. {type: lstm, units: 64}");
	const st_ynode *inner_type = inner->kind == ST_YNODE_MAPPING ? st_ynode_get(inner, "type") : NULL;
	if (!named(inner_type, "lstm", "LSTM") && !named(inner_type, "gru", "GRU") &&
	    !named(inner_type, "simple_rnn", "SimpleRNN")) {
		st_ynode_describe(inner_type ? inner_type : inner, got, sizeof(got));
		return st_ld_fail(ld, (inner_type ? inner_type : inner)->pos, STRATA_ERR_INVALID,
		                  "'layer' of a bidirectional layer must be a mapping of type lstm, gru or simple_rnn, got %s", got);
	}
	if (st_ynode_get(inner, "inputs"))
		return st_ld_fail(ld, st_ynode_get(inner, "inputs")->pos, STRATA_ERR_INVALID,
		                  "the wrapped layer reads the bidirectional layer's input: give 'inputs' to the bidirectional layer");
	if (st_states_width(inner))
		return st_ld_fail(ld, st_ynode_get(inner, "return_state")->pos, STRATA_ERR_INVALID,
		                  "return_state in a bidirectional layer (its four states as outputs) is not supported");
	const st_ynode *mode = st_ynode_get(item, "merge_mode");
	const char *merge = "concatenate";
	if (mode) {
		merge = NULL;
		for (size_t k = 0; k < sizeof(merge_modes) / sizeof(merge_modes[0]) && mode->kind == ST_YNODE_SCALAR; k++)
			if (strcmp(mode->u.scalar.text, merge_modes[k][0]) == 0)
				merge = merge_modes[k][1];
		if (!merge) {
			st_ynode_describe(mode, got, sizeof(got));
			return st_ld_fail(ld, mode->pos, STRATA_ERR_INVALID,
			                  "'merge_mode' must be one of concat, sum, mul, ave (null, two outputs, is not supported), got %s",
			                  got);
		}
	}
	const st_ynode *name_node = st_ynode_get(item, "name");
	if (!name[0])
		snprintf(name, sizeof(name), "bidirectional_%zu", ++ld->n_bidirectional);
	st_pos at = name_node ? name_node->pos : item->pos;

	/* Both directions: the wrapped layer as written, the second backwards. */
	for (size_t d = 0; d < 2; d++) {
		if ((st = st_ld_read_layer(ld, i + d, inner)) ||
		    (st = set_name(ld, i + d, name, d ? "_backward" : "_forward", at)))
			return st;
		struct strata_layer *layer = &m->layers[i + d];
		layer->pos = item->pos;
		layer->trainable = layer->trainable && trainable;
		ld->layer_inputs[i + d] = st_ynode_get(item, "inputs");
		if (d == 1) {
			const st_param_value *back = st_layer_param(layer, "go_backwards");
			const st_param_value *seq = st_layer_param(layer, "return_sequences");
			if (!back || !seq || !st_layer_param(layer, "output_in_input_order"))
				return st_ld_fail(ld, item->pos, STRATA_ERR_PLUGIN,
				                  "the %s plugin lacks go_backwards, return_sequences or output_in_input_order",
				                  layer->type->plugin);
			set_bool(layer, "go_backwards", !back->i);
			set_bool(layer, "output_in_input_order", seq->i != 0);
			/* Without inputs: the layer before the wrapper, named once every name is known. */
			ld->read_previous[i + d] = ld->layer_inputs[i + d] == NULL;
		}
	}
	/* The merge, by the wrapper's name, of [forward, backward]. */
	st_ynode *merge_type = st_ld_made(ld, ST_YNODE_SCALAR, item->pos, merge);
	st_ynode *key = st_ld_made(ld, ST_YNODE_SCALAR, item->pos, "type");
	st_ynode *map = st_ld_made(ld, ST_YNODE_MAPPING, item->pos, NULL);
	st_ynode *names = st_ld_made(ld, ST_YNODE_SEQUENCE, item->pos, NULL);
	st_ynode *fwd = st_ld_made(ld, ST_YNODE_SCALAR, item->pos, m->layers[i].name);
	st_ynode *bwd = st_ld_made(ld, ST_YNODE_SCALAR, item->pos, m->layers[i + 1].name);
	if (!merge_type || !key || !map || !names || !fwd || !bwd || !(map->u.map.pairs = calloc(1, sizeof(st_ypair))) ||
	    !(names->u.seq.items = calloc(2, sizeof(st_ynode *))))
		return st_ld_no_memory(ld);
	map->u.map.pairs[0] = (st_ypair){key, merge_type};
	map->u.map.n = 1;
	names->u.seq.items[0] = fwd;
	names->u.seq.items[1] = bwd;
	names->u.seq.n = 2;
	if ((st = st_ld_read_layer(ld, i + 2, map)) || (st = set_name(ld, i + 2, name, "", at)))
		return st;
	ld->layer_inputs[i + 2] = names;
	return STRATA_OK;
}

strata_status st_wrapper_read_distributed(st_loader *ld, size_t i, const st_ynode *item)
{
	static const char *const keys[] = {"type", "name", "inputs", "layer", "trainable", NULL};
	char got[96], name[128];
	bool trainable;
	strata_status st = check_keys(ld, item, "time_distributed", keys, NULL, NULL);
	if (st || (st = read_name(ld, item, name, sizeof(name))) || (st = read_trainable(ld, item, &trainable)))
		return st;
	const st_ynode *inner = st_ynode_get(item, "layer");
	if (!inner || inner->kind != ST_YNODE_MAPPING) {
		if (inner)
			st_ynode_describe(inner, got, sizeof(got));
		return st_ld_fail(ld, inner ? inner->pos : item->pos, STRATA_ERR_INVALID,
		                  "a time_distributed layer needs 'layer': the layer it runs on every step, e.g. {type: dense, "
		                  "units: 8}%s%s", inner ? ", got " : "", inner ? got : "");
	}
	const st_ynode *inner_type = st_ynode_get(inner, "type");
	if (st_wrapper_is_bidirectional(inner) || st_wrapper_is_time_distributed(inner))
		return st_ld_fail(ld, inner_type->pos, STRATA_ERR_INVALID, "a time_distributed layer cannot wrap a wrapper");
	if (st_ynode_get(inner, "inputs"))
		return st_ld_fail(ld, st_ynode_get(inner, "inputs")->pos, STRATA_ERR_INVALID,
		                  "the wrapped layer reads the time_distributed layer's input: give 'inputs' to the wrapper");
	if ((st = st_ld_read_layer(ld, i, inner)))
		return st;
	struct strata_layer *layer = &ld->m->layers[i];
	layer->distributed = true;
	layer->pos = item->pos;
	layer->trainable = layer->trainable && trainable;
	ld->layer_inputs[i] = st_ynode_get(item, "inputs");
	if (name[0])
		return set_name(ld, i, name, "", st_ynode_get(item, "name")->pos);
	if (!ld->name_given[i]) {
		char def[48];
		snprintf(def, sizeof(def), "time_distributed_%zu", ++ld->n_time_distributed);
		return set_name(ld, i, def, "", item->pos);
	}
	return STRATA_OK;
}

strata_status st_wrapper_finish(st_loader *ld)
{
	strata_model *m = ld->m;
	for (size_t i = 0; i < m->n_layers; i++) {
		if (!ld->read_previous[i])
			continue;
		/* layers[i] is a backward direction; the wrapper's predecessor is two before it. */
		const char *source;
		if (i >= 2) {
			source = m->layers[i - 2].name;
		} else if (m->n_inputs == 1) {
			source = m->inputs[0].name;
		} else {
			return st_ld_fail(ld, m->layers[i].pos, STRATA_ERR_INVALID,
			                  "%s: the model has %zu inputs: say which the bidirectional layer reads with 'inputs:'",
			                  m->layers[i].name, m->n_inputs);
		}
		st_ynode *n = st_ld_made(ld, ST_YNODE_SCALAR, m->layers[i].pos, source);
		if (!n)
			return st_ld_no_memory(ld);
		ld->layer_inputs[i] = n;
		ld->layer_inputs[i - 1] = n; /* the forward direction reads the same */
	}
	return STRATA_OK;
}
