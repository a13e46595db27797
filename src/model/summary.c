/* model.summary() as Keras 2 (2.11) prints it for a Sequential model: 65 columns, fields ending
 * at columns 29, 55 and 65, a too-long field continued on the next line, a blank line after each
 * layer. Trailing blanks are left off. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "model/model.h"

#define LINE_LENGTH 65
#define N_COLS 3

static const int positions[N_COLS] = {29, 55, 65};

/* Keras' print_row(): each field gets its column less two spaces of gap (and one more for the
 * leading blank, except in the last column); what does not fit goes on the following lines. */
static void print_row(FILE *out, const char *const fields[N_COLS])
{
	static const char *const breaks[] = {"),", "},", "],", "',"};
	const char *left[N_COLS];
	for (int c = 0; c < N_COLS; c++)
		left[c] = fields[c];
	while (*left[0] || *left[1] || *left[2]) {
		char line[LINE_LENGTH * 2 + 8];
		size_t len = 0;
		for (int c = 0; c < N_COLS; c++) {
			int start = c ? positions[c - 1] : 0;
			int space = c != N_COLS - 1 ? 2 : 0;
			size_t cutoff = (size_t)(positions[c] - start - space - (c != N_COLS - 1 ? 1 : 0));
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

static void rule(FILE *out, char c)
{
	char line[LINE_LENGTH + 1];
	memset(line, c, LINE_LENGTH);
	line[LINE_LENGTH] = '\0';
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

void strata_model_print_summary(const strata_model *model, FILE *out)
{
	static const char *const header[N_COLS] = {"Layer (type)", "Output Shape", "Param #"};
	uint64_t trainable = 0, frozen = 0;
	char buf[32];
	if (!model || !out)
		return;
	fprintf(out, "Model: \"%s\"\n", model->name);
	rule(out, '_');
	print_row(out, header);
	rule(out, '=');
	for (size_t i = 0; i < model->n_layers; i++) {
		const struct strata_layer *layer = &model->layers[i];
		const char *cls =
		        layer->type->ops.class_name ? layer->type->ops.class_name : layer->type->ops.type;
		char name[512], shape[160], params[32];
		uint64_t count = strata_model_param_count(model, i);
		snprintf(name, sizeof(name), "%s (%s)", layer->name, cls);
		shape_field(&layer->out, shape, sizeof(shape));
		snprintf(params, sizeof(params), "%" PRIu64, count);
		const char *fields[N_COLS] = {name, shape, params};
		print_row(out, fields);
		fprintf(out, "\n");
		if (layer->trainable)
			trainable += count;
		else
			frozen += count;
	}
	rule(out, '=');
	with_commas(trainable + frozen, buf, sizeof(buf));
	fprintf(out, "Total params: %s\n", buf);
	with_commas(trainable, buf, sizeof(buf));
	fprintf(out, "Trainable params: %s\n", buf);
	with_commas(frozen, buf, sizeof(buf));
	fprintf(out, "Non-trainable params: %s\n", buf);
	rule(out, '_');
}
