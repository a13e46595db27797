#!/bin/sh
# A model of two outputs from the command line: models/mnist_two_heads.yaml (two branches joined
# by a Concatenate, a digit head and a parity head) summarized, trained and evaluated per output,
# its log read by `plot`, one head predicted by name; and the data section's errors.
. "$STRATA_TEST_SRCDIR/lib.sh"

data=$(cd "$src/../data/mnist" 2>/dev/null && pwd)
if [ -z "$data" ]; then
	echo "FAIL: $src/../data/mnist is missing: run scripts/fetch-mnist.sh"
	exit 1
fi
for set in train t10k; do
	python3 "$src/../scripts/relabel.py" "$data/$set-labels-idx1-ubyte" "$tmp/$set-parity" 0 1 0 1 0 1 0 1 0 1
done
check "relabel.py writes the parity labels" $?
# The model as shipped, its data where this test put it.
sed -e "s#\.\./data/mnist/train-parity-idx1-ubyte#$tmp/train-parity#; s#\.\./data/mnist/t10k-parity-idx1-ubyte#$tmp/t10k-parity#" \
	-e "s#\.\./data/mnist#$data#g" "$src/../models/mnist_two_heads.yaml" >"$tmp/two.yaml"

"$strata" summary "$tmp/two.yaml" >"$tmp/out" 2>&1
[ $? -eq 0 ] && grep -q "^ branches (Concatenate) .*'conv_3x3\[0\]\[0\]'," "$tmp/out" &&
	grep -q "^ parity (Dense) .*4610 .*'features\[0\]\[0\]'" "$tmp/out" && grep -q "^Total params: 46,732" "$tmp/out"
check "the summary shows both branches and both heads ($(grep Total "$tmp/out"))" $?

"$strata" train "$tmp/two.yaml" --limit 1200 --epochs 2 --batch-size 64 --save "$tmp/w.stw" >"$tmp/train" 2>&1
status=$?
[ $status -eq 0 ] && grep -q "digit_loss: .* - digit_accuracy: .* - parity_loss: .* - parity_accuracy: " "$tmp/train" &&
	grep -q "val_digit_accuracy: .* - val_parity_loss: " "$tmp/train"
check "training shows each output's loss and accuracy (status $status, $(tail -c 400 "$tmp/train"))" $?
head -1 "$tmp/w.csv" | grep -q "^epoch,batch,loss,accuracy,val_loss,val_accuracy,images_per_s,seconds,digit_loss,digit_accuracy,parity_loss,parity_accuracy,val_digit_loss,val_digit_accuracy,val_parity_loss,val_parity_accuracy$"
check "the log has Keras' per-output columns ($(head -1 "$tmp/w.csv"))" $?
# Each epoch's row: loss = digit_loss + 0.5 parity_loss (no regularization), within the rounding.
awk -F, 'NR > 1 { d = $3 - ($9 + 0.5 * $11); if (d < 0) d = -d; if (d > 2e-5) bad = 1; n++ }
	END { exit bad || n < 2 }' "$tmp/w.csv"
check "every logged loss is the weighted sum of the outputs' losses" $?
"$strata" plot "$tmp/w.csv" -o "$tmp/curves.png" >"$tmp/out" 2>&1
check "plot reads a log with per-output columns ($(cat "$tmp/out"))" $?

"$strata" eval "$tmp/two.yaml" --weights "$tmp/w.stw" >"$tmp/eval" 2>&1
status=$?
[ $status -eq 0 ] && grep -q "^Test digit_accuracy: " "$tmp/eval" && grep -q "^Test parity_accuracy: " "$tmp/eval" &&
	grep -q "^Test digit_LRAP: " "$tmp/eval"
check "eval reports each output (status $status, $(cat "$tmp/eval"))" $?
awk '/^Test loss:/ { t = $3 } /^Test digit_loss:/ { d = $3 } /^Test parity_loss:/ { p = $3 }
	END { x = t - (d + 0.5 * p); if (x < 0) x = -x; exit !(t > 0 && x <= 2e-4) }' "$tmp/eval"
check "eval's total loss is the weighted sum" $?
# The parity head learns what the digit head knows: well above chance after 2 short epochs.
awk '/^Test parity_accuracy:/ { exit !($3 > 0.7) }' "$tmp/eval"
check "the parity head learns ($(grep parity_accuracy "$tmp/eval"))" $?

# Metrics per output: the parity head without accuracy shows its loss only.
sed 's#^metrics: \[accuracy\]#metrics: {digit: [accuracy]}#' "$tmp/two.yaml" >"$tmp/digit_acc.yaml"
"$strata" eval "$tmp/digit_acc.yaml" --weights "$tmp/w.stw" >"$tmp/eval2" 2>&1
[ $? -eq 0 ] && grep -q "^Test digit_accuracy: " "$tmp/eval2" && grep -q "^Test parity_loss: " "$tmp/eval2" &&
	! grep -q "parity_accuracy" "$tmp/eval2"
check "metrics per output: accuracy where the output asks for it ($(cat "$tmp/eval2"))" $?

"$strata" predict "$tmp/two.yaml" --weights "$tmp/w.stw" --layer parity "$data/t10k-images-idx3-ubyte" >"$tmp/p" 2>&1
[ $? -eq 0 ] && [ "$(wc -l <"$tmp/p")" -eq 10000 ] && head -1 "$tmp/p" | grep -Eq '^0: class [01] \(0\.[0-9]+\)  \[[0-9.]+ [0-9.]+\]$'
check "predict --layer parity prints the parity head ($(head -1 "$tmp/p"))" $?
"$strata" predict "$tmp/two.yaml" --weights "$tmp/w.stw" "$data/t10k-images-idx3-ubyte" >"$tmp/p" 2>&1
[ $? -eq 0 ] && head -1 "$tmp/p" | grep -Eq '^0: class [0-9] \(0\.[0-9]+\)  \[([0-9.]+ ){9}[0-9.]+\]$'
check "predict without --layer prints the first output, the digit ($(head -1 "$tmp/p"))" $?
"$strata" predict "$tmp/two.yaml" --weights "$tmp/w.stw" --layer nope "$data/t10k-images-idx3-ubyte" >"$tmp/p" 2>&1
[ $? -eq 2 ] && grep -q "has no layer 'nope'; its layers: conv_3x3" "$tmp/p"
check "predict --layer of no layer exits 2, listing them ($(cat "$tmp/p"))" $?

# The data section's mistakes, at their place in the file.
sed 's#train_labels: {digit: \([^,]*\), parity: [^}]*}#train_labels: {digit: \1}#' "$tmp/two.yaml" >"$tmp/bad.yaml"
"$strata" train "$tmp/bad.yaml" --epochs 1 >"$tmp/out" 2>&1
[ $? -eq 2 ] && grep -q "bad.yaml:[0-9]*:[0-9]*: 'train_labels' names no file for output 'parity' (outputs: digit, parity)" "$tmp/out"
check "labels missing for an output with a loss: exit 2 at the place ($(cat "$tmp/out"))" $?
sed 's#num_classes: {digit: 10, parity: 2}#num_classes: {digit: 10, parity: 3}#' "$tmp/two.yaml" >"$tmp/bad.yaml"
"$strata" train "$tmp/bad.yaml" --epochs 1 --limit 100 >"$tmp/out" 2>&1
[ $? -eq 2 ] && grep -q "the training data has 3 classes, the model's output parity 2 values" "$tmp/out"
check "num_classes that do not match a head: exit 2 ($(cat "$tmp/out"))" $?

# A softmax over the last of two axes (dense on a (6, 4) input) makes a class vector per row; the
# losses take one per sample: refused, not trained on a wrong gradient. The data: 16 samples.
{ printf '\0\0\10\3\0\0\0\20\0\0\0\6\0\0\0\4'; head -c 384 /dev/zero | tr '\0' '\100'; } >"$tmp/rows"
{ printf '\0\0\10\1\0\0\0\20'; head -c 16 /dev/zero; } >"$tmp/rows-labels"
cat >"$tmp/rows.yaml" <<YAML
input: {shape: [6, 4]}
layers:
  - {type: dense, units: 3, activation: softmax}
loss: categorical_crossentropy
data: {train_images: $tmp/rows, train_labels: $tmp/rows-labels, num_classes: 18}
YAML
"$strata" train "$tmp/rows.yaml" --epochs 1 >"$tmp/out" 2>&1
status=$?
[ $status -ne 0 ] && grep -q "categorical_crossentropy on output 'dense_1': its softmax makes a class vector per row" "$tmp/out"
check "a softmax per row of a rank-2 output under crossentropy is refused (status $status: $(said))" $?

echo "$passes passed, $fails failed"
[ "$fails" -eq 0 ]
