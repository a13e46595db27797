/* The recipe: how a network is trained and on what — the loss of each output with its weight and
 * metrics, the optimizer, the data files of each input and output, the training settings and
 * init_from. The network (layers, inputs, outputs: model.h, graph.h) knows none of it, so the
 * same network can be trained by another recipe, or imported without one. */
#ifndef ST_RECIPE_H
#define ST_RECIPE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <strata/plugin.h>
#include <strata/strata.h>

/* 1-based position in the model file. */
typedef struct st_pos {
	uint32_t line, col;
} st_pos;

/* A weight constraint (STRATA_PARAM_CONSTRAINT), Keras' names. */
typedef enum st_constraint { ST_CONSTRAINT_NONE = 0, ST_CONSTRAINT_MAX_NORM, ST_CONSTRAINT_NON_NEG } st_constraint;

/* One parameter's value after validation against its strata_param declaration. */
typedef struct st_param_value {
	const strata_param *decl;
	bool from_file; /* false: the declared default */
	st_pos pos;     /* of the value in the file, or of the owning mapping for defaults */
	int64_t i;      /* INT, BOOL (0/1) */
	double f;       /* FLOAT */
	char *s;        /* ENUM, STRING */
	int64_t ints[STRATA_MAX_RANK];
	uint32_t n_ints;
	double l1, l2;  /* REGULARIZER */
	st_constraint constraint; /* CONSTRAINT: the kind; max_value in f, the axes in ints */
	double floats[STRATA_MAX_RANK]; /* FLOATS */
	uint32_t n_floats;
} st_param_value;

/* A non-layer section validated against a parameter table (optimizer, training, data). */
typedef struct st_section {
	char *type;            /* optimizer type, or NULL */
	const strata_param *decl;
	uint32_t n_params;
	st_param_value *values;
	st_pos pos;
} st_section;

/* `init_from`: weights taken from another model's weights file when training starts fresh
 * (transfer.c). */
typedef struct st_init_from {
	char *weights;     /* resolved against base_dir; NULL: the model has no init_from */
	st_pos pos;        /* of the weights file's name in the model file */
	size_t *layers;    /* indices of the listed layers; none listed: every layer the file holds */
	st_pos *layer_pos; /* where each was listed */
	size_t n_layers;
} st_init_from;

/* What the recipe says of one model output (Keras' compile(): loss, loss_weights and metrics are
 * a name for every output, a list in the outputs' order, or a mapping by output name). An output
 * without a loss is computed and shown, but not trained and needs no labels, as in Keras. */
typedef struct st_output_recipe {
	char *loss;           /* NULL: none */
	st_pos loss_pos;
	double weight;        /* loss_weights: its share of the total loss; 1 */
	char **metrics;
	size_t n_metrics;
	uint32_t num_classes; /* one-hot width of its labels; 0: not given */
	char *labels[2];      /* ST_TRAIN, ST_TEST label files, resolved against base_dir; NULL: none */
} st_output_recipe;

enum { ST_TRAIN = 0, ST_TEST = 1 };

typedef struct st_recipe {
	st_output_recipe *outputs; /* one per model output, in the outputs' order */
	size_t n_outputs;
	char **inputs[2];          /* ST_TRAIN, ST_TEST: one IDX file per model input (NULL entries
	                            * when the data section names none) */
	size_t n_inputs;
	double data_scale;
	bool data_standardize;
	uint32_t *keep_labels;     /* data.keep_labels: the only classes loaded (first output's); NULL: all */
	uint32_t n_keep_labels;
	st_section optimizer;
	st_section lr_schedule;    /* the optimizer's `learning_rate: {type: ...}`; type NULL: a constant rate */
	strata_training_config training;
	st_init_from init_from;
	/* The outputs with a loss (the heads that train), in the outputs' order: their label files
	 * (ST_TRAIN, ST_TEST; views of outputs[].labels) and class counts, as contiguous arrays for
	 * strata_model_data_files(). */
	size_t n_heads;
	const char **labels[2];
	uint32_t *head_classes;
} st_recipe;

/* Frees what the recipe owns (not the struct itself). */
void st_recipe_release(st_recipe *r);

#endif
