/* The in-memory model: layers with validated parameters and inferred shapes. A model is built
 * once from YAML (model_loader.c); a session (session.c) binds it to a device. */
#ifndef ST_MODEL_H
#define ST_MODEL_H

#include <stdbool.h>

#include <strata/plugin.h>
#include <strata/strata.h>

#include "model/recipe.h"
#include "plugin/registry.h"

typedef struct st_weight_decl {
	char *name;
	strata_shape shape;
	char *initializer;
	double l1, l2;
	uint64_t count; /* elements */
	bool state;     /* persistent non-trainable state (host->add_state), not a weight */
	/* Keras' constraint, applied after every optimizer step (exec/optimizer.c): MaxNorm scales
	 * the weight's slices over the axes in `constraint_axes` (bit i: axis i) down to a norm of
	 * max_value at most; NonNeg zeroes negative values. */
	st_constraint constraint;
	double max_value;
	uint32_t constraint_axes;
} st_weight_decl;

struct strata_session;

/* A model input: a value layers name in `inputs:`. Values are numbered model inputs first (0 to
 * n_inputs - 1), then layer outputs (n_inputs + the layer's index). */
typedef struct st_input {
	char *name;
	strata_shape shape; /* with its dtype */
	st_pos pos;
} st_input;

struct strata_layer {
	struct strata_model *model;
	uint32_t index;
	const st_layer_type *type;
	char *name;
	char *source;            /* `source:`, where it came from (an imported model's ONNX node), or NULL */
	st_pos pos;              /* of the layer's mapping in the file */
	st_param_value *params;  /* one per type->ops.n_params, same order */
	bool trainable;
	/* Keras' activity_regularizer: l1 * sum|y| + l2 * sum y^2 of the layer's output over a
	 * batch, divided by the batch size, added to the loss (exec/loss.c) and its gradient to the
	 * output's (exec/backward.c). */
	double activity_l1, activity_l2;
	/* The values it reads (see st_input), in the order of its `inputs:` (its predecessor in the
	 * file when it has none), their shapes, and where they were named. */
	uint32_t n_inputs;
	uint32_t *inputs;
	strata_shape *in_shapes;
	st_pos inputs_pos;
	int64_t shares;          /* the layer whose weights it uses (`shares:`), or -1 */
	st_pos shares_pos;
	uint32_t n_states;       /* of its weights, how many are persistent state (add_state) */
	/* Keras' mask (plugin.h, strata_mask_use): what build() declared for input 0's mask, and the
	 * layer whose output's mask tensor this layer's output carries (itself when it produces one,
	 * input 0's when it passes it on), or -1 for none; mask_elems: its floats per sample. */
	strata_mask_use mask_use;
	int64_t mask_of;
	uint64_t mask_elems;
	/* A layer of several inputs passing masks that differ (a merge): its output carries their
	 * product (Keras' AND), which the session computes into its own mask before the layer runs. */
	bool mask_combine;
	/* Keras' TimeDistributed (model/wrappers.c): the plugin sees one step of its input, whose
	 * first axis of `steps` the host runs as that many more samples (the forward and backward
	 * passes' batch times steps, workspaces per sample times steps). in, in_shapes and out stay the
	 * host's (whole) shapes; the plugin's are step_in_shapes and step_out. */
	bool distributed;
	int64_t steps;
	strata_shape *step_in_shapes;
	strata_shape step_out;
	strata_shape in, out;    /* in: input 0's shape */
	st_weight_decl *weights;
	uint32_t n_weights;
	size_t *workspaces;      /* bytes per sample */
	uint32_t n_workspaces;
	void *priv;              /* the plugin's, through set_private() */

	/* Where plugin errors go while a call into the plugin is in progress. */
	strata_error *err;
	strata_status last_status;
	struct strata_session *session; /* set while bound to a session */
};

struct strata_model {
	strata_registry *reg;
	char *file;        /* as given, used in messages */
	char *base_dir;    /* relative data paths resolve from here */
	char *name;
	st_input *inputs;
	size_t n_inputs;
	strata_shape input; /* input 0's shape */
	st_pos input_pos;
	struct strata_layer *layers;
	size_t n_layers;
	/* The layers in an order where each follows every layer it reads (file order where the file
	 * allows it), the layers whose outputs are the model's (`outputs:`, default the last), and
	 * whether the file used graph keys (a Sequential model prints Keras' Sequential summary). */
	uint32_t *order;
	uint32_t *outputs;
	size_t n_outputs;
	st_pos outputs_pos;
	bool functional;
	char *device;
	/* How it is trained and on what: losses, optimizer, data, training settings (recipe.h). */
	st_recipe recipe;
	strata_serving_config serving; /* the `serving:` section (serving.c) */
	struct strata_session *session; /* the session the model is bound to, if any */
};

/* Parameter lookups shared by the host API and the loader; NULL when the layer type declares no
 * such parameter (a plugin bug, reported by the host API). */
const st_param_value *st_layer_param(const struct strata_layer *layer, const char *name);
const st_param_value *st_section_param(const st_section *section, const char *name);

/* Frees a layer's owned fields (not the struct itself), calling the plugin's destroy(). */
void st_layer_release(struct strata_layer *layer);
/* Elements of one sample of a shape. */
uint64_t st_shape_elems(const strata_shape *shape);
/* A shape as "(28, 28, 1)", truncated to `size`. */
void st_shape_text(const strata_shape *s, char *buf, size_t size);

/* model.c: runs each layer's build() in the model's order from the input shapes on, checking
 * the number and types of inputs the layer type takes and the shapes it returns; then checks
 * that layers sharing weights declared the same ones. */
strata_status st_model_infer_shapes(struct strata_model *model, strata_error *err);

/* The value a layer's output is, and the name and shape of value v. */
static inline uint32_t st_layer_value(const struct strata_model *m, size_t layer)
{
	return (uint32_t)(m->n_inputs + layer);
}
const char *st_value_name(const struct strata_model *m, uint32_t v);
const strata_shape *st_value_shape(const struct strata_model *m, uint32_t v);
/* The batch a layer's plugin is called with for `batch` samples: times its steps when it is
 * distributed (TimeDistributed); the session checks that it fits. */
static inline uint32_t st_layer_batch(const struct strata_layer *l, uint32_t batch)
{
	return l->distributed ? batch * (uint32_t)l->steps : batch;
}
/* The layer whose mask tensor value v carries, or -1 (model inputs carry none). */
int64_t st_value_mask_of(const struct strata_model *m, uint32_t v);

#endif
