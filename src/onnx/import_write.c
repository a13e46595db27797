/* The files an import writes: the model file (YAML: inputs in Strata's layout, one flow mapping
 * per layer with the ONNX node it came from as its `source`, the outputs) and its weights. The
 * model text is loaded back through the loader first, so every layer's parameters and shapes are
 * checked by the loader and the plugins, and each weight the importer made must have the shape
 * its layer declares; only then are the weights and the model written (each atomically). */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "base/fsutil.h"
#include "exec/checkpoint.h"
#include "model/model.h"
#include "onnx/onnx_import.h"

struct strata_onnx_import_result {
	char *refusals;
	imp_io *io[2];
	size_t n_io[2];
};

typedef struct text {
	char *s;
	size_t len, cap;
	bool failed;
} text;

static void put(text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(text *t, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0 || t->failed)
		return;
	if (t->len + (size_t)n + 1 > t->cap) {
		size_t cap = (t->cap + (size_t)n + 1) * 2;
		char *s = realloc(t->s, cap);
		if (!s) {
			t->failed = true;
			return;
		}
		t->s = s;
		t->cap = cap;
	}
	va_start(ap, fmt);
	vsnprintf(t->s + t->len, t->cap - t->len, fmt, ap);
	va_end(ap);
	t->len += (size_t)n;
}

/* A YAML double-quoted scalar of arbitrary bytes. */
static void put_quoted(text *t, const char *s)
{
	put(t, "\"");
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (*p == '"' || *p == '\\')
			put(t, "\\%c", *p);
		else if (*p < 0x20 || *p >= 0x7f)
			put(t, "\\x%02x", *p);
		else
			put(t, "%c", *p);
	}
	put(t, "\"");
}

static void layout_text(const imp_io *io, char *buf, size_t size)
{
	static const char *const axis_names = "NCDHW";
	size_t len = 0;
	for (uint32_t k = 0; k < io->rank && len < size; k++) {
		uint32_t a = io->perm[k];
		char c = io->rank >= 3 && io->rank <= 5 ? axis_names[a == 0 ? 0 : a == 1 ? 1 : a + 5 - io->rank] : '?';
		len += (size_t)snprintf(buf + len, size - len, "%s%c", k ? "" : "", io->rank >= 3 ? c : (char)('0' + a));
	}
}

static void model_text(const st_onnx_import *imp, const char *name, text *t)
{
	const Onnx__ModelProto *m = imp->file->model;
	put(t, "# Imported by `strata import` from %s", imp->file->path);
	if (m->producer_name && m->producer_name[0])
		put(t, " (made by %s%s%s)", m->producer_name, m->producer_version && m->producer_version[0] ? " " : "",
		    m->producer_version ? m->producer_version : "");
	put(t, ", ONNX opset %lld.\n", (long long)imp->file->opset);
	put(t, "# Tensors are channels-last here; inputs and outputs against ONNX's axes:\n");
	for (int o = 0; o < 2; o++) {
		const imp_io *ios = o ? imp->outputs : imp->inputs;
		size_t n = o ? imp->n_outputs : imp->n_inputs;
		for (size_t i = 0; i < n; i++) {
			char dims[96], layout[16];
			imp_dims_text(ios[i].dims, ios[i].rank, dims, sizeof(dims));
			layout_text(&ios[i], layout, sizeof(layout));
			bool same = true;
			for (uint32_t k = 0; k < ios[i].rank; k++)
				same &= ios[i].perm[k] == k;
			put(t, "#   %s %s: ONNX %s, %s\n", o ? "output" : "input", ios[i].ref, dims,
			    same ? "same axis order" : ios[i].rank >= 3 ? "stored as " : "axes stored in the order ");
			if (!same)
				t->len--, put(t, "%s\n", layout);
		}
	}
	put(t, "# To train it (fine-tuning), add loss, optimizer, metrics, data and training as in any model file.\n");
	put(t, "name: ");
	put_quoted(t, name);
	put(t, "\ninputs:\n");
	for (size_t i = 0; i < imp->n_inputs; i++) {
		const imp_io *io = &imp->inputs[i];
		int64_t dims[ST_ONNX_MAX_RANK];
		for (uint32_t k = 1; k < io->rank; k++)
			dims[k - 1] = io->dims[io->perm[k]];
		char text_dims[96];
		imp_dims_text(dims, io->rank - 1, text_dims, sizeof(text_dims));
		put(t, "  - {name: %s, shape: %s%s}\n", io->ref, text_dims, io->ids ? ", dtype: int32" : "");
	}
	put(t, "layers:\n");
	for (size_t i = 0; i < imp->n_layers; i++) {
		put(t, "  - {%s, source: ", imp->layers[i].yaml);
		put_quoted(t, imp->layers[i].source);
		put(t, "}\n");
	}
	put(t, "outputs: [");
	for (size_t i = 0; i < imp->n_outputs; i++)
		put(t, "%s%s", i ? ", " : "", imp->outputs[i].ref);
	put(t, "]\n");
}

/* The weights in the loaded model's order, each checked against its declaration. */
static strata_status gather_weights(const st_onnx_import *imp, const strata_model *m, st_named_tensor **out,
                                    size_t *n_out, strata_error *err)
{
	size_t n = 0;
	for (size_t i = 0; i < m->n_layers; i++)
		n += m->layers[i].n_weights;
	st_named_tensor *t = calloc(n + 1, sizeof(*t));
	if (!t)
		return st_fail(err, STRATA_ERR_NO_MEMORY, "out of memory");
	size_t k = 0;
	for (size_t i = 0; i < m->n_layers; i++) {
		const strata_layer *l = &m->layers[i];
		const imp_layer *il = NULL;
		for (size_t j = 0; j < imp->n_layers && !il; j++)
			if (!strcmp(imp->layers[j].name, l->name))
				il = &imp->layers[j];
		if (!il && !l->n_weights)
			continue; /* a part the loader adds (a recurrent layer's NAME_state_h) */
		if (!il || il->n_weights != l->n_weights) {
			free(t);
			return st_fail(err, STRATA_ERR_INVALID, "import of %s: layer %s declares %u weights, the importer made %u "
			               "(a bug in strata import)", imp->file->path, l->name, l->n_weights,
			               il ? il->n_weights : 0);
		}
		for (uint32_t w = 0; w < l->n_weights; w++, k++) {
			const strata_shape *a = &l->weights[w].shape, *b = &il->weights[w].shape;
			bool same = a->rank == b->rank;
			for (uint32_t d = 0; same && d < a->rank; d++)
				same = a->dims[d] == b->dims[d];
			if (!same) {
				free(t);
				return st_fail(err, STRATA_ERR_INVALID, "import of %s: layer %s's %s has another shape than the "
				               "importer made (a bug in strata import)", imp->file->path, l->name,
				               l->weights[w].name);
			}
			snprintf(t[k].name, sizeof(t[k].name), "%s/%s", l->name, l->weights[w].name);
			t[k].kind = ST_TENSOR_WEIGHT;
			t[k].shape = *a;
			t[k].count = l->weights[w].count;
			t[k].host = il->weights[w].data;
		}
	}
	*out = t;
	*n_out = n;
	return STRATA_OK;
}

static char *default_weights_path(const char *model_path)
{
	size_t len = strlen(model_path);
	const char *slash = strrchr(model_path, '/');
	const char *dot = strrchr(model_path, '.');
	if (dot && (!slash || dot > slash) && dot != model_path && (!slash || dot > slash + 1))
		len = (size_t)(dot - model_path);
	char *p = malloc(len + 5);
	if (p)
		snprintf(p, len + 5, "%.*s.stw", (int)len, model_path);
	return p;
}

static char *base_name(const char *path)
{
	const char *slash = strrchr(path, '/');
	const char *b = slash ? slash + 1 : path;
	const char *dot = strrchr(b, '.');
	size_t len = dot && dot != b ? (size_t)(dot - b) : strlen(b);
	char *s = malloc(len + 1);
	if (s)
		snprintf(s, len + 1, "%.*s", (int)len, b);
	return s;
}

static strata_status keep_result(st_onnx_import *imp, strata_onnx_import_result **result)
{
	if (!result)
		return STRATA_OK;
	strata_onnx_import_result *r = calloc(1, sizeof(*r));
	if (!r)
		return STRATA_ERR_NO_MEMORY;
	r->refusals = imp->refused ? imp->refused : strdup("");
	imp->refused = NULL;
	r->io[0] = imp->inputs;
	r->n_io[0] = imp->n_inputs;
	r->io[1] = imp->outputs;
	r->n_io[1] = imp->n_outputs;
	imp->inputs = imp->outputs = NULL;
	*result = r;
	return r->refusals ? STRATA_OK : STRATA_ERR_NO_MEMORY;
}

strata_status strata_onnx_import(strata_registry *reg, const char *onnx_path, const strata_onnx_import_options *options,
                                 strata_onnx_import_result **result, strata_error *err)
{
	if (result)
		*result = NULL;
	if (!reg || !onnx_path || !options || options->size < sizeof(*options) || !options->model_path)
		return st_fail(err, STRATA_ERR_INVALID, "strata_onnx_import: registry, file, options and model_path are required");
	st_onnx_import *imp = NULL;
	strata_status st = st_onnx_import_graph(onnx_path, &imp, err);
	if (st) {
		if (imp && keep_result(imp, result))
			st = st_fail(err, STRATA_ERR_NO_MEMORY, "out of memory");
		st_onnx_import_free(imp);
		return st;
	}
	char *weights_path = options->weights_path ? strdup(options->weights_path)
	                                           : default_weights_path(options->model_path);
	char *name = options->name ? strdup(options->name) : base_name(options->model_path);
	text t = {0};
	strata_model *m = NULL;
	st_named_tensor *tensors = NULL;
	size_t n = 0;
	if (!weights_path || !name) {
		st = st_fail(err, STRATA_ERR_NO_MEMORY, "out of memory");
		goto out;
	}
	model_text(imp, name, &t);
	if (t.failed) {
		st = st_fail(err, STRATA_ERR_NO_MEMORY, "out of memory");
		goto out;
	}
	if ((st = strata_model_load_string(reg, t.s, t.len, options->model_path, NULL, &m, err)))
		goto out;
	if ((st = gather_weights(imp, m, &tensors, &n, err)))
		goto out;
	st_checkpoint_info info = {0};
	snprintf(info.model, sizeof(info.model), "%s", name);
	if ((st = st_checkpoint_save(NULL, weights_path, &info, tensors, n, err)) ||
	    (st = st_write_file_atomic(options->model_path, t.s, t.len, err)))
		goto out;
	if (keep_result(imp, result))
		st = st_fail(err, STRATA_ERR_NO_MEMORY, "out of memory");
out:
	free(tensors);
	strata_model_free(m);
	free(t.s);
	free(name);
	free(weights_path);
	st_onnx_import_free(imp);
	return st;
}

const char *strata_onnx_import_refusals(const strata_onnx_import_result *r)
{
	return r && r->refusals ? r->refusals : "";
}

size_t strata_onnx_import_io_count(const strata_onnx_import_result *r, bool outputs)
{
	return r ? r->n_io[outputs ? 1 : 0] : 0;
}

strata_status strata_onnx_import_io(const strata_onnx_import_result *r, bool outputs, size_t i, const char **onnx_name,
                                    const char **strata_name, uint32_t *rank, const int64_t **dims,
                                    const uint32_t **perm)
{
	int o = outputs ? 1 : 0;
	if (!r || i >= r->n_io[o])
		return STRATA_ERR_NOT_FOUND;
	const imp_io *io = &r->io[o][i];
	if (onnx_name)
		*onnx_name = io->name;
	if (strata_name)
		*strata_name = io->ref;
	if (rank)
		*rank = io->rank;
	if (dims)
		*dims = io->dims;
	if (perm)
		*perm = io->perm;
	return STRATA_OK;
}

void strata_onnx_import_result_free(strata_onnx_import_result *r)
{
	if (!r)
		return;
	free(r->refusals);
	free(r->io[0]);
	free(r->io[1]);
	free(r);
}
