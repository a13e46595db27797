#!/bin/sh
# Data-parallel training's scaling on this machine (issue 18), mnist_cnn, batch 128, one epoch of
# LIMIT images (default 12800), PoCL limited to one thread per process:
#  1. one process on one core, then `mpirun -np 2` with one core each (--bind-to core): images/s,
#     the efficiency (speed-up / 2), and each rank's compute and allreduce time per step
#     (--profile);
#  2. two ranks of unequal speed (a busy loop shares rank 1's core, so it runs at about half
#     speed): --balance even against --balance auto;
#  3. a rank killed mid-run: the seconds until mpirun has ended every rank.
# Run it on a quiet machine. Open MPI as root needs OMPI_ALLOW_RUN_AS_ROOT: set here, for this
# script only.
# Usage: bench/mpi_scaling.sh [--strata build/src/strata] [--limit 12800]
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
strata=$root/build/src/strata
limit=12800
while [ $# -gt 0 ]; do
	case $1 in
	--strata) strata=$2; shift 2 ;;
	--limit) limit=$2; shift 2 ;;
	*) echo "usage: $0 [--strata PATH] [--limit N]" >&2; exit 2 ;;
	esac
done
command -v mpirun >/dev/null || { echo "mpi_scaling.sh: mpirun not found (apt-get install openmpi-bin)" >&2; exit 1; }
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export OMPI_MCA_btl=self,vader OMPI_MCA_btl_vader_single_copy_mechanism=none
tmp=$(mktemp -d)
hog=""
trap '[ -n "$hog" ] && kill $hog 2>/dev/null; rm -rf "$tmp"' EXIT
sed "s#\.\./data/mnist#$root/data/mnist#" "$root/models/mnist_cnn.yaml" >"$tmp/m.yaml"
echo "machine: $(uname -m), $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')"
echo "mnist_cnn, batch 128, $limit images, PoCL one thread per process; $(mpirun --version | head -1)"
args="--limit $limit --epochs 1 --batch-size 128"
# Warm the kernel caches (compiling is not what is measured).
POCL_MAX_PTHREAD_COUNT=1 "$strata" train "$tmp/m.yaml" --limit 256 --epochs 1 --batch-size 128 >/dev/null 2>&1

# speed FILE: the epoch's images/s from strata train's last progress line.
speed() {
	tr '\r' '\n' <"$1" | sed -n 's/.* - \([0-9]*\) img\/s.*/\1/p' | tail -1
}

POCL_MAX_PTHREAD_COUNT=1 taskset -c 0 "$strata" train "$tmp/m.yaml" $args >"$tmp/one.txt" 2>&1
one=$(speed "$tmp/one.txt")
mpirun -np 2 --bind-to core --map-by core -x POCL_MAX_PTHREAD_COUNT=1 \
	"$strata" train "$tmp/m.yaml" $args --profile >"$tmp/two.txt" 2>&1
two=$(speed "$tmp/two.txt")
echo "1 process, 1 core:        $one images/s"
echo "2 ranks, 1 core each:     $two images/s"
awk -v a="$one" -v b="$two" 'BEGIN { printf "speed-up %.2fx, efficiency %.1f%%\n", b / a, 50 * b / a }'
grep "^rank [0-9]*: .* gradient exchanges" "$tmp/two.txt"

# A busy loop on core 1: rank 1 (bound there) gets about half of it.
taskset -c 1 sh -c 'while :; do :; done' &
hog=$!
for balance in even auto; do
	mpirun -np 2 --bind-to core --map-by core -x POCL_MAX_PTHREAD_COUNT=1 \
		"$strata" train "$tmp/m.yaml" $args --balance "$balance" --profile >"$tmp/$balance.txt" 2>&1
	echo "rank 1 slowed, --balance $balance: $(speed "$tmp/$balance.txt") images/s"
	grep "^rank [0-9]*: .* gradient exchanges" "$tmp/$balance.txt"
done
kill $hog
hog=""

# A rank killed mid-run: the seconds from the kill until mpirun has ended.
mpirun -np 2 --oversubscribe "$strata" train "$tmp/m.yaml" --batch-size 128 --epochs 20 >"$tmp/kill.txt" 2>&1 &
job=$!
until grep -q "loss:" "$tmp/kill.txt" 2>/dev/null; do sleep 0.2; done
victim=$(pgrep -P "$job" -f "strata train" | tail -1)
start=$(date +%s.%N)
kill -9 "$victim"
wait "$job" || true
end=$(date +%s.%N)
awk -v s="$start" -v e="$end" 'BEGIN { printf "rank killed: every rank ended %.1f s later\n", e - s }'
grep -m1 "exited on signal" "$tmp/kill.txt" || true
