# Sourced by the shell tests: the tool and source folder meson passes, a temporary folder removed
# on exit, pass/fail counting, and the small MNIST model several tests train.
strata=${STRATA_EXE:?run through meson test}
src=${STRATA_TEST_SRCDIR:?run through meson test}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fails=0
passes=0

# private_cache: Strata's cache folder (compiled programs, tuned parameters) of this test's own, so
# that what the test stores or counts is its own; PoCL's compiled kernels stay in the shared folder
# (POCL_CACHE_DIR from scripts/test.sh, else the tests' XDG_CACHE_HOME): compiling them again in
# every such test cost CI minutes and checks nothing.
private_cache() {
	POCL_CACHE_DIR=${POCL_CACHE_DIR:-${XDG_CACHE_HOME:-$tmp/shared}/pocl/kcache}
	mkdir -p "$POCL_CACHE_DIR"
	export POCL_CACHE_DIR
	export XDG_CACHE_HOME="$tmp/cache"
}

check() { # description, then a condition already evaluated into $?
	if [ "$2" -eq 0 ]; then passes=$((passes + 1)); else echo "FAIL: $1"; fails=$((fails + 1)); fi
}

# mnist_mlp FILE NAME UNITS BATCH EPOCHS SEED: flatten, dense UNITS relu, dropout 0.2, dense 10
# softmax over the MNIST files of data/mnist; says so and returns 1 when they are missing.
mnist_mlp() {
	data=$(cd "$src/../data/mnist" 2>/dev/null && pwd)
	if [ -z "$data" ]; then
		echo "FAIL: $src/../data/mnist is missing: run scripts/fetch-mnist.sh"
		return 1
	fi
	cat >"$1" <<YAML
name: $2
input: {shape: [28, 28, 1]}
layers:
  - {type: flatten}
  - {type: dense, units: $3, activation: relu}
  - {type: dropout, rate: 0.2}
  - {type: dense, units: 10, activation: softmax}
loss: categorical_crossentropy
optimizer: adam
data:
  train_images: $data/train-images-idx3-ubyte
  train_labels: $data/train-labels-idx1-ubyte
  test_images: $data/t10k-images-idx3-ubyte
  test_labels: $data/t10k-labels-idx1-ubyte
  scale: 0.00392156862745098
  num_classes: 10
training: {batch_size: $4, epochs: $5, seed: $6}
YAML
}

# said: the start of the last command's output ($tmp/out) on one line, for a check's message.
said() { head -c 1500 "$tmp/out" | tr '\n' ' '; }

# gradcheck MODEL LAYER [options]: `strata gradcheck` of one layer on $STRATA_TEST_DEVICE (the
# default device when unset); its status returned, its output in $tmp/out.
device_args=""
if [ -n "${STRATA_TEST_DEVICE:-}" ]; then
	device_args="--device $STRATA_TEST_DEVICE"
fi
gradcheck() {
	model=$1
	layer=$2
	shift 2
	# shellcheck disable=SC2086 # the device selector's two words
	timeout 300 "$strata" gradcheck "$model" --layer "$layer" $device_args "$@" >"$tmp/out" 2>&1
}
