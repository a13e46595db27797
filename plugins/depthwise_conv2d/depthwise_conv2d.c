/* DepthwiseConv2D and SeparableConv2D, as Keras 3's, over (H, W, C) inputs.
 *  - DepthwiseConv2D: each input channel ci convolved with its own depth_multiplier (DM) filters
 *    (KH, KW) into output channels ci*DM + m; weights depthwise_kernel (KH, KW, C, DM) and bias
 *    (C*DM). One work-item per output vector sums its window (depthwise_conv2d.cl), the bias added
 *    there; the activation after it (common/activation.h). A multiplier DM > 1 convolves the input
 *    with each channel repeated DM times (a workspace), which is Keras' kernel layout read as
 *    (KH, KW, C*DM): the kernels always run over vectors of neighbouring channels.
 *  - SeparableConv2D: the depthwise convolution above (no bias, no activation) into a workspace,
 *    then a 1x1 convolution, a GEMM (host->gemm) with pointwise_kernel (1, 1, C*DM, filters), then
 *    bias and activation; weights depthwise_kernel, pointwise_kernel, bias (filters).
 * Backward: dz = dy * act' and the bias gradient (host->column_sums); SeparableConv2D's pointwise
 * part as the weighted layers' backward pass (common/weights.h), which leaves the depthwise
 * output's gradient in place of it; then the input gradient as a gather over the output pixels
 * whose windows hold each input pixel, and the depthwise kernel's gradient as partial sums per
 * block of output rows and a sum of the blocks in order. Every result is the same bits on every
 * run: no atomics, reductions in a fixed order.
 *
 * Padding 'same' is TensorFlow's (plugins/common/shape.h: the odd pixel after), also with a
 * dilation_rate, where the window spans DH*(KH - 1) + 1 rows. A dilation_rate above 1 together
 * with strides above 1 (which TensorFlow's depthwise convolution refuses) is computed as that
 * definition says, as PyTorch does. */
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <strata/plugin.h>

#include "activation.h"
#include "core.h"
#include "depthwise_conv2d_cl.h"
#include "shape.h"
#include "tune.h"
#include "weights.h"

/* Blocks of output rows of the depthwise kernel gradient's partial sums: at least DW_BLOCK_ROWS
 * rows each, and longer when a batch would have more than DW_MAX_BLOCKS blocks, so that the final
 * per-element sums stay short. The workspace is sized for the most blocks a batch can have. */
#define DW_BLOCK_ROWS 64
#define DW_MAX_BLOCKS 1024

#define DW_DATA_FORMAT_DOC "Strata's tensors are channels-last (NHWC) only; transpose channels-first data first"

/* What build() works out for forward() and backward(). */
typedef struct dw_plan {
	bool separable;
	int64_t h, w, c, dm, co;  /* input; co = c * dm, the depthwise output's channels */
	int64_t kh, kw, sh, sw, dh, dw;
	int64_t pad_top, pad_left;
	int64_t oh, ow, units;    /* output: units = co (depthwise) or filters (separable) */
	uint32_t depthwise;       /* weight: depthwise_kernel */
	weights_layout out;       /* the output's weights: kernel = pointwise_kernel (separable), bias,
	                           * activation, partials (the workspace below), rows_per_sample */
	uint32_t partials;        /* workspace: partial sums (kernel and bias gradients) */
	size_t blocks_per_sample; /* of the kernel gradient's partial sums, at most */
	uint32_t mid;             /* separable: workspace of the depthwise output (and its gradient) */
	uint32_t rep;             /* dm > 1: workspace of the input with each channel repeated dm times
	                           * (and of its gradient) */
} dw_plan;

static const strata_param depthwise_params[] = {
	{.name = "kernel_size", .type = STRATA_PARAM_INTS, .min = 1, .max = INT_MAX, .count = 2,
	 .doc = "height and width of the depthwise window"},
	{.name = "strides", .type = STRATA_PARAM_INTS, .default_value = "[1, 1]", .min = 1, .max = INT_MAX,
	 .count = 2, .doc = "step of the window along height and width"},
	{.name = "padding", .type = STRATA_PARAM_ENUM, .default_value = "valid", .choices = "valid|same",
	 .doc = "valid: no padding; same: zero-pad so the output is ceil(input / strides)"},
	{.name = "depth_multiplier", .type = STRATA_PARAM_INT, .default_value = "1", .min = 1, .max = INT_MAX,
	 .doc = "output channels per input channel"},
	{.name = "data_format", .type = STRATA_PARAM_UNSUPPORTED, .default_value = "channels_last",
	 .doc = DW_DATA_FORMAT_DOC},
	{.name = "dilation_rate", .type = STRATA_PARAM_INTS, .default_value = "[1, 1]", .min = 1, .max = INT_MAX,
	 .count = 2, .doc = "spacing of the window's taps along height and width"},
	{.name = "activation", .type = STRATA_PARAM_ENUM, .default_value = "linear", .choices = ACTIVATION_CHOICES,
	 .doc = "activation applied to the output"},
	{.name = "use_bias", .type = STRATA_PARAM_BOOL, .default_value = "true",
	 .doc = "whether the layer adds a bias vector"},
	{.name = "depthwise_initializer", .type = STRATA_PARAM_ENUM, .default_value = "glorot_uniform",
	 .choices = WEIGHTS_INITIALIZER_CHOICES, .doc = "initializer of the depthwise kernel"},
	{.name = "bias_initializer", .type = STRATA_PARAM_ENUM, .default_value = "zeros",
	 .choices = WEIGHTS_INITIALIZER_CHOICES, .doc = "initializer of the bias vector"},
	{.name = "depthwise_regularizer", .type = STRATA_PARAM_REGULARIZER, .default_value = "null",
	 .doc = "l1/l2 penalty on the depthwise kernel, e.g. {l2: 0.01}"},
	{.name = "bias_regularizer", .type = STRATA_PARAM_REGULARIZER, .default_value = "null",
	 .doc = "l1/l2 penalty on the bias vector"},
	{.name = "depthwise_constraint", .type = STRATA_PARAM_CONSTRAINT, .default_value = "null",
	 .doc = "applied to the depthwise kernel after every update: max_norm, {max_norm: {max_value: 3}}, non_neg"},
	{.name = "bias_constraint", .type = STRATA_PARAM_CONSTRAINT, .default_value = "null",
	 .doc = "applied to the bias after every update, as depthwise_constraint"},
};

static const strata_param separable_params[] = {
	{.name = "filters", .type = STRATA_PARAM_INT, .min = 1, .max = INT_MAX,
	 .doc = "number of output channels (of the pointwise convolution)"},
	{.name = "kernel_size", .type = STRATA_PARAM_INTS, .min = 1, .max = INT_MAX, .count = 2,
	 .doc = "height and width of the depthwise window"},
	{.name = "strides", .type = STRATA_PARAM_INTS, .default_value = "[1, 1]", .min = 1, .max = INT_MAX,
	 .count = 2, .doc = "step of the window along height and width"},
	{.name = "padding", .type = STRATA_PARAM_ENUM, .default_value = "valid", .choices = "valid|same",
	 .doc = "valid: no padding; same: zero-pad so the output is ceil(input / strides)"},
	{.name = "data_format", .type = STRATA_PARAM_UNSUPPORTED, .default_value = "channels_last",
	 .doc = DW_DATA_FORMAT_DOC},
	{.name = "dilation_rate", .type = STRATA_PARAM_INTS, .default_value = "[1, 1]", .min = 1, .max = INT_MAX,
	 .count = 2, .doc = "spacing of the depthwise window's taps along height and width"},
	{.name = "depth_multiplier", .type = STRATA_PARAM_INT, .default_value = "1", .min = 1, .max = INT_MAX,
	 .doc = "depthwise output channels per input channel"},
	{.name = "activation", .type = STRATA_PARAM_ENUM, .default_value = "linear", .choices = ACTIVATION_CHOICES,
	 .doc = "activation applied to the output"},
	{.name = "use_bias", .type = STRATA_PARAM_BOOL, .default_value = "true",
	 .doc = "whether the layer adds a bias vector"},
	{.name = "depthwise_initializer", .type = STRATA_PARAM_ENUM, .default_value = "glorot_uniform",
	 .choices = WEIGHTS_INITIALIZER_CHOICES, .doc = "initializer of the depthwise kernel"},
	{.name = "pointwise_initializer", .type = STRATA_PARAM_ENUM, .default_value = "glorot_uniform",
	 .choices = WEIGHTS_INITIALIZER_CHOICES, .doc = "initializer of the pointwise (1x1) kernel"},
	{.name = "bias_initializer", .type = STRATA_PARAM_ENUM, .default_value = "zeros",
	 .choices = WEIGHTS_INITIALIZER_CHOICES, .doc = "initializer of the bias vector"},
	{.name = "depthwise_regularizer", .type = STRATA_PARAM_REGULARIZER, .default_value = "null",
	 .doc = "l1/l2 penalty on the depthwise kernel, e.g. {l2: 0.01}"},
	{.name = "pointwise_regularizer", .type = STRATA_PARAM_REGULARIZER, .default_value = "null",
	 .doc = "l1/l2 penalty on the pointwise kernel"},
	{.name = "bias_regularizer", .type = STRATA_PARAM_REGULARIZER, .default_value = "null",
	 .doc = "l1/l2 penalty on the bias vector"},
	{.name = "depthwise_constraint", .type = STRATA_PARAM_CONSTRAINT, .default_value = "null",
	 .doc = "applied to the depthwise kernel after every update: max_norm, {max_norm: {max_value: 3}}, non_neg"},
	{.name = "pointwise_constraint", .type = STRATA_PARAM_CONSTRAINT, .default_value = "null",
	 .doc = "applied to the pointwise kernel after every update, as depthwise_constraint"},
	{.name = "bias_constraint", .type = STRATA_PARAM_CONSTRAINT, .default_value = "null",
	 .doc = "applied to the bias after every update, as depthwise_constraint"},
};

/* Declares weight `name` of `shape` with its initializer, regularizer and constraint parameters. */
static strata_status dw_add_weight(strata_layer *layer, const strata_host *host, const char *name, const char *init,
                                   const char *reg, const char *constraint, const strata_shape *shape, uint32_t *index)
{
	strata_weight_desc d = {
		.size = sizeof(d),
		.name = name,
		.shape = *shape,
		.initializer = host->param_string(layer, init),
		.constraint = constraint,
	};
	host->param_regularizer(layer, reg, &d.l1, &d.l2);
	return host->add_weight(layer, &d, index);
}

static strata_status dw_build(strata_layer *layer, const strata_host *host, const strata_shape *in,
                              strata_shape *out, bool separable)
{
	const char *cls = separable ? "SeparableConv2D" : "DepthwiseConv2D";
	char buf[96];
	if (in->rank != 3)
		return host->fail(layer, STRATA_ERR_INVALID, "%s needs a (height, width, channels) input, got %s", cls,
		                  shape_format(in, buf, sizeof(buf)));
	int64_t ksize[2], strides[2], dilation[2];
	if (host->param_ints(layer, "kernel_size", ksize, 2) != 2)
		return host->fail_param(layer, "kernel_size", STRATA_ERR_INVALID, "needs 2 values");
	if (host->param_ints(layer, "strides", strides, 2) != 2)
		return host->fail_param(layer, "strides", STRATA_ERR_INVALID, "needs 2 values");
	if (host->param_ints(layer, "dilation_rate", dilation, 2) != 2)
		return host->fail_param(layer, "dilation_rate", STRATA_ERR_INVALID, "needs 2 values");
	bool same = strcmp(host->param_string(layer, "padding"), "same") == 0;
	dw_plan plan = {
		.separable = separable,
		.h = in->dims[0], .w = in->dims[1], .c = in->dims[2],
		.dm = host->param_int(layer, "depth_multiplier"),
		.kh = ksize[0], .kw = ksize[1], .sh = strides[0], .sw = strides[1],
		.dh = dilation[0], .dw = dilation[1],
	};
	/* The window's extent with its dilation: DH*(KH - 1) + 1 rows. */
	int64_t eh, ew, co;
	if (!shape_mul(plan.dh, plan.kh - 1, INT_MAX - 1, &eh) || !shape_mul(plan.dw, plan.kw - 1, INT_MAX - 1, &ew))
		return host->fail_param(layer, "dilation_rate", STRATA_ERR_OVERFLOW, "the dilated window is too large");
	eh++, ew++;
	if (!shape_window(plan.h, eh, plan.sh, same, &plan.oh, &plan.pad_top) ||
	    !shape_window(plan.w, ew, plan.sw, same, &plan.ow, &plan.pad_left))
		return host->fail_param(layer, "kernel_size", STRATA_ERR_INVALID,
		                        "the %lldx%lld window (kernel %lldx%lld, dilation %lldx%lld) is larger than the "
		                        "%lldx%lld input with padding 'valid'; use a smaller kernel_size or padding: same",
		                        (long long)eh, (long long)ew, (long long)plan.kh, (long long)plan.kw,
		                        (long long)plan.dh, (long long)plan.dw, (long long)plan.h, (long long)plan.w);
	if (!shape_mul(plan.c, plan.dm, INT_MAX, &co))
		return host->fail_param(layer, "depth_multiplier", STRATA_ERR_OVERFLOW, "%lld channels x %lld is too many",
		                        (long long)plan.c, (long long)plan.dm);
	plan.co = co;
	plan.units = separable ? host->param_int(layer, "filters") : co;

	/* Per-sample sizes within the kernels' int indexing: input, depthwise output, output, kernel,
	 * and the partial sums. */
	int64_t pixels, inputs, reps, mids, outputs, kelems, bias_partials, partials;
	if (!shape_mul(plan.h, plan.w, INT_MAX, &inputs) || !shape_mul(inputs, plan.co, INT_MAX, &reps) ||
	    !shape_mul(inputs, plan.c, INT_MAX, &inputs) ||
	    !shape_mul(plan.oh, plan.ow, INT_MAX, &pixels) || !shape_mul(pixels, plan.co, INT_MAX, &mids) ||
	    !shape_mul(pixels, plan.units, INT_MAX, &outputs) || !shape_mul(plan.kh * plan.kw, plan.co, INT_MAX, &kelems))
		return host->fail(layer, STRATA_ERR_OVERFLOW, "input %s with this kernel_size is too large",
		                  shape_format(in, buf, sizeof(buf)));
	int64_t bps = (pixels + DW_BLOCK_ROWS - 1) / DW_BLOCK_ROWS;
	if (bps > DW_MAX_BLOCKS)
		bps = DW_MAX_BLOCKS;
	/* The bias gradient's partial sums (host->column_sums) share the workspace. */
	if (!shape_mul(bps, kelems, INT_MAX, &partials) ||
	    !shape_mul((int64_t)activation_sum_blocks((size_t)pixels), plan.units, INT_MAX, &bias_partials))
		return host->fail(layer, STRATA_ERR_OVERFLOW, "input %s with this kernel_size is too large",
		                  shape_format(in, buf, sizeof(buf)));
	if (bias_partials > partials)
		partials = bias_partials;
	plan.blocks_per_sample = (size_t)bps;

	/* Weights in Keras' order; the activation's kept input first (weights_declare's order). */
	strata_status st = activation_fused_declare(layer, host, "activation", (size_t)outputs, &plan.out.act);
	if (st != STRATA_OK)
		return st;
	strata_shape dshape = {.rank = 4, .dims = {plan.kh, plan.kw, plan.c, plan.dm}};
	if ((st = dw_add_weight(layer, host, "depthwise_kernel", "depthwise_initializer", "depthwise_regularizer",
	                        "depthwise_constraint", &dshape, &plan.depthwise)))
		return st;
	if (separable) {
		strata_shape pshape = {.rank = 4, .dims = {1, 1, plan.co, plan.units}};
		if ((st = dw_add_weight(layer, host, "pointwise_kernel", "pointwise_initializer", "pointwise_regularizer",
		                        "pointwise_constraint", &pshape, &plan.out.kernel)))
			return st;
	}
	plan.out.has_bias = host->param_bool(layer, "use_bias");
	if (plan.out.has_bias) {
		strata_shape bshape = {.rank = 1, .dims = {plan.units}};
		if ((st = dw_add_weight(layer, host, "bias", "bias_initializer", "bias_regularizer", "bias_constraint",
		                        &bshape, &plan.out.bias)))
			return st;
	}
	if ((st = host->add_workspace(layer, (size_t)partials * sizeof(float), &plan.partials)))
		return st;
	plan.out.partials = plan.partials;
	plan.out.rows_per_sample = (size_t)pixels;
	if (separable && (st = host->add_workspace(layer, (size_t)mids * sizeof(float), &plan.mid)))
		return st;
	if (plan.dm > 1 && (st = host->add_workspace(layer, (size_t)reps * sizeof(float), &plan.rep)))
		return st;

	dw_plan *p = malloc(sizeof(*p));
	if (!p)
		return host->fail(layer, STRATA_ERR_NO_MEMORY, "out of memory");
	*p = plan;
	free(host->get_private(layer));
	host->set_private(layer, p);
	*out = (strata_shape){.rank = 3, .dims = {plan.oh, plan.ow, plan.units}};
	return STRATA_OK;
}

static strata_status depthwise_build(strata_layer *layer, const strata_host *host, const strata_shape *in,
                                     strata_shape *out)
{
	return dw_build(layer, host, in, out, false);
}

static strata_status separable_build(strata_layer *layer, const strata_host *host, const strata_shape *in,
                                     strata_shape *out)
{
	return dw_build(layer, host, in, out, true);
}

/* Refuses a batch whose tensors would exceed the kernels' int indexing. */
static strata_status dw_check_batch(strata_layer *layer, const strata_host *host, const dw_plan *p, uint32_t batch)
{
	size_t pixels = (size_t)(p->oh * p->ow), widest = (size_t)(p->h * p->w * p->co);
	size_t sizes[] = {pixels * (size_t)p->co, pixels * (size_t)p->units,
	                  p->blocks_per_sample * (size_t)(p->kh * p->kw * p->co)};
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++)
		if (sizes[i] > widest)
			widest = sizes[i];
	return shape_check_batch(layer, host, batch, widest);
}

/* The kernels' vector width: VW neighbouring channels of the depthwise output (the input, with
 * its channels repeated dm times). */
static unsigned dw_vw(strata_layer *layer, const strata_host *host, const dw_plan *p)
{
	return tune_vector_width((size_t)p->co, tune_vw(layer, host));
}

static strata_kernel *dw_kernel(strata_layer *layer, const strata_host *host, const char *name, unsigned vw)
{
	char options[32];
	return host->kernel(layer, "depthwise_conv2d", name, tune_vw_options(options, sizeof(options), vw));
}

/* The geometry arguments every depthwise kernel takes after its tensors, from n on; its images
 * have the depthwise output's CO channels (the input's, repeated dm times). */
static uint32_t dw_geometry(const dw_plan *p, uint32_t batch, strata_arg *a)
{
	const int64_t v[] = {batch, p->h, p->w, p->co, p->oh, p->ow, p->kh, p->kw,
	                     p->sh, p->sw, p->dh, p->dw, p->pad_top, p->pad_left};
	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++)
		a[i] = strata_arg_int((int32_t)v[i]);
	return (uint32_t)(sizeof(v) / sizeof(v[0]));
}

/* dw_expand (the input x to its repeated image, `fold` false) or dw_fold (the repeated image's
 * gradient to the input's), with a multiplier above 1. */
static strata_status dw_repeat(strata_layer *layer, const strata_host *host, const dw_plan *p, bool fold,
                               uint32_t batch, strata_tensor *src, strata_tensor *dst)
{
	strata_kernel *k = dw_kernel(layer, host, fold ? "dw_fold" : "dw_expand", dw_vw(layer, host, p));
	if (!k)
		return host->last_status(layer);
	size_t pixels = (size_t)batch * (size_t)(p->h * p->w);
	strata_arg a[] = {strata_arg_tensor(src), strata_arg_tensor(dst), strata_arg_int((int32_t)pixels),
	                  strata_arg_int((int32_t)p->c), strata_arg_int((int32_t)p->dm)};
	return tune_launch_2d(layer, host, k, (size_t)(fold ? p->c : p->co), pixels, 5, a);
}

/* The image the depthwise kernels read for input x: x itself, or its repeated image (expanded
 * now unless `expanded`). */
static strata_status dw_source(strata_layer *layer, const strata_host *host, const dw_plan *p, uint32_t batch,
                               strata_tensor *x, bool expanded, strata_tensor **src)
{
	*src = x;
	if (p->dm == 1)
		return STRATA_OK;
	*src = host->workspace(layer, p->rep);
	return expanded ? STRATA_OK : dw_repeat(layer, host, p, false, batch, x, *src);
}

/* dst[N*OH*OW, CO] = the depthwise convolution of x, plus `bias` unless NULL. */
static strata_status dw_depthwise(strata_layer *layer, const strata_host *host, const dw_plan *p, uint32_t batch,
                                  strata_tensor *x, strata_tensor *bias, strata_tensor *dst)
{
	strata_tensor *src;
	strata_status st = dw_source(layer, host, p, batch, x, false, &src);
	if (st != STRATA_OK)
		return st;
	unsigned vw = dw_vw(layer, host, p);
	strata_kernel *k = dw_kernel(layer, host, "dw_forward", vw);
	if (!k)
		return host->last_status(layer);
	strata_tensor *kern = host->weight(layer, p->depthwise);
	strata_arg a[24] = {strata_arg_tensor(src), strata_arg_tensor(kern), strata_arg_tensor(bias ? bias : kern),
	                    strata_arg_int(bias != NULL), strata_arg_tensor(dst)};
	uint32_t na = 5 + dw_geometry(p, batch, a + 5);
	return tune_launch_2d(layer, host, k, (size_t)p->co / vw, (size_t)batch * (size_t)(p->oh * p->ow), na, a);
}

static strata_status dw_forward(strata_layer *layer, const strata_host *host, const strata_forward_args *args)
{
	const dw_plan *p = host->get_private(layer);
	if (args->batch == 0)
		return STRATA_OK;
	strata_status st = dw_check_batch(layer, host, p, args->batch);
	if (st != STRATA_OK)
		return st;
	size_t rows = (size_t)args->batch * (size_t)(p->oh * p->ow);
	strata_tensor *bias = p->out.has_bias ? host->weight(layer, p->out.bias) : NULL;
	if (!p->separable) {
		/* The bias is added by the convolution itself; the activation (if any) after it. */
		if ((st = dw_depthwise(layer, host, p, args->batch, args->input, bias, args->output)))
			return st;
		if (p->out.act.code == ACTIVATION_LINEAR)
			return STRATA_OK;
		return activation_fused_forward(layer, host, &p->out.act, args->output, NULL, rows, (size_t)p->units);
	}
	strata_tensor *mid = host->workspace(layer, p->mid);
	if ((st = dw_depthwise(layer, host, p, args->batch, args->input, NULL, mid)))
		return st;
	strata_gemm g = {
		.size = sizeof(g),
		.m = rows, .n = (size_t)p->units, .k = (size_t)p->co,
		.alpha = 1.0f, .beta = 0.0f,
		.a = mid, .lda = (size_t)p->co,
		.b = host->weight(layer, p->out.kernel), .ldb = (size_t)p->units,
		.c = args->output, .ldc = (size_t)p->units,
	};
	if ((st = host->gemm(layer, &g)))
		return st;
	if (!bias && p->out.act.code == ACTIVATION_LINEAR)
		return STRATA_OK;
	return activation_fused_forward(layer, host, &p->out.act, args->output, bias, rows, (size_t)p->units);
}

/* The depthwise kernel's gradient from dz (dLoss/d(depthwise output), [N*OH*OW, CO]) and the
 * image the forward pass read (dw_source): partial sums per block of rows into the partials
 * workspace, then their sum in order. */
static strata_status dw_kernel_grad(strata_layer *layer, const strata_host *host, const dw_plan *p, uint32_t batch,
                                    strata_tensor *src, strata_tensor *dz, strata_tensor *grad)
{
	size_t rows = (size_t)batch * (size_t)(p->oh * p->ow);
	size_t block_rows = DW_BLOCK_ROWS;
	if ((rows + block_rows - 1) / block_rows > DW_MAX_BLOCKS)
		block_rows = (rows + DW_MAX_BLOCKS - 1) / DW_MAX_BLOCKS;
	size_t blocks = (rows + block_rows - 1) / block_rows;
	size_t kelems = (size_t)(p->kh * p->kw * p->co);
	if (blocks > (size_t)batch * p->blocks_per_sample)
		return host->fail(layer, STRATA_ERR_PLUGIN, "%zu blocks of partial sums exceed the workspace's %zu", blocks,
		                  (size_t)batch * p->blocks_per_sample);
	strata_tensor *partial = host->workspace(layer, p->partials);
	unsigned vw = dw_vw(layer, host, p);
	strata_kernel *k = dw_kernel(layer, host, "dw_kernel_partials", vw);
	if (!k)
		return host->last_status(layer);
	strata_arg a[24] = {strata_arg_tensor(src), strata_arg_tensor(dz), strata_arg_tensor(partial)};
	uint32_t na = 3 + dw_geometry(p, batch, a + 3);
	a[na++] = strata_arg_int((int32_t)block_rows);
	a[na++] = strata_arg_int((int32_t)blocks);
	strata_status st = tune_launch_2d(layer, host, k, kelems / vw, blocks, na, a);
	if (st != STRATA_OK)
		return st;
	/* vw divides CO, so KH*KW*CO too: the same build of the program. */
	strata_kernel *fin = dw_kernel(layer, host, "dw_kernel_finish", vw);
	if (!fin)
		return host->last_status(layer);
	strata_arg f[] = {strata_arg_tensor(partial), strata_arg_tensor(grad), strata_arg_int((int32_t)kelems),
	                  strata_arg_int((int32_t)blocks)};
	return tune_launch_2d(layer, host, fin, kelems / vw, 1, 4, f);
}

/* dx = the depthwise convolution's input gradient from dz ([N*OH*OW, CO]): with a multiplier
 * above 1, the repeated image's gradient (over the repeated image's workspace, which the kernel
 * gradient has read by then: the queue runs in order), folded. */
static strata_status dw_input_grad(strata_layer *layer, const strata_host *host, const dw_plan *p, uint32_t batch,
                                   strata_tensor *dz, strata_tensor *dx)
{
	unsigned vw = dw_vw(layer, host, p);
	strata_kernel *k = dw_kernel(layer, host, "dw_backward_input", vw);
	if (!k)
		return host->last_status(layer);
	strata_tensor *drep = p->dm == 1 ? dx : host->workspace(layer, p->rep);
	strata_arg a[20] = {strata_arg_tensor(dz), strata_arg_tensor(host->weight(layer, p->depthwise)),
	                    strata_arg_tensor(drep)};
	uint32_t na = 3 + dw_geometry(p, batch, a + 3);
	strata_status st = tune_launch_2d(layer, host, k, (size_t)p->co / vw, (size_t)batch * (size_t)(p->h * p->w),
	                                  na, a);
	if (st != STRATA_OK || p->dm == 1)
		return st;
	return dw_repeat(layer, host, p, true, batch, drep, dx);
}

/* DepthwiseConv2D's dz = dy * act'(...) in place and the bias gradient (its column sums). */
static strata_status dw_output_grad(strata_layer *layer, const strata_host *host, const dw_plan *p,
                                    const strata_backward_args *args, size_t rows)
{
	strata_status st;
	int code = p->out.act.code;
	bool folded = args->activation_folded;
	size_t cols = (size_t)p->units;
	if (p->out.act.keeps_input && !folded) {
		if ((st = activation_fused_backward(layer, host, &p->out.act, args->grad_output, args->grad_output,
		                                    args->output, rows, cols, false)))
			return st;
		code = ACTIVATION_LINEAR;
		folded = true;
	}
	if (p->out.has_bias) {
		size_t capacity = (size_t)args->batch * activation_sum_blocks((size_t)(p->oh * p->ow));
		return activation_backward_sums(layer, host, args->grad_output, args->output,
		                                host->weight_grad(layer, p->out.bias), host->workspace(layer, p->partials),
		                                capacity, rows, cols, code, folded);
	}
	if (folded || code == ACTIVATION_LINEAR)
		return STRATA_OK;
	return activation_backward(layer, host, args->grad_output, args->grad_output, args->output, rows, cols, code,
	                           false);
}

static strata_status dw_backward(strata_layer *layer, const strata_host *host, const strata_backward_args *args)
{
	const dw_plan *p = host->get_private(layer);
	strata_status st = dw_check_batch(layer, host, p, args->batch);
	if (st != STRATA_OK)
		return st;
	strata_tensor *dk = host->weight_grad(layer, p->depthwise);
	strata_tensor *pk = p->separable ? host->weight_grad(layer, p->out.kernel) : NULL;
	strata_tensor *db = p->out.has_bias ? host->weight_grad(layer, p->out.bias) : NULL;
	if (!dk || (p->separable && !pk) || (p->out.has_bias && !db))
		return host->fail(layer, STRATA_ERR_INVALID, "no weight gradients: the session is not prepared for training");
	if (args->batch == 0) {
		/* An empty batch contributes nothing, but the gradients are still overwritten. */
		if ((st = core_fill(layer, host, dk, 0.0f, (size_t)(p->kh * p->kw * p->co))))
			return st;
		if (pk && (st = core_fill(layer, host, pk, 0.0f, (size_t)(p->co * p->units))))
			return st;
		return db ? core_fill(layer, host, db, 0.0f, (size_t)p->units) : STRATA_OK;
	}
	bool kept = strata_backward_kept(args);
	if (activation_fused_stale(&p->out.act, args)) {
		/* The activation's input is gone: the forward pass again (the same bits), which also
		 * leaves the depthwise output in its workspace. */
		strata_forward_args again = activation_forward_again(args);
		if ((st = dw_forward(layer, host, &again)))
			return st;
		kept = true;
	}
	size_t rows = (size_t)args->batch * (size_t)(p->oh * p->ow);
	strata_tensor *dz = args->grad_output;
	if (!p->separable) {
		if ((st = dw_output_grad(layer, host, p, args, rows)))
			return st;
	} else {
		strata_tensor *mid = host->workspace(layer, p->mid);
		if (!kept && (st = dw_depthwise(layer, host, p, args->batch, args->input, NULL, mid)))
			return st;
		/* The pointwise part: bias, pointwise kernel, and mid's gradient written over mid. */
		weights_grad g = {
			.a = mid, .y = args->output, .dy = args->grad_output, .d_a = mid,
			.rows = rows, .depth = (size_t)p->co, .units = (size_t)p->units,
			.folded = args->activation_folded,
		};
		if ((st = weights_backward(layer, host, &p->out, &g)))
			return st;
		dz = mid;
	}
	/* The image the forward pass read: the separable path has just made it, or the forward
	 * pass left it when kept. */
	strata_tensor *src;
	if ((st = dw_source(layer, host, p, args->batch, args->input, kept || p->separable, &src)) ||
	    (st = dw_kernel_grad(layer, host, p, args->batch, src, dz, dk)))
		return st;
	if (!args->grad_input)
		return STRATA_OK;
	return dw_input_grad(layer, host, p, args->batch, dz, args->grad_input);
}

static void dw_destroy(strata_layer *layer, const strata_host *host)
{
	free(host->get_private(layer));
	host->set_private(layer, NULL);
}

static const strata_layer_ops depthwise_ops = {
	.size = sizeof(strata_layer_ops),
	.type = "depthwise_conv2d",
	.class_name = "DepthwiseConv2D",
	.name_prefix = "depthwise_conv2d",
	.doc = "per-channel 2-D convolution (depth_multiplier filters per input channel), as Keras' DepthwiseConv2D",
	.params = depthwise_params,
	.n_params = sizeof(depthwise_params) / sizeof(depthwise_params[0]),
	.build = depthwise_build,
	.forward = dw_forward,
	.backward = dw_backward,
	.destroy = dw_destroy,
};

static const strata_layer_ops separable_ops = {
	.size = sizeof(strata_layer_ops),
	.type = "separable_conv2d",
	.class_name = "SeparableConv2D",
	.name_prefix = "separable_conv2d",
	.doc = "depthwise 2-D convolution then a 1x1 convolution to `filters` channels, as Keras' SeparableConv2D",
	.params = separable_params,
	.n_params = sizeof(separable_params) / sizeof(separable_params[0]),
	.build = separable_build,
	.forward = dw_forward,
	.backward = dw_backward,
	.destroy = dw_destroy,
};

static strata_status dw_init(const strata_host *host, strata_registry *reg)
{
	strata_status st = host->register_program(reg, "depthwise_conv2d", depthwise_conv2d_cl_source, "");
	if (st == STRATA_OK)
		st = host->register_layer(reg, &depthwise_ops);
	if (st == STRATA_OK)
		st = host->register_layer(reg, &separable_ops);
	return st;
}

static const strata_plugin dw_plugin = {
	.abi_version = STRATA_PLUGIN_ABI_VERSION,
	.size = sizeof(strata_plugin),
	.name = "depthwise_conv2d",
	.version = "1.0.0",
	.description = "DepthwiseConv2D and SeparableConv2D layers: direct depthwise kernels and a pointwise GEMM",
	.init = dw_init,
};

STRATA_PLUGIN_DEFINE(dw_plugin)
