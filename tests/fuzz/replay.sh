#!/bin/sh
# The 'fuzz' test suite's check of one target: every regression case once, by name (a crash names
# its file), then the seed corpus and the regressions as the starting corpus of a short, seeded
# fuzzing run. New inputs go to WORK, never to the checked-in folders.
# Usage: replay.sh FUZZER CORPUS_DIR REGRESSIONS_DIR DICT|'' WORK_DIR
set -eu
exe=$1 corpus=$2 regressions=$3 dict=$4 work=$5
runs=${STRATA_FUZZ_RUNS:-10000}

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:allocator_may_return_null=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
rm -rf "$work"
mkdir -p "$work/corpus" "$work/artifacts"
# libFuzzer's default failure status is 77, which meson reads as "skipped".
set -- -error_exitcode=1 -timeout_exitcode=1 -rss_limit_mb=2048 -timeout=25 -max_len=65536 \
	-artifact_prefix="$work/artifacts/"
[ -n "$dict" ] && set -- "$@" -dict="$dict"

if [ -d "$regressions" ] && [ -n "$(ls -A "$regressions")" ]; then
	echo "== regressions: $regressions"
	"$exe" "$@" "$regressions"/*
fi
[ -d "$corpus" ] || { echo "replay.sh: no seed corpus at $corpus" >&2; exit 1; }
set -- "$@" -seed=1 -runs="$runs" -print_final_stats=1 "$work/corpus" "$corpus"
[ -d "$regressions" ] && set -- "$@" "$regressions"
echo "== $runs runs from $corpus and $regressions"
"$exe" "$@"
