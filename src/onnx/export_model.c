/* ONNX export: a model and its weights as an ONNX file (opset 17). The layers are taken in the
 * model's order; each emits its nodes (export_layers.c); a layer with no ONNX form is listed and
 * the walk goes on, so that every refusal is reported at once and nothing is written. The file is
 * written atomically. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "base/fsutil.h"
#include "onnx/export.h"

#define EXPORT_OPSET 17

/* ---- The model ----------------------------------------------------------------------------- */

static Onnx__ValueInfoProto *value_info(const char *name, const strata_shape *shape, bool cf)
{
	Onnx__ValueInfoProto *vi = malloc(sizeof(*vi));
	Onnx__TypeProto *tp = malloc(sizeof(*tp));
	Onnx__TypeProto__Tensor *tt = malloc(sizeof(*tt));
	Onnx__TensorShapeProto *sh = malloc(sizeof(*sh));
	uint32_t r = shape->rank + 1;
	Onnx__TensorShapeProto__Dimension **dims = calloc(r, sizeof(*dims));
	if (!vi || !tp || !tt || !sh || !dims) {
		free(vi);
		free(tp);
		free(tt);
		free(sh);
		free(dims);
		return NULL;
	}
	onnx__value_info_proto__init(vi);
	onnx__type_proto__init(tp);
	onnx__type_proto__tensor__init(tt);
	onnx__tensor_shape_proto__init(sh);
	vi->name = strdup(name);
	vi->type = tp;
	tp->value_case = ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE;
	tp->tensor_type = tt;
	tt->has_elem_type = true;
	tt->elem_type = shape->dtype == STRATA_DTYPE_INT32 ? ONNX__TENSOR_PROTO__DATA_TYPE__INT32
	                                                   : ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT;
	tt->shape = sh;
	sh->dim = dims;
	for (uint32_t k = 0; k < r; k++) {
		Onnx__TensorShapeProto__Dimension *d = malloc(sizeof(*d));
		if (!d)
			break;
		onnx__tensor_shape_proto__dimension__init(d);
		dims[k] = d;
		sh->n_dim++;
		if (k == 0) {
			d->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM;
			d->dim_param = strdup("batch");
		} else {
			uint32_t a = cf && r >= 3 ? (k == 1 ? r - 2 : k - 2) : k - 1;
			d->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE;
			d->dim_value = shape->dims[a];
		}
	}
	return vi;
}

static bool is_image(const strata_shape *s)
{
	return s->rank == 3 && s->dtype != STRATA_DTYPE_INT32;
}

static void free_export(st_onnx_export *ex, Onnx__ModelProto *model)
{
	if (ex->values) {
		size_t n = ex->m->n_inputs + ex->m->n_layers;
		for (size_t i = 0; i < n; i++) {
			free(ex->values[i].cl);
			free(ex->values[i].cf);
			for (int k = 0; k < 3; k++)
				free(ex->values[i].parts[k]);
		}
	}
	free(ex->values);
	free(ex->refused);
	st_checkpoint_close(ex->weights);
	if (model)
		onnx__model_proto__free_unpacked(model, NULL);
}

strata_status strata_onnx_export(const strata_model *m, const char *weights_path, const char *onnx_path,
                                 strata_error *err)
{
	if (!m || !weights_path || !onnx_path)
		return st_fail(err, STRATA_ERR_INVALID, "strata_onnx_export: model, weights and output path are required");
	st_onnx_export ex = {.m = m, .weights_path = weights_path};
	strata_status st = st_checkpoint_open(weights_path, &ex.weights, err);
	if (st)
		return st;
	Onnx__ModelProto *model = malloc(sizeof(*model));
	Onnx__GraphProto *g = malloc(sizeof(*g));
	Onnx__OperatorSetIdProto *opset = malloc(sizeof(*opset));
	Onnx__OperatorSetIdProto **opsets = calloc(1, sizeof(*opsets));
	ex.values = calloc(m->n_inputs + m->n_layers + 1, sizeof(*ex.values));
	if (!model || !g || !opset || !opsets || !ex.values) {
		free(model);
		free(g);
		free(opset);
		free(opsets);
		free_export(&ex, NULL);
		return st_fail(err, STRATA_ERR_NO_MEMORY, "out of memory");
	}
	onnx__model_proto__init(model);
	onnx__graph_proto__init(g);
	onnx__operator_set_id_proto__init(opset);
	model->has_ir_version = true;
	model->ir_version = 8; /* opset 17's */
	model->producer_name = strdup("strata");
	model->producer_version = strdup(strata_version_string());
	opset->domain = strdup("");
	opset->has_version = true;
	opset->version = EXPORT_OPSET;
	opsets[0] = opset;
	model->opset_import = opsets;
	model->n_opset_import = 1;
	model->graph = g;
	ex.g = g;
	g->name = strdup(m->name);
	g->input = calloc(m->n_inputs + 1, sizeof(*g->input));
	g->output = calloc(m->n_outputs + 1, sizeof(*g->output));
	if (!g->input || !g->output || !g->name || !model->producer_name) {
		st = st_fail(err, STRATA_ERR_NO_MEMORY, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < m->n_inputs; i++) {
		ex_value *v = &ex.values[i];
		v->shape = m->inputs[i].shape;
		bool cf = is_image(&v->shape);
		char *name = strdup(m->inputs[i].name);
		if (cf)
			v->cf = name;
		else
			v->cl = name;
		if (!name || !(g->input[g->n_input++] = value_info(name, &v->shape, cf))) {
			st = st_fail(err, STRATA_ERR_NO_MEMORY, "out of memory");
			goto out;
		}
	}
	for (size_t k = 0; k < m->n_layers; k++) {
		const strata_layer *l = &m->layers[m->order[k]];
		ex.layer = l;
		ex.values[m->n_inputs + l->index].shape = l->out;
		bool ready = true;
		for (uint32_t i = 0; i < l->n_inputs; i++)
			ready &= ex.values[l->inputs[i]].cl || ex.values[l->inputs[i]].cf;
		if (!ready)
			continue; /* after a refused layer */
		st = ex_emit_layer(&ex, err);
		if (st && st != STRATA_ERR_UNSUPPORTED)
			goto out;
	}
	ex.layer = NULL;
	if (ex.n_refused) {
		st = st_fail(err, STRATA_ERR_UNSUPPORTED, "%s: %zu layer%s cannot be exported to ONNX:\n%.*s", m->file,
		             ex.n_refused, ex.n_refused == 1 ? "" : "s", (int)(ex.refused_len ? ex.refused_len - 1 : 0),
		             ex.refused ? ex.refused : "");
		goto out;
	}
	/* The outputs under their layers' names, images channels-first. */
	for (size_t k = 0; k < m->n_outputs; k++) {
		uint32_t v = (uint32_t)(m->n_inputs + m->outputs[k]);
		bool cf = is_image(&ex.values[v].shape);
		const char *from = cf ? ex_cf(&ex, v) : ex_cl(&ex, v);
		char *name = strdup(m->layers[m->outputs[k]].name);
		Onnx__NodeProto *n = from && name ? ex_node(&ex, "Identity", &from, 1, &name, 1) : NULL;
		if (!n || !(g->output[g->n_output++] = value_info(name, &ex.values[v].shape, cf))) {
			st = st_fail(err, STRATA_ERR_NO_MEMORY, "out of memory");
			goto out;
		}
	}
	size_t size = onnx__model_proto__get_packed_size(model);
	uint8_t *buf = malloc(size + 1);
	if (!buf) {
		st = st_fail(err, STRATA_ERR_NO_MEMORY, "out of memory for %zu bytes", size);
		goto out;
	}
	onnx__model_proto__pack(model, buf);
	st = st_write_file_atomic(onnx_path, buf, size, err);
	free(buf);
out:
	free_export(&ex, model);
	return st;
}
