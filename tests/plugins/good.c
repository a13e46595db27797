/* A minimal well-formed plugin: layer type `test_identity`, one registered program. */
#include <strata/plugin.h>

static const char source[] = "__kernel void test_copy(__global float *d, __global const float *s, int n)\n"
                             "{ int i = get_global_id(0); if (i < n) d[i] = s[i]; }\n";

static strata_status build(strata_layer *layer, const strata_host *host, const strata_shape *in, strata_shape *out)
{
	(void)layer;
	(void)host;
	*out = *in;
	return STRATA_OK;
}

static strata_status forward(strata_layer *layer, const strata_host *host, const strata_forward_args *args)
{
	strata_kernel *k = host->kernel(layer, "test_good", "test_copy", NULL);
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

static const strata_layer_ops identity_ops = {
	.size = sizeof(strata_layer_ops),
	.type = "test_identity",
	.class_name = "TestIdentity",
	.name_prefix = "test_identity",
	.doc = "copies its input (loader test)",
	.build = build,
	.forward = forward,
};

static strata_status init(const strata_host *host, strata_registry *reg)
{
	strata_status st = host->register_program(reg, "test_good", source, "");
	return st ? st : host->register_layer(reg, &identity_ops);
}

static const strata_plugin plugin = {
	.abi_version = STRATA_PLUGIN_ABI_VERSION,
	.size = sizeof(strata_plugin),
	.name = "test_good",
	.version = "1",
	.description = "loader test plugin",
	.init = init,
};

STRATA_PLUGIN_DEFINE(plugin)
