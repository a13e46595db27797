/* What the 2-D pooling layers (maxpool2d, averagepool2d) share: Keras' pool_size / strides /
 * padding parameters, the window geometry build() works out, and the launch of a kernel that
 * takes it. Header-only, like the rest of common/. */
#ifndef PLUGINS_COMMON_POOL_H
#define PLUGINS_COMMON_POOL_H

#include <limits.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <strata/plugin.h>

#include "shape.h"
#include "tune.h"

typedef struct pool_plan {
	int64_t h, w, c;
	int64_t ph, pw, sh, sw;
	int64_t pad_top, pad_left;
	int64_t oh, ow;
} pool_plan;

/* The strata_param entries of a pooling layer, with Keras' names and defaults. */
#define POOL_PARAMS                                                                                  \
	{.name = "pool_size", .type = STRATA_PARAM_INTS, .default_value = "[2, 2]", .min = 1,           \
	 .max = INT_MAX, .count = 2, .doc = "height and width of the pooling window"},                   \
	{.name = "strides", .type = STRATA_PARAM_INTS, .default_value = "null", .min = 1, .max = INT_MAX, \
	 .count = 2, .doc = "step of the window along height and width; null: pool_size"},              \
	{.name = "padding", .type = STRATA_PARAM_ENUM, .default_value = "valid", .choices = "valid|same", \
	 .doc = "valid: windows inside the input only; same: the output is ceil(input / strides)"}

/* Checks the (H, W, C) input, works out the windows and stores them as the layer's private
 * data (free it with pool_destroy); `class_name` names the layer in messages. */
static inline strata_status pool_build(strata_layer *layer, const strata_host *host, const char *class_name,
                                       const strata_shape *in, strata_shape *out)
{
	char buf[96];
	if (in->rank != 3)
		return host->fail(layer, STRATA_ERR_INVALID, "%s needs a (height, width, channels) input, "
		                  "got %s", class_name, shape_format(in, buf, sizeof(buf)));

	int64_t pool[2], strides[2];
	if (host->param_ints(layer, "pool_size", pool, 2) != 2)
		return host->fail_param(layer, "pool_size", STRATA_ERR_INVALID, "needs 2 values");
	/* Keras' strides=None: the windows tile the input. */
	if (host->param_ints(layer, "strides", strides, 2) != 2)
		memcpy(strides, pool, sizeof(strides));
	bool same = strcmp(host->param_string(layer, "padding"), "same") == 0;

	pool_plan plan = {
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

	pool_plan *p = malloc(sizeof(*p));
	if (!p)
		return host->fail(layer, STRATA_ERR_NO_MEMORY, "out of memory");
	*p = plan;
	free(host->get_private(layer));
	host->set_private(layer, p);

	*out = (strata_shape){.rank = 3, .dims = {plan.oh, plan.ow, plan.c}};
	return STRATA_OK;
}

/* True when windows overlap (a stride smaller than the window), so that an input element may
 * feed several outputs: the backward passes then gather per input element; otherwise each
 * output writes its own cell of the input gradient. */
static inline bool pool_overlapping(const pool_plan *p)
{
	return p->sh < p->ph || p->sw < p->pw;
}

/* Enqueues kernel `name` of `program` with arguments (tensors..., n, h, w, c, ph, pw, sh, sw,
 * pad_top, pad_left, oh, ow) over `batch` samples, as a 2-D launch over (vectors of channels,
 * pixels) built for the widest vector that divides C: over the output pixels, or over the input
 * pixels when `per_input` is true (the backward gathers). */
static inline strata_status pool_launch(strata_layer *layer, const strata_host *host, const char *program,
                                        const char *name, uint32_t batch, bool per_input,
                                        strata_tensor *const *tensors, uint32_t n_tensors)
{
	const pool_plan *p = host->get_private(layer);
	strata_status st = shape_check_batch(layer, host, batch, (size_t)(p->h * p->w * p->c));
	if (st != STRATA_OK || batch == 0)
		return st;
	unsigned vw = tune_vector_width((size_t)p->c, tune_vw(layer, host));
	char options[32];
	strata_kernel *k = host->kernel(layer, program, name, tune_vw_options(options, sizeof(options), vw));
	if (!k)
		return host->last_status(layer);
	strata_arg a[3 + 12];
	if (n_tensors > 3)
		return host->fail(layer, STRATA_ERR_PLUGIN, "pool_launch takes at most 3 tensors");
	uint32_t n = 0;
	for (uint32_t i = 0; i < n_tensors; i++)
		a[n++] = strata_arg_tensor(tensors[i]);
	const int64_t geometry[] = {batch, p->h, p->w, p->c, p->ph, p->pw, p->sh, p->sw, p->pad_top,
	                            p->pad_left, p->oh, p->ow};
	for (size_t i = 0; i < sizeof(geometry) / sizeof(geometry[0]); i++)
		a[n++] = strata_arg_int((int32_t)geometry[i]);
	size_t pixels = (size_t)batch * (size_t)(per_input ? p->h * p->w : p->oh * p->ow);
	return tune_launch_2d(layer, host, k, (size_t)p->c / vw, pixels, n, a);
}

static inline void pool_destroy(strata_layer *layer, const strata_host *host)
{
	free(host->get_private(layer));
	host->set_private(layer, NULL);
}

#endif
