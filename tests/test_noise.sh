#!/bin/sh
# The noise layers (plugins/noise) through the CLI: `strata gradcheck` of each type alone, in
# training mode (the backward pass draws the forward pass's noise again) and inference mode (the
# identity), with and without a layer seed, and behind a conv2d so the draws must repeat across
# many passes; `strata summary` counts no parameters; `strata train` of a small model with every
# noise layer lowers its loss and repeats itself from the same seed; bad parameters and shapes
# refused with exit status 2 at FILE:LINE:COLUMN.
set -u
. "$(dirname "$0")/lib.sh"

cat >"$tmp/noise.yaml" <<'YAML'
name: noise
inputs: [{name: x, shape: [5, 4, 3]}, {name: v, shape: [7]}]
layers:
  - {type: gaussian_noise, stddev: 0.3, name: noise_images, inputs: x}
  - {type: gaussian_noise, stddev: 1.0, seed: 11, name: noise_vector, inputs: v}
  - {type: gaussian_dropout, rate: 0.3, name: gdrop_images, inputs: x}
  - {type: gaussian_dropout, rate: 0.6, seed: -4, name: gdrop_vector, inputs: v}
  - {type: spatial_dropout2d, rate: 0.4, name: spatial, inputs: x}
  - {type: spatial_dropout2d, rate: 0.7, seed: 3, name: spatial_seeded, inputs: x}
  - {type: conv2d, filters: 4, kernel_size: 2, activation: tanh, name: conv, inputs: x}
  - {type: spatial_dropout2d, rate: 0.5, name: spatial_after_conv, inputs: conv}
  - {type: gaussian_dropout, rate: 0.5, name: gdrop_after_conv, inputs: spatial_after_conv}
outputs: [noise_images, noise_vector, gdrop_images, gdrop_vector, spatial, spatial_seeded, gdrop_after_conv]
YAML
for layer in noise_images noise_vector gdrop_images gdrop_vector spatial spatial_seeded spatial_after_conv \
	gdrop_after_conv; do
	gradcheck "$tmp/noise.yaml" $layer --seed 3 --inputs 6
	status=$?
	[ $status -eq 0 ] && grep -q "^passed: " "$tmp/out" && grep -q "^  training  input 0 " "$tmp/out" &&
		grep -q "^  inference input 0 " "$tmp/out"
	check "gradcheck $layer passes in both modes (status $status: $(said))" $?
done

"$strata" summary "$tmp/noise.yaml" >"$tmp/out" 2>&1
grep -q "noise_images (GaussianNoise) .* 0 " "$tmp/out" && grep -q "gdrop_images (GaussianDropout .* 0 " "$tmp/out" &&
	grep -q "spatial (SpatialDropout2D) .* 0 " "$tmp/out" && # the conv2d's 2 * 2 * 3 * 4 + 4 alone
	grep -q "^Total params: 52$" "$tmp/out"
check "summary counts no parameters for the noise layers ($(said))" $?

"$strata" layers >"$tmp/out" 2>&1
grep -q "^gaussian_noise (GaussianNoise)" "$tmp/out" && grep -q "^gaussian_dropout (GaussianDropout)" "$tmp/out" &&
	grep -q "^spatial_dropout2d (SpatialDropout2D)" "$tmp/out" &&
	grep -q "^    data_format  *not supported  *only channels_last" "$tmp/out" &&
	grep -q "^    stddev  *float in \[0, 1\]  *required" "$tmp/out" &&
	grep -q "^    rate  *float in \[0, 1)  *required" "$tmp/out"
check "strata layers lists the noise layers ($(said))" $?

# ---- a short training run: the loss goes down, and the same seed gives the same figures -------------
python3 - "$tmp" <<'PY'
import struct, sys, random
tmp = sys.argv[1]
rng = random.Random(5)
n, h, w, c = 96, 6, 6, 2
imgs, labels = bytearray(), bytearray()
for i in range(n):
    label = i % 3
    for y in range(h):
        for x in range(w):
            for ch in range(c):
                base = 200 if (label == 0 and x < 3) or (label == 1 and y < 3) or (label == 2 and ch == 1) else 40
                imgs.append(max(0, min(255, base + rng.randint(-30, 30))))
    labels.append(label)
with open(f"{tmp}/images.idx", "wb") as f:
    f.write(struct.pack(">BBBB", 0, 0, 8, 4) + struct.pack(">IIII", n, h, w, c) + imgs)
with open(f"{tmp}/labels.idx", "wb") as f:
    f.write(struct.pack(">BBBB", 0, 0, 8, 1) + struct.pack(">I", n) + labels)
PY
cat >"$tmp/train.yaml" <<YAML
input: {shape: [6, 6, 2]}
layers:
  - {type: gaussian_noise, stddev: 0.1}
  - {type: conv2d, filters: 4, kernel_size: 3, activation: relu}
  - {type: spatial_dropout2d, rate: 0.25, seed: 1}
  - {type: flatten}
  - {type: gaussian_dropout, rate: 0.2}
  - {type: dense, units: 3, activation: softmax}
loss: categorical_crossentropy
optimizer: adam
data:
  train_images: $tmp/images.idx
  train_labels: $tmp/labels.idx
  test_images: $tmp/images.idx
  test_labels: $tmp/labels.idx
  scale: 0.00392156862745098
  num_classes: 3
training: {batch_size: 16, epochs: 4, seed: 2}
YAML
# shellcheck disable=SC2086 # the device selector's two words
timeout 300 "$strata" train "$tmp/train.yaml" $device_args >"$tmp/train1.txt" 2>&1
status1=$?
# shellcheck disable=SC2086
timeout 300 "$strata" train "$tmp/train.yaml" $device_args >"$tmp/train2.txt" 2>&1
status2=$?
cp "$tmp/train1.txt" "$tmp/out"
# the epochs' training losses (" - loss: X", not val_loss)
losses=$(grep -o -- "- loss: [0-9.]*" "$tmp/train1.txt" | awk '{print $3}')
first=$(echo "$losses" | head -n 1)
last=$(echo "$losses" | tail -n 1)
[ $status1 -eq 0 ] && [ $status2 -eq 0 ] && [ -n "$first" ] &&
	awk -v a="$first" -v b="$last" 'BEGIN { exit !(b < a) }' &&
	[ "$(grep -o "loss: [0-9.]*" "$tmp/train1.txt")" = "$(grep -o "loss: [0-9.]*" "$tmp/train2.txt")" ] &&
	[ "$(echo "$losses" | wc -l)" -eq 4 ]
check "training with the noise layers lowers the loss ($first to $last) and repeats from its seed ($(said))" $?

# ---- refusals -----------------------------------------------------------------------------------------
refused() { # INPUT_SHAPE LAYER_LINE FILE:LINE:COLUMN TEXT
	printf 'inputs: [{name: x, shape: %s}]\nlayers:\n%s\n' "$1" "$2" >"$tmp/bad.yaml"
	"$strata" summary "$tmp/bad.yaml" >"$tmp/out" 2>&1
	status=$?
	[ $status -eq 2 ] && grep -qF "$tmp/bad.yaml:$3: " "$tmp/out" && grep -qF "$4" "$tmp/out"
	check "'$2' on $1 is refused at $3 saying '$4' (status $status: $(said))" $?
}
refused "[7]" "  - {type: spatial_dropout2d, rate: 0.5}" 3:5 \
	"spatial_dropout2d_1: SpatialDropout2D needs (height, width, channels) samples, got (7) (rank 1)"
refused "[4, 4, 3]" "  - {type: spatial_dropout2d, rate: 1}" 3:37 "'rate' must be in [0, 1), got 1"
refused "[4, 4, 3]" "  - {type: gaussian_dropout, rate: 1}" 3:36 "'rate' must be in [0, 1), got 1"
refused "[4, 4, 3]" "  - {type: gaussian_noise, stddev: 2}" 3:36 "'stddev' must be in [0, 1], got 2"
refused "[4, 4, 3]" "  - {type: gaussian_noise, stddev: 0.1, seed: abc}" 3:47 "'seed' must be an integer"
refused "[4, 4, 3]" "  - {type: spatial_dropout2d, rate: 0.1, data_format: channels_first}" 3:55 \
	"'data_format' is a Keras parameter Strata leaves out"

echo "$passes passed, $fails failed"
[ "$fails" -eq 0 ]
