#!/bin/sh
# `mpirun -np N strata train` (issue 18) on loopback at a small size: mnist_cnn on 384 images in
# batches of 64 (the last one short), Open MPI's ranks oversubscribing the two cores;
#  - --deterministic: 1 process, 2 ranks and 4 ranks write the same checkpoint byte for byte;
#  - the fast sum: 2 ranks end within 1e-5 of one process without mpirun, --balance auto too;
#  - --resume with another number of ranks: 2 ranks for an epoch, then 1 process for the next,
#    byte for byte the checkpoint of 1 process for both;
#  - rank 0 alone prints and saves; --device's {local_rank} gives each rank its device;
#  - faults: a rank killed mid-run ends every rank within 10 s, mpirun naming the rank and host;
#    a rank whose device is lost (the fault shim) aborts the job naming itself and the failed call;
#    a rank that stops answering ends the job after --collective-timeout, the waiting rank naming
#    itself, its host and what it waited for; the last checkpoint stays intact;
#  - bad command lines exit 2.
set -u
shim=${1:?usage: test_mpi.sh cl_faults.so}
. "$(dirname "$0")/lib.sh"
private_cache
# Open MPI refuses root unless told; only the tests and benches say so (scripts/ docs).
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
# Loopback only: no probing of other networks, shared memory between the ranks.
export OMPI_MCA_btl=self,vader OMPI_MCA_btl_vader_single_copy_mechanism=none
mpirun="mpirun --oversubscribe --bind-to none"
python=/usr/bin/python3

data=$(cd "$src/../data/mnist" 2>/dev/null && pwd) || { echo "FAIL: run scripts/fetch-mnist.sh"; exit 1; }
# Without its test set: no validation each epoch, no test at the end (minutes of CI otherwise).
sed -e "s#\.\./data/mnist#$data#" -e "/test_images/d" -e "/test_labels/d" "$src/../models/mnist_cnn.yaml" >"$tmp/m.yaml"
train="--limit 384 --batch-size 64 --epochs 1"

# close A B TOL: the weights of two checkpoints agree within TOL (absolute).
close() {
	PYTHONPATH="$src/../bench" $python -c '
import sys
from pytorch_reference import read_stw
_, a = read_stw(sys.argv[1])
_, b = read_stw(sys.argv[2])
worst = max(float(abs(a[k] - b[k]).max()) for k in a)
print(f"largest difference {worst:.3g}")
sys.exit(0 if set(a) == set(b) and worst <= float(sys.argv[3]) else 1)' "$1" "$2" "$3"
}

# ---- deterministic: any number of ranks, the same bytes -----------------------------------------
"$strata" train "$tmp/m.yaml" $train --deterministic --save "$tmp/d1.stw" >"$tmp/out" 2>&1
check "1 process --deterministic: $(said)" $?
grep -q "deterministic: 4 shards a batch" "$tmp/out"
check "the shards are said: $(said)" $?
$mpirun -np 2 "$strata" train "$tmp/m.yaml" $train --deterministic --save "$tmp/d2.stw" >"$tmp/out" 2>&1
check "mpirun -np 2 --deterministic: $(said)" $?
grep -q "rank 1 on" "$tmp/out" && [ "$(grep -c '^Epoch 1/1' "$tmp/out")" -eq 1 ] &&
	[ "$(grep -c '^Weights saved' "$tmp/out")" -eq 1 ]
check "rank 0 alone prints, naming every rank's device: $(said)" $?
cmp "$tmp/d1.stw" "$tmp/d2.stw"
check "2 ranks write the checkpoint of 1 process byte for byte" $?
$mpirun -np 4 "$strata" train "$tmp/m.yaml" $train --deterministic --save "$tmp/d4.stw" >"$tmp/out" 2>&1
check "mpirun -np 4 --deterministic: $(said)" $?
cmp "$tmp/d1.stw" "$tmp/d4.stw"
check "4 ranks write the checkpoint of 1 process byte for byte" $?

# ---- the fast sum, even and balanced --------------------------------------------------------------
"$strata" train "$tmp/m.yaml" $train --save "$tmp/f1.stw" >"$tmp/out" 2>&1
check "1 process: $(said)" $?
$mpirun -np 2 "$strata" train "$tmp/m.yaml" $train --save "$tmp/f2.stw" >"$tmp/out" 2>&1
check "mpirun -np 2: $(said)" $?
close "$tmp/f1.stw" "$tmp/f2.stw" 1e-5 >"$tmp/out" 2>&1
check "2 ranks within 1e-5 of 1 process: $(said)" $?
$mpirun -np 2 "$strata" train "$tmp/m.yaml" $train --balance auto --save "$tmp/b2.stw" >"$tmp/out" 2>&1
check "mpirun -np 2 --balance auto: $(said)" $?
close "$tmp/f1.stw" "$tmp/b2.stw" 1e-5 >"$tmp/out" 2>&1
check "--balance auto within 1e-5 of 1 process: $(said)" $?

# ---- resume with another number of ranks -------------------------------------------------------
"$strata" train "$tmp/m.yaml" --limit 384 --batch-size 64 --epochs 2 --deterministic --save "$tmp/r1.stw" \
	>"$tmp/out" 2>&1
check "1 process, 2 epochs: $(said)" $?
$mpirun -np 2 "$strata" train "$tmp/m.yaml" $train --deterministic --save "$tmp/r2.stw" >"$tmp/out" 2>&1 &&
	"$strata" train "$tmp/m.yaml" --limit 384 --batch-size 64 --epochs 2 --deterministic --resume "$tmp/r2.stw" \
		--save "$tmp/r2.stw" >"$tmp/out" 2>&1
check "2 ranks, then 1 process resuming: $(said)" $?
cmp "$tmp/r1.stw" "$tmp/r2.stw"
check "resumed with another number of ranks: the same checkpoint" $?

# ---- faults ----------------------------------------------------------------------------------
# run_job NAME ARGS: mpirun in the background ($job), its ranks' PIDs once both train ($ranks).
run_job() {
	name=$1
	shift
	$mpirun -np 2 "$strata" train "$tmp/m.yaml" --limit 384 --batch-size 64 --epochs 1000 "$@" >"$tmp/$name.out" 2>&1 &
	job=$!
	ranks=""
	for _ in $(seq 1 600); do
		grep -q "loss:" "$tmp/$name.out" 2>/dev/null && break
		sleep 0.1
	done
	ranks=$(pgrep -P "$job" -f "strata train" | tr '\n' ' ')
}

# ended_within SECONDS: $job is gone within SECONDS; its status in $rc.
ended_within() {
	for _ in $(seq 1 $(($1 * 10))); do
		kill -0 "$job" 2>/dev/null || break
		sleep 0.1
	done
	if kill -0 "$job" 2>/dev/null; then
		kill -9 "$job" $ranks 2>/dev/null
		rc=999
		return 1
	fi
	wait "$job"
	rc=$?
	return 0
}

run_job kill --save "$tmp/k.stw"
set -- $ranks
[ $# -eq 2 ]
check "two ranks training: $ranks $(tail -c 400 "$tmp/kill.out")" $?
sleep 3 # checkpoints every epoch (under a second): the kill may land in one, the file stays whole
kill -9 "$2"
ended_within 10
check "a killed rank ends every rank within 10 s" $?
[ "$rc" -ne 0 ] && grep -q "rank 1" "$tmp/kill.out" && grep -qi "signal 9\|killed" "$tmp/kill.out"
check "mpirun exits non-zero naming the rank and the cause: $(tail -c 600 "$tmp/kill.out")" $?
# read_stw checks the structure and the CRC-32 of the whole file.
[ ! -e "$tmp/k.stw" ] || close "$tmp/k.stw" "$tmp/k.stw" 0 >"$tmp/out" 2>&1
check "the last checkpoint is intact: $(said)" $?

run_job hang --collective-timeout 3
set -- $ranks
kill -STOP "$2"
ended_within 15
check "a rank that stops answering ends the job after the timeout" $?
[ "$rc" -ne 0 ] && grep -q "rank 0 of 2 on .*waited more than 3 s for the other ranks" "$tmp/hang.out"
check "the waiting rank names itself, its host and what it waited for: $(tail -c 600 "$tmp/hang.out")" $?
kill -9 "$2" 2>/dev/null

# A device lost on rank 1 (the fault shim fails its OpenCL calls after the first 400): the job
# ends at once, rank 1 naming itself, its host and the failed call.
start=$(date +%s)
$mpirun -np 1 "$strata" train "$tmp/m.yaml" --limit 384 --batch-size 64 --epochs 1000 --save "$tmp/l.stw" : \
	-np 1 -x LD_PRELOAD="$shim" -x STRATA_FAULT_CL_AFTER=400 \
	"$strata" train "$tmp/m.yaml" --limit 384 --batch-size 64 --epochs 1000 >"$tmp/out" 2>&1
rc=$?
[ "$rc" -ne 0 ] && [ $(($(date +%s) - start)) -lt 60 ] && grep -q "strata: rank 1 of 2 on .*: .*cl[A-Z][A-Za-z]*" "$tmp/out"
check "a device lost on one rank ends the job, naming the rank, host and call: $(said)" $?

# ---- each rank its device ---------------------------------------------------------------------
# This machine has one device, cpu:0: rank 1's gpu:1 (or cpu:1) is missing, and the job ends.
$mpirun -np 2 "$strata" train "$tmp/m.yaml" $train --device 'cpu:{local_rank}' >"$tmp/out" 2>&1
[ $? -ne 0 ] && grep -q "no OpenCL device matches 'cpu:1'" "$tmp/out" && ! grep -q "matches 'cpu:0'" "$tmp/out"
check "--device cpu:{local_rank} is cpu:0 for rank 0, cpu:1 for rank 1: $(said)" $?

# ---- bad command lines ------------------------------------------------------------------------
"$strata" train "$tmp/m.yaml" --shards 4 >"$tmp/out" 2>&1
[ $? -eq 2 ] && grep -q "add --deterministic" "$tmp/out"
check "--shards without --deterministic exits 2: $(said)" $?
"$strata" train "$tmp/m.yaml" --balance fast >"$tmp/out" 2>&1
[ $? -eq 2 ] && grep -q "neither even nor auto" "$tmp/out"
check "--balance fast exits 2: $(said)" $?
$mpirun -np 2 "$strata" train "$tmp/m.yaml" $train --deterministic --shards 3 >"$tmp/out" 2>&1
[ $? -ne 0 ] && grep -q "not a multiple of the 2 ranks" "$tmp/out"
check "3 shards on 2 ranks fail: $(said)" $?
"$strata" train "$tmp/m.yaml" --device 'cpu:{node}' >"$tmp/out" 2>&1
[ $? -eq 2 ] && grep -q "only {rank} and {local_rank}" "$tmp/out"
check "an unknown brace in --device exits 2: $(said)" $?

echo "$passes passed, $fails failed"
[ "$fails" -eq 0 ]
