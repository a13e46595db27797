#!/bin/sh
# Issue 14's proof for the models with batch normalization and depthwise convolutions
# (models/mobilenet_mini.yaml, models/mnist_resnet_bn.yaml): one training epoch on the whole of
# MNIST lowers the loss (the first batch's against the epoch's mean and the test loss), and the
# trained weights give the same outputs in a PyTorch re-implementation of each model
# (bench/pytorch_reference.py: BatchNormalization at inference from the moving statistics,
# DepthwiseConv2D as a grouped convolution, TensorFlow's 'same' padding) within 1e-4 on 1,000 test
# images. Prints one line per model and writes the runs' logs under OUT (default a temporary folder).
# Usage: bench/cnn_models.sh [--strata build/src/strata] [--epochs 1] [--out DIR] [MODEL ...]
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
strata=$root/build/src/strata
epochs=1
out=""
while [ $# -gt 0 ]; do
	case $1 in
	--strata) strata=$2; shift 2 ;;
	--epochs) epochs=$2; shift 2 ;;
	--out) out=$2; shift 2 ;;
	-*) echo "usage: $0 [--strata PATH] [--epochs N] [--out DIR] [MODEL ...]" >&2; exit 2 ;;
	*) break ;;
	esac
done
[ $# -gt 0 ] || set -- mobilenet_mini mnist_resnet_bn
[ -n "$out" ] || out=$(mktemp -d "${TMPDIR:-/tmp}/strata-cnn-models.XXXXXX")
mkdir -p "$out"
echo "machine: $(uname -m), $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')"
status=0
for model in "$@"; do
	yaml=$root/models/$model.yaml
	start=$(date +%s)
	"$strata" train "$yaml" --epochs "$epochs" --save "$out/$model.stw" >"$out/$model.train.txt" 2>&1 || {
		echo "$model: training failed (see $out/$model.train.txt)"
		status=1
		continue
	}
	seconds=$(($(date +%s) - start))
	first=$(awk -F, 'NR == 2 { print $3 }' "$out/$model.csv")
	mean=$(awk -F, 'END { print $3 }' "$out/$model.csv")
	rate=$(awk -F, 'END { print $7 }' "$out/$model.csv")
	test_loss=$(sed -n 's/^Test loss: //p' "$out/$model.train.txt")
	test_acc=$(sed -n 's/^Test accuracy: //p' "$out/$model.train.txt")
	/usr/bin/python3 "$root/bench/pytorch_reference.py" "$yaml" "$out/$model.stw" --strata "$strata" --images 1000 \
		>"$out/$model.torch.txt" 2>&1 || status=1
	agree=$(sed -n 's/^\(PASS\|FAIL\): largest absolute difference \([^ ]*\).*/\1 \2/p' "$out/$model.torch.txt")
	echo "$model: $epochs epoch(s) in ${seconds} s ($rate img/s): loss first batch $first, epoch mean $mean;" \
		"test loss $test_loss, accuracy $test_acc; PyTorch agreement: ${agree:-none (see $out/$model.torch.txt)}"
done
echo "logs: $out"
exit $status
