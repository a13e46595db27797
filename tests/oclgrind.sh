#!/bin/sh
# The 'oclgrind' test: tests/oclgrind_driver.c under Oclgrind, which reports out-of-bounds and
# otherwise invalid memory accesses in kernels, OpenCL API misuse (--check-api), data races in
# local and global memory (--data-races) and values used or stored before anything wrote them
# (--uninitialized), with each GEMM engine (CLBlast's pass: accesses only, below). Fails on any
# report, on a driver failure, and when a kernel that cl/*.cl or plugins/*/*.cl defines did not
# run (the driver's kernel profiles).
# Oclgrind replaces the OpenCL library (LD_PRELOAD, by its wrapper), so PoCL never loads and no
# PoCL binary or Strata disk cache entry can reach it; the driver selects the Oclgrind device by
# name, so it fails rather than test another device.
# --uninitialized needs two things. -cl-opt-disable: Oclgrind 21.10's uninitialized-value plugin
# aborts on LLVM's freeze instruction, which optimized builds contain. STRATA_POOL=separate (see
# src/tensor_pool.h): the plugin follows kernel stores exactly, but takes each store from the
# host as the whole of what is known about its buffer, so sub-buffers written from the host,
# clEnqueueFillBuffer and partial writes would make it report every later read; in that mode
# Strata gives each tensor its own buffer and writes none of them partially from the host. The
# plugin also never forgets a released buffer: Oclgrind hands its number, with what the plugin
# knew of it, to the next buffer created, so buffers freed and made again mid-run (the driver
# keeps every model's until the end) give false reports, or hide true ones.
# Usage: oclgrind.sh OCLGRIND DRIVER SOURCE_ROOT
set -u
oclgrind=$1 driver=$2 src=$3
work=$(mktemp -d "${TMPDIR:-/tmp}/strata-oclgrind.XXXXXX") || exit 1
trap 'rm -rf "$work"' EXIT
export XDG_CACHE_HOME="$work/cache" STRATA_POOL=separate

# Once per GEMM engine (STRATA_GEMM): CLBlast's kernels, then cl/gemm.cl's. The engines share
# everything else. The CLBlast pass checks memory accesses and API use only: CLBlast's kernels are
# not ours to race-check, Strata's run in full in the second pass, and --data-races with
# --uninitialized on unoptimized code made that pass take over 10 minutes instead of 42 s.
fail=0
for engine in clblast strata; do
	log=$work/$engine.log
	if [ "$engine" = clblast ]; then
		set -- --check-api --log "$log"
	else
		set -- --check-api --data-races --uninitialized --build-options -cl-opt-disable --log "$log"
	fi
	echo "STRATA_POOL=$STRATA_POOL STRATA_GEMM=$engine $oclgrind $* $driver"
	STRATA_GEMM=$engine "$oclgrind" "$@" "$driver" >"$work/$engine.out" 2>"$work/$engine.err"
	rc=$?
	cat "$work/$engine.out"
	# Kernel reports go to the log; --check-api's reports (and Oclgrind's fatal errors) to
	# stderr, where anything but the driver's own lines counts as a report.
	grep '^oclgrind_driver:' "$work/$engine.err" >&2
	grep -v '^oclgrind_driver:' "$work/$engine.err" >>"$log"
	if [ "$rc" -ne 0 ]; then
		echo "oclgrind.sh: the driver failed with STRATA_GEMM=$engine (status $rc)"
		fail=1
	fi
	if [ -s "$log" ]; then
		echo "oclgrind.sh: Oclgrind reported errors with STRATA_GEMM=$engine; by message and kernel:"
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
done

defined=$(cat "$src"/cl/*.cl "$src"/plugins/*/*.cl | grep -A1 '^__kernel' | grep -o 'void [A-Za-z_0-9]*' |
	cut -d' ' -f2 | sort -u)
# The profile's rows (layer, phase, kernel, then figures) between its header and its total.
ran=$(awk 'FNR == 1 { on = 0 } /^Kernel time on/ { on = 1; next } on && $1 == "total" { on = 0; next }
	   on && NF >= 6 && $1 != "Layer" && $2 != "(layer" { print $3 }' "$work"/*.out | sort -u)
for k in $defined; do
	if ! printf '%s\n' "$ran" | grep -qx "$k"; then
		echo "oclgrind.sh: kernel $k never ran: add a model that needs it to tests/oclgrind_driver.c"
		fail=1
	fi
done
[ "$fail" -eq 0 ] && echo "oclgrind.sh: no errors; every kernel ran ($(echo $defined | wc -w) defined)"
exit "$fail"
