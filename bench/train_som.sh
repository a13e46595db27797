#!/usr/bin/env bash
# Issue 15's self-organizing map proof: models/mnist_som.yaml (a 10x10 map of MNIST digits)
# trained by Strata, and bench/som_reference.py, the same update rule in NumPy from the same
# initial codebook in the same sample order; their test-set quantization error, topographic error
# and purity side by side, with each one's training speed, then the codebook and U-matrix
# pictures (strata visualize --codebook). A few minutes on a 2-core CPU.
#
# usage: bench/train_som.sh [--out DIR (runs/som)] [--picture DIR (where to copy the two PNGs)]
# env:   STRATA_BUILD_DIR (default build), PYTHON (default /usr/bin/python3)
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${STRATA_BUILD_DIR:-$root/build}
python=${PYTHON:-/usr/bin/python3}
out=$root/runs/som
picture=
while [ $# -gt 0 ]; do
	case $1 in
	--out) out=$2; shift 2 ;;
	--picture) picture=$2; shift 2 ;;
	*) echo "usage: $0 [--out DIR] [--picture DIR]" >&2; exit 2 ;;
	esac
done
[ -x "$build/src/strata" ] || { echo "build first: meson setup $build && meson compile -C $build" >&2; exit 1; }
"$python" -c 'import numpy' 2>/dev/null || { echo "needs NumPy: apt-get install python3-numpy" >&2; exit 1; }
mkdir -p "$out"
model=$root/models/mnist_som.yaml
echo "machine: $(lscpu | sed -n 's/^Model name: *//p' | head -1), $(nproc) cores"

# The reference takes the model file's settings; these mirror it (som layer and training section).
param() { sed -n "s/.*[{ ,]$1: \([^,}]*\).*/\1/p" "$model" | head -1; }
rows=$(param rows) columns=$(param columns) sigma=$(param sigma) rate=$(param learning_rate)
epochs=$(param epochs) batch=$(param batch_size)
[ "$(param initializer)" = pca ] && [ "$(param shuffle)" = false ] ||
	{ echo "$model: the reference replays pca initialization and file order only" >&2; exit 1; }

start=$(date +%s.%N)
"$build/src/strata" train "$model" --save "$out/mnist_som.stw" >"$out/strata.txt" 2>&1
strata_s=$(echo "$(date +%s.%N) - $start" | bc)
"$python" "$root/bench/som_reference.py" --data "$root/data/mnist" --rows "$rows" --columns "$columns" \
	--sigma "$sigma" --learning-rate "$rate" --epochs "$epochs" --batch-size "$batch" \
	--save "$out/reference_codebook.npy" >"$out/numpy.txt"

s_qe=$(sed -n 's/^Test quantization error: //p' "$out/strata.txt")
s_te=$(sed -n 's/^Test topographic error: //p' "$out/strata.txt")
s_pu=$(sed -n 's/^Test purity: //p' "$out/strata.txt")
s_used=$(sed -n 's/^Units used: \([0-9]*\).*/\1/p' "$out/strata.txt")
read -r n_qe n_te n_pu n_used n_s n_rate < <(sed -n 's/^numpy: quantization_error=\([^ ]*\) topographic_error=\([^ ]*\) purity=\([^ ]*\) units_used=\([^ ]*\) seconds=\([^ ]*\) train_images_per_s=\([^ ]*\)/\1 \2 \3 \4 \5 \6/p' "$out/numpy.txt")
# Strata's training speed: its log's last epoch row (seconds of all epochs, validation included).
s_train=$(awk -F, 'END { print $8 }' "$out/mnist_som.csv")
echo "mnist_som: ${rows}x${columns} map, $epochs epochs of batch $batch (test set of 10,000)"
printf '  %-22s %10s %10s %10s\n' "" Strata NumPy "difference"
awk -v a="$s_qe" -v b="$n_qe" 'BEGIN { printf "  %-22s %10.4f %10.4f %9.2f%%\n", "quantization error", a, b, 100 * (a - b) / b }'
awk -v a="$s_te" -v b="$n_te" 'BEGIN { printf "  %-22s %10.4f %10.4f %+9.4f\n", "topographic error", a, b, a - b }'
awk -v a="$s_pu" -v b="$n_pu" 'BEGIN { printf "  %-22s %10.4f %10.4f %+9.4f\n", "purity", a, b, a - b }'
printf '  %-22s %10s %10s\n' "units used" "$s_used" "$n_used"
awk -v s="$s_train" -v e="$epochs" -v n="$n_rate" 'BEGIN { printf "  %-22s %10.0f %10.0f %9.2fx\n", "training images/s", e * 60000 / s, n, e * 60000 / s / n }'
echo "  (Strata's wall time with start-up and evaluations: ${strata_s%.*} s; its images/s include each epoch's test-set evaluation)"

"$build/src/strata" visualize "$model" --weights "$out/mnist_som.stw" --codebook -o "$out/mnist_som_codebook.png"
if [ -n "$picture" ]; then
	cp "$out/mnist_som_codebook.png" "$out/mnist_som_codebook_umatrix.png" "$picture/"
	echo "copied the pictures to $picture"
fi
