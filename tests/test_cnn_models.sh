#!/bin/sh
# The model files of issue 14 (models/): `strata summary` counts their parameters as Keras does
# (the numbers below are Keras' formulas, worked out by hand in the model files' comments), and a
# short epoch of training lowers the loss of the two that normalize their batches. Their agreement
# with PyTorch and full trainings are in bench/ (bench/cnn_models.sh).
set -u
. "$(dirname "$0")/lib.sh"
models="$src/../models"

# summary MODEL TOTAL TRAINABLE NON_TRAINABLE
summary_counts() {
	"$strata" summary "$models/$1.yaml" >"$tmp/out" 2>&1
	status=$?
	[ $status -eq 0 ] && grep -q "^Total params: $2\$" "$tmp/out" && grep -q "^Trainable params: $3\$" "$tmp/out" &&
		grep -q "^Non-trainable params: $4\$" "$tmp/out"
	check "summary of $1: $2 parameters, $3 trainable, $4 not (status $status: $(said))" $?
}
summary_counts mobilenet_mini 9,610 9,034 576
summary_counts mnist_resnet_bn 78,426 77,754 672
summary_counts mnist_best 327,242 326,410 832
summary_counts mnist_cnn_augmented 1,199,882 1,199,882 0

# Per-layer lines as Keras prints them (long names wrapped in the type column).
"$strata" summary "$models/mobilenet_mini.yaml" >"$tmp/out" 2>&1
grep -q "^ depthwise_conv2d_3 (Depthw *(None, 7, 7, 64) *576 *\$" "$tmp/out" &&
	grep -q "^ batch_normalization_7 (Bat *(None, 7, 7, 64) *256 *\$" "$tmp/out" &&
	grep -q "^ global_average_pooling2d_1 *(None, 64) *0 *\$" "$tmp/out"
check "mobilenet_mini's layers, shapes and counts ($(said))" $?
"$strata" summary "$models/mnist_resnet_bn.yaml" >"$tmp/out" 2>&1
grep -q "^ b3_short (Conv2D) *(None, 7, 7, 64) *2048 *\['b2_out\[0\]\[0\]'\]" "$tmp/out" &&
	grep -q "^ b2_add (Add) *(None, 14, 14, 32) *0 *\['b2_bn2\[0\]\[0\]',\$" "$tmp/out"
check "mnist_resnet_bn's graph lines ($(said))" $?

# One short epoch (1,536 training images, batch 128) lowers the training loss: its mean over the
# epoch's 12 batches is below the loss of the first batch alone (the same run limited to 128
# images: one step, its loss that of the initial weights). Test losses would not show it yet: the
# moving statistics of batch normalization move by 1% a step.
data=$(cd "$src/../data/mnist" 2>/dev/null && pwd)
if [ -z "$data" ]; then
	check "$src/../data/mnist is missing: run scripts/fetch-mnist.sh" 1
else
	for model in mobilenet_mini mnist_resnet_bn; do
		for limit in 128 1536; do
			timeout 600 "$strata" train "$models/$model.yaml" --epochs 1 --limit $limit --seed 3 \
				--save "$tmp/$model.$limit.stw" >"$tmp/out" 2>&1
			status=$?
			[ $status -eq 0 ] || break
		done
		first=$(awk -F, 'END { print $3 }' "$tmp/$model.128.csv" 2>/dev/null)
		mean=$(awk -F, 'END { print $3 }' "$tmp/$model.1536.csv" 2>/dev/null)
		[ $status -eq 0 ] && [ -n "$first" ] && [ -n "$mean" ] &&
			awk -v a="$first" -v b="$mean" 'BEGIN { exit !(b < a - 0.05) }'
		check "$model: one epoch lowers the training loss (status $status, first batch $first, epoch mean $mean: $(said))" $?
	done
fi

echo "$passes passed, $fails failed"
[ "$fails" -eq 0 ]
