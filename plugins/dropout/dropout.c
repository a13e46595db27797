/* Dropout: Keras' inverted dropout. The identity at inference (and so is its derivative there);
 * when training, each element is kept with probability 1 - rate and scaled by 1 / (1 - rate), from
 * a counter-based generator on the device so no mask is stored. */
#include <limits.h>
#include <math.h>
#include <stdint.h>

#include <strata/plugin.h>

#include "core.h"
#include "dropout_cl.h"
#include "random.h"
#include "shape.h"
#include "tune.h"

static const strata_param dropout_params[] = {
	{.name = "rate", .type = STRATA_PARAM_FLOAT, .min = 0.0, .max = 1.0, .choices = "[)",
	 .doc = "fraction of the inputs dropped while training; 1 would drop everything (Keras refuses it)"},
};

/* Everything dropout_forward's mask depends on besides the element index; the backward pass
 * derives the same from the same (seed, step) to recompute the mask. */
typedef struct dropout_mask {
	uint32_t threshold; /* an element is dropped when its 32 random bits are below this */
	float scale;        /* 1 / (1 - rate) for the kept elements */
	uint32_t key_lo, key_hi, step_lo, step_hi;
} dropout_mask;

static dropout_mask dropout_mask_of(const strata_layer *layer, const strata_host *host, uint64_t seed,
                                    uint64_t step)
{
	double rate = host->param_float(layer, "rate");
	double t = ldexp(rate, 32);
	/* The key and step of the layer's stream (common/random.h): two dropout layers of one model
	 * draw different masks from the same seed and step. */
	random_stream s = random_stream_of(layer, host, seed, step);
	return (dropout_mask){
		.threshold = t >= 4294967295.0 ? UINT32_MAX : (uint32_t)t,
		.scale = (float)(1.0 / (1.0 - rate)),
		.key_lo = s.key_lo,
		.key_hi = s.key_hi,
		.step_lo = s.step_lo,
		.step_hi = s.step_hi,
	};
}

static strata_status dropout_build(strata_layer *layer, const strata_host *host, const strata_shape *in,
                                   strata_shape *out)
{
	char buf[96];
	double rate = host->param_float(layer, "rate");
	/* The declared range is inclusive; Keras refuses rate 1, which would scale by 1/0. */
	if (!(rate >= 0.0 && rate < 1.0))
		return host->fail_param(layer, "rate", STRATA_ERR_INVALID, "rate must be in [0, 1), got %g",
		                        rate);
	int64_t count = 1;
	for (uint32_t i = 0; i < in->rank; i++)
		if (!shape_mul(count, in->dims[i], INT_MAX, &count))
			return host->fail(layer, STRATA_ERR_OVERFLOW, "input %s is too large",
			                  shape_format(in, buf, sizeof(buf)));
	*out = *in;
	/* Per element: a mask of the steps (Keras' masking) goes through. */
	if (STRATA_HOST_HAS(host, mask_declare))
		return host->mask_declare(layer, STRATA_MASK_PASS);
	return STRATA_OK;
}

/* dst = src * mask * scale over n elements, the mask drawn from (seed, step, element index in
 * the global batch: `first` elements come before this slice of it): the forward pass on the
 * input, and, since the map is linear, the backward pass on the gradient with the very same
 * mask. */
static strata_status dropout_apply(strata_layer *layer, const strata_host *host, uint64_t seed, uint64_t step,
                                   strata_tensor *src, strata_tensor *dst, size_t n, uint64_t first)
{
	if (first / 4 + (n + 3) / 4 + 1 > UINT32_MAX)
		return host->fail(layer, STRATA_ERR_OVERFLOW, "a batch of %zu elements past %llu: past the mask's counter",
		                  n, (unsigned long long)first);
	char options[32];
	unsigned vw = (unsigned)tune_value(layer, host, "dropout_vw", TUNE_DROPOUT_VW);
	strata_kernel *k = host->kernel(layer, "dropout", "dropout_forward",
	                                tune_vw_options(options, sizeof(options), vw));
	if (!k)
		return host->last_status(layer);
	dropout_mask m = dropout_mask_of(layer, host, seed, step);
	strata_arg a[] = {
		strata_arg_tensor(src), strata_arg_tensor(dst), strata_arg_int((int32_t)n),
		strata_arg_uint(m.threshold), strata_arg_float(m.scale), strata_arg_uint(m.key_lo),
		strata_arg_uint(m.key_hi), strata_arg_uint(m.step_lo), strata_arg_uint(m.step_hi),
		strata_arg_uint((uint32_t)(first / 4)), strata_arg_int((int32_t)(first % 4)),
	};
	size_t blocks = (n + first % 4 + 3) / 4, global = (blocks + vw - 1) / vw;
	return host->launch(layer, k, 1, &global, NULL, sizeof(a) / sizeof(a[0]), a);
}

/* Elements of `batch` samples, refused past the kernels' int indexing; and of one. */
static strata_status dropout_count(strata_layer *layer, const strata_host *host, uint32_t batch, size_t *n,
                                   size_t *per_sample)
{
	const strata_shape *shape = host->input_shape(layer);
	*per_sample = 1;
	for (uint32_t i = 0; i < shape->rank; i++)
		*per_sample *= (size_t)shape->dims[i];
	*n = (size_t)batch * *per_sample;
	return shape_check_batch(layer, host, batch, *per_sample);
}

static strata_status dropout_forward(strata_layer *layer, const strata_host *host,
                                     const strata_forward_args *args)
{
	size_t n = 0, per_sample;
	strata_status st = dropout_count(layer, host, args->batch, &n, &per_sample);
	if (st != STRATA_OK || n == 0)
		return st;
	if (!args->training || host->param_float(layer, "rate") == 0.0)
		return core_copy(layer, host, args->output, args->input, n);
	return dropout_apply(layer, host, args->seed, args->step, args->input, args->output, n,
	                     strata_forward_sample_offset(args) * per_sample);
}

/* The mask of a training pass again; an inference pass (input gradients for filter
 * visualization) dropped nothing, so its derivative is the identity, as its forward pass is. */
static strata_status dropout_backward(strata_layer *layer, const strata_host *host,
                                      const strata_backward_args *args)
{
	size_t n = 0, per_sample;
	strata_status st = dropout_count(layer, host, args->batch, &n, &per_sample);
	if (st != STRATA_OK || n == 0 || !args->grad_input)
		return st;
	if (!strata_backward_training(args) || host->param_float(layer, "rate") == 0.0)
		return core_copy(layer, host, args->grad_input, args->grad_output, n);
	return dropout_apply(layer, host, args->seed, args->step, args->grad_output, args->grad_input, n,
	                     strata_backward_sample_offset(args) * per_sample);
}

static const strata_layer_ops dropout_ops = {
	.size = sizeof(strata_layer_ops),
	.type = "dropout",
	.class_name = "Dropout",
	.name_prefix = "dropout",
	.doc = "inverted dropout while training, the identity at inference, as Keras' Dropout",
	.params = dropout_params,
	.n_params = sizeof(dropout_params) / sizeof(dropout_params[0]),
	.build = dropout_build,
	.forward = dropout_forward,
	.backward = dropout_backward,
};

static strata_status dropout_init(const strata_host *host, strata_registry *reg)
{
	strata_status st = host->register_program(reg, "dropout", dropout_cl_source, "");
	if (st != STRATA_OK)
		return st;
	return host->register_layer(reg, &dropout_ops);
}

static const strata_plugin dropout_plugin = {
	.abi_version = STRATA_PLUGIN_ABI_VERSION,
	.size = sizeof(strata_plugin),
	.name = "dropout",
	.version = "1.0.0",
	.description = "Dropout layer with a counter-based device RNG (Philox-4x32-10)",
	.init = dropout_init,
};

STRATA_PLUGIN_DEFINE(dropout_plugin)
