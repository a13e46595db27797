#!/usr/bin/env bash
# The full Keras MNIST CNN run, as the issue asks: 12 epochs for each of three seeds, printing
# each seed's test accuracy and loss, the time per epoch and the device. Long (tens of minutes
# per seed on a 2-core CPU): not part of the test suite.
#
# usage: bench/train_mnist.sh [MODEL.yaml] [SEEDS...]     (defaults: models/mnist_cnn.yaml 1 2 3)
# env:   STRATA_BUILD_DIR (default build), STRATA_DEVICE, EPOCHS (default: the model's)
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${STRATA_BUILD_DIR:-$root/build}
strata="$build/src/strata"
model=${1:-$root/models/mnist_cnn.yaml}
shift || true
seeds=("$@")
[ ${#seeds[@]} -gt 0 ] || seeds=(1 2 3)
[ -x "$strata" ] || { echo "build first: meson setup $build && meson compile -C $build" >&2; exit 1; }

out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
echo "machine: $(lscpu 2>/dev/null | sed -n 's/^Model name: *//p' | head -1), $(nproc) cores"
epochs_arg=()
[ -n "${EPOCHS:-}" ] && epochs_arg=(--epochs "$EPOCHS")

printf '%-6s %-10s %-10s %-10s %-14s %s\n' seed test_acc test_loss test_lrap s_per_epoch device
for seed in "${seeds[@]}"; do
	log="$out/seed$seed.log"
	start=$(date +%s)
	"$strata" train "$model" --seed "$seed" "${epochs_arg[@]}" --save "$out/seed$seed.stw" >"$log" 2>&1 || {
		echo "seed $seed failed:" >&2
		tail -5 "$log" >&2
		exit 1
	}
	end=$(date +%s)
	epochs=$(grep -c '^Epoch ' "$log")
	device=$(sed -n 's/^Training .* on \(.*\): [0-9]* samples.*/\1/p' "$log")
	acc=$(sed -n 's/^Test accuracy: //p' "$log")
	loss=$(sed -n 's/^Test loss: //p' "$log")
	lrap=$(sed -n 's/^Test LRAP: //p' "$log")
	printf '%-6s %-10s %-10s %-10s %-14s %s\n' "$seed" "$acc" "$loss" "$lrap" \
		"$(awk -v t=$((end - start)) -v e="$epochs" 'BEGIN { printf "%.1f", t / e }')" "$device"
	grep -E '^Epoch|val_accuracy' "$log" | paste - - | sed 's/^/    /' | sed 's/\[=*\] - //'
done
