#!/usr/bin/env bash
# The README's second command, and what CI runs: installs what is missing, fetches MNIST, builds
# and runs every test. Arguments go to `meson test` (a test name), and then only that runs.
# Without arguments, after the normal suites: every suite but those of the kernels' arithmetic
# (suite 'kernels') again in a second build under AddressSanitizer, UndefinedBehaviorSanitizer and
# LeakSanitizer (clang, with the fuzz targets: their replay suite too), then the 'valgrind' suite (summary, train and eval under memcheck) in
# the normal build; tests/sanitizers/README.md. Exits non-zero when any part failed.
# STRATA_BUILD_DIR chooses the build folder (default: build/ at the repository root),
# STRATA_SAN_BUILD_DIR the sanitizer build's (default: build-san/).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
build=${STRATA_BUILD_DIR:-build}

# Each phase says how long it took: CI has 30 minutes on 2 cores for all of them.
start=$SECONDS
scripts/setup.sh
scripts/fetch-mnist.sh
echo "test.sh: setup and data took $((SECONDS - start)) s"

# On PoCL every pass runs on its 'basic' device, which runs each command in the calling thread,
# rather than 'pthread', the users' default, which wakes worker threads for every command: the
# tests launch many small kernels, and a gradcheck of a small GRU made 1.3 million futex calls on
# 'pthread' (5 s against 0.9 s on 'basic'); valgrind's suite took 142 s against 35. One device
# for all passes, because PoCL compiles a kernel for each device apart and compiling is most of
# what the tests wait for. 'pthread' keeps its own checks (tests/test_cli.sh trains on it), and
# Oclgrind checks the kernels for races between work-groups, which 'basic' runs one after
# another. POCL_DEVICES set by the caller is kept; other drivers ignore it.
export POCL_DEVICES=${POCL_DEVICES:-basic}

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
start=$SECONDS
meson compile -C "$build"
echo "test.sh: building $build took $((SECONDS - start)) s"

# One folder of PoCL's compiled kernels for every pass below (the normal build, the sanitizer build,
# valgrind's native run) and for the shell tests that keep Strata's cache folder private: a kernel
# compiles to the same code whatever compiled the host program, and compiling every kernel again
# in each pass cost CI several minutes. Strata's own program cache stays per build and per test.
case $build in /*) abs_build=$build ;; *) abs_build=$root/$build ;; esac
export POCL_CACHE_DIR=${POCL_CACHE_DIR:-$abs_build/tests/cache/pocl/kcache}
mkdir -p "$POCL_CACHE_DIR"

status=0
echo "test.sh: the test suites ($build)"
start=$SECONDS
meson test -C "$build" --print-errorlogs "$@" || status=$?
echo "test.sh: the test suites took $((SECONDS - start)) s"
[ $# -eq 0 ] || exit "$status"

# The sanitizer build: its default test setup (tests/sanitizers/meson.build) gives every test the
# sanitizers' options and LSan's suppressions. Oclgrind's suite checks the kernels, which the
# sanitizers do not see: it ran above and is not built again here.
san=${STRATA_SAN_BUILD_DIR:-build-san}
echo "test.sh: every suite under ASan, UBSan and LSan, fuzz replay included ($san)"
start=$SECONDS
san_status=0
if [ -f "$san/build.ninja" ]; then
	: # configured; reused
elif [ -f "$san/meson-private/coredata.dat" ]; then
	CC=clang meson setup --wipe "$san" || san_status=$?
else
	# Built without MPI (-Dmpi=disabled): every suite then also shows that a build without MPI
	# builds and passes (issue 18); the MPI suite runs in the build above.
	CC=clang meson setup "$san" -Db_sanitize=address,undefined -Db_lundef=false -Dfuzzing=true \
		-Doclgrind=disabled -Dmpi=disabled || san_status=$?
fi
[ "$san_status" -ne 0 ] || meson compile -C "$san" || san_status=$?
# The suites of the device kernels' arithmetic ('kernels', tests/meson.build) are left out here.
[ "$san_status" -ne 0 ] || meson test -C "$san" --print-errorlogs --no-suite kernels || san_status=$?
echo "test.sh: the sanitizer build's suites took $((SECONDS - start)) s (status $san_status)"
[ "$san_status" -eq 0 ] || status=1

# The 'valgrind' suite, which the default test setup leaves out of the run above.
echo "test.sh: strata summary, train and eval under valgrind's memcheck ($build, suite valgrind)"
start=$SECONDS
if ! command -v valgrind >/dev/null 2>&1; then
	echo "test.sh: valgrind is not installed (scripts/setup.sh installs it)" >&2
	status=1
else
	meson test -C "$build" --print-errorlogs --suite valgrind || status=1
fi
echo "test.sh: the valgrind suite took $((SECONDS - start)) s"
exit "$status"
