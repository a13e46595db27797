/* The function table handed to plugins: every service a layer uses goes through here, so a
 * plugin links against nothing of Strata's and the host can change behind the table. The
 * services over the runtime's shared kernels live in host_services.c. */
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gemm/gemm.h"
#include "exec/host_api.h"
#include "base/initializers.h"
#include "model/model.h"
#include "plugin/registry.h"
#include "device/runtime.h"
#include "exec/session.h"

static strata_status host_register_program(strata_registry *reg, const char *name, const char *source,
                                           const char *options)
{
	return st_registry_add_program(reg, name, source, options, reg->init_err);
}

static strata_status host_register_layer(strata_registry *reg, const strata_layer_ops *ops)
{
	return st_registry_add_layer(reg, ops, reg->init_err);
}

static strata_status host_fail_param(strata_layer *layer, const char *param, strata_status status,
                                     const char *fmt, ...)
{
	const st_param_value *v = st_layer_param(layer, param);
	va_list ap;
	va_start(ap, fmt);
	strata_status st = st_layer_vfail(layer, v ? v->pos : layer->pos, status, fmt, ap);
	va_end(ap);
	return st;
}

static void host_log(strata_layer *layer, int level, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	st_registry_log(layer->model->reg, level, "%s: %s", layer->name, msg);
}

/* A plugin asking for a parameter it never declared is a plugin bug: say so once, loudly. */
static const st_param_value *param(const strata_layer *layer, const char *name)
{
	const st_param_value *v = st_layer_param(layer, name);
	if (!v)
		st_registry_log(layer->model->reg, STRATA_LOG_ERROR, "%s: plugin asked for undeclared parameter '%s'",
		                layer->name, name);
	return v;
}

static int64_t host_param_int(const strata_layer *layer, const char *name)
{
	const st_param_value *v = param(layer, name);
	return v ? v->i : 0;
}

static double host_param_float(const strata_layer *layer, const char *name)
{
	const st_param_value *v = param(layer, name);
	return v ? v->f : 0.0;
}

static bool host_param_bool(const strata_layer *layer, const char *name)
{
	const st_param_value *v = param(layer, name);
	return v ? v->i != 0 : false;
}

static const char *host_param_string(const strata_layer *layer, const char *name)
{
	const st_param_value *v = param(layer, name);
	return v ? v->s : NULL;
}

static uint32_t host_param_ints(const strata_layer *layer, const char *name, int64_t *out, uint32_t max)
{
	const st_param_value *v = param(layer, name);
	if (!v)
		return 0;
	uint32_t n = v->n_ints < max ? v->n_ints : max;
	memcpy(out, v->ints, n * sizeof(*out));
	return v->n_ints;
}

static uint32_t host_param_floats(const strata_layer *layer, const char *name, double *out, uint32_t max)
{
	const st_param_value *v = param(layer, name);
	if (!v)
		return 0;
	uint32_t n = v->n_floats < max ? v->n_floats : max;
	memcpy(out, v->floats, n * sizeof(*out));
	return v->n_floats;
}

static void host_param_regularizer(const strata_layer *layer, const char *name, double *l1, double *l2)
{
	const st_param_value *v = param(layer, name);
	*l1 = v ? v->l1 : 0.0;
	*l2 = v ? v->l2 : 0.0;
}

static const char *host_layer_name(const strata_layer *layer)
{
	return layer->name;
}

static void host_set_private(strata_layer *layer, void *data)
{
	layer->priv = data;
}

static void *host_get_private(const strata_layer *layer)
{
	return layer->priv;
}

/* A distributed layer's plugin sees one step (model.h). */
static const strata_shape *host_input_shape(const strata_layer *layer)
{
	return layer->distributed && layer->step_in_shapes ? &layer->step_in_shapes[0] : &layer->in;
}

static const strata_shape *host_output_shape(const strata_layer *layer)
{
	return layer->distributed ? &layer->step_out : &layer->out;
}

static uint32_t host_input_count(const strata_layer *layer)
{
	return layer->n_inputs;
}

static const strata_shape *host_input_shape_at(const strata_layer *layer, uint32_t i)
{
	if (layer->distributed)
		return i < layer->n_inputs && layer->step_in_shapes ? &layer->step_in_shapes[i] : NULL;
	return i < layer->n_inputs && layer->in_shapes ? &layer->in_shapes[i] : NULL;
}

/* The constraint parameter `desc->constraint` of the layer, its axes resolved against the
 * weight's shape as Keras resolves them (negative from the end). */
static strata_status constraint_of(strata_layer *layer, const strata_weight_desc *desc, st_weight_decl *d)
{
	const st_param_value *v = st_layer_param(layer, desc->constraint);
	if (!v || v->decl->type != STRATA_PARAM_CONSTRAINT)
		return st_layer_fail(layer, STRATA_ERR_PLUGIN, "weight '%s': '%s' is no constraint parameter of the layer",
		                     desc->name, desc->constraint);
	d->constraint = v->constraint;
	d->max_value = v->f;
	d->constraint_axes = 0;
	if (v->constraint != ST_CONSTRAINT_MAX_NORM)
		return STRATA_OK;
	int rank = (int)desc->shape.rank;
	for (uint32_t i = 0; i < v->n_ints; i++) {
		int64_t a = v->ints[i] < 0 ? v->ints[i] + rank : v->ints[i];
		if (a < 0 || a >= rank)
			return st_layer_fail(layer, STRATA_ERR_INVALID, "'%s': axis %lld is outside weight '%s' of rank %d",
			                     desc->constraint, (long long)v->ints[i], desc->name, rank);
		d->constraint_axes |= 1u << a;
	}
	return STRATA_OK;
}

static strata_status host_add_weight(strata_layer *layer, const strata_weight_desc *desc, uint32_t *index)
{
	if (!desc || desc->size < offsetof(strata_weight_desc, l1) || !desc->name || !desc->initializer)
		return st_layer_fail(layer, STRATA_ERR_PLUGIN, "add_weight: malformed weight description");
	if (layer->session)
		return st_layer_fail(layer, STRATA_ERR_PLUGIN, "add_weight is allowed only during build()");
	if (!st_initializer_known(desc->initializer))
		return st_layer_fail(layer, STRATA_ERR_INVALID, "unknown initializer '%s' (available: %s)",
		                 desc->initializer, st_initializer_names());
	if (desc->shape.rank == 0 || desc->shape.rank > STRATA_MAX_RANK)
		return st_layer_fail(layer, STRATA_ERR_PLUGIN, "weight '%s' has rank %u", desc->name, desc->shape.rank);
	uint64_t blocks = st_initializer_blocks(desc->initializer);
	if (blocks > 1 && (desc->shape.dims[desc->shape.rank - 1] < 1 ||
	                   (uint64_t)desc->shape.dims[desc->shape.rank - 1] % blocks))
		return st_layer_fail(layer, STRATA_ERR_PLUGIN, "weight '%s': %llu initializers do not split its last axis of %lld",
		                     desc->name, (unsigned long long)blocks, (long long)desc->shape.dims[desc->shape.rank - 1]);
	uint64_t count = 1;
	for (uint32_t i = 0; i < desc->shape.rank; i++) {
		int64_t d = desc->shape.dims[i];
		if (d < 1 || __builtin_mul_overflow(count, (uint64_t)d, &count) || count > INT32_MAX)
			return st_layer_fail(layer, STRATA_ERR_OVERFLOW, "weight '%s' is too large or has a dimension < 1",
			                 desc->name);
	}
	st_weight_decl *w = realloc(layer->weights, (layer->n_weights + 1) * sizeof(*w));
	if (!w)
		return st_layer_fail(layer, STRATA_ERR_NO_MEMORY, "out of memory");
	layer->weights = w;
	st_weight_decl *d = &w[layer->n_weights];
	memset(d, 0, sizeof(*d));
	d->name = strdup(desc->name);
	d->initializer = strdup(desc->initializer);
	if (!d->name || !d->initializer) {
		free(d->name);
		free(d->initializer);
		return st_layer_fail(layer, STRATA_ERR_NO_MEMORY, "out of memory");
	}
	d->shape = desc->shape;
	d->count = count;
	if (desc->size >= offsetof(strata_weight_desc, l2) + sizeof(desc->l2)) {
		d->l1 = desc->l1;
		d->l2 = desc->l2;
	}
	if (desc->size >= offsetof(strata_weight_desc, constraint) + sizeof(desc->constraint) && desc->constraint) {
		strata_status st = constraint_of(layer, desc, d);
		if (st) {
			free(d->name);
			free(d->initializer);
			return st;
		}
	}
	if (index)
		*index = layer->n_weights;
	layer->n_weights++;
	return STRATA_OK;
}

/* State is declared as a weight the optimizer never sees: it is kept in the session's own
 * buffers (outside the weight pool), saved and loaded with the weights, and has no gradient. */
static strata_status host_add_state(strata_layer *layer, const strata_weight_desc *desc, uint32_t *index)
{
	uint32_t i;
	strata_status st = host_add_weight(layer, desc, &i);
	if (st)
		return st;
	layer->weights[i].state = true;
	layer->n_states++;
	if (index)
		*index = i;
	return STRATA_OK;
}

static strata_status host_add_workspace(strata_layer *layer, size_t bytes_per_sample, uint32_t *index)
{
	if (layer->session)
		return st_layer_fail(layer, STRATA_ERR_PLUGIN, "add_workspace is allowed only during build()");
	if (bytes_per_sample == 0 || bytes_per_sample > ((size_t)1 << 40))
		return st_layer_fail(layer, STRATA_ERR_OVERFLOW, "workspace of %zu bytes per sample", bytes_per_sample);
	size_t *w = realloc(layer->workspaces, (layer->n_workspaces + 1) * sizeof(*w));
	if (!w)
		return st_layer_fail(layer, STRATA_ERR_NO_MEMORY, "out of memory");
	layer->workspaces = w;
	w[layer->n_workspaces] = bytes_per_sample;
	if (index)
		*index = layer->n_workspaces;
	layer->n_workspaces++;
	return STRATA_OK;
}

static st_layer_bind *bind_of(strata_layer *layer)
{
	return layer->session ? &layer->session->binds[layer->index] : NULL;
}

static strata_tensor *host_weight(strata_layer *layer, uint32_t index)
{
	st_layer_bind *b = bind_of(layer);
	return b && index < layer->n_weights ? &b->weights[index] : NULL;
}

static strata_tensor *host_weight_grad(strata_layer *layer, uint32_t index)
{
	st_layer_bind *b = bind_of(layer);
	return b && b->grads && index < layer->n_weights && !layer->weights[index].state ? &b->grads[index] : NULL;
}

static strata_tensor *host_state(strata_layer *layer, uint32_t index)
{
	st_layer_bind *b = bind_of(layer);
	return b && index < layer->n_weights && layer->weights[index].state ? &b->weights[index] : NULL;
}

static strata_tensor *host_workspace(strata_layer *layer, uint32_t index)
{
	st_layer_bind *b = bind_of(layer);
	return b && index < layer->n_workspaces ? &b->workspaces[index] : NULL;
}

static strata_status host_mask_declare(strata_layer *layer, strata_mask_use use)
{
	if (layer->session)
		return st_layer_fail(layer, STRATA_ERR_PLUGIN, "mask_declare is allowed only during build()");
	if ((unsigned)use > STRATA_MASK_PRODUCE)
		return st_layer_fail(layer, STRATA_ERR_PLUGIN, "mask_declare: unknown use %d", (int)use);
	layer->mask_use = use;
	return STRATA_OK;
}

/* Input 0's mask (which 0) or the output's to write (-1, for a layer that produces it). */
static strata_tensor *host_mask(strata_layer *layer, int which)
{
	strata_session *s = layer->session;
	if (!s)
		return NULL;
	if (which == -1)
		return layer->mask_use == STRATA_MASK_PRODUCE && layer->mask_of == (int64_t)layer->index
		               ? &s->binds[layer->index].mask
		               : NULL;
	if (which != 0 || layer->n_inputs == 0 || layer->mask_use == STRATA_MASK_NONE)
		return NULL;
	int64_t of = st_value_mask_of(layer->model, layer->inputs[0]);
	return of >= 0 ? &s->binds[of].mask : NULL;
}

static strata_kernel *host_kernel(strata_layer *layer, const char *program, const char *kernel_name,
                                  const char *extra_options)
{
	if (!layer->session) {
		st_layer_fail(layer, STRATA_ERR_PLUGIN, "kernel() called outside a session");
		return NULL;
	}
	strata_kernel *k = NULL;
	strata_status st = st_kernel_get(layer->session->rt, program, kernel_name, extra_options, &k, layer->err);
	layer->last_status = st;
	return st == STRATA_OK ? k : NULL;
}

static strata_status host_last_status(const strata_layer *layer)
{
	return layer->last_status;
}

static strata_status host_launch(strata_layer *layer, strata_kernel *kernel, uint32_t work_dim,
                                 const size_t *global, const size_t *local, uint32_t n_args,
                                 const strata_arg *args)
{
	if (!layer->session || !kernel)
		return st_layer_fail(layer, STRATA_ERR_PLUGIN, "launch() needs a session and a kernel");
	strata_status st = st_launch(layer->session->rt, layer->name, kernel, work_dim, global, local, n_args, args,
	                             layer->err);
	return layer->last_status = st;
}

/* A plugin's strata_gemm as this host's: fields added after the plugin was built are absent. */
static bool gemm_of(const strata_gemm *in, strata_gemm *out)
{
	if (!in || in->size < offsetof(strata_gemm, a_window))
		return false;
	memset(out, 0, sizeof(*out));
	memcpy(out, in, in->size < sizeof(*out) ? in->size : sizeof(*out));
	return true;
}

static strata_status host_gemm(strata_layer *layer, const strata_gemm *gemm)
{
	strata_gemm g;
	if (!layer->session || !gemm_of(gemm, &g))
		return st_layer_fail(layer, STRATA_ERR_PLUGIN, "gemm() needs a session and a strata_gemm with its size");
	strata_status st = st_gemm(layer->session->rt, layer->name, &g, layer->err);
	return layer->last_status = st;
}

/* The GEMM with its bias and activation: in the GEMM's epilogue where the runtime's GEMM has
 * one for them (linear, relu), else the GEMM and then activation_forward. */
static strata_status host_gemm_bias_activation(strata_layer *layer, const strata_gemm *gemm, strata_tensor *bias,
                                               const char *activation)
{
	strata_gemm g;
	if (!layer->session || !gemm_of(gemm, &g))
		return st_layer_fail(layer, STRATA_ERR_PLUGIN,
		                     "gemm_bias_activation() needs a session and a strata_gemm with its size");
	if (g.c_offset != 0 || g.ldc != g.n)
		return st_layer_fail(layer, STRATA_ERR_PLUGIN,
		                     "gemm_bias_activation(): C must be whole rows (c_offset 0, ldc == n; here %zu and %zu "
		                     "for n %zu)", g.c_offset, g.ldc, g.n);
	if (bias && bias->bytes / sizeof(float) < g.n)
		return st_layer_fail(layer, STRATA_ERR_PLUGIN, "gemm_bias_activation(): the bias holds %zu floats, %zu needed",
		                     bias->bytes / sizeof(float), g.n);
	bool linear = !activation || !strcmp(activation, "linear"), relu = activation && !strcmp(activation, "relu");
	strata_runtime *rt = layer->session->rt;
	if ((linear || relu) && st_gemm_fuses(rt, &g)) {
		st_gemm_epilogue ep = {.bias = bias, .relu = relu};
		return layer->last_status = st_gemm_fused(rt, layer->name, &g, &ep, layer->err);
	}
	strata_status st = st_gemm(rt, layer->name, &g, layer->err);
	if (st)
		return layer->last_status = st;
	return st_host_activation_forward(layer, activation ? activation : "linear", g.c, g.c, bias, g.m, g.n);
}

static bool host_gemm_window(strata_layer *layer, const strata_gemm *gemm)
{
	strata_gemm g;
	const st_gemm_tile_plan *plan;
	return layer->session && gemm_of(gemm, &g) && g.a_window && st_gemm_window_valid(&g) &&
	       st_gemm_engine_for(layer->session->rt, &g, &plan) == ST_GEMM_TILE;
}

static size_t host_max_work_group_size(strata_layer *layer, strata_kernel *kernel)
{
	(void)layer;
	return kernel ? kernel->max_work_group_size : 1;
}

static size_t host_tunable(strata_layer *layer, const char *name, size_t fallback)
{
	int t = st_tunable_index(name);
	return t >= 0 && layer->session ? layer->session->tunables.v[t] : fallback;
}

const strata_host st_host_api = {
	.abi_version = STRATA_PLUGIN_ABI_VERSION,
	.size = sizeof(strata_host),
	.register_program = host_register_program,
	.register_layer = host_register_layer,
	.fail = st_layer_fail,
	.fail_param = host_fail_param,
	.log = host_log,
	.param_int = host_param_int,
	.param_float = host_param_float,
	.param_bool = host_param_bool,
	.param_string = host_param_string,
	.param_ints = host_param_ints,
	.param_regularizer = host_param_regularizer,
	.layer_name = host_layer_name,
	.set_private = host_set_private,
	.get_private = host_get_private,
	.input_shape = host_input_shape,
	.output_shape = host_output_shape,
	.add_weight = host_add_weight,
	.add_workspace = host_add_workspace,
	.weight = host_weight,
	.weight_grad = host_weight_grad,
	.workspace = host_workspace,
	.kernel = host_kernel,
	.last_status = host_last_status,
	.launch = host_launch,
	.gemm = host_gemm,
	.max_work_group_size = host_max_work_group_size,
	.tunable = host_tunable,
	.gemm_window = host_gemm_window,
	.input_count = host_input_count,
	.input_shape_at = host_input_shape_at,
	.add_state = host_add_state,
	.state = host_state,
	.activation_forward = st_host_activation_forward,
	.activation_backward = st_host_activation_backward,
	.activation_backward_input = st_host_activation_backward_input,
	.param_floats = host_param_floats,
	.mask_declare = host_mask_declare,
	.mask = host_mask,
	.column_sums = st_host_column_sums,
	.copy = st_host_copy,
	.fill = st_host_fill,
	.gemm_bias_activation = host_gemm_bias_activation,
};

/* Every call into a plugin runs with the layer's error sink set, and leaves a message even when
 * the plugin wrote none. */
static strata_error *begin_call(strata_layer *layer, strata_error *err, strata_error *local)
{
	layer->err = err ? err : local;
	layer->err->message[0] = '\0';
	layer->last_status = STRATA_OK;
	return layer->err;
}

static strata_status end_call(strata_layer *layer, strata_status st, const char *pass)
{
	if (st != STRATA_OK && layer->err->message[0] == '\0')
		st_fail(layer->err, st, "%s: %s pass failed: %s", layer->name, pass, strata_status_name(st));
	layer->err = NULL;
	return st;
}

strata_status st_host_forward(strata_layer *layer, const strata_forward_args *args, strata_error *err)
{
	strata_error local = {0};
	begin_call(layer, err, &local);
	return end_call(layer, layer->type->ops.forward(layer, &st_host_api, args), "forward");
}

strata_status st_host_backward(strata_layer *layer, const strata_backward_args *args, strata_error *err)
{
	strata_error local = {0};
	begin_call(layer, err, &local);
	return end_call(layer, layer->type->ops.backward(layer, &st_host_api, args), "backward");
}
