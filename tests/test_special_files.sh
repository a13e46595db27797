#!/bin/sh
# Special files and files larger than their headers describe, given where `strata` reads a file:
# a weights file (--weights), a --resume file, a model's init_from file, a picture to predict, a
# CSV log to plot, a `.so` in a plugin folder. A FIFO must not block (open() waited for a writer
# forever), /dev/zero and 64 GiB sparse files (truncate -s 64G: no disk space) must not be read
# whole: each is refused at once, with a message that names the file. And a checkpoint whose
# counters would wrap (an epoch of 2^64 - 1, with a valid checksum) is refused on resume, with
# the --save target and its log left byte for byte as they were. Every command runs under
# `timeout 20`, so that a regression fails instead of hanging.
set -u
. "$(dirname "$0")/lib.sh"
said() { head -c 600 "$tmp/out" | tr '\n' ' '; }
huge=68719476736 # 64 GiB

# refused NAME STATUS PATTERN FILE COMMAND...: COMMAND exits with STATUS within 20 s, and its
# message names FILE and matches the extended regular expression PATTERN.
refused() {
	name=$1
	want=$2
	pattern=$3
	file=$4
	shift 4
	start=$(date +%s)
	timeout 20 "$@" >"$tmp/out" 2>&1 </dev/null
	status=$?
	secs=$(($(date +%s) - start))
	[ $status -eq "$want" ] && grep -qF -- "$file" "$tmp/out" && grep -Eq -- "$pattern" "$tmp/out"
	check "$name: status $want within 20 s, naming $file (status $status after ${secs} s: $(said))" $?
}

mnist_mlp "$tmp/mlp.yaml" special_mlp 16 64 1 3 || exit 1
"$strata" train "$tmp/mlp.yaml" --limit 256 --save "$tmp/w.stw" >"$tmp/out" 2>&1
check "a small model trains for the cases below ($(said))" $?
size=$(stat -c %s "$tmp/w.stw")
data=$(cd "$src/../data/mnist" && pwd)
{ printf 'P5\n28 28\n255\n'; tail -c +17 "$data/t10k-images-idx3-ubyte" | head -c 784; } >"$tmp/digit.pgm"
"$strata" predict "$tmp/mlp.yaml" --weights "$tmp/w.stw" "$tmp/digit.pgm" >"$tmp/out" 2>&1
check "the PGM picture predicts ($(said))" $?

# The model again, its weights taken from FILE by init_from.
init_from() { # FILE: writes $tmp/init.yaml
	sed "s|^training:|init_from: $1\ntraining:|" "$tmp/mlp.yaml" >"$tmp/init.yaml"
}
init_from "$tmp/w.stw"
timeout 20 "$strata" train "$tmp/init.yaml" --limit 64 >"$tmp/out" 2>&1
check "init_from takes a regular weights file ($(said))" $?

# ---- FIFOs ----------------------------------------------------------------------------------------
fifo_said="is a FIFO \(named pipe\), not a regular file"
mkfifo "$tmp/fifo.stw" "$tmp/fifo.png" "$tmp/fifo.pgm" "$tmp/fifo.csv"
refused "--weights FIFO" 2 "$fifo_said" "$tmp/fifo.stw" \
	"$strata" eval "$tmp/mlp.yaml" --weights "$tmp/fifo.stw"
refused "--resume FIFO" 2 "$fifo_said" "$tmp/fifo.stw" \
	"$strata" train "$tmp/mlp.yaml" --limit 64 --resume "$tmp/fifo.stw" --save "$tmp/fifo_save.stw"
[ ! -e "$tmp/fifo_save.stw" ]
check "a refused --resume writes no --save target" $?
init_from "$tmp/fifo.stw"
refused "init_from FIFO" 2 "init_from: .*$fifo_said" "$tmp/fifo.stw" \
	"$strata" train "$tmp/init.yaml" --limit 64
refused "predict on a FIFO .png" 2 "$fifo_said" "$tmp/fifo.png" \
	"$strata" predict "$tmp/mlp.yaml" --weights "$tmp/w.stw" "$tmp/fifo.png"
refused "predict on a FIFO .pgm" 2 "$fifo_said" "$tmp/fifo.pgm" \
	"$strata" predict "$tmp/mlp.yaml" --weights "$tmp/w.stw" "$tmp/fifo.pgm"
refused "plot a FIFO" 2 "$fifo_said" "$tmp/fifo.csv" \
	"$strata" plot "$tmp/fifo.csv" -o "$tmp/fifo_plot.png"
# A FIFO in a plugin folder is an error naming it, like any plugin that cannot load; a symlink to
# a real plugin beside it still loads (the folder with only the link).
mkdir "$tmp/plugins" "$tmp/linked"
mkfifo "$tmp/plugins/x.so"
refused "a FIFO x.so in --plugin-path" 1 "cannot load plugin .*: it $fifo_said" "$tmp/plugins/x.so" \
	"$strata" layers --plugin-path "$tmp/plugins"
ln -s "${STRATA_TEST_PLUGIN_GOOD:?run through meson test}" "$tmp/linked/good.so"
timeout 20 "$strata" layers --plugin-path "$tmp/linked" >"$tmp/out" 2>&1 && grep -q test_identity "$tmp/out"
check "a symlink to a plugin in --plugin-path still loads ($(said))" $?

# ---- /dev/zero ----------------------------------------------------------------------------------
zero_said="/dev/zero is a character device, not a regular file"
refused "--weights /dev/zero" 2 "$zero_said" /dev/zero \
	"$strata" eval "$tmp/mlp.yaml" --weights /dev/zero
refused "--resume /dev/zero" 2 "$zero_said" /dev/zero \
	"$strata" train "$tmp/mlp.yaml" --limit 64 --resume /dev/zero
init_from /dev/zero
refused "init_from /dev/zero" 2 "init_from: $zero_said" /dev/zero \
	"$strata" train "$tmp/init.yaml" --limit 64
refused "predict on /dev/zero" 2 "$zero_said" /dev/zero \
	"$strata" predict "$tmp/mlp.yaml" --weights "$tmp/w.stw" /dev/zero
refused "plot /dev/zero" 2 "$zero_said" /dev/zero \
	"$strata" plot /dev/zero -o "$tmp/zero_plot.png"

# ---- 64 GiB sparse files --------------------------------------------------------------------------
# A real file grown by truncate: its header is good, its size is not what the header describes.
cp "$tmp/w.stw" "$tmp/sparse.stw"
truncate -s 64G "$tmp/sparse.stw"
sparse_said="$((huge - size)) trailing bytes: its headers describe $size bytes, the file has $huge"
refused "--weights a 64 GiB sparse checkpoint" 2 "$sparse_said" "$tmp/sparse.stw" \
	"$strata" eval "$tmp/mlp.yaml" --weights "$tmp/sparse.stw"
refused "--resume a 64 GiB sparse checkpoint" 2 "$sparse_said" "$tmp/sparse.stw" \
	"$strata" train "$tmp/mlp.yaml" --limit 64 --resume "$tmp/sparse.stw"
init_from "$tmp/sparse.stw"
refused "init_from a 64 GiB sparse checkpoint" 2 "init_from: .*$sparse_said" "$tmp/sparse.stw" \
	"$strata" train "$tmp/init.yaml" --limit 64
# All zeros: no weights file by its first bytes.
truncate -s 64G "$tmp/zeros.stw"
refused "--weights 64 GiB of zeros" 2 "not a Strata weights file" "$tmp/zeros.stw" \
	"$strata" eval "$tmp/mlp.yaml" --weights "$tmp/zeros.stw"
cp "$tmp/digit.pgm" "$tmp/sparse.pgm"
truncate -s 64G "$tmp/sparse.pgm"
refused "predict on a 64 GiB sparse PGM" 1 "$huge bytes, more than the $((13 + 784)) bytes that its PGM header allows" \
	"$tmp/sparse.pgm" "$strata" predict "$tmp/mlp.yaml" --weights "$tmp/w.stw" "$tmp/sparse.pgm"
cp "$tmp/w.csv" "$tmp/sparse.csv"
truncate -s 64G "$tmp/sparse.csv"
refused "plot a 64 GiB sparse CSV" 2 "$huge bytes, more than the 67108864 bytes a training log may have" \
	"$tmp/sparse.csv" "$strata" plot "$tmp/sparse.csv" -o "$tmp/sparse_plot.png"
rm -f "$tmp/sparse.stw" "$tmp/zeros.stw" "$tmp/sparse.pgm" "$tmp/sparse.csv"

# ---- Counters that wrap -----------------------------------------------------------------------------
# patched FILE OFFSET VALUE: a copy of w.stw with the u64 at OFFSET set to VALUE and a valid crc32.
patched() {
	python3 - "$tmp/w.stw" "$1" "$2" "$3" <<'PY'
import struct, sys, zlib
src, dst, offset, value = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
b = bytearray(open(src, "rb").read())
b[offset:offset + 8] = struct.pack("<Q", value)
b[-4:] = struct.pack("<I", zlib.crc32(bytes(b[:-4])) & 0xffffffff)
open(dst, "wb").write(b)
PY
}
# Offsets: epoch at 16, step at 24 (magic, version, flags before them).
patched "$tmp/epoch.stw" 16 18446744073709551615
patched "$tmp/step.stw" 24 18446744073709551615
cp "$tmp/w.stw" "$tmp/target.stw"
cp "$tmp/w.csv" "$tmp/target.csv"
for what in epoch step; do
	refused "--resume a checkpoint whose $what is 2^64 - 1" 2 "the $what is 18446744073709551615, more than the" \
		"$tmp/$what.stw" "$strata" train "$tmp/mlp.yaml" --limit 256 --epochs 2 --resume "$tmp/$what.stw" \
		--save "$tmp/target.stw"
	! grep -q "^Epoch" "$tmp/out" && cmp -s "$tmp/target.stw" "$tmp/w.stw" && cmp -s "$tmp/target.csv" "$tmp/w.csv"
	check "a refused resume ($what) trains nothing and leaves the --save target and its log as they were" $?
done
# Resumed onto itself: the file stays as it was.
cp "$tmp/epoch.stw" "$tmp/self.stw"
refused "--resume and --save the same checkpoint whose epoch wraps" 2 "the epoch is 18446744073709551615" \
	"$tmp/self.stw" "$strata" train "$tmp/mlp.yaml" --limit 256 --epochs 2 --resume "$tmp/self.stw" \
	--save "$tmp/self.stw"
cmp -s "$tmp/self.stw" "$tmp/epoch.stw"
check "a refused resume leaves its own checkpoint as it was" $?

echo "$passes passed, $fails failed"
[ "$fails" -eq 0 ]
