#!/usr/bin/env bash
# Issue 15's sequence proofs against PyTorch on this machine: models/mnist_lstm.yaml, mnist_gru.yaml
# and mnist_simple_rnn.yaml (MNIST as 28 rows of 28 pixels, 128 units, dense softmax) trained by
# Strata and by bench/pytorch_rnn.py (the same network, initializers, optimizer, batch and epochs)
# one after the other, each epoch's test accuracy and images/s side by side; then `strata bench`
# against PyTorch's timed windows, alternating for a few rounds, as bench/compare_pytorch.sh does.
# With --text, models/spam_bigru.yaml (scripts/fetch-spam.sh's data) against bench/pytorch_text.py
# the same way, its epochs' test accuracy and documents/s.
# Tens of minutes per model on a 2-core CPU: run it on a quiet machine.
#
# usage: bench/train_issue15.sh [--cells "lstm gru simple_rnn"] [--epochs N (the model's, 12)] [--rounds N (3)]
#                               [--skip-training] [--text] [--out DIR (runs/issue15)]
# env:   STRATA_BUILD_DIR (default build), THREADS (default 2), PYTHON (default /usr/bin/python3)
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${STRATA_BUILD_DIR:-$root/build}
threads=${THREADS:-2}
python=${PYTHON:-/usr/bin/python3}
cells="lstm gru simple_rnn"
epochs=12
rounds=3
train=1
text=0
out=$root/runs/issue15
while [ $# -gt 0 ]; do
	case $1 in
	--cells) cells=$2; shift 2 ;;
	--epochs) epochs=$2; shift 2 ;;
	--rounds) rounds=$2; shift 2 ;;
	--skip-training) train=0; shift ;;
	--text) text=1; shift ;;
	--out) out=$2; shift 2 ;;
	*) echo "usage: $0 [--cells \"lstm gru simple_rnn\"] [--epochs N] [--rounds N] [--skip-training] [--text] [--out DIR]" >&2; exit 2 ;;
	esac
done
[ -x "$build/src/strata" ] || { echo "build first: meson setup $build && meson compile -C $build" >&2; exit 1; }
"$python" -c 'import torch' 2>/dev/null || { echo "needs Debian's python3-torch: apt-get install python3-torch" >&2; exit 1; }
mkdir -p "$out"
. "$root/bench/lib.sh"
echo "machine: $(lscpu | sed -n 's/^Model name: *//p' | head -1), $(nproc) cores; $threads threads each"
blas_note

# The model file's recipe for PyTorch's twin: its recurrent layer's input dropout and (simple_rnn)
# relu activation, global_clipnorm, and a cosine decay of Adam's rate to 0 over the run.
torch_recipe() {
	local d c
	d=$(sed -n 's/.*type: \(simple_rnn\|lstm\|gru\),.* dropout: \([0-9.]*\).*/\2/p' "$1" | head -1)
	c=$(sed -n 's/.*global_clipnorm: \([0-9.]*\).*/\1/p' "$1" | head -1)
	[ -n "$d" ] && printf -- '--dropout %s ' "$d"
	[ -n "$c" ] && printf -- '--global-clipnorm %s ' "$c"
	grep -q 'type: simple_rnn,.* activation: relu' "$1" && printf -- '--activation relu '
	grep -q 'cosine_decay' "$1" && printf -- '--cosine'
	return 0
}

for cell in $cells; do
	model=$root/models/mnist_$cell.yaml
	if [ "$train" -eq 1 ]; then
		start=$(date +%s)
		"$build/src/strata" train "$model" --epochs "$epochs" --save "$out/$cell.stw" >"$out/$cell.strata.txt" 2>&1
		strata_s=$(($(date +%s) - start))
		# shellcheck disable=SC2046 # the recipe's options, word by word
		OMP_NUM_THREADS=$threads "$python" "$root/bench/pytorch_rnn.py" --cell "$cell" --data "$root/data/mnist" \
			--epochs "$epochs" --threads "$threads" $(torch_recipe "$model") >"$out/$cell.torch.txt" 2>&1
		echo "mnist_$cell, $epochs epochs (test accuracy, training images/s):"
		printf '  %-6s %10s %10s %12s %12s\n' epoch Strata PyTorch "Strata img/s" "PyTorch img/s"
		# Strata's log: the last row of each epoch holds its validation figures and elapsed seconds.
		awk -F, 'NR > 1 && $6 != "" { acc[$1] = $6; t[$1] = $8 } END {
			prev = 0; for (e = 1; e in acc; e++) { printf "%s %s %.1f\n", e, acc[e], 60000 / (t[e] - prev); prev = t[e] } }' \
			"$out/$cell.csv" >"$out/$cell.strata.epochs"
		sed -n 's/^pytorch: epoch=\([0-9]*\) test_accuracy=\([0-9.]*\) train_images_per_s=\([0-9.]*\).*/\1 \2 \3/p' \
			"$out/$cell.torch.txt" >"$out/$cell.torch.epochs"
		join "$out/$cell.strata.epochs" "$out/$cell.torch.epochs" |
			awk '{ printf "  %-6s %10s %10s %12s %12s\n", $1, $2, $4, $3, $5 }'
		echo "  Strata: $(sed -n 's/^Test accuracy: //p' "$out/$cell.strata.txt") in $strata_s s (with its per-epoch evaluations)"
	fi
	for r in $(seq 1 "$rounds"); do
		OMP_NUM_THREADS=$threads "$python" "$root/bench/pytorch_rnn.py" --cell "$cell" --data "$root/data/mnist" \
			--threads "$threads" >"$out/torch$r" 2>&1
		"$build/src/strata" bench "$model" --no-cold >"$out/strata$r" 2>&1
	done
	pt=$(collect pytorch train_images_per_s torch)
	pi=$(collect pytorch infer_images_per_s torch)
	st=$(collect bench train_images_per_s strata)
	si=$(collect bench infer_images_per_s strata)
	echo "mnist_$cell speed, median of $rounds rounds (images/s; Strata on $(value bench device "$out/strata1"), PyTorch $(value pytorch version "$out/torch1")):"
	printf '  %-10s %10s %10s %8s\n' "" PyTorch Strata ratio
	printf '  %-10s %10.1f %10.1f %8.2f\n' training "$pt" "$st" "$(awk -v a="$st" -v b="$pt" 'BEGIN { print a / b }')"
	printf '  %-10s %10.1f %10.1f %8.2f\n' inference "$pi" "$si" "$(awk -v a="$si" -v b="$pi" 'BEGIN { print a / b }')"
done

if [ "$text" -eq 1 ]; then
	"$root/scripts/fetch-spam.sh"
	start=$(date +%s)
	"$build/src/strata" train "$root/models/spam_bigru.yaml" --save "$out/spam.stw" >"$out/spam.strata.txt" 2>&1
	strata_s=$(($(date +%s) - start))
	OMP_NUM_THREADS=$threads "$python" "$root/bench/pytorch_text.py" --data "$root/data/spam" --threads "$threads" \
		>"$out/spam.torch.txt" 2>&1
	n=$(($(stat -c %s "$root/data/spam/train-labels.idx") - 8))
	echo "spam_bigru (test accuracy, training documents/s):"
	printf '  %-6s %10s %10s %12s %12s\n' epoch Strata PyTorch "Strata doc/s" "PyTorch doc/s"
	awk -F, -v n="$n" 'NR > 1 && $6 != "" { acc[$1] = $6; t[$1] = $8 } END {
		prev = 0; for (e = 1; e in acc; e++) { printf "%s %s %.1f\n", e, acc[e], n / (t[e] - prev); prev = t[e] } }' \
		"$out/spam.csv" >"$out/spam.strata.epochs"
	sed -n 's/^pytorch: epoch=\([0-9]*\) test_accuracy=\([0-9.]*\) train_docs_per_s=\([0-9.]*\).*/\1 \2 \3/p' \
		"$out/spam.torch.txt" >"$out/spam.torch.epochs"
	join "$out/spam.strata.epochs" "$out/spam.torch.epochs" |
		awk '{ printf "  %-6s %10s %10s %12s %12s\n", $1, $2, $4, $3, $5 }'
	echo "  Strata: $(sed -n 's/^Test accuracy: //p' "$out/spam.strata.txt") in $strata_s s (with its per-epoch evaluations)"
fi
