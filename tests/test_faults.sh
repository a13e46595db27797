#!/bin/sh
# Resource faults: a batch too large for the device, a kernel that does not build, a device lost in
# the middle of a run, a full disk while saving, an unwritable cache folder. Each must end with a
# message that says what failed, and a non-zero status with the checkpoint saved before the fault
# intact (byte for byte) and no temporary file left. The faults are injected by a shim preloaded
# into the tool (tests/faults/cl_faults.c).
set -u
shim=${1:?usage: test_faults.sh cl_faults.so}
. "$(dirname "$0")/lib.sh"
said() { head -c 600 "$1" | tr '\n' ' '; }

# Per sample: 784 input floats, the outputs 784 + 32 + 32 + 10 and a dropout mask of 32: 6736 bytes
# for inference; training adds two gradient buffers of the largest activation (784): 13008 bytes.
mnist_mlp "$tmp/mlp.yaml" faults_mlp 32 32 3 9 || exit 1
run_args="$tmp/mlp.yaml --limit 1024"
loads() { "$strata" eval "$tmp/mlp.yaml" --weights "$1" >/dev/null 2>&1; }
no_temps() { [ -z "$(find "$1" -maxdepth 1 -name '*.tmp.*')" ]; }

# Uninterrupted checkpoints after 1, 2 and 3 epochs: what a failed run's W.stw must equal.
for k in 1 2 3; do
	mkdir "$tmp/ref$k"
	"$strata" train $run_args --epochs $k --save "$tmp/ref$k/W.stw" >"$tmp/ref$k/out" 2>&1
	check "the uninterrupted $k-epoch run exits 0 ($(tail -1 "$tmp/ref$k/out"))" $?
done

# A run resumed from the 1-epoch checkpoint that fails: status 1, `pattern` in the message,
# W.stw still the 1-epoch checkpoint. Extra arguments go to strata train; FAULT_ENV is the shim's.
resume_fails() { # name, pattern, strata train arguments...
	name=$1
	pattern=$2
	shift 2
	mkdir "$tmp/$name"
	cp "$tmp/ref1/W.stw" "$tmp/$name/W.stw"
	env $FAULT_ENV "$strata" train $run_args --epochs 3 --resume "$tmp/$name/W.stw" --save "$tmp/$name/W.stw" \
		"$@" >"$tmp/$name/out" 2>&1
	status=$?
	[ $status -eq 1 ] && grep -Eq "$pattern" "$tmp/$name/out"
	check "$name: status 1 and a message that says so (status $status: $(said "$tmp/$name/out"))" $?
	cmp -s "$tmp/$name/W.stw" "$tmp/ref1/W.stw" && loads "$tmp/$name/W.stw" && no_temps "$tmp/$name"
	check "$name: the earlier checkpoint is intact and no temporary is left" $?
	echo "$name: $(grep -v '^\(Training\|Epoch\|[0-9]\)' "$tmp/$name/out" | head -3 | tr '\n' ' ')"
}

# ---- Device memory --------------------------------------------------------------------------
# Refused before anything is allocated, with the sizes and a batch that fits.
FAULT_ENV=
resume_fails batch_too_large \
	"a batch of 100000000 needs [0-9.]+ MiB of device memory .*global memory of .*try --batch-size [0-9]+ or less" \
	--batch-size 100000000
# One buffer larger than the device allows (784 * 4 * 1000 bytes of input, 1 MiB allowed).
FAULT_ENV="LD_PRELOAD=$shim STRATA_FAULT_MAX_ALLOC=1048576"
resume_fails buffer_too_large \
	"the input batch needs 3136000 bytes in one buffer, more than .* allows \(1048576\); try a smaller --batch-size" \
	--batch-size 1000
# 64 MiB of global memory: a batch of 6000 fits for inference but not for training (74.6 MiB).
FAULT_ENV="LD_PRELOAD=$shim STRATA_FAULT_GLOBAL_MEM=67108864"
resume_fails training_too_large "training with a batch of 6000 needs 74.[0-9] MiB .* 64.0 MiB of global memory" \
	--batch-size 6000
# The driver refuses an allocation that the checks let through.
FAULT_ENV="LD_PRELOAD=$shim STRATA_FAULT_ALLOC_ABOVE=1048576"
resume_fails allocation_refused \
	"allocating 3136000 bytes for the input batch: CL_MEM_OBJECT_ALLOCATION_FAILURE \(-4\).*smaller --batch-size" \
	--batch-size 1000

# ---- A kernel that does not build -----------------------------------------------------------
plugin=${STRATA_TEST_PLUGIN_BAD_KERNEL:?run through meson test}
mkdir "$tmp/plugins"
ln -s "$plugin" "$tmp/plugins/bad_kernel.so"
cat >"$tmp/bad.yaml" <<'YAML'
input: {shape: [4]}
layers:
  - {type: test_bad_kernel}
YAML
"$strata" forward --random --batch 2 --plugin-path "$tmp/plugins" "$tmp/bad.yaml" >"$tmp/build.out" 2>&1
status=$?
[ $status -eq 1 ] && grep -q "building OpenCL program 'test_bad_kernel' (from test_bad_kernel) .* failed: CL_BUILD_PROGRAM_FAILURE" \
	"$tmp/build.out" && grep -q "5:.*expected ';'" "$tmp/build.out"
check "a kernel that does not build: status 1, the program, its plugin and the build log (status $status: $(said "$tmp/build.out"))" $?

# ---- A device lost in the middle of a run ---------------------------------------------------
# From the middle of an uninterrupted run on, every call of one kind fails. The run stops with the
# OpenCL error and the call (or what it was doing: a kernel launch, a wait for the previous step),
# and W.stw is the checkpoint of the last epoch it printed as done.
mkdir "$tmp/count"
LD_PRELOAD=$shim STRATA_FAULT_CL_COUNT="$tmp/counts" \
	"$strata" train $run_args --epochs 3 --save "$tmp/count/W.stw" >/dev/null 2>&1 &&
	cmp -s "$tmp/count/W.stw" "$tmp/ref3/W.stw"
check "a run under the shim without faults ends with the same weights" $?
lost() { # function, error, what the message names
	fn=$1
	error=$2
	what=$3
	calls=$(awk -v f="$fn" '$1 == f { print $2 }' "$tmp/counts")
	after=$((calls / 2))
	[ "$fn" = clFinish ] && after=0 # called at the end of training, and when closing
	dir="$tmp/lost_$fn"
	mkdir "$dir"
	LD_PRELOAD=$shim STRATA_FAULT_CL_FUNC=$fn STRATA_FAULT_CL_AFTER=$after STRATA_FAULT_CL_ERROR=$error \
		"$strata" train $run_args --epochs 3 --save "$dir/W.stw" >"$dir/out" 2>&1
	status=$?
	done=$(grep -c "^Epoch" "$dir/out")
	[ $status -eq 1 ] && grep -Eq "^strata: .*($what).*: $error \(-?[0-9]+\)" "$dir/out"
	check "$fn fails after $after of $calls calls: status 1, $error and the call named (status $status: $(said "$dir/out"))" $?
	[ "$done" -ge 1 ] && cmp -s "$dir/W.stw" "$tmp/ref$done/W.stw" && loads "$dir/W.stw" && no_temps "$dir" &&
		grep -q "the last checkpoint saved is intact; .* continue with: strata train .* --resume $dir/W.stw" "$dir/out"
	check "$fn: W.stw is epoch $done's checkpoint, intact, and the message says how to continue" $?
	echo "lost device, $fn: $(grep '^strata:' "$dir/out" | head -2 | tr '\n' ' ')"
}
lost clEnqueueNDRangeKernel CL_OUT_OF_RESOURCES "clEnqueueNDRangeKernel|CLBlast"
lost clWaitForEvents CL_EXEC_STATUS_ERROR_FOR_EVENTS_IN_WAIT_LIST "clWaitForEvents"
lost clEnqueueReadBuffer CL_INVALID_COMMAND_QUEUE "clEnqueueReadBuffer"
lost clFinish CL_DEVICE_NOT_AVAILABLE "clFinish"

# Lost while the weights are read back for a checkpoint. The validation data is the test set, so
# the reads of epoch 2's save sit halfway through a run resumed from epoch 1 (between two equal
# evaluations); the message says that the file was not written.
mkdir "$tmp/save_count"
cp "$tmp/ref1/W.stw" "$tmp/save_count/W.stw"
LD_PRELOAD=$shim STRATA_FAULT_CL_COUNT="$tmp/save_counts" "$strata" train $run_args --epochs 2 \
	--resume "$tmp/save_count/W.stw" --save "$tmp/save_count/W.stw" >/dev/null 2>&1
reads=$(awk '$1 == "clEnqueueReadBuffer" { print $2 }' "$tmp/save_counts")
FAULT_ENV="LD_PRELOAD=$shim STRATA_FAULT_CL_FUNC=clEnqueueReadBuffer STRATA_FAULT_CL_AFTER=$((reads / 2))"
resume_fails lost_in_save \
	"W.stw was not written \(it is unchanged\): reading [^ ]+ from the device failed: clEnqueueReadBuffer" \
	--epochs 2

# ---- A full disk while saving ---------------------------------------------------------------
FAULT_ENV="LD_PRELOAD=$shim STRATA_FAULT_ENOSPC_PREFIX=$tmp/disk_full/"
resume_fails disk_full "cannot write $tmp/disk_full/W.stw: the disk is full \(writing $tmp/disk_full/W.stw.tmp.[A-Za-z0-9]{6}: No space left on device\); .*W.stw is unchanged"
FAULT_ENV="LD_PRELOAD=$shim STRATA_FAULT_ENOSPC_AT=fsync STRATA_FAULT_ENOSPC_PREFIX=$tmp/disk_full_fsync/"
resume_fails disk_full_fsync "cannot write $tmp/disk_full_fsync/W.stw: the disk is full"

# ---- A cache folder that cannot be written --------------------------------------------------
# XDG_CACHE_HOME below a regular file: mkdir fails with ENOTDIR, even as root. A command that
# computes refuses to start, naming the folder, the reason and what to do; the checkpoint it was
# given stays byte for byte. Commands that need no cache keep working (`devices` with the OpenCL
# driver's own kernel cache moved below TMPDIR).
touch "$tmp/file"
mkdir "$tmp/tmpdir"
FAULT_ENV="XDG_CACHE_HOME=$tmp/file/cache"
resume_fails cache_unwritable \
	"^strata: cannot use the cache folder $tmp/file/cache/strata \(creating $tmp/file: Not a directory\), .*make it writable, or set XDG_CACHE_HOME to a folder you can write"
! grep -q "^Epoch" "$tmp/cache_unwritable/out"
check "cache_unwritable: refused before any epoch ran" $?
for cmd in devices layers "summary $tmp/mlp.yaml"; do
	(
		unset POCL_CACHE_DIR
		# shellcheck disable=SC2086 # the command's words
		XDG_CACHE_HOME="$tmp/file/cache" TMPDIR="$tmp/tmpdir" "$strata" $cmd
	) >"$tmp/cache.out" 2>&1
	status=$?
	[ $status -eq 0 ] && ! grep -q "^strata:" "$tmp/cache.out"
	check "an unwritable cache folder: strata $cmd still works (status $status: $(said "$tmp/cache.out"))" $?
done
# A cache folder that exists but takes no file (here its programs/ is a regular file): the runtime
# refuses it when it is created, before any work.
mkdir -p "$tmp/cache_file/strata"
touch "$tmp/cache_file/strata/programs"
FAULT_ENV="XDG_CACHE_HOME=$tmp/cache_file"
resume_fails cache_programs_file \
	"^strata: cannot use the kernel cache folder $tmp/cache_file/strata/programs \(cannot write in it: Not a directory\); .*XDG_CACHE_HOME"

echo "$passes passed, $fails failed"
[ "$fails" -eq 0 ]
