/* Conv2DTranspose, as Keras 3's: the adjoint of a 2-D convolution (the gradient of Conv2D with
 * respect to its input), over (H, W, C) inputs, to `filters` (F) channels. Weights kernel
 * (KH, KW, F, C), the convolution's kernel, so filters comes before the input channels as in
 * Keras, and bias (F).
 *
 * Output size (Keras' compute_conv_transpose_output_shape), with the window's extent
 * E = DH*(KH - 1) + 1: valid: H*SH + max(E - SH, 0); same: H*SH; with an output_padding P:
 * (H - 1)*SH + E - 2*pad + P, pad = 0 (valid) or E // 2 (same). TensorFlow then pads the
 * convolution the layer is the adjoint of as its 'same' padding does (the odd pixel after).
 *
 * Forward: a GEMM (host->gemm) gives each input pixel's contribution to every tap,
 * cols[N*H*W, KH*KW*F] = x[N*H*W, C] kernel[KH*KW*F, C]^T, and ct_gather sums what lands on each
 * output pixel (in a fixed order, no atomics) and adds the bias; then the activation.
 * Backward: dz = dy * act' and the bias gradient (host->column_sums); the input gradient is the
 * convolution of dz, dcols[N*H*W, KH*KW*F] (ct_im2col, or read in place by the host's GEMM where
 * it can) times the kernel; the kernel gradient is dcols^T x. */
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <strata/plugin.h>

#include "activation.h"
#include "conv2d_transpose_cl.h"
#include "core.h"
#include "shape.h"
#include "tune.h"
#include "weights.h"

typedef struct ct_plan {
	weights_layout weights;
	int64_t h, w, c;          /* input */
	int64_t kh, kw, sh, sw, dh, dw;
	int64_t pad_top, pad_left; /* of the convolution from the output to the input */
	int64_t oh, ow, filters;  /* output */
	uint32_t cols;            /* workspace: cols forward, dcols backward */
} ct_plan;

static const strata_param ct_params[] = {
	{.name = "filters", .type = STRATA_PARAM_INT, .min = 1, .max = INT_MAX,
	 .doc = "number of output channels"},
	{.name = "kernel_size", .type = STRATA_PARAM_INTS, .min = 1, .max = INT_MAX, .count = 2,
	 .doc = "height and width of the convolution window"},
	{.name = "strides", .type = STRATA_PARAM_INTS, .default_value = "[1, 1]", .min = 1, .max = INT_MAX,
	 .count = 2, .doc = "upsampling factors along height and width (the strides of the convolution it inverts)"},
	{.name = "padding", .type = STRATA_PARAM_ENUM, .default_value = "valid", .choices = "valid|same",
	 .doc = "valid: output (in - 1) * strides + kernel (at least in * strides); same: in * strides"},
	{.name = "output_padding", .type = STRATA_PARAM_INTS, .default_value = "null", .min = 0, .max = INT_MAX,
	 .count = 2, .doc = "null: the size from padding; else extra rows and columns, each below its stride"},
	{.name = "data_format", .type = STRATA_PARAM_UNSUPPORTED, .default_value = "channels_last",
	 .doc = "Strata's tensors are channels-last (NHWC) only; transpose channels-first data first"},
	{.name = "dilation_rate", .type = STRATA_PARAM_INTS, .default_value = "[1, 1]", .min = 1, .max = INT_MAX,
	 .count = 2, .doc = "spacing of the kernel's taps along height and width"},
	WEIGHTS_COMMON_PARAMS,
};

/* One spatial dimension: the output size, Keras' formula, and the padding before of the
 * convolution from it back to `in` (TensorFlow's); false when that convolution does not give
 * `in` back (an even window with padding 'same' and output_padding 0). */
static bool ct_dimension(int64_t in, int64_t extent, int64_t stride, bool same, bool has_pad, int64_t out_pad,
                         int64_t *out, int64_t *pad_before)
{
	if (!has_pad)
		*out = same ? in * stride : in * stride + (extent > stride ? extent - stride : 0);
	else
		*out = (in - 1) * stride + extent - 2 * (same ? extent / 2 : 0) + out_pad;
	int64_t back;
	return *out >= 1 && shape_window(*out, extent, stride, same, &back, pad_before) && back == in;
}

static strata_status ct_build(strata_layer *layer, const strata_host *host, const strata_shape *in, strata_shape *out)
{
	char buf[96];
	if (in->rank != 3)
		return host->fail(layer, STRATA_ERR_INVALID, "Conv2DTranspose needs a (height, width, channels) input, "
		                  "got %s", shape_format(in, buf, sizeof(buf)));
	int64_t ksize[2], strides[2], dilation[2], out_pad[2] = {0, 0};
	if (host->param_ints(layer, "kernel_size", ksize, 2) != 2)
		return host->fail_param(layer, "kernel_size", STRATA_ERR_INVALID, "needs 2 values");
	if (host->param_ints(layer, "strides", strides, 2) != 2)
		return host->fail_param(layer, "strides", STRATA_ERR_INVALID, "needs 2 values");
	if (host->param_ints(layer, "dilation_rate", dilation, 2) != 2)
		return host->fail_param(layer, "dilation_rate", STRATA_ERR_INVALID, "needs 2 values");
	uint32_t n_pad = host->param_ints(layer, "output_padding", out_pad, 2);
	if (n_pad != 0 && n_pad != 2)
		return host->fail_param(layer, "output_padding", STRATA_ERR_INVALID, "needs 2 values");
	bool same = strcmp(host->param_string(layer, "padding"), "same") == 0;
	ct_plan plan = {
		.h = in->dims[0], .w = in->dims[1], .c = in->dims[2],
		.kh = ksize[0], .kw = ksize[1], .sh = strides[0], .sw = strides[1], .dh = dilation[0], .dw = dilation[1],
		.filters = host->param_int(layer, "filters"),
	};
	for (int i = 0; i < 2 && n_pad; i++)
		if (out_pad[i] >= strides[i])
			return host->fail_param(layer, "output_padding", STRATA_ERR_INVALID,
			                        "output_padding %lld along %s is not below its stride %lld (Keras: strides "
			                        "must be greater than output padding)", (long long)out_pad[i],
			                        i ? "the width" : "the height", (long long)strides[i]);
	/* The window's extent, and products that must stay far within int64 below. */
	const int64_t big = INT_MAX / 4;
	int64_t eh, ew, oh_max, ow_max;
	if (!shape_mul(plan.dh, plan.kh - 1, big, &eh) || !shape_mul(plan.dw, plan.kw - 1, big, &ew) ||
	    !shape_mul(plan.h, plan.sh, big, &oh_max) || !shape_mul(plan.w, plan.sw, big, &ow_max))
		return host->fail(layer, STRATA_ERR_OVERFLOW, "input %s with these strides and kernel_size is too large",
		                  shape_format(in, buf, sizeof(buf)));
	eh++, ew++;
	if (!ct_dimension(plan.h, eh, plan.sh, same, n_pad != 0, out_pad[0], &plan.oh, &plan.pad_top) ||
	    !ct_dimension(plan.w, ew, plan.sw, same, n_pad != 0, out_pad[1], &plan.ow, &plan.pad_left))
		return host->fail_param(layer, "output_padding", STRATA_ERR_INVALID,
		                        "output_padding [%lld, %lld] gives an output that a convolution with padding '%s' "
		                        "does not map back to the %lldx%lld input (TensorFlow refuses it): with an even "
		                        "kernel and padding 'same' use an output_padding of at least 1",
		                        (long long)out_pad[0], (long long)out_pad[1], same ? "same" : "valid",
		                        (long long)plan.h, (long long)plan.w);

	/* Per-sample sizes within the kernels' int indexing. */
	int64_t inputs, pixels, depth, cols, outputs;
	if (!shape_mul(plan.h, plan.w, INT_MAX, &pixels) || !shape_mul(pixels, plan.c, INT_MAX, &inputs) ||
	    !shape_mul(plan.kh * plan.kw, plan.filters, INT_MAX, &depth) || !shape_mul(pixels, depth, INT_MAX, &cols) ||
	    !shape_mul(plan.oh, plan.ow, INT_MAX, &outputs) || !shape_mul(outputs, plan.filters, INT_MAX, &outputs))
		return host->fail(layer, STRATA_ERR_OVERFLOW, "input %s with this kernel_size and these strides is too "
		                  "large", shape_format(in, buf, sizeof(buf)));

	strata_shape kshape = {.rank = 4, .dims = {plan.kh, plan.kw, plan.filters, plan.c}};
	strata_status st = weights_declare(layer, host, &kshape, plan.filters, (size_t)(plan.oh * plan.ow),
	                                   &plan.weights);
	if (st != STRATA_OK)
		return st;
	if ((st = host->add_workspace(layer, (size_t)cols * sizeof(float), &plan.cols)))
		return st;

	ct_plan *p = malloc(sizeof(*p));
	if (!p)
		return host->fail(layer, STRATA_ERR_NO_MEMORY, "out of memory");
	*p = plan;
	free(host->get_private(layer));
	host->set_private(layer, p);
	*out = (strata_shape){.rank = 3, .dims = {plan.oh, plan.ow, plan.filters}};
	return STRATA_OK;
}

static strata_status ct_check_batch(strata_layer *layer, const strata_host *host, const ct_plan *p, uint32_t batch)
{
	size_t pixels = (size_t)(p->h * p->w);
	size_t sizes[] = {pixels * (size_t)p->c, pixels * (size_t)(p->kh * p->kw * p->filters),
	                  (size_t)(p->oh * p->ow * p->filters)};
	size_t widest = 0;
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++)
		if (sizes[i] > widest)
			widest = sizes[i];
	return shape_check_batch(layer, host, batch, widest);
}

/* ct_gather (cols to the output, plus `bias` unless NULL) or ct_im2col (dz to dcols). */
static strata_status ct_launch(strata_layer *layer, const strata_host *host, const ct_plan *p, bool gather,
                               uint32_t batch, strata_tensor *src, strata_tensor *bias, strata_tensor *dst)
{
	unsigned vw = tune_vector_width((size_t)p->filters, tune_vw(layer, host));
	char options[32];
	strata_kernel *k = host->kernel(layer, "conv2d_transpose", gather ? "ct_gather" : "ct_im2col",
	                                tune_vw_options(options, sizeof(options), vw));
	if (!k)
		return host->last_status(layer);
	const int64_t geometry[] = {batch, p->h, p->w, p->filters, p->oh, p->ow, p->kh, p->kw,
	                            p->sh, p->sw, p->dh, p->dw, p->pad_top, p->pad_left};
	strata_arg a[20];
	uint32_t na = 0;
	a[na++] = strata_arg_tensor(src);
	if (gather) {
		a[na++] = strata_arg_tensor(bias ? bias : src);
		a[na++] = strata_arg_int(bias != NULL);
	}
	a[na++] = strata_arg_tensor(dst);
	for (size_t i = 0; i < sizeof(geometry) / sizeof(geometry[0]); i++)
		a[na++] = strata_arg_int((int32_t)geometry[i]);
	size_t pixels = (size_t)batch * (size_t)(gather ? p->oh * p->ow : p->h * p->w);
	return tune_launch_2d(layer, host, k, (size_t)p->filters / vw, pixels, na, a);
}

static strata_status ct_forward(strata_layer *layer, const strata_host *host, const strata_forward_args *args)
{
	const ct_plan *p = host->get_private(layer);
	if (args->batch == 0)
		return STRATA_OK;
	strata_status st = ct_check_batch(layer, host, p, args->batch);
	if (st != STRATA_OK)
		return st;
	size_t depth = (size_t)(p->kh * p->kw * p->filters);
	strata_tensor *cols = host->workspace(layer, p->cols);
	strata_gemm g = {
		.size = sizeof(g),
		.trans_b = true,
		.m = (size_t)args->batch * (size_t)(p->h * p->w), .n = depth, .k = (size_t)p->c,
		.alpha = 1.0f, .beta = 0.0f,
		.a = args->input, .lda = (size_t)p->c,
		.b = host->weight(layer, p->weights.kernel), .ldb = (size_t)p->c,
		.c = cols, .ldc = depth,
	};
	if ((st = host->gemm(layer, &g)))
		return st;
	strata_tensor *bias = p->weights.has_bias ? host->weight(layer, p->weights.bias) : NULL;
	if ((st = ct_launch(layer, host, p, true, args->batch, cols, bias, args->output)))
		return st;
	if (p->weights.act.code == ACTIVATION_LINEAR)
		return STRATA_OK;
	size_t rows = (size_t)args->batch * (size_t)(p->oh * p->ow);
	return activation_fused_forward(layer, host, &p->weights.act, args->output, NULL, rows, (size_t)p->filters);
}

/* The host's GEMM reading dz in place as dcols, for `g` (whose A is dcols or its transpose):
 * windows inside the image (no padding, no dilation) and a host that offers it. */
static bool ct_window(strata_layer *layer, const strata_host *host, const ct_plan *p, strata_gemm *g,
                      strata_tensor *dz, strata_gemm_window *win)
{
	if (p->pad_top || p->pad_left || p->dh != 1 || p->dw != 1 || p->h != (p->oh - p->kh) / p->sh + 1 ||
	    p->w != (p->ow - p->kw) / p->sw + 1)
		return false;
	*win = (strata_gemm_window){
		.h = (uint32_t)p->oh, .w = (uint32_t)p->ow, .c = (uint32_t)p->filters, .kh = (uint32_t)p->kh,
		.kw = (uint32_t)p->kw, .sh = (uint32_t)p->sh, .sw = (uint32_t)p->sw,
		.oh = (uint32_t)p->h, .ow = (uint32_t)p->w,
	};
	return core_gemm_window(layer, host, g, dz, win);
}

/* dz = dy * act'(...) in place and the bias gradient (its column sums). */
static strata_status ct_output_grad(strata_layer *layer, const strata_host *host, const ct_plan *p,
                                    const strata_backward_args *args, size_t rows)
{
	const weights_layout *wl = &p->weights;
	strata_status st;
	int code = wl->act.code;
	bool folded = args->activation_folded;
	size_t cols = (size_t)p->filters;
	if (wl->act.keeps_input && !folded) {
		if ((st = activation_fused_backward(layer, host, &wl->act, args->grad_output, args->grad_output,
		                                    args->output, rows, cols, false)))
			return st;
		code = ACTIVATION_LINEAR;
		folded = true;
	}
	if (wl->has_bias) {
		size_t capacity = (size_t)args->batch * activation_sum_blocks(wl->rows_per_sample);
		return activation_backward_sums(layer, host, args->grad_output, args->output,
		                                host->weight_grad(layer, wl->bias), host->workspace(layer, wl->partials),
		                                capacity, rows, cols, code, folded);
	}
	if (folded || code == ACTIVATION_LINEAR)
		return STRATA_OK;
	return activation_backward(layer, host, args->grad_output, args->grad_output, args->output, rows, cols, code,
	                           false);
}

static strata_status ct_backward(strata_layer *layer, const strata_host *host, const strata_backward_args *args)
{
	const ct_plan *p = host->get_private(layer);
	strata_status st = ct_check_batch(layer, host, p, args->batch);
	if (st != STRATA_OK)
		return st;
	strata_tensor *dk = host->weight_grad(layer, p->weights.kernel);
	strata_tensor *db = p->weights.has_bias ? host->weight_grad(layer, p->weights.bias) : NULL;
	if (!dk || (p->weights.has_bias && !db))
		return host->fail(layer, STRATA_ERR_INVALID, "no weight gradients: the session is not prepared for training");
	size_t depth = (size_t)(p->kh * p->kw * p->filters);
	if (args->batch == 0) {
		/* An empty batch contributes nothing, but the gradients are still overwritten. */
		if ((st = core_fill(layer, host, dk, 0.0f, depth * (size_t)p->c)))
			return st;
		return db ? core_fill(layer, host, db, 0.0f, (size_t)p->filters) : STRATA_OK;
	}
	if (activation_fused_stale(&p->weights.act, args)) {
		/* The activation's input is gone: the forward pass again (the same output bits). */
		strata_forward_args again = activation_forward_again(args);
		if ((st = ct_forward(layer, host, &again)))
			return st;
	}
	size_t rows = (size_t)args->batch * (size_t)(p->oh * p->ow);
	size_t rows_in = (size_t)args->batch * (size_t)(p->h * p->w);
	if ((st = ct_output_grad(layer, host, p, args, rows)))
		return st;
	strata_tensor *dcols = host->workspace(layer, p->cols);
	/* dK[KH*KW*F, C] = dcols^T x and dx[N*H*W, C] = dcols kernel. */
	strata_gemm dw = {
		.size = sizeof(dw), .trans_a = true,
		.m = depth, .n = (size_t)p->c, .k = rows_in, .alpha = 1.0f, .beta = 0.0f,
		.a = dcols, .lda = depth, .b = args->input, .ldb = (size_t)p->c, .c = dk, .ldc = (size_t)p->c,
	};
	strata_gemm dx = {
		.size = sizeof(dx),
		.m = rows_in, .n = (size_t)p->c, .k = depth, .alpha = 1.0f, .beta = 0.0f,
		.a = dcols, .lda = depth, .b = host->weight(layer, p->weights.kernel), .ldb = (size_t)p->c,
		.c = args->grad_input, .ldc = (size_t)p->c,
	};
	strata_gemm_window win_w, win_x;
	bool windowed_w = ct_window(layer, host, p, &dw, args->grad_output, &win_w);
	bool windowed_x = args->grad_input && ct_window(layer, host, p, &dx, args->grad_output, &win_x);
	if ((!windowed_w || (args->grad_input && !windowed_x)) &&
	    (st = ct_launch(layer, host, p, false, args->batch, args->grad_output, NULL, dcols)))
		return st;
	if ((st = host->gemm(layer, &dw)) || !args->grad_input)
		return st;
	return host->gemm(layer, &dx);
}

static void ct_destroy(strata_layer *layer, const strata_host *host)
{
	free(host->get_private(layer));
	host->set_private(layer, NULL);
}

static const strata_layer_ops ct_ops = {
	.size = sizeof(strata_layer_ops),
	.type = "conv2d_transpose",
	.class_name = "Conv2DTranspose",
	.name_prefix = "conv2d_transpose",
	.doc = "transposed 2-D convolution (learned upsampling), as Keras' Conv2DTranspose",
	.params = ct_params,
	.n_params = sizeof(ct_params) / sizeof(ct_params[0]),
	.build = ct_build,
	.forward = ct_forward,
	.backward = ct_backward,
	.destroy = ct_destroy,
};

static strata_status ct_init(const strata_host *host, strata_registry *reg)
{
	strata_status st = host->register_program(reg, "conv2d_transpose", conv2d_transpose_cl_source, "");
	if (st != STRATA_OK)
		return st;
	return host->register_layer(reg, &ct_ops);
}

static const strata_plugin ct_plugin = {
	.abi_version = STRATA_PLUGIN_ABI_VERSION,
	.size = sizeof(strata_plugin),
	.name = "conv2d_transpose",
	.version = "1.0.0",
	.description = "Conv2DTranspose layer: a GEMM and a gather forward, im2col and GEMMs backward",
	.init = ct_init,
};

STRATA_PLUGIN_DEFINE(ct_plugin)
