/* A plugin whose OpenCL program does not compile: layer type `test_bad_kernel` asks for its kernel
 * at the first forward pass, so the build error (and its log) reaches the caller. */
#include <strata/plugin.h>

/* The missing semicolon after the assignment is the error the build log must show. */
static const char source[] = "__kernel void test_broken(__global float *d, __global const float *s, int n)\n"
                             "{\n"
                             "\tint i = get_global_id(0);\n"
                             "\tif (i < n)\n"
                             "\t\td[i] = s[i] * 2.0f\n"
                             "}\n";

static strata_status build(strata_layer *layer, const strata_host *host, const strata_shape *in,
                           strata_shape *out)
{
	(void)layer;
	(void)host;
	*out = *in;
	return STRATA_OK;
}

static strata_status forward(strata_layer *layer, const strata_host *host, const strata_forward_args *args)
{
	strata_kernel *k = host->kernel(layer, "test_bad_kernel", "test_broken", NULL);
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

static const strata_layer_ops ops = {
	.size = sizeof(strata_layer_ops),
	.type = "test_bad_kernel",
	.class_name = "TestBadKernel",
	.name_prefix = "test_bad_kernel",
	.doc = "doubles its input with a kernel that does not compile (build-error test)",
	.build = build,
	.forward = forward,
};

static strata_status init(const strata_host *host, strata_registry *reg)
{
	strata_status st = host->register_program(reg, "test_bad_kernel", source, "");
	return st ? st : host->register_layer(reg, &ops);
}

static const strata_plugin plugin = {
	.abi_version = STRATA_PLUGIN_ABI_VERSION,
	.size = sizeof(strata_plugin),
	.name = "test_bad_kernel",
	.version = "1",
	.description = "a plugin whose kernel fails to build",
	.init = init,
};

STRATA_PLUGIN_DEFINE(plugin)
