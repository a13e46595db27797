#!/usr/bin/env bash
# The 'valgrind' suite: `strata summary`, a short `strata train` (one epoch of 512 samples, a small
# convolutional network) and `strata eval` of the weights it saved, each under valgrind's memcheck.
# Fails when valgrind reports an error that tests/sanitizers/valgrind.supp does not suppress (an
# invalid read or write, a jump on an uninitialised value, a bad free, a definite leak), or when a
# command fails. The data are made here (python3, as meson), so the test needs no download.
#
# PoCL's kernel compiler (LLVM) under valgrind takes over fifteen minutes for this model's programs,
# so a native run of the same `strata train` first fills a cache folder of this test's own; the runs
# under valgrind then load every program from disk (Strata's and PoCL's caches). The build path of
# the program cache is checked by the sanitizer build's tests instead (tests/sanitizers/README.md).
#
# Usage: test_valgrind.sh VALGRIND [OPTION...]   (meson passes tests/sanitizers/meson.build's options)
# In the valgrind test setup meson runs this script itself under valgrind too; it watches only the
# shell then (no --trace-children), and the commands below get valgrind from here.
set -u
[ $# -ge 1 ] || { echo "usage: test_valgrind.sh VALGRIND [OPTION...]" >&2; exit 2; }
strata=${STRATA_EXE:?run through meson test}
valgrind=("$@")
tmp=$(mktemp -d "${TMPDIR:-/tmp}/strata-valgrind.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT
export XDG_CACHE_HOME="$tmp/cache"
# Valgrind 3.19 has no AVX-512: under it Debian's PoCL picks its AVX2 kernel library (the device
# "pthread-haswell-...", or "basic-haswell-..." under scripts/test.sh), natively the host's best
# one. The native run must build for the same device for the cache to serve the runs under valgrind.
if grep -qw avx2 /proc/cpuinfo 2>/dev/null; then
	export POCL_KERNELLIB_NAME=avx2
fi
# Under the valgrind test setup the shell's environment may carry valgrind's own preloads.
unset LD_PRELOAD
fails=0

fail() {
	echo "FAIL: $*"
	fails=$((fails + 1))
}

# 512 training and 128 test images of 16 x 16 pixels, 4 classes: a bright square in one of the
# four quadrants, over noise (a fixed seed).
python3 - "$tmp" <<'EOF' || { echo "test_valgrind.sh: python3 could not write the data"; exit 1; }
import random, struct, sys
d = sys.argv[1]
rng = random.Random(1)
for part, n in (("train", 512), ("test", 128)):
	labels = bytes(rng.randrange(4) for _ in range(n))
	images = bytearray()
	for c in labels:
		img = [rng.randrange(64) for _ in range(256)]
		y0, x0 = 8 * (c // 2), 8 * (c % 2)
		for y in range(y0 + 2, y0 + 6):
			for x in range(x0 + 2, x0 + 6):
				img[16 * y + x] = 200 + rng.randrange(56)
		images += bytes(img)
	with open(f"{d}/{part}-images", "wb") as f:
		f.write(struct.pack(">IIII", 0x803, n, 16, 16) + images)
	with open(f"{d}/{part}-labels", "wb") as f:
		f.write(struct.pack(">II", 0x801, n) + labels)
EOF
cat >"$tmp/small.yaml" <<'YAML'
name: small
input: {shape: [16, 16, 1]}
layers:
  - {type: conv2d, filters: 4, kernel_size: 3, activation: relu}
  - {type: maxpool2d}
  - {type: dropout, rate: 0.25}
  - {type: flatten}
  - {type: dense, units: 4, activation: softmax}
loss: categorical_crossentropy
optimizer: adadelta
metrics: [accuracy]
data: {train_images: train-images, train_labels: train-labels, test_images: test-images,
       test_labels: test-labels, scale: 0.00392156862745098, num_classes: 4}
training: {batch_size: 64, epochs: 1, seed: 1}
YAML

echo "== native: strata train (fills the program caches)"
if ! "$strata" train "$tmp/small.yaml" --epochs 1 --limit 512 --save "$tmp/native.stw" \
	>"$tmp/native.out" 2>&1; then
	cat "$tmp/native.out"
	echo "test_valgrind.sh: strata train fails without valgrind; nothing to check under it"
	exit 1
fi

# vg NAME ARGS...: `strata ARGS` under memcheck, its output in $tmp/NAME.out and valgrind's log in
# $tmp/NAME.log; fails on the command's failure and on any error valgrind reports.
vg() {
	local name=$1 status=0 errors log
	shift
	log=$tmp/$name.log
	echo "== valgrind: strata $*"
	"${valgrind[@]}" --log-file="$log" "$strata" "$@" >"$tmp/$name.out" 2>&1 || status=$?
	errors=$(sed -n 's/^==[0-9]*== ERROR SUMMARY: \([0-9]*\) errors.*/\1/p' "$log" | tail -n 1)
	if [ -z "$errors" ]; then
		fail "$name: valgrind did not finish (status $status); its log and strata's output:"
		cat "$log" "$tmp/$name.out"
	elif [ "$errors" -ne 0 ]; then
		fail "$name: valgrind reports $errors error(s) (status $status); its log:"
		cat "$log"
	elif [ "$status" -ne 0 ]; then
		fail "$name: strata exited with status $status; its output:"
		cat "$tmp/$name.out"
	else
		echo "$name: no error; $(grep -m1 'definitely lost' "$log" | sed 's/^==[0-9]*== *//')"
	fi
}

vg summary summary "$tmp/small.yaml"
grep -q 'Total params' "$tmp/summary.out" || fail "strata summary printed no parameter count"
vg train train "$tmp/small.yaml" --epochs 1 --limit 512 --save "$tmp/w.stw"
[ -s "$tmp/w.stw" ] || fail "strata train under valgrind saved no weights"
vg eval eval "$tmp/small.yaml" --weights "$tmp/w.stw"
grep -q 'Test accuracy' "$tmp/eval.out" || fail "strata eval printed no test accuracy"

if [ "$fails" -ne 0 ]; then
	echo "$fails check(s) failed"
	exit 1
fi
echo "summary, train and eval: no memcheck error"
