#!/bin/sh
# Data-parallel training's scaling on this machine (issue 18), mnist_cnn (without its test set:
# no validation pass), one epoch of LIMIT images (default 12800), PoCL limited to one thread per
# process:
#  1. one process on one core, and two independent ones at once (the machine's ceiling: they share
#     the L3 cache and memory), against `mpirun -np 2` with one core each (--bind-to core): weak
#     scaling (a batch of 128 per rank) and strong (a global batch of 128), images/s, the
#     efficiency (speed-up / 2), and each rank's compute and collective time per step (--profile);
#  2. two ranks of unequal speed (rank 1's GEMMs on CLBlast, slower here than Strata's own):
#     --balance even against --balance auto;
#  3. a rank killed mid-run: the seconds until mpirun has ended every rank.
# Run it on a quiet machine. Open MPI as root needs OMPI_ALLOW_RUN_AS_ROOT: set here, for this
# script only.
# Usage: bench/mpi_scaling.sh [--strata build/src/strata] [--limit 12800] [--rounds 3]
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
strata=$root/build/src/strata
limit=12800
rounds=3
while [ $# -gt 0 ]; do
	case $1 in
	--strata) strata=$2; shift 2 ;;
	--limit) limit=$2; shift 2 ;;
	--rounds) rounds=$2; shift 2 ;;
	*) echo "usage: $0 [--strata PATH] [--limit N] [--rounds 3]" >&2; exit 2 ;;
	esac
done
command -v mpirun >/dev/null || { echo "mpi_scaling.sh: mpirun not found (apt-get install openmpi-bin)" >&2; exit 1; }
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export OMPI_MCA_btl=self,vader OMPI_MCA_btl_vader_single_copy_mechanism=none
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
sed -e "s#\.\./data/mnist#$root/data/mnist#" -e "/test_images/d" -e "/test_labels/d" "$root/models/mnist_cnn.yaml" \
	>"$tmp/m.yaml"
echo "machine: $(uname -m), $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')"
echo "mnist_cnn, $limit images, PoCL one thread per process; $(mpirun --version | head -1)"
# Warm the kernel caches (compiling is not what is measured), PoCL's per launch size too.
for b in 64 128 256; do
	POCL_MAX_PTHREAD_COUNT=1 "$strata" train "$tmp/m.yaml" --limit 512 --epochs 1 --batch-size $b >/dev/null 2>&1
	STRATA_GEMM=clblast POCL_MAX_PTHREAD_COUNT=1 "$strata" train "$tmp/m.yaml" --limit 512 --epochs 1 --batch-size $b \
		>/dev/null 2>&1
done

# speed FILE: the epoch's images/s from strata train's last progress line.
speed() {
	tr '\r' '\n' <"$1" | sed -n 's/.* - \([0-9]*\) img\/s.*/\1/p' | tail -1
}

# one_core BATCH: one process on core 0; two_ranks NAME BATCH MPIRUN_ARGS: two ranks, a core each;
# each prints the epoch's images/s.
one_core() {
	POCL_MAX_PTHREAD_COUNT=1 taskset -c 0 "$strata" train "$tmp/m.yaml" --limit "$limit" --epochs 1 --batch-size "$1" \
		>"$tmp/one$1.txt" 2>&1
	speed "$tmp/one$1.txt"
}
two_ranks() {
	name=$1 batch=$2
	shift 2
	mpirun --bind-to core --map-by core -x POCL_MAX_PTHREAD_COUNT=1 "$@" >"$tmp/$name.txt" 2>&1
	speed "$tmp/$name.txt"
}
train="train $tmp/m.yaml --limit $limit --epochs 1 --profile"

# median A B C...: the middle value.
median() {
	printf '%s\n' "$@" | sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'
}

# Rounds of: one process on one core; two independent processes at once, one core each (no MPI:
# they share the L3 cache and memory, so together they bound what two ranks can: the machine's
# ceiling); two ranks, a batch of 128 each (weak scaling, as data parallelism is used: Horovod's
# figures). This VM's speed drifts by 10 to 20% between minutes, hence rounds and medians.
ones="" pairs="" weaks=""
for round in $(seq 1 "$rounds"); do
	ones="$ones $(one_core 128)"
	POCL_MAX_PTHREAD_COUNT=1 taskset -c 1 "$strata" train "$tmp/m.yaml" --limit "$limit" --epochs 1 --batch-size 128 \
		>"$tmp/pair1.txt" 2>&1 &
	pair=$!
	POCL_MAX_PTHREAD_COUNT=1 taskset -c 0 "$strata" train "$tmp/m.yaml" --limit "$limit" --epochs 1 --batch-size 128 \
		>"$tmp/pair0.txt" 2>&1
	wait $pair
	pairs="$pairs $(($(speed "$tmp/pair0.txt") + $(speed "$tmp/pair1.txt")))"
	weaks="$weaks $(two_ranks weak 256 -np 2 "$strata" $train --batch-size 256)"
done
one128=$(median $ones)
pair=$(median $pairs)
weak=$(median $weaks)
echo "rounds: 1 process:$ones; 2 independent:$pairs; 2 ranks:$weaks (images/s)"
echo "1 process, 1 core, batch 128:                 $one128 images/s (median)"
echo "2 independent processes at once, batch 128:   $pair images/s together (median; the machine's ceiling)"
echo "2 ranks, 1 core each, batch 256 (128 a rank): $weak images/s (median)"
awk -v a="$one128" -v b="$weak" -v c="$pair" 'BEGIN { printf "  weak scaling: speed-up %.2fx, efficiency %.1f%%; %.1f%% of the ceiling\n", b / a, 50 * b / a, 100 * b / c }'
grep "^rank [0-9]*: .* gradient exchanges" "$tmp/weak.txt" | sed 's/^/  /'

# Strong scaling: the global batch of 128 shared, each rank computing 64, where this CPU is less
# efficient per image than at 128.
one64=$(one_core 64)
strong=$(two_ranks strong 128 -np 2 "$strata" $train --batch-size 128)
echo "1 process, 1 core, batch 64:                  $one64 images/s"
echo "2 ranks, 1 core each, batch 128 (64 a rank):  $strong images/s"
awk -v a="$one128" -v b="$strong" -v c="$one64" 'BEGIN { printf "  strong scaling: speed-up %.2fx, efficiency %.1f%% (%.1f%% of two batch-64 processes)\n", b / a, 50 * b / a, 50 * b / c }'
grep "^rank [0-9]*: .* gradient exchanges" "$tmp/strong.txt" | sed 's/^/  /'

# Ranks of unequal speed: rank 1's GEMMs on CLBlast, which runs this network at about 0.6 times
# the speed of Strata's own GEMM on this CPU (an older or smaller device, in effect).
for balance in even auto; do
	s=$(two_ranks "$balance" 128 -np 1 "$strata" $train --batch-size 128 --balance "$balance" : \
		-np 1 -x STRATA_GEMM=clblast "$strata" $train --batch-size 128 --balance "$balance")
	echo "rank 1 on CLBlast, batch 128, --balance $balance: $s images/s"
	grep "^rank [0-9]*: .* gradient exchanges" "$tmp/$balance.txt" | sed 's/^/  /'
done

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
