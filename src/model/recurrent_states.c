/* Keras' return_state. The graph core gives every layer one output, so a recurrent layer with
 *
 *     {type: lstm, units: 64, return_state: true, name: enc}
 *
 * outputs [its output, h_T, c_T] side by side per sample (plugins/recurrent), and the loader puts
 * after it one `rnn_part` layer per part: enc_state_h, enc_state_c, then enc_output (the sequence
 * with return_sequences, else the last state), which later layers read by those names, as Keras'
 * `output, state_h, state_c = LSTM(..., return_state=True)(x)`. The layer itself keeps its name
 * and weights (enc/kernel); reading it directly is refused. Its parts' gradients add up in its
 * output's gradient like those of any value read several times. */
#include "model/recurrent_states.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/yaml_doc.h"

static const char *const parts[] = {"state_h", "state_c", "output"};

/* A recurrent layer item (by Keras' type or class name) with return_state true; its states. */
static size_t states_of(const st_ynode *item)
{
	static const struct {
		const char *type, *class_name;
		size_t states;
	} types[] = {{"simple_rnn", "SimpleRNN", 1}, {"gru", "GRU", 1}, {"lstm", "LSTM", 2}};
	if (!item || item->kind != ST_YNODE_MAPPING)
		return 0;
	const st_ynode *type = st_ynode_get(item, "type"), *rs = st_ynode_get(item, "return_state");
	if (!type || type->kind != ST_YNODE_SCALAR || !rs || rs->kind != ST_YNODE_SCALAR ||
	    (strcmp(rs->u.scalar.text, "true") && strcmp(rs->u.scalar.text, "True")))
		return 0;
	for (size_t k = 0; k < sizeof(types) / sizeof(types[0]); k++)
		if (!strcmp(type->u.scalar.text, types[k].type) || !strcmp(type->u.scalar.text, types[k].class_name))
			return types[k].states;
	return 0;
}

size_t st_states_width(const st_ynode *item)
{
	size_t states = states_of(item);
	return states ? states + 1 : 0;
}

/* A made mapping of `n` pairs (keys and values given), or NULL when out of memory. */
static st_ynode *mapping(st_loader *ld, st_pos pos, size_t n, const char *const *keys, const st_ynode *const *values)
{
	st_ynode *map = st_ld_made(ld, ST_YNODE_MAPPING, pos, NULL);
	if (!map || !(map->u.map.pairs = calloc(n, sizeof(st_ypair))))
		return NULL;
	for (size_t k = 0; k < n; k++) {
		st_ynode *key = st_ld_made(ld, ST_YNODE_SCALAR, pos, keys[k]);
		if (!key)
			return NULL;
		map->u.map.pairs[map->u.map.n++] = (st_ypair){key, (st_ynode *)values[k]};
	}
	return map;
}

strata_status st_states_read(st_loader *ld, size_t i, const st_ynode *item)
{
	const st_ynode *name = st_ynode_get(item, "name");
	if (!name || name->kind != ST_YNODE_SCALAR || st_ynode_is_null(name) || !name->u.scalar.text[0])
		return st_ld_fail(ld, st_ynode_get(item, "return_state")->pos, STRATA_ERR_INVALID,
		                  "a layer with return_state needs a 'name': later layers read its parts as NAME_output, "
		                  "NAME_state_h%s", states_of(item) == 2 ? " and NAME_state_c" : "");
	strata_status st = st_ld_read_layer(ld, i, item);
	if (st)
		return st;
	size_t states = states_of(item);
	const char *layer_name = ld->m->layers[i].name;
	const st_ynode *units = st_ynode_get(item, "units"), *seq = st_ynode_get(item, "return_sequences");
	st_ynode *type = st_ld_made(ld, ST_YNODE_SCALAR, item->pos, "rnn_part");
	st_ynode *count = st_ld_made(ld, ST_YNODE_SCALAR, item->pos, states == 2 ? "2" : "1");
	st_ynode *source = st_ld_made(ld, ST_YNODE_SCALAR, name->pos, layer_name);
	st_ynode *no = st_ld_made(ld, ST_YNODE_SCALAR, item->pos, "false");
	if (!type || !count || !source || !no)
		return st_ld_no_memory(ld);
	for (size_t k = 0; k <= states; k++) {
		const char *part = k < states ? parts[k] : parts[2];
		char part_name[256];
		snprintf(part_name, sizeof(part_name), "%s_%s", layer_name, part);
		st_ynode *pv = st_ld_made(ld, ST_YNODE_SCALAR, item->pos, part);
		st_ynode *nv = st_ld_made(ld, ST_YNODE_SCALAR, name->pos, part_name);
		if (!pv || !nv)
			return st_ld_no_memory(ld);
		/* units is the layer's own (a missing one was refused reading it). */
		const char *keys[] = {"type", "part", "units", "return_sequences", "states", "name"};
		const st_ynode *values[] = {type, pv, units, seq ? seq : no, count, nv};
		st_ynode *map = mapping(ld, item->pos, 6, keys, values);
		if (!map)
			return st_ld_no_memory(ld);
		size_t at = i + 1 + k;
		if ((st = st_ld_read_layer(ld, at, map)))
			return st;
		ld->m->layers[at].pos = item->pos;
		ld->layer_inputs[at] = source;
	}
	return STRATA_OK;
}

/* Whether an `inputs:` node names `name`. */
static bool reads(const st_ynode *inputs, const char *name, st_pos *at)
{
	if (!inputs)
		return false;
	if (inputs->kind == ST_YNODE_SCALAR) {
		*at = inputs->pos;
		return !strcmp(inputs->u.scalar.text, name);
	}
	for (size_t k = 0; inputs->kind == ST_YNODE_SEQUENCE && k < inputs->u.seq.n; k++)
		if (reads(inputs->u.seq.items[k], name, at))
			return true;
	return false;
}

strata_status st_states_check(st_loader *ld)
{
	strata_model *m = ld->m;
	for (size_t i = 0; i < m->n_layers; i++) {
		const st_param_value *rs = st_layer_param(&m->layers[i], "return_state");
		if (!rs || !rs->i)
			continue;
		for (size_t j = 0; j < m->n_layers; j++) {
			st_pos at;
			const char *n = m->layers[i].name;
			bool lstm = !strcmp(m->layers[i].type->ops.type, "lstm");
			if (strcmp(m->layers[j].type->ops.type, "rnn_part") && reads(ld->layer_inputs[j], n, &at))
				return st_ld_fail(ld, at, STRATA_ERR_INVALID,
				                  "%s returns its states (return_state): read %s_output%s %s_state_h%s%s%s instead", n,
				                  n, lstm ? "," : " or", n, lstm ? " or " : "", lstm ? n : "", lstm ? "_state_c" : "");
		}
	}
	return STRATA_OK;
}
