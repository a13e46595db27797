#!/bin/sh
# Builds bench/gemm_micro.c and times cl/gemm.cl's gemm_tile on mnist_cnn's conv2d_2 GEMMs at
# batch 128 (issue 19): forward on a plain A and on the images read in place as their im2col
# matrix, and the kernel gradient (A^T, K split 72 ways), with the block shape MR x 16·NV given
# (default 6 1, what `strata tune` chose on an AVX2 CPU). Run it on a quiet machine.
# Usage: bench/gemm_micro.sh [MR NV]
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
mr=${1:-6}
nv=${2:-1}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cc -O2 -std=c11 -D_POSIX_C_SOURCE=200809L -o "$tmp/gemm_micro" "$root/bench/gemm_micro.c" -lOpenCL -lm
run() { "$tmp/gemm_micro" "$root/cl/gemm.cl" "$@" 2>/dev/null | tail -1; }
run 73728 64 288 "$mr" "$nv"
run 73728 64 288 "$mr" "$nv" -w 26 26 32 3
run 288 64 73728 "$mr" "$nv" -t -s 72 -r 6
run 288 64 73728 "$mr" "$nv" -t -s 72 -r 6 -w 26 26 32 3
