#!/usr/bin/env bash
# The README's first command: installs what is missing, fetches MNIST, builds, then shows the
# summary of models/mnist_cnn.yaml and trains it (12 epochs, Keras' example), printing the test
# accuracy; the weights go to runs/mnist_cnn.stw. Extra arguments go to `strata train`
# (e.g. --epochs 1).
# STRATA_BUILD_DIR chooses the build folder (default: build/ at the repository root).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
build=${STRATA_BUILD_DIR:-build}

scripts/setup.sh
scripts/fetch-mnist.sh

if [ -f "$build/build.ninja" ]; then
	: # configured; meson compile reconfigures by itself when meson.build changed
elif [ -f "$build/meson-private/coredata.dat" ]; then
	meson setup --wipe "$build"
else
	meson setup "$build"
fi
meson compile -C "$build"

mkdir -p runs
"$build/src/strata" summary models/mnist_cnn.yaml
"$build/src/strata" train models/mnist_cnn.yaml --save runs/mnist_cnn.stw "$@"
