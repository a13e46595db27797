#!/usr/bin/env bash
# Strata against PyTorch on the Keras MNIST CNN, on this machine: both run alternately for a few
# rounds (so background load hits both alike), with the same batch size, thread count and data;
# prints each side's training and inference images/s, their ratios, peak host memory and
# Strata's time to the first batch.
#
# usage: bench/compare_pytorch.sh [ROUNDS]          (default 3)
# env:   STRATA_BUILD_DIR (default build), STRATA_DEVICE, TORCH_DEVICE (default cpu), THREADS (default 2),
#        PYTHON (default /usr/bin/python3, Debian's, whose torch this compares with)
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${STRATA_BUILD_DIR:-$root/build}
rounds=${1:-3}
threads=${THREADS:-2}
python=${PYTHON:-/usr/bin/python3}
[ -x "$build/src/strata" ] || { echo "build first: meson setup $build && meson compile -C $build" >&2; exit 1; }
"$python" -c 'import torch' 2>/dev/null || { echo "needs Debian's python3-torch: apt-get install python3-torch" >&2; exit 1; }

out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
. "$root/bench/lib.sh"

echo "machine: $(lscpu | sed -n 's/^Model name: *//p' | head -1), $(nproc) cores; $threads threads each"
blas_note
for r in $(seq 1 "$rounds"); do
	OMP_NUM_THREADS=$threads "$python" "$root/bench/pytorch_mnist.py" --data "$root/data/mnist" \
		--threads "$threads" --device "${TORCH_DEVICE:-cpu}" >"$out/torch$r" 2>&1
	cold=--no-cold
	[ "$r" -eq 1 ] && cold=
	"$build/src/strata" bench "$root/models/mnist_cnn.yaml" $cold >"$out/strata$r" 2>&1
	printf 'round %s: PyTorch train %s infer %s img/s | Strata train %s infer %s img/s\n' "$r" \
		"$(value pytorch train_images_per_s "$out/torch$r")" "$(value pytorch infer_images_per_s "$out/torch$r")" \
		"$(value bench train_images_per_s "$out/strata$r")" "$(value bench infer_images_per_s "$out/strata$r")"
done

pt=$(collect pytorch train_images_per_s torch)
pi=$(collect pytorch infer_images_per_s torch)
st=$(collect bench train_images_per_s strata)
si=$(collect bench infer_images_per_s strata)
echo
echo "PyTorch $(sed -n 's/^pytorch: version=//p' "$out/torch1")"
echo "Strata on $(value bench device "$out/strata1")"
printf '%-10s %12s %12s %8s\n' "" "PyTorch" "Strata" "ratio"
printf '%-10s %12.1f %12.1f %8.2f\n' "training" "$pt" "$st" "$(awk -v a="$st" -v b="$pt" 'BEGIN { print a / b }')"
printf '%-10s %12.1f %12.1f %8.2f\n' "inference" "$pi" "$si" "$(awk -v a="$si" -v b="$pi" 'BEGIN { print a / b }')"
printf 'peak host memory: PyTorch %s MiB, Strata %s MiB\n' "$(collect pytorch peak_host_mib torch)" \
	"$(collect bench peak_host_mib strata)"
printf 'Strata first trained batch: warm cache %s s, cold cache %s s\n' \
	"$(value bench first_batch_warm_s "$out/strata2" 2>/dev/null || true)" "$(value bench first_batch_cold_s "$out/strata1")"
