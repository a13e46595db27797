#!/usr/bin/env bash
# The README's second command, and what CI runs: installs what is missing, fetches MNIST, builds
# and runs every test. Exits with the tests' status. Arguments go to `meson test` (a test name).
# STRATA_BUILD_DIR chooses the build folder (default: build/ at the repository root).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
build=${STRATA_BUILD_DIR:-build}

scripts/setup.sh
scripts/fetch-mnist.sh

# CI always has PoCL: no OpenCL device is a failure, never a reason to skip tests.
devices=$(clinfo -l 2>&1 || true)
if ! grep -q 'Device #' <<<"$devices"; then
	echo "test.sh: clinfo -l lists no OpenCL device; install pocl-opencl-icd or a GPU driver" >&2
	printf '%s\n' "$devices" >&2
	exit 1
fi
echo "OpenCL devices:"
printf '%s\n' "$devices"

if [ -f "$build/build.ninja" ]; then
	: # configured; meson reconfigures by itself when meson.build changed
elif [ -f "$build/meson-private/coredata.dat" ]; then
	meson setup --wipe "$build"
else
	meson setup "$build"
fi
meson compile -C "$build"

status=0
meson test -C "$build" --print-errorlogs "$@" || status=$?
exit "$status"
