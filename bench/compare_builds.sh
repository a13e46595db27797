#!/usr/bin/env bash
# Two builds of Strata on the Keras MNIST CNN, on this machine: `strata bench` of each, and
# PyTorch's as a yardstick of the machine's load, run alternately for ROUNDS rounds (so background
# load hits all alike); prints the median training and inference images/s of each build, the
# ratios after / before, and PyTorch's spread. For "a change must not slow the benchmarks": build
# the commit before the change beside the new one (git worktree add ../before COMMIT; meson setup
# ../before/build ../before; ninja -C ../before/build) and compare them in one run.
#
# usage: bench/compare_builds.sh BEFORE_BUILD_DIR AFTER_BUILD_DIR [ROUNDS]   (default 7)
# env:   STRATA_DEVICE, THREADS (default 2), BATCH (default: the model's), PYTHON (default /usr/bin/python3)
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
before=${1:?usage: compare_builds.sh BEFORE_BUILD_DIR AFTER_BUILD_DIR [ROUNDS]}
after=${2:?usage: compare_builds.sh BEFORE_BUILD_DIR AFTER_BUILD_DIR [ROUNDS]}
rounds=${3:-7}
threads=${THREADS:-2}
python=${PYTHON:-/usr/bin/python3}
for b in "$before" "$after"; do
	[ -x "$b/src/strata" ] || { echo "no $b/src/strata: build it first" >&2; exit 1; }
done
batch=()
[ -n "${BATCH:-}" ] && batch=(--batch-size "$BATCH")

out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
. "$root/bench/lib.sh"
echo "machine: $(lscpu | sed -n 's/^Model name: *//p' | head -1), $(nproc) cores"
echo "before: $before ($(cd "$before/.." && git rev-parse --short HEAD 2>/dev/null || echo '?'))"
echo "after:  $after ($(cd "$after/.." && git rev-parse --short HEAD 2>/dev/null || echo '?'))"
# The order within a round alternates too, so neither build always runs right after PyTorch.
for r in $(seq 1 "$rounds"); do
	OMP_NUM_THREADS=$threads "$python" "$root/bench/pytorch_mnist.py" --data "$root/data/mnist" \
		--threads "$threads" >"$out/torch$r" 2>&1
	if [ $((r % 2)) -eq 1 ]; then order="before after"; else order="after before"; fi
	for which in $order; do
		dir=$before
		[ "$which" = after ] && dir=$after
		"$dir/src/strata" bench "$root/models/mnist_cnn.yaml" --no-cold "${batch[@]}" >"$out/$which$r" 2>&1
	done
	printf 'round %s: before train %s infer %s | after train %s infer %s | PyTorch train %s img/s\n' "$r" \
		"$(value bench train_images_per_s "$out/before$r")" "$(value bench infer_images_per_s "$out/before$r")" \
		"$(value bench train_images_per_s "$out/after$r")" "$(value bench infer_images_per_s "$out/after$r")" \
		"$(value pytorch train_images_per_s "$out/torch$r")"
done

bt=$(collect bench train_images_per_s before)
bi=$(collect bench infer_images_per_s before)
at=$(collect bench train_images_per_s after)
ai=$(collect bench infer_images_per_s after)
bm=$(collect bench peak_host_mib before)
am=$(collect bench peak_host_mib after)
echo
printf '%-10s %12s %12s %8s\n' "median" "before" "after" "ratio"
printf '%-10s %12.1f %12.1f %8.3f\n' "training" "$bt" "$at" "$(awk -v a="$at" -v b="$bt" 'BEGIN { print a / b }')"
printf '%-10s %12.1f %12.1f %8.3f\n' "inference" "$bi" "$ai" "$(awk -v a="$ai" -v b="$bi" 'BEGIN { print a / b }')"
printf '%-10s %12.1f %12.1f\n' "peak MiB" "$bm" "$am"
for r in $(seq 1 "$rounds"); do value pytorch train_images_per_s "$out/torch$r"; done | sort -g |
	awk '{ v[NR] = $1 } END { printf "PyTorch training over the rounds: %.1f to %.1f img/s\n", v[1], v[NR] }'
