#!/bin/sh
# The 'oclgrind' test: tests/oclgrind_driver.c under Oclgrind, which reports out-of-bounds and
# otherwise invalid memory accesses in kernels, OpenCL API misuse (--check-api) and data races
# in local and global memory (--data-races). Fails on any report, on a driver failure, and when
# a kernel that cl/*.cl or plugins/*/*.cl defines did not run (the driver's kernel profile).
# Oclgrind replaces the OpenCL library (LD_PRELOAD, by its wrapper), so PoCL never loads and no
# PoCL binary or Strata disk cache entry can reach it; the driver selects the Oclgrind device by
# name, so it fails rather than test another device.
# STRATA_OCLGRIND_UNINITIALIZED=1 adds --uninitialized (with -cl-opt-disable: Oclgrind 21.10's
# uninitialized-value plugin stops at LLVM's freeze instruction). That check is not on by default:
# Oclgrind 21.10 tracks neither clEnqueueFillBuffer nor sub-buffers (Strata's tensor pools), so
# every kernel that reads a pooled tensor is reported (see the lead's notes).
# Usage: oclgrind.sh OCLGRIND DRIVER SOURCE_ROOT
set -u
oclgrind=$1 driver=$2 src=$3
work=$(mktemp -d "${TMPDIR:-/tmp}/strata-oclgrind.XXXXXX") || exit 1
trap 'rm -rf "$work"' EXIT
export XDG_CACHE_HOME="$work/cache"
log=$work/oclgrind.log

set -- --check-api --data-races --log "$log"
[ "${STRATA_OCLGRIND_UNINITIALIZED:-0}" = 1 ] && set -- "$@" --uninitialized --build-options -cl-opt-disable
echo "$oclgrind $* $driver"
"$oclgrind" "$@" "$driver" >"$work/out.txt" 2>"$work/err.txt"
rc=$?
cat "$work/out.txt"
# Kernel reports go to the log; --check-api's reports (and Oclgrind's fatal errors) to stderr,
# where anything but the driver's own lines counts as a report.
grep '^oclgrind_driver:' "$work/err.txt" >&2
grep -v '^oclgrind_driver:' "$work/err.txt" >>"$log"
fail=0
if [ "$rc" -ne 0 ]; then
	echo "oclgrind.sh: the driver failed (status $rc)"
	fail=1
fi
if [ -s "$log" ]; then
	echo "oclgrind.sh: Oclgrind reported errors; by message and kernel:"
	awk 'function flush() { if (msg != "" && !done) n[msg " | -"]++; done = 0 }
	     /^[A-Za-z]/ { flush(); msg = $0; sub(/ (at|from|to|of) .*$/, "", msg) }
	     /^\tKernel:/ && !done { n[msg " | " $2]++; done = 1 }
	     /^\tFunction:/ && !done { fn = $2 }
	     /^\tError:/ && !done { n[msg ": " $2 " | " fn]++; done = 1 }
	     END { flush(); for (k in n) printf "  %6d  %s\n", n[k], k }' "$log" | sort -k2
	echo "oclgrind.sh: the first reports:"
	head -n 120 "$log"
	fail=1
fi

# Kernels that only run on paths the public API never takes: `fill` zeroes weight gradients for
# an empty batch (plugins/common/weights.h, activation.h), and no training step has one.
unexercised="fill"
defined=$(cat "$src"/cl/*.cl "$src"/plugins/*/*.cl | grep -A1 '^__kernel' | grep -o 'void [A-Za-z_0-9]*' |
	cut -d' ' -f2 | sort -u)
ran=$(awk '/^Kernel time on/ { on = 1; next }
	   on && NF == 6 && $1 != "Layer" && $2 != "(layer" { print $3 }' "$work/out.txt" | sort -u)
for k in $defined; do
	case " $unexercised " in *" $k "*) continue ;; esac
	if ! printf '%s\n' "$ran" | grep -qx "$k"; then
		echo "oclgrind.sh: kernel $k never ran: add a model that needs it to tests/oclgrind_driver.c"
		fail=1
	fi
done
[ "$fail" -eq 0 ] && echo "oclgrind.sh: no errors; every kernel ran ($(echo $defined | wc -w) defined)"
exit "$fail"
