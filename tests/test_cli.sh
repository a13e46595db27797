#!/bin/sh
# The strata tool end to end: devices, summary, exit statuses and positions of model errors, and a
# second forward pass that compiles no OpenCL program (the disk cache).
set -u
. "$(dirname "$0")/lib.sh"
private_cache

"$strata" devices >"$tmp/devices" 2>&1
check "strata devices exits 0" $?
grep -q "OpenCL C" "$tmp/devices"
check "strata devices shows the OpenCL C version" $?
grep -q "^\* " "$tmp/devices"
check "strata devices marks the chosen device" $?

"$strata" devices --device no-such-device >"$tmp/out" 2>&1
[ $? -eq 2 ] && grep -q "no OpenCL device matches 'no-such-device'" "$tmp/out"
check "an unmatched selector exits 2 and says so" $?

"$strata" summary "$src/../models/mnist_cnn.yaml" >"$tmp/summary" 2>&1
check "strata summary mnist_cnn exits 0" $?
grep -q "Total params: 1,199,882" "$tmp/summary"
check "mnist_cnn has 1,199,882 parameters" $?

# An unknown layer type on line 5, column 11.
cat >"$tmp/bad.yaml" <<'YAML'
input: {shape: [28, 28, 1]}
layers:
  - type: conv2d
    filters: 4
    kernel_size: 3
  - type: conv3d
YAML
"$strata" summary "$tmp/bad.yaml" >"$tmp/out" 2>&1
status=$?
[ $status -eq 2 ]
check "an unknown layer type exits 2 (got $status)" $?
grep -q "^$tmp/bad.yaml:6:11: unknown layer type 'conv3d'" "$tmp/out"
check "the message starts with FILE:6:11: (got: $(head -c 300 "$tmp/out"))" $?
grep -q "conv2d" "$tmp/out" && grep -q "dense" "$tmp/out"
check "the message lists the available layer types" $?

"$strata" summary "$tmp/missing.yaml" >"$tmp/out" 2>&1
[ $? -ne 0 ] && grep -q "missing.yaml" "$tmp/out"
check "a missing model file is refused and named" $?

"$strata" frobnicate >"$tmp/out" 2>&1
[ $? -eq 2 ]
check "an unknown command exits 2" $?

# A small model forwarded twice: the second run loads every program from the disk cache, which
# keeps binaries with STRATA_PROGRAM_BINARIES=always (on PoCL, not by default: see below).
cat >"$tmp/small.yaml" <<'YAML'
input: {shape: [8, 8, 1]}
layers:
  - {type: conv2d, filters: 4, kernel_size: 3, activation: relu}
  - {type: maxpool2d}
  - {type: dropout, rate: 0.5}
  - {type: flatten}
  - {type: dense, units: 3, activation: softmax}
YAML
STRATA_PROGRAM_BINARIES=always "$strata" forward --random --batch 4 --verbose "$tmp/small.yaml" >"$tmp/run1" 2>&1
check "the first forward pass exits 0" $?
grep -Eq "program cache: [1-9][0-9]* built" "$tmp/run1"
check "the first run builds programs ($(grep 'program cache' "$tmp/run1"))" $?
STRATA_PROGRAM_BINARIES=always "$strata" forward --random --batch 4 --verbose "$tmp/small.yaml" >"$tmp/run2" 2>&1
check "the second forward pass exits 0" $?
grep -Eq "program cache: 0 built, [1-9][0-9]* loaded from disk" "$tmp/run2"
check "the second run builds nothing ($(grep 'program cache' "$tmp/run2"))" $?
# By default PoCL's programs are compiled again (PoCL keeps the kernels in its own cache); other
# drivers load them.
"$strata" forward --random --batch 4 --verbose "$tmp/small.yaml" >"$tmp/run3" 2>&1
check "a forward pass without the variable exits 0" $?
if grep -q "Portable Computing Language" "$tmp/run3"; then
	grep -Eq "program cache: [1-9][0-9]* built, 0 loaded from disk" "$tmp/run3"
else
	grep -Eq "program cache: 0 built, [1-9][0-9]* loaded from disk" "$tmp/run3"
fi
check "PoCL builds again, other drivers load ($(grep -E 'device:|program cache' "$tmp/run3" | tr '\n' ' '))" $?
grep -q "row sums: the one farthest from 1 is 1.0000" "$tmp/run2"
check "softmax rows sum to 1" $?

"$strata" forward --random --batch 4 --profile "$tmp/small.yaml" >"$tmp/prof" 2>&1
grep -q "conv2d_1" "$tmp/prof" && grep -q "Share" "$tmp/prof"
check "--profile prints a per-layer table" $?
grep -Eq "^conv2d_1 +forward +gemm(_tile)? .*%  *[0-9]+\.[0-9] +[0-9]+\.[0-9]$" "$tmp/prof"
check "--profile gives a GEMM's GFLOP/s and GB/s: $(grep gemm "$tmp/prof" | head -2)" $?


# A graph model prints Keras' functional summary; a layer that reaches no output is a warning
# with its place in the file, not an error.
cat >"$tmp/graph.yaml" <<'YAML'
inputs: [{name: image, shape: [8, 8, 1]}]
layers:
  - {type: conv2d, filters: 4, kernel_size: 3, activation: relu, inputs: image}
  - {type: flatten}
  - {type: dense, units: 3, activation: softmax}
  - {type: dense, units: 2, inputs: flatten_1, name: side}
outputs: [dense_1]
YAML
"$strata" summary "$tmp/graph.yaml" >"$tmp/out" 2>"$tmp/err"
[ $? -eq 0 ] && grep -q "Connected to" "$tmp/out" && grep -q "^ image (InputLayer) .*\[(None, 8, 8, 1)\] *0 *\[\]" "$tmp/out" &&
	grep -q "^ dense_1 (Dense) .*'flatten_1\[0\]\[0\]'" "$tmp/out" &&
	grep -q "warning: $tmp/graph.yaml:6:5: side: its output reaches no output of the model" "$tmp/err"
check "a graph's summary has Keras' Connected to column and warns of an unused layer ($(cat "$tmp/err"))" $?

# Each command has its own usage and options; `strata --help` is the overview.
"$strata" --help >"$tmp/out" 2>&1
status=$?
missing=""
for c in devices layers summary forward train eval predict bench tune plot visualize embed; do
	grep -q "^  $c " "$tmp/out" || missing="$missing $c"
done
[ $status -eq 0 ] && [ -z "$missing" ] && ! grep -q -- "--epochs" "$tmp/out"
check "strata --help is the overview of every command (status $status, missing:$missing)" $?
"$strata" train --help >"$tmp/out" 2>&1
[ $? -eq 0 ] && grep -q "^usage: strata train MODEL.yaml" "$tmp/out" && grep -q -- "--epochs N" "$tmp/out" &&
	grep -q -- "--resume PATH" "$tmp/out" && ! grep -q -- "--grid" "$tmp/out" && ! grep -q -- "--layer" "$tmp/out"
check "strata train --help lists train's options and no other command's ($(head -c 200 "$tmp/out"))" $?
for c in predict embed visualize plot tune; do
	"$strata" "$c" --help >"$tmp/out.$c" 2>&1 && grep -q "^usage: strata $c " "$tmp/out.$c"
	check "strata $c --help prints $c's usage" $?
done
grep -q -- "--weights PATH" "$tmp/out.predict" && ! grep -q -- "--epochs" "$tmp/out.predict"
check "predict's help names --weights, not --epochs" $?
grep -q -- "--format csv|npy" "$tmp/out.embed" && ! grep -q -- "--steps" "$tmp/out.embed"
check "embed's help names --format, not --steps" $?
"$strata" help train >"$tmp/out2" 2>&1 && "$strata" train --help | cmp -s - "$tmp/out2"
check "strata help train is strata train --help" $?
"$strata" summary "$tmp/small.yaml" --epochs 3 >"$tmp/out" 2>&1
[ $? -eq 2 ] && grep -q "'summary' does not take --epochs" "$tmp/out"
check "an option the command does not take is refused, naming the command ($(cat "$tmp/out"))" $?
"$strata" plot "$tmp/x.csv" --weights "$tmp/w.stw" >"$tmp/out" 2>&1
[ $? -eq 2 ] && grep -q "'plot' does not take --weights" "$tmp/out"
check "plot refuses --weights ($(cat "$tmp/out"))" $?
"$strata" forward "$tmp/small.yaml" --random --frobnicate >"$tmp/out" 2>&1
[ $? -eq 2 ] && grep -q "unknown option '--frobnicate'" "$tmp/out"
check "an unknown option exits 2 and is named" $?
"$strata" summary "$tmp/small.yaml" "$tmp/small.yaml" >"$tmp/out" 2>&1
[ $? -eq 2 ] && grep -q "one too many" "$tmp/out"
check "a second model file is refused" $?
"$strata" forward --random --batch-size=2 "$tmp/small.yaml" >"$tmp/out" 2>&1
[ $? -eq 0 ] && grep -q "Forward pass of 2 random inputs" "$tmp/out"
check "--name=value is the same as --name value" $?

# A value the user typed is used or refused, never taken as "not given" (0 once meant the model's
# value), and each refusal names its option; nothing is trained or written.
zero_case() { # expected text, then the command's arguments
	want=$1
	shift
	timeout 60 "$strata" "$@" >"$tmp/out" 2>&1
	status=$?
	[ $status -eq 2 ] && grep -q -- "$want" "$tmp/out" && ! grep -q "^Training\|^Forward pass\|^Wrote" "$tmp/out" &&
		[ ! -e "$tmp/zero.stw" ]
	check "$* exits 2 naming $want (status $status: $(head -c 200 "$tmp/out"))" $?
}
zero_case "--epochs: '0'" train "$tmp/small.yaml" --epochs 0 --save "$tmp/zero.stw"
zero_case "--batch-size: '0'" train "$tmp/small.yaml" --batch-size 0 --save "$tmp/zero.stw"
zero_case "--limit: '0'" train "$tmp/small.yaml" --limit 0 --save "$tmp/zero.stw"
zero_case "--epochs: '-1'" train "$tmp/small.yaml" --epochs -1 --save "$tmp/zero.stw"
zero_case "--batch-size: '0'" forward "$tmp/small.yaml" --random --batch 0
zero_case "--batch-size: '0'" eval "$tmp/small.yaml" --weights "$tmp/zero.stw" --batch-size 0
zero_case "--budget: '0'" tune "$tmp/small.yaml" --budget 0
zero_case "--steps: '0'" visualize "$tmp/small.yaml" --layer conv2d_1 --steps 0 -o "$tmp/zero.png"
zero_case "--grid: '0'" visualize "$tmp/small.yaml" --layer conv2d_1 --grid 0 -o "$tmp/zero.png"
zero_case "--filters: '0'" visualize "$tmp/small.yaml" --layer conv2d_1 --filters 0 -o "$tmp/zero.png"
zero_case "--width: '0'" plot "$tmp/x.csv" --width 0
zero_case "--weights: the value is empty" eval "$tmp/small.yaml" --weights ''
zero_case "--save: the value is empty" train "$tmp/small.yaml" --save ''
zero_case "the model file's path is empty" summary ''
# Unbounded outputs: a 10000 x 10000 grid of a 4-filter layer once tried a 130,000-pixel picture.
zero_case "--grid 10000: conv2d_1 has 4 filters" visualize "$tmp/small.yaml" --layer conv2d_1 --grid 10000 \
	-o "$tmp/zero.png"
zero_case "at most 2 x 2" visualize "$tmp/small.yaml" --layer conv2d_1 --grid 3 -o "$tmp/zero.png"
zero_case "--steps: '1000000'" visualize "$tmp/small.yaml" --layer conv2d_1 --steps 1000000 -o "$tmp/zero.png"
zero_case "--width: '100000'" plot "$tmp/x.csv" --width 100000
[ ! -e "$tmp/zero.png" ]
check "no refused visualize wrote a picture" $?

# Train, evaluate and predict with a small model on real MNIST.
if ! mnist_mlp "$tmp/mlp.yaml" tiny_mlp 64 64 2 3; then
	fails=$((fails + 1))
else
	"$strata" train "$tmp/mlp.yaml" --limit 2048 --save "$tmp/w.stw" >"$tmp/train" 2>&1
	check "strata train exits 0 ($(tail -3 "$tmp/train"))" $?
	grep -q "^Epoch 2/2" "$tmp/train" && grep -q "val_accuracy" "$tmp/train"
	check "train shows each epoch with validation figures" $?
	# On a terminal (script(1) gives it one) every epoch has its header, even an epoch of one batch
	# that ends before its first one-a-second report, and the bar is redrawn in place.
	script -qec "'$strata' train '$tmp/mlp.yaml' --limit 64 --batch-size 64 --epochs 2" /dev/null >"$tmp/tty" 2>&1
	[ "$(tr -d '\r' <"$tmp/tty" | grep -c '^Epoch [12]/2$')" -eq 2 ] && grep -q "$(printf '\r')1/1 \[" "$tmp/tty"
	check "on a terminal each epoch of one batch has its header: $(tr '\r\n' '  ' <"$tmp/tty" | head -c 600)" $?
	head -1 "$tmp/w.csv" | grep -q "^epoch,batch,loss,accuracy,val_loss,val_accuracy,images_per_s,seconds$" &&
		[ "$(grep -Ec '^[12],32,[0-9.]+,[0-9.]+,[0-9.]+,[0-9.]+,' "$tmp/w.csv")" -eq 2 ]
	check "train writes a CSV log next to the weights, with validation figures at each epoch end" $?
	acc=$(sed -n 's/^Test accuracy: //p' "$tmp/train")
	awk -v a="$acc" 'BEGIN { exit !(a > 0.8) }'
	check "2 epochs on 2048 digits reach a test accuracy above 0.8 (got $acc)" $?
	"$strata" eval "$tmp/mlp.yaml" --weights "$tmp/w.stw" >"$tmp/eval" 2>&1
	check "strata eval exits 0" $?
	for what in loss accuracy LRAP; do
		[ -n "$(grep "^Test $what:" "$tmp/train")" ] &&
			[ "$(grep "^Test $what:" "$tmp/train")" = "$(grep "^Test $what:" "$tmp/eval")" ]
		check "eval reproduces the test $what that train printed" $?
	done
	# The first test digit as a PGM picture and inside the IDX file: the same prediction.
	{ printf 'P5\n28 28\n255\n'; tail -c +17 "$data/t10k-images-idx3-ubyte" | head -c 784; } >"$tmp/digit.pgm"
	"$strata" predict "$tmp/mlp.yaml" --weights "$tmp/w.stw" "$tmp/digit.pgm" >"$tmp/pgm" 2>&1
	check "predict on a PGM exits 0" $?
	"$strata" predict "$tmp/mlp.yaml" --weights "$tmp/w.stw" "$data/t10k-images-idx3-ubyte" >"$tmp/idx" 2>&1
	check "predict on an IDX file exits 0" $?
	[ "$(wc -l <"$tmp/idx")" -eq 10000 ] && [ "$(head -1 "$tmp/idx")" = "$(head -1 "$tmp/pgm")" ]
	check "one line per IDX image, the first equal to the PGM's ($(head -1 "$tmp/pgm"))" $?
	grep -q "^0: class 7 " "$tmp/pgm"
	check "the first test digit (a 7) is predicted as 7" $?
	# Weights of another model are refused, naming the tensor.
	sed 's/units: 64/units: 32/' "$tmp/mlp.yaml" >"$tmp/other.yaml"
	"$strata" eval "$tmp/other.yaml" --weights "$tmp/w.stw" >"$tmp/out" 2>&1
	status=$?
	[ $status -ne 0 ] && grep -q "dense_1/kernel" "$tmp/out"
	check "weights of another shape are refused (status $status: $(head -c 200 "$tmp/out"))" $?
	# scripts/test.sh runs the tests on PoCL's 'basic' device; the users' default, 'pthread', runs
	# work-groups on worker threads, asynchronously: the same training there.
	if [ "${POCL_DEVICES:-pthread}" != pthread ] && POCL_DEVICES=pthread clinfo -l 2>/dev/null | grep -q pthread; then
		POCL_DEVICES=pthread "$strata" train "$tmp/mlp.yaml" --limit 2048 --verbose >"$tmp/pthread" 2>&1
		check "strata train exits 0 on PoCL's pthread device ($(tail -3 "$tmp/pthread"))" $?
		acc=$(sed -n 's/^Test accuracy: //p' "$tmp/pthread")
		grep -q "device: pthread-" "$tmp/pthread" && awk -v a="$acc" 'BEGIN { exit !(a > 0.8) }'
		check "on pthread too, 2 epochs reach a test accuracy above 0.8 (got $acc)" $?
	fi
	# Resuming a finished run trains nothing more and keeps the figures.
	"$strata" train "$tmp/mlp.yaml" --limit 2048 --resume "$tmp/w.stw" >"$tmp/resume" 2>&1
	check "train --resume exits 0" $?
	[ "$(grep "^Test accuracy:" "$tmp/resume")" = "$(grep "^Test accuracy:" "$tmp/train")" ] && ! grep -q "^Epoch" "$tmp/resume"
	check "resuming a finished run changes nothing" $?
fi

# strata plot: training curves of a CSV log as a PNG of the asked size; bad logs named with their line.
png_size() { # prints "WIDTHxHEIGHT" from a PNG's IHDR, or nothing if the file is not a PNG
	[ "$(od -An -c -j1 -N3 "$1" 2>/dev/null | tr -d ' ')" = PNG ] || return 1
	od -An -tu1 -j16 -N8 "$1" | awk '{ printf "%dx%d", (($1 * 256 + $2) * 256 + $3) * 256 + $4, (($5 * 256 + $6) * 256 + $7) * 256 + $8 }'
}
plotdata="$src/data/plot"
"$strata" plot "$plotdata/mnist_cnn_12.csv" -o "$tmp/curves.png" --width 800 --height 300 >"$tmp/out" 2>&1
check "strata plot exits 0 ($(head -c 300 "$tmp/out"))" $?
[ "$(png_size "$tmp/curves.png")" = 800x300 ]
check "strata plot writes an 800x300 PNG (got '$(png_size "$tmp/curves.png")')" $?
grep -q "12 epochs" "$tmp/out"
check "strata plot says how many epochs it drew" $?
cp "$plotdata/no_val.csv" "$tmp/run.csv"
"$strata" plot "$tmp/run.csv" >"$tmp/out" 2>&1 && [ "$(png_size "$tmp/run.png")" = 1000x400 ]
check "without -o the picture goes next to the log, 1000x400 ($(head -c 300 "$tmp/out"))" $?
grep -q "no validation figures" "$tmp/out"
check "strata plot says when a log has no validation figures" $?
"$strata" plot "$plotdata/bad_number.csv" -o "$tmp/bad.png" >"$tmp/out" 2>&1
status=$?
[ $status -eq 2 ] && grep -q "^strata: $plotdata/bad_number.csv:4: loss '0.5O2000' is not a number" "$tmp/out" &&
	[ ! -e "$tmp/bad.png" ]
check "a bad log exits 2 with FILE:LINE: (status $status: $(head -c 300 "$tmp/out"))" $?
"$strata" plot "$tmp/missing.csv" -o "$tmp/m.png" >"$tmp/out" 2>&1
status=$?
[ $status -ne 0 ] && grep -q "cannot open $tmp/missing.csv: No such file" "$tmp/out"
check "a missing log is refused and named (status $status: $(head -c 300 "$tmp/out"))" $?
"$strata" plot "$plotdata/single.csv" -o "$tmp/s.png" --width 10 >"$tmp/out" 2>&1
[ $? -eq 2 ] && grep -q -- "--width: '10' is not a whole number from 320" "$tmp/out" && [ ! -e "$tmp/s.png" ]
check "a picture too small exits 2" $?
"$strata" plot "$tmp/run.csv" -o "$tmp/run.csv" >"$tmp/out" 2>&1
[ $? -eq 2 ] && head -1 "$tmp/run.csv" | grep -q "^epoch,batch,"
check "strata plot never writes over its log" $?
# Written files get the usual mode (not mkstemp's 0600), and a replaced file keeps its own.
(umask 022 && "$strata" plot "$plotdata/single.csv" -o "$tmp/mode.png" >/dev/null 2>&1) &&
	[ "$(stat -c %a "$tmp/mode.png")" = 644 ] && chmod 640 "$tmp/mode.png" &&
	"$strata" plot "$plotdata/single.csv" -o "$tmp/mode.png" >/dev/null 2>&1 &&
	[ "$(stat -c %a "$tmp/mode.png")" = 640 ]
check "an atomically written file gets 0666 less the umask, and a replaced one keeps its mode" $?
"$strata" plot >"$tmp/out" 2>&1
[ $? -eq 2 ] && grep -q "'plot' needs LOG.csv" "$tmp/out"
check "strata plot without a log exits 2" $?
if [ -f "$tmp/w.csv" ]; then
	"$strata" plot "$tmp/w.csv" -o "$tmp/w.png" >"$tmp/out" 2>&1 && [ "$(png_size "$tmp/w.png")" = 1000x400 ] &&
		grep -q "epochs 1 to 2 (2 epochs" "$tmp/out"
	check "strata plot draws the log strata train wrote ($(head -c 300 "$tmp/out"))" $?
fi

# strata visualize: filter images as an n x n grid (n images of 8x8 and 5-pixel margins between).
"$strata" visualize "$tmp/small.yaml" --layer conv2d_1 --grid 2 --steps 5 -o "$tmp/filters.png" >"$tmp/out" 2>&1
check "strata visualize exits 0 ($(head -c 300 "$tmp/out"))" $?
[ "$(png_size "$tmp/filters.png")" = 21x21 ]
check "a 2x2 grid of 8x8 inputs is 2*8+5 = 21 pixels a side (got '$(png_size "$tmp/filters.png")')" $?
"$strata" visualize "$tmp/small.yaml" --layer conv2d_9 -o "$tmp/x.png" >"$tmp/out" 2>&1
status=$?
[ $status -eq 2 ] && grep -q "no layer 'conv2d_9'; its layers: conv2d_1, max_pooling2d_1, dropout_1, flatten_1, dense_1" \
	"$tmp/out" && [ ! -e "$tmp/x.png" ]
check "an unknown --layer exits 2 and lists the layers (status $status: $(head -c 300 "$tmp/out"))" $?
"$strata" visualize "$tmp/small.yaml" --layer flatten_1 --filters 4 --grid 2 --steps 3 -o "$tmp/flat.png" \
	>"$tmp/out" 2>&1 && [ "$(png_size "$tmp/flat.png")" = 21x21 ]
check "a layer without spatial positions: each of its values is a filter ($(head -c 300 "$tmp/out"))" $?
"$strata" visualize "$tmp/small.yaml" --layer conv2d_1 --filters 5 -o "$tmp/x.png" >"$tmp/out" 2>&1
[ $? -eq 2 ] && grep -q "conv2d_1 has 4 filters" "$tmp/out"
check "--filters beyond the layer's exits 2" $?
"$strata" visualize "$tmp/small.yaml" --layer dense_1 -o "$tmp/no-such-folder/x.png" >"$tmp/out" 2>&1
status=$?
[ $status -ne 0 ] && grep -q "cannot write $tmp/no-such-folder/x.png" "$tmp/out"
check "an unwritable -o is refused before any work, named (status $status: $(head -c 300 "$tmp/out"))" $?

# strata embed: a layer's features for every test image, against predict's probabilities.
if [ -f "$tmp/w.stw" ] && [ -f "$tmp/idx" ]; then
	"$strata" embed "$tmp/mlp.yaml" --weights "$tmp/w.stw" --layer dense_1 -o "$tmp/f.csv" >"$tmp/out" 2>&1
	check "strata embed exits 0 ($(head -c 300 "$tmp/out"))" $?
	[ "$(wc -l <"$tmp/f.csv")" -eq 10001 ] && head -1 "$tmp/f.csv" | grep -q "^label,f0,f1,.*,f63$" &&
		[ "$(awk -F, 'NF != 65' "$tmp/f.csv" | wc -l)" -eq 0 ] && sed -n 2p "$tmp/f.csv" | grep -q "^7,"
	check "a header and one row per test image: its label (the first a 7), then dense_1's 64 values" $?
	"$strata" embed "$tmp/mlp.yaml" --weights "$tmp/w.stw" --layer dense_2 -o "$tmp/p.csv" >/dev/null 2>&1 &&
		sed -n '2,4p' "$tmp/p.csv" | awk -F, '{ s = ""; for (i = 2; i <= NF; i++) s = s (i > 2 ? " " : "") \
			sprintf("%.4f", $i); print s }' >"$tmp/p4" &&
		head -3 "$tmp/idx" | sed 's/.*\[//; s/\]$//' | cmp -s - "$tmp/p4"
	check "the last layer's features are predict's probabilities ($(head -1 "$tmp/p4"))" $?
	"$strata" embed "$tmp/mlp.yaml" --weights "$tmp/w.stw" --layer dense_2 -o "$tmp/u.csv" \
		"$data/t10k-images-idx3-ubyte" >/dev/null 2>&1 &&
		[ "$(cut -d, -f1 "$tmp/u.csv" | sort -u | tr '\n' ' ')" = "-1 label " ] &&
		[ "$(cut -d, -f2- "$tmp/u.csv" | md5sum)" = "$(cut -d, -f2- "$tmp/p.csv" | md5sum)" ]
	check "an IDX images file: the same features, unlabeled (-1)" $?
	"$strata" embed "$tmp/mlp.yaml" --weights "$tmp/w.stw" --layer dense_2 -o "$tmp/p.npy" >"$tmp/out" 2>&1 &&
		head -c 128 "$tmp/p.npy" | grep -q "'descr': '<f4', 'fortran_order': False, 'shape': (10000, 10)" &&
		head -c 128 "$tmp/p.labels.npy" | grep -q "'descr': '<i4', 'fortran_order': False, 'shape': (10000,)"
	check "-o X.npy writes NumPy files of the features and labels ($(head -c 300 "$tmp/out"))" $?
	start=$(od -An -tu1 -j8 -N2 "$tmp/p.npy" | awk '{ print 10 + $1 + 256 * $2 }')
	od -An -v -tf4 -j"$start" -N40 "$tmp/p.npy" | tr -s ' ' '\n' | grep . >"$tmp/npy10"
	sed -n 2p "$tmp/p.csv" | cut -d, -f2- | tr ',' '\n' | paste "$tmp/npy10" - |
		awk 'NF != 2 { bad = 1 } { d = $1 - $2; if (d < 0) d = -d; if (d > 1e-6) bad = 1 } END { exit bad || NR != 10 }'
	check "the .npy holds the CSV's values" $?
	# npy adds NumPy files to the CSV, never replaces it: the CSV is the one -o X.csv writes.
	"$strata" embed "$tmp/mlp.yaml" --weights "$tmp/w.stw" --layer dense_2 -o "$tmp/both.npy" >"$tmp/out" 2>&1 &&
		cmp -s "$tmp/both.csv" "$tmp/p.csv" && cmp -s "$tmp/both.npy" "$tmp/p.npy" &&
		cmp -s "$tmp/both.labels.npy" "$tmp/p.labels.npy" && grep -q "$tmp/both.csv" "$tmp/out"
	check "-o X.npy writes X.csv too, beside X.npy and X.labels.npy ($(head -c 300 "$tmp/out"))" $?
	"$strata" embed "$tmp/mlp.yaml" --weights "$tmp/w.stw" --layer dense_2 --format npy -o "$tmp/fmt.csv" \
		>"$tmp/out" 2>&1 && cmp -s "$tmp/fmt.csv" "$tmp/p.csv" && cmp -s "$tmp/fmt.npy" "$tmp/p.npy" &&
		cmp -s "$tmp/fmt.labels.npy" "$tmp/p.labels.npy"
	check "--format npy -o X.csv: X.csv stays the CSV, X.npy and X.labels.npy come with it ($(head -c 300 "$tmp/out"))" $?
	"$strata" embed "$tmp/mlp.yaml" --weights "$tmp/w.stw" --layer dense_1 --format xml -o "$tmp/f.x" >"$tmp/out" 2>&1
	[ $? -eq 2 ] && grep -q "neither csv nor npy" "$tmp/out"
	check "an unknown --format exits 2" $?
	"$strata" embed "$tmp/mlp.yaml" --weights "$tmp/w.stw" --layer dense_1 -o /nonexistent-strata/f.csv >"$tmp/out" 2>&1
	status=$?
	[ $status -ne 0 ] && grep -q "cannot write /nonexistent-strata/f.csv" "$tmp/out"
	check "embed refuses an unwritable -o (status $status)" $?
fi

echo "$passes passed, $fails failed"
[ "$fails" -eq 0 ]
