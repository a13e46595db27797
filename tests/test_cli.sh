#!/bin/sh
# The strata tool end to end: devices, summary, exit statuses and positions of model errors, and a
# second forward pass that compiles no OpenCL program (the disk cache).
set -u
strata=${STRATA_EXE:?run through meson test}
src=${STRATA_TEST_SRCDIR:?run through meson test}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
export XDG_CACHE_HOME="$tmp/cache"
fails=0
passes=0

check() { # description, then a condition already evaluated into $?
	if [ "$2" -eq 0 ]; then passes=$((passes + 1)); else echo "FAIL: $1"; fails=$((fails + 1)); fi
}

"$strata" devices >"$tmp/devices" 2>&1
check "strata devices exits 0" $?
grep -q "OpenCL C" "$tmp/devices"
check "strata devices shows the OpenCL C version" $?
grep -q "^\* " "$tmp/devices"
check "strata devices marks the chosen device" $?

"$strata" devices --device no-such-device >"$tmp/out" 2>&1
[ $? -eq 2 ] && grep -q "no OpenCL device matches 'no-such-device'" "$tmp/out"
check "an unmatched selector exits 2 and says so" $?

"$strata" summary "$src/../models/mnist_cnn.yaml" >"$tmp/summary" 2>&1
check "strata summary mnist_cnn exits 0" $?
grep -q "Total params: 1,199,882" "$tmp/summary"
check "mnist_cnn has 1,199,882 parameters" $?

# An unknown layer type on line 5, column 11.
cat >"$tmp/bad.yaml" <<'YAML'
input: {shape: [28, 28, 1]}
layers:
  - type: conv2d
    filters: 4
    kernel_size: 3
  - type: conv3d
YAML
"$strata" summary "$tmp/bad.yaml" >"$tmp/out" 2>&1
status=$?
[ $status -eq 2 ]
check "an unknown layer type exits 2 (got $status)" $?
grep -q "^$tmp/bad.yaml:6:11: unknown layer type 'conv3d'" "$tmp/out"
check "the message starts with FILE:6:11: (got: $(head -c 300 "$tmp/out"))" $?
grep -q "conv2d" "$tmp/out" && grep -q "dense" "$tmp/out"
check "the message lists the available layer types" $?

"$strata" summary "$tmp/missing.yaml" >"$tmp/out" 2>&1
[ $? -ne 0 ] && grep -q "missing.yaml" "$tmp/out"
check "a missing model file is refused and named" $?

"$strata" frobnicate >"$tmp/out" 2>&1
[ $? -eq 2 ]
check "an unknown command exits 2" $?

# A small model forwarded twice: the second run loads every program from the disk cache.
cat >"$tmp/small.yaml" <<'YAML'
input: {shape: [8, 8, 1]}
layers:
  - {type: conv2d, filters: 4, kernel_size: 3, activation: relu}
  - {type: maxpool2d}
  - {type: dropout, rate: 0.5}
  - {type: flatten}
  - {type: dense, units: 3, activation: softmax}
YAML
"$strata" forward --random --batch 4 --verbose "$tmp/small.yaml" >"$tmp/run1" 2>&1
check "the first forward pass exits 0" $?
grep -Eq "program cache: [1-9][0-9]* built" "$tmp/run1"
check "the first run builds programs ($(grep 'program cache' "$tmp/run1"))" $?
"$strata" forward --random --batch 4 --verbose "$tmp/small.yaml" >"$tmp/run2" 2>&1
check "the second forward pass exits 0" $?
grep -Eq "program cache: 0 built, [1-9][0-9]* loaded from disk" "$tmp/run2"
check "the second run builds nothing ($(grep 'program cache' "$tmp/run2"))" $?
grep -q "row sums: the one farthest from 1 is 1.0000" "$tmp/run2"
check "softmax rows sum to 1" $?

"$strata" forward --random --batch 4 --profile "$tmp/small.yaml" >"$tmp/prof" 2>&1
grep -q "conv2d_1" "$tmp/prof" && grep -q "Share" "$tmp/prof"
check "--profile prints a per-layer table" $?

# Train, evaluate and predict with a small model on real MNIST.
data=$(cd "$src/../data/mnist" 2>/dev/null && pwd)
if [ -z "$data" ]; then
	echo "FAIL: $src/../data/mnist is missing: run scripts/fetch-mnist.sh"
	fails=$((fails + 1))
else
	cat >"$tmp/mlp.yaml" <<YAML
name: tiny_mlp
input: {shape: [28, 28, 1]}
layers:
  - {type: flatten}
  - {type: dense, units: 64, activation: relu}
  - {type: dropout, rate: 0.2}
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
training: {batch_size: 64, epochs: 2, seed: 3}
YAML
	"$strata" train "$tmp/mlp.yaml" --limit 2048 --save "$tmp/w.stw" >"$tmp/train" 2>&1
	check "strata train exits 0 ($(tail -3 "$tmp/train"))" $?
	grep -q "^Epoch 2/2" "$tmp/train" && grep -q "val_accuracy" "$tmp/train"
	check "train shows each epoch with validation figures" $?
	head -1 "$tmp/w.csv" | grep -q "^epoch,batch,loss,accuracy,val_loss,val_accuracy,images_per_s,seconds$" &&
		[ "$(grep -Ec '^[12],32,[0-9.]+,[0-9.]+,[0-9.]+,[0-9.]+,' "$tmp/w.csv")" -eq 2 ]
	check "train writes a CSV log next to the weights, with validation figures at each epoch end" $?
	acc=$(sed -n 's/^Test accuracy: //p' "$tmp/train")
	awk -v a="$acc" 'BEGIN { exit !(a > 0.8) }'
	check "2 epochs on 2048 digits reach a test accuracy above 0.8 (got $acc)" $?
	"$strata" eval "$tmp/mlp.yaml" --weights "$tmp/w.stw" >"$tmp/eval" 2>&1
	check "strata eval exits 0" $?
	for what in loss accuracy LRAP; do
		[ -n "$(grep "^Test $what:" "$tmp/train")" ] &&
			[ "$(grep "^Test $what:" "$tmp/train")" = "$(grep "^Test $what:" "$tmp/eval")" ]
		check "eval reproduces the test $what that train printed" $?
	done
	# The first test digit as a PGM picture and inside the IDX file: the same prediction.
	{ printf 'P5\n28 28\n255\n'; tail -c +17 "$data/t10k-images-idx3-ubyte" | head -c 784; } >"$tmp/digit.pgm"
	"$strata" predict "$tmp/mlp.yaml" --weights "$tmp/w.stw" "$tmp/digit.pgm" >"$tmp/pgm" 2>&1
	check "predict on a PGM exits 0" $?
	"$strata" predict "$tmp/mlp.yaml" --weights "$tmp/w.stw" "$data/t10k-images-idx3-ubyte" >"$tmp/idx" 2>&1
	check "predict on an IDX file exits 0" $?
	[ "$(wc -l <"$tmp/idx")" -eq 10000 ] && [ "$(head -1 "$tmp/idx")" = "$(head -1 "$tmp/pgm")" ]
	check "one line per IDX image, the first equal to the PGM's ($(head -1 "$tmp/pgm"))" $?
	grep -q "^0: class 7 " "$tmp/pgm"
	check "the first test digit (a 7) is predicted as 7" $?
	# Weights of another model are refused, naming the tensor.
	sed 's/units: 64/units: 32/' "$tmp/mlp.yaml" >"$tmp/other.yaml"
	"$strata" eval "$tmp/other.yaml" --weights "$tmp/w.stw" >"$tmp/out" 2>&1
	status=$?
	[ $status -ne 0 ] && grep -q "dense_1/kernel" "$tmp/out"
	check "weights of another shape are refused (status $status: $(head -c 200 "$tmp/out"))" $?
	# Resuming a finished run trains nothing more and keeps the figures.
	"$strata" train "$tmp/mlp.yaml" --limit 2048 --resume "$tmp/w.stw" >"$tmp/resume" 2>&1
	check "train --resume exits 0" $?
	[ "$(grep "^Test accuracy:" "$tmp/resume")" = "$(grep "^Test accuracy:" "$tmp/train")" ] && ! grep -q "^Epoch" "$tmp/resume"
	check "resuming a finished run changes nothing" $?
fi

echo "$passes passed, $fails failed"
[ "$fails" -eq 0 ]
