/* Artificial data on the device: Keras 3's image augmentation layers RandomTranslation,
 * RandomRotation, RandomZoom, RandomFlip and RandomContrast, with Keras' parameter names,
 * defaults and factor semantics. Each acts only while training and is the identity at inference
 * (and so is its derivative there), like Dropout. Its randomness comes from the shared device
 * streams (cl/random.cl, plugins/common/random.h): sample n of a training step draws one set of
 * four words, counter (n, 0, step) under the layer's key (the run's seed, the layer's name and its
 * own `seed`), so the same seed gives the same images on every run and device, and a backward
 * pass recomputes the forward pass's transform from (seed, step) instead of storing it.
 *
 * Translation, rotation and zoom share one kernel: an affine map per sample from output pixels to
 * input points, read through `fill_mode` and `interpolation` (augment.cl). Their backward pass is
 * the exact transpose of that interpolation; flips and contrast have simple exact gathers.
 *
 * Keras' factors are a number f (the range [-f, f]; for RandomContrast the contrast factor's
 * range [1 - f, 1 + f]) or a pair [lower, upper]: FLOATS parameters, whose bounds the loader
 * checks. */
#include <float.h>
#include <limits.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <strata/plugin.h>

#include "augment_cl.h"
#include "core.h"
#include "random.h"
#include "shape.h"
#include "tune.h"

#define AUG_PARAMS 8 /* floats per sample of the parameter workspace (augment.cl) */
#define AUG_PI 3.14159265358979323846

typedef enum aug_kind {
	AUG_TRANSLATION = 0,
	AUG_ROTATION = 1,
	AUG_ZOOM = 2,
	AUG_FLIP = 3,
	AUG_CONTRAST = 4,
} aug_kind;

/* What build() read and checked, for the passes. */
typedef struct aug_config {
	aug_kind kind;
	float lo0, hi0, lo1, hi1; /* the drawn values' ranges, in their units (augment.cl) */
	int same_zoom;            /* RandomZoom without width_factor: the width zooms as the height */
	int fill, bilinear;       /* augment.cl's AUG_FILL_*, and bilinear (1) or nearest (0) */
	float fill_value;
	int flip_mode;            /* bit 1: horizontal, bit 2: vertical */
	float value_lo, value_hi; /* RandomContrast's value_range */
	uint64_t seed;            /* the layer's `seed`, mixed into its key; 0 for null */
	int h, w, c;
	uint32_t params_ws, stats_ws;
} aug_config;

/* ---- parameters --------------------------------------------------------------------------------- */

#define FILL_DOC "how points outside the image read: reflect (d c b a|a b c d|d c b a), constant " \
	"(fill_value), nearest (a a|a b c d|d d), wrap (a b c d|a b c d)"
#define INTERPOLATION_DOC "nearest or bilinear"
#define SEED_DOC "an integer mixed into the layer's random stream with the run's seed (null or 0: the run's alone)"
#define FILL_VALUE_DOC "the value of points outside the image when fill_mode is constant"
#define DATA_FORMAT_DOC "Strata's images are channels_last (NHWC); leave it out"
#define FILL_PARAMS                                                                                        \
	{.name = "fill_mode", .type = STRATA_PARAM_ENUM, .default_value = "reflect",                           \
	 .choices = "reflect|wrap|constant|nearest", .doc = FILL_DOC},                                         \
	{.name = "interpolation", .type = STRATA_PARAM_ENUM, .default_value = "bilinear",                      \
	 .choices = "nearest|bilinear", .doc = INTERPOLATION_DOC},                                             \
	{.name = "seed", .type = STRATA_PARAM_INT, .default_value = "null", .min = -2147483648.0, .max = 2147483647.0,  \
	 .doc = SEED_DOC},                                                       \
	{.name = "fill_value", .type = STRATA_PARAM_FLOAT, .default_value = "0.0", .min = -INFINITY,          \
	 .max = INFINITY, .doc = FILL_VALUE_DOC},                                                               \
	{.name = "data_format", .type = STRATA_PARAM_UNSUPPORTED, .default_value = "null", .doc = DATA_FORMAT_DOC}

static const strata_param translation_params[] = {
	{.name = "height_factor", .type = STRATA_PARAM_FLOATS, .min = -1, .max = 1,
	 .doc = "vertical shift as a fraction of the height: f for [-f, f], or (lower, upper), each in [-1, 1]; "
	        "positive moves down"},
	{.name = "width_factor", .type = STRATA_PARAM_FLOATS, .min = -1, .max = 1,
	 .doc = "horizontal shift as a fraction of the width: f for [-f, f], or (lower, upper), each in [-1, 1]; "
	        "positive moves right"},
	FILL_PARAMS,
};

static const strata_param rotation_params[] = {
	{.name = "factor", .type = STRATA_PARAM_FLOATS, .min = -1, .max = 1,
	 .doc = "rotation as a fraction of a full turn: f for [-f * 2pi, f * 2pi], or (lower, upper), each in "
	        "[-1, 1]; positive turns counter-clockwise"},
	FILL_PARAMS,
};

static const strata_param zoom_params[] = {
	{.name = "height_factor", .type = STRATA_PARAM_FLOATS, .min = -1, .max = 1,
	 .doc = "vertical zoom: f for [-f, f], or (lower, upper), each in [-1, 1]; the image is read at 1 + "
	        "that scale, so positive zooms out"},
	{.name = "width_factor", .type = STRATA_PARAM_FLOATS, .default_value = "null", .min = -1, .max = 1,
	 .doc = "horizontal zoom as height_factor; null zooms both axes by the same draw, keeping the aspect "
	        "ratio"},
	FILL_PARAMS,
};

static const strata_param flip_params[] = {
	{.name = "mode", .type = STRATA_PARAM_ENUM, .default_value = "horizontal_and_vertical",
	 .choices = "horizontal|vertical|horizontal_and_vertical",
	 .doc = "left-right, top-bottom, or both at once (one draw per image, as Keras 3), each with "
	        "probability 1/2"},
	{.name = "seed", .type = STRATA_PARAM_INT, .default_value = "null", .min = -2147483648.0,
	 .max = 2147483647.0, .doc = SEED_DOC},
	{.name = "data_format", .type = STRATA_PARAM_UNSUPPORTED, .default_value = "null", .doc = DATA_FORMAT_DOC},
};

static const strata_param contrast_params[] = {
	{.name = "factor", .type = STRATA_PARAM_FLOATS, .min = 0, .max = 1,
	 .doc = "f: contrast factor uniform in [1 - f, 1 + f]; (lower, upper): in [1 - lower, 1 + upper]; "
	        "each in [0, 1]; x -> (x - mean) * factor + mean per image and channel"},
	{.name = "value_range", .type = STRATA_PARAM_FLOATS, .default_value = "[0, 255]", .min = -FLT_MAX,
	 .max = FLT_MAX, .count = 2,
	 .doc = "[low, high]: the range of the images' values; the output is clipped to it"},
	{.name = "seed", .type = STRATA_PARAM_INT, .default_value = "null", .min = -2147483648.0,
	 .max = 2147483647.0, .doc = SEED_DOC},
	{.name = "data_format", .type = STRATA_PARAM_UNSUPPORTED, .default_value = "null", .doc = DATA_FORMAT_DOC},
};

/* Reads factor `name` as Keras does: a number f gives (-|f|, |f|) (for RandomContrast's bounds
 * [0, 1]: (|f|, |f|), the range [1 - f, 1 + f]); a pair [lower, upper] gives its values sorted. The
 * loader has checked each number against the declared bounds. */
static strata_status aug_factor(strata_layer *layer, const strata_host *host, const char *name, double lowest,
                                double *lower, double *upper)
{
	double v[STRATA_MAX_RANK];
	uint32_t n = STRATA_HOST_HAS(host, param_floats) ? host->param_floats(layer, name, v, STRATA_MAX_RANK) : 0;
	if (n < 1 || n > 2)
		return host->fail_param(layer, name, STRATA_ERR_INVALID,
		                        "'%s' must be a number or a pair [lower, upper], got %u numbers", name, n);
	if (n == 1) {
		*lower = lowest < 0 ? -fabs(v[0]) : fabs(v[0]);
		*upper = fabs(v[0]);
	} else {
		*lower = v[0] < v[1] ? v[0] : v[1];
		*upper = v[0] < v[1] ? v[1] : v[0];
	}
	return STRATA_OK;
}

static int aug_fill_code(const char *mode)
{
	/* augment.cl's AUG_FILL_* */
	return !strcmp(mode, "constant") ? 0 : !strcmp(mode, "nearest") ? 1 : !strcmp(mode, "reflect") ? 2 : 3;
}

/* ---- build ----------------------------------------------------------------------------------------- */

static const char *const aug_class[] = {"RandomTranslation", "RandomRotation", "RandomZoom", "RandomFlip",
                                        "RandomContrast"};

static strata_status aug_read(strata_layer *layer, const strata_host *host, aug_kind kind, aug_config *cfg)
{
	double lo = 0, hi = 0, lo1 = 0, hi1 = 0;
	strata_status st = STRATA_OK;
	cfg->kind = kind;
	cfg->seed = (uint64_t)host->param_int(layer, "seed");
	if (kind != AUG_FLIP && kind != AUG_CONTRAST) {
		cfg->fill = aug_fill_code(host->param_string(layer, "fill_mode"));
		cfg->bilinear = !strcmp(host->param_string(layer, "interpolation"), "bilinear");
		double fill_value = host->param_float(layer, "fill_value");
		if (fabs(fill_value) > FLT_MAX)
			return host->fail_param(layer, "fill_value", STRATA_ERR_INVALID,
			                        "'fill_value' must be a float32 number, got %g", fill_value);
		cfg->fill_value = (float)fill_value;
	}
	switch (kind) {
	case AUG_TRANSLATION:
		if ((st = aug_factor(layer, host, "height_factor", -1.0, &lo, &hi)) ||
		    (st = aug_factor(layer, host, "width_factor", -1.0, &lo1, &hi1)))
			return st;
		break;
	case AUG_ROTATION:
		if ((st = aug_factor(layer, host, "factor", -1.0, &lo, &hi)))
			return st;
		/* Keras: the angle in radians, factor * 2 pi. */
		lo *= 2.0 * AUG_PI;
		hi *= 2.0 * AUG_PI;
		break;
	case AUG_ZOOM:
		if ((st = aug_factor(layer, host, "height_factor", -1.0, &lo, &hi)))
			return st;
		double none[STRATA_MAX_RANK];
		cfg->same_zoom = host->param_floats(layer, "width_factor", none, STRATA_MAX_RANK) == 0;
		if (!cfg->same_zoom && (st = aug_factor(layer, host, "width_factor", -1.0, &lo1, &hi1)))
			return st;
		/* Keras: zooms uniform in [1 + lower, 1 + upper]. */
		lo += 1.0, hi += 1.0, lo1 += 1.0, hi1 += 1.0;
		break;
	case AUG_FLIP: {
		const char *mode = host->param_string(layer, "mode");
		cfg->flip_mode = !strcmp(mode, "horizontal") ? 1 : !strcmp(mode, "vertical") ? 2 : 3;
		break;
	}
	case AUG_CONTRAST: {
		if ((st = aug_factor(layer, host, "factor", 0.0, &lo, &hi)))
			return st;
		lo = 1.0 - lo;
		hi = 1.0 + hi;
		double v[STRATA_MAX_RANK];
		if (host->param_floats(layer, "value_range", v, STRATA_MAX_RANK) != 2 || !(v[0] < v[1]))
			return host->fail_param(layer, "value_range", STRATA_ERR_INVALID,
			                        "'value_range' must be a pair [low, high] with low < high");
		cfg->value_lo = (float)v[0];
		cfg->value_hi = (float)v[1];
		break;
	}
	}
	cfg->lo0 = (float)lo;
	cfg->hi0 = (float)hi;
	cfg->lo1 = (float)lo1;
	cfg->hi1 = (float)hi1;
	return STRATA_OK;
}

static strata_status aug_build(strata_layer *layer, const strata_host *host, const strata_shape *in,
                               strata_shape *out, aug_kind kind)
{
	char buf[96];
	if (in->rank != 3)
		return host->fail(layer, STRATA_ERR_INVALID,
		                  "%s expects images (height, width, channels), got an input of rank %u %s",
		                  aug_class[kind], in->rank, shape_format(in, buf, sizeof(buf)));
	int64_t count = 1;
	for (uint32_t i = 0; i < in->rank; i++)
		if (in->dims[i] < 1 || !shape_mul(count, in->dims[i], INT_MAX, &count))
			return host->fail(layer, STRATA_ERR_OVERFLOW, "input %s is empty or too large",
			                  shape_format(in, buf, sizeof(buf)));
	aug_config *cfg = calloc(1, sizeof(*cfg));
	if (!cfg)
		return host->fail(layer, STRATA_ERR_NO_MEMORY, "out of memory");
	host->set_private(layer, cfg);
	strata_status st = aug_read(layer, host, kind, cfg);
	if (st)
		return st;
	cfg->h = (int)in->dims[0];
	cfg->w = (int)in->dims[1];
	cfg->c = (int)in->dims[2];
	if ((st = host->add_workspace(layer, AUG_PARAMS * sizeof(float), &cfg->params_ws)))
		return st;
	if (kind == AUG_CONTRAST &&
	    (st = host->add_workspace(layer, 2 * (size_t)cfg->c * sizeof(float), &cfg->stats_ws)))
		return st;
	*out = *in;
	return STRATA_OK;
}

static void aug_destroy(strata_layer *layer, const strata_host *host)
{
	free(host->get_private(layer));
	host->set_private(layer, NULL);
}

/* ---- passes ---------------------------------------------------------------------------------------- */

/* The layer's stream: the run's (common/random.h) with the layer's own seed mixed in by
 * SplitMix64's finalizer, which keeps 0 (null) at 0. */
static random_stream aug_stream(const strata_layer *layer, const strata_host *host, const aug_config *cfg,
                                uint64_t seed, uint64_t step)
{
	random_stream s = random_stream_of(layer, host, seed, step);
	uint64_t z = cfg->seed;
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
	z ^= z >> 31;
	s.key_lo ^= (uint32_t)z;
	s.key_hi ^= (uint32_t)(z >> 32);
	return s;
}

/* Each sample's parameters into the parameter workspace, from (seed, step) and its place in the
 * global batch (`first` samples before the pass's). */
static strata_status aug_params(strata_layer *layer, const strata_host *host, const aug_config *cfg,
                                uint32_t batch, uint64_t seed, uint64_t step, uint64_t first)
{
	strata_kernel *k = host->kernel(layer, "augment", "augment_params", NULL);
	if (!k)
		return host->last_status(layer);
	random_stream s = aug_stream(layer, host, cfg, seed, step);
	strata_arg a[15] = {
		strata_arg_tensor(host->workspace(layer, cfg->params_ws)), strata_arg_int((int32_t)batch),
		strata_arg_int((int32_t)cfg->kind), strata_arg_float(cfg->lo0), strata_arg_float(cfg->hi0),
		strata_arg_float(cfg->lo1), strata_arg_float(cfg->hi1), strata_arg_int(cfg->same_zoom),
		strata_arg_int(cfg->h), strata_arg_int(cfg->w),
	};
	random_stream_args(&s, a + 10);
	a[14] = strata_arg_uint((uint32_t)first);
	size_t global = batch;
	return host->launch(layer, k, 1, &global, NULL, 15, a);
}

/* Elements of `batch` samples, refused past the kernels' int indexing (of the images, and of the
 * parameter workspace, larger for images of fewer than AUG_PARAMS values). */
static strata_status aug_count(strata_layer *layer, const strata_host *host, const aug_config *cfg,
                               uint32_t batch, size_t *n)
{
	size_t per_sample = (size_t)cfg->h * (size_t)cfg->w * (size_t)cfg->c;
	*n = (size_t)batch * per_sample;
	return shape_check_batch(layer, host, batch, per_sample > AUG_PARAMS ? per_sample : AUG_PARAMS);
}

static strata_status aug_affine(strata_layer *layer, const strata_host *host, const aug_config *cfg,
                                uint32_t batch, strata_tensor *src, strata_tensor *dst, bool backward)
{
	strata_tensor *params = host->workspace(layer, cfg->params_ws);
	if (!backward) {
		strata_kernel *k = host->kernel(layer, "augment", "augment_affine_forward", NULL);
		if (!k)
			return host->last_status(layer);
		const strata_arg a[] = {
			strata_arg_tensor(src),          strata_arg_tensor(dst),         strata_arg_tensor(params),
			strata_arg_int((int32_t)batch),  strata_arg_int(cfg->h),         strata_arg_int(cfg->w),
			strata_arg_int(cfg->c),          strata_arg_int(cfg->fill),      strata_arg_int(cfg->bilinear),
			strata_arg_float(cfg->fill_value),
		};
		return tune_launch_2d(layer, host, k, (size_t)cfg->w, (size_t)batch * (size_t)cfg->h,
		                      sizeof(a) / sizeof(a[0]), a);
	}
	strata_kernel *k = host->kernel(layer, "augment", "augment_affine_backward", NULL);
	if (!k)
		return host->last_status(layer);
	const strata_arg a[] = {
		strata_arg_tensor(src),         strata_arg_tensor(dst),    strata_arg_tensor(params),
		strata_arg_int((int32_t)batch), strata_arg_int(cfg->h),    strata_arg_int(cfg->w),
		strata_arg_int(cfg->c),         strata_arg_int(cfg->fill), strata_arg_int(cfg->bilinear),
	};
	size_t global = (size_t)batch * (size_t)cfg->c;
	return host->launch(layer, k, 1, &global, NULL, sizeof(a) / sizeof(a[0]), a);
}

static strata_status aug_flip(strata_layer *layer, const strata_host *host, const aug_config *cfg, uint32_t batch,
                              strata_tensor *src, strata_tensor *dst)
{
	strata_kernel *k = host->kernel(layer, "augment", "augment_flip", NULL);
	if (!k)
		return host->last_status(layer);
	const strata_arg a[] = {
		strata_arg_tensor(src), strata_arg_tensor(dst), strata_arg_tensor(host->workspace(layer, cfg->params_ws)),
		strata_arg_int((int32_t)batch), strata_arg_int(cfg->h), strata_arg_int(cfg->w), strata_arg_int(cfg->c),
		strata_arg_int(cfg->flip_mode),
	};
	return tune_launch_2d(layer, host, k, (size_t)cfg->w * (size_t)cfg->c, (size_t)batch * (size_t)cfg->h,
	                      sizeof(a) / sizeof(a[0]), a);
}

/* RandomContrast: the channel statistics (means; with a gradient, also its sums), then the
 * elementwise pass. */
static strata_status aug_contrast(strata_layer *layer, const strata_host *host, const aug_config *cfg,
                                  uint32_t batch, strata_tensor *x, strata_tensor *grad_out, strata_tensor *dst)
{
	strata_tensor *params = host->workspace(layer, cfg->params_ws), *stats = host->workspace(layer, cfg->stats_ws);
	int hw = cfg->h * cfg->w, hwc = hw * cfg->c;
	size_t per_channel = (size_t)batch * (size_t)cfg->c;
	strata_kernel *k1, *k2;
	strata_status st;
	if (!grad_out) {
		if (!(k1 = host->kernel(layer, "augment", "augment_contrast_mean", NULL)) ||
		    !(k2 = host->kernel(layer, "augment", "augment_contrast_forward", NULL)))
			return host->last_status(layer);
		const strata_arg a1[] = {strata_arg_tensor(x), strata_arg_tensor(stats), strata_arg_int((int32_t)batch),
		                         strata_arg_int(hw), strata_arg_int(cfg->c)};
		const strata_arg a2[] = {
			strata_arg_tensor(x),            strata_arg_tensor(dst),        strata_arg_tensor(params),
			strata_arg_tensor(stats),        strata_arg_int((int32_t)batch), strata_arg_int(hwc),
			strata_arg_int(cfg->c),          strata_arg_float(cfg->value_lo), strata_arg_float(cfg->value_hi),
		};
		if ((st = host->launch(layer, k1, 1, &per_channel, NULL, sizeof(a1) / sizeof(a1[0]), a1)))
			return st;
		return tune_launch_2d(layer, host, k2, (size_t)hwc, batch, sizeof(a2) / sizeof(a2[0]), a2);
	}
	if (!(k1 = host->kernel(layer, "augment", "augment_contrast_grad_sums", NULL)) ||
	    !(k2 = host->kernel(layer, "augment", "augment_contrast_backward", NULL)))
		return host->last_status(layer);
	const strata_arg a1[] = {
		strata_arg_tensor(x),     strata_arg_tensor(grad_out),     strata_arg_tensor(params),
		strata_arg_tensor(stats), strata_arg_int((int32_t)batch),  strata_arg_int(hw),
		strata_arg_int(cfg->c),   strata_arg_float(cfg->value_lo), strata_arg_float(cfg->value_hi),
	};
	const strata_arg a2[] = {
		strata_arg_tensor(x),           strata_arg_tensor(grad_out),   strata_arg_tensor(dst),
		strata_arg_tensor(params),      strata_arg_tensor(stats),      strata_arg_int((int32_t)batch),
		strata_arg_int(hwc),            strata_arg_int(cfg->c),        strata_arg_float(cfg->value_lo),
		strata_arg_float(cfg->value_hi),
	};
	if ((st = host->launch(layer, k1, 1, &per_channel, NULL, sizeof(a1) / sizeof(a1[0]), a1)))
		return st;
	return tune_launch_2d(layer, host, k2, (size_t)hwc, batch, sizeof(a2) / sizeof(a2[0]), a2);
}

static strata_status aug_forward(strata_layer *layer, const strata_host *host, const strata_forward_args *args)
{
	const aug_config *cfg = host->get_private(layer);
	size_t n = 0;
	strata_status st = aug_count(layer, host, cfg, args->batch, &n);
	if (st != STRATA_OK || n == 0)
		return st;
	if (!args->training)
		return core_copy(layer, host, args->output, args->input, n);
	if ((st = aug_params(layer, host, cfg, args->batch, args->seed, args->step,
	                     strata_forward_sample_offset(args))))
		return st;
	if (cfg->kind == AUG_FLIP)
		return aug_flip(layer, host, cfg, args->batch, args->input, args->output);
	if (cfg->kind == AUG_CONTRAST)
		return aug_contrast(layer, host, cfg, args->batch, args->input, NULL, args->output);
	return aug_affine(layer, host, cfg, args->batch, args->input, args->output, false);
}

/* The transform of the training pass again, from the same (seed, step); an inference pass was
 * the identity, and so is its derivative. */
static strata_status aug_backward(strata_layer *layer, const strata_host *host, const strata_backward_args *args)
{
	const aug_config *cfg = host->get_private(layer);
	size_t n = 0;
	strata_status st = aug_count(layer, host, cfg, args->batch, &n);
	if (st != STRATA_OK || n == 0 || !args->grad_input)
		return st;
	if (!strata_backward_training(args))
		return core_copy(layer, host, args->grad_input, args->grad_output, n);
	if ((st = aug_params(layer, host, cfg, args->batch, args->seed, args->step,
	                     strata_backward_sample_offset(args))))
		return st;
	if (cfg->kind == AUG_FLIP)
		return aug_flip(layer, host, cfg, args->batch, args->grad_output, args->grad_input);
	if (cfg->kind == AUG_CONTRAST)
		return aug_contrast(layer, host, cfg, args->batch, args->input, args->grad_output, args->grad_input);
	return aug_affine(layer, host, cfg, args->batch, args->grad_output, args->grad_input, true);
}

/* ---- registration ---------------------------------------------------------------------------------- */

#define AUG_BUILD(name, kind)                                                                              \
	static strata_status name##_build(strata_layer *layer, const strata_host *host, const strata_shape *in, \
	                                  strata_shape *out)                                                   \
	{                                                                                                      \
		return aug_build(layer, host, in, out, kind);                                                      \
	}

AUG_BUILD(translation, AUG_TRANSLATION)
AUG_BUILD(rotation, AUG_ROTATION)
AUG_BUILD(zoom, AUG_ZOOM)
AUG_BUILD(flip, AUG_FLIP)
AUG_BUILD(contrast, AUG_CONTRAST)

#define AUG_OPS(type_name, class, prefix, docline, table, builder)                                         \
	{                                                                                                      \
		.size = sizeof(strata_layer_ops), .type = type_name, .class_name = class, .name_prefix = prefix,   \
		.doc = docline, .params = table, .n_params = sizeof(table) / sizeof(table[0]), .build = builder,  \
		.forward = aug_forward, .backward = aug_backward, .destroy = aug_destroy,                          \
	}

static const strata_layer_ops aug_ops[] = {
	AUG_OPS("random_translation", "RandomTranslation", "random_translation",
	        "shifts each image by a random fraction of its height and width while training, as Keras' "
	        "RandomTranslation; the identity at inference",
	        translation_params, translation_build),
	AUG_OPS("random_rotation", "RandomRotation", "random_rotation",
	        "rotates each image by a random angle about its center while training, as Keras' "
	        "RandomRotation; the identity at inference",
	        rotation_params, rotation_build),
	AUG_OPS("random_zoom", "RandomZoom", "random_zoom",
	        "zooms each image in or out by a random factor about its center while training, as Keras' "
	        "RandomZoom; the identity at inference",
	        zoom_params, zoom_build),
	AUG_OPS("random_flip", "RandomFlip", "random_flip",
	        "flips half the images while training, as Keras' RandomFlip; the identity at inference",
	        flip_params, flip_build),
	AUG_OPS("random_contrast", "RandomContrast", "random_contrast",
	        "scales each image channel's deviations from its mean by a random factor while training, as "
	        "Keras' RandomContrast; the identity at inference",
	        contrast_params, contrast_build),
};

static strata_status aug_init(const strata_host *host, strata_registry *reg)
{
	strata_status st = host->register_program(reg, "augment", augment_cl_source, "");
	for (size_t i = 0; st == STRATA_OK && i < sizeof(aug_ops) / sizeof(aug_ops[0]); i++)
		st = host->register_layer(reg, &aug_ops[i]);
	return st;
}

static const strata_plugin aug_plugin = {
	.abi_version = STRATA_PLUGIN_ABI_VERSION,
	.size = sizeof(strata_plugin),
	.name = "augment",
	.version = "1.0.0",
	.description = "Keras' image augmentation layers (random translation, rotation, zoom, flip, contrast) on "
	               "the device",
	.init = aug_init,
};

STRATA_PLUGIN_DEFINE(aug_plugin)
