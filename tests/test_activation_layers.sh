#!/bin/sh
# The activation layers with parameters (plugins/activations) through the CLI: `strata gradcheck`
# of every type and option alone, in training and inference modes (PReLU's slopes too, over
# batches long enough for several blocks of its slope gradient's reduction); `strata summary`
# counting PReLU's slopes as Keras does; `strata layers` listing every parameter, what is left
# out included; bad parameters refused with exit status 2 and the value's FILE:LINE:COLUMN.
set -u
. "$(dirname "$0")/lib.sh"

# ---- every type and option against finite differences, both modes ------------------------------------
cat >"$tmp/acts.yaml" <<'YAML'
name: acts
inputs: [{name: x, shape: [5, 4, 3]}, {name: v, shape: [9]}]
layers:
  - {type: relu, name: relu_plain, inputs: x}
  - {type: relu, max_value: 0.5, name: relu_max, inputs: x}
  - {type: relu, negative_slope: 0.2, name: relu_slope, inputs: x}
  - {type: relu, threshold: 0.3, name: relu_threshold, inputs: x}
  - {type: relu, max_value: 0.6, negative_slope: 0.1, threshold: 0.2, name: relu_all, inputs: x}
  - {type: leaky_relu, name: leaky_default, inputs: x}
  - {type: leaky_relu, negative_slope: 0.05, name: leaky_slope, inputs: v}
  - {type: elu, name: elu_default, inputs: x}
  - {type: elu, alpha: 0.4, name: elu_alpha, inputs: v}
  - {type: prelu, alpha_initializer: he_uniform, name: prelu_all, inputs: x}
  - {type: prelu, shared_axes: [1, 2], alpha_initializer: glorot_uniform, name: prelu_channels, inputs: x}
  - {type: prelu, shared_axes: 3, alpha_initializer: glorot_normal, name: prelu_pixels, inputs: x}
  - {type: prelu, shared_axes: [1, 3], alpha_initializer: ones, alpha_regularizer: {l2: 0.1}, alpha_constraint: non_neg,
     name: prelu_columns, inputs: x}
  - {type: prelu, alpha_initializer: he_normal, name: prelu_vector, inputs: v}
  - {type: softmax, name: softmax_images, inputs: x}
  - {type: softmax, name: softmax_vector, inputs: v}
outputs: [relu_plain, relu_max, relu_slope, relu_threshold, relu_all, leaky_default, leaky_slope, elu_default,
          elu_alpha, prelu_all, prelu_channels, prelu_pixels, prelu_columns, prelu_vector, softmax_images,
          softmax_vector]
YAML
for layer in relu_plain relu_max relu_slope relu_threshold relu_all leaky_default leaky_slope elu_default elu_alpha \
	prelu_all prelu_channels prelu_pixels prelu_columns prelu_vector softmax_images softmax_vector; do
	gradcheck "$tmp/acts.yaml" $layer --seed 3
	status=$?
	[ $status -eq 0 ] && grep -q "^passed: " "$tmp/out" && grep -q "^  training  input 0 (x\|^  training  input 0 (v" \
		"$tmp/out" && grep -q "^  inference input 0 " "$tmp/out"
	check "gradcheck $layer passes in both modes (status $status: $(said))" $?
done
# The slopes' gradient is checked too, and over 9 samples (180 terms per slope of prelu_channels,
# 9 of prelu_all) the reduction takes several blocks where it can.
for layer in prelu_all prelu_channels prelu_pixels prelu_columns prelu_vector; do
	gradcheck "$tmp/acts.yaml" $layer --seed 5 --inputs 9
	status=$?
	[ $status -eq 0 ] && grep -q "^  training  alpha " "$tmp/out" && grep -q "^  inference alpha " "$tmp/out"
	check "gradcheck $layer checks alpha over 9 samples (status $status: $(said))" $?
done
# 80 samples: the slopes of a rank-1 PReLU sum over the batch alone, in two blocks.
gradcheck "$tmp/acts.yaml" prelu_vector --seed 6 --inputs 80
status=$?
[ $status -eq 0 ] && grep -q "^  training  alpha " "$tmp/out"
check "gradcheck prelu_vector over 80 samples (status $status: $(said))" $?

# ---- Keras' counts ------------------------------------------------------------------------------------
"$strata" summary "$tmp/acts.yaml" >"$tmp/out" 2>&1
# 60 + 3 + 20 + 4 + 9 slopes: (5, 4, 3), (1, 1, 3), (5, 4, 1), (1, 4, 1), (9)
grep -q "prelu_all (PReLU) .* 60 " "$tmp/out" && grep -q "prelu_channels (PReLU) .* 3 " "$tmp/out" &&
	grep -q "prelu_pixels (PReLU) .* 20 " "$tmp/out" && grep -q "prelu_columns (PReLU) .* 4 " "$tmp/out" &&
	grep -q "relu_all (ReLU) .* 0 " "$tmp/out" && grep -q "^Total params: 96$" "$tmp/out" &&
	grep -q "^Trainable params: 96$" "$tmp/out"
check "summary counts PReLU's slopes as Keras does ($(said))" $?

# ---- strata layers documents every parameter ----------------------------------------------------------
"$strata" layers >"$tmp/out" 2>&1
grep -q "^relu (ReLU)" "$tmp/out" && grep -q "^leaky_relu (LeakyReLU)" "$tmp/out" && grep -q "^elu (ELU)" "$tmp/out" &&
	grep -q "^prelu (PReLU)" "$tmp/out" && grep -q "^softmax (Softmax)" "$tmp/out" &&
	grep -q "^    alpha  *not supported  *only 0.3 .*negative_slope" "$tmp/out" &&
	grep -q "^    alpha_constraint  *constraint  *default null" "$tmp/out" &&
	grep -q "^    axis  *not supported  *only -1" "$tmp/out" &&
	grep -q "^    shared_axes  " "$tmp/out" && grep -q "^    max_value  *float in (0, inf) *default null" "$tmp/out"
check "strata layers lists the activation layers and what they leave out ($(said))" $?

# ---- refusals -----------------------------------------------------------------------------------------
# refused MODEL_LINE FILE:LINE:COLUMN TEXT: a one-layer model whose layer line is MODEL_LINE; summary
# exits 2 with the message at FILE:LINE:COLUMN saying TEXT.
refused() {
	printf 'inputs: [{name: x, shape: [4, 4, 3]}]\nlayers:\n%s\n' "$1" >"$tmp/bad.yaml"
	"$strata" summary "$tmp/bad.yaml" >"$tmp/out" 2>&1
	status=$?
	[ $status -eq 2 ] && grep -qF "$tmp/bad.yaml:$2: " "$tmp/out" && grep -qF "$3" "$tmp/out"
	check "'$1' is refused at $2 saying '$3' (status $status: $(said))" $?
}
refused "  - {type: prelu, shared_axes: [1, 4]}" 3:32 "axis 4 is out of range for rank-3 samples: 1 to 3"
refused "  - {type: prelu, shared_axes: 5}" 3:32 "'shared_axes' must be in [1, 4], got 5"
refused "  - {type: prelu, alpha_constraint: unit_norm}" 3:37 "'alpha_constraint': unknown constraint 'unit_norm'"
refused "  - {type: leaky_relu, alpha: 0.1}" 3:31 "write negative_slope instead"
refused "  - {type: relu, max_value: -1}" 3:29 "'max_value' must be > 0, got -1"
refused "  - {type: softmax, axis: 1}" 3:27 "only the last axis is supported"
refused "  - {type: elu, alpha: null}" 3:24 "'alpha' must be a number"

echo "$passes passed, $fails failed"
[ "$fails" -eq 0 ]
