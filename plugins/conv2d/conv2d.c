/* Conv2D and Conv1D: Keras' convolutions over (H, W, C) and (steps, C) inputs, a Conv1D input
 * being a 1 x steps image. Each is a GEMM on the im2col matrix, which the host's GEMM reads in
 * place from the input where it can (host->gemm_window: unpadded, undilated windows, one group,
 * Strata's CPU GEMM), else an im2col launch builds; backward, the weighted layers' GEMMs
 * (common/weights.h) and, for the input gradient, one GEMM over the zero-padded dz read in place
 * where the stride is 1 and the host's GEMM reads windows (conv2d_dx_window), else a GEMM into
 * a matrix of products and a col2im gather over it.
 *
 * The plain convolution (dilation 1, one group) uses the im2col and col2im kernels; a dilated or
 * grouped one the general kernels, whose im2col matrix has its columns group-major, (g, ky, kx,
 * ci): group g's columns are then one block of them, the rows of group g's slice of the kernel
 * (KH, KW, C / groups, F) read as a [KH*KW*C/groups, F] matrix, so a group is one GEMM on column
 * blocks (offsets and leading dimensions) of the matrix, the kernel and the output. With one
 * group the order is the plain kernels' (ky, kx, ci). */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <strata/plugin.h>

#include "activation.h"
#include "conv2d_cl.h"
#include "shape.h"
#include "tune.h"
#include "weights.h"

/* What build() works out for forward(). */
typedef struct conv2d_plan {
	weights_layout weights;
	int64_t h, w, c;         /* input (Conv1D: h = 1) */
	int64_t kh, kw, sh, sw;
	int64_t dh, dw;          /* dilation, 1 along an axis whose kernel extent is 1 */
	int64_t groups;
	int64_t pad_top, pad_left;
	int64_t oh, ow, filters; /* output */
	bool direct;             /* 1x1 kernel, stride 1: the input already is the im2col matrix */
	bool general;            /* dilated or grouped: the general kernels, never a window */
	/* Stride 1, not general, not direct: the input gradient may be one GEMM over the padded dz
	 * read in place (conv2d.cl's dz_pad), when the host's GEMM takes that window. */
	bool dx_window;
	int64_t ph, pw;          /* the padded dz: (H + KH - 1) x (W + KW - 1) x F */
	int64_t flipped;         /* floats of the flipped kernel at the workspace's start */
	int64_t dx_floats;       /* per sample, K' and the padded dz (dx_window; else 0) */
	uint32_t workspace;      /* the im2col matrix, unless direct; or K' and the padded dz */
} conv2d_plan;

#define CONV_DATA_FORMAT_PARAM                                                                       \
	{.name = "data_format", .type = STRATA_PARAM_UNSUPPORTED, .default_value = "channels_last",      \
	 .doc = "Strata's tensors are channels-last (NHWC) only; transpose channels-first data first"}
#define CONV_GROUPS_PARAM                                                                            \
	{.name = "groups", .type = STRATA_PARAM_INT, .default_value = "1", .min = 1, .max = INT_MAX,     \
	 .doc = "channel groups: output group g convolves input group g; divides channels and filters"}

static const strata_param conv2d_params[] = {
	{.name = "filters", .type = STRATA_PARAM_INT, .min = 1, .max = INT_MAX,
	 .doc = "number of output channels"},
	{.name = "kernel_size", .type = STRATA_PARAM_INTS, .min = 1, .max = INT_MAX, .count = 2,
	 .doc = "height and width of the convolution window"},
	{.name = "strides", .type = STRATA_PARAM_INTS, .default_value = "[1, 1]", .min = 1, .max = INT_MAX,
	 .count = 2, .doc = "step of the window along height and width"},
	{.name = "padding", .type = STRATA_PARAM_ENUM, .default_value = "valid", .choices = "valid|same",
	 .doc = "valid: no padding; same: zero-pad so the output is ceil(input / strides)"},
	CONV_DATA_FORMAT_PARAM,
	{.name = "dilation_rate", .type = STRATA_PARAM_INTS, .default_value = "[1, 1]", .min = 1, .max = INT_MAX,
	 .count = 2, .doc = "spacing of the kernel's taps along height and width (not with strides > 1)"},
	CONV_GROUPS_PARAM,
	WEIGHTS_COMMON_PARAMS,
};

static const strata_param conv1d_params[] = {
	{.name = "filters", .type = STRATA_PARAM_INT, .min = 1, .max = INT_MAX,
	 .doc = "number of output channels"},
	{.name = "kernel_size", .type = STRATA_PARAM_INTS, .min = 1, .max = INT_MAX, .count = 1,
	 .doc = "length of the convolution window"},
	{.name = "strides", .type = STRATA_PARAM_INTS, .default_value = "1", .min = 1, .max = INT_MAX,
	 .count = 1, .doc = "step of the window along the steps"},
	{.name = "padding", .type = STRATA_PARAM_ENUM, .default_value = "valid", .choices = "valid|same|causal",
	 .doc = "valid: none; same: output ceil(steps / strides); causal: left-pad dilation_rate * (kernel_size - 1)"},
	CONV_DATA_FORMAT_PARAM,
	{.name = "dilation_rate", .type = STRATA_PARAM_INTS, .default_value = "1", .min = 1, .max = INT_MAX,
	 .count = 1, .doc = "spacing of the kernel's taps (not with strides > 1)"},
	CONV_GROUPS_PARAM,
	WEIGHTS_COMMON_PARAMS,
};

/* "[2, 3]" or "2" */
static const char *ints_format(const int64_t *v, int n, char *buf, size_t size)
{
	if (n == 1)
		snprintf(buf, size, "%lld", (long long)v[0]);
	else
		snprintf(buf, size, "[%lld, %lld]", (long long)v[0], (long long)v[1]);
	return buf;
}

/* The kernel's extent along one axis, dilation * (kernel - 1) + 1, within the kernels' ints. */
static bool conv_extent(int64_t kernel, int64_t dilation, int64_t *extent)
{
	if (!shape_mul(dilation, kernel - 1, INT_MAX - 1, extent))
		return false;
	*extent += 1;
	return true;
}

/* Builds either layer type: Conv2D (`dims` 2) over (h, w, c), Conv1D (`dims` 1) over (w, c) as a
 * 1 x w image, whose "causal" padding pads dilation * (kernel - 1) zeros on the left only. */
static strata_status conv_build(strata_layer *layer, const strata_host *host, const strata_shape *in,
                                strata_shape *out, int dims)
{
	const char *what = dims == 2 ? "Conv2D" : "Conv1D";
	char buf[96], sbuf[48], dbuf[64];
	if (in->rank != (uint32_t)dims + 1)
		return host->fail(layer, STRATA_ERR_INVALID, "%s needs a %s input, got %s", what,
		                  dims == 2 ? "(height, width, channels)" : "(steps, channels)",
		                  shape_format(in, buf, sizeof(buf)));

	int64_t ksize[2], strides[2], dilation[2];
	if (host->param_ints(layer, "kernel_size", ksize, 2) != (uint32_t)dims)
		return host->fail_param(layer, "kernel_size", STRATA_ERR_INVALID, "needs %d value%s", dims,
		                        dims == 1 ? "" : "s");
	if (host->param_ints(layer, "strides", strides, 2) != (uint32_t)dims)
		return host->fail_param(layer, "strides", STRATA_ERR_INVALID, "needs %d value%s", dims, dims == 1 ? "" : "s");
	if (host->param_ints(layer, "dilation_rate", dilation, 2) != (uint32_t)dims)
		return host->fail_param(layer, "dilation_rate", STRATA_ERR_INVALID, "needs %d value%s", dims,
		                        dims == 1 ? "" : "s");
	const char *padding = host->param_string(layer, "padding");
	bool same = strcmp(padding, "same") == 0, causal = strcmp(padding, "causal") == 0;

	/* Keras refuses these two together (its strided convolutions have no holes). */
	int64_t max_stride = dims == 2 && strides[1] > strides[0] ? strides[1] : strides[0];
	int64_t max_dilation = dims == 2 && dilation[1] > dilation[0] ? dilation[1] : dilation[0];
	if (max_stride > 1 && max_dilation > 1)
		return host->fail_param(layer, "dilation_rate", STRATA_ERR_INVALID,
		                        "strides > 1 together with dilation_rate > 1 is not supported (as in Keras): "
		                        "got strides %s and dilation_rate %s; use strides 1 or dilation_rate 1",
		                        ints_format(strides, dims, sbuf, sizeof(sbuf)),
		                        ints_format(dilation, dims, dbuf, sizeof(dbuf)));

	conv2d_plan plan = {
		.h = dims == 2 ? in->dims[0] : 1, .w = in->dims[dims - 1], .c = in->dims[dims],
		.kh = dims == 2 ? ksize[0] : 1, .kw = ksize[dims - 1],
		.sh = dims == 2 ? strides[0] : 1, .sw = strides[dims - 1],
		.dh = dims == 2 ? dilation[0] : 1, .dw = dilation[dims - 1],
		.groups = host->param_int(layer, "groups"),
		.filters = host->param_int(layer, "filters"),
	};
	if (plan.filters % plan.groups != 0)
		return host->fail_param(layer, "groups", STRATA_ERR_INVALID,
		                        "filters (%lld) must be divisible by groups (%lld)", (long long)plan.filters,
		                        (long long)plan.groups);
	if (plan.c % plan.groups != 0)
		return host->fail_param(layer, "groups", STRATA_ERR_INVALID,
		                        "the input's %lld channels (input %s) must be divisible by groups (%lld)",
		                        (long long)plan.c, shape_format(in, buf, sizeof(buf)), (long long)plan.groups);
	/* A tap spacing along an axis of one tap changes nothing: the plain path takes it. */
	if (plan.kh == 1)
		plan.dh = 1;
	if (plan.kw == 1)
		plan.dw = 1;

	int64_t eh, ew;
	if (!conv_extent(plan.kh, plan.dh, &eh) || !conv_extent(plan.kw, plan.dw, &ew))
		return host->fail_param(layer, "dilation_rate", STRATA_ERR_OVERFLOW,
		                        "the dilated kernel's extent is too large");
	bool fits;
	if (causal) {
		plan.oh = 1;
		plan.pad_top = 0;
		plan.pad_left = ew - 1;
		plan.ow = (plan.w - 1) / plan.sw + 1;
		fits = true;
	} else {
		fits = shape_window(plan.h, eh, plan.sh, same, &plan.oh, &plan.pad_top) &&
		       shape_window(plan.w, ew, plan.sw, same, &plan.ow, &plan.pad_left);
	}
	if (!fits) {
		/* "3x3", or "3x3 dilated to 5x5" */
		char kbuf[64];
		if (dims == 2)
			snprintf(kbuf, sizeof(kbuf), "%lldx%lld", (long long)plan.kh, (long long)plan.kw);
		else
			snprintf(kbuf, sizeof(kbuf), "%lld", (long long)plan.kw);
		bool dilated = plan.dh > 1 || plan.dw > 1;
		if (dilated && dims == 2)
			snprintf(dbuf, sizeof(dbuf), " dilated to %lldx%lld", (long long)eh, (long long)ew);
		else if (dilated)
			snprintf(dbuf, sizeof(dbuf), " dilated to %lld", (long long)ew);
		else
			dbuf[0] = '\0';
		if (dims == 2)
			return host->fail_param(layer, "kernel_size", STRATA_ERR_INVALID,
			                        "kernel %s%s is larger than the %lldx%lld input with padding 'valid'; use a "
			                        "smaller kernel_size%s or padding: same",
			                        kbuf, dbuf, (long long)plan.h, (long long)plan.w,
			                        dilated ? " or dilation_rate" : "");
		return host->fail_param(layer, "kernel_size", STRATA_ERR_INVALID,
		                        "kernel %s%s is longer than the input's %lld steps with padding 'valid'; use a "
		                        "smaller kernel_size%s or padding: same or causal",
		                        kbuf, dbuf, (long long)plan.w, dilated ? " or dilation_rate" : "");
	}
	plan.direct = plan.kh == 1 && plan.kw == 1 && plan.sh == 1 && plan.sw == 1;
	plan.general = !plan.direct && (plan.dh > 1 || plan.dw > 1 || plan.groups > 1);
	plan.dx_window = !plan.direct && !plan.general && plan.sh == 1 && plan.sw == 1;
	plan.ph = plan.h + plan.kh - 1;
	plan.pw = plan.w + plan.kw - 1;

	/* Per-sample sizes must stay within the kernels' int indexing. */
	int64_t inputs, pixels, patch, cols, outputs, padded;
	if (!shape_mul(plan.h, plan.w, INT_MAX, &inputs) || !shape_mul(inputs, plan.c, INT_MAX, &inputs) ||
	    !shape_mul(plan.oh, plan.ow, INT_MAX, &pixels) || !shape_mul(plan.kh, plan.kw, INT_MAX, &patch) ||
	    !shape_mul(patch, plan.c, INT_MAX, &patch) || !shape_mul(pixels, patch, INT_MAX, &cols) ||
	    !shape_mul(pixels, plan.filters, INT_MAX, &outputs) ||
	    !shape_mul(plan.ph, plan.pw, INT_MAX, &padded) || !shape_mul(padded, plan.filters, INT_MAX, &padded) ||
	    !shape_mul(patch, plan.filters, INT_MAX, &plan.flipped))
		return host->fail(layer, STRATA_ERR_OVERFLOW, "input %s with this kernel_size is too large",
		                  shape_format(in, buf, sizeof(buf)));

	/* Keras' kernel: (KH, KW, C / groups, F), Conv1D's (K, C / groups, F). */
	int64_t group_channels = plan.c / plan.groups;
	strata_shape kshape = dims == 2
		? (strata_shape){.rank = 4, .dims = {plan.kh, plan.kw, group_channels, plan.filters}}
		: (strata_shape){.rank = 3, .dims = {plan.kw, group_channels, plan.filters}};
	strata_status st = weights_declare(layer, host, &kshape, plan.filters, (size_t)pixels, &plan.weights);
	if (st != STRATA_OK)
		return st;
	if (!plan.direct) {
		/* Room for the im2col matrix, or for K' and the padded dz (K' once; a batch has a sample). */
		plan.dx_floats = plan.dx_window ? padded + plan.flipped : 0;
		st = host->add_workspace(layer, (size_t)(cols > plan.dx_floats ? cols : plan.dx_floats) * sizeof(float),
		                         &plan.workspace);
		if (st != STRATA_OK)
			return st;
	}

	conv2d_plan *p = malloc(sizeof(*p));
	if (!p)
		return host->fail(layer, STRATA_ERR_NO_MEMORY, "out of memory");
	*p = plan;
	free(host->get_private(layer));
	host->set_private(layer, p);

	if (dims == 2)
		*out = (strata_shape){.rank = 3, .dims = {plan.oh, plan.ow, plan.filters}};
	else
		*out = (strata_shape){.rank = 2, .dims = {plan.ow, plan.filters}};
	return STRATA_OK;
}

static strata_status conv2d_build(strata_layer *layer, const strata_host *host, const strata_shape *in,
                                  strata_shape *out)
{
	return conv_build(layer, host, in, out, 2);
}

static strata_status conv1d_build(strata_layer *layer, const strata_host *host, const strata_shape *in,
                                  strata_shape *out)
{
	return conv_build(layer, host, in, out, 1);
}

/* Enqueues im2col (input to cols) or, with `gather`, col2im (cols to input gradient): both take
 * the layer's geometry and run over (vectors of channels, pixels) (see conv2d.cl): im2col over
 * the vectors of a kernel row's KW*C values and the output pixels, col2im over the vectors of C
 * channels and the input pixels. A dilated or grouped layer launches the general kernels, whose
 * vectors lie within a group's channels: im2col's over (group, kx, vector), col2im's over C. */
static strata_status conv2d_launch(strata_layer *layer, const strata_host *host, const conv2d_plan *p,
                                   bool gather, uint32_t batch, strata_tensor *src, strata_tensor *dst)
{
	if (p->general) {
		size_t group_channels = (size_t)(p->c / p->groups);
		unsigned vw = tune_vector_width(group_channels, tune_vw(layer, host));
		char options[32];
		strata_kernel *k = host->kernel(layer, "conv2d", gather ? "col2im_general" : "im2col_general",
		                                tune_vw_options(options, sizeof(options), vw));
		if (!k)
			return host->last_status(layer);
		strata_arg args[] = {
			strata_arg_tensor(src), strata_arg_tensor(dst), strata_arg_int((int32_t)batch),
			strata_arg_int((int32_t)p->h), strata_arg_int((int32_t)p->w), strata_arg_int((int32_t)p->c),
			strata_arg_int((int32_t)p->kh), strata_arg_int((int32_t)p->kw),
			strata_arg_int((int32_t)p->sh), strata_arg_int((int32_t)p->sw),
			strata_arg_int((int32_t)p->dh), strata_arg_int((int32_t)p->dw), strata_arg_int((int32_t)p->groups),
			strata_arg_int((int32_t)p->pad_top), strata_arg_int((int32_t)p->pad_left),
			strata_arg_int((int32_t)p->oh), strata_arg_int((int32_t)p->ow),
		};
		size_t vectors = gather ? (size_t)p->c / vw : (size_t)p->kw * (size_t)p->c / vw;
		size_t pixels = (size_t)batch * (size_t)(gather ? p->h * p->w : p->oh * p->ow);
		return tune_launch_2d(layer, host, k, vectors, pixels, sizeof(args) / sizeof(args[0]), args);
	}
	unsigned vw = tune_vector_width((size_t)p->c, tune_vw(layer, host));
	char options[32];
	strata_kernel *k = host->kernel(layer, "conv2d", gather ? "col2im" : "im2col",
	                                tune_vw_options(options, sizeof(options), vw));
	if (!k)
		return host->last_status(layer);
	strata_arg args[] = {
		strata_arg_tensor(src), strata_arg_tensor(dst), strata_arg_int((int32_t)batch),
		strata_arg_int((int32_t)p->h), strata_arg_int((int32_t)p->w), strata_arg_int((int32_t)p->c),
		strata_arg_int((int32_t)p->kh), strata_arg_int((int32_t)p->kw),
		strata_arg_int((int32_t)p->sh), strata_arg_int((int32_t)p->sw),
		strata_arg_int((int32_t)p->pad_top), strata_arg_int((int32_t)p->pad_left),
		strata_arg_int((int32_t)p->oh), strata_arg_int((int32_t)p->ow),
	};
	size_t vectors = (size_t)(gather ? p->c : p->kw * p->c) / vw;
	size_t pixels = (size_t)batch * (size_t)(gather ? p->h * p->w : p->oh * p->ow);
	return tune_launch_2d(layer, host, k, vectors, pixels, sizeof(args) / sizeof(args[0]), args);
}

/* The im2col matrix as a window over the input, when the host's GEMM reads it in place for
 * `g` (a GEMM whose A is that matrix or its transpose): no padding, no dilation, one group, and
 * a host that offers it. */
static bool conv2d_window(strata_layer *layer, const strata_host *host, const conv2d_plan *p, strata_gemm *g,
                          strata_tensor *input, strata_gemm_window *win)
{
	if (p->direct || p->general || p->pad_top || p->pad_left || p->oh != (p->h - p->kh) / p->sh + 1 ||
	    p->ow != (p->w - p->kw) / p->sw + 1)
		return false;
	*win = (strata_gemm_window){
		.h = (uint32_t)p->h, .w = (uint32_t)p->w, .c = (uint32_t)p->c, .kh = (uint32_t)p->kh,
		.kw = (uint32_t)p->kw, .sh = (uint32_t)p->sh, .sw = (uint32_t)p->sw,
		.oh = (uint32_t)p->oh, .ow = (uint32_t)p->ow,
	};
	return core_gemm_window(layer, host, g, input, win);
}

/* The im2col matrix of the input: the input itself on the 1x1 stride-1 path, else the
 * workspace after an im2col launch. */
static strata_status conv2d_cols(strata_layer *layer, const strata_host *host, const conv2d_plan *p,
                                 uint32_t batch, strata_tensor *input, strata_tensor **cols)
{
	*cols = input;
	if (p->direct)
		return STRATA_OK;
	*cols = host->workspace(layer, p->workspace);
	return conv2d_launch(layer, host, p, false, batch, input, *cols);
}

/* Refuses a batch whose input, cols or output would exceed the kernels' int indexing. */
static strata_status conv2d_check_batch(strata_layer *layer, const strata_host *host, const conv2d_plan *p,
                                        uint32_t batch)
{
	size_t pixels = (size_t)(p->oh * p->ow), depth = (size_t)(p->kh * p->kw * p->c);
	size_t widest = pixels * (depth > (size_t)p->filters ? depth : (size_t)p->filters);
	size_t inputs = (size_t)(p->h * p->w * p->c);
	if ((size_t)p->dx_floats > widest)
		widest = (size_t)p->dx_floats;
	return shape_check_batch(layer, host, batch, widest > inputs ? widest : inputs);
}

static strata_status conv2d_forward(strata_layer *layer, const strata_host *host,
                                    const strata_forward_args *args)
{
	const conv2d_plan *p = host->get_private(layer);
	size_t rows = (size_t)args->batch * (size_t)(p->oh * p->ow);
	size_t depth = (size_t)(p->kh * p->kw * p->c);
	if (args->batch == 0)
		return STRATA_OK;
	strata_status st = conv2d_check_batch(layer, host, p, args->batch);
	if (st != STRATA_OK)
		return st;
	/* Group k: its block of depth / groups columns of cols, of units / groups columns of the
	 * kernel [depth / groups, F] and of the output. One group: the whole of each. */
	size_t groups = (size_t)p->groups, group_depth = depth / groups, group_units = (size_t)p->filters / groups;
	strata_gemm g = {
		.size = sizeof(g),
		.m = rows, .n = group_units, .k = group_depth,
		.alpha = 1.0f, .beta = 0.0f,
		.lda = depth,
		.b = host->weight(layer, p->weights.kernel), .ldb = (size_t)p->filters,
		.c = args->output, .ldc = (size_t)p->filters,
	};
	strata_gemm_window win;
	if (!conv2d_window(layer, host, p, &g, args->input, &win) &&
	    (st = conv2d_cols(layer, host, p, args->batch, args->input, &g.a)))
		return st;
	strata_tensor *bias = p->weights.has_bias ? host->weight(layer, p->weights.bias) : NULL;
	if (groups == 1)
		return activation_fused_gemm(layer, host, &p->weights.act, &g, bias);
	for (size_t k = 0; k < groups; k++) {
		g.a_offset = k * group_depth;
		g.b_offset = g.c_offset = k * group_units;
		if ((st = host->gemm(layer, &g)) != STRATA_OK)
			return st;
	}
	return activation_fused_forward(layer, host, &p->weights.act, args->output, bias, rows, (size_t)p->filters);
}

/* The input gradient as one GEMM (conv2d.cl's dz_pad): *g = window(padded dz) x K' into dx,
 * the window *win over the workspace after K', when the layer qualifies (stride 1, dilation 1,
 * one group) and the host's GEMM reads that window in place; else false, and the caller takes
 * dcols = dz K^T and col2im. */
static bool conv2d_dx_window(strata_layer *layer, const strata_host *host, const conv2d_plan *p, uint32_t batch,
                             strata_tensor *dx, strata_gemm *g, strata_gemm_window *win)
{
	if (!p->dx_window || !dx)
		return false;
	strata_tensor *ws = host->workspace(layer, p->workspace);
	*g = (strata_gemm){
		.size = sizeof(*g),
		.m = (size_t)batch * (size_t)(p->h * p->w), .n = (size_t)p->c, .k = (size_t)(p->kh * p->kw * p->filters),
		.alpha = 1.0f, .beta = 0.0f,
		.a_offset = (size_t)p->flipped,
		.b = ws, .ldb = (size_t)p->c,
		.c = dx, .ldc = (size_t)p->c,
	};
	*win = (strata_gemm_window){
		.h = (uint32_t)p->ph, .w = (uint32_t)p->pw, .c = (uint32_t)p->filters, .kh = (uint32_t)p->kh,
		.kw = (uint32_t)p->kw, .sh = 1, .sw = 1, .oh = (uint32_t)p->h, .ow = (uint32_t)p->w,
	};
	return core_gemm_window(layer, host, g, ws, win);
}

/* Runs conv2d_dx_window's GEMM: K' and the padded dz (the layer's dz, after weights_backward
 * made it dLoss/dPreactivation) into the workspace, then the GEMM. */
static strata_status conv2d_dx(strata_layer *layer, const strata_host *host, const conv2d_plan *p, uint32_t batch,
                               strata_tensor *dz, const strata_gemm *g)
{
	strata_tensor *ws = host->workspace(layer, p->workspace);
	unsigned vw = tune_vector_width((size_t)p->filters, tune_vw(layer, host));
	char options[32];
	tune_vw_options(options, sizeof(options), vw);
	strata_kernel *flip = host->kernel(layer, "conv2d", "kernel_flip", options);
	strata_kernel *pad = flip ? host->kernel(layer, "conv2d", "dz_pad", options) : NULL;
	if (!pad)
		return host->last_status(layer);
	int32_t taps = (int32_t)(p->kh * p->kw);
	strata_arg flip_args[] = {
		strata_arg_tensor(host->weight(layer, p->weights.kernel)), strata_arg_tensor(ws), strata_arg_int(taps),
		strata_arg_int((int32_t)p->c), strata_arg_int((int32_t)p->filters),
	};
	strata_status st = tune_launch_2d(layer, host, flip, (size_t)p->c, (size_t)taps * (size_t)p->filters,
	                                  sizeof(flip_args) / sizeof(flip_args[0]), flip_args);
	if (st != STRATA_OK)
		return st;
	strata_arg pad_args[] = {
		strata_arg_tensor(dz), strata_arg_tensor(ws), strata_arg_int((int32_t)p->flipped),
		strata_arg_int((int32_t)batch), strata_arg_int((int32_t)p->oh), strata_arg_int((int32_t)p->ow),
		strata_arg_int((int32_t)p->filters), strata_arg_int((int32_t)p->ph), strata_arg_int((int32_t)p->pw),
		strata_arg_int((int32_t)(p->kh - 1 - p->pad_top)), strata_arg_int((int32_t)(p->kw - 1 - p->pad_left)),
	};
	st = tune_launch_2d(layer, host, pad, (size_t)p->filters / vw, (size_t)batch * (size_t)(p->ph * p->pw),
	                    sizeof(pad_args) / sizeof(pad_args[0]), pad_args);
	if (st != STRATA_OK)
		return st;
	return host->gemm(layer, g);
}

/* The kernel gradient reads the im2col matrix in place from the input when the host's GEMM can,
 * else it is the forward pass's when the host kept the workspace, else it is built again. The
 * input gradient is then one GEMM over the padded dz where conv2d_dx_window allows, else the
 * workspace receives dcols = dZ kernel^T (the queue runs in order, so after the kernel gradient
 * has read it), which col2im gathers into the input gradient. On the 1x1 stride-1 path dcols is
 * the input gradient. A grouped layer runs both GEMMs per group (weights_backward). */
static strata_status conv2d_backward(strata_layer *layer, const strata_host *host,
                                     const strata_backward_args *args)
{
	const conv2d_plan *p = host->get_private(layer);
	strata_status st = conv2d_check_batch(layer, host, p, args->batch);
	if (st != STRATA_OK)
		return st;
	bool kept = strata_backward_kept(args);
	if (activation_fused_stale(&p->weights.act, args)) {
		/* The activation's input is gone: the forward pass again (the same output bits), which
		 * also leaves the im2col matrix in the workspace. */
		strata_forward_args again = activation_forward_again(args);
		if ((st = conv2d_forward(layer, host, &again)))
			return st;
		kept = true;
	}
	size_t rows = (size_t)args->batch * (size_t)(p->oh * p->ow), depth = (size_t)(p->kh * p->kw * p->c);
	/* The kernel gradient's GEMM, cols^T dZ, as weights_backward will ask for it. */
	strata_gemm dw = {.size = sizeof(dw), .trans_a = true, .m = depth, .n = (size_t)p->filters, .k = rows,
	                  .lda = depth, .ldb = (size_t)p->filters, .ldc = (size_t)p->filters};
	strata_gemm_window win, dx_win;
	strata_gemm dx;
	strata_tensor *cols = NULL;
	bool windowed = conv2d_window(layer, host, p, &dw, args->input, &win);
	if (windowed)
		cols = args->input;
	else if (kept)
		cols = p->direct ? args->input : host->workspace(layer, p->workspace);
	else if ((st = conv2d_cols(layer, host, p, args->batch, args->input, &cols)))
		return st;
	bool dx_windowed = conv2d_dx_window(layer, host, p, args->batch, args->grad_input, &dx, &dx_win);
	strata_tensor *dcols = p->direct ? args->grad_input : host->workspace(layer, p->workspace);
	weights_grad g = {
		.a = cols, .a_window = windowed ? &win : NULL, .y = args->output, .dy = args->grad_output,
		.d_a = args->grad_input && !dx_windowed ? dcols : NULL,
		.rows = rows, .depth = depth, .units = (size_t)p->filters,
		.folded = args->activation_folded,
		.groups = (size_t)p->groups,
	};
	st = weights_backward(layer, host, &p->weights, &g);
	if (st != STRATA_OK || !args->grad_input || p->direct)
		return st;
	if (dx_windowed)
		return conv2d_dx(layer, host, p, args->batch, args->grad_output, &dx);
	return conv2d_launch(layer, host, p, true, args->batch, dcols, args->grad_input);
}

static void conv2d_destroy(strata_layer *layer, const strata_host *host)
{
	free(host->get_private(layer));
	host->set_private(layer, NULL);
}

static const strata_layer_ops conv2d_ops = {
	.size = sizeof(strata_layer_ops),
	.type = "conv2d",
	.class_name = "Conv2D",
	.name_prefix = "conv2d",
	.doc = "2-D convolution over (height, width, channels) inputs, as Keras' Conv2D",
	.params = conv2d_params,
	.n_params = sizeof(conv2d_params) / sizeof(conv2d_params[0]),
	.build = conv2d_build,
	.forward = conv2d_forward,
	.backward = conv2d_backward,
	.destroy = conv2d_destroy,
};

static const strata_layer_ops conv1d_ops = {
	.size = sizeof(strata_layer_ops),
	.type = "conv1d",
	.class_name = "Conv1D",
	.name_prefix = "conv1d",
	.doc = "1-D convolution over (steps, channels) inputs, as Keras' Conv1D",
	.params = conv1d_params,
	.n_params = sizeof(conv1d_params) / sizeof(conv1d_params[0]),
	.build = conv1d_build,
	.forward = conv2d_forward,
	.backward = conv2d_backward,
	.destroy = conv2d_destroy,
};

static strata_status conv2d_init(const strata_host *host, strata_registry *reg)
{
	strata_status st = host->register_program(reg, "conv2d", conv2d_cl_source, "");
	if (st != STRATA_OK)
		return st;
	if ((st = host->register_layer(reg, &conv2d_ops)) != STRATA_OK)
		return st;
	return host->register_layer(reg, &conv1d_ops);
}

static const strata_plugin conv2d_plugin = {
	.abi_version = STRATA_PLUGIN_ABI_VERSION,
	.size = sizeof(strata_plugin),
	.name = "conv2d",
	.version = "1.1.0",
	.description = "Conv2D and Conv1D layers: im2col, GEMM and col2im on the OpenCL device",
	.init = conv2d_init,
};

STRATA_PLUGIN_DEFINE(conv2d_plugin)
