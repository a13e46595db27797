#!/bin/sh
# Crash-safe training. `strata train --save W.stw` is SIGKILLed at random moments and resumed from
# W.stw until it completes; the final W.stw must equal an uninterrupted run's byte for byte, W.stw
# must load after every kill, and the temporaries of saves killed midway must not pile up. Kills
# inside a save are made likely by a slow fsync (the fault shim, tests/faults/cl_faults.c) and
# certain by a kill in the middle of writing a checkpoint. Then Ctrl-C (SIGINT), raised inside a
# kernel launch and sent from outside: the run saves, exits 130 and prints the command that goes on,
# which must finish with the uninterrupted weights. Whatever the kills, the training log W.csv ends
# with one row per epoch end, in order, and seconds that never go back.
#
# The kill delays come from a seed, printed first; STRATA_CRASH_SEED=N replays a run. Crash-resume
# sequences run from scratch until there were at least STRATA_CRASH_ROUNDS of them (default 3),
# STRATA_CRASH_KILLS kills (default 12) and 2 kills inside a save, or 8 sequences.
set -u
shim=${1:?usage: test_crash_resume.sh cl_faults.so}
. "$(dirname "$0")/lib.sh"

mnist_mlp "$tmp/mlp.yaml" crash_mlp 32 32 4 5 || exit 1
# Every run of this file trains the same thing: 2048 digits, 4 epochs (64 batches each).
run_args="$tmp/mlp.yaml --limit 2048 --epochs 4"

now_ms() { echo $(($(date +%s%N) / 1000000)); }
seconds() { printf '%d.%03d' $(($1 / 1000)) $(($1 % 1000)); }
loads() { "$strata" eval "$tmp/mlp.yaml" --weights "$1" >/dev/null 2>&1; }
temps() { find "$1" -maxdepth 1 -name 'W.stw.tmp.*' | wc -l; }
# W.csv in folder $1 after the last run: its header once, then rows whose epochs and seconds never
# go back (a resumed run goes on from the seconds of its checkpoint's last epoch, and drops the rows
# the checkpoint does not hold), and exactly one epoch-end row (the rows with validation figures)
# for each of the 4 epochs, after all 64 batches. log_ends prints those rows, for the message.
log_ok() {
	awk -F, -v header="epoch,batch,loss,accuracy,val_loss,val_accuracy,images_per_s,seconds" '
		NR == 1 { bad = $0 != header; next }
		NF != 8 || $1 + 0 < epoch || $8 + 0 < seconds { bad = 1 }
		{ epoch = $1 + 0; seconds = $8 + 0 }
		$5 != "" { ends = ends " " $1 "/" $2 }
		END { exit bad || NR == 0 || ends != " 1/64 2/64 3/64 4/64" }' "$1/W.csv"
}
log_ends() { awk -F, 'NR > 1 && $5 != "" { printf "%s%s/%s at %s s", n++ ? ", " : "", $1, $2, $8 }' "$1/W.csv"; }

# The uninterrupted run, and how long one takes with the shim's slow fsync (the kills' range).
mkdir "$tmp/ref"
"$strata" train $run_args --save "$tmp/ref/W.stw" >"$tmp/ref/out" 2>&1
check "the uninterrupted run exits 0 ($(tail -2 "$tmp/ref/out"))" $?
ref="$tmp/ref/W.stw"
mkdir "$tmp/timed"
t0=$(now_ms)
LD_PRELOAD=$shim STRATA_FAULT_KILL_PREFIX="$tmp/timed/" STRATA_FAULT_FSYNC_DELAY_MS=120 \
	STRATA_FAULT_CL_COUNT="$tmp/counts" "$strata" train $run_args --save "$tmp/timed/W.stw" >/dev/null 2>&1
status=$?
span=$(($(now_ms) - t0))
[ $status -eq 0 ] && cmp -s "$tmp/timed/W.stw" "$ref"
check "a run under the shim (slow fsync, counting calls) ends with the same weights" $?

# ---- SIGKILL at random moments --------------------------------------------------------------
seed=${STRATA_CRASH_SEED:-$(($(date +%s) % 100000))}
rounds=${STRATA_CRASH_ROUNDS:-3}
min_kills=${STRATA_CRASH_KILLS:-12}
rng=$seed
# Delays shorter than a whole run, so that most attempts are killed and a round takes several:
# an attempt completes only when its delay outlasts the epochs it has left.
range=$((span * 3 / 4 + 100))
draw() { # sets $delay: ms, uniform in [0, range)
	rng=$(((rng * 1103515245 + 12345) % 2147483648))
	delay=$(((rng / 65536) % range))
}
echo "crash_resume: seed $seed, kills within $range ms (replay: STRATA_CRASH_SEED=$seed)"
kills=0
in_save=0
round=0
while [ $round -lt "$rounds" ] || { [ $round -lt 8 ] && { [ $kills -lt "$min_kills" ] || [ $in_save -lt 2 ]; }; }; do
	round=$((round + 1))
	work="$tmp/round$round"
	mkdir "$work"
	attempt=0
	while :; do
		attempt=$((attempt + 1))
		resume=
		[ -e "$work/W.stw" ] && resume="--resume $work/W.stw"
		draw
		touch "$work/.start"
		LD_PRELOAD=$shim STRATA_FAULT_KILL_PREFIX="$work/" STRATA_FAULT_FSYNC_DELAY_MS=120 \
			"$strata" train $run_args $resume --save "$work/W.stw" >"$work/out" 2>&1 &
		pid=$!
		sleep "$(seconds "$delay")"
		kill -KILL $pid 2>/dev/null
		wait $pid
		status=$?
		if [ $status -eq 0 ]; then
			echo "round $round attempt $attempt${resume:+ (resumed)}: completed before the kill at $(seconds "$delay") s"
			break
		fi
		if [ $status -ne 137 ]; then
			check "round $round attempt $attempt exits 0 or is killed (status $status: $(tail -3 "$work/out"))" 1
			break
		fi
		kills=$((kills + 1))
		left=$(temps "$work")
		# A temporary made by this attempt: the kill came between its creation and the rename.
		mine=$(find "$work" -maxdepth 1 -name 'W.stw.tmp.*' -newer "$work/.start" | wc -l)
		[ "$mine" -gt 0 ] && in_save=$((in_save + 1))
		echo "round $round attempt $attempt${resume:+ (resumed)}: killed at $(seconds "$delay") s," \
			"$left temporary file(s) left$([ "$mine" -gt 0 ] && echo ', this one killed inside a save')"
		[ "$left" -le 1 ]
		check "round $round attempt $attempt: at most one temporary is left ($left)" $?
		if [ -e "$work/W.stw" ]; then
			loads "$work/W.stw"
			check "round $round attempt $attempt: W.stw loads after the kill" $?
		fi
		if [ $attempt -ge 40 ]; then
			check "round $round completes within 40 attempts" 1
			break
		fi
	done
	[ $status -eq 0 ] && cmp -s "$work/W.stw" "$ref"
	check "round $round: the resumed run ends with the uninterrupted weights" $?
	log_ok "$work"
	check "round $round: W.csv has one row per epoch end, in order, seconds never going back ($(log_ends "$work"))" $?
	[ "$(temps "$work")" -eq 0 ]
	check "round $round: no temporary file is left at the end" $?
done
echo "crash_resume: $round rounds, $kills kills, $in_save of them inside a save (a temporary left behind)"

# ---- A kill in the middle of writing a checkpoint, and a live writer's temporary ------------
# The second checkpoint write is cut in half by a SIGKILL: W.stw stays the first epoch's and a
# half-written temporary remains. A temporary that a live writer holds locked (the shell, fd 9) is
# never removed; stale ones are removed by the next save.
work="$tmp/mid_save"
mkdir "$work"
kill_in_save() {
	LD_PRELOAD=$shim STRATA_FAULT_KILL_PREFIX="$work/" STRATA_FAULT_KILL_AT_WRITE=2 \
		"$strata" train $run_args "$@" --save "$work/W.stw" >"$work/out" 2>&1
}
kill_in_save
status=$?
first=$(find "$work" -name 'W.stw.tmp.*')
[ $status -eq 137 ] && [ -n "$first" ] && [ "$(wc -c <"$first")" -lt "$(wc -c <"$work/W.stw")" ] && loads "$work/W.stw"
check "killed writing the 2nd checkpoint (status $status): a half-written temporary, W.stw loads" $?
# The epoch's row is written and synced before its checkpoint: a kill between the two leaves a row
# the resumed run drops and writes again (log_ok below), never a checkpoint whose row is lost.
awk -F, 'NR > 1 && $5 != "" { e = e " " $1 } END { exit e != " 1 2" }' "$work/W.csv"
check "killed writing the 2nd checkpoint: W.csv already holds the rows of epochs 1 and 2 ($(log_ends "$work"))" $?
exec 9>"$work/W.stw.tmp.LIVE01"
flock 9
kill_in_save --resume "$work/W.stw"
status=$?
[ $status -eq 137 ] && [ ! -e "$first" ] && [ -e "$work/W.stw.tmp.LIVE01" ] && [ "$(temps "$work")" -eq 2 ] &&
	loads "$work/W.stw"
check "the next save removed the stale temporary, kept the locked one (status $status, $(temps "$work") left)" $?
exec 9>&-
"$strata" train $run_args --resume "$work/W.stw" --save "$work/W.stw" >"$work/out" 2>&1 &&
	cmp -s "$work/W.stw" "$ref" && [ "$(temps "$work")" -eq 0 ]
check "resumed after kills inside saves: the uninterrupted weights, no temporary left" $?
log_ok "$work"
check "after kills inside saves, W.csv has one row per epoch end, in order ($(log_ends "$work"))" $?

# ---- Ctrl-C ---------------------------------------------------------------------------------
# Runs the "continue with: ..." command a Ctrl-C printed, which must finish the training.
continue_from() {
	cmd=$(sed -n 's/^strata: continue with: strata //p' "$1")
	[ -n "$cmd" ] && eval "\"\$strata\" $cmd" >"$1.continued" 2>&1
}

# Raised inside a kernel launch halfway through the run: a mid-epoch checkpoint.
launches=$(awk '$1 == "clEnqueueNDRangeKernel" { print $2 }' "$tmp/counts")
work="$tmp/sigint"
mkdir "$work"
LD_PRELOAD=$shim STRATA_FAULT_SIGINT_AFTER=$((launches / 2)) \
	"$strata" train $run_args --save "$work/W.stw" >"$work/out" 2>&1
status=$?
[ $status -eq 130 ] && grep -q "^strata: interrupted .*checkpoint saved to $work/W.stw" "$work/out" && loads "$work/W.stw"
check "SIGINT halfway: exit 130, a checkpoint that loads (status $status: $(tail -2 "$work/out"))" $?
continue_from "$work/out" && cmp -s "$work/W.stw" "$ref"
check "the printed command continues to the uninterrupted weights ($(grep 'continue with' "$work/out"))" $?
log_ok "$work"
check "after a mid-epoch SIGINT, W.csv has one row per epoch end, in order ($(log_ends "$work"))" $?

# Sent from outside once the first epoch is saved.
work="$tmp/sigint_ext"
mkdir "$work"
LD_PRELOAD=$shim STRATA_FAULT_KILL_PREFIX="$work/" STRATA_FAULT_FSYNC_DELAY_MS=120 \
	"$strata" train $run_args --save "$work/W.stw" >"$work/out" 2>&1 &
pid=$!
waited=0
while ! grep -q "^Epoch 1/4" "$work/out" && [ $waited -lt 3000 ]; do
	sleep 0.02
	waited=$((waited + 1))
done
kill -INT $pid
wait $pid
status=$?
[ $status -eq 130 ] && grep -q "^strata: interrupted" "$work/out" && loads "$work/W.stw"
check "SIGINT from outside after epoch 1: exit 130 and a checkpoint (status $status: $(tail -2 "$work/out"))" $?
continue_from "$work/out" && cmp -s "$work/W.stw" "$ref"
check "continuing after the outside SIGINT ends with the uninterrupted weights" $?
log_ok "$work"
check "after the outside SIGINT, W.csv has one row per epoch end, in order ($(log_ends "$work"))" $?

echo "$passes passed, $fails failed"
[ "$fails" -eq 0 ]
