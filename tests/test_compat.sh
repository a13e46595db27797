#!/bin/sh
# Files of Strata 0.1 (before graph models) still work: a sequential model and the checkpoint
# that release wrote (tests/data/release_0.1) load unchanged, evaluate to the figures that
# release printed, and a run resumes from the checkpoint's optimizer state.
set -u
. "$(dirname "$0")/lib.sh"
private_cache
old="$src/data/release_0.1"
[ -d "$src/../data/mnist" ] || { echo "FAIL: $src/../data/mnist is missing: run scripts/fetch-mnist.sh"; exit 1; }

"$strata" eval "$old/small_cnn.yaml" --weights "$old/small_cnn.stw" >"$tmp/eval" 2>&1
check "eval of the 0.1 checkpoint exits 0 ($(tail -3 "$tmp/eval"))" $?
for line in "Test loss" "Test accuracy" "Test LRAP"; do
	want=$(grep "^$line:" "$old/eval.txt")
	grep -qx "$want" "$tmp/eval"
	check "$want, as 0.1 printed it (got $(grep "^$line:" "$tmp/eval"))" $?
done
"$strata" summary "$old/small_cnn.yaml" >"$tmp/summary" 2>&1 && ! grep -q "Connected to" "$tmp/summary" &&
	grep -q "Total params: 782" "$tmp/summary"
check "a sequential model keeps Keras' Sequential summary" $?

cp "$old/small_cnn.stw" "$tmp/w.stw"
"$strata" train "$old/small_cnn.yaml" --limit 2048 --epochs 2 --resume "$tmp/w.stw" --save "$tmp/w.stw" \
	--log "$tmp/w.csv" >"$tmp/train" 2>&1
check "training resumes from the 0.1 checkpoint ($(tail -2 "$tmp/train"))" $?
grep -q "^Epoch 2/2" "$tmp/train" && ! grep -q "^Epoch 1/2" "$tmp/train"
check "the resumed run starts at epoch 2" $?
cmp -s "$old/small_cnn.stw" "$tmp/w.stw"
[ $? -ne 0 ]
check "the resumed run saved new weights" $?

echo "$passes passed, $fails failed"
[ "$fails" -eq 0 ]
