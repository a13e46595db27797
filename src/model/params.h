/* Validation of YAML mappings against strata_param tables, for layer parameters (declared by the
 * plugins) and for the model file's own sections (declared here), through the same code. */
#ifndef ST_PARAMS_H
#define ST_PARAMS_H

#include <strata/plugin.h>
#include <strata/strata.h>

#include "model/model.h"
#include "model/yaml_doc.h"

/* A named parameter table. Host tables may declare INTS with count 0: 1 to STRATA_MAX_RANK
 * integers (a shape); plugins always declare a count. */
typedef struct st_schema {
	const char *name;
	const strata_param *params;
	uint32_t n_params;
} st_schema;

/* Declarations whose values are read from one mapping; several groups may share a mapping (a
 * layer's common keys and its type's parameters). */
typedef struct st_param_group {
	const strata_param *decl;
	uint32_t n;
	st_param_value *values; /* n, written by st_params_read */
} st_param_group;

extern const st_schema st_schema_model;         /* top-level scalars: name, device */
extern const st_schema st_schema_input;         /* shape */
extern const st_schema st_schema_data;          /* scale, standardize (keep_labels, files: the recipe's) */
extern const st_schema st_schema_data_file;     /* one value of train/test images/labels, num_classes */
extern const st_schema st_schema_loss;          /* one value of loss, loss_weights */
extern const st_schema st_schema_training;      /* batch_size, epochs, seed, validation_split, shuffle */
extern const st_schema st_schema_serving;       /* strata serve's batching (serving.c) */
extern const st_schema st_schema_layer;         /* keys every layer takes besides `type` and `inputs`: name, trainable, shares, activity_regularizer */
extern const st_schema st_schema_metric;        /* one element of `metrics` */
extern const st_schema st_schema_init_from;     /* init_from's weights (its layers are the loader's) */
extern const st_schema st_schema_keep_label;    /* one element of data's `keep_labels` */
extern const st_schema st_schema_optimizer_type; /* `optimizer: NAME` or the `type` of its mapping */
/* The optimizer's parameters, Keras' names and defaults; NULL for an unknown name. */
const st_schema *st_optimizer_schema(const char *name);
extern const st_schema st_schema_lr_schedule_type; /* the `type` of `learning_rate: {type: ...}` */
/* A learning-rate schedule's parameters (keras.optimizers.schedules); NULL for an unknown name. */
const st_schema *st_lr_schedule_schema(const char *name);

/* Reads mapping `map` (NULL: absent, every value its default) into the groups' values. Keys in
 * `handled` (NULL-terminated, may be NULL) are the caller's: accepted, skipped, and listed first
 * among the accepted keys when a key is unknown. `where` names the mapping in messages ("conv2d
 * layer", "training"); `pos` is where missing required parameters are reported when `map` is
 * NULL. The values hold allocations even on failure: release them with st_params_release(). */
strata_status st_params_read(const char *file, const st_ynode *map, st_pos pos, const char *where,
                             const st_param_group *groups, size_t n_groups, const char *const *handled,
                             strata_error *err);
/* Reads one value (a metric, an optimizer's name) against `decl`. */
strata_status st_param_read_one(const char *file, const strata_param *decl, const st_ynode *node,
                                st_param_value *out, strata_error *err);
void st_params_release(st_param_value *values, uint32_t n);

/* Looks `name` up among n values; NULL when not declared. */
const st_param_value *st_param_find(const st_param_value *values, uint32_t n, const char *name);

#endif
