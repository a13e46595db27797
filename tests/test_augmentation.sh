#!/bin/sh
# The augmentation layers through the tool (issue 14, point 6):
#  - `strata gradcheck` of every layer type, fill mode and interpolation on small images, in
#    training mode (the transposed map of the forward pass's draws) and inference mode (the
#    identity); the affine maps are linear in the input values for fixed draws, nearest
#    interpolation included, so finite differences check them exactly;
#  - `strata visualize --augmented` writes a valid PNG of the expected size (originals above the
#    augmented images), the same bits for the same seed, others for another seed or for the step
#    of trained weights, and refuses models it has nothing to show for;
#  - model files with bad factors or inputs that are not images: exit status 2, FILE:LINE:COLUMN.
set -u
. "$(dirname "$0")/lib.sh"
device_args=""
if [ -n "${STRATA_TEST_DEVICE:-}" ]; then
	device_args="--device $STRATA_TEST_DEVICE"
fi
cd "$tmp" || exit 1

# ---- gradcheck --------------------------------------------------------------------------------------
{
	echo "name: augment_grad"
	echo "inputs: [{name: x, shape: [5, 6, 2]}]"
	echo "layers:"
	layers=""
	for fill in reflect wrap constant nearest; do
		for interp in bilinear nearest; do
			echo "  - {type: random_translation, height_factor: 0.3, width_factor: [-0.5, 0.2], fill_mode: $fill, interpolation: $interp, fill_value: 0.25, name: tr_${fill}_$interp, inputs: x}"
			echo "  - {type: random_rotation, factor: 0.2, fill_mode: $fill, interpolation: $interp, name: rot_${fill}_$interp, inputs: x}"
			echo "  - {type: random_zoom, height_factor: [-0.4, 0.6], fill_mode: $fill, interpolation: $interp, name: zoom_${fill}_$interp, inputs: x}"
			layers="$layers tr_${fill}_$interp rot_${fill}_$interp zoom_${fill}_$interp"
		done
	done
	echo "  - {type: random_zoom, height_factor: 0.3, width_factor: [-0.5, 0.1], name: zoom_xy, inputs: x}"
	for mode in horizontal vertical horizontal_and_vertical; do
		echo "  - {type: random_flip, mode: $mode, name: flip_$mode, inputs: x}"
		layers="$layers flip_$mode"
	done
	# value_range (-5, 5) clips nothing of the inputs in [-1, 1); (-0.5, 0.6) clips many.
	echo "  - {type: random_contrast, factor: 0.5, value_range: [-5, 5], name: contrast_free, inputs: x}"
	echo "  - {type: random_contrast, factor: [0.1, 0.9], value_range: [-0.5, 0.6], name: contrast_clipped, inputs: x}"
	echo "outputs: [$(echo zoom_xy contrast_free contrast_clipped $layers | tr ' ' ',')]"
} >grad.yaml
for layer in zoom_xy contrast_free contrast_clipped $layers; do
	# shellcheck disable=SC2086 # the device selector's two words
	timeout 300 "$strata" gradcheck grad.yaml --layer "$layer" --seed 3 $device_args >"$tmp/out" 2>&1
	status=$?
	[ $status -eq 0 ] && grep -q "^passed: 2 gradients" "$tmp/out" && grep -q "^  training " "$tmp/out" &&
		grep -q "^  inference " "$tmp/out"
	check "gradcheck $layer passes in both modes (status $status: $(said))" $?
done

# ---- visualize --augmented ----------------------------------------------------------------------------
data=$(cd "$src/../data/mnist" 2>/dev/null && pwd)
if [ -z "$data" ]; then
	echo "FAIL: $src/../data/mnist is missing: run scripts/fetch-mnist.sh"
	exit 1
fi
# model FILE NAME LAYERS...: MNIST's data with the given layers in front of a small classifier.
model() {
	file=$1 name=$2
	shift 2
	{
		echo "name: $name"
		echo "input: {shape: [28, 28, 1]}"
		echo "layers:"
		for l in "$@"; do echo "  - {$l}"; done
		cat <<YAML
  - {type: conv2d, filters: 4, kernel_size: 3, activation: relu}
  - {type: flatten}
  - {type: dense, units: 10, activation: softmax}
loss: categorical_crossentropy
optimizer: adam
data:
  train_images: $data/train-images-idx3-ubyte
  train_labels: $data/train-labels-idx1-ubyte
  test_images: $data/t10k-images-idx3-ubyte
  test_labels: $data/t10k-labels-idx1-ubyte
  scale: 0.00392156862745098
  num_classes: 10
training: {batch_size: 32, epochs: 1, seed: 1}
YAML
	} >"$file"
}
model aug.yaml mnist_aug "type: random_rotation, factor: 0.05, fill_mode: constant" \
	"type: random_translation, height_factor: 0.1, width_factor: 0.1, fill_mode: constant" \
	"type: random_contrast, factor: 0.3, value_range: [0, 1]"
model plain.yaml mnist_plain "type: dropout, rate: 0.1"
cat >png.py <<'PY'
# Checks a PNG file: signature, every chunk's CRC, 8-bit samples and the pixel data's size; prints
# "WIDTH HEIGHT".
import struct, sys, zlib
d = open(sys.argv[1], 'rb').read()
assert d[:8] == b'\x89PNG\r\n\x1a\n', 'not a PNG signature'
i, idat, ihdr = 8, b'', None
while i < len(d):
    n, = struct.unpack('>I', d[i:i + 4])
    kind, body = d[i + 4:i + 8], d[i + 8:i + 8 + n]
    assert zlib.crc32(kind + body) & 0xffffffff == struct.unpack('>I', d[i + 8 + n:i + 12 + n])[0], 'bad CRC'
    if kind == b'IHDR':
        ihdr = struct.unpack('>IIBBBBB', body)
    elif kind == b'IDAT':
        idat += body
    i += 12 + n
    if kind == b'IEND':
        break
w, h, depth, color = ihdr[:4]
assert depth == 8 and color in (0, 2, 6), 'unexpected sample format'
assert len(zlib.decompress(idat)) == h * (1 + w * {0: 1, 2: 3, 6: 4}[color]), 'pixel data of the wrong size'
print(w, h)
PY
png_size() { python3 png.py "$1" 2>&1; }

"$strata" visualize --help >"$tmp/out" 2>&1
grep -q -- "--augmented" "$tmp/out" && grep -q -- "--count N" "$tmp/out"
check "strata visualize --help lists --augmented and --count ($(said))" $?

# 8 images by default, in one row of pairs: 8 x 28 + 7 x 5 = 259 wide, 2 x 28 + 5 = 61 high; the
# default name is the model's.
"$strata" visualize aug.yaml --augmented $device_args >"$tmp/out" 2>&1
status=$?
[ $status -eq 0 ] && [ "$(png_size mnist_aug_augmented.png)" = "259 61" ] && grep -q "^Wrote mnist_aug_augmented.png: 8 training images" "$tmp/out"
check "visualize --augmented writes mnist_aug_augmented.png, 259 x 61 (status $status: $(said); $(png_size mnist_aug_augmented.png))" $?

# 11 images: rows of 8 and 3, each above its augmented self: 259 x (4 x 28 + 3 x 5) = 259 x 127.
"$strata" visualize aug.yaml --augmented --count 11 --seed 5 -o a.png $device_args >"$tmp/out" 2>&1
status=$?
[ $status -eq 0 ] && [ "$(png_size a.png)" = "259 127" ]
check "visualize --augmented --count 11 writes a 259 x 127 PNG (status $status: $(said); $(png_size a.png))" $?
"$strata" visualize aug.yaml --augmented --count 11 --seed 5 -o b.png $device_args >"$tmp/out" 2>&1
cmp -s a.png b.png
check "the same seed draws the same images ($(said))" $?
"$strata" visualize aug.yaml --augmented --count 11 --seed 6 -o c.png $device_args >"$tmp/out" 2>&1
[ $? -eq 0 ] && ! cmp -s a.png c.png
check "another seed draws other images ($(said))" $?
# --layer shows an earlier layer's output; a batch smaller than the images takes several passes.
"$strata" visualize aug.yaml --augmented --count 11 --seed 5 --layer random_rotation_1 --batch-size 4 -o d.png \
	$device_args >"$tmp/out" 2>&1
status=$?
[ $status -eq 0 ] && [ "$(png_size d.png)" = "259 127" ] && ! cmp -s a.png d.png &&
	grep -q "as random_rotation_1 makes it" "$tmp/out"
check "visualize --augmented --layer random_rotation_1 (status $status: $(said))" $?

# Trained weights carry their step: the next step's draws, not step 0's.
"$strata" train aug.yaml --limit 64 --save w.stw $device_args >"$tmp/out" 2>&1
status=$?
check "strata train runs a model with augmentation layers (status $status: $(said))" $status
"$strata" visualize aug.yaml --augmented --count 11 --seed 1 -o e.png $device_args >"$tmp/out" 2>&1
"$strata" visualize aug.yaml --augmented --count 11 --seed 1 --weights w.stw -o f.png $device_args >"$tmp/out" 2>&1
status=$?
[ $status -eq 0 ] && [ "$(png_size f.png)" = "259 127" ] && ! cmp -s e.png f.png
check "visualize --augmented --weights draws at the weights' step (status $status: $(said))" $?

"$strata" visualize plain.yaml --augmented -o p.png $device_args >"$tmp/out" 2>&1
status=$?
[ $status -eq 2 ] && grep -q "plain.yaml has no augmentation layer" "$tmp/out" && [ ! -e p.png ]
check "visualize --augmented refuses a model without augmentation layers (status $status: $(said))" $?
"$strata" visualize aug.yaml --augmented --grid 2 -o p.png $device_args >"$tmp/out" 2>&1
status=$?
[ $status -eq 2 ] && grep -q -- "--augmented shows training images" "$tmp/out"
check "visualize --augmented refuses --grid (status $status: $(said))" $?
"$strata" visualize aug.yaml --augmented --layer conv2d_1 -o p.png $device_args >"$tmp/out" 2>&1
status=$?
[ $status -eq 2 ] && grep -q "the output of conv2d_1 is not an image of the input's shape" "$tmp/out"
check "visualize --augmented refuses a layer of another shape (status $status: $(said))" $?

# ---- errors in model files ----------------------------------------------------------------------------
cat >bad_factor.yaml <<'YAML'
input: {shape: [28, 28, 1]}
layers:
  - {type: random_rotation, factor: 1.5}
YAML
"$strata" summary bad_factor.yaml >"$tmp/out" 2>&1
status=$?
[ $status -eq 2 ] && grep -q "^bad_factor.yaml:3:37: 'factor' must be in \[-1, 1\], got 1.5" "$tmp/out"
check "a rotation factor out of range: exit 2 at its FILE:LINE:COLUMN (status $status: $(said))" $?

cat >bad_pair.yaml <<'YAML'
input: {shape: [28, 28, 1]}
layers:
  - type: random_translation
    height_factor: 0.1
    width_factor: [0.2, -1.5]
YAML
"$strata" summary bad_pair.yaml >"$tmp/out" 2>&1
status=$?
[ $status -eq 2 ] && grep -q "^bad_pair.yaml:5:25: 'width_factor' must be in \[-1, 1\], got -1.5" "$tmp/out"
check "a translation pair out of range: exit 2 at its FILE:LINE:COLUMN (status $status: $(said))" $?

cat >bad_contrast.yaml <<'YAML'
input: {shape: [8, 8, 3]}
layers:
  - {type: random_contrast, factor: 0.2, value_range: [255, 0]}
YAML
"$strata" summary bad_contrast.yaml >"$tmp/out" 2>&1
status=$?
[ $status -eq 2 ] && grep -q "^bad_contrast.yaml:3:55: random_contrast_1: 'value_range' must be a pair \[low, high\] with low < high" "$tmp/out"
check "a value_range high below low: exit 2 at its FILE:LINE:COLUMN (status $status: $(said))" $?

cat >bad_rank.yaml <<'YAML'
input: {shape: [784]}
layers:
  - {type: random_flip}
  - {type: dense, units: 10}
YAML
"$strata" summary bad_rank.yaml >"$tmp/out" 2>&1
status=$?
[ $status -eq 2 ] && grep -q "^bad_rank.yaml:3:5: random_flip_1: RandomFlip expects images (height, width, channels), got an input of rank 1 (784)" "$tmp/out"
check "a rank-1 input: exit 2 at the layer's FILE:LINE:COLUMN (status $status: $(said))" $?

echo "$passes passed, $fails failed"
[ "$fails" -eq 0 ]
