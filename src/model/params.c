/* One validator for every parameter of a model file: a layer's, read against its plugin's table,
 * and the file's own sections, read against the tables below. Values are typed by YAML's own
 * rules, so a quoted "32" is a string, never an integer. */
#include "model/params.h"

#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/error.h"

#define BIG INFINITY
#define I32 2147483647.0
#define I64 9223372036854775807.0

/* ---- The model file's own sections -------------------------------------------------------- */

static const strata_param model_params[] = {
	{.name = "name", .type = STRATA_PARAM_STRING, .default_value = "null",
	 .doc = "model name; default: the file name without its extension"},
	{.name = "device", .type = STRATA_PARAM_STRING, .default_value = "null",
	 .doc = "device selector: auto, cpu, gpu, gpu:1, or part of a device name"},
};

static const strata_param input_params[] = {
	{.name = "shape", .type = STRATA_PARAM_INTS, .min = 1, .max = I32, .count = 0,
	 .doc = "per-sample shape, channels last: [H, W, C] or [N]"},
	{.name = "name", .type = STRATA_PARAM_STRING, .default_value = "null",
	 .doc = "the input's name, which layers' `inputs:` refer to; default input_1, input_2, ..."},
	{.name = "dtype", .type = STRATA_PARAM_ENUM, .default_value = "float32", .choices = "float32|int32",
	 .doc = "element type: float32, or int32 for ids"},
};

/* The files and num_classes are the recipe's own (recipe.c): one value, or one per input or
 * output; each value is read against the tables after this one. */
static const strata_param data_params[] = {
	{.name = "scale", .type = STRATA_PARAM_FLOAT, .default_value = "1.0", .min = 0, .max = BIG,
	 .doc = "pixel multiplier, 1/255 for 8-bit images"},
	{.name = "standardize", .type = STRATA_PARAM_BOOL, .default_value = "false",
	 .doc = "per-pixel zero mean and unit variance, from the training set (scikit-learn's StandardScaler)"},
};

static const strata_param data_file_params[] = {
	{.name = "train_images", .type = STRATA_PARAM_STRING,
	 .doc = "IDX file of training samples, relative to the model file; one per input: {NAME: FILE}"},
	{.name = "train_labels", .type = STRATA_PARAM_STRING,
	 .doc = "IDX file of training labels; one per output: {NAME: FILE}"},
	{.name = "test_images", .type = STRATA_PARAM_STRING,
	 .doc = "IDX file of test samples; one per input: {NAME: FILE}"},
	{.name = "test_labels", .type = STRATA_PARAM_STRING, .doc = "IDX file of test labels; one per output"},
	{.name = "num_classes", .type = STRATA_PARAM_INT, .min = 1, .max = I32,
	 .doc = "one-hot width of the labels; one per output: {NAME: N}"},
};

/* Keras' compile(): one value for every output, a list in the outputs' order, or {NAME: value}. */
static const strata_param loss_params[] = {
	{.name = "loss", .type = STRATA_PARAM_ENUM,
	 .choices = "categorical_crossentropy|sparse_categorical_crossentropy|mean_squared_error",
	 .doc = "training loss"},
	{.name = "loss_weights", .type = STRATA_PARAM_FLOAT, .min = 0, .max = BIG,
	 .doc = "an output's share of the total loss"},
};

/* Keras' fit() defaults. */
static const strata_param training_params[] = {
	{.name = "batch_size", .type = STRATA_PARAM_INT, .default_value = "32", .min = 1, .max = I32,
	 .doc = "samples per gradient step"},
	{.name = "epochs", .type = STRATA_PARAM_INT, .default_value = "1", .min = 1, .max = I32,
	 .doc = "passes over the training data"},
	{.name = "seed", .type = STRATA_PARAM_INT, .default_value = "0", .min = 0, .max = I64,
	 .doc = "seed of weight initialization, shuffling and dropout"},
	{.name = "validation_split", .type = STRATA_PARAM_FLOAT, .default_value = "0", .min = 0, .max = 1,
	 .doc = "fraction of the training data held out for validation, below 1"},
	{.name = "shuffle", .type = STRATA_PARAM_BOOL, .default_value = "true",
	 .doc = "shuffle the training data before each epoch"},
};

/* strata serve's dynamic batching (Triton's names and defaults); preferred_batch_sizes, a list
 * longer than the INTS type holds, is read by serving.c. */
static const strata_param serving_params[] = {
	{.name = "max_batch_size", .type = STRATA_PARAM_INT, .default_value = "64", .min = 1, .max = 65536,
	 .doc = "samples per batch the server forms; 1 turns batching off"},
	{.name = "max_queue_delay_us", .type = STRATA_PARAM_INT, .default_value = "0", .min = 0, .max = 60e6,
	 .doc = "the longest the oldest queued request waits for others, in microseconds"},
	{.name = "max_queue_size", .type = STRATA_PARAM_INT, .default_value = "1024", .min = 1, .max = I32,
	 .doc = "queued requests past which new ones get 503"},
	{.name = "timeout_us", .type = STRATA_PARAM_INT, .default_value = "0", .min = 0, .max = I64,
	 .doc = "a request still queued after this gets 504; 0: never"},
	{.name = "warmup", .type = STRATA_PARAM_BOOL, .default_value = "true",
	 .doc = "compute a batch of every size up to max_batch_size before serving"},
};

static const strata_param layer_params[] = {
	{.name = "name", .type = STRATA_PARAM_STRING, .default_value = "null",
	 .doc = "layer name; default: the type's prefix and a counter, conv2d_1"},
	{.name = "trainable", .type = STRATA_PARAM_BOOL, .default_value = "true",
	 .doc = "false freezes the layer's weights"},
	{.name = "shares", .type = STRATA_PARAM_STRING, .default_value = "null",
	 .doc = "the layer whose weights this one uses (a Keras layer called on two tensors)"},
	{.name = "activity_regularizer", .type = STRATA_PARAM_REGULARIZER, .default_value = "null",
	 .doc = "l1/l2 penalty on the layer's output, divided by the batch size, as Keras 2: {l1: 0.01}"},
	{.name = "source", .type = STRATA_PARAM_STRING, .default_value = "null",
	 .doc = "where the layer came from (strata import writes the ONNX node); shown by summary"},
};

/* `layers`, a list of names, is read by the loader itself. */
static const strata_param init_from_params[] = {
	{.name = "weights", .type = STRATA_PARAM_STRING,
	 .doc = "weights file (.stw) of another model, relative to the model file"},
};

static const strata_param keep_label_params[] = {
	{.name = "keep_labels", .type = STRATA_PARAM_INT, .min = 0, .max = I32,
	 .doc = "a class whose samples are kept; the others are left out of training and test data"},
};

static const strata_param metric_params[] = {
	{.name = "metrics", .type = STRATA_PARAM_ENUM, .choices = "accuracy",
	 .doc = "metric reported by training"},
};

static const strata_param optimizer_type_params[] = {
	{.name = "optimizer", .type = STRATA_PARAM_ENUM, .choices = "sgd|adadelta|adam|rmsprop",
	 .doc = "optimizer"},
};

static const strata_param regularizer_params[] = {
	{.name = "l1", .type = STRATA_PARAM_FLOAT, .default_value = "0", .min = 0, .max = BIG,
	 .doc = "L1 factor"},
	{.name = "l2", .type = STRATA_PARAM_FLOAT, .default_value = "0", .min = 0, .max = BIG,
	 .doc = "L2 factor"},
};

/* Keras' optimizer names and defaults (keras.optimizers, TF 2.x). Every optimizer takes Keras'
 * gradient clipping; 0 stands for Keras' None (off). */
#define CLIP_PARAMS                                                                                    \
	{.name = "clipnorm", .type = STRATA_PARAM_FLOAT, .default_value = "0", .min = 0, .max = BIG,     \
	 .doc = "clip each weight's gradient to this norm (0: off)"},                                  \
	{.name = "clipvalue", .type = STRATA_PARAM_FLOAT, .default_value = "0", .min = 0, .max = BIG,    \
	 .doc = "clip every gradient value to [-clipvalue, clipvalue] (0: off)"},                       \
	{.name = "global_clipnorm", .type = STRATA_PARAM_FLOAT, .default_value = "0", .min = 0, .max = BIG, \
	 .doc = "scale all gradients so that their joint norm is at most this (0: off)"}

static const strata_param sgd_params[] = {
	{.name = "learning_rate", .type = STRATA_PARAM_FLOAT, .default_value = "0.01", .min = 0, .max = BIG,
	 .doc = "step size"},
	{.name = "momentum", .type = STRATA_PARAM_FLOAT, .default_value = "0.0", .min = 0, .max = 1,
	 .doc = "velocity decay"},
	{.name = "nesterov", .type = STRATA_PARAM_BOOL, .default_value = "false", .doc = "Nesterov momentum"},
	CLIP_PARAMS,
};

static const strata_param adadelta_params[] = {
	{.name = "learning_rate", .type = STRATA_PARAM_FLOAT, .default_value = "1.0", .min = 0, .max = BIG,
	 .doc = "step size"},
	{.name = "rho", .type = STRATA_PARAM_FLOAT, .default_value = "0.95", .min = 0, .max = 1,
	 .doc = "decay of the running averages"},
	{.name = "epsilon", .type = STRATA_PARAM_FLOAT, .default_value = "1.0e-7", .min = 0, .max = BIG,
	 .doc = "numerical stability term"},
	CLIP_PARAMS,
};

static const strata_param adam_params[] = {
	{.name = "learning_rate", .type = STRATA_PARAM_FLOAT, .default_value = "0.001", .min = 0, .max = BIG,
	 .doc = "step size"},
	{.name = "beta_1", .type = STRATA_PARAM_FLOAT, .default_value = "0.9", .min = 0, .max = 1,
	 .doc = "decay of the first moment"},
	{.name = "beta_2", .type = STRATA_PARAM_FLOAT, .default_value = "0.999", .min = 0, .max = 1,
	 .doc = "decay of the second moment"},
	{.name = "epsilon", .type = STRATA_PARAM_FLOAT, .default_value = "1.0e-7", .min = 0, .max = BIG,
	 .doc = "numerical stability term"},
	{.name = "amsgrad", .type = STRATA_PARAM_BOOL, .default_value = "false", .doc = "AMSGrad variant"},
	CLIP_PARAMS,
};

static const strata_param rmsprop_params[] = {
	{.name = "learning_rate", .type = STRATA_PARAM_FLOAT, .default_value = "0.001", .min = 0, .max = BIG,
	 .doc = "step size"},
	{.name = "rho", .type = STRATA_PARAM_FLOAT, .default_value = "0.9", .min = 0, .max = 1,
	 .doc = "decay of the squared-gradient average"},
	{.name = "momentum", .type = STRATA_PARAM_FLOAT, .default_value = "0.0", .min = 0, .max = 1,
	 .doc = "velocity decay"},
	{.name = "epsilon", .type = STRATA_PARAM_FLOAT, .default_value = "1.0e-7", .min = 0, .max = BIG,
	 .doc = "numerical stability term"},
	{.name = "centered", .type = STRATA_PARAM_BOOL, .default_value = "false",
	 .doc = "normalize by the gradient's variance"},
	CLIP_PARAMS,
};

/* Learning-rate schedules (keras.optimizers.schedules), `learning_rate: {type: NAME, ...}` in the
 * optimizer: Keras' names, required parameters and defaults. */
static const strata_param lr_schedule_type_params[] = {
	{.name = "type", .type = STRATA_PARAM_ENUM,
	 .choices = "exponential_decay|inverse_time_decay|polynomial_decay|cosine_decay|piecewise_constant_decay",
	 .doc = "learning-rate schedule"},
};

#define LR_INITIAL {.name = "initial_learning_rate", .type = STRATA_PARAM_FLOAT, .min = 0, .max = BIG, \
	                .doc = "the rate at step 0"}
#define LR_DECAY_STEPS(what) {.name = "decay_steps", .type = STRATA_PARAM_INT, .min = 1, .max = I32, .doc = what}

static const strata_param exponential_decay_params[] = {
	LR_INITIAL,
	LR_DECAY_STEPS("steps per factor of decay_rate"),
	{.name = "decay_rate", .type = STRATA_PARAM_FLOAT, .min = 0, .max = BIG, .doc = "factor per decay_steps"},
	{.name = "staircase", .type = STRATA_PARAM_BOOL, .default_value = "false",
	 .doc = "decay in whole steps of decay_steps"},
};

static const strata_param inverse_time_decay_params[] = {
	LR_INITIAL,
	LR_DECAY_STEPS("steps per unit of decay"),
	{.name = "decay_rate", .type = STRATA_PARAM_FLOAT, .min = 0, .max = BIG,
	 .doc = "rate = initial / (1 + decay_rate * step / decay_steps)"},
	{.name = "staircase", .type = STRATA_PARAM_BOOL, .default_value = "false",
	 .doc = "decay in whole steps of decay_steps"},
};

static const strata_param polynomial_decay_params[] = {
	LR_INITIAL,
	LR_DECAY_STEPS("steps from the initial rate to the end rate"),
	{.name = "end_learning_rate", .type = STRATA_PARAM_FLOAT, .default_value = "0.0001", .min = 0, .max = BIG,
	 .doc = "the rate after decay_steps"},
	{.name = "power", .type = STRATA_PARAM_FLOAT, .default_value = "1.0", .min = 0, .max = BIG,
	 .doc = "exponent of the polynomial"},
	{.name = "cycle", .type = STRATA_PARAM_BOOL, .default_value = "false",
	 .doc = "start again after decay_steps, over a multiple of it"},
};

static const strata_param cosine_decay_params[] = {
	LR_INITIAL,
	LR_DECAY_STEPS("steps of the cosine, after the warmup"),
	{.name = "alpha", .type = STRATA_PARAM_FLOAT, .default_value = "0.0", .min = 0, .max = 1,
	 .doc = "the end rate, a fraction of the rate decayed from"},
	{.name = "warmup_target", .type = STRATA_PARAM_FLOAT, .default_value = "null", .min = 0, .max = BIG,
	 .choices = "(]", .doc = "the rate a linear warmup reaches; null: no warmup"},
	{.name = "warmup_steps", .type = STRATA_PARAM_INT, .default_value = "0", .min = 0, .max = I32,
	 .doc = "steps of the warmup"},
};

static const strata_param piecewise_constant_decay_params[] = {
	{.name = "boundaries", .type = STRATA_PARAM_INTS, .count = STRATA_INTS_ANY, .min = 0, .max = I32,
	 .doc = "increasing steps where the rate changes (at most 3)"},
	{.name = "values", .type = STRATA_PARAM_FLOATS, .count = STRATA_INTS_ANY, .min = 0, .max = BIG,
	 .doc = "the rates: up to the first boundary, between, after the last (one more than boundaries)"},
};

#define SCHEMA(n, table) {n, table, sizeof(table) / sizeof(table[0])}

const st_schema st_schema_lr_schedule_type = SCHEMA("learning_rate", lr_schedule_type_params);

static const st_schema lr_schedule_schemas[] = {
	SCHEMA("exponential_decay", exponential_decay_params),
	SCHEMA("inverse_time_decay", inverse_time_decay_params),
	SCHEMA("polynomial_decay", polynomial_decay_params),
	SCHEMA("cosine_decay", cosine_decay_params),
	SCHEMA("piecewise_constant_decay", piecewise_constant_decay_params),
};

const st_schema *st_lr_schedule_schema(const char *name)
{
	for (size_t i = 0; i < sizeof(lr_schedule_schemas) / sizeof(lr_schedule_schemas[0]); i++)
		if (!strcmp(lr_schedule_schemas[i].name, name))
			return &lr_schedule_schemas[i];
	return NULL;
}

const st_schema st_schema_model = SCHEMA("model", model_params);
const st_schema st_schema_input = SCHEMA("input", input_params);
const st_schema st_schema_data = SCHEMA("data", data_params);
const st_schema st_schema_data_file = SCHEMA("data", data_file_params);
const st_schema st_schema_loss = SCHEMA("loss", loss_params);
const st_schema st_schema_training = SCHEMA("training", training_params);
const st_schema st_schema_serving = SCHEMA("serving", serving_params);
const st_schema st_schema_layer = SCHEMA("layer", layer_params);
const st_schema st_schema_metric = SCHEMA("metrics", metric_params);
const st_schema st_schema_init_from = SCHEMA("init_from", init_from_params);
const st_schema st_schema_keep_label = SCHEMA("keep_labels", keep_label_params);
const st_schema st_schema_optimizer_type = SCHEMA("optimizer", optimizer_type_params);
static const st_schema regularizer_schema = SCHEMA("regularizer", regularizer_params);

/* Keras' MaxNorm (keras.constraints): max_value 2 and axis 0 by default. */
static const strata_param max_norm_params[] = {
	{.name = "max_value", .type = STRATA_PARAM_FLOAT, .default_value = "2", .min = 0, .max = BIG, .choices = "(]",
	 .doc = "the largest norm a slice keeps"},
	{.name = "axis", .type = STRATA_PARAM_INTS, .default_value = "[0]", .min = -STRATA_MAX_RANK,
	 .max = STRATA_MAX_RANK - 1, .count = 0, .doc = "the axes each norm runs over"},
};
static const st_schema max_norm_schema = SCHEMA("max_norm", max_norm_params);

static const st_schema optimizer_schemas[] = {
	SCHEMA("sgd", sgd_params),
	SCHEMA("adadelta", adadelta_params),
	SCHEMA("adam", adam_params),
	SCHEMA("rmsprop", rmsprop_params),
};

const st_schema *st_optimizer_schema(const char *name)
{
	for (size_t i = 0; i < sizeof(optimizer_schemas) / sizeof(optimizer_schemas[0]); i++)
		if (!strcmp(optimizer_schemas[i].name, name))
			return &optimizer_schemas[i];
	return NULL;
}

/* ---- Validation --------------------------------------------------------------------------- */

/* A failure found while reading, positioned; formatted with the file name only at the top, so
 * nested reads (a regularizer's mapping, a flow-style default) share the code. */
typedef struct problem {
	strata_status status;
	st_pos pos;
	char msg[STRATA_ERROR_MAX - 256];
} problem;

static strata_status report(problem *pb, strata_status status, st_pos pos, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static strata_status report(problem *pb, strata_status status, st_pos pos, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(pb->msg, sizeof(pb->msg), fmt, ap);
	va_end(ap);
	pb->status = status;
	pb->pos = pos;
	return status;
}

static strata_status no_memory(problem *pb, st_pos pos)
{
	return report(pb, STRATA_ERR_NO_MEMORY, pos, "out of memory");
}

static strata_status reading(const st_param_group *groups, size_t n_groups, const st_ynode *map, st_pos pos,
                             const char *where, const char *const *handled, problem *pb);

static bool is_scalar(const st_ynode *n)
{
	return n && n->kind == ST_YNODE_SCALAR && !st_ynode_is_null(n);
}

static bool is_plain(const st_ynode *n)
{
	return is_scalar(n) && n->u.scalar.style == ST_YSTYLE_PLAIN;
}

/* Decimal only, as YAML's core schema reads an integer: [-+]?[0-9]+. */
static bool is_int_text(const char *s)
{
	if (*s == '-' || *s == '+')
		s++;
	if (!*s)
		return false;
	for (; *s; s++)
		if (*s < '0' || *s > '9')
			return false;
	return true;
}

/* [-+]?(digits[.digits*] | .digits)([eE][-+]?digits)?: 1, 0.5, 1.0e-7, 1e-7. */
static bool is_float_text(const char *s)
{
	size_t digits = 0;
	if (*s == '-' || *s == '+')
		s++;
	for (; *s >= '0' && *s <= '9'; s++)
		digits++;
	if (*s == '.')
		for (s++; *s >= '0' && *s <= '9'; s++)
			digits++;
	if (!digits)
		return false;
	if (*s == 'e' || *s == 'E') {
		s++;
		if (*s == '-' || *s == '+')
			s++;
		if (*s < '0' || *s > '9')
			return false;
		while (*s >= '0' && *s <= '9')
			s++;
	}
	return *s == '\0';
}

static bool int_unbounded(double bound)
{
	return isinf(bound) || fabs(bound) >= I64;
}

/* The bounds spec of an INT, FLOAT or INTS declaration (plugin.h, added in 0.3): `choices` NULL
 * or "" (what every older declaration has), "[]", "(]", "[)" or "()". False for anything else. */
static bool bounds_spec(const strata_param *d, bool *lo_open, bool *hi_open)
{
	const char *c = d->choices;
	*lo_open = *hi_open = false;
	if (!c || !*c)
		return true;
	if ((c[0] != '[' && c[0] != '(') || (c[1] != ']' && c[1] != ')') || c[2] != '\0')
		return false;
	*lo_open = c[0] == '(';
	*hi_open = c[1] == ')';
	return true;
}

/* "in [1, 65536]", "in (0, 1]", ">= 1", "> 0", "<= 1", "< 1" or "a number", from the declared
 * range and its bounds spec. */
static void range_text(const strata_param *d, char *buf, size_t size)
{
	bool is_int = d->type != STRATA_PARAM_FLOAT;
	bool lo = is_int ? !int_unbounded(d->min) : !(isinf(d->min) || fabs(d->min) >= DBL_MAX);
	bool hi = is_int ? !int_unbounded(d->max) : !(isinf(d->max) || fabs(d->max) >= DBL_MAX);
	bool lo_open, hi_open;
	bounds_spec(d, &lo_open, &hi_open);
	const char *f = is_int ? "%.0f" : "%.9g";
	char a[64], b[64];
	snprintf(a, sizeof(a), f, d->min);
	snprintf(b, sizeof(b), f, d->max);
	if (lo && hi)
		snprintf(buf, size, "in %c%s, %s%c", lo_open ? '(' : '[', a, b, hi_open ? ')' : ']');
	else if (lo)
		snprintf(buf, size, "%s %s", lo_open ? ">" : ">=", a);
	else if (hi)
		snprintf(buf, size, "%s %s", hi_open ? "<" : "<=", b);
	else
		snprintf(buf, size, "a number");
}

/* Whether v lies within d's range, each bound inclusive or exclusive as its spec says. */
static bool in_range(const strata_param *d, double v)
{
	bool lo_open, hi_open;
	bounds_spec(d, &lo_open, &hi_open);
	return (lo_open ? v > d->min : v >= d->min) && (hi_open ? v < d->max : v <= d->max);
}

static strata_status out_of_range(const strata_param *d, const st_ynode *n, problem *pb)
{
	char r[160];
	range_text(d, r, sizeof(r));
	return report(pb, STRATA_ERR_INVALID, n->pos, "'%s' must be %s, got %s", d->name, r,
	              n->u.scalar.text);
}

static strata_status wrong_type(const strata_param *d, const st_ynode *n, const char *expected, problem *pb)
{
	char got[96];
	st_ynode_describe(n, got, sizeof(got));
	return report(pb, STRATA_ERR_INVALID, n->pos, "'%s' must be %s, got %s", d->name, expected, got);
}

static strata_status read_int(const strata_param *d, const st_ynode *n, const char *expected, int64_t *out,
                              problem *pb)
{
	if (!is_plain(n) || !is_int_text(n->u.scalar.text))
		return wrong_type(d, n, expected, pb);
	errno = 0;
	long long v = strtoll(n->u.scalar.text, NULL, 10);
	if (errno == ERANGE || !in_range(d, (double)v))
		return out_of_range(d, n, pb);
	*out = v;
	return STRATA_OK;
}

static strata_status read_float(const strata_param *d, const st_ynode *n, double *out, problem *pb)
{
	if (!is_plain(n) || !is_float_text(n->u.scalar.text))
		return wrong_type(d, n, "a number", pb);
	double v = strtod(n->u.scalar.text, NULL);
	if (!isfinite(v) || !in_range(d, v))
		return out_of_range(d, n, pb);
	*out = v;
	return STRATA_OK;
}

static strata_status read_bool(const strata_param *d, const st_ynode *n, int64_t *out, problem *pb)
{
	static const char *const yes[] = {"true", "True", "TRUE"};
	static const char *const no[] = {"false", "False", "FALSE"};
	if (is_plain(n)) {
		for (size_t i = 0; i < 3; i++) {
			if (!strcmp(n->u.scalar.text, yes[i])) {
				*out = 1;
				return STRATA_OK;
			}
			if (!strcmp(n->u.scalar.text, no[i])) {
				*out = 0;
				return STRATA_OK;
			}
		}
	}
	return wrong_type(d, n, "true or false", pb);
}

/* The choices "a|b|c" as "a, b, c". */
static void choices_text(const char *choices, char *buf, size_t size)
{
	size_t o = 0;
	buf[0] = '\0';
	for (const char *c = choices ? choices : ""; *c && o + 3 < size; c++) {
		if (*c == '|') {
			buf[o++] = ',';
			buf[o++] = ' ';
		} else {
			buf[o++] = *c;
		}
	}
	buf[o] = '\0';
}

static strata_status read_enum(const strata_param *d, const st_ynode *n, char **out, problem *pb)
{
	if (is_scalar(n)) {
		const char *c = d->choices ? d->choices : "";
		size_t len = n->u.scalar.len;
		while (*c) {
			const char *bar = strchr(c, '|');
			size_t clen = bar ? (size_t)(bar - c) : strlen(c);
			if (clen == len && !memcmp(c, n->u.scalar.text, len)) {
				*out = strdup(n->u.scalar.text);
				return *out ? STRATA_OK : no_memory(pb, n->pos);
			}
			c += clen + (bar ? 1 : 0);
		}
	}
	char list[512], got[96];
	choices_text(d->choices, list, sizeof(list));
	st_ynode_describe(n, got, sizeof(got));
	return report(pb, STRATA_ERR_INVALID, n->pos, "'%s' must be one of %s; got %s", d->name, list, got);
}

static strata_status read_ints(const strata_param *d, const st_ynode *n, st_param_value *v, problem *pb)
{
	uint32_t count = d->count;
	char expected[96];
	if (count == 0)
		snprintf(expected, sizeof(expected), "1 to %d integers", STRATA_MAX_RANK);
	else if (count == 1)
		snprintf(expected, sizeof(expected), "an integer");
	else
		snprintf(expected, sizeof(expected), "%u integers or one integer", count);

	if (n->kind != ST_YNODE_SEQUENCE) {
		strata_status st = read_int(d, n, expected, &v->ints[0], pb);
		if (st)
			return st;
		v->n_ints = count ? count : 1;
		for (uint32_t i = 1; i < v->n_ints; i++)
			v->ints[i] = v->ints[0];
		return STRATA_OK;
	}
	size_t got = n->u.seq.n;
	if (count ? got != count : (got < 1 || got > STRATA_MAX_RANK))
		return report(pb, STRATA_ERR_INVALID, n->pos, "'%s' must be %s, got %zu", d->name, expected,
		              got);
	for (size_t i = 0; i < got; i++) {
		strata_status st = read_int(d, n->u.seq.items[i], "a list of integers", &v->ints[i], pb);
		if (st)
			return st;
	}
	v->n_ints = (uint32_t)got;
	return STRATA_OK;
}

/* FLOATS: a number, or a list of `count` (0: 1 to STRATA_MAX_RANK) numbers, each in range. */
static strata_status read_floats(const strata_param *d, const st_ynode *n, st_param_value *v, problem *pb)
{
	uint32_t count = d->count;
	char expected[96];
	if (count == 0)
		snprintf(expected, sizeof(expected), "a number or a list of 1 to %d numbers", STRATA_MAX_RANK);
	else
		snprintf(expected, sizeof(expected), "%u numbers or one number", count);
	if (n->kind != ST_YNODE_SEQUENCE) {
		strata_status st = read_float(d, n, &v->floats[0], pb);
		if (st)
			return st;
		v->n_floats = count ? count : 1;
		for (uint32_t i = 1; i < v->n_floats; i++)
			v->floats[i] = v->floats[0];
		return STRATA_OK;
	}
	size_t got = n->u.seq.n;
	if (count ? got != count : (got < 1 || got > STRATA_MAX_RANK))
		return report(pb, STRATA_ERR_INVALID, n->pos, "'%s' must be %s, got a list of %zu", d->name, expected, got);
	for (size_t i = 0; i < got; i++) {
		strata_status st = read_float(d, n->u.seq.items[i], &v->floats[i], pb);
		if (st)
			return st;
	}
	v->n_floats = (uint32_t)got;
	return STRATA_OK;
}

static strata_status read_regularizer(const strata_param *d, const st_ynode *n, st_param_value *v,
                                      problem *pb)
{
	if (st_ynode_is_null(n))
		return STRATA_OK;
	if (n->kind != ST_YNODE_MAPPING)
		return wrong_type(d, n, "null or a mapping {l1: x, l2: y}", pb);
	st_param_value f[2] = {{0}};
	st_param_group g = {regularizer_schema.params, regularizer_schema.n_params, f};
	char where[96];
	snprintf(where, sizeof(where), "'%s'", d->name);
	strata_status st = reading(&g, 1, n, n->pos, where, NULL, pb);
	if (!st) {
		v->l1 = f[0].f;
		v->l2 = f[1].f;
	}
	st_params_release(f, 2);
	return st;
}

/* null, a constraint's name (its Keras defaults), or {NAME: {arguments}} (max_norm: also
 * {max_norm: MAX_VALUE}). */
static strata_status read_constraint(const strata_param *d, const st_ynode *n, st_param_value *v, problem *pb)
{
	static const char expected[] = "null, max_norm, non_neg or a mapping such as {max_norm: {max_value: 3, axis: 0}}";
	v->constraint = ST_CONSTRAINT_NONE;
	if (st_ynode_is_null(n))
		return STRATA_OK;
	const st_ynode *name = n, *args = NULL;
	if (n->kind == ST_YNODE_MAPPING) {
		if (n->u.map.n != 1)
			return wrong_type(d, n, expected, pb);
		name = n->u.map.pairs[0].key;
		args = n->u.map.pairs[0].value;
	}
	if (!is_scalar(name))
		return wrong_type(d, n, expected, pb);
	char q[64];
	st_yquote(name, q, sizeof(q));
	if (name->u.scalar.len == 7 && !memcmp(name->u.scalar.text, "non_neg", 7)) {
		if (args && !st_ynode_is_null(args) && !(args->kind == ST_YNODE_MAPPING && args->u.map.n == 0))
			return report(pb, STRATA_ERR_INVALID, args->pos, "'%s': non_neg takes no arguments", d->name);
		v->constraint = ST_CONSTRAINT_NON_NEG;
		return STRATA_OK;
	}
	if (name->u.scalar.len != 8 || memcmp(name->u.scalar.text, "max_norm", 8))
		return report(pb, STRATA_ERR_INVALID, name->pos, "'%s': unknown constraint %s; Strata has max_norm and "
		              "non_neg", d->name, q);
	st_param_value f[2] = {{0}};
	st_param_group g = {max_norm_schema.params, max_norm_schema.n_params, f};
	char where[96];
	snprintf(where, sizeof(where), "'%s' max_norm", d->name);
	strata_status st;
	if (args && is_scalar(args) && !st_ynode_is_null(args)) {
		/* {max_norm: 3}: the max_value, the default axis */
		st = reading(&g, 1, NULL, args->pos, where, NULL, pb);
		if (!st)
			st = read_float(&max_norm_params[0], args, &f[0].f, pb);
	} else {
		st = reading(&g, 1, args && !st_ynode_is_null(args) ? args : NULL, args ? args->pos : n->pos, where, NULL,
		             pb);
	}
	if (!st) {
		v->constraint = ST_CONSTRAINT_MAX_NORM;
		v->f = f[0].f;
		v->n_ints = f[1].n_ints;
		memcpy(v->ints, f[1].ints, sizeof(v->ints));
	}
	st_params_release(f, 2);
	return st;
}

static strata_status read_string(const strata_param *d, const st_ynode *n, char **out, problem *pb)
{
	if (!is_scalar(n))
		return wrong_type(d, n, "a string", pb);
	*out = strdup(n->u.scalar.text);
	return *out ? STRATA_OK : no_memory(pb, n->pos);
}

static bool null_default(const strata_param *d)
{
	return d->default_value && !strcmp(d->default_value, "null");
}

/* A Keras parameter the layer leaves out (STRATA_PARAM_UNSUPPORTED): only its Keras default, the
 * declaration's default text, passes. */
static strata_status read_unsupported(const strata_param *d, const st_ynode *n, problem *pb)
{
	const char *accepted = d->default_value ? d->default_value : "";
	if (null_default(d) && st_ynode_is_null(n))
		return STRATA_OK;
	if (is_scalar(n) && n->u.scalar.len == strlen(accepted) && !memcmp(n->u.scalar.text, accepted, n->u.scalar.len))
		return STRATA_OK;
	char got[96];
	st_ynode_describe(n, got, sizeof(got));
	return report(pb, STRATA_ERR_INVALID, n->pos, "'%s' is a Keras parameter Strata leaves out (%s); only %s is "
	              "accepted, got %s", d->name, d->doc ? d->doc : "not supported", accepted, got);
}

/* Reads `n` into `v` (zeroed by the caller) as `d` declares it. */
static strata_status read_value(const strata_param *d, const st_ynode *n, st_param_value *v, problem *pb)
{
	v->pos = n->pos;
	if (st_ynode_is_null(n) && null_default(d))
		return STRATA_OK;
	bool lo_open, hi_open;
	if ((d->type == STRATA_PARAM_INT || d->type == STRATA_PARAM_FLOAT || d->type == STRATA_PARAM_INTS ||
	     d->type == STRATA_PARAM_FLOATS) &&
	    !bounds_spec(d, &lo_open, &hi_open))
		return report(pb, STRATA_ERR_PLUGIN, n->pos,
		              "'%s' is declared with the bounds \"%.16s\"; expected \"[]\", \"(]\", \"[)\" or \"()\"",
		              d->name, d->choices);
	switch (d->type) {
	case STRATA_PARAM_INT:
		return read_int(d, n, "an integer", &v->i, pb);
	case STRATA_PARAM_FLOAT:
		return read_float(d, n, &v->f, pb);
	case STRATA_PARAM_BOOL:
		return read_bool(d, n, &v->i, pb);
	case STRATA_PARAM_ENUM:
		return read_enum(d, n, &v->s, pb);
	case STRATA_PARAM_INTS:
		if (d->count > STRATA_MAX_RANK)
			return report(pb, STRATA_ERR_PLUGIN, n->pos,
			              "'%s' is declared with %u integers, more than %d", d->name, d->count,
			              STRATA_MAX_RANK);
		return read_ints(d, n, v, pb);
	case STRATA_PARAM_STRING:
		return read_string(d, n, &v->s, pb);
	case STRATA_PARAM_REGULARIZER:
		return read_regularizer(d, n, v, pb);
	case STRATA_PARAM_UNSUPPORTED:
		return read_unsupported(d, n, pb);
	case STRATA_PARAM_CONSTRAINT:
		return read_constraint(d, n, v, pb);
	case STRATA_PARAM_FLOATS:
		if (d->count > STRATA_MAX_RANK)
			return report(pb, STRATA_ERR_PLUGIN, n->pos, "'%s' is declared with %u numbers, more than %d", d->name,
			              d->count, STRATA_MAX_RANK);
		return read_floats(d, n, v, pb);
	default:
		return report(pb, STRATA_ERR_PLUGIN, n->pos, "'%s' is declared with unknown type %d", d->name,
		              (int)d->type);
	}
}

/* A default is YAML text. Plain ones are read as a plain scalar; flow ones ("[1, 1]",
 * "{l2: 0.01}") go through the YAML parser. Positions point at the mapping that omitted the key. */
static strata_status read_default(const strata_param *d, st_pos pos, const char *where, st_param_value *v,
                                  problem *pb)
{
	const char *text = d->default_value;
	v->pos = pos;
	if (null_default(d))
		return STRATA_OK;
	problem inner;
	strata_status st;
	if (text[0] == '[' || text[0] == '{') {
		strata_error perr = {0};
		st_ydoc *doc = NULL;
		st = st_ydoc_parse(text, strlen(text), "default", &doc, &perr);
		if (st)
			return report(pb, STRATA_ERR_PLUGIN, pos,
			              "the default \"%s\" of '%s' in %s is not valid: %s", text, d->name,
			              where, perr.message);
		st = doc->root ? read_value(d, doc->root, v, &inner)
		               : report(&inner, STRATA_ERR_INVALID, pos, "it is empty");
		st_ydoc_free(doc);
	} else {
		st_ynode n = {.kind = ST_YNODE_SCALAR, .pos = pos};
		n.u.scalar.text = (char *)text;
		n.u.scalar.len = strlen(text);
		n.u.scalar.style = ST_YSTYLE_PLAIN;
		st = read_value(d, &n, v, &inner);
	}
	v->pos = pos;
	if (st == STRATA_ERR_NO_MEMORY)
		return no_memory(pb, pos);
	if (st)
		return report(pb, STRATA_ERR_PLUGIN, pos, "the default \"%s\" of '%s' in %s is not valid: %s",
		              text, d->name, where, inner.msg);
	return STRATA_OK;
}

static bool key_is(const st_ynode *key, const char *name)
{
	size_t len = strlen(name);
	return key->u.scalar.len == len && !memcmp(key->u.scalar.text, name, len);
}

static void append(char *buf, size_t size, size_t *o, const char *s)
{
	int n = snprintf(buf + *o, size - *o, "%s%s", *o ? ", " : "", s);
	if (n > 0)
		*o = *o + (size_t)n < size ? *o + (size_t)n : size - 1;
}

static strata_status unknown_key(const st_param_group *groups, size_t n_groups, const st_ynode *key,
                                 const char *where, const char *const *handled, problem *pb)
{
	char list[1280], q[64];
	size_t o = 0;
	list[0] = '\0';
	for (size_t i = 0; handled && handled[i]; i++)
		append(list, sizeof(list), &o, handled[i]);
	for (size_t g = 0; g < n_groups; g++)
		for (uint32_t i = 0; i < groups[g].n; i++)
			append(list, sizeof(list), &o, groups[g].decl[i].name);
	st_yquote(key, q, sizeof(q));
	return report(pb, STRATA_ERR_INVALID, key->pos, "unknown key %s in %s; accepted: %s", q, where, list);
}

static strata_status reading(const st_param_group *groups, size_t n_groups, const st_ynode *map, st_pos pos,
                             const char *where, const char *const *handled, problem *pb)
{
	if (map) {
		if (map->kind != ST_YNODE_MAPPING) {
			char got[96];
			st_ynode_describe(map, got, sizeof(got));
			return report(pb, STRATA_ERR_INVALID, map->pos, "%s must be a mapping, got %s", where,
			              got);
		}
		pos = map->pos;
	}
	for (size_t g = 0; g < n_groups; g++) {
		for (uint32_t i = 0; i < groups[g].n; i++) {
			memset(&groups[g].values[i], 0, sizeof(groups[g].values[i]));
			groups[g].values[i].decl = &groups[g].decl[i];
			groups[g].values[i].pos = pos;
		}
	}
	for (size_t k = 0; map && k < map->u.map.n; k++) {
		const st_ynode *key = map->u.map.pairs[k].key;
		const st_ynode *value = map->u.map.pairs[k].value;
		bool found = false;
		for (size_t i = 0; handled && handled[i] && !found; i++)
			found = key_is(key, handled[i]);
		for (size_t g = 0; g < n_groups && !found; g++) {
			for (uint32_t i = 0; i < groups[g].n && !found; i++) {
				if (!key_is(key, groups[g].decl[i].name))
					continue;
				found = true;
				st_param_value *v = &groups[g].values[i];
				strata_status st = read_value(v->decl, value, v, pb);
				if (st)
					return st;
				v->from_file = true;
			}
		}
		if (!found)
			return unknown_key(groups, n_groups, key, where, handled, pb);
	}
	for (size_t g = 0; g < n_groups; g++) {
		for (uint32_t i = 0; i < groups[g].n; i++) {
			st_param_value *v = &groups[g].values[i];
			if (v->from_file)
				continue;
			if (!v->decl->default_value)
				return report(pb, STRATA_ERR_INVALID, pos,
				              "missing required parameter '%s' in %s", v->decl->name, where);
			strata_status st = read_default(v->decl, pos, where, v, pb);
			if (st)
				return st;
		}
	}
	return STRATA_OK;
}

static strata_status emit(const char *file, const problem *pb, strata_error *err)
{
	if (pb->status == STRATA_ERR_NO_MEMORY)
		return st_fail(err, pb->status, "%s: out of memory", file);
	return st_fail(err, pb->status, "%s:%u:%u: %s", file, pb->pos.line, pb->pos.col, pb->msg);
}

strata_status st_params_read(const char *file, const st_ynode *map, st_pos pos, const char *where,
                             const st_param_group *groups, size_t n_groups, const char *const *handled,
                             strata_error *err)
{
	problem *pb = malloc(sizeof(*pb));
	if (!pb)
		return st_fail(err, STRATA_ERR_NO_MEMORY, "%s: out of memory", file);
	strata_status st = reading(groups, n_groups, map, pos, where, handled, pb);
	if (st)
		emit(file, pb, err);
	free(pb);
	return st;
}

strata_status st_param_read_one(const char *file, const strata_param *decl, const st_ynode *node,
                                st_param_value *out, strata_error *err)
{
	problem *pb = malloc(sizeof(*pb));
	if (!pb)
		return st_fail(err, STRATA_ERR_NO_MEMORY, "%s: out of memory", file);
	memset(out, 0, sizeof(*out));
	out->decl = decl;
	strata_status st = read_value(decl, node, out, pb);
	if (st)
		emit(file, pb, err);
	else
		out->from_file = true;
	free(pb);
	return st;
}

void st_params_release(st_param_value *values, uint32_t n)
{
	for (uint32_t i = 0; values && i < n; i++) {
		free(values[i].s);
		values[i].s = NULL;
	}
}

const st_param_value *st_param_find(const st_param_value *values, uint32_t n, const char *name)
{
	for (uint32_t i = 0; values && i < n; i++)
		if (values[i].decl && !strcmp(values[i].decl->name, name))
			return &values[i];
	return NULL;
}
