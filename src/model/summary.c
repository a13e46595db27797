/* model.summary() as Keras 2 (2.11) prints it: for a Sequential model (one input, a chain, no
 * graph keys in the file) 65 columns with fields ending at columns 29, 55 and 65; for a functional
 * model 98 columns with fields ending at 32, 53, 65 and 98, InputLayer rows, and a "Connected
 * to" column ('conv2d_1[0][0]': layer, node, tensor). A too-long field is continued on the next
 * line, a blank line follows each layer, trailing blanks are left off. A layer that shares
 * another's weights is, as in Keras, that layer called again: one row with a node per call. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "model/model.h"

#include <stdlib.h>

#define MAX_COLS 4
#define MAX_LINE 98

typedef struct layout {
	int n_cols;
	int line_length;
	int positions[MAX_COLS];
} layout;

static const layout sequential_layout = {3, 65, {29, 55, 65}};
static const layout functional_layout = {4, 98, {32, 53, 65, 98}};

static bool any_left(const char *const *left, int n)
{
	for (int c = 0; c < n; c++)
		if (*left[c])
			return true;
	return false;
}

/* Keras' print_row(): each field gets its column less two spaces of gap (and, in the first, one
 * more for the blank that starts the line; Keras' "[(None, 28, 28, 1)]" fills its 19 columns);
 * what does not fit goes on the following lines. */
static void print_row(FILE *out, const layout *lay, const char *const *fields)
{
	static const char *const breaks[] = {"),", "},", "],", "',"};
	const int N_COLS = lay->n_cols;
	const int *positions = lay->positions;
	const char *left[MAX_COLS];
	for (int c = 0; c < N_COLS; c++)
		left[c] = fields[c];
	while (any_left(left, N_COLS)) {
		char line[MAX_LINE * 2 + 8];
		size_t len = 0;
		for (int c = 0; c < N_COLS; c++) {
			int start = c ? positions[c - 1] : 0;
			int space = c != N_COLS - 1 ? 2 : 0;
			/* One less in the first column, for the blank that starts the line. */
			size_t cutoff = (size_t)(positions[c] - start - space - (c == 0 ? 1 : 0));
			size_t avail = strlen(left[c]);
			size_t fit = avail < cutoff ? avail : cutoff;
			/* Keras breaks after the first "),"-like pair inside what fits. */
			for (size_t b = 0; b < sizeof(breaks) / sizeof(breaks[0]); b++) {
				for (size_t k = 0; k + 1 < fit; k++) {
					if (left[c][k] == breaks[b][0] && left[c][k + 1] == breaks[b][1]) {
						if (k + 2 < cutoff)
							cutoff = k + 2;
						break;
					}
				}
			}
			fit = avail < cutoff ? avail : cutoff;
			if (c == 0)
				line[len++] = ' ';
			memcpy(line + len, left[c], fit);
			len += fit;
			left[c] += fit;
			for (int s = 0; s < space; s++)
				line[len++] = ' ';
			while (len < (size_t)positions[c])
				line[len++] = ' ';
		}
		while (len > 0 && line[len - 1] == ' ')
			len--;
		line[len] = '\0';
		fprintf(out, "%s\n", line);
	}
}

static void rule(FILE *out, const layout *lay, char c)
{
	char line[MAX_LINE + 1];
	memset(line, c, (size_t)lay->line_length);
	line[lay->line_length] = '\0';
	fprintf(out, "%s\n", line);
}

/* 1199882 as "1,199,882", as Python's "{:,}". */
static void with_commas(uint64_t v, char *buf, size_t size)
{
	char digits[32];
	int n = snprintf(digits, sizeof(digits), "%" PRIu64, v);
	size_t o = 0;
	for (int i = 0; i < n && o + 2 < size; i++) {
		if (i > 0 && (n - i) % 3 == 0)
			buf[o++] = ',';
		buf[o++] = digits[i];
	}
	buf[o] = '\0';
}

static void shape_field(const strata_shape *s, char *buf, size_t size)
{
	size_t o = 0;
	int n = snprintf(buf, size, "(None");
	for (uint32_t i = 0; i < s->rank && i < STRATA_MAX_RANK && n >= 0 && (o += (size_t)n) < size; i++)
		n = snprintf(buf + o, size - o, ", %lld", (long long)s->dims[i]);
	if (n >= 0 && (o += (size_t)n) < size)
		snprintf(buf + o, size - o, ")");
}

/* Keras' name for a call: the layer (the owner of shared weights) and which call of it. */
static void node_of(const strata_model *m, size_t layer, size_t *shown, unsigned *node)
{
	int64_t owner = m->layers[layer].shares;
	*shown = owner >= 0 ? (size_t)owner : layer;
	*node = 0;
	if (owner < 0)
		return;
	for (size_t j = 0; j <= layer; j++)
		*node += m->layers[j].shares == owner;
}

/* "['conv2d_3[0][0]', 'conv2d_1[0][0]']" for every call of layer `shown`. */
static void connections(const strata_model *m, size_t shown, char *buf, size_t size)
{
	size_t o = 0;
	int n = 0;
	buf[o++] = '[';
	for (size_t j = 0; j < m->n_layers; j++) {
		if (j != shown && m->layers[j].shares != (int64_t)shown)
			continue;
		const struct strata_layer *l = &m->layers[j];
		for (uint32_t k = 0; k < l->n_inputs && o < size; k++) {
			uint32_t v = l->inputs[k];
			size_t from = 0;
			unsigned node = 0;
			if (v >= m->n_inputs)
				node_of(m, v - m->n_inputs, &from, &node);
			const char *name = v < m->n_inputs ? m->inputs[v].name : m->layers[from].name;
			int w = snprintf(buf + o, size - o, "%s'%s[%u][0]'", n++ ? ", " : "", name, node);
			o += w > 0 ? (size_t)w : 0;
		}
	}
	if (o + 2 <= size) {
		buf[o++] = ']';
		buf[o] = '\0';
	} else {
		buf[size - 1] = '\0';
	}
}

static void print_params(FILE *out, const layout *lay, uint64_t trainable, uint64_t frozen)
{
	char buf[32];
	rule(out, lay, '=');
	with_commas(trainable + frozen, buf, sizeof(buf));
	fprintf(out, "Total params: %s\n", buf);
	with_commas(trainable, buf, sizeof(buf));
	fprintf(out, "Trainable params: %s\n", buf);
	with_commas(frozen, buf, sizeof(buf));
	fprintf(out, "Non-trainable params: %s\n", buf);
	rule(out, lay, '_');
}

/* Persistent state is never trained; a frozen layer's weights neither. */
static void count(const strata_model *model, size_t i, uint64_t *trainable, uint64_t *frozen)
{
	const struct strata_layer *layer = &model->layers[i];
	if (layer->shares >= 0)
		return;
	for (uint32_t w = 0; w < layer->n_weights; w++) {
		if (layer->trainable && !layer->weights[w].state)
			*trainable += layer->weights[w].count;
		else
			*frozen += layer->weights[w].count;
	}
}

static void print_functional(const strata_model *model, FILE *out)
{
	static const char *const header[] = {"Layer (type)", "Output Shape", "Param #", "Connected to"};
	const layout *lay = &functional_layout;
	uint64_t trainable = 0, frozen = 0;
	size_t conn_size = 64 + 64 * (model->n_layers + model->n_inputs);
	char *conn = malloc(conn_size);
	if (!conn)
		return;
	print_row(out, lay, header);
	rule(out, lay, '=');
	for (size_t v = 0; v < model->n_inputs; v++) {
		char name[512], shape[160], list[168];
		snprintf(name, sizeof(name), "%s (InputLayer)", model->inputs[v].name);
		shape_field(&model->inputs[v].shape, shape, sizeof(shape));
		snprintf(list, sizeof(list), "[%s]", shape);
		const char *fields[] = {name, list, "0", "[]"};
		print_row(out, lay, fields);
		fprintf(out, "\n");
	}
	for (size_t o = 0; o < model->n_layers; o++) {
		size_t i = model->order[o];
		const struct strata_layer *layer = &model->layers[i];
		if (layer->shares >= 0)
			continue; /* shown with the layer whose weights it calls */
		const char *cls = layer->distributed              ? "TimeDistributed"
		                  : layer->type->ops.class_name ? layer->type->ops.class_name
		                                                : layer->type->ops.type;
		char name[512], shape[160], params[32];
		snprintf(name, sizeof(name), "%s (%s)", layer->name, cls);
		shape_field(&layer->out, shape, sizeof(shape));
		for (size_t j = 0; j < model->n_layers; j++) {
			const strata_shape *a = &model->layers[j].out;
			if (model->layers[j].shares == (int64_t)i &&
			    (a->rank != layer->out.rank || memcmp(a->dims, layer->out.dims, a->rank * sizeof(a->dims[0]))))
				snprintf(shape, sizeof(shape), "multiple");
		}
		snprintf(params, sizeof(params), "%" PRIu64, strata_model_param_count(model, i));
		connections(model, i, conn, conn_size);
		const char *fields[] = {name, shape, params, conn};
		print_row(out, lay, fields);
		fprintf(out, "\n");
		count(model, i, &trainable, &frozen);
	}
	free(conn);
	print_params(out, lay, trainable, frozen);
}

/* After Keras' table (kept as Keras prints it), where each layer came from, when any says
 * (`source:`, written by strata import): "conv1  <-  Conv 'conv1'". */
static void print_sources(const strata_model *model, FILE *out)
{
	size_t width = 0;
	for (size_t i = 0; i < model->n_layers; i++)
		if (model->layers[i].source && strlen(model->layers[i].name) > width)
			width = strlen(model->layers[i].name);
	if (!width)
		return;
	fprintf(out, "Layer sources:\n");
	for (size_t i = 0; i < model->n_layers; i++)
		if (model->layers[i].source)
			fprintf(out, "  %-*s  <-  %s\n", (int)width, model->layers[i].name, model->layers[i].source);
}

void strata_model_print_summary(const strata_model *model, FILE *out)
{
	static const char *const header[] = {"Layer (type)", "Output Shape", "Param #"};
	uint64_t trainable = 0, frozen = 0;
	if (!model || !out)
		return;
	fprintf(out, "Model: \"%s\"\n", model->name);
	const layout *lay = model->functional ? &functional_layout : &sequential_layout;
	rule(out, lay, '_');
	if (model->functional) {
		print_functional(model, out);
		print_sources(model, out);
		return;
	}
	print_row(out, lay, header);
	rule(out, lay, '=');
	for (size_t i = 0; i < model->n_layers; i++) {
		const struct strata_layer *layer = &model->layers[i];
		const char *cls = layer->distributed              ? "TimeDistributed"
		                  : layer->type->ops.class_name ? layer->type->ops.class_name
		                                                : layer->type->ops.type;
		char name[512], shape[160], params[32];
		uint64_t n = strata_model_param_count(model, i);
		snprintf(name, sizeof(name), "%s (%s)", layer->name, cls);
		shape_field(&layer->out, shape, sizeof(shape));
		snprintf(params, sizeof(params), "%" PRIu64, n);
		const char *fields[] = {name, shape, params};
		print_row(out, lay, fields);
		fprintf(out, "\n");
		count(model, i, &trainable, &frozen);
	}
	print_params(out, lay, trainable, frozen);
	print_sources(model, out);
}
