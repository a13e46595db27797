/* Strata layer-plugin ABI. The only header a plugin includes.
 *
 * A plugin is a shared object exporting exactly one symbol, STRATA_PLUGIN_ENTRY_NAME, a function
 * returning a pointer to a static strata_plugin descriptor. The host reads abi_version first and
 * refuses a plugin built for another ABI version. Every struct the plugin or host hands over
 * begins with a size field, so structs only ever grow at the end: a reader treats fields past
 * the writer's size as absent (NULL or 0). A plugin links against nothing of Strata's: every
 * service (parameters, weights, kernels, launches, GEMM, the runtime's shared kernels, errors)
 * comes from the strata_host function table passed to init() and to every layer callback.
 *
 * Rules for plugins:
 *  - init() only registers programs and layer types; it allocates nothing and touches no device.
 *  - Layer callbacks report errors through host->fail() / host->fail_param() and return its status.
 *  - Tensors are channels-last (NHWC) buffers, float32 unless their shape's dtype says int32;
 *    the batch is the outermost dimension.
 *  - A layer takes one input unless its ops say otherwise (min_inputs, max_inputs); the host
 *    wires inputs by the model file's `inputs:` (a graph), numbered from 0 in that order.
 */
#ifndef STRATA_PLUGIN_H
#define STRATA_PLUGIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "types.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Bumped only when an existing field changes meaning; growth at the end keeps the version. */
#define STRATA_PLUGIN_ABI_VERSION 1u
#define STRATA_PLUGIN_ENTRY strata_plugin_entry
#define STRATA_PLUGIN_ENTRY_NAME "strata_plugin_entry"

#if defined(__GNUC__)
#define STRATA_PLUGIN_EXPORT __attribute__((visibility("default")))
#define STRATA_PRINTF(fmt_index, first_arg) __attribute__((format(printf, fmt_index, first_arg)))
#else
#define STRATA_PLUGIN_EXPORT
#define STRATA_PRINTF(fmt_index, first_arg)
#endif

typedef struct strata_layer strata_layer;       /* one layer of a model, owned by the host */
typedef struct strata_tensor strata_tensor;     /* a device buffer, owned by the host */
typedef struct strata_kernel strata_kernel;     /* a compiled kernel, owned by the host */
typedef struct strata_registry strata_registry; /* what init() registers into */
typedef struct strata_host strata_host;

/* ---- Parameters a layer type accepts from YAML ------------------------------------------- */

typedef enum strata_param_type {
	STRATA_PARAM_INT = 0,         /* integer within [min, max] */
	STRATA_PARAM_FLOAT = 1,       /* number within [min, max] */
	STRATA_PARAM_BOOL = 2,        /* true / false */
	STRATA_PARAM_ENUM = 3,        /* one of `choices`, a '|'-separated list: "valid|same" */
	STRATA_PARAM_INTS = 4,        /* `count` integers in [min, max]; a single integer is repeated.
	                               * Since 0.4 `count` 0 takes 1 to STRATA_MAX_RANK integers */
	STRATA_PARAM_STRING = 5,      /* any string */
	STRATA_PARAM_REGULARIZER = 6, /* null, or a map with l1 and/or l2 factors: {l1: 0.01} */
	/* Added in 0.4: a Keras parameter the layer deliberately leaves out. `default_value` is the
	 * one value accepted (Keras' default, so a Keras config that spells it out still loads; "null"
	 * accepts null); any other value is refused at its FILE:LINE:COLUMN with `doc`, which says
	 * why. `strata layers` lists it as "not supported". A host older than 0.4 refuses the plugin. */
	STRATA_PARAM_UNSUPPORTED = 7,
	/* Added in 0.4: a weight constraint as Keras' kernel_constraint takes it: null; max_norm
	 * (Keras' MaxNorm with max_value 2, axis 0), {max_norm: {max_value: 3, axis: [0, 1, 2]}} or
	 * {max_norm: 3}; non_neg. A weight names it in strata_weight_desc.constraint and the host
	 * applies it after every optimizer step. */
	STRATA_PARAM_CONSTRAINT = 8,
	/* Added in 0.4: `count` numbers in [min, max] (bounds spec as for FLOAT), a single number
	 * repeated; `count` 0 takes 1 to STRATA_MAX_RANK numbers, a single one as one: Keras' factor
	 * 0.1 or [-0.1, 0.2]. Read with host->param_floats. */
	STRATA_PARAM_FLOATS = 9,
	STRATA_PARAM_TYPE_COUNT
} strata_param_type;

/* One parameter of a layer type. The size and layout of this struct never change (plugins keep
 * arrays of it), so what was added later lives in fields older plugins leave zero.
 *
 * Exclusive bounds, added in 0.3: for INT, FLOAT and INTS, `choices` (unused by these types
 * before) may hold a bounds spec saying which ends of [min, max] are excluded: "(]" excludes min,
 * "[)" excludes max, "()" both, "[]" neither. NULL or "" (what a plugin built before 0.3 has)
 * means both bounds are inclusive. `strata layers` shows the range with these brackets, e.g.
 * "float in (0, 1]", and the loader refuses a value outside it at the value's FILE:LINE:COLUMN
 * ("'rate' must be in (0, 1], got 0"); another spec is a plugin error. A host older than 0.3
 * ignores the spec and takes both bounds as inclusive, so a plugin that must run there too
 * checks in build() as well:
 *
 *     {.name = "rate", .type = STRATA_PARAM_FLOAT, .default_value = "0.5", .min = 0, .max = 1,
 *      .choices = "(]", .doc = "fraction kept, above 0"},
 */
typedef struct strata_param {
	const char *name;          /* YAML key, Keras' name: "filters", "kernel_size" */
	strata_param_type type;
	const char *default_value; /* YAML text of the default; NULL makes the parameter required */
	double min, max;           /* range for INT, FLOAT and INTS; inclusive unless `choices` says */
	const char *choices;       /* ENUM: the choices; INT, FLOAT, INTS: bounds spec (0.3), above */
	uint32_t count;            /* INTS, FLOATS: how many values (STRATA_INTS_ANY: 1 to STRATA_MAX_RANK) */
	const char *doc;           /* one line for `strata layers` and error messages */
} strata_param;

/* Added in 0.4: the `count` of an INTS (or FLOATS) parameter that takes a list of 1 to
 * STRATA_MAX_RANK values, as many as the model file gives (a single value is a list of one):
 * Keras' tuples of any length (Reshape's target_shape, Permute's dims, ZeroPadding2D's padding).
 * param_ints() returns how many were given. A host older than 0.4 refuses the declaration. */
#define STRATA_INTS_ANY 0u

/* ---- Weights ---------------------------------------------------------------------------------- */

/* Weight shapes follow Keras (HWIO for convolution kernels, (inputs, units) for dense kernels),
 * so the host derives fan-in and fan-out for initializers exactly as Keras does. */
typedef struct strata_weight_desc {
	uint32_t size;           /* sizeof(strata_weight_desc) */
	const char *name;        /* "kernel", "bias" */
	strata_shape shape;
	/* glorot_uniform, glorot_normal, he_uniform, he_normal, zeros, ones, orthogonal (0.4); since
	 * 0.4 also a comma-separated list of these, which splits the last axis into that many equal
	 * blocks, each initialized as a weight of its own: "zeros,ones,zeros,zeros" is Keras' LSTM
	 * bias with unit_forget_bias (the forget gate's block ones). */
	const char *initializer;
	double l1, l2;           /* regularization factors; 0 for none */
	/* Added in 0.4: the layer's CONSTRAINT parameter that constrains this weight (e.g.
	 * "kernel_constraint"), or NULL for none. The host resolves its axes against `shape` (Keras'
	 * axis, negative from the end) and applies it after every optimizer step, as Keras does. */
	const char *constraint;
} strata_weight_desc;

/* ---- Kernel launches -------------------------------------------------------------------------- */

typedef enum strata_arg_kind {
	STRATA_ARG_TENSOR = 0,
	STRATA_ARG_INT = 1,   /* int32 */
	STRATA_ARG_FLOAT = 2, /* float32 */
	STRATA_ARG_LOCAL = 3, /* __local buffer of `local_bytes` */
	STRATA_ARG_UINT = 4   /* uint32 */
} strata_arg_kind;

typedef struct strata_arg {
	strata_arg_kind kind;
	union {
		strata_tensor *tensor;
		int32_t i;
		uint32_t u;
		float f;
		size_t local_bytes;
	} v;
} strata_arg;

static inline strata_arg strata_arg_tensor(strata_tensor *t)
{
	strata_arg a = {.kind = STRATA_ARG_TENSOR};
	a.v.tensor = t;
	return a;
}

static inline strata_arg strata_arg_int(int32_t i)
{
	strata_arg a = {.kind = STRATA_ARG_INT};
	a.v.i = i;
	return a;
}

static inline strata_arg strata_arg_uint(uint32_t u)
{
	strata_arg a = {.kind = STRATA_ARG_UINT};
	a.v.u = u;
	return a;
}

static inline strata_arg strata_arg_float(float f)
{
	strata_arg a = {.kind = STRATA_ARG_FLOAT};
	a.v.f = f;
	return a;
}

static inline strata_arg strata_arg_local(size_t bytes)
{
	strata_arg a = {.kind = STRATA_ARG_LOCAL};
	a.v.local_bytes = bytes;
	return a;
}

/* An A that is the im2col matrix of a batch of NHWC images, read in place rather than built:
 * row (n, oy, ox) holds the window at (oy * sh, ox * sw), column (ky, kx, c) its element. No
 * padding: the windows lie inside the image. */
typedef struct strata_gemm_window {
	uint32_t h, w, c;    /* an image */
	uint32_t kh, kw;     /* the window */
	uint32_t sh, sw;     /* its strides */
	uint32_t oh, ow;     /* windows per image: (h - kh) / sh + 1 by (w - kw) / sw + 1 */
} strata_gemm_window;

/* Row-major C = alpha * op(A) * op(B) + beta * C, through CLBlast or Strata's own kernel (on CPU
 * devices, or as `strata tune` chose per shape). Offsets and leading dimensions are in elements. */
typedef struct strata_gemm {
	uint32_t size; /* sizeof(strata_gemm) */
	bool trans_a, trans_b;
	size_t m, n, k;
	float alpha, beta;
	strata_tensor *a;
	size_t a_offset, lda;
	strata_tensor *b;
	size_t b_offset, ldb;
	strata_tensor *c;
	size_t c_offset, ldc;
	/* Added in 0.2: A (op(A) = A: m windows by k = kh * kw * c; op(A) = A^T: the transpose) is
	 * the im2col matrix of the images at `a` + a_offset, and lda is unused. Only when
	 * host->gemm_window said yes for this GEMM. */
	const strata_gemm_window *a_window;
} strata_gemm;

/* ---- Layer callbacks -------------------------------------------------------------------------- */

typedef struct strata_forward_args {
	uint32_t size;         /* sizeof(strata_forward_args) */
	uint32_t batch;        /* samples in this pass, <= the batch the model was planned for */
	bool training;         /* dropout and similar layers act only when true */
	uint64_t seed;         /* the run's seed, for device-side random numbers */
	uint64_t step;         /* increases with every training step */
	strata_tensor *input;  /* batch x input shape (input 0) */
	strata_tensor *output; /* batch x output shape */
	/* Added in 0.3: every input in the model's order (inputs[0] == input) and their count.
	 * Read them through strata_forward_input(). */
	strata_tensor *const *inputs;
	uint32_t n_inputs;
	/* Added in 0.4: the steps of the training run this pass belongs to (epochs x batches; `step`
	 * counts from 0 to it), 0 when unknown (a benchmark, an inference pass). For layers whose
	 * own schedule spans the run (a self-organizing map's decay). */
	uint64_t total_steps;
	/* Added in 0.4: the layer is frozen (`trainable: false`): its weights do not change. Keras runs
	 * a frozen BatchNormalization in inference mode; other layers ignore it. Read it through
	 * strata_forward_frozen(). */
	bool frozen;
	/* Added in 0.4: where this pass's first sample stands in the global batch it is a part of
	 * (data-parallel training: each rank computes a slice of every global batch); 0 otherwise.
	 * A layer drawing random numbers per sample or element keys them on the global position
	 * (offset + its own index), so that the slices together draw what one process computing the
	 * whole batch draws. Read it through strata_forward_sample_offset(). */
	uint64_t sample_offset;
} strata_forward_args;

/* Backward contract: write grad_input (when not NULL) and OVERWRITE every weight gradient
 * (host->weight_grad; the host adds regularization afterwards). grad_output belongs to the host
 * and may be overwritten in place (e.g. with dLoss/dPreactivation). */
typedef struct strata_backward_args {
	uint32_t size; /* sizeof(strata_backward_args) */
	uint32_t batch;
	uint64_t seed, step;        /* as in the forward pass being differentiated */
	strata_tensor *input;       /* the forward pass's input */
	strata_tensor *output;      /* the forward pass's output */
	strata_tensor *grad_output; /* dLoss/dOutput */
	strata_tensor *grad_input;  /* dLoss/dInput to write; NULL when nobody needs it */
	/* True when grad_output is already the gradient before the layer's fused activation: the
	 * loss folded it in (softmax with cross-entropy, computed stably as y - t). The layer then
	 * skips its activation's derivative. Only set for a layer whose `activation` is softmax, or
	 * (since 0.4) a layer of type `softmax`. */
	bool activation_folded;
	/* Added later: fields below start past the struct's first size. The padding keeps them
	 * clear of its tail padding, which a host built before them need not have zeroed, so
	 * STRATA_ARGS_HAS tells them apart by `size` alone. */
	uint8_t reserved_tail[8];
	/* The forward pass being differentiated was a training pass (dropout dropped elements).
	 * False for a gradient of an inference pass (input gradients for filter visualization):
	 * dropout is then the identity. Read it through strata_backward_training(). */
	bool training;
	/* The layer's workspaces still hold what its forward call on this batch left in them: the
	 * host ran no other call of the layer in between. The layer may reuse them (Conv2D's im2col
	 * matrix) instead of computing them again. Read it through strata_backward_kept(). */
	bool workspaces_kept;
	/* Added in 0.3, starting at the old struct's end (a pointer is aligned to it): every input of
	 * the forward pass and the gradient to write for each (NULL where nobody needs it), in the
	 * model's order (inputs[0] == input, grad_inputs[0] == grad_input). Read them through
	 * strata_backward_input() and strata_backward_grad_input(). */
	strata_tensor *const *inputs;
	strata_tensor *const *grad_inputs;
	uint32_t n_inputs;
	/* Added in 0.4: as strata_forward_args.frozen, for the forward pass being differentiated. */
	bool frozen;
	/* Added in 0.4: as strata_forward_args.sample_offset, of the pass being differentiated. Read
	 * it through strata_backward_sample_offset(). */
	uint64_t sample_offset;
} strata_backward_args;

/* True when a struct the host handed over (one with a leading `size` field) is large enough to
 * hold `member`: fields past the writer's size are absent. */
#define STRATA_ARGS_HAS(args, type, member) \
	((args)->size >= offsetof(type, member) + sizeof(((const type *)0)->member))

/* A host older than the field only differentiated training passes. */
static inline bool strata_backward_training(const strata_backward_args *args)
{
	return !STRATA_ARGS_HAS(args, strata_backward_args, training) || args->training;
}

/* A host older than the field froze no layer's behaviour. */
static inline bool strata_forward_frozen(const strata_forward_args *args)
{
	return STRATA_ARGS_HAS(args, strata_forward_args, frozen) && args->frozen;
}

static inline bool strata_backward_frozen(const strata_backward_args *args)
{
	return STRATA_ARGS_HAS(args, strata_backward_args, frozen) && args->frozen;
}

/* A host older than the field computed whole batches. */
static inline uint64_t strata_forward_sample_offset(const strata_forward_args *args)
{
	return STRATA_ARGS_HAS(args, strata_forward_args, sample_offset) ? args->sample_offset : 0;
}

static inline uint64_t strata_backward_sample_offset(const strata_backward_args *args)
{
	return STRATA_ARGS_HAS(args, strata_backward_args, sample_offset) ? args->sample_offset : 0;
}

/* A host older than the field promised nothing about workspaces. */
static inline bool strata_backward_kept(const strata_backward_args *args)
{
	return STRATA_ARGS_HAS(args, strata_backward_args, workspaces_kept) && args->workspaces_kept;
}

/* Input i of a forward pass (0 <= i < the layer's input count); a host older than graphs
 * passed one input. */
static inline strata_tensor *strata_forward_input(const strata_forward_args *args, uint32_t i)
{
	if (STRATA_ARGS_HAS(args, strata_forward_args, n_inputs) && args->inputs)
		return i < args->n_inputs ? args->inputs[i] : NULL;
	return i == 0 ? args->input : NULL;
}

static inline strata_tensor *strata_backward_input(const strata_backward_args *args, uint32_t i)
{
	if (STRATA_ARGS_HAS(args, strata_backward_args, n_inputs) && args->inputs)
		return i < args->n_inputs ? args->inputs[i] : NULL;
	return i == 0 ? args->input : NULL;
}

/* The gradient of input i to write, NULL when nobody needs it. */
static inline strata_tensor *strata_backward_grad_input(const strata_backward_args *args, uint32_t i)
{
	if (STRATA_ARGS_HAS(args, strata_backward_args, n_inputs) && args->grad_inputs)
		return i < args->n_inputs ? args->grad_inputs[i] : NULL;
	return i == 0 ? args->grad_input : NULL;
}

/* Any number of inputs from min_inputs up (max_inputs). */
#define STRATA_INPUTS_ANY ((size_t)-1)

typedef struct strata_layer_ops {
	uint32_t size;               /* sizeof(strata_layer_ops) */
	const char *type;            /* YAML `type:` value, e.g. "conv2d" */
	const char *class_name;      /* Keras class shown by summary, e.g. "Conv2D" */
	const char *name_prefix;     /* default layer names: prefix_1, prefix_2, ... */
	const char *doc;             /* one line */
	const strata_param *params;
	uint32_t n_params;

	/* Validates the input shape, sets *out, declares weights and workspaces. No device work. */
	strata_status (*build)(strata_layer *layer, const strata_host *host, const strata_shape *in,
	                       strata_shape *out);
	/* Enqueues the forward pass. */
	strata_status (*forward)(strata_layer *layer, const strata_host *host,
	                         const strata_forward_args *args);
	/* Enqueues the backward pass: grad_input and the weight gradients (host->weight_grad).
	 * NULL while a layer supports inference only. */
	strata_status (*backward)(strata_layer *layer, const strata_host *host,
	                          const strata_backward_args *args);
	/* Frees what build() stored with host->set_private(). May be NULL. */
	void (*destroy)(strata_layer *layer, const strata_host *host);
	/* Added in 0.3 in what were reserved slots (a plugin built before reads as 0 and 0: exactly
	 * one input): how many inputs the type takes. build() sees each through host->input_count()
	 * and host->input_shape_at(); host->input_shape() is input 0's. */
	size_t min_inputs, max_inputs;
	/* Added in 0.3: the element types the type's build() reads and writes in shapes; false (a
	 * plugin built before) means float32 only: the host refuses other inputs before build(). */
	bool knows_dtypes;
	void *reserved[5];
	/* Added in 0.4: the layer learns in its own training forward pass, without gradients (a
	 * self-organizing map's Kohonen rule; its codebook is state, host->add_state). A model whose
	 * only learning happens so trains without a loss or labels: `strata train` runs forward passes
	 * with training true and no backward pass. The layer may leave backward NULL. */
	bool trains_itself;
} strata_layer_ops;

/* ---- Masks ------------------------------------------------------------------------------------- */

/* Added in 0.4: Keras' masks. A value (a layer's output) may carry a mask saying which of its
 * steps are real and which are padding: floats, 1 for a real step and 0 for a masked one, one per
 * element of the value's shape without its last axis (a sequence of (timesteps, features): one
 * per timestep), batch x that many, row-major. A layer declares in build() what it does with the
 * mask of its input 0 (host->mask_declare); one that declares nothing drops it, as a Keras layer
 * without masking support does. */
typedef enum strata_mask_use {
	STRATA_MASK_NONE = 0,    /* ignores a mask; its output carries none */
	STRATA_MASK_PASS = 1,    /* its output carries input 0's mask unchanged (it may also read it):
	                          * layers acting per step, as Dense on the last axis, Dropout; a layer
	                          * of several inputs passes their masks' AND (since 0.4: Keras'; an
	                          * input without a mask counts as all real) */
	STRATA_MASK_CONSUME = 2, /* reads input 0's mask; its output carries none (a recurrent layer
	                          * returning its last state, average pooling over the steps) */
	STRATA_MASK_PRODUCE = 3, /* writes its output's mask in forward() (Embedding with mask_zero,
	                          * Masking) */
} strata_mask_use;

/* ---- Host services ---------------------------------------------------------------------------- */

struct strata_host {
	uint32_t abi_version; /* STRATA_PLUGIN_ABI_VERSION of the host */
	uint32_t size;        /* sizeof(strata_host) as the host was built: check before using new slots */

	/* Registration, during init() only. Program names are global: use the plugin's name.
	 * `options` are the default build options (e.g. "-DTILE=16"). */
	strata_status (*register_program)(strata_registry *reg, const char *name, const char *source,
	                                  const char *options);
	strata_status (*register_layer)(strata_registry *reg, const strata_layer_ops *ops);

	/* Errors: records the message (prefixed by the layer's file:line:column and name) and returns
	 * `status`. fail_param() points at the parameter's value instead of the layer. */
	strata_status (*fail)(strata_layer *layer, strata_status status, const char *fmt, ...)
		STRATA_PRINTF(3, 4);
	strata_status (*fail_param)(strata_layer *layer, const char *param, strata_status status,
	                            const char *fmt, ...) STRATA_PRINTF(4, 5);
	void (*log)(strata_layer *layer, int level, const char *fmt, ...) STRATA_PRINTF(3, 4);

	/* Parameters, validated against the layer type's declaration before build() runs. */
	int64_t (*param_int)(const strata_layer *layer, const char *name);
	double (*param_float)(const strata_layer *layer, const char *name);
	bool (*param_bool)(const strata_layer *layer, const char *name);
	const char *(*param_string)(const strata_layer *layer, const char *name); /* ENUM, STRING */
	uint32_t (*param_ints)(const strata_layer *layer, const char *name, int64_t *out, uint32_t max);
	void (*param_regularizer)(const strata_layer *layer, const char *name, double *l1, double *l2);

	const char *(*layer_name)(const strata_layer *layer);
	void (*set_private)(strata_layer *layer, void *data);
	void *(*get_private)(const strata_layer *layer);
	const strata_shape *(*input_shape)(const strata_layer *layer);
	const strata_shape *(*output_shape)(const strata_layer *layer);

	/* During build(): weights (initialized and stored by the host) and scratch buffers
	 * (bytes_per_sample x batch, contents not kept between calls, except as
	 * strata_backward_args.workspaces_kept says). */
	strata_status (*add_weight)(strata_layer *layer, const strata_weight_desc *desc, uint32_t *index);
	strata_status (*add_workspace)(strata_layer *layer, size_t bytes_per_sample, uint32_t *index);

	/* During forward()/backward(). */
	strata_tensor *(*weight)(strata_layer *layer, uint32_t index);
	strata_tensor *(*weight_grad)(strata_layer *layer, uint32_t index);
	strata_tensor *(*workspace)(strata_layer *layer, uint32_t index);
	/* Compiled for the current device on first use and cached; NULL on failure with the error
	 * recorded (return host->last_status(layer)). `extra_options` adds -D defines (tunables). */
	strata_kernel *(*kernel)(strata_layer *layer, const char *program, const char *kernel_name,
	                         const char *extra_options);
	strata_status (*last_status)(const strata_layer *layer);
	/* Enqueues a kernel. `local` may be NULL (the runtime chooses); when given, `global` is
	 * rounded up to a multiple of it, so kernels must bounds-check their global ids. */
	strata_status (*launch)(strata_layer *layer, strata_kernel *kernel, uint32_t work_dim,
	                        const size_t *global, const size_t *local, uint32_t n_args,
	                        const strata_arg *args);
	strata_status (*gemm)(strata_layer *layer, const strata_gemm *gemm);
	/* Largest work-group size the kernel may use on the current device. */
	size_t (*max_work_group_size)(strata_layer *layer, strata_kernel *kernel);
	/* A launch-time tunable of the current device ("vw", "wg", "dropout_vw": see `strata tune`),
	 * fixed for the session; `fallback` for a name the host does not know. Added in 0.2 in a
	 * reserved slot: check with STRATA_HOST_HAS. */
	size_t (*tunable)(strata_layer *layer, const char *name, size_t fallback);
	/* Whether host->gemm takes `gemm` with its a_window (an im2col matrix read in place) on the
	 * current device; else build the matrix and pass it plainly. Added in 0.2 in a reserved
	 * slot: check with STRATA_HOST_HAS. */
	bool (*gemm_window)(strata_layer *layer, const strata_gemm *gemm);
	/* Added in 0.3 (graph models), in reserved slots: check with STRATA_HOST_HAS. The number of
	 * inputs of the layer and the shape of input i (NULL past the count), from build() on. */
	uint32_t (*input_count)(const strata_layer *layer);
	const strata_shape *(*input_shape_at)(const strata_layer *layer, uint32_t i);
	/* Persistent non-trainable state (BatchNormalization's moving mean and variance, a stateful
	 * RNN's carried state): declared during build() like a weight, initialized by the host,
	 * saved in checkpoints under LAYER/NAME, never touched by the optimizer, counted as
	 * non-trainable by `summary`; the layer updates it in its forward pass. */
	strata_status (*add_state)(strata_layer *layer, const strata_weight_desc *desc, uint32_t *index);
	strata_tensor *(*state)(strata_layer *layer, uint32_t index);

	/* Added in 0.3, in reserved slots: check with STRATA_HOST_HAS. The runtime's shared kernels
	 * (activations, the bias gradient's sums, copies, fills), declared as services so that the
	 * kernel names, argument orders and -D options of its "core" program stop being part of the
	 * ABI: a plugin calls these instead of host->kernel(layer, "core", ...). Each enqueues on the
	 * layer's session like host->launch (timed under the layer's name), checks that its sizes fit
	 * the kernels' int indexing and its tensors (STRATA_ERR_OVERFLOW, STRATA_ERR_PLUGIN, with the
	 * layer's message) and does nothing for an empty range. Activations are named as Keras does:
	 * "linear" (also NULL), "relu", "sigmoid", "tanh", "softmax" (along each row); another name
	 * is STRATA_ERR_INVALID. Matrices are row-major [rows, cols].
	 *
	 * y = act(x + bias), bias[cols] added to every row (NULL: none). y may be x (in place). */
	strata_status (*activation_forward)(strata_layer *layer, const char *activation, strata_tensor *y,
	                                    strata_tensor *x, strata_tensor *bias, size_t rows, size_t cols);
	/* dz = dLoss/dPreactivation from dy = dLoss/dy and the activation's output y: dy * act'(y)
	 * elementwise, the softmax Jacobian along each row ("linear": a copy; y is not read). dz may
	 * be dy (in place). Where the loss already folded the activation in (activation_folded),
	 * pass "linear". */
	strata_status (*activation_backward)(strata_layer *layer, const char *activation, strata_tensor *dz,
	                                     strata_tensor *dy, strata_tensor *y, size_t rows, size_t cols);
	/* The bias gradient: dz (dLoss/dy) becomes dLoss/dPreactivation in place as by
	 * activation_backward(activation, dz, dz, y) ("linear" leaves dz and y unread), then
	 * sums[cols] = the sums of dz's columns, overwritten (zeros for rows == 0). The derivative
	 * and the sums share one pass over dz, which stores partial sums of blocks of rows in
	 * `scratch`, room for `scratch_floats` floats (at least cols): ceil(rows / 64) * cols give
	 * the most parallel pass, less makes the blocks longer. A scratch of fewer than cols floats
	 * (NULL and 0) makes one work-item per column add up all the rows: slower for many rows. */
	strata_status (*column_sums)(strata_layer *layer, const char *activation, strata_tensor *sums,
	                             strata_tensor *dz, strata_tensor *y, size_t rows, size_t cols,
	                             strata_tensor *scratch, size_t scratch_floats);
	/* dst[0..n) = src[0..n): identity layers and their gradients. */
	strata_status (*copy)(strata_layer *layer, strata_tensor *dst, strata_tensor *src, size_t n);
	/* dst[0..n) = value: the gradients of an empty batch. */
	strata_status (*fill)(strata_layer *layer, strata_tensor *dst, float value, size_t n);

	/* Added in 0.4, in a reserved slot: check with STRATA_HOST_HAS. The activations of Keras 3
	 * the services above also take since 0.4, by Keras' names: "elu", "selu", "gelu" (exact, with
	 * erf), "swish" (also "silu"), "softplus", "softsign", "hard_sigmoid" (relu6(x + 3) / 6),
	 * "exponential", "relu6", "leaky_relu" (negative slope 0.2), "hard_silu" (also "hard_swish"),
	 * "mish". The derivative of gelu, swish, hard_silu and mish is no function of their output, so
	 * activation_backward() and column_sums() refuse them (STRATA_ERR_INVALID): a layer that
	 * fuses one keeps its input x (before the activation) and calls this instead:
	 * dz = dy * act'(x + bias) elementwise, bias[cols] added to every row of x (NULL: none), for
	 * every activation but softmax (and log_softmax). dz may be dy (in place). Since issue 16 the
	 * services also take "log_softmax", row-wise as softmax (its derivative from its output). */
	strata_status (*activation_backward_input)(strata_layer *layer, const char *activation, strata_tensor *dz,
	                                           strata_tensor *dy, strata_tensor *x, strata_tensor *bias,
	                                           size_t rows, size_t cols);
	/* Added in 0.4: a FLOATS parameter's numbers into out[0..max), returning how many it has (as
	 * param_ints does). */
	uint32_t (*param_floats)(const strata_layer *layer, const char *name, double *out, uint32_t max);

	/* Added in 0.4, in reserved slots: check with STRATA_HOST_HAS. Masks (strata_mask_use above).
	 * During build(): what the layer does with input 0's mask (NONE unless declared). PASS keeps
	 * the mask only where the output's shape without its last axis has as many elements as the
	 * mask (else the mask stops there). */
	strata_status (*mask_declare)(strata_layer *layer, strata_mask_use use);
	/* During forward() and backward(): `which` 0 is input 0's mask, NULL when that value carries
	 * none; -1 is the output's, to write in forward() (PRODUCE only; NULL otherwise). */
	strata_tensor *(*mask)(strata_layer *layer, int which);

	/* Added in 0.5, in the last reserved slot: check with STRATA_HOST_HAS. gemm(gemm), then
	 * activation_forward(activation, c, c, bias, m, n) on its output: C = act(alpha op(A) op(B) +
	 * beta C + bias[col]), in one pass over C where the device's GEMM can (Strata's CPU GEMM:
	 * "linear" and "relu", in its epilogue), else as the two calls; the same numbers either way.
	 * C must be whole rows (c_offset 0, ldc == n); bias may be NULL. */
	strata_status (*gemm_bias_activation)(strata_layer *layer, const strata_gemm *gemm, strata_tensor *bias,
	                                      const char *activation);
};

/* True when the host's table is large enough to hold `member` (for plugins that use slots
 * added after the ABI version they were written for). */
#define STRATA_HOST_HAS(host, member) \
	((host)->size >= offsetof(strata_host, member) + sizeof((host)->member) && (host)->member != NULL)

/* ---- The plugin descriptor -------------------------------------------------------------------- */

typedef struct strata_plugin {
	uint32_t abi_version; /* STRATA_PLUGIN_ABI_VERSION the plugin was built against; read first */
	uint32_t size;        /* sizeof(strata_plugin) as the plugin was built */
	const char *name;     /* short name, e.g. "conv2d" */
	const char *version;  /* the plugin's own version */
	const char *description;
	/* Registers programs and layer types; does no other work. */
	strata_status (*init)(const strata_host *host, strata_registry *reg);
	void *reserved[8];
} strata_plugin;

typedef const strata_plugin *(*strata_plugin_entry_fn)(void);

/* Defines the one exported entry symbol of a plugin. */
#define STRATA_PLUGIN_DEFINE(descriptor)                                                  \
	STRATA_PLUGIN_EXPORT const strata_plugin *STRATA_PLUGIN_ENTRY(void);               \
	STRATA_PLUGIN_EXPORT const strata_plugin *STRATA_PLUGIN_ENTRY(void) { return &(descriptor); }

#ifdef __cplusplus
}
#endif
#endif
