#!/bin/sh
# The pooling and shape layers of issue 14 through the CLI: `strata gradcheck` of every type and
# every option that changes a kernel's path (GlobalAveragePooling2D and GlobalMaxPooling2D with
# and without keepdims, ZeroPadding2D and Cropping2D on every side, UpSampling2D nearest and
# bilinear, Reshape, Permute, RepeatVector), each in training and inference mode, passing; `strata
# layers` listing each type with its parameters; and bad models refused as bad usage (exit 2) with
# the FILE:LINE:COLUMN of the value at fault.
set -u
. "$(dirname "$0")/lib.sh"

# ---- every type and path, each layer alone against finite differences --------------------------
# Odd sizes; 3 channels give vectors of 1 float, the 16-channel branch vectors of 16.
cat >"$tmp/images.yaml" <<'YAML'
name: shape_layers
inputs: [{name: x, shape: [5, 7, 3]}, {name: wide, shape: [3, 5, 16]}, {name: v, shape: [6]}]
layers:
  - {type: global_average_pooling2d, name: gap, inputs: x}
  - {type: global_average_pooling2d, keepdims: true, name: gap_keep, inputs: wide}
  - {type: global_max_pooling2d, name: gmp, inputs: x}
  - {type: global_max_pooling2d, keepdims: true, name: gmp_keep, inputs: wide}
  - {type: zero_padding2d, name: pad, inputs: x}
  - {type: zero_padding2d, padding: [1, 2, 0, 3], name: pad_sides, inputs: x}
  - {type: cropping2d, cropping: [2, 0, 1, 3], name: crop, inputs: x}
  - {type: cropping2d, cropping: 1, name: crop_all, inputs: wide}
  - {type: up_sampling2d, name: up_nearest, inputs: x}
  - {type: up_sampling2d, size: [3, 1], name: up_nearest_31, inputs: wide}
  - {type: up_sampling2d, interpolation: bilinear, name: up_bilinear, inputs: x}
  - {type: up_sampling2d, size: [1, 3], interpolation: bilinear, name: up_bilinear_13, inputs: wide}
  - {type: reshape, target_shape: [7, -1, 5], name: reshape, inputs: x}
  - {type: permute, dims: [2, 1, 3], name: permute_hw, inputs: x}
  - {type: permute, dims: [3, 1, 2], name: permute_chw, inputs: x}
  - {type: repeat_vector, n: 4, name: repeat, inputs: v}
outputs: [gap, gap_keep, gmp, gmp_keep, pad, pad_sides, crop, crop_all, up_nearest, up_nearest_31, up_bilinear,
          up_bilinear_13, reshape, permute_hw, permute_chw, repeat]
YAML
for layer in gap gap_keep gmp gmp_keep pad pad_sides crop crop_all up_nearest up_nearest_31 up_bilinear \
	up_bilinear_13 reshape permute_hw permute_chw repeat; do
	gradcheck "$tmp/images.yaml" $layer --seed 3 --inputs 3
	status=$?
	[ $status -eq 0 ] && grep -q "^passed: " "$tmp/out" && grep -q "^  training  input 0 " "$tmp/out" &&
		grep -q "^  inference input 0 " "$tmp/out"
	check "gradcheck $layer passes in both modes (status $status: $(said))" $?
done

# ---- strata layers ------------------------------------------------------------------------------
"$strata" layers >"$tmp/out" 2>&1
status=$?
ok=0
for t in "global_average_pooling2d (GlobalAveragePooling2D)" "global_max_pooling2d (GlobalMaxPooling2D)" \
	"zero_padding2d (ZeroPadding2D)" "cropping2d (Cropping2D)" "up_sampling2d (UpSampling2D)" "reshape (Reshape)" \
	"permute (Permute)" "repeat_vector (RepeatVector)"; do
	grep -q "^$t " "$tmp/out" || ok=1
done
grep -q "^    keepdims  *bool  *default false" "$tmp/out" &&
	grep -q "^    interpolation  *nearest|bilinear  *default nearest" "$tmp/out" &&
	grep -q "^    data_format  *not supported  *only channels_last" "$tmp/out" &&
	grep -q "^    target_shape .* required" "$tmp/out" || ok=1
[ $status -eq 0 ] && [ $ok -eq 0 ]
check "strata layers lists the eight types and their parameters (status $status: $(said))" $?

# ---- refusals -------------------------------------------------------------------------------------
# refused NAME INPUT LAYER COLUMN TEXT: a model with LAYER on line 4 is bad usage (status 2) whose
# message starts with NAME.yaml:4:COLUMN and says TEXT.
refused() {
	printf 'name: %s\ninput: {shape: %s}\nlayers:\n  - %s\n' "$1" "$2" "$3" >"$tmp/$1.yaml"
	"$strata" summary "$tmp/$1.yaml" >"$tmp/out" 2>&1
	status=$?
	[ $status -eq 2 ] && grep -q "$1.yaml:4:$4: .*$5" "$tmp/out"
	check "$1 is refused at 4:$4 saying '$5' (status $status: $(said))" $?
}
refused reshape_sizes "[3, 4, 5]" "{type: reshape, target_shape: [4, 5, 4]}" 35 \
	"target_shape (4, 5, 4) holds 80 values, the (3, 4, 5) input 60"
refused reshape_two_unknown "[3, 4, 5]" "{type: reshape, target_shape: [-1, -1, 5]}" 35 "has more than one -1"
refused reshape_not_multiple "[3, 4, 5]" "{type: reshape, target_shape: [-1, 7, 1]}" 35 "not a multiple of 7"
refused permute_repeat "[3, 4, 5]" "{type: permute, dims: [1, 1, 2]}" 27 \
	"dims (1, 1, 2) is not a permutation of 1 to 3: it repeats axis 1"
refused permute_range "[3, 4, 5]" "{type: permute, dims: [3, 2, 4]}" 27 "there is no axis 4"
refused permute_rank "[12]" "{type: permute, dims: [1, 2, 3]}" 27 "names 3 axes, the (12) input has 1"
refused crop_rows "[5, 4, 3]" "{type: cropping2d, cropping: [3, 2, 0, 0]}" 34 \
	"cropping 3 + 2 rows and 0 + 0 columns leaves nothing of the (5, 4, 3) input"
refused crop_columns "[5, 4, 3]" "{type: cropping2d, cropping: [0, 0, 4, 0]}" 34 "leaves nothing"
refused repeat_rank "[5, 4, 3]" "{type: repeat_vector, n: 2}" 5 "RepeatVector needs a (features) input"
refused pool_rank "[12]" "{type: global_max_pooling2d}" 5 \
	"GlobalMaxPooling2D needs a (height, width, channels) input"
refused channels_first "[5, 4, 3]" "{type: up_sampling2d, data_format: channels_first}" 40 \
	"'data_format' is a Keras parameter Strata leaves out"
refused bicubic "[5, 4, 3]" "{type: up_sampling2d, interpolation: bicubic}" 42 "must be one of nearest, bilinear"

echo "$passes passed, $fails failed"
[ "$fails" -eq 0 ]
