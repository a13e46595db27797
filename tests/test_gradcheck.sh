#!/bin/sh
# `strata gradcheck` (issue 13): every built-in layer type, each layer checked alone against finite
# differences in training and inference mode, passes (exit 0); an out-of-tree plugin built here
# whose backward pass uses a wrong derivative fails (exit 1) naming the input gradient, and the
# same plugin with the right derivative passes; a layer name the model lacks is bad usage (exit 2)
# listing the model's layers.
set -u
. "$(dirname "$0")/lib.sh"

"$strata" gradcheck --help >"$tmp/out" 2>&1
[ $? -eq 0 ] && grep -q "^usage: strata gradcheck MODEL.yaml" "$tmp/out" && grep -q -- "--tolerance T" "$tmp/out" &&
	grep -q -- "--inputs N" "$tmp/out" && grep -q -- "--plugin-path DIRS" "$tmp/out" && ! grep -q -- "--epochs" "$tmp/out"
check "strata gradcheck --help lists its options ($(said))" $?

# ---- every built-in layer type ----------------------------------------------------------------------
cat >"$tmp/images.yaml" <<'YAML'
name: images
inputs: [{name: x, shape: [7, 6, 2]}]
layers:
  - {type: conv2d, filters: 3, kernel_size: 3, padding: valid, activation: relu, name: conv_valid, inputs: x}
  - {type: conv2d, filters: 2, kernel_size: [3, 2], padding: same, activation: tanh, name: conv_same, inputs: x}
  - {type: conv2d, filters: 3, kernel_size: 3, strides: 2, padding: same, name: conv_strided, inputs: x}
  - {type: maxpool2d, pool_size: 2, name: max_pool, inputs: x}
  - {type: averagepool2d, pool_size: [2, 3], strides: 1, padding: same, name: average_pool, inputs: x}
  - {type: dropout, rate: 0.4, name: drop, inputs: x}
  - {type: activation, activation: sigmoid, name: act, inputs: x}
  - {type: flatten, name: flat, inputs: x}
  - {type: dense, units: 4, activation: tanh, name: dense_rows, inputs: x}
  - {type: dense, units: 3, activation: softmax, name: dense_rows_softmax, inputs: x}
outputs: [conv_valid, conv_same, conv_strided, max_pool, average_pool, drop, act, flat, dense_rows,
          dense_rows_softmax]
YAML
for layer in conv_valid conv_same conv_strided max_pool average_pool drop act flat dense_rows dense_rows_softmax; do
	gradcheck "$tmp/images.yaml" $layer --seed 3
	status=$?
	[ $status -eq 0 ] && grep -q "^passed: " "$tmp/out" && grep -q "^  training " "$tmp/out" &&
		grep -q "^  inference " "$tmp/out"
	check "gradcheck $layer passes in both modes (status $status: $(said))" $?
done

# Dense over the last axis of an image, as Keras': (7, 6, 2) to (7, 6, 4), 2 x 4 + 4 parameters.
"$strata" summary "$tmp/images.yaml" >"$tmp/out" 2>&1
grep -Eq " dense_rows \(Dense\) +\(None, 7, 6, 4\) +12 " "$tmp/out"
check "summary: dense over an image's last axis, (None, 7, 6, 4) and 12 parameters ($(said))" $?

cat >"$tmp/vectors.yaml" <<'YAML'
name: vectors
inputs: [{name: x, shape: [7]}]
layers:
  - {type: dense, units: 5, activation: linear, name: d_linear, inputs: x}
  - {type: dense, units: 5, activation: relu, name: d_relu, inputs: x}
  - {type: dense, units: 5, activation: sigmoid, name: d_sigmoid, inputs: x}
  - {type: dense, units: 5, activation: tanh, name: d_tanh, inputs: x}
  - {type: dense, units: 5, activation: softmax, name: d_softmax, inputs: x}
  - {type: dense, units: 7, activation: tanh, name: owner, inputs: x}
  - {type: dense, units: 7, activation: tanh, name: sharer, inputs: owner, shares: owner}
  - {type: add, name: add2, inputs: [d_linear, d_tanh]}
  - {type: add, name: add3, inputs: [d_linear, d_tanh, d_sigmoid]}
  - {type: subtract, name: subtract2, inputs: [d_linear, d_tanh]}
  - {type: multiply, name: multiply2, inputs: [d_linear, d_tanh]}
  - {type: multiply, name: multiply3, inputs: [d_linear, d_tanh, d_sigmoid]}
  - {type: average, name: average2, inputs: [d_linear, d_tanh]}
  - {type: average, name: average3, inputs: [d_linear, d_tanh, d_sigmoid]}
  - {type: maximum, name: maximum2, inputs: [d_linear, d_tanh]}
  - {type: maximum, name: maximum3, inputs: [d_linear, d_tanh, d_sigmoid]}
  - {type: minimum, name: minimum2, inputs: [d_linear, d_tanh]}
  - {type: minimum, name: minimum3, inputs: [d_linear, d_tanh, d_sigmoid]}
  - {type: concatenate, name: concatenate2, inputs: [d_linear, x]}
  - {type: concatenate, name: concatenate3, inputs: [d_linear, x, d_tanh]}
  - {type: add, name: same_twice, inputs: [d_linear, d_linear]}
outputs: [d_relu, d_softmax, sharer, add2, add3, subtract2, multiply2, multiply3, average2, average3, maximum2,
          maximum3, minimum2, minimum3, concatenate2, concatenate3, same_twice]
YAML
for layer in d_linear d_relu d_sigmoid d_tanh d_softmax sharer add2 add3 subtract2 multiply2 multiply3 average2 \
	average3 maximum2 maximum3 minimum2 minimum3 concatenate2 concatenate3 same_twice; do
	gradcheck "$tmp/vectors.yaml" $layer --inputs 3
	status=$?
	[ $status -eq 0 ] && grep -q "^passed: " "$tmp/out"
	check "gradcheck $layer passes (status $status: $(said))" $?
done
# Each input of a merge layer has its own gradient, the third too.
gradcheck "$tmp/vectors.yaml" maximum3 --inputs 3
grep -q "^  training  input 2 (d_sigmoid) " "$tmp/out" && grep -q "^  inference input 0 (d_linear) " "$tmp/out"
check "gradcheck maximum3 reports each input's gradient ($(said))" $?
gradcheck "$tmp/vectors.yaml" sharer
grep -q "^  training  kernel " "$tmp/out" && grep -q "^  training  bias " "$tmp/out"
check "gradcheck of a layer with shares: checks the shared weights ($(said))" $?

# ---- Keras' orthogonal initializer: a kernel starts orthogonal; a bias has one axis and is refused
printf 'input: {shape: [4]}\nlayers: [{type: dense, units: 3, kernel_initializer: orthogonal, name: kernel_only}]\n' \
	>"$tmp/orthogonal.yaml"
printf 'input: {shape: [4]}\nlayers: [{type: dense, units: 3, bias_initializer: orthogonal, name: with_bias}]\n' \
	>"$tmp/orthogonal_bias.yaml"
gradcheck "$tmp/orthogonal.yaml" kernel_only
status=$?
[ $status -eq 0 ] && grep -q "^passed: " "$tmp/out"
check "gradcheck of a dense layer with an orthogonal kernel passes (status $status: $(said))" $?
gradcheck "$tmp/orthogonal_bias.yaml" with_bias
status=$?
[ $status -ne 0 ] && grep -q "weight with_bias/bias: 'orthogonal' needs a weight of two axes or more" "$tmp/out"
check "an orthogonal bias is refused with the weight's name (status $status: $(said))" $?

# ---- a layer name the model lacks ---------------------------------------------------------------------
gradcheck "$tmp/vectors.yaml" no_such_layer
status=$?
[ $status -eq 2 ] && grep -q "has no layer 'no_such_layer'; its layers: d_linear, d_relu" "$tmp/out"
check "gradcheck on a missing layer is bad usage listing the layers (status $status: $(said))" $?
"$strata" gradcheck "$tmp/vectors.yaml" >"$tmp/out" 2>&1
status=$?
[ $status -eq 2 ] && grep -q "needs --layer" "$tmp/out"
check "gradcheck without --layer is bad usage (status $status: $(said))" $?
gradcheck "$tmp/vectors.yaml" d_tanh --tolerance 0
status=$?
[ $status -eq 2 ] && grep -q "tolerance" "$tmp/out"
check "gradcheck --tolerance 0 is bad usage (status $status: $(said))" $?

# ---- an out-of-tree plugin: swish, with a wrong and a right derivative ------------------------------
cat >"$tmp/swish.c" <<'C'
/* Layer type `swish`: y = x * sigmoid(x). Built with -DWRONG_DERIVATIVE its backward pass forgets
 * the x * s * (1 - s) term of dy/dx = s + x * s * (1 - s); with -DACCUMULATE it adds the right
 * derivative to the gradient buffer instead of overwriting it. */
#include <stdint.h>

#include <strata/plugin.h>

#if defined(WRONG_DERIVATIVE)
#define CL_OPTIONS "-DWRONG"
#elif defined(ACCUMULATE)
#define CL_OPTIONS "-DACCUMULATE"
#else
#define CL_OPTIONS ""
#endif

static const char source[] =
	"__kernel void swish_fw(__global const float *x, __global float *y, uint n)\n"
	"{\n"
	"\tsize_t i = get_global_id(0);\n"
	"\tif (i < n)\n"
	"\t\ty[i] = x[i] / (1.0f + exp(-x[i]));\n"
	"}\n"
	"__kernel void swish_bw(__global const float *x, __global const float *dy, __global float *dx, uint n)\n"
	"{\n"
	"\tsize_t i = get_global_id(0);\n"
	"\tif (i >= n)\n"
	"\t\treturn;\n"
	"\tfloat s = 1.0f / (1.0f + exp(-x[i]));\n"
	"#if defined(WRONG)\n"
	"\tdx[i] = dy[i] * s;\n"
	"#elif defined(ACCUMULATE)\n"
	"\tdx[i] += dy[i] * (s + x[i] * s * (1.0f - s));\n"
	"#else\n"
	"\tdx[i] = dy[i] * (s + x[i] * s * (1.0f - s));\n"
	"#endif\n"
	"}\n";

static size_t elements(const strata_shape *s)
{
	size_t n = 1;
	for (uint32_t i = 0; i < s->rank; i++)
		n *= (size_t)s->dims[i];
	return n;
}

static strata_status build(strata_layer *layer, const strata_host *host, const strata_shape *in, strata_shape *out)
{
	(void)layer;
	(void)host;
	*out = *in;
	return STRATA_OK;
}

static strata_status run(strata_layer *layer, const strata_host *host, const char *name, uint32_t batch,
                         strata_tensor *a, strata_tensor *b, strata_tensor *c)
{
	size_t n = (size_t)batch * elements(host->input_shape(layer));
	if (n == 0)
		return STRATA_OK;
	strata_kernel *k = host->kernel(layer, "test_swish", name, NULL);
	if (!k)
		return host->last_status(layer);
	strata_arg args[4];
	uint32_t count = 0;
	args[count++] = strata_arg_tensor(a);
	args[count++] = strata_arg_tensor(b);
	if (c)
		args[count++] = strata_arg_tensor(c);
	args[count++] = strata_arg_uint((uint32_t)n);
	return host->launch(layer, k, 1, &n, NULL, count, args);
}

static strata_status forward(strata_layer *layer, const strata_host *host, const strata_forward_args *args)
{
	return run(layer, host, "swish_fw", args->batch, args->input, args->output, NULL);
}

static strata_status backward(strata_layer *layer, const strata_host *host, const strata_backward_args *args)
{
	if (!args->grad_input)
		return STRATA_OK;
	return run(layer, host, "swish_bw", args->batch, args->input, args->grad_output, args->grad_input);
}

static const strata_layer_ops ops = {
	.size = sizeof(strata_layer_ops),
	.type = "swish",
	.class_name = "Swish",
	.name_prefix = "swish",
	.doc = "y = x * sigmoid(x)",
	.build = build,
	.forward = forward,
	.backward = backward,
};

static strata_status init(const strata_host *host, strata_registry *reg)
{
	strata_status st = host->register_program(reg, "test_swish", source, CL_OPTIONS);
	return st ? st : host->register_layer(reg, &ops);
}

static const strata_plugin plugin = {
	.abi_version = STRATA_PLUGIN_ABI_VERSION,
	.size = sizeof(strata_plugin),
	.name = "test_swish",
	.version = "1",
	.description = "swish, for strata gradcheck's test",
	.init = init,
};

STRATA_PLUGIN_DEFINE(plugin)
C
mkdir -p "$tmp/wrong" "$tmp/right" "$tmp/accumulate"
cc=${CC:-cc}
$cc -std=c11 -shared -fPIC -fvisibility=hidden -O2 -Wall -Wextra -Werror -I"$src/../include" -DWRONG_DERIVATIVE \
	-o "$tmp/wrong/swish.so" "$tmp/swish.c" >"$tmp/out" 2>&1 &&
	$cc -std=c11 -shared -fPIC -fvisibility=hidden -O2 -Wall -Wextra -Werror -I"$src/../include" \
		-o "$tmp/right/swish.so" "$tmp/swish.c" >>"$tmp/out" 2>&1 &&
	$cc -std=c11 -shared -fPIC -fvisibility=hidden -O2 -Wall -Wextra -Werror -I"$src/../include" -DACCUMULATE \
		-o "$tmp/accumulate/swish.so" "$tmp/swish.c" >>"$tmp/out" 2>&1
check "the swish plugin builds against include/ ($(said))" $?

cat >"$tmp/swish.yaml" <<'YAML'
name: swish_model
input: {shape: [12]}
layers:
  - {type: dense, units: 6, name: before}
  - {type: swish, name: sw}
  - {type: dense, units: 2, activation: softmax}
YAML
gradcheck "$tmp/swish.yaml" sw --plugin-path "$tmp/wrong" --seed 5
status=$?
[ $status -eq 1 ] && grep -q "^FAILED: " "$tmp/out" &&
	grep -q "^  training  input 0 (before) .* FAILED$" "$tmp/out" &&
	grep -q "strata: input gradient of sw, training mode: input 0 (before)\[[0-9]*\]: backward .*, finite differences" \
		"$tmp/out"
check "a wrong swish derivative fails naming the input gradient (status $status: $(said))" $?
gradcheck "$tmp/swish.yaml" sw --plugin-path "$tmp/right" --seed 5
status=$?
[ $status -eq 0 ] && grep -q "^passed: 2 gradients within 0.01" "$tmp/out"
check "the right swish derivative passes (status $status: $(said))" $?
# A tolerance the wrong derivative meets (its error is below 1): --tolerance is applied.
gradcheck "$tmp/swish.yaml" sw --plugin-path "$tmp/wrong" --seed 5 --tolerance 0.999
status=$?
[ $status -eq 0 ]
check "--tolerance 0.999 lets the wrong derivative pass (status $status: $(said))" $?

# A backward pass that adds to the gradient buffer: the buffer held NaN before the first pass.
gradcheck "$tmp/swish.yaml" sw --plugin-path "$tmp/accumulate" --seed 5
status=$?
[ $status -eq 1 ] && grep -q "input 0 (before)\[0\] = nan: never written or not finite" "$tmp/out"
check "a swish that adds to its gradient fails (status $status: $(said))" $?

echo "$passes passed, $fails failed"
[ "$fails" -eq 0 ]
