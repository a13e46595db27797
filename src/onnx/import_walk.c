/* ONNX import: the walk over the graph. Nodes are taken in the file's order (ONNX keeps them
 * topologically sorted); a node reading a value no earlier node made means a cyclic or unsorted
 * graph and stops the import. A node that cannot be mapped is listed and the walk goes on,
 * skipping what depends on it, so the user sees every refusal at once; then nothing is written
 * (import_write.c). */
#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "onnx/onnx_import.h"

/* ---- Graph inputs -------------------------------------------------------------------------- */

/* Operators whose input 0 has a channel axis after the batch: an input read by one is stored
 * channels-last. */
static bool spatial_op(const char *op)
{
	static const char *const ops[] = {"Conv", "ConvTranspose", "MaxPool", "AveragePool", "GlobalAveragePool",
	                                  "GlobalMaxPool", "BatchNormalization", "Resize", "Upsample", "Pad",
	                                  "InstanceNormalization", "LpPool", "PRelu"};
	for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]); i++)
		if (!strcmp(op, ops[i]))
			return true;
	return false;
}

static bool read_by_spatial_op(const Onnx__GraphProto *g, const char *name)
{
	for (size_t i = 0; i < g->n_node; i++)
		if (g->node[i]->n_input && g->node[i]->input[0] && !strcmp(g->node[i]->input[0], name) &&
		    g->node[i]->op_type && spatial_op(g->node[i]->op_type))
			return true;
	return false;
}

static bool read_as_time_first(const Onnx__GraphProto *g, const char *name)
{
	for (size_t i = 0; i < g->n_node; i++) {
		const Onnx__NodeProto *n = g->node[i];
		if (n->n_input && n->input[0] && !strcmp(n->input[0], name) && n->op_type &&
		    (!strcmp(n->op_type, "LSTM") || !strcmp(n->op_type, "GRU") || !strcmp(n->op_type, "RNN")) &&
		    !st_onnx_attr_int(n, "layout", 0))
			return true;
	}
	return false;
}

static strata_status add_input(st_onnx_import *imp, const Onnx__ValueInfoProto *vi, strata_error *err)
{
	const char *path = imp->file->path;
	const char *name = vi->name ? vi->name : "";
	if (!vi->type || vi->type->value_case != ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE || !vi->type->tensor_type ||
	    !vi->type->tensor_type->shape)
		return st_fail(err, STRATA_ERR_UNSUPPORTED, "%s: graph input '%s' is not a tensor of known rank", path, name);
	const Onnx__TypeProto__Tensor *tt = vi->type->tensor_type;
	const Onnx__TensorShapeProto *sh = tt->shape;
	int32_t et = tt->has_elem_type ? tt->elem_type : 0;
	bool ids = et == ONNX__TENSOR_PROTO__DATA_TYPE__INT64 || et == ONNX__TENSOR_PROTO__DATA_TYPE__INT32;
	if (!ids && et != ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT)
		return st_fail(err, STRATA_ERR_UNSUPPORTED, "%s: graph input '%s' holds elements of ONNX type %d: Strata "
		               "reads float inputs and integer ids", path, name, et);
	if (sh->n_dim < 2 || sh->n_dim - 1 > STRATA_MAX_RANK)
		return st_fail(err, STRATA_ERR_UNSUPPORTED, "%s: graph input '%s' has rank %zu: Strata's inputs are a batch "
		               "of 1 to %d axes", path, name, sh->n_dim, STRATA_MAX_RANK);
	imp_value *v;
	strata_status st = imp_new_value(imp, name, &v, err);
	if (st)
		return st;
	v->state = IMP_TENSOR;
	v->layer = -1;
	v->rank = (uint32_t)sh->n_dim;
	v->ids = ids;
	/* Images (N, C, H, W) are stored channels-last; a 3-D input only when an operator with a
	 * channel axis reads it (else it is a sequence). */
	if (v->rank == 4 || (v->rank >= 3 && read_by_spatial_op(imp->file->model->graph, name))) {
		imp_perm_channels_last(v->perm, v->rank);
	} else if (v->rank == 3 && read_as_time_first(imp->file->model->graph, name)) {
		/* A recurrent node's X, time first: Strata's batch is its axis 1. */
		v->perm[0] = 1;
		v->perm[1] = 0;
		v->perm[2] = 2;
	} else {
		imp_perm_identity(v->perm, v->rank);
	}
	/* Every axis but the batch (Strata's first) has a fixed size. */
	int64_t per_sample = 1;
	for (size_t d = 0; d < sh->n_dim; d++) {
		const Onnx__TensorShapeProto__Dimension *dim = sh->dim[d];
		bool known = dim->value_case == ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE;
		if (d != v->perm[0] && (!known || dim->dim_value < 1 || dim->dim_value > INT32_MAX))
			return st_fail(err, STRATA_ERR_UNSUPPORTED, "%s: graph input '%s': axis %zu has no fixed size in 1 to "
			               "2^31 - 1: Strata's models have fixed sample shapes", path, name, d);
		v->dims[d] = known ? dim->dim_value : -1;
		if (d != v->perm[0] && (per_sample *= v->dims[d]) > INT32_MAX)
			return st_fail(err, STRATA_ERR_UNSUPPORTED, "%s: graph input '%s' has more than 2^31 - 1 values a "
			               "sample", path, name);
	}
	imp_io *io = &imp->inputs[imp->n_inputs];
	memset(io, 0, sizeof(*io));
	snprintf(io->name, sizeof(io->name), "%s", name);
	imp_make_name(imp, name, io->ref, sizeof(io->ref));
	snprintf(v->ref, sizeof(v->ref), "%s", io->ref);
	io->rank = v->rank;
	memcpy(io->dims, v->dims, sizeof(io->dims));
	memcpy(io->perm, v->perm, sizeof(io->perm));
	io->ids = ids;
	imp->n_inputs++;
	return STRATA_OK;
}

static strata_status read_graph_inputs(st_onnx_import *imp, strata_error *err)
{
	const Onnx__GraphProto *g = imp->file->model->graph;
	strata_status st;
	for (size_t i = 0; i < g->n_initializer; i++) {
		const Onnx__TensorProto *t = g->initializer[i];
		char what[IMP_NAME + 32];
		snprintf(what, sizeof(what), "%s: initializer '%s'", imp->file->path, t->name ? t->name : "");
		imp_value *v;
		if ((st = imp_new_value(imp, t->name ? t->name : "", &v, err)))
			return st;
		if ((st = st_onnx_tensor(t, imp->file->folder, what, &v->c, err)))
			return st;
		v->state = IMP_CONST;
	}
	if (!(imp->inputs = calloc(g->n_input + 1, sizeof(*imp->inputs))))
		return st_fail(err, STRATA_ERR_NO_MEMORY, "out of memory");
	for (size_t i = 0; i < g->n_input; i++) {
		/* Before IR version 4 initializers are listed as inputs too: they are constants. */
		if (g->input[i]->name && imp_find(imp, g->input[i]->name))
			continue;
		if ((st = add_input(imp, g->input[i], err)))
			return st;
	}
	if (!imp->n_inputs)
		return st_fail(err, STRATA_ERR_UNSUPPORTED, "%s: the graph has no input that is not a constant", imp->file->path);
	return STRATA_OK;
}

/* ---- The walk ------------------------------------------------------------------------------ */

static strata_status map_node(st_onnx_import *imp, size_t index, strata_error *err)
{
	const Onnx__NodeProto *n = imp->file->model->graph->node[index];
	imp->node = n;
	imp->node_index = index;
	st_onnx_node_label(n, index, imp->label, sizeof(imp->label));
	const char *op = n->op_type ? n->op_type : "";
	/* Outputs may be left empty (an LSTM's Y), but not all of them. */
	bool any_output = false;
	for (size_t i = 0; i < n->n_output; i++)
		any_output |= n->output[i] && n->output[i][0];
	if (!any_output)
		return imp_fail(imp, err, STRATA_ERR_PARSE, "it has no output");
	bool refused_input = false, all_const = true;
	for (size_t i = 0; i < n->n_input; i++) {
		if (!n->input[i] || !n->input[i][0])
			continue;
		imp_value *v = imp_find(imp, n->input[i]);
		if (!v)
			return imp_fail(imp, err, STRATA_ERR_PARSE, "it reads '%s', which no earlier node or input makes: the "
			                "graph is cyclic, not sorted, or incomplete", n->input[i]);
		refused_input |= v->state == IMP_REFUSED;
		all_const &= v->state == IMP_CONST;
	}
	strata_status st;
	if (n->domain && n->domain[0] && strcmp(n->domain, "ai.onnx")) {
		st = imp_refuse(imp, "operators of the domain '%s' are not supported", n->domain);
	} else if (refused_input) {
		st = STRATA_ERR_UNSUPPORTED; /* follows from a refusal listed already */
	} else if (all_const && imp_foldable(op)) {
		st = imp_fold(imp, err);
	} else {
		imp_mapper map = imp_mapper_for(op);
		st = map ? map(imp, err) : imp_refuse(imp, "no Strata layer does %s", op[0] ? op : "an empty op_type");
	}
	if (st != STRATA_ERR_UNSUPPORTED)
		return st;
	/* Its outputs are unknown: what reads them is skipped, not listed. */
	for (size_t i = 0; i < n->n_output; i++) {
		imp_value *v;
		if (!n->output[i] || !n->output[i][0] || imp_find(imp, n->output[i]))
			continue;
		if ((st = imp_new_value(imp, n->output[i], &v, err)))
			return st;
		v->state = IMP_REFUSED;
	}
	return STRATA_OK;
}

static strata_status read_graph_outputs(st_onnx_import *imp, strata_error *err)
{
	const Onnx__GraphProto *g = imp->file->model->graph;
	if (!g->n_output)
		return st_fail(err, STRATA_ERR_PARSE, "%s: the graph has no output", imp->file->path);
	if (!(imp->outputs = calloc(g->n_output, sizeof(*imp->outputs))))
		return st_fail(err, STRATA_ERR_NO_MEMORY, "out of memory");
	snprintf(imp->label, sizeof(imp->label), "graph output");
	for (size_t i = 0; i < g->n_output; i++) {
		const char *name = g->output[i]->name ? g->output[i]->name : "";
		imp_value *v = imp_find(imp, name);
		snprintf(imp->label, sizeof(imp->label), "graph output '%s'", name);
		if (!v)
			return st_fail(err, STRATA_ERR_PARSE, "%s: graph output '%s' is made by no node", imp->file->path, name);
		if (v->state == IMP_REFUSED)
			continue;
		if (v->state == IMP_CONST) {
			imp_refuse(imp, "a constant output: Strata's outputs are layers");
			continue;
		}
		imp_io *io = &imp->outputs[imp->n_outputs++];
		snprintf(io->name, sizeof(io->name), "%s", name);
		char ref[IMP_NAME];
		strata_status st = v->flat_rank ? imp_as_onnx(imp, v, ref, err) : STRATA_OK;
		if (st == STRATA_ERR_UNSUPPORTED)
			continue;
		if (st)
			return st;
		if (!v->flat_rank)
			snprintf(ref, sizeof(ref), "%s", v->ref);
		bool is_input = false;
		for (size_t k = 0; k < imp->n_inputs; k++)
			is_input |= !strcmp(imp->inputs[k].ref, ref);
		if (is_input) {
			imp_refuse(imp, "the output is a graph input itself: Strata's outputs are layers");
			continue;
		}
		snprintf(io->ref, sizeof(io->ref), "%s", ref);
		io->rank = v->rank;
		memcpy(io->dims, v->dims, sizeof(io->dims));
		if (v->flat_rank)
			imp_perm_identity(io->perm, v->rank);
		else
			memcpy(io->perm, v->perm, sizeof(io->perm));
	}
	return STRATA_OK;
}

void st_onnx_import_free(st_onnx_import *imp)
{
	if (!imp)
		return;
	for (size_t i = 0; i < imp->n_values; i++) {
		free(imp->values[i].name);
		st_onnx_const_free(&imp->values[i].c);
	}
	free(imp->values);
	for (size_t i = 0; i < imp->n_layers; i++) {
		free(imp->layers[i].yaml);
		free(imp->layers[i].source);
		for (uint32_t w = 0; w < imp->layers[i].n_weights; w++)
			free(imp->layers[i].weights[w].data);
	}
	free(imp->layers);
	free(imp->inputs);
	free(imp->outputs);
	free(imp->refused);
	free(imp->done);
	st_onnx_close(imp->file);
	free(imp);
}

strata_status st_onnx_import_graph(const char *onnx_path, st_onnx_import **out, strata_error *err)
{
	*out = NULL;
	st_onnx_import *imp = calloc(1, sizeof(*imp));
	if (!imp)
		return st_fail(err, STRATA_ERR_NO_MEMORY, "out of memory");
	strata_status st = st_onnx_open(onnx_path, &imp->file, err);
	if (!st)
		st = read_graph_inputs(imp, err);
	const Onnx__GraphProto *g = st ? NULL : imp->file->model->graph;
	if (!st && !(imp->done = calloc(g->n_node + 1, sizeof(bool))))
		st = st_fail(err, STRATA_ERR_NO_MEMORY, "out of memory");
	for (size_t i = 0; !st && i < g->n_node; i++)
		if (!imp->done[i])
			st = map_node(imp, i, err);
	if (!st)
		st = read_graph_outputs(imp, err);
	if (!st && imp->n_refused)
		st = st_fail(err, STRATA_ERR_UNSUPPORTED, "%s: %zu node%s cannot be imported:\n%.*s", onnx_path,
		             imp->n_refused, imp->n_refused == 1 ? "" : "s",
		             (int)(imp->refused_len && imp->refused[imp->refused_len - 1] == '\n' ? imp->refused_len - 1
		                                                                                : imp->refused_len),
		             imp->refused ? imp->refused : "");
	if (st && st != STRATA_ERR_UNSUPPORTED) {
		st_onnx_import_free(imp);
		return st;
	}
	*out = imp;
	return st;
}
