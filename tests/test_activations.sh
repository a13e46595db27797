#!/bin/sh
# Keras 3's activations (issue 14): every one fused into dense and conv2d (`activation:`) and as an
# Activation layer, checked by `strata gradcheck` against finite differences in training and
# inference mode: the ones whose derivative comes from their output, and gelu, swish, hard_silu
# and mish, whose layers keep their input for the backward pass, also in a layer whose weights are
# shared by two calls (the second call overwrites the first one's kept input, so its backward pass
# runs the forward pass again). Forward values are checked against a host reference in the
# layers_forward suite. An unknown activation is refused at its FILE:LINE:COLUMN listing Keras'
# names.
set -u
. "$(dirname "$0")/lib.sh"

acts="elu selu gelu swish silu softplus softsign hard_sigmoid exponential relu6 leaky_relu hard_silu hard_swish mish log_softmax"
{
	echo "name: activations"
	echo "inputs: [{name: x, shape: [6, 5, 2]}, {name: v, shape: [7]}]"
	echo "layers:"
	outputs=""
	for a in $acts; do
		echo "  - {type: conv2d, filters: 3, kernel_size: 3, padding: same, activation: $a, name: c_$a, inputs: x}"
		echo "  - {type: dense, units: 4, activation: $a, name: d_$a, inputs: v}"
		echo "  - {type: activation, activation: $a, name: a_$a, inputs: x}"
		outputs="$outputs c_$a, d_$a, a_$a,"
	done
	# One dense layer called twice (shares): its second call's kept input replaces the first's.
	echo "  - {type: dense, units: 7, activation: gelu, name: owner, inputs: v}"
	echo "  - {type: dense, units: 7, activation: gelu, name: sharer, inputs: owner, shares: owner}"
	echo "  - {type: conv2d, filters: 2, kernel_size: 3, padding: same, activation: mish, name: c_owner, inputs: x}"
	echo "  - {type: conv2d, filters: 2, kernel_size: 3, padding: same, activation: mish, name: c_sharer, inputs: c_owner, shares: c_owner}"
	echo "outputs: [$outputs sharer, c_sharer]"
} >"$tmp/acts.yaml"

for a in $acts; do
	for layer in c_$a d_$a a_$a; do
		gradcheck "$tmp/acts.yaml" "$layer" --seed 5
		status=$?
		[ $status -eq 0 ] && grep -q "^passed: " "$tmp/out" && grep -q "^  training " "$tmp/out" &&
			grep -q "^  inference " "$tmp/out"
		check "gradcheck $layer passes in both modes (status $status: $(said))" $?
	done
done
for layer in owner sharer c_owner c_sharer; do
	gradcheck "$tmp/acts.yaml" "$layer" --seed 6
	status=$?
	[ $status -eq 0 ] && grep -q "^passed: " "$tmp/out"
	check "gradcheck of the shared layer $layer passes (status $status: $(said))" $?
done

# A wrong name: refused where it stands, with the names Strata knows.
cat >"$tmp/bad.yaml" <<'YAML'
input: {shape: [4]}
layers:
  - {type: dense, units: 2, activation: gelu_tanh}
YAML
"$strata" summary "$tmp/bad.yaml" >"$tmp/out" 2>&1
status=$?
[ $status -eq 2 ] && grep -q "bad.yaml:3:" "$tmp/out" && grep -q "gelu_tanh" "$tmp/out" && grep -q "hard_sigmoid" "$tmp/out" &&
	grep -q "mish" "$tmp/out"
check "an unknown activation is refused at its line, listing the known ones (status $status: $(said))" $?

echo "$passes passed, $fails failed"
[ "$fails" -eq 0 ]
