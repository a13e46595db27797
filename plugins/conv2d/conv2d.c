/* Conv2D: Keras' 2-D convolution over (H, W, C) inputs, as a GEMM on the im2col matrix, which
 * the host's GEMM reads in place from the input where it can (host->gemm_window: unpadded
 * windows, Strata's CPU GEMM), else an im2col launch builds; backward, the weighted layers'
 * GEMMs (common/weights.h) and a col2im gather. */
#include <limits.h>
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
	int64_t h, w, c;         /* input */
	int64_t kh, kw, sh, sw;
	int64_t pad_top, pad_left;
	int64_t oh, ow, filters; /* output */
	bool direct;             /* 1x1 kernel, stride 1: the input already is the im2col matrix */
	uint32_t workspace;      /* the im2col matrix, unless direct */
} conv2d_plan;

static const strata_param conv2d_params[] = {
	{.name = "filters", .type = STRATA_PARAM_INT, .min = 1, .max = INT_MAX,
	 .doc = "number of output channels"},
	{.name = "kernel_size", .type = STRATA_PARAM_INTS, .min = 1, .max = INT_MAX, .count = 2,
	 .doc = "height and width of the convolution window"},
	{.name = "strides", .type = STRATA_PARAM_INTS, .default_value = "[1, 1]", .min = 1, .max = INT_MAX,
	 .count = 2, .doc = "step of the window along height and width"},
	{.name = "padding", .type = STRATA_PARAM_ENUM, .default_value = "valid", .choices = "valid|same",
	 .doc = "valid: no padding; same: zero-pad so the output is ceil(input / strides)"},
	WEIGHTS_COMMON_PARAMS,
};

static strata_status conv2d_build(strata_layer *layer, const strata_host *host, const strata_shape *in,
                                  strata_shape *out)
{
	char buf[96];
	if (in->rank != 3)
		return host->fail(layer, STRATA_ERR_INVALID, "Conv2D needs a (height, width, channels) "
		                  "input, got %s", shape_format(in, buf, sizeof(buf)));

	int64_t ksize[2], strides[2];
	if (host->param_ints(layer, "kernel_size", ksize, 2) != 2)
		return host->fail_param(layer, "kernel_size", STRATA_ERR_INVALID, "needs 2 values");
	if (host->param_ints(layer, "strides", strides, 2) != 2)
		return host->fail_param(layer, "strides", STRATA_ERR_INVALID, "needs 2 values");
	bool same = strcmp(host->param_string(layer, "padding"), "same") == 0;

	conv2d_plan plan = {
		.h = in->dims[0], .w = in->dims[1], .c = in->dims[2],
		.kh = ksize[0], .kw = ksize[1], .sh = strides[0], .sw = strides[1],
		.filters = host->param_int(layer, "filters"),
	};
	if (!shape_window(plan.h, plan.kh, plan.sh, same, &plan.oh, &plan.pad_top) ||
	    !shape_window(plan.w, plan.kw, plan.sw, same, &plan.ow, &plan.pad_left))
		return host->fail_param(layer, "kernel_size", STRATA_ERR_INVALID,
		                        "kernel %lldx%lld is larger than the %lldx%lld input with padding "
		                        "'valid'; use a smaller kernel_size or padding: same",
		                        (long long)plan.kh, (long long)plan.kw, (long long)plan.h,
		                        (long long)plan.w);
	plan.direct = plan.kh == 1 && plan.kw == 1 && plan.sh == 1 && plan.sw == 1;

	/* Per-sample sizes must stay within the kernels' int indexing. */
	int64_t inputs, pixels, patch, cols, outputs;
	if (!shape_mul(plan.h, plan.w, INT_MAX, &inputs) || !shape_mul(inputs, plan.c, INT_MAX, &inputs) ||
	    !shape_mul(plan.oh, plan.ow, INT_MAX, &pixels) ||
	    !shape_mul(plan.kh * plan.kw, plan.c, INT_MAX, &patch) ||
	    !shape_mul(pixels, patch, INT_MAX, &cols) || !shape_mul(pixels, plan.filters, INT_MAX, &outputs))
		return host->fail(layer, STRATA_ERR_OVERFLOW, "input %s with this kernel_size is too large",
		                  shape_format(in, buf, sizeof(buf)));

	strata_shape kshape = {.rank = 4, .dims = {plan.kh, plan.kw, plan.c, plan.filters}};
	strata_status st = weights_declare(layer, host, &kshape, plan.filters, (size_t)pixels,
	                                   &plan.weights);
	if (st != STRATA_OK)
		return st;
	if (!plan.direct) {
		st = host->add_workspace(layer, (size_t)cols * sizeof(float), &plan.workspace);
		if (st != STRATA_OK)
			return st;
	}

	conv2d_plan *p = malloc(sizeof(*p));
	if (!p)
		return host->fail(layer, STRATA_ERR_NO_MEMORY, "out of memory");
	*p = plan;
	free(host->get_private(layer));
	host->set_private(layer, p);

	*out = (strata_shape){.rank = 3, .dims = {plan.oh, plan.ow, plan.filters}};
	return STRATA_OK;
}

/* Enqueues im2col (input to cols) or, with `gather`, col2im (cols to input gradient): both take
 * the layer's geometry and run over (vectors of channels, pixels) (see conv2d.cl): im2col over
 * the vectors of a kernel row's KW*C values and the output pixels, col2im over the vectors of C
 * channels and the input pixels. */
static strata_status conv2d_launch(strata_layer *layer, const strata_host *host, const conv2d_plan *p,
                                   bool gather, uint32_t batch, strata_tensor *src, strata_tensor *dst)
{
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
 * `g` (a GEMM whose A is that matrix or its transpose): no padding, and a host that offers it. */
static bool conv2d_window(strata_layer *layer, const strata_host *host, const conv2d_plan *p, strata_gemm *g,
                          strata_tensor *input, strata_gemm_window *win)
{
	if (p->direct || p->pad_top || p->pad_left || p->oh != (p->h - p->kh) / p->sh + 1 ||
	    p->ow != (p->w - p->kw) / p->sw + 1 || !STRATA_HOST_HAS(host, gemm_window))
		return false;
	*win = (strata_gemm_window){
		.h = (uint32_t)p->h, .w = (uint32_t)p->w, .c = (uint32_t)p->c, .kh = (uint32_t)p->kh,
		.kw = (uint32_t)p->kw, .sh = (uint32_t)p->sh, .sw = (uint32_t)p->sw,
		.oh = (uint32_t)p->oh, .ow = (uint32_t)p->ow,
	};
	strata_tensor *a = g->a;
	g->a = input;
	g->a_window = win;
	if (host->gemm_window(layer, g))
		return true;
	g->a = a;
	g->a_window = NULL;
	return false;
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
	strata_gemm g = {
		.size = sizeof(g),
		.m = rows, .n = (size_t)p->filters, .k = depth,
		.alpha = 1.0f, .beta = 0.0f,
		.lda = depth,
		.b = host->weight(layer, p->weights.kernel), .ldb = (size_t)p->filters,
		.c = args->output, .ldc = (size_t)p->filters,
	};
	strata_gemm_window win;
	if (!conv2d_window(layer, host, p, &g, args->input, &win) &&
	    (st = conv2d_cols(layer, host, p, args->batch, args->input, &g.a)))
		return st;
	st = host->gemm(layer, &g);
	if (st != STRATA_OK)
		return st;
	strata_tensor *bias = p->weights.has_bias ? host->weight(layer, p->weights.bias) : NULL;
	return activation_fused_forward(layer, host, &p->weights.act, args->output, bias, rows, (size_t)p->filters);
}

/* The kernel gradient reads the im2col matrix in place from the input when the host's GEMM can,
 * else it is the forward pass's when the host kept the workspace, else it is built again. The
 * workspace then receives dcols = dZ kernel^T (the queue runs in order, so after the kernel
 * gradient has read it), which col2im gathers into the input gradient. On the 1x1 stride-1 path
 * dcols is the input gradient. */
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
	strata_gemm_window win;
	strata_tensor *cols = NULL;
	bool windowed = conv2d_window(layer, host, p, &dw, args->input, &win);
	if (windowed)
		cols = args->input;
	else if (kept)
		cols = p->direct ? args->input : host->workspace(layer, p->workspace);
	else if ((st = conv2d_cols(layer, host, p, args->batch, args->input, &cols)))
		return st;
	strata_tensor *dcols = p->direct ? args->grad_input : host->workspace(layer, p->workspace);
	weights_grad g = {
		.a = cols, .a_window = windowed ? &win : NULL, .y = args->output, .dy = args->grad_output,
		.d_a = args->grad_input ? dcols : NULL,
		.rows = rows, .depth = depth, .units = (size_t)p->filters,
		.folded = args->activation_folded,
	};
	st = weights_backward(layer, host, &p->weights, &g);
	if (st != STRATA_OK || !args->grad_input || p->direct)
		return st;
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

static strata_status conv2d_init(const strata_host *host, strata_registry *reg)
{
	strata_status st = host->register_program(reg, "conv2d", conv2d_cl_source, "");
	if (st != STRATA_OK)
		return st;
	return host->register_layer(reg, &conv2d_ops);
}

static const strata_plugin conv2d_plugin = {
	.abi_version = STRATA_PLUGIN_ABI_VERSION,
	.size = sizeof(strata_plugin),
	.name = "conv2d",
	.version = "1.0.0",
	.description = "Conv2D layer: im2col, GEMM and col2im on the OpenCL device",
	.init = conv2d_init,
};

STRATA_PLUGIN_DEFINE(conv2d_plugin)
