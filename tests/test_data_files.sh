#!/bin/sh
# IDX data files as `strata` reads them: a model's data (train_images, ...) and predict's and
# embed's INPUT. A FIFO must not block (the open waited for a writer forever), /dev/zero and a
# 64 GiB sparse file behind a good header (truncate -s 64G: no disk space) must be refused before
# they are read (the sparse file used to be read to its end, minutes), a file of 0 images must be
# refused by predict (it divided by 0), and samples shaped otherwise than the model's input must be
# refused with the file and both shapes even when the number of values agrees (23 x 17 images
# used to train a 17 x 23 input silently). Every command runs under `timeout 20`, so that a
# regression fails instead of hanging. The data files are small ones written here.
set -u
. "$(dirname "$0")/lib.sh"
said() { head -c 600 "$tmp/out" | tr '\n' ' '; }
huge=68719476736 # 64 GiB

byte() { printf "\\$(printf %03o "$1")"; }
be32() { byte $(($1 >> 24 & 255)); byte $(($1 >> 16 & 255)); byte $(($1 >> 8 & 255)); byte $(($1 & 255)); }
# idx FILE N [DIM...]: an IDX file of unsigned bytes, N samples of DIM x ... values of 64 each, or
# without DIM N labels of 0.
idx() {
	file=$1
	n=$2
	shift 2
	values=$n
	for d in "$@"; do values=$((values * d)); done
	{
		byte 0; byte 0; byte 8; byte $(($# + 1)); be32 "$n"
		for d in "$@"; do be32 "$d"; done
		head -c "$values" /dev/zero | if [ $# -gt 0 ]; then tr '\0' '@'; else cat; fi
	} >"$file"
}
# model FILE SHAPE TRAIN_IMAGES: flatten, dense 3 softmax; test images: 16 of 8 x 8.
model() {
	cat >"$1" <<YAML
input: {shape: [$2]}
layers:
  - {type: flatten}
  - {type: dense, units: 3, activation: softmax}
loss: categorical_crossentropy
optimizer: sgd
data:
  train_images: $3
  train_labels: $tmp/labels
  test_images: $tmp/8x8
  test_labels: $tmp/labels
  num_classes: 3
training: {batch_size: 4, epochs: 1, seed: 1}
YAML
}
# refused NAME PATTERN FILE COMMAND...: COMMAND fails (status 1 or 2, neither a timeout nor a
# signal) within 20 s, and its message names FILE and matches the extended regular expression
# PATTERN.
refused() {
	name=$1
	pattern=$2
	file=$3
	shift 3
	timeout 20 "$@" >"$tmp/out" 2>&1 </dev/null
	status=$?
	{ [ $status -eq 1 ] || [ $status -eq 2 ]; } && grep -qF -- "$file" "$tmp/out" && grep -Eq -- "$pattern" "$tmp/out"
	check "$name: refused within 20 s, naming $file (status $status: $(said))" $?
}

idx "$tmp/labels" 16
idx "$tmp/8x8" 16 8 8
model "$tmp/m.yaml" "8, 8, 1" "$tmp/8x8"
timeout 20 "$strata" train "$tmp/m.yaml" --save "$tmp/w.stw" >"$tmp/out" 2>&1
check "a model of input 8 x 8 x 1 trains on 8 x 8 images ($(said))" $?
timeout 20 "$strata" predict "$tmp/m.yaml" --weights "$tmp/w.stw" "$tmp/8x8" >"$tmp/out" 2>&1 &&
	[ "$(grep -c '^[0-9]*: class ' "$tmp/out")" -eq 16 ]
check "predict takes 8 x 8 images for an input of 8 x 8 x 1: a line each ($(said))" $?
gzip -c "$tmp/8x8" >"$tmp/8x8.gz"
timeout 20 "$strata" predict "$tmp/m.yaml" --weights "$tmp/w.stw" "$tmp/8x8.gz" >"$tmp/out" 2>&1 &&
	[ "$(grep -c '^[0-9]*: class ' "$tmp/out")" -eq 16 ]
check "predict takes the same images gzip-compressed ($(said))" $?

# ---- FIFOs and devices ------------------------------------------------------------------------------
fifo_said="is a FIFO \(named pipe\), not a regular file"
mkfifo "$tmp/fifo"
model "$tmp/fifo.yaml" "8, 8, 1" "$tmp/fifo"
refused "a FIFO as train_images" "$fifo_said" "$tmp/fifo" "$strata" train "$tmp/fifo.yaml"
refused "a FIFO as predict's INPUT" "$fifo_said" "$tmp/fifo" \
	"$strata" predict "$tmp/m.yaml" --weights "$tmp/w.stw" "$tmp/fifo"
model "$tmp/zero.yaml" "8, 8, 1" /dev/zero
refused "/dev/zero as train_images" "/dev/zero is a character device, not a regular file" /dev/zero \
	"$strata" train "$tmp/zero.yaml"

# ---- A 64 GiB sparse file behind a good header --------------------------------------------------------
cp "$tmp/8x8" "$tmp/sparse"
truncate -s 64G "$tmp/sparse"
sparse_said="$((huge - 1040)) trailing bytes: the header \(16 x 8 x 8 of unsigned byte\) declares 1040 bytes in all, the file has $huge"
model "$tmp/sparse.yaml" "8, 8, 1" "$tmp/sparse"
refused "a 64 GiB sparse train_images" "$sparse_said" "$tmp/sparse" "$strata" train "$tmp/sparse.yaml"
refused "a 64 GiB sparse IDX file as predict's INPUT" "$sparse_said" "$tmp/sparse" \
	"$strata" predict "$tmp/m.yaml" --weights "$tmp/w.stw" "$tmp/sparse"
rm -f "$tmp/sparse"

# ---- No images ----------------------------------------------------------------------------------------
idx "$tmp/none" 0 8 8
refused "predict on an IDX file of 0 images" \
	"none: no samples: the header \(0 x 8 x 8 of unsigned byte\) declares 0 of them" "$tmp/none" \
	"$strata" predict "$tmp/m.yaml" --weights "$tmp/w.stw" "$tmp/none"

# ---- Shapes -----------------------------------------------------------------------------------------
# 4 x 16 images for an input of 16 x 4 x 1: as many values, transposed. The dense kernel is 64 x 3
# either way, so the weights of m.yaml fit t.yaml.
idx "$tmp/4x16" 16 4 16
model "$tmp/t.yaml" "16, 4, 1" "$tmp/4x16"
refused "train on transposed images" \
	"4x16: the training data has samples of 4 x 16 \(64 values\), the model's input is 16 x 4 x 1 \(64 values\)" \
	"$tmp/4x16" "$strata" train "$tmp/t.yaml"
! grep -q "^Epoch" "$tmp/out"
check "nothing is trained on transposed images" $?
refused "predict on images of another shape" \
	"8x8: the file has samples of 8 x 8 \(64 values\), the model's input is 16 x 4 x 1 \(64 values\)" "$tmp/8x8" \
	"$strata" predict "$tmp/t.yaml" --weights "$tmp/w.stw" "$tmp/8x8"
idx "$tmp/flat" 16 64
refused "predict on flat samples for an image input" \
	"flat: the file has samples of 64 \(64 values\), the model's input is 8 x 8 x 1 \(64 values\)" "$tmp/flat" \
	"$strata" predict "$tmp/m.yaml" --weights "$tmp/w.stw" "$tmp/flat"
refused "embed on transposed images" "4x16: the file has samples of 4 x 16 \(64 values\)" "$tmp/4x16" \
	"$strata" embed "$tmp/m.yaml" --weights "$tmp/w.stw" --layer dense_1 "$tmp/4x16" -o "$tmp/e.csv"

echo "$passes passed, $fails failed"
[ "$fails" -eq 0 ]
