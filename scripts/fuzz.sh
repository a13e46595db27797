#!/usr/bin/env bash
# Fuzzes one libFuzzer target of tests/fuzz for a while.
# Usage: scripts/fuzz.sh TARGET SECONDS [BUILD_DIR]     (TARGET: fuzz_model, fuzz_idx, ...)
# BUILD_DIR (default build-fuzz/ at the repository root) is configured with clang and
# -Dfuzzing=true when it does not exist yet. The run grows a work corpus in
# BUILD_DIR/fuzz-work/TARGET, seeded from tests/fuzz/corpus/TARGET and tests/fuzz/regressions/TARGET,
# so the checked-in seeds stay as they are; STRATA_FUZZ_MERGE=1 merges what it found that adds
# coverage back into the seed corpus (minimised, for a commit). A crash, leak, timeout or
# out-of-memory input is copied to tests/fuzz/regressions/TARGET/, which the 'fuzz' test suite
# replays, and the script exits 1. Environment: STRATA_FUZZ_RSS_MB (2048), STRATA_FUZZ_TIMEOUT
# (seconds per input, 10), STRATA_FUZZ_ARGS (more libFuzzer flags, e.g. -jobs=2).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
if [ $# -lt 2 ] || [ $# -gt 3 ]; then
	echo "usage: scripts/fuzz.sh TARGET SECONDS [BUILD_DIR]" >&2
	exit 2
fi
target=$1 seconds=$2 build=${3:-$root/build-fuzz}
fuzz=$root/tests/fuzz
if [ ! -f "$fuzz/$target.c" ]; then
	echo "fuzz.sh: no target $target; there are:" $(cd "$fuzz" && ls fuzz_*.c | sed 's/\.c$//') >&2
	exit 2
fi
case $seconds in '' | *[!0-9]*) echo "fuzz.sh: SECONDS must be a number" >&2; exit 2 ;; esac

if [ ! -f "$build/build.ninja" ]; then
	CC=clang meson setup "$build" "$root" -Dfuzzing=true -Dtests=false
elif ! meson configure "$build" | grep -Eq '^ *fuzzing +true'; then
	echo "fuzz.sh: $build is not configured with -Dfuzzing=true (meson configure $build -Dfuzzing=true)" >&2
	exit 2
fi
# The target, and for fuzz_model the instrumented plugins its registry loads.
outputs=("tests/fuzz/$target")
if [ "$target" = fuzz_model ]; then
	for dir in "$root"/plugins/*/; do
		name=$(basename "$dir")
		[ -f "$dir/$name.c" ] && outputs+=("tests/fuzz/plugins/$name.so")
	done
fi
ninja -C "$build" "${outputs[@]}"

work=$build/fuzz-work/$target
artifacts=$build/fuzz-artifacts/$target
regressions=$fuzz/regressions/$target
mkdir -p "$work" "$artifacts"
cp -n "$fuzz/corpus/$target"/* "$work"/ 2>/dev/null || true
[ -d "$regressions" ] && cp -n "$regressions"/* "$work"/ 2>/dev/null || true
rm -f "$artifacts"/*

flags=(-max_total_time="$seconds" -rss_limit_mb="${STRATA_FUZZ_RSS_MB:-2048}"
	-timeout="${STRATA_FUZZ_TIMEOUT:-10}" -max_len=65536 -print_final_stats=1
	-artifact_prefix="$artifacts/")
[ -f "$fuzz/$target.dict" ] && flags+=(-dict="$fuzz/$target.dict")
# shellcheck disable=SC2206 # STRATA_FUZZ_ARGS: flags split at spaces on purpose
flags+=(${STRATA_FUZZ_ARGS:-})
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:allocator_may_return_null=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

log=$build/fuzz-work/$target.log
status=0
# nice: the fuzzer shares the machine with builds and training runs.
nice -n 10 "$build/tests/fuzz/$target" "${flags[@]}" "$work" >"$log" 2>&1 || status=$?

found=$(ls -A "$artifacts")
if [ -n "$found" ]; then
	mkdir -p "$regressions"
	cp "$artifacts"/* "$regressions"/
fi
last=$(grep -E '^#[0-9]+[[:space:]]+(DONE|NEW|REDUCE|pulse|INITED)' "$log" | tail -1 || true)
execs=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log")
runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
rss=$(sed -n 's/^stat::peak_rss_mb: *//p' "$log")
files=$(find "$work" -type f | wc -l)
bytes=$(du -sk "$work" | cut -f1)
echo "== $target, ${seconds}s: $runs runs, ${execs:-?} execs/s, peak RSS ${rss:-?} MB"
echo "== coverage: $(grep -o 'cov: [0-9]* ft: [0-9]*' <<<"$last" || echo '?') (edges, features)," \
	"corpus in use: $(grep -o 'corp: [^ ]*' <<<"$last" | cut -d' ' -f2 || echo '?') (inputs/bytes)"
echo "== work corpus: $files files, ${bytes} KiB in $work; log: $log"

if [ "${STRATA_FUZZ_MERGE:-0}" = 1 ] && [ -z "$found" ]; then
	"$build/tests/fuzz/$target" -merge=1 -rss_limit_mb="${STRATA_FUZZ_RSS_MB:-2048}" \
		"$fuzz/corpus/$target" "$work" >>"$log" 2>&1
	echo "== merged into tests/fuzz/corpus/$target: $(ls "$fuzz/corpus/$target" | wc -l) files"
fi
if [ -n "$found" ] || [ "$status" -ne 0 ]; then
	grep -E '^(==[0-9]+==ERROR|SUMMARY|.*runtime error)' "$log" | head -5 >&2 || true
	echo "fuzz.sh: $target failed (status $status); inputs copied to $regressions:" $found >&2
	echo "fuzz.sh: reproduce with $build/tests/fuzz/$target $regressions/FILE" >&2
	exit 1
fi
