/* Layers over the steps of a sequence (issue 15), as Keras': Masking (marks the steps whose
 * features all equal mask_value as padding, for the recurrent layers after it to skip), and
 * GlobalAveragePooling1D (the mean over the real steps: it honours a mask) and
 * GlobalMaxPooling1D (the maximum over all steps; Keras' takes no mask) over (steps, channels).
 * No weights. */
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>

#include <strata/plugin.h>

#include "sequence_cl.h"
#include "shape.h"

static const strata_param masking_params[] = {
	{.name = "mask_value", .type = STRATA_PARAM_FLOAT, .default_value = "0.0", .min = -1e30, .max = 1e30,
	 .doc = "a step whose features all equal it is padding: masked, its output zeros"},
};

static const strata_param pooling1d_params[] = {
	{.name = "data_format", .type = STRATA_PARAM_UNSUPPORTED, .default_value = "channels_last",
	 .doc = "Strata's sequences are (steps, channels) only"},
	{.name = "keepdims", .type = STRATA_PARAM_BOOL, .default_value = "false",
	 .doc = "true: the output keeps the steps axis, (1, channels) instead of (channels)"},
};

/* Rows (elements without the last axis) and channels per sample, checked against int indexing. */
static strata_status sequence_dims(strata_layer *layer, const strata_host *host, uint32_t batch, int *rows,
                                   int *channels)
{
	const strata_shape *in = host->input_shape(layer);
	int64_t r = 1;
	for (uint32_t d = 0; d + 1 < in->rank; d++)
		r *= in->dims[d];
	*rows = (int)r;
	*channels = (int)in->dims[in->rank - 1];
	return shape_check_batch(layer, host, batch, (size_t)(r * in->dims[in->rank - 1]));
}

static strata_status sequence_launch(strata_layer *layer, const strata_host *host, const char *name, uint32_t dims,
                                     size_t g0, size_t g1, uint32_t n, const strata_arg *args)
{
	strata_kernel *k = host->kernel(layer, "sequence", name, NULL);
	if (!k)
		return host->last_status(layer);
	size_t global[2] = {g0, g1};
	return host->launch(layer, k, dims, global, NULL, n, args);
}

static bool has_masks(const strata_host *host)
{
	return STRATA_HOST_HAS(host, mask_declare) && STRATA_HOST_HAS(host, mask);
}

/* ---- Masking ---------------------------------------------------------------------------------- */

static strata_status masking_build(strata_layer *layer, const strata_host *host, const strata_shape *in,
                                   strata_shape *out)
{
	char buf[96];
	if (in->rank < 2)
		return host->fail(layer, STRATA_ERR_INVALID, "Masking needs sequences of (steps, features), got %s",
		                  shape_format(in, buf, sizeof(buf)));
	if (!has_masks(host))
		return host->fail(layer, STRATA_ERR_UNSUPPORTED, "the host has no masks (added in 0.4): use a newer Strata");
	*out = *in;
	return host->mask_declare(layer, STRATA_MASK_PRODUCE);
}

static strata_status masking_forward(strata_layer *layer, const strata_host *host, const strata_forward_args *args)
{
	int rows, channels;
	strata_status st = sequence_dims(layer, host, args->batch, &rows, &channels);
	if (st != STRATA_OK || args->batch == 0)
		return st;
	rows *= (int)args->batch;
	strata_arg a[] = {
		strata_arg_tensor(args->input), strata_arg_tensor(args->output), strata_arg_tensor(host->mask(layer, -1)),
		strata_arg_int(rows), strata_arg_int(channels), strata_arg_float((float)host->param_float(layer, "mask_value")),
	};
	return sequence_launch(layer, host, "masking_forward", 1, (size_t)rows, 1, sizeof(a) / sizeof(a[0]), a);
}

static strata_status masking_backward(strata_layer *layer, const strata_host *host, const strata_backward_args *args)
{
	int rows, channels;
	strata_status st = sequence_dims(layer, host, args->batch, &rows, &channels);
	if (st != STRATA_OK || args->batch == 0 || !args->grad_input)
		return st;
	rows *= (int)args->batch;
	strata_arg a[] = {
		strata_arg_tensor(args->grad_output), strata_arg_tensor(args->grad_input),
		strata_arg_tensor(host->mask(layer, -1)), strata_arg_int(rows), strata_arg_int(channels),
	};
	return sequence_launch(layer, host, "masking_backward", 2, (size_t)channels, (size_t)rows,
	                       sizeof(a) / sizeof(a[0]), a);
}

/* ---- global pooling over the steps ------------------------------------------------------------ */

static strata_status pooling1d_build(strata_layer *layer, const strata_host *host, const strata_shape *in,
                                     strata_shape *out, bool average)
{
	char buf[96];
	if (in->rank != 2)
		return host->fail(layer, STRATA_ERR_INVALID, "%s needs a (steps, channels) input, got %s",
		                  average ? "GlobalAveragePooling1D" : "GlobalMaxPooling1D", shape_format(in, buf, sizeof(buf)));
	int64_t count;
	if (!shape_mul(in->dims[0], in->dims[1], INT_MAX, &count))
		return host->fail(layer, STRATA_ERR_OVERFLOW, "input %s is too large", shape_format(in, buf, sizeof(buf)));
	if (host->param_bool(layer, "keepdims"))
		*out = (strata_shape){.rank = 2, .dims = {1, in->dims[1]}};
	else
		*out = (strata_shape){.rank = 1, .dims = {in->dims[1]}};
	/* The average skips masked steps, as Keras'; the max takes every step, as Keras'. */
	return average && has_masks(host) ? host->mask_declare(layer, STRATA_MASK_CONSUME) : STRATA_OK;
}

static strata_status gap1d_build(strata_layer *layer, const strata_host *host, const strata_shape *in,
                                 strata_shape *out)
{
	return pooling1d_build(layer, host, in, out, true);
}

static strata_status gmp1d_build(strata_layer *layer, const strata_host *host, const strata_shape *in,
                                 strata_shape *out)
{
	return pooling1d_build(layer, host, in, out, false);
}

/* The mask's kernel arguments: the tensor (a placeholder when there is none) and whether it is. */
static void mask_args(strata_layer *layer, const strata_host *host, strata_tensor *placeholder, strata_arg *a)
{
	strata_tensor *mask = has_masks(host) ? host->mask(layer, 0) : NULL;
	a[0] = strata_arg_tensor(mask ? mask : placeholder);
	a[1] = strata_arg_int(mask != NULL);
}

static strata_status gap1d_forward(strata_layer *layer, const strata_host *host, const strata_forward_args *args)
{
	int steps, channels;
	strata_status st = sequence_dims(layer, host, args->batch, &steps, &channels);
	if (st != STRATA_OK || args->batch == 0)
		return st;
	strata_arg a[7] = {strata_arg_tensor(args->input), strata_arg_tensor(args->output)};
	mask_args(layer, host, args->input, a + 2);
	a[4] = strata_arg_int((int32_t)args->batch);
	a[5] = strata_arg_int(steps);
	a[6] = strata_arg_int(channels);
	return sequence_launch(layer, host, "gap1d_forward", 2, (size_t)channels, args->batch, 7, a);
}

static strata_status gap1d_backward(strata_layer *layer, const strata_host *host, const strata_backward_args *args)
{
	int steps, channels;
	strata_status st = sequence_dims(layer, host, args->batch, &steps, &channels);
	if (st != STRATA_OK || args->batch == 0 || !args->grad_input)
		return st;
	strata_arg a[7] = {strata_arg_tensor(args->grad_output), strata_arg_tensor(args->grad_input)};
	mask_args(layer, host, args->grad_output, a + 2);
	a[4] = strata_arg_int((int32_t)args->batch);
	a[5] = strata_arg_int(steps);
	a[6] = strata_arg_int(channels);
	return sequence_launch(layer, host, "gap1d_backward", 2, (size_t)channels, (size_t)args->batch * (size_t)steps,
	                       7, a);
}

static strata_status gmp1d_forward(strata_layer *layer, const strata_host *host, const strata_forward_args *args)
{
	int steps, channels;
	strata_status st = sequence_dims(layer, host, args->batch, &steps, &channels);
	if (st != STRATA_OK || args->batch == 0)
		return st;
	strata_arg a[] = {
		strata_arg_tensor(args->input), strata_arg_tensor(args->output), strata_arg_int((int32_t)args->batch),
		strata_arg_int(steps), strata_arg_int(channels),
	};
	return sequence_launch(layer, host, "gmp1d_forward", 2, (size_t)channels, args->batch, sizeof(a) / sizeof(a[0]), a);
}

static strata_status gmp1d_backward(strata_layer *layer, const strata_host *host, const strata_backward_args *args)
{
	int steps, channels;
	strata_status st = sequence_dims(layer, host, args->batch, &steps, &channels);
	if (st != STRATA_OK || args->batch == 0 || !args->grad_input)
		return st;
	strata_arg a[] = {
		strata_arg_tensor(args->input), strata_arg_tensor(args->grad_output), strata_arg_tensor(args->grad_input),
		strata_arg_int((int32_t)args->batch), strata_arg_int(steps), strata_arg_int(channels),
	};
	return sequence_launch(layer, host, "gmp1d_backward", 2, (size_t)channels, args->batch, sizeof(a) / sizeof(a[0]), a);
}

static const strata_layer_ops sequence_ops[] = {
	{
		.size = sizeof(strata_layer_ops),
		.type = "masking",
		.class_name = "Masking",
		.name_prefix = "masking",
		.doc = "marks the steps whose features all equal mask_value as padding, for the layers after it to skip",
		.params = masking_params,
		.n_params = sizeof(masking_params) / sizeof(masking_params[0]),
		.build = masking_build,
		.forward = masking_forward,
		.backward = masking_backward,
	},
	{
		.size = sizeof(strata_layer_ops),
		.type = "global_average_pooling1d",
		.class_name = "GlobalAveragePooling1D",
		.name_prefix = "global_average_pooling1d",
		.doc = "the mean over the steps of (steps, channels) inputs, skipping masked steps",
		.params = pooling1d_params,
		.n_params = sizeof(pooling1d_params) / sizeof(pooling1d_params[0]),
		.build = gap1d_build,
		.forward = gap1d_forward,
		.backward = gap1d_backward,
	},
	{
		.size = sizeof(strata_layer_ops),
		.type = "global_max_pooling1d",
		.class_name = "GlobalMaxPooling1D",
		.name_prefix = "global_max_pooling1d",
		.doc = "the maximum over the steps of (steps, channels) inputs; the gradient goes to the first maximum",
		.params = pooling1d_params,
		.n_params = sizeof(pooling1d_params) / sizeof(pooling1d_params[0]),
		.build = gmp1d_build,
		.forward = gmp1d_forward,
		.backward = gmp1d_backward,
	},
};

static strata_status sequence_init(const strata_host *host, strata_registry *reg)
{
	strata_status st = host->register_program(reg, "sequence", sequence_cl_source, "");
	for (size_t i = 0; i < sizeof(sequence_ops) / sizeof(sequence_ops[0]) && st == STRATA_OK; i++)
		st = host->register_layer(reg, &sequence_ops[i]);
	return st;
}

static const strata_plugin sequence_plugin = {
	.abi_version = STRATA_PLUGIN_ABI_VERSION,
	.size = sizeof(strata_plugin),
	.name = "sequence",
	.version = "1.0.0",
	.description = "Masking, GlobalAveragePooling1D and GlobalMaxPooling1D over the steps of sequences",
	.init = sequence_init,
};

STRATA_PLUGIN_DEFINE(sequence_plugin)
