#!/bin/sh
# This machine's float32 peak (issue 19): bench/fma_peak.c built for this CPU (-march=native,
# FMA contraction on) and run on one core, then on every core. Run it on a quiet machine.
# Usage: bench/peak.sh
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cc -O2 -march=native -ffp-contract=fast -std=c11 -D_POSIX_C_SOURCE=200809L -pthread -o "$tmp/fma_peak" \
	"$root/bench/fma_peak.c"
echo "machine: $(uname -m), $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')"
echo "FMA instructions in the loop: $(objdump -d "$tmp/fma_peak" | grep -c 'vfmadd')"
"$tmp/fma_peak" 1
"$tmp/fma_peak"
