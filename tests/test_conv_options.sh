#!/bin/sh
# The convolutions' options through the CLI (issue 14, point 3): `strata gradcheck` of every path
# of conv2d's dilation_rate and groups and of conv1d (valid, same, causal, strides, dilation,
# groups, the 1x1 and kernel-1 paths), each layer alone, in training and inference mode; `strata
# summary` counting Keras' parameters and shapes; `strata layers` listing the new parameters; bad
# parameters refused with exit status 2 and the value's FILE:LINE:COLUMN.
set -u
. "$(dirname "$0")/lib.sh"

# ---- gradients of every path -------------------------------------------------------------------
cat >"$tmp/images.yaml" <<'YAML'
name: images
inputs: [{name: x, shape: [9, 8, 4]}]
layers:
  - {type: conv2d, filters: 3, kernel_size: 3, dilation_rate: 2, name: dil_valid, inputs: x}
  - {type: conv2d, filters: 3, kernel_size: 3, dilation_rate: 3, padding: same, activation: tanh, name: dil_same, inputs: x}
  - {type: conv2d, filters: 2, kernel_size: [2, 3], dilation_rate: [3, 2], padding: same, name: dil_uneven, inputs: x}
  - {type: conv2d, filters: 6, kernel_size: 3, groups: 2, name: grp2, inputs: x}
  - {type: conv2d, filters: 4, kernel_size: 3, groups: 4, use_bias: false, padding: same, activation: relu, name: grp4, inputs: x}
  - {type: conv2d, filters: 4, kernel_size: 3, strides: 2, groups: 2, padding: same, name: grp_strided, inputs: x}
  - {type: conv2d, filters: 6, kernel_size: 1, groups: 2, name: grp_1x1, inputs: x}
  - {type: conv2d, filters: 4, kernel_size: 3, groups: 2, dilation_rate: 2, padding: same, activation: swish, name: grp_dil, inputs: x}
outputs: [dil_valid, dil_same, dil_uneven, grp2, grp4, grp_strided, grp_1x1, grp_dil]
YAML
for layer in dil_valid dil_same dil_uneven grp2 grp4 grp_strided grp_1x1 grp_dil; do
	gradcheck "$tmp/images.yaml" $layer --seed 3 --inputs 3
	status=$?
	[ $status -eq 0 ] && grep -q "^passed: " "$tmp/out" && grep -q "^  training  input 0" "$tmp/out" &&
		grep -q "^  inference input 0" "$tmp/out" && grep -q "^  training  kernel" "$tmp/out"
	check "gradcheck $layer (conv2d) passes in both modes (status $status: $(said))" $?
done

cat >"$tmp/sequences.yaml" <<'YAML'
name: sequences
inputs: [{name: s, shape: [11, 4]}]
layers:
  - {type: conv1d, filters: 3, kernel_size: 3, name: c_valid, inputs: s}
  - {type: conv1d, filters: 3, kernel_size: 4, padding: same, activation: tanh, name: c_same, inputs: s}
  - {type: conv1d, filters: 3, kernel_size: 3, padding: causal, name: c_causal, inputs: s}
  - {type: conv1d, filters: 3, kernel_size: 3, strides: 2, name: c_strided, inputs: s}
  - {type: conv1d, filters: 2, kernel_size: 3, strides: 2, padding: causal, name: c_causal_strided, inputs: s}
  - {type: conv1d, filters: 3, kernel_size: 3, dilation_rate: 2, padding: same, name: c_dilated, inputs: s}
  - {type: conv1d, filters: 4, kernel_size: 3, groups: 2, use_bias: false, name: c_groups, inputs: s}
  - {type: conv1d, filters: 6, kernel_size: 3, dilation_rate: 2, groups: 2, padding: causal, activation: relu, name: c_all, inputs: s}
  - {type: conv1d, filters: 3, kernel_size: 1, name: c_k1, inputs: s}
outputs: [c_valid, c_same, c_causal, c_strided, c_causal_strided, c_dilated, c_groups, c_all, c_k1]
YAML
for layer in c_valid c_same c_causal c_strided c_causal_strided c_dilated c_groups c_all c_k1; do
	gradcheck "$tmp/sequences.yaml" $layer --seed 5 --inputs 3
	status=$?
	[ $status -eq 0 ] && grep -q "^passed: " "$tmp/out" && grep -q "^  training  input 0" "$tmp/out" &&
		grep -q "^  inference input 0" "$tmp/out" && grep -q "^  training  kernel" "$tmp/out"
	check "gradcheck $layer (conv1d) passes in both modes (status $status: $(said))" $?
done

# ---- Keras' counts -------------------------------------------------------------------------------
cat >"$tmp/counts.yaml" <<'YAML'
name: counts
inputs: [{name: x, shape: [6, 6, 4]}, {name: s, shape: [10, 4]}]
layers:
  - {type: conv2d, filters: 8, kernel_size: 3, groups: 2, name: grouped, inputs: x}
  - {type: conv2d, filters: 8, kernel_size: 3, dilation_rate: 2, padding: same, name: dilated, inputs: x}
  - {type: conv1d, filters: 5, kernel_size: 3, name: seq, inputs: s}
  - {type: conv1d, filters: 6, kernel_size: 3, padding: causal, dilation_rate: 2, groups: 2, name: causal, inputs: s}
outputs: [grouped, dilated, seq, causal]
YAML
"$strata" summary "$tmp/counts.yaml" >"$tmp/out" 2>&1
status=$?
# Conv2D(8, 3, groups=2) on (6, 6, 4): 3*3*2*8 + 8 = 152; dilated: 3*3*4*8 + 8 = 296;
# Conv1D(5, 3) on (10, 4): 3*4*5 + 5 = 65; causal, groups 2: 3*2*6 + 6 = 42
[ $status -eq 0 ] && grep -q "^ grouped (Conv2D) *(None, 4, 4, 8) *152 " "$tmp/out" &&
	grep -q "^ dilated (Conv2D) *(None, 6, 6, 8) *296 " "$tmp/out" &&
	grep -q "^ seq (Conv1D) *(None, 8, 5) *65 " "$tmp/out" &&
	grep -q "^ causal (Conv1D) *(None, 10, 6) *42 " "$tmp/out" &&
	grep -q "^Total params: 555" "$tmp/out" && grep -q "^Trainable params: 555" "$tmp/out"
check "summary counts as Keras does (status $status: $(said))" $?

"$strata" layers >"$tmp/out" 2>&1
grep -q "^conv1d (Conv1D)" "$tmp/out" && grep -q "^    padding  *valid|same|causal  *default valid" "$tmp/out" &&
	grep -q "^    dilation_rate  *2 ints in" "$tmp/out" && grep -q "^    groups  *int in \[1, " "$tmp/out" &&
	grep -q "^    data_format  *not supported  *only channels_last" "$tmp/out"
check "strata layers lists conv1d and the new parameters ($(said))" $?

# ---- refusals: exit status 2, the value's FILE:LINE:COLUMN ----------------------------------------
# refused WHAT INPUT-SHAPE LAYER-LINE WANT...: the model with that layer is refused by summary and
# gradcheck.
refused() {
	what=$1
	shape=$2
	line=$3
	shift 3
	printf 'name: bad\ninput: {shape: %s}\nlayers:\n  - %s\n' "$shape" "$line" >"$tmp/bad.yaml"
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
refused "filters not divisible by groups" "[6, 6, 6]" "{type: conv2d, filters: 8, kernel_size: 3, groups: 3}" \
	"bad.yaml:4:56: conv2d_1: filters (8) must be divisible by groups (3)"
refused "channels not divisible by groups" "[6, 6, 6]" "{type: conv2d, filters: 8, kernel_size: 3, groups: 4}" \
	"bad.yaml:4:56: conv2d_1: the input's 6 channels (input (6, 6, 6)) must be divisible by groups (4)"
refused "conv1d channels not divisible by groups" "[10, 3]" "{type: conv1d, filters: 4, kernel_size: 3, groups: 2}" \
	"bad.yaml:4:56: conv1d_1: the input's 3 channels"
refused "strides with dilation" "[9, 9, 2]" "{type: conv2d, filters: 2, kernel_size: 3, strides: 2, dilation_rate: 2}" \
	"bad.yaml:4:75: conv2d_1: strides > 1 together with dilation_rate > 1 is not supported (as in Keras)"
refused "conv1d strides with dilation" "[12, 2]" "{type: conv1d, filters: 2, kernel_size: 3, strides: 2, dilation_rate: 2}" \
	"bad.yaml:4:75: conv1d_1: strides > 1 together with dilation_rate > 1"
refused "a dilated kernel larger than the input" "[6, 6, 2]" "{type: conv2d, filters: 2, kernel_size: 3, dilation_rate: 3}" \
	"bad.yaml:4:45: conv2d_1: kernel 3x3 dilated to 7x7 is larger than the 6x6 input with padding 'valid'"
refused "a conv1d kernel longer than the input" "[4, 2]" "{type: conv1d, filters: 2, kernel_size: 5}" \
	"bad.yaml:4:45: conv1d_1: kernel 5 is longer than the input's 4 steps with padding 'valid'"
refused "conv1d on an image" "[4, 4, 2]" "{type: conv1d, filters: 2, kernel_size: 3}" \
	"bad.yaml:4:5: conv1d_1: Conv1D needs a (steps, channels) input, got (4, 4, 2)"
refused "data_format channels_first" "[8, 2]" "{type: conv1d, filters: 2, kernel_size: 3, data_format: channels_first}" \
	"bad.yaml:4:61: 'data_format' is a Keras parameter Strata leaves out"
refused "groups 0" "[6, 6, 2]" "{type: conv2d, filters: 2, kernel_size: 3, groups: 0}" "bad.yaml:4:56: 'groups' must be in [1, "

echo "$passes passed, $fails failed"
[ "$fails" -eq 0 ]
