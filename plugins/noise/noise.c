/* Keras' regularization layers that add noise while training and are the identity at inference:
 *  - gaussian_noise (GaussianNoise): x + N(0, stddev^2);
 *  - gaussian_dropout (GaussianDropout): x * N(1, rate / (1 - rate));
 *  - spatial_dropout2d (SpatialDropout2D): whole channels of a sample dropped with probability
 *    rate, the rest scaled by 1 / (1 - rate).
 * The random numbers come from the device's counter-based streams (cl/random.cl), keyed by the
 * run's seed, the layer's name and its own `seed`, and the training step (common/random.h): the
 * backward pass draws them again instead of keeping them, and the same seed gives the same noise
 * on every device. */
#include <limits.h>
#include <math.h>
#include <stdint.h>

#include <strata/plugin.h>

#include "core.h"
#include "noise_cl.h"
#include "random.h"
#include "shape.h"

#define SEED_PARAM                                                                                        \
	{.name = "seed", .type = STRATA_PARAM_INT, .default_value = "null", .min = -INFINITY, .max = INFINITY, \
	 .doc = "mixed into the run's seed for this layer's draws; null (or 0): the run's seed alone"}

static const strata_param gaussian_noise_params[] = {
	{.name = "stddev", .type = STRATA_PARAM_FLOAT, .default_value = NULL, .min = 0, .max = 1,
	 .doc = "standard deviation of the noise added while training"},
	SEED_PARAM,
};

static const strata_param gaussian_dropout_params[] = {
	{.name = "rate", .type = STRATA_PARAM_FLOAT, .default_value = NULL, .min = 0, .max = 1, .choices = "[)",
	 .doc = "drop probability as Dropout's: the multiplier's variance is rate / (1 - rate)"},
	SEED_PARAM,
};

static const strata_param spatial_dropout2d_params[] = {
	{.name = "rate", .type = STRATA_PARAM_FLOAT, .default_value = NULL, .min = 0, .max = 1, .choices = "[)",
	 .doc = "fraction of each sample's channels dropped while training"},
	{.name = "data_format", .type = STRATA_PARAM_UNSUPPORTED, .default_value = "channels_last",
	 .doc = "Strata's tensors are channels-last (NHWC) only"},
	SEED_PARAM,
};

/* The layer's stream at (seed, step): common/random.h's, with the layer's own seed mixed into the
 * key (a 64-bit odd multiplier spreads it over both words). */
static random_stream noise_stream(const strata_layer *layer, const strata_host *host, uint64_t seed, uint64_t step)
{
	random_stream s = random_stream_of(layer, host, seed, step);
	uint64_t own = (uint64_t)host->param_int(layer, "seed") * 0x9E3779B97F4A7C15ull;
	s.key_lo ^= (uint32_t)own;
	s.key_hi ^= (uint32_t)(own >> 32);
	return s;
}

static strata_status noise_build(strata_layer *layer, const strata_host *host, const strata_shape *in,
                                 strata_shape *out)
{
	char buf[96];
	int64_t count = 1;
	for (uint32_t i = 0; i < in->rank; i++)
		if (!shape_mul(count, in->dims[i], INT_MAX, &count))
			return host->fail(layer, STRATA_ERR_OVERFLOW, "input %s is too large",
			                  shape_format(in, buf, sizeof(buf)));
	*out = *in;
	return STRATA_OK;
}

static strata_status dropout_rate_build(strata_layer *layer, const strata_host *host, const strata_shape *in,
                                        strata_shape *out)
{
	/* The declared range excludes 1, as Keras' dropout does; checked again for a host older than
	 * bounds specs. */
	double rate = host->param_float(layer, "rate");
	if (!(rate >= 0.0 && rate < 1.0))
		return host->fail_param(layer, "rate", STRATA_ERR_INVALID, "rate must be in [0, 1), got %g", rate);
	return noise_build(layer, host, in, out);
}

/* Elements of `batch` samples, refused past the kernels' int indexing. */
static strata_status noise_count(strata_layer *layer, const strata_host *host, uint32_t batch, size_t *n)
{
	const strata_shape *shape = host->input_shape(layer);
	size_t per_sample = 1;
	for (uint32_t i = 0; i < shape->rank; i++)
		per_sample *= (size_t)shape->dims[i];
	*n = (size_t)batch * per_sample;
	return shape_check_batch(layer, host, batch, per_sample);
}

/* A kernel of one work-item per four elements, with its stream's arguments, then where the
 * pass's elements start in the global batch (`first` elements before them). */
static strata_status noise_launch(strata_layer *layer, const strata_host *host, const char *name,
                                  strata_tensor *src, strata_tensor *dst, size_t n, float value, uint64_t seed,
                                  uint64_t step, uint64_t first)
{
	if (first / 4 + (n + 3) / 4 + 1 > UINT32_MAX)
		return host->fail(layer, STRATA_ERR_OVERFLOW, "a batch of %zu elements past %llu: past the stream's counter",
		                  n, (unsigned long long)first);
	strata_kernel *k = host->kernel(layer, "noise", name, NULL);
	if (!k)
		return host->last_status(layer);
	random_stream s = noise_stream(layer, host, seed, step);
	strata_arg a[10] = {strata_arg_tensor(src), strata_arg_tensor(dst), strata_arg_int((int32_t)n),
	                    strata_arg_float(value)};
	random_stream_args(&s, a + 4);
	a[8] = strata_arg_uint((uint32_t)(first / 4));
	a[9] = strata_arg_int((int32_t)(first % 4));
	size_t global = (n + first % 4 + 3) / 4;
	return host->launch(layer, k, 1, &global, NULL, 10, a);
}

/* ---- gaussian_noise ------------------------------------------------------------------------------- */

static strata_status gaussian_noise_forward(strata_layer *layer, const strata_host *host,
                                            const strata_forward_args *a)
{
	size_t n = 0;
	strata_status st = noise_count(layer, host, a->batch, &n);
	if (st != STRATA_OK || n == 0)
		return st;
	double stddev = host->param_float(layer, "stddev");
	if (!a->training || stddev == 0.0)
		return core_copy(layer, host, a->output, a->input, n);
	return noise_launch(layer, host, "gaussian_noise_forward", a->input, a->output, n, (float)stddev, a->seed,
	                    a->step, strata_forward_sample_offset(a) * (n / a->batch));
}

/* The noise does not depend on the input: the derivative is the identity in both modes. */
static strata_status gaussian_noise_backward(strata_layer *layer, const strata_host *host,
                                             const strata_backward_args *a)
{
	size_t n = 0;
	strata_status st = noise_count(layer, host, a->batch, &n);
	if (st != STRATA_OK || n == 0 || !a->grad_input)
		return st;
	return core_copy(layer, host, a->grad_input, a->grad_output, n);
}

/* ---- gaussian_dropout ----------------------------------------------------------------------------- */

static float gaussian_dropout_stddev(const strata_layer *layer, const strata_host *host)
{
	double rate = host->param_float(layer, "rate");
	return (float)sqrt(rate / (1.0 - rate));
}

static strata_status gaussian_dropout_forward(strata_layer *layer, const strata_host *host,
                                              const strata_forward_args *a)
{
	size_t n = 0;
	strata_status st = noise_count(layer, host, a->batch, &n);
	if (st != STRATA_OK || n == 0)
		return st;
	if (!a->training || host->param_float(layer, "rate") == 0.0)
		return core_copy(layer, host, a->output, a->input, n);
	return noise_launch(layer, host, "gaussian_dropout_apply", a->input, a->output, n,
	                    gaussian_dropout_stddev(layer, host), a->seed, a->step,
	                    strata_forward_sample_offset(a) * (n / a->batch));
}

/* The forward pass's multipliers again, on the gradient; an inference pass multiplied by 1. */
static strata_status gaussian_dropout_backward(strata_layer *layer, const strata_host *host,
                                               const strata_backward_args *a)
{
	size_t n = 0;
	strata_status st = noise_count(layer, host, a->batch, &n);
	if (st != STRATA_OK || n == 0 || !a->grad_input)
		return st;
	if (!strata_backward_training(a) || host->param_float(layer, "rate") == 0.0)
		return core_copy(layer, host, a->grad_input, a->grad_output, n);
	return noise_launch(layer, host, "gaussian_dropout_apply", a->grad_output, a->grad_input, n,
	                    gaussian_dropout_stddev(layer, host), a->seed, a->step,
	                    strata_backward_sample_offset(a) * (n / a->batch));
}

/* ---- spatial_dropout2d ---------------------------------------------------------------------------- */

/* The mask of (seed, step) into the workspace (one float per sample and channel), then dst = src
 * times it: the forward pass on the input, the backward pass on the gradient. */
static strata_status spatial_dropout_apply(strata_layer *layer, const strata_host *host, uint32_t batch,
                                           uint64_t seed, uint64_t step, uint64_t sample_offset, strata_tensor *src,
                                           strata_tensor *dst, size_t n)
{
	const strata_shape *in = host->input_shape(layer);
	int32_t channels = (int32_t)in->dims[2];
	size_t per_sample = n / batch, count = (size_t)batch * (size_t)channels;
	double rate = host->param_float(layer, "rate"), t = ldexp(rate, 32);
	strata_tensor *mask = host->workspace(layer, 0);
	strata_kernel *k = host->kernel(layer, "noise", "spatial_dropout_mask", NULL);
	if (!k)
		return host->last_status(layer);
	random_stream s = noise_stream(layer, host, seed, step);
	strata_arg m[9] = {strata_arg_tensor(mask), strata_arg_int((int32_t)count),
	                   strata_arg_uint(t >= 4294967295.0 ? UINT32_MAX : (uint32_t)t),
	                   strata_arg_float((float)(1.0 / (1.0 - rate)))};
	random_stream_args(&s, m + 4);
	m[8] = strata_arg_uint((uint32_t)(sample_offset * (uint64_t)channels));
	strata_status st = host->launch(layer, k, 1, &count, NULL, 9, m);
	if (st != STRATA_OK)
		return st;
	if (!(k = host->kernel(layer, "noise", "spatial_dropout_apply", NULL)))
		return host->last_status(layer);
	strata_arg a[] = {strata_arg_tensor(src),    strata_arg_tensor(mask),           strata_arg_tensor(dst),
	                  strata_arg_int((int32_t)n), strata_arg_int((int32_t)per_sample), strata_arg_int(channels)};
	return host->launch(layer, k, 1, &n, NULL, sizeof(a) / sizeof(a[0]), a);
}

/* Keras' SpatialDropout2D takes images (rank 4 with the batch); its mask, one float per sample
 * and channel, lives in workspace 0. */
static strata_status spatial_dropout2d_build(strata_layer *layer, const strata_host *host, const strata_shape *in,
                                             strata_shape *out)
{
	char buf[96];
	if (in->rank != 3)
		return host->fail(layer, STRATA_ERR_INVALID,
		                  "SpatialDropout2D needs (height, width, channels) samples, got %s (rank %u)",
		                  shape_format(in, buf, sizeof(buf)), in->rank);
	strata_status st = dropout_rate_build(layer, host, in, out);
	if (st != STRATA_OK)
		return st;
	uint32_t index;
	return host->add_workspace(layer, (size_t)in->dims[2] * sizeof(float), &index);
}

static strata_status spatial_dropout2d_forward(strata_layer *layer, const strata_host *host,
                                               const strata_forward_args *a)
{
	size_t n = 0;
	strata_status st = noise_count(layer, host, a->batch, &n);
	if (st != STRATA_OK || n == 0)
		return st;
	if (!a->training || host->param_float(layer, "rate") == 0.0)
		return core_copy(layer, host, a->output, a->input, n);
	return spatial_dropout_apply(layer, host, a->batch, a->seed, a->step, strata_forward_sample_offset(a), a->input, a->output, n);
}

static strata_status spatial_dropout2d_backward(strata_layer *layer, const strata_host *host,
                                                const strata_backward_args *a)
{
	size_t n = 0;
	strata_status st = noise_count(layer, host, a->batch, &n);
	if (st != STRATA_OK || n == 0 || !a->grad_input)
		return st;
	if (!strata_backward_training(a) || host->param_float(layer, "rate") == 0.0)
		return core_copy(layer, host, a->grad_input, a->grad_output, n);
	return spatial_dropout_apply(layer, host, a->batch, a->seed, a->step, strata_backward_sample_offset(a), a->grad_output, a->grad_input, n);
}

/* ---- registration --------------------------------------------------------------------------------- */

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

static const strata_layer_ops noise_ops[] = {
	{
		.size = sizeof(strata_layer_ops),
		.type = "gaussian_noise",
		.class_name = "GaussianNoise",
		.name_prefix = "gaussian_noise",
		.doc = "adds N(0, stddev^2) noise while training, the identity at inference, as Keras' GaussianNoise",
		.params = gaussian_noise_params,
		.n_params = COUNT(gaussian_noise_params),
		.build = noise_build,
		.forward = gaussian_noise_forward,
		.backward = gaussian_noise_backward,
	},
	{
		.size = sizeof(strata_layer_ops),
		.type = "gaussian_dropout",
		.class_name = "GaussianDropout",
		.name_prefix = "gaussian_dropout",
		.doc = "multiplies by N(1, rate / (1 - rate)) noise while training, as Keras' GaussianDropout",
		.params = gaussian_dropout_params,
		.n_params = COUNT(gaussian_dropout_params),
		.build = dropout_rate_build,
		.forward = gaussian_dropout_forward,
		.backward = gaussian_dropout_backward,
	},
	{
		.size = sizeof(strata_layer_ops),
		.type = "spatial_dropout2d",
		.class_name = "SpatialDropout2D",
		.name_prefix = "spatial_dropout2d",
		.doc = "drops whole channels of each image while training, the rest scaled, as Keras' SpatialDropout2D",
		.params = spatial_dropout2d_params,
		.n_params = COUNT(spatial_dropout2d_params),
		.build = spatial_dropout2d_build,
		.forward = spatial_dropout2d_forward,
		.backward = spatial_dropout2d_backward,
	},
};

static strata_status noise_init(const strata_host *host, strata_registry *reg)
{
	strata_status st = host->register_program(reg, "noise", noise_cl_source, "");
	for (size_t i = 0; st == STRATA_OK && i < COUNT(noise_ops); i++)
		st = host->register_layer(reg, &noise_ops[i]);
	return st;
}

static const strata_plugin noise_plugin = {
	.abi_version = STRATA_PLUGIN_ABI_VERSION,
	.size = sizeof(strata_plugin),
	.name = "noise",
	.version = "1.0.0",
	.description = "Keras' noise layers: GaussianNoise, GaussianDropout, SpatialDropout2D, on device streams",
	.init = noise_init,
};

STRATA_PLUGIN_DEFINE(noise_plugin)
