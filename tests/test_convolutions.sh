#!/bin/sh
# The convolution layers of issue 14 through the CLI: `strata gradcheck` of every path of
# depthwise_conv2d, separable_conv2d and conv2d_transpose, each layer alone, in training and
# inference mode (both paddings, strides 1 and 2, depth multipliers 1 to 3, dilations, with and
# without bias, activations whose derivative reads the output and ones that keep their input,
# output_padding, a transposed kernel smaller than its stride); `strata summary` counting Keras'
# parameters with Keras' output shapes; `strata layers` listing the types and what they leave
# out; bad parameters refused with exit status 2 and the value's FILE:LINE:COLUMN.
set -u
. "$(dirname "$0")/lib.sh"

# ---- gradients of every path -------------------------------------------------------------------
cat >"$tmp/convs.yaml" <<'YAML'
name: convs
inputs: [{name: x, shape: [7, 6, 3]}, {name: wide, shape: [5, 5, 16]}]
layers:
  - {type: depthwise_conv2d, kernel_size: 3, name: dw, inputs: x}
  - {type: depthwise_conv2d, kernel_size: [3, 2], strides: 2, padding: same, depth_multiplier: 2, activation: tanh, name: dw_same, inputs: x}
  - {type: depthwise_conv2d, kernel_size: 2, dilation_rate: [2, 3], padding: same, use_bias: false, activation: gelu, name: dw_dilated, inputs: x}
  - {type: depthwise_conv2d, kernel_size: 3, strides: 2, dilation_rate: 2, depth_multiplier: 3, activation: relu, name: dw_dm3, inputs: x}
  - {type: depthwise_conv2d, kernel_size: 3, padding: same, activation: softmax, name: dw_wide, inputs: wide}
  - {type: separable_conv2d, filters: 5, kernel_size: 3, name: sep, inputs: x}
  - {type: separable_conv2d, filters: 4, kernel_size: 3, strides: 2, padding: same, depth_multiplier: 2, use_bias: false, activation: swish, name: sep_same, inputs: x}
  - {type: separable_conv2d, filters: 8, kernel_size: 2, dilation_rate: 2, activation: sigmoid, name: sep_wide, inputs: wide}
  - {type: conv2d_transpose, filters: 4, kernel_size: 3, strides: 2, name: ct, inputs: x}
  - {type: conv2d_transpose, filters: 3, kernel_size: [2, 3], strides: [2, 1], padding: same, activation: tanh, name: ct_same, inputs: x}
  - {type: conv2d_transpose, filters: 2, kernel_size: 4, strides: 2, padding: same, output_padding: 1, use_bias: false, name: ct_pad, inputs: x}
  - {type: conv2d_transpose, filters: 3, kernel_size: 3, strides: 2, dilation_rate: 2, activation: gelu, name: ct_dilated, inputs: x}
  - {type: conv2d_transpose, filters: 2, kernel_size: 1, strides: 3, name: ct_sparse, inputs: x}
  - {type: conv2d_transpose, filters: 16, kernel_size: 3, padding: same, activation: relu, name: ct_wide, inputs: wide}
outputs: [dw, dw_same, dw_dilated, dw_dm3, dw_wide, sep, sep_same, sep_wide, ct, ct_same, ct_pad, ct_dilated,
          ct_sparse, ct_wide]
YAML
for layer in dw dw_same dw_dilated dw_dm3 dw_wide sep sep_same sep_wide ct ct_same ct_pad ct_dilated ct_sparse \
	ct_wide; do
	gradcheck "$tmp/convs.yaml" $layer --seed 3
	status=$?
	[ $status -eq 0 ] && grep -q "^passed: " "$tmp/out" && grep -q "^  training  input 0" "$tmp/out" &&
		grep -q "^  inference input 0" "$tmp/out"
	check "gradcheck $layer passes in both modes (status $status: $(said))" $?
done
# every weight is checked where the layer has it
gradcheck "$tmp/convs.yaml" sep --seed 3
grep -q "^  training  depthwise_kernel " "$tmp/out" && grep -q "^  training  pointwise_kernel " "$tmp/out" &&
	grep -q "^  inference bias " "$tmp/out" && grep -q "^passed: 8 gradients" "$tmp/out"
check "gradcheck sep checks depthwise_kernel, pointwise_kernel and bias ($(said))" $?
gradcheck "$tmp/convs.yaml" dw_dilated --seed 3
grep -q "^  training  depthwise_kernel " "$tmp/out" && grep -q "^passed: 4 gradients" "$tmp/out" &&
	! grep -q " bias " "$tmp/out"
check "gradcheck dw_dilated has no bias ($(said))" $?
gradcheck "$tmp/convs.yaml" ct --seed 3
grep -q "^  training  kernel " "$tmp/out" && grep -q "^  inference bias " "$tmp/out"
check "gradcheck ct checks kernel and bias ($(said))" $?

# ---- Keras' counts and shapes ------------------------------------------------------------------
cat >"$tmp/counts.yaml" <<'YAML'
name: counts
inputs: [{name: a, shape: [8, 8, 3]}, {name: b, shape: [5, 5, 3]}]
layers:
  - {type: depthwise_conv2d, kernel_size: 3, depth_multiplier: 2, name: dw, inputs: a}
  - {type: separable_conv2d, filters: 16, kernel_size: 3, name: sep, inputs: a}
  - {type: conv2d_transpose, filters: 4, kernel_size: 3, strides: 2, name: ct, inputs: b}
  - {type: conv2d_transpose, filters: 4, kernel_size: 3, strides: 2, padding: same, name: ct_same, inputs: b}
outputs: [dw, sep, ct, ct_same]
YAML
"$strata" summary "$tmp/counts.yaml" >"$tmp/out" 2>&1
status=$?
# Keras: DepthwiseConv2D(3, depth_multiplier=2) on (8, 8, 3): 3*3*3*2 + 6 = 60, (6, 6, 6);
# SeparableConv2D(16, 3): 27 + 48 + 16 = 91, (6, 6, 16); Conv2DTranspose(4, 3, strides=2) on
# (5, 5, 3): 3*3*4*3 + 4 = 112, (11, 11, 4) valid and (10, 10, 4) same
[ $status -eq 0 ] && grep -q "^ dw (DepthwiseConv2D) *(None, 6, 6, 6) *60 " "$tmp/out" &&
	grep -q "^ sep (SeparableConv2D) *(None, 6, 6, 16) *91 " "$tmp/out" &&
	grep -q "^ ct (Conv2DTranspose) *(None, 11, 11, 4) *112 " "$tmp/out" &&
	grep -q "^ ct_same (Conv2DTranspose) *(None, 10, 10, 4) *112 " "$tmp/out" &&
	grep -q "^Total params: 375" "$tmp/out" && grep -q "^Trainable params: 375" "$tmp/out"
check "summary counts as Keras does (status $status: $(said))" $?

"$strata" layers >"$tmp/out" 2>&1
grep -q "^depthwise_conv2d (DepthwiseConv2D)" "$tmp/out" && grep -q "^separable_conv2d (SeparableConv2D)" "$tmp/out" &&
	grep -q "^conv2d_transpose (Conv2DTranspose)" "$tmp/out" &&
	grep -q "^    data_format  *not supported  *only channels_last" "$tmp/out" &&
	grep -q "^    depth_multiplier  *int in \[1, 2147483647\]  *default 1" "$tmp/out" &&
	grep -q "^    output_padding  *2 ints in \[0, 2147483647\]  *default null" "$tmp/out" &&
	grep -q "^    pointwise_constraint  *constraint  *default null" "$tmp/out"
check "strata layers lists the convolution layers and what they leave out ($(said))" $?

# ---- refusals: exit status 2, the value's FILE:LINE:COLUMN ----------------------------------------
# refused TEXT LAYER-LINE WANT...: the model with that layer is refused by summary and gradcheck.
refused() {
	what=$1
	line=$2
	shift 2
	printf 'name: bad\ninput: {shape: [4, 4, 2]}\nlayers:\n  - %s\n' "$line" >"$tmp/bad.yaml"
	for cmd in summary gradcheck; do
		if [ $cmd = gradcheck ]; then
			"$strata" gradcheck "$tmp/bad.yaml" --layer x >"$tmp/out" 2>&1
		else
			"$strata" summary "$tmp/bad.yaml" >"$tmp/out" 2>&1
		fi
		status=$?
		ok=0
		[ $status -eq 2 ] || ok=1
		for want in "$@"; do
			grep -qF -- "$want" "$tmp/out" || ok=1
		done
		check "$cmd refuses $what (status $status: $(said))" $ok
	done
}
refused "a valid window larger than the input" "{type: depthwise_conv2d, kernel_size: 5}" \
	"bad.yaml:4:43: depthwise_conv2d_1: the 5x5 window (kernel 5x5, dilation 1x1) is larger than the 4x4 input"
refused "a dilated window larger than the input" "{type: separable_conv2d, filters: 2, kernel_size: 2, dilation_rate: 4}" \
	"bad.yaml:4:55: separable_conv2d_1: the 5x5 window (kernel 2x2, dilation 4x4)"
refused "depth_multiplier 0" "{type: depthwise_conv2d, kernel_size: 3, depth_multiplier: 0}" \
	"bad.yaml:4:64: 'depth_multiplier' must be in [1, 2147483647], got 0"
refused "channels_first" "{type: separable_conv2d, filters: 2, kernel_size: 3, data_format: channels_first}" \
	"bad.yaml:4:71: 'data_format' is a Keras parameter Strata leaves out"
refused "an output_padding not below the stride" \
	"{type: conv2d_transpose, filters: 2, kernel_size: 3, strides: 2, output_padding: [1, 2]}" \
	"bad.yaml:4:86: conv2d_transpose_1: output_padding 2 along the width is not below its stride 2"
refused "an even kernel, 'same' and output_padding 0" \
	"{type: conv2d_transpose, filters: 2, kernel_size: 2, strides: 2, padding: same, output_padding: 0}" \
	"bad.yaml:4:101: conv2d_transpose_1: output_padding [0, 0] gives an output that a convolution with padding 'same' does not map back"
refused "an unknown constraint" "{type: conv2d_transpose, filters: 2, kernel_size: 3, kernel_constraint: unit_norm}" \
	"bad.yaml:4:77: 'kernel_constraint': unknown constraint"

printf 'name: bad\ninput: {shape: [16]}\nlayers:\n  - {type: depthwise_conv2d, kernel_size: 3}\n' >"$tmp/bad.yaml"
"$strata" summary "$tmp/bad.yaml" >"$tmp/out" 2>&1
status=$?
[ $status -eq 2 ] && grep -qF "bad.yaml:4:5: depthwise_conv2d_1: DepthwiseConv2D needs a (height, width, channels) input, got (16)" "$tmp/out"
check "summary refuses a rank-1 input to depthwise_conv2d (status $status: $(said))" $?

echo "$passes passed, $fails failed"
[ "$fails" -eq 0 ]
