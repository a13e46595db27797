#!/bin/sh
# The normalization layers through the CLI (issue 14): `strata gradcheck` of every path of
# batch_normalization and layer_normalization, each layer alone, in training mode (batch
# statistics) and inference mode (moving statistics), on rank-1 and rank-3 inputs, with and
# without center and scale, vector-wide channels and long rows; `strata summary` counting Keras'
# parameters; `strata layers` listing the parameters left out; bad parameters refused with exit
# status 2 and the value's FILE:LINE:COLUMN.
set -u
. "$(dirname "$0")/lib.sh"

# ---- gradients of every path -------------------------------------------------------------------
cat >"$tmp/images.yaml" <<'YAML'
name: images
inputs: [{name: x, shape: [5, 4, 3]}, {name: wide, shape: [3, 3, 32]}]
layers:
  - {type: batch_normalization, name: bn, inputs: x}
  - {type: batch_normalization, momentum: 0.5, epsilon: 0.01, name: bn_eps, inputs: x}
  - {type: batch_normalization, center: false, name: bn_nocenter, inputs: x}
  - {type: batch_normalization, scale: false, name: bn_noscale, inputs: x}
  - {type: batch_normalization, center: false, scale: false, name: bn_bare, inputs: x}
  - {type: batch_normalization, axis: 3, name: bn_wide, inputs: wide}
  - {type: layer_normalization, name: ln, inputs: x}
  - {type: layer_normalization, center: false, name: ln_nocenter, inputs: x}
  - {type: layer_normalization, scale: false, epsilon: 0.1, name: ln_noscale, inputs: x}
  - {type: layer_normalization, name: ln_wide, inputs: wide}
outputs: [bn, bn_eps, bn_nocenter, bn_noscale, bn_bare, bn_wide, ln, ln_nocenter, ln_noscale, ln_wide]
YAML
for layer in bn bn_eps bn_nocenter bn_noscale bn_bare bn_wide ln ln_nocenter ln_noscale ln_wide; do
	gradcheck "$tmp/images.yaml" $layer --seed 3 --inputs 3
	status=$?
	[ $status -eq 0 ] && grep -q "^passed: " "$tmp/out" && grep -q "^  training  input 0" "$tmp/out" &&
		grep -q "^  inference input 0" "$tmp/out"
	check "gradcheck $layer (images) passes in both modes (status $status: $(said))" $?
done

cat >"$tmp/vectors.yaml" <<'YAML'
name: vectors
inputs: [{name: v, shape: [7]}, {name: long, shape: [200]}]
layers:
  - {type: batch_normalization, name: bn, inputs: v}
  - {type: batch_normalization, center: false, scale: false, name: bn_bare, inputs: v}
  - {type: layer_normalization, name: ln, inputs: v}
  - {type: layer_normalization, center: false, name: ln_nocenter, inputs: v}
  - {type: batch_normalization, name: bn_long, inputs: long}
  - {type: layer_normalization, name: ln_long, inputs: long}
  - {type: layer_normalization, scale: false, name: ln_long_noscale, inputs: long}
outputs: [bn, bn_bare, ln, ln_nocenter, bn_long, ln_long, ln_long_noscale]
YAML
for layer in bn bn_bare ln ln_nocenter bn_long ln_long ln_long_noscale; do
	gradcheck "$tmp/vectors.yaml" $layer --seed 5 --inputs 6
	status=$?
	[ $status -eq 0 ] && grep -q "^passed: " "$tmp/out" && grep -q "^  training  input 0" "$tmp/out" &&
		grep -q "^  inference input 0" "$tmp/out"
	check "gradcheck $layer (vectors) passes in both modes (status $status: $(said))" $?
done
# gamma and beta are checked where the layer has them
gradcheck "$tmp/images.yaml" bn --seed 3 --inputs 3
grep -q "^  training  gamma " "$tmp/out" && grep -q "^  inference beta " "$tmp/out"
check "gradcheck bn checks gamma and beta ($(said))" $?
gradcheck "$tmp/images.yaml" bn_bare --seed 3 --inputs 3
grep -q "^passed: 2 gradients" "$tmp/out" && ! grep -q "gamma\|beta" "$tmp/out"
check "gradcheck bn_bare has only the input's gradient ($(said))" $?

# ---- Keras' counts -------------------------------------------------------------------------------
cat >"$tmp/counts.yaml" <<'YAML'
name: counts
input: {shape: [5, 5, 3]}
layers:
  - {type: batch_normalization, name: bn}
  - {type: layer_normalization, name: ln}
YAML
"$strata" summary "$tmp/counts.yaml" >"$tmp/out" 2>&1
status=$?
# BatchNormalization on (5, 5, 3): 12 (6 non-trainable); LayerNormalization: 6
[ $status -eq 0 ] && grep -q "^ bn (BatchNormalization) *(None, 5, 5, 3) *12$" "$tmp/out" &&
	grep -q "^ ln (LayerNormalization) *(None, 5, 5, 3) *6$" "$tmp/out" &&
	grep -q "^Total params: 18" "$tmp/out" && grep -q "^Trainable params: 12" "$tmp/out" &&
	grep -q "^Non-trainable params: 6" "$tmp/out"
check "summary counts as Keras does (status $status: $(said))" $?

"$strata" layers >"$tmp/out" 2>&1
grep -q "^batch_normalization (BatchNormalization)" "$tmp/out" && grep -q "^layer_normalization (LayerNormalization)" "$tmp/out" &&
	grep -q "^    renorm  *not supported  *only false" "$tmp/out" && grep -q "^    rms_scaling  *not supported  *only false" "$tmp/out" &&
	grep -q "^    momentum  *float in \[0, 1\]  *default 0.99" "$tmp/out"
check "strata layers lists the normalization layers and what they leave out ($(said))" $?

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
refused "axis 1" "{type: batch_normalization, axis: 1}" "bad.yaml:4:39: batch_normalization_1: axis 1 is not supported" \
	"normalizes the last axis only"
refused "renorm" "{type: batch_normalization, renorm: true}" "bad.yaml:4:41: 'renorm' is a Keras parameter Strata leaves out"
refused "momentum 2" "{type: batch_normalization, momentum: 2}" "bad.yaml:4:43: 'momentum' must be in [0, 1]"
refused "epsilon 0" "{type: layer_normalization, epsilon: 0}" "bad.yaml:4:42: 'epsilon' must be > 0"
refused "rms_scaling" "{type: layer_normalization, rms_scaling: true}" \
	"bad.yaml:4:46: 'rms_scaling' is a Keras parameter Strata leaves out"
refused "an axis list" "{type: layer_normalization, axis: [1, 2]}" "bad.yaml:4:" "axis"

echo "$passes passed, $fails failed"
[ "$fails" -eq 0 ]
