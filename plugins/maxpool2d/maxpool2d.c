/* MaxPooling2D: Keras' 2-D max pooling over (H, W, C) inputs. */
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include <strata/plugin.h>

#include "maxpool2d_cl.h"
#include "shape.h"

typedef struct maxpool2d_plan {
	int64_t h, w, c;
	int64_t ph, pw, sh, sw;
	int64_t pad_top, pad_left;
	int64_t oh, ow;
} maxpool2d_plan;

static const strata_param maxpool2d_params[] = {
	{.name = "pool_size", .type = STRATA_PARAM_INTS, .default_value = "[2, 2]", .min = 1, .max = INT_MAX,
	 .count = 2, .doc = "height and width of the pooling window"},
	{.name = "strides", .type = STRATA_PARAM_INTS, .default_value = "null", .min = 1, .max = INT_MAX,
	 .count = 2, .doc = "step of the window along height and width; null: pool_size"},
	{.name = "padding", .type = STRATA_PARAM_ENUM, .default_value = "valid", .choices = "valid|same",
	 .doc = "valid: windows inside the input only; same: the output is ceil(input / strides)"},
};

static strata_status maxpool2d_build(strata_layer *layer, const strata_host *host, const strata_shape *in,
                                     strata_shape *out)
{
	char buf[96];
	if (in->rank != 3)
		return host->fail(layer, STRATA_ERR_INVALID, "MaxPooling2D needs a (height, width, channels) "
		                  "input, got %s", shape_format(in, buf, sizeof(buf)));

	int64_t pool[2], strides[2];
	if (host->param_ints(layer, "pool_size", pool, 2) != 2)
		return host->fail_param(layer, "pool_size", STRATA_ERR_INVALID, "needs 2 values");
	/* Keras' strides=None: the windows tile the input. */
	if (host->param_ints(layer, "strides", strides, 2) != 2)
		memcpy(strides, pool, sizeof(strides));
	bool same = strcmp(host->param_string(layer, "padding"), "same") == 0;

	maxpool2d_plan plan = {
		.h = in->dims[0], .w = in->dims[1], .c = in->dims[2],
		.ph = pool[0], .pw = pool[1], .sh = strides[0], .sw = strides[1],
	};
	if (!shape_window(plan.h, plan.ph, plan.sh, same, &plan.oh, &plan.pad_top) ||
	    !shape_window(plan.w, plan.pw, plan.sw, same, &plan.ow, &plan.pad_left))
		return host->fail_param(layer, "pool_size", STRATA_ERR_INVALID,
		                        "pool %lldx%lld is larger than the %lldx%lld input with padding "
		                        "'valid'", (long long)plan.ph, (long long)plan.pw, (long long)plan.h,
		                        (long long)plan.w);
	int64_t count;
	if (!shape_mul(plan.h, plan.w, INT_MAX, &count) || !shape_mul(count, plan.c, INT_MAX, &count))
		return host->fail(layer, STRATA_ERR_OVERFLOW, "input %s is too large",
		                  shape_format(in, buf, sizeof(buf)));

	maxpool2d_plan *p = malloc(sizeof(*p));
	if (!p)
		return host->fail(layer, STRATA_ERR_NO_MEMORY, "out of memory");
	*p = plan;
	free(host->get_private(layer));
	host->set_private(layer, p);

	*out = (strata_shape){.rank = 3, .dims = {plan.oh, plan.ow, plan.c}};
	return STRATA_OK;
}

static strata_status maxpool2d_forward(strata_layer *layer, const strata_host *host,
                                       const strata_forward_args *args)
{
	const maxpool2d_plan *p = host->get_private(layer);
	if (args->batch == 0)
		return STRATA_OK;
	strata_status st = shape_check_batch(layer, host, args->batch, (size_t)(p->h * p->w * p->c));
	if (st != STRATA_OK)
		return st;
	strata_kernel *k = host->kernel(layer, "maxpool2d", "maxpool2d_forward", NULL);
	if (!k)
		return host->last_status(layer);
	strata_arg a[] = {
		strata_arg_tensor(args->input), strata_arg_tensor(args->output),
		strata_arg_int((int32_t)args->batch),
		strata_arg_int((int32_t)p->h), strata_arg_int((int32_t)p->w), strata_arg_int((int32_t)p->c),
		strata_arg_int((int32_t)p->ph), strata_arg_int((int32_t)p->pw),
		strata_arg_int((int32_t)p->sh), strata_arg_int((int32_t)p->sw),
		strata_arg_int((int32_t)p->pad_top), strata_arg_int((int32_t)p->pad_left),
		strata_arg_int((int32_t)p->oh), strata_arg_int((int32_t)p->ow),
	};
	size_t global = (size_t)args->batch * (size_t)(p->oh * p->ow * p->c);
	return host->launch(layer, k, 1, &global, NULL, sizeof(a) / sizeof(a[0]), a);
}

static void maxpool2d_destroy(strata_layer *layer, const strata_host *host)
{
	free(host->get_private(layer));
	host->set_private(layer, NULL);
}

static const strata_layer_ops maxpool2d_ops = {
	.size = sizeof(strata_layer_ops),
	.type = "maxpool2d",
	.class_name = "MaxPooling2D",
	.name_prefix = "max_pooling2d",
	.doc = "2-D max pooling over (height, width, channels) inputs, as Keras' MaxPooling2D",
	.params = maxpool2d_params,
	.n_params = sizeof(maxpool2d_params) / sizeof(maxpool2d_params[0]),
	.build = maxpool2d_build,
	.forward = maxpool2d_forward,
	.destroy = maxpool2d_destroy,
};

static strata_status maxpool2d_init(const strata_host *host, strata_registry *reg)
{
	strata_status st = host->register_program(reg, "maxpool2d", maxpool2d_cl_source, "");
	if (st != STRATA_OK)
		return st;
	return host->register_layer(reg, &maxpool2d_ops);
}

static const strata_plugin maxpool2d_plugin = {
	.abi_version = STRATA_PLUGIN_ABI_VERSION,
	.size = sizeof(strata_plugin),
	.name = "maxpool2d",
	.version = "1.0.0",
	.description = "MaxPooling2D layer on the OpenCL device",
	.init = maxpool2d_init,
};

STRATA_PLUGIN_DEFINE(maxpool2d_plugin)
