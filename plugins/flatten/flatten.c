/* Flatten: Keras' Flatten. Tensors are stored channels-last, so the flat order Keras uses is
 * the storage order and both passes are plain copies. */
#include <limits.h>

#include <strata/plugin.h>

#include "core.h"
#include "shape.h"

static strata_status flatten_build(strata_layer *layer, const strata_host *host, const strata_shape *in,
                                   strata_shape *out)
{
	char buf[96];
	int64_t count = 1;
	for (uint32_t i = 0; i < in->rank; i++)
		if (!shape_mul(count, in->dims[i], INT_MAX, &count))
			return host->fail(layer, STRATA_ERR_OVERFLOW, "input %s is too large",
			                  shape_format(in, buf, sizeof(buf)));
	*out = (strata_shape){.rank = 1, .dims = {count}};
	return STRATA_OK;
}

/* Elements of `batch` samples, refused past the kernels' int indexing. */
static strata_status flatten_count(strata_layer *layer, const strata_host *host, uint32_t batch, size_t *n)
{
	size_t per_sample = (size_t)host->output_shape(layer)->dims[0];
	*n = (size_t)batch * per_sample;
	return shape_check_batch(layer, host, batch, per_sample);
}

static strata_status flatten_forward(strata_layer *layer, const strata_host *host,
                                     const strata_forward_args *args)
{
	size_t n = 0;
	strata_status st = flatten_count(layer, host, args->batch, &n);
	return st != STRATA_OK ? st : core_copy(layer, host, args->output, args->input, n);
}

static strata_status flatten_backward(strata_layer *layer, const strata_host *host,
                                      const strata_backward_args *args)
{
	size_t n = 0;
	strata_status st = flatten_count(layer, host, args->batch, &n);
	if (st != STRATA_OK || !args->grad_input)
		return st;
	return core_copy(layer, host, args->grad_input, args->grad_output, n);
}

static const strata_layer_ops flatten_ops = {
	.size = sizeof(strata_layer_ops),
	.type = "flatten",
	.class_name = "Flatten",
	.name_prefix = "flatten",
	.doc = "flattens each sample to rank 1 in channels-last order, as Keras' Flatten",
	.params = NULL,
	.n_params = 0,
	.build = flatten_build,
	.forward = flatten_forward,
	.backward = flatten_backward,
};

static strata_status flatten_init(const strata_host *host, strata_registry *reg)
{
	return host->register_layer(reg, &flatten_ops);
}

static const strata_plugin flatten_plugin = {
	.abi_version = STRATA_PLUGIN_ABI_VERSION,
	.size = sizeof(strata_plugin),
	.name = "flatten",
	.version = "1.0.0",
	.description = "Flatten layer (a device copy)",
	.init = flatten_init,
};

STRATA_PLUGIN_DEFINE(flatten_plugin)
