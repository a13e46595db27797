#!/bin/sh
# The self-organizing map through the CLI (issue 15): `strata train` of models/mnist_som.yaml's map
# on a slice of MNIST without a loss (and on images without labels), its log and progress naming
# the map's errors; `strata eval` reporting them with the purity; `strata predict` printing each
# sample's unit; `strata visualize --codebook` writing the prototypes and the U-matrix as PNGs of
# the map's layout; `strata summary` counting the codebook as non-trainable; bad uses refused with
# exit status 2 and a message that says what.
set -u
. "$(dirname "$0")/lib.sh"
private_cache
data=$(cd "$src/../data/mnist" 2>/dev/null && pwd)
if [ -z "$data" ]; then
	echo "FAIL: $src/../data/mnist is missing: run scripts/fetch-mnist.sh"
	exit 1
fi

som_model() { # FILE ROWS COLUMNS TOPOLOGY [LABELS: yes|no]
	labels=""
	[ "${5:-yes}" = yes ] && labels="
  train_labels: $data/train-labels-idx1-ubyte
  test_labels: $data/t10k-labels-idx1-ubyte
  num_classes: 10"
	cat >"$1" <<YAML
name: som_test
input: {shape: [28, 28, 1]}
layers:
  - {type: som, rows: $2, columns: $3, sigma: 2.0, topology: $4, initializer: pca}
data:
  train_images: $data/train-images-idx3-ubyte
  test_images: $data/t10k-images-idx3-ubyte$labels
  scale: 0.00392156862745098
training: {batch_size: 32, epochs: 2, seed: 1, shuffle: false}
YAML
}

# ---- training without a loss, evaluation, prediction ------------------------------------------
som_model "$tmp/som.yaml" 4 5 rectangular
timeout 300 "$strata" train "$tmp/som.yaml" --limit 2000 --save "$tmp/som.stw" >"$tmp/out" 2>&1
status=$?
[ $status -eq 0 ] && grep -q "val_quantization_error: " "$tmp/out" && grep -q "^Test quantization error: " "$tmp/out" &&
	grep -q "^Test topographic error: " "$tmp/out" && grep -q "^Test purity: " "$tmp/out" && ! grep -q "loss" "$tmp/out"
check "train a map without a loss (status $status: $(said))" $?
head -1 "$tmp/som.csv" | grep -q "val_quantization_error,val_topographic_error" &&
	[ "$(awk -F, 'NR > 1 && $5 != "" { n++ } END { print n }' "$tmp/som.csv")" = 2 ]
check "the log has a row per epoch with the map's errors ($(head -3 "$tmp/som.csv" | tr '\n' ' '))" $?

timeout 120 "$strata" eval "$tmp/som.yaml" --weights "$tmp/som.stw" >"$tmp/out" 2>&1
status=$?
qe=$(sed -n 's/^Test quantization error: //p' "$tmp/out")
# MNIST images lie about 9 from one another (|x| ~ 9.3); a 20-unit map trained on 2000 of them
# holds the test images within 5 to 8 of a prototype.
[ $status -eq 0 ] && awk -v q="$qe" 'BEGIN { exit !(q > 5 && q < 8) }' && grep -q "^Units used: [0-9]* of 20$" "$tmp/out"
check "eval reports the quantization error ($qe) and the units used (status $status: $(said))" $?

python3 -c "
import sys
d = open('$data/t10k-images-idx3-ubyte', 'rb').read()
open('$tmp/digit.pgm', 'wb').write(b'P5 28 28 255\n' + d[16:16 + 784])" 2>/dev/null
timeout 120 "$strata" predict "$tmp/som.yaml" --weights "$tmp/som.stw" "$tmp/digit.pgm" >"$tmp/out" 2>&1
status=$?
[ $status -eq 0 ] && grep -Eq "^0: unit \([0-3], [0-4]\) at distance [0-9.]+  \[" "$tmp/out" &&
	[ "$(sed 's/.*\[//; s/\]//' "$tmp/out" | wc -w)" -eq 20 ]
check "predict prints the sample's unit and its 20 distances (status $status: $(said))" $?

timeout 120 "$strata" visualize "$tmp/som.yaml" --weights "$tmp/som.stw" --codebook -o "$tmp/map.png" >"$tmp/out" 2>&1
status=$?
# 5 columns of 28 pixels and 4 margins of 2; 4 rows.
size() { python3 -c "import struct,sys; d=open(sys.argv[1],'rb').read(24); print(*struct.unpack('>II', d[16:24]))" "$1"; }
[ $status -eq 0 ] && [ "$(size "$tmp/map.png")" = "148 118" ] && [ "$(size "$tmp/map_umatrix.png")" = "148 118" ]
check "visualize --codebook writes the 4 x 5 prototypes and the U-matrix (status $status: $(said))" $?

timeout 60 "$strata" summary "$tmp/som.yaml" >"$tmp/out" 2>&1
grep -q "^Total params: 15,681$" "$tmp/out" && grep -q "^Trainable params: 0$" "$tmp/out"
check "summary counts 20 x 784 codebook values and the initialization flag as non-trainable ($(said))" $?

# A hexagonal map on images without labels: no purity, and a picture with odd rows shifted.
som_model "$tmp/hex.yaml" 3 4 hexagonal no
timeout 300 "$strata" train "$tmp/hex.yaml" --limit 1000 --epochs 1 --save "$tmp/hex.stw" >"$tmp/out" 2>&1
status=$?
[ $status -eq 0 ] && grep -q "^Test topographic error: " "$tmp/out" && ! grep -q "purity" "$tmp/out"
check "train a hexagonal map on images without labels (status $status: $(said))" $?
timeout 120 "$strata" visualize "$tmp/hex.yaml" --weights "$tmp/hex.stw" --codebook -o "$tmp/hex.png" >"$tmp/out" 2>&1
[ $? -eq 0 ] && [ "$(size "$tmp/hex.png")" = "133 88" ]
check "the hexagonal picture is half a cell wider ($(said))" $?

# ---- refusals --------------------------------------------------------------------------------------
timeout 60 "$strata" visualize "$tmp/som.yaml" --codebook >"$tmp/out" 2>&1
[ $? -eq 2 ] && grep -q "needs --weights" "$tmp/out"
check "visualize --codebook without weights is refused ($(said))" $?
mnist_mlp "$tmp/mlp.yaml" mlp 8 32 1 1
timeout 60 "$strata" visualize "$tmp/mlp.yaml" --codebook --weights "$tmp/som.stw" >"$tmp/out" 2>&1
[ $? -eq 2 ] && grep -q "has no som layer" "$tmp/out"
check "visualize --codebook of a model without a map is refused ($(said))" $?
sed 's/rows: 4/rows: 0/' "$tmp/som.yaml" >"$tmp/bad.yaml"
timeout 60 "$strata" summary "$tmp/bad.yaml" >"$tmp/out" 2>&1
[ $? -eq 2 ] && grep -q "bad.yaml:4:[0-9]*: .*rows" "$tmp/out"
check "rows 0 is refused at its line and column ($(said))" $?
sed 's/initializer: pca/initializer: sample/' "$tmp/som.yaml" >"$tmp/bad.yaml"
timeout 60 "$strata" summary "$tmp/bad.yaml" >"$tmp/out" 2>&1
[ $? -eq 2 ] && grep -q "bad.yaml:4:[0-9]*: 'initializer' must be one of random, pca" "$tmp/out"
check "an unknown initializer is refused with the choices ($(said))" $?
# A map feeding a loss would need a backward pass it does not have.
cat >"$tmp/lossy.yaml" <<YAML
name: lossy
input: {shape: [4]}
layers:
  - {type: som, rows: 2, columns: 2}
  - {type: dense, units: 2, activation: softmax}
loss: categorical_crossentropy
YAML
timeout 60 "$strata" gradcheck "$tmp/lossy.yaml" --layer som_1 >"$tmp/out" 2>&1
[ $? -eq 1 ] && grep -q "lossy.yaml:4:5: som_1: layer type 'som' has no backward pass" "$tmp/out"
check "a map under a loss is refused: no backward pass ($(said))" $?

echo "$passes passed, $fails failed"
[ "$fails" -eq 0 ]
