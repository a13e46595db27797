/* A layer that reads int32 ids: `test_ids_to_float` writes each id as a float (out = id), so the
 * tests can feed an int32 input from an int32 IDX file and see exactly what arrived. Ids carry no
 * gradient, so its backward pass has nothing to write. */
#include <strata/plugin.h>

static const char source[] = "__kernel void test_ids(__global float *d, __global const int *s, int n)\n"
                             "{ int i = get_global_id(0); if (i < n) d[i] = (float)s[i]; }\n";

static strata_status build(strata_layer *layer, const strata_host *host, const strata_shape *in, strata_shape *out)
{
	if (in->dtype != STRATA_DTYPE_INT32)
		return host->fail(layer, STRATA_ERR_INVALID, "test_ids_to_float reads int32 ids");
	*out = *in;
	out->dtype = STRATA_DTYPE_FLOAT32;
	return STRATA_OK;
}

static strata_status forward(strata_layer *layer, const strata_host *host, const strata_forward_args *args)
{
	strata_kernel *k = host->kernel(layer, "test_ids", "test_ids", NULL);
	if (!k)
		return host->last_status(layer);
	const strata_shape *s = host->input_shape(layer);
	int n = (int)args->batch;
	for (uint32_t i = 0; i < s->rank; i++)
		n *= (int)s->dims[i];
	strata_arg a[] = {strata_arg_tensor(args->output), strata_arg_tensor(args->input), strata_arg_int(n)};
	size_t global = (size_t)n;
	return host->launch(layer, k, 1, &global, NULL, 3, a);
}

static strata_status backward(strata_layer *layer, const strata_host *host, const strata_backward_args *args)
{
	(void)layer;
	(void)host;
	(void)args;
	return STRATA_OK;
}

static const strata_layer_ops ids_ops = {
	.size = sizeof(strata_layer_ops),
	.type = "test_ids_to_float",
	.class_name = "TestIdsToFloat",
	.name_prefix = "test_ids_to_float",
	.doc = "writes int32 ids as floats (data test)",
	.build = build,
	.forward = forward,
	.backward = backward,
	.knows_dtypes = true,
};

static strata_status init(const strata_host *host, strata_registry *reg)
{
	strata_status st = host->register_program(reg, "test_ids", source, "");
	return st ? st : host->register_layer(reg, &ids_ops);
}

static const strata_plugin plugin = {
	.abi_version = STRATA_PLUGIN_ABI_VERSION,
	.size = sizeof(strata_plugin),
	.name = "test_ids",
	.version = "1",
	.description = "int32 ids test plugin",
	.init = init,
};

STRATA_PLUGIN_DEFINE(plugin)
