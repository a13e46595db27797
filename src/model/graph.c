/* The model as a graph, as Keras' functional API wires it: each layer's `inputs:` (names of
 * model inputs or layers; the previous layer when left out) resolved to values, `shares:` to
 * the layer whose weights are used, `outputs:` to layers; then an order in which every layer
 * follows the layers it reads (file order wherever the file allows), a refused cycle printed
 * layer by layer, and a warning for a layer whose output reaches no output. */
#include "model/graph.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/error.h"

static strata_status fail_at(const strata_model *m, strata_error *err, st_pos pos, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static strata_status fail_at(const strata_model *m, strata_error *err, st_pos pos, const char *fmt, ...)
{
	char msg[STRATA_ERROR_MAX];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	return st_fail(err, STRATA_ERR_INVALID, "%s:%u:%u: %s", m->file, pos.line, pos.col, msg);
}

/* "input_1, conv2d_1, ..." for messages, cut short in a long model. */
static void value_names(const strata_model *m, char *buf, size_t size)
{
	size_t o = 0;
	buf[0] = '\0';
	size_t n = m->n_inputs + m->n_layers;
	for (uint32_t v = 0; v < n && o < size; v++) {
		int w = snprintf(buf + o, size - o, "%s%s", v ? ", " : "", st_value_name(m, v));
		if (w < 0 || (size_t)w >= size - o) {
			snprintf(buf + (size > 5 ? size - 5 : 0), size > 5 ? 5 : size, "...");
			return;
		}
		o += (size_t)w;
	}
}

/* The value a name refers to: a model input or a layer. */
static bool find_value(const strata_model *m, const char *name, uint32_t *v)
{
	for (uint32_t i = 0; i < m->n_inputs; i++)
		if (strcmp(m->inputs[i].name, name) == 0) {
			*v = i;
			return true;
		}
	for (size_t i = 0; i < m->n_layers; i++)
		if (strcmp(m->layers[i].name, name) == 0) {
			*v = st_layer_value(m, i);
			return true;
		}
	return false;
}

/* A name, or a list of names, as `inputs:` and `outputs:` take them. */
static strata_status read_names(const strata_model *m, const st_ynode *node, const char *key, const st_ynode ***items,
                                size_t *n, strata_error *err)
{
	char got[96];
	if (node->kind == ST_YNODE_SCALAR && !st_ynode_is_null(node)) {
		*items = NULL;
		*n = 1;
		return STRATA_OK;
	}
	if (node->kind != ST_YNODE_SEQUENCE || node->u.seq.n == 0) {
		st_ynode_describe(node, got, sizeof(got));
		return fail_at(m, err, node->pos, "'%s' must be a name or a list of names, got %s", key,
		               node->kind == ST_YNODE_SEQUENCE ? "an empty list" : got);
	}
	for (size_t i = 0; i < node->u.seq.n; i++) {
		const st_ynode *item = node->u.seq.items[i];
		if (item->kind != ST_YNODE_SCALAR || st_ynode_is_null(item)) {
			st_ynode_describe(item, got, sizeof(got));
			return fail_at(m, err, item->pos, "'%s' lists names of layers or inputs, got %s", key, got);
		}
	}
	*items = (const st_ynode **)node->u.seq.items;
	*n = node->u.seq.n;
	return STRATA_OK;
}

static const st_ynode *name_at(const st_ynode *node, const st_ynode **items, size_t i)
{
	return items ? items[i] : node;
}

static strata_status resolve_inputs(strata_model *m, size_t i, const st_ynode *node, strata_error *err)
{
	struct strata_layer *layer = &m->layers[i];
	char list[1024], q[96];
	if (!node) {
		/* The previous layer, or the model's one input for the first. */
		layer->inputs_pos = layer->pos;
		if (i == 0 && m->n_inputs > 1)
			return fail_at(m, err, layer->pos,
			               "%s: the model has %zu inputs: say which this layer reads with 'inputs:'",
			               layer->name, m->n_inputs);
		layer->inputs = malloc(sizeof(*layer->inputs));
		layer->in_shapes = calloc(1, sizeof(*layer->in_shapes));
		if (!layer->inputs || !layer->in_shapes)
			return st_fail(err, STRATA_ERR_NO_MEMORY, "%s: out of memory", m->file);
		layer->n_inputs = 1;
		layer->inputs[0] = i == 0 ? 0 : st_layer_value(m, i - 1);
		return STRATA_OK;
	}
	m->functional = true;
	layer->inputs_pos = node->pos;
	const st_ynode **items;
	size_t n;
	strata_status st = read_names(m, node, "inputs", &items, &n, err);
	if (st)
		return st;
	layer->inputs = malloc(n * sizeof(*layer->inputs));
	layer->in_shapes = calloc(n, sizeof(*layer->in_shapes));
	if (!layer->inputs || !layer->in_shapes)
		return st_fail(err, STRATA_ERR_NO_MEMORY, "%s: out of memory", m->file);
	layer->n_inputs = (uint32_t)n;
	for (size_t k = 0; k < n; k++) {
		const st_ynode *name = name_at(node, items, k);
		if (!find_value(m, name->u.scalar.text, &layer->inputs[k])) {
			value_names(m, list, sizeof(list));
			st_yquote(name, q, sizeof(q));
			return fail_at(m, err, name->pos, "%s: unknown input %s; the model has: %s", layer->name, q, list);
		}
		if (layer->inputs[k] == st_layer_value(m, i))
			return fail_at(m, err, name->pos, "%s reads its own output: a cycle (%s -> %s)", layer->name,
			               layer->name, layer->name);
	}
	return STRATA_OK;
}

static strata_status resolve_shares(strata_model *m, size_t i, const char *shares, strata_error *err)
{
	struct strata_layer *layer = &m->layers[i];
	char list[1024];
	layer->shares = -1;
	if (!shares)
		return STRATA_OK;
	m->functional = true;
	for (size_t j = 0; j < m->n_layers; j++) {
		if (strcmp(m->layers[j].name, shares) != 0)
			continue;
		if (j == i)
			return fail_at(m, err, layer->shares_pos, "%s cannot share its own weights", layer->name);
		if (m->layers[j].shares >= 0 && j < i)
			return fail_at(m, err, layer->shares_pos,
			               "%s shares the weights of %s, which shares those of %s: name %s", layer->name,
			               shares, m->layers[m->layers[j].shares].name, m->layers[m->layers[j].shares].name);
		layer->shares = (int64_t)j;
		return STRATA_OK;
	}
	value_names(m, list, sizeof(list));
	return fail_at(m, err, layer->shares_pos, "%s: 'shares' names no layer: '%s'; the model has: %s", layer->name,
	               shares, list);
}

/* A cycle through `start`, which Kahn's algorithm could not place: follow inputs that are not
 * placed yet until a layer repeats, then print that loop in reading order. */
static strata_status report_cycle(strata_model *m, const bool *placed, size_t start, strata_error *err)
{
	size_t n = m->n_layers;
	uint32_t *seen_at = malloc(n * sizeof(*seen_at)), *path = malloc((n + 1) * sizeof(*path));
	if (!seen_at || !path) {
		free(seen_at);
		free(path);
		return st_fail(err, STRATA_ERR_NO_MEMORY, "%s: out of memory", m->file);
	}
	for (size_t i = 0; i < n; i++)
		seen_at[i] = UINT32_MAX;
	size_t len = 0, cur = start;
	while (seen_at[cur] == UINT32_MAX) {
		seen_at[cur] = (uint32_t)len;
		path[len++] = (uint32_t)cur;
		const struct strata_layer *layer = &m->layers[cur];
		size_t next = cur;
		for (uint32_t k = 0; k < layer->n_inputs; k++) {
			uint32_t v = layer->inputs[k];
			if (v >= m->n_inputs && !placed[v - m->n_inputs]) {
				next = v - m->n_inputs;
				break;
			}
		}
		cur = next;
	}
	/* path[seen_at[cur] ..] is the loop, each reading the next: print it producer first. */
	char text[STRATA_ERROR_MAX / 2];
	size_t o = 0;
	text[0] = '\0';
	for (size_t k = len; k-- > seen_at[cur] && o < sizeof(text);) {
		const struct strata_layer *l = &m->layers[path[k]];
		int w = snprintf(text + o, sizeof(text) - o, "%s (%u:%u) -> ", l->name, l->pos.line, l->pos.col);
		o += w > 0 ? (size_t)w : 0;
	}
	if (o < sizeof(text))
		snprintf(text + o, sizeof(text) - o, "%s", m->layers[path[len - 1]].name);
	const struct strata_layer *at = &m->layers[cur];
	strata_status st = fail_at(m, err, at->inputs_pos, "the layers read each other in a cycle: %s", text);
	free(seen_at);
	free(path);
	return st;
}

/* Kahn's algorithm, always taking the earliest ready layer in the file, so a file already in
 * order keeps it. */
static strata_status order_layers(strata_model *m, strata_error *err)
{
	size_t n = m->n_layers;
	m->order = malloc(n * sizeof(*m->order));
	bool *placed = calloc(n, sizeof(*placed));
	if (!m->order || !placed) {
		free(placed);
		return st_fail(err, STRATA_ERR_NO_MEMORY, "%s: out of memory", m->file);
	}
	strata_status st = STRATA_OK;
	for (size_t o = 0; o < n; o++) {
		size_t pick = n;
		for (size_t i = 0; i < n && pick == n; i++) {
			if (placed[i])
				continue;
			bool ready = true;
			for (uint32_t k = 0; k < m->layers[i].n_inputs && ready; k++) {
				uint32_t v = m->layers[i].inputs[k];
				ready = v < m->n_inputs || placed[v - m->n_inputs];
			}
			if (ready)
				pick = i;
		}
		if (pick == n) {
			size_t first = 0;
			while (placed[first])
				first++;
			st = report_cycle(m, placed, first, err);
			break;
		}
		placed[pick] = true;
		m->order[o] = (uint32_t)pick;
	}
	free(placed);
	return st;
}

static strata_status resolve_outputs(strata_model *m, const st_ynode *node, strata_error *err)
{
	char list[1024], q[96];
	if (!node) {
		m->outputs = malloc(sizeof(*m->outputs));
		if (!m->outputs)
			return st_fail(err, STRATA_ERR_NO_MEMORY, "%s: out of memory", m->file);
		m->outputs[0] = (uint32_t)(m->n_layers - 1);
		m->n_outputs = 1;
		return STRATA_OK;
	}
	m->functional = true;
	m->outputs_pos = node->pos;
	const st_ynode **items;
	size_t n;
	strata_status st = read_names(m, node, "outputs", &items, &n, err);
	if (st)
		return st;
	m->outputs = malloc(n * sizeof(*m->outputs));
	if (!m->outputs)
		return st_fail(err, STRATA_ERR_NO_MEMORY, "%s: out of memory", m->file);
	m->n_outputs = n;
	for (size_t k = 0; k < n; k++) {
		const st_ynode *name = name_at(node, items, k);
		uint32_t v;
		st_yquote(name, q, sizeof(q));
		if (!find_value(m, name->u.scalar.text, &v)) {
			value_names(m, list, sizeof(list));
			return fail_at(m, err, name->pos, "unknown output %s; the model has: %s", q, list);
		}
		if (v < m->n_inputs)
			return fail_at(m, err, name->pos, "output %s is a model input, not a layer", q);
		for (size_t j = 0; j < k; j++)
			if (m->outputs[j] == v - m->n_inputs)
				return fail_at(m, err, name->pos, "output %s is listed twice", q);
		m->outputs[k] = v - m->n_inputs;
	}
	return STRATA_OK;
}

/* A layer whose output no output depends on is computed for nothing (and not trained). */
static void warn_unused(strata_model *m)
{
	size_t n = m->n_layers;
	bool *used = calloc(n, sizeof(*used));
	if (!used)
		return;
	for (size_t k = 0; k < m->n_outputs; k++)
		used[m->outputs[k]] = true;
	for (size_t o = n; o-- > 0;) {
		const struct strata_layer *layer = &m->layers[m->order[o]];
		if (!used[m->order[o]])
			continue;
		for (uint32_t k = 0; k < layer->n_inputs; k++)
			if (layer->inputs[k] >= m->n_inputs)
				used[layer->inputs[k] - m->n_inputs] = true;
	}
	for (size_t i = 0; i < n; i++)
		if (!used[i])
			st_registry_log(m->reg, STRATA_LOG_WARN, "%s:%u:%u: %s: its output reaches no output of the model",
			                m->file, m->layers[i].pos.line, m->layers[i].pos.col, m->layers[i].name);
	for (uint32_t v = 0; v < m->n_inputs; v++) {
		bool read = false;
		for (size_t i = 0; i < n && !read; i++)
			for (uint32_t k = 0; k < m->layers[i].n_inputs && !read; k++)
				read = m->layers[i].inputs[k] == v && used[i];
		if (!read)
			st_registry_log(m->reg, STRATA_LOG_WARN, "%s:%u:%u: input %s reaches no output of the model",
			                m->file, m->inputs[v].pos.line, m->inputs[v].pos.col, m->inputs[v].name);
	}
	free(used);
}

strata_status st_graph_resolve(strata_model *m, const st_graph_spec *spec, strata_error *err)
{
	strata_status st;
	for (size_t i = 0; i < m->n_layers; i++)
		if ((st = resolve_inputs(m, i, spec->layer_inputs[i], err)))
			return st;
	for (size_t i = 0; i < m->n_layers; i++) {
		m->layers[i].shares_pos = spec->shares_pos[i];
		if ((st = resolve_shares(m, i, spec->shares[i], err)))
			return st;
	}
	if ((st = order_layers(m, err)) || (st = resolve_outputs(m, spec->outputs, err)))
		return st;
	warn_unused(m);
	return STRATA_OK;
}
