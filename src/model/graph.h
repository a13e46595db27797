/* Wiring a loaded model's layers into a graph (graph.c). */
#ifndef ST_GRAPH_H
#define ST_GRAPH_H

#include "model/model.h"
#include "model/yaml_doc.h"

/* What the loader read of the graph keys, per layer: its `inputs:` node (NULL: none), its
 * `shares:` name (NULL: none) and where that stood; and the top-level `outputs:` (NULL: none). */
typedef struct st_graph_spec {
	const st_ynode **layer_inputs;
	const char **shares;
	const st_pos *shares_pos;
	const st_ynode *outputs;
} st_graph_spec;

/* Resolves names to values and layers, orders the layers (refusing a cycle, printed layer by
 * layer) and warns, through the registry's log, of layers and inputs that reach no output.
 * Needs the layers' names and the model's inputs; runs before shapes are inferred. */
strata_status st_graph_resolve(strata_model *m, const st_graph_spec *spec, strata_error *err);

#endif
