/* Rescaling: Keras' Rescaling layer, y = x * scale + offset element-wise (Keras 3: each of scale
 * and offset one number, or a list of one per channel, the last axis, as NumPy broadcasts it).
 * Keras files it under preprocessing (1/255 on images); Strata's ONNX importer also maps a
 * multiplication by, or an addition of, a constant to it. No weights; the gradient is dy * scale.
 * A list holds at most STRATA_MAX_RANK (4) numbers, the most a FLOATS parameter takes: enough for
 * an image's channels. */
#include <limits.h>
#include <math.h>
#include <stdlib.h>

#include <strata/plugin.h>

#include "rescaling_cl.h"
#include "shape.h"

static const strata_param rescaling_params[] = {
	{.name = "scale", .type = STRATA_PARAM_FLOATS, .default_value = NULL, .min = -INFINITY, .max = INFINITY,
	 .count = STRATA_INTS_ANY,
	 .doc = "multiplier: one number, or one per channel (the last axis; 1 to 4 of them)"},
	{.name = "offset", .type = STRATA_PARAM_FLOATS, .default_value = "0", .min = -INFINITY, .max = INFINITY,
	 .count = STRATA_INTS_ANY, .doc = "added after the multiplication: one number, or one per channel"},
};

/* Build()'s result: the parameters as the kernels take them. */
typedef struct rescaling_plan {
	int32_t channels; /* the last axis: a per-channel list's length */
	uint32_t n_scale, n_offset;
	float scale[STRATA_MAX_RANK], offset[STRATA_MAX_RANK];
	size_t per_sample;
} rescaling_plan;

/* Reads parameter `name` into v[0..max) as floats; refuses a list whose length is not 1 or the
 * channel count, and a number that is not finite. */
static strata_status rescaling_list(strata_layer *layer, const strata_host *host, const char *name,
                                    int64_t channels, float *v, uint32_t *count)
{
	double d[STRATA_MAX_RANK];
	uint32_t n = host->param_floats(layer, name, d, STRATA_MAX_RANK);
	if (n != 1 && (int64_t)n != channels)
		return host->fail_param(layer, name, STRATA_ERR_INVALID,
		                        "%s has %u numbers; it takes one, or one per channel (the input's last "
		                        "axis has %lld)", name, n, (long long)channels);
	for (uint32_t i = 0; i < n; i++) {
		v[i] = (float)d[i];
		if (!isfinite(v[i]))
			return host->fail_param(layer, name, STRATA_ERR_INVALID, "%s[%u] = %g is not a finite float", name,
			                        i, d[i]);
	}
	*count = n;
	return STRATA_OK;
}

static strata_status rescaling_build(strata_layer *layer, const strata_host *host, const strata_shape *in,
                                     strata_shape *out)
{
	char buf[96];
	if (!STRATA_HOST_HAS(host, param_floats))
		return host->fail(layer, STRATA_ERR_UNSUPPORTED, "Rescaling needs a host with list parameters (0.4)");
	if (in->rank == 0)
		return host->fail(layer, STRATA_ERR_INVALID, "Rescaling needs an input of rank 1 or more");
	int64_t count = 1;
	for (uint32_t i = 0; i < in->rank; i++)
		if (!shape_mul(count, in->dims[i], INT_MAX, &count))
			return host->fail(layer, STRATA_ERR_OVERFLOW, "input %s is too large",
			                  shape_format(in, buf, sizeof(buf)));
	rescaling_plan plan = {.channels = (int32_t)in->dims[in->rank - 1], .per_sample = (size_t)count};
	strata_status st = rescaling_list(layer, host, "scale", plan.channels, plan.scale, &plan.n_scale);
	if (st == STRATA_OK)
		st = rescaling_list(layer, host, "offset", plan.channels, plan.offset, &plan.n_offset);
	if (st != STRATA_OK)
		return st;
	rescaling_plan *p = malloc(sizeof(*p));
	if (!p)
		return host->fail(layer, STRATA_ERR_NO_MEMORY, "out of memory");
	*p = plan;
	free(host->get_private(layer));
	host->set_private(layer, p);
	*out = *in;
	out->dtype = STRATA_DTYPE_FLOAT32;
	if (STRATA_HOST_HAS(host, mask_declare))
		return host->mask_declare(layer, STRATA_MASK_PASS);
	return STRATA_OK;
}

/* The four floats of a list, unused ones 0. */
static void rescaling_args(strata_arg *a, uint32_t n, const float *v)
{
	a[0] = strata_arg_int((int32_t)n);
	for (uint32_t i = 0; i < STRATA_MAX_RANK; i++)
		a[1 + i] = strata_arg_float(i < n ? v[i] : 0.0f);
}

static strata_status rescaling_launch(strata_layer *layer, const strata_host *host, const rescaling_plan *p,
                                      uint32_t batch, bool forward, strata_tensor *dst, strata_tensor *src)
{
	strata_status st = shape_check_batch(layer, host, batch, p->per_sample);
	size_t n = (size_t)batch * p->per_sample;
	if (st != STRATA_OK || n == 0)
		return st;
	strata_kernel *k = host->kernel(layer, "rescaling", forward ? "rescaling_forward" : "rescaling_backward", NULL);
	if (!k)
		return host->last_status(layer);
	strata_arg a[14] = {strata_arg_tensor(dst), strata_arg_tensor(src), strata_arg_int((int32_t)n),
	                    strata_arg_int(p->channels)};
	rescaling_args(a + 4, p->n_scale, p->scale);
	if (forward)
		rescaling_args(a + 9, p->n_offset, p->offset);
	return host->launch(layer, k, 1, &n, NULL, forward ? 14 : 9, a);
}

static strata_status rescaling_forward(strata_layer *layer, const strata_host *host, const strata_forward_args *args)
{
	return rescaling_launch(layer, host, host->get_private(layer), args->batch, true, args->output, args->input);
}

static strata_status rescaling_backward(strata_layer *layer, const strata_host *host,
                                        const strata_backward_args *args)
{
	if (!args->grad_input)
		return STRATA_OK;
	return rescaling_launch(layer, host, host->get_private(layer), args->batch, false, args->grad_input,
	                        args->grad_output);
}

static void rescaling_destroy(strata_layer *layer, const strata_host *host)
{
	free(host->get_private(layer));
	host->set_private(layer, NULL);
}

static const strata_layer_ops rescaling_ops = {
	.size = sizeof(strata_layer_ops),
	.type = "rescaling",
	.class_name = "Rescaling",
	.name_prefix = "rescaling",
	.doc = "x * scale + offset, each one number or one per channel, as Keras' Rescaling",
	.params = rescaling_params,
	.n_params = sizeof(rescaling_params) / sizeof(rescaling_params[0]),
	.build = rescaling_build,
	.forward = rescaling_forward,
	.backward = rescaling_backward,
	.destroy = rescaling_destroy,
};

static strata_status rescaling_init(const strata_host *host, strata_registry *reg)
{
	strata_status st = host->register_program(reg, "rescaling", rescaling_cl_source, "");
	return st != STRATA_OK ? st : host->register_layer(reg, &rescaling_ops);
}

static const strata_plugin rescaling_plugin = {
	.abi_version = STRATA_PLUGIN_ABI_VERSION,
	.size = sizeof(strata_plugin),
	.name = "rescaling",
	.version = "1.0.0",
	.description = "Rescaling layer: x * scale + offset on the OpenCL device",
	.init = rescaling_init,
};

STRATA_PLUGIN_DEFINE(rescaling_plugin)
