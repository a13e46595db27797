#!/bin/sh
# Guard mode and `strata check-plugin` (issue 13): out-of-tree plugins written and built here
# against include/ (as a plugin author builds them): `bad`, whose forward kernel writes one element
# past its output; `good`, the same layer written correctly; `broken`, whose kernel does not
# compile. check-plugin must fail bad.so naming the kernel, the layer, the tensor and the offset,
# pass good.so, and report broken.so's compile error at its program's name and line; `strata train`
# of a model using the bad layer must fail under --guard with that message, and run without it
# (the write lands unseen: the problem the guard solves); under Oclgrind (when installed)
# check-plugin --oclgrind must fail bad.so and pass good.so; and every built-in plugin must pass.
set -u
. "$(dirname "$0")/lib.sh"
build=${STRATA_TEST_BUILDDIR:?run through meson test}/..
cc=${CC:-cc}

# plugin NAME STORE: a layer type NAME, y = 2 x elementwise, whose kernel stores with STORE.
plugin() {
	cat >"$tmp/$1.c" <<EOF
#include <stdint.h>
#include <strata/plugin.h>

static const char *const src =
	"__kernel void ${1}_double(__global const float *x, __global float *y, const uint n)\n"
	"{\n"
	"	const size_t i = get_global_id(0);\n"
	"	if (i >= n)\n"
	"		return;\n"
	"	$2\n"
	"}\n";

static size_t elems(const strata_shape *s)
{
	size_t n = 1;
	for (uint32_t i = 0; i < s->rank; i++)
		n *= (size_t)s->dims[i];
	return n;
}

static strata_status build(strata_layer *layer, const strata_host *host, const strata_shape *in, strata_shape *out)
{
	(void)layer;
	(void)host;
	*out = *in;
	return STRATA_OK;
}

static strata_status run(strata_layer *layer, const strata_host *host, strata_tensor *x, strata_tensor *y,
                         uint32_t batch)
{
	size_t n = (size_t)batch * elems(host->input_shape(layer));
	strata_kernel *k = host->kernel(layer, "$1", "${1}_double", NULL);
	if (!k)
		return host->last_status(layer);
	const strata_arg args[] = {strata_arg_tensor(x), strata_arg_tensor(y), strata_arg_uint((uint32_t)n)};
	return host->launch(layer, k, 1, &n, NULL, 3, args);
}

static strata_status forward(strata_layer *layer, const strata_host *host, const strata_forward_args *a)
{
	return run(layer, host, a->input, a->output, a->batch);
}

static strata_status backward(strata_layer *layer, const strata_host *host, const strata_backward_args *a)
{
	if (!a->grad_input)
		return STRATA_OK;
	size_t n = (size_t)a->batch * elems(host->input_shape(layer));
	return host->copy(layer, a->grad_input, a->grad_output, n);
}

static const strata_layer_ops ops = {
	.size = sizeof(strata_layer_ops), .type = "$1", .class_name = "$1", .name_prefix = "$1",
	.doc = "y = 2 x", .build = build, .forward = forward, .backward = backward,
};

static strata_status init(const strata_host *host, strata_registry *reg)
{
	strata_status st = host->register_program(reg, "$1", src, "");
	return st ? st : host->register_layer(reg, &ops);
}

static const strata_plugin desc = {
	.abi_version = STRATA_PLUGIN_ABI_VERSION, .size = sizeof(strata_plugin), .name = "$1",
	.version = "1.0.0", .description = "test_guard's $1 plugin", .init = init,
};

STRATA_PLUGIN_DEFINE(desc)
EOF
	mkdir -p "$tmp/$1"
	"$cc" -shared -fPIC -fvisibility=hidden -O2 -Wall -Wextra -Werror -I"$src/../include" -o "$tmp/$1/$1.so" \
		"$tmp/$1.c"
}

plugin bad 'y[i] = 2.0f * x[i]; if (i == n - 1) y[i + 1] = 0.0f;'
check "the bad plugin builds" $?
plugin good 'y[i] = 2.0f * x[i];'
check "the good plugin builds" $?
# Line 6 of the program: the store, with an undeclared name.
plugin broken 'y[i] = 2.0f * undeclared_name;'
check "the broken plugin builds" $?

# ---- check-plugin under the guard -------------------------------------------------------------
"$strata" check-plugin "$tmp/bad/bad.so" >"$tmp/out" 2>&1
rc=$?
cat "$tmp/out"
[ "$rc" -eq 1 ]
check "check-plugin bad.so exits 1 (got $rc)" $?
grep -q "kernel 'bad_double'" "$tmp/out" && grep -q "layer check_1" "$tmp/out" &&
	grep -q "argument 1 (the output of check_1" "$tmp/out" && grep -q "element 16 (1 past its end)" "$tmp/out"
check "check-plugin bad.so names the kernel, the layer, the tensor and the offset" $?

"$strata" check-plugin "$tmp/good/good.so" >"$tmp/out" 2>&1
rc=$?
cat "$tmp/out"
[ "$rc" -eq 0 ] && grep -q "^ok    layer good" "$tmp/out"
check "check-plugin good.so exits 0 (got $rc)" $?

"$strata" check-plugin "$tmp/broken/broken.so" >"$tmp/out" 2>&1
rc=$?
cat "$tmp/out"
[ "$rc" -eq 1 ] && grep -q "^FAIL  program broken" "$tmp/out" && grep -Eq "(^| )broken:6:[0-9]+:" "$tmp/out" &&
	! grep -q "tempfile\|input\.cl\|<source>" "$tmp/out"
check "check-plugin broken.so exits 1 naming the program and the line (got $rc)" $?

"$strata" check-plugin >"$tmp/out" 2>&1
[ $? -eq 2 ]
check "check-plugin without a plugin is bad usage" $?
"$strata" check-plugin "$tmp/missing.so" >"$tmp/out" 2>&1
[ $? -eq 2 ]
check "check-plugin of a missing file is bad usage" $?

# ---- train with the bad layer: runs unguarded, fails under the guard ---------------------------
data=$(cd "$src/../data/mnist" 2>/dev/null && pwd)
if [ -n "$data" ]; then
	cat >"$tmp/model.yaml" <<YAML
name: guarded
input: {shape: [28, 28, 1]}
layers:
  - {type: flatten}
  - {type: bad}
  - {type: dense, units: 10, activation: softmax}
loss: categorical_crossentropy
optimizer: adam
data:
  train_images: $data/train-images-idx3-ubyte
  train_labels: $data/train-labels-idx1-ubyte
  test_images: $data/t10k-images-idx3-ubyte
  test_labels: $data/t10k-labels-idx1-ubyte
  scale: 0.00392156862745098
  num_classes: 10
training: {batch_size: 16, epochs: 1, seed: 1}
YAML
	run_train() {
		STRATA_PLUGIN_PATH="$tmp/bad" "$strata" train "$tmp/model.yaml" --limit 64 "$@" >"$tmp/out" 2>&1
	}
	run_train
	rc=$?
	[ "$rc" -eq 0 ]
	check "train with the bad layer runs without the guard (got $rc: $(tail -c 300 "$tmp/out"))" $?
	run_train --guard
	rc=$?
	cat "$tmp/out"
	[ "$rc" -ne 0 ] && grep -q "guard: kernel 'bad_double'" "$tmp/out" && grep -q "launched by layer bad_1" "$tmp/out" &&
		grep -q "the output of bad_1" "$tmp/out"
	check "train --guard with the bad layer fails naming it (got $rc)" $?
	STRATA_GUARD=1 run_train
	rc=$?
	[ "$rc" -ne 0 ] && grep -q "guard: kernel 'bad_double'" "$tmp/out"
	check "STRATA_GUARD=1 is --guard (got $rc)" $?
else
	echo "SKIP: data/mnist is missing (scripts/fetch-mnist.sh): no train runs"
fi

# ---- every built-in plugin passes ------------------------------------------------------------
n=0
for so in "$build"/plugins/*.so; do
	[ -e "$so" ] || continue
	n=$((n + 1))
	"$strata" check-plugin "$so" >"$tmp/out" 2>&1
	rc=$?
	grep -E '^(ok|FAIL|skip) ' "$tmp/out"
	[ "$rc" -eq 0 ]
	check "check-plugin $(basename "$so") exits 0 (got $rc: $(grep FAIL "$tmp/out" | head -c 600))" $?
done
[ "$n" -gt 0 ]
check "built-in plugins found in $build/plugins" $?

# ---- Oclgrind ---------------------------------------------------------------------------------
if command -v oclgrind >/dev/null 2>&1; then
	"$strata" check-plugin --oclgrind "$tmp/bad/bad.so" >"$tmp/out" 2>&1
	rc=$?
	head -n 30 "$tmp/out"
	[ "$rc" -ne 0 ] && grep -q "Oclgrind reported" "$tmp/out"
	check "check-plugin --oclgrind bad.so fails (got $rc)" $?
	"$strata" check-plugin --oclgrind "$tmp/good/good.so" >"$tmp/out" 2>&1
	rc=$?
	cat "$tmp/out"
	[ "$rc" -eq 0 ] && grep -q "no Oclgrind reports" "$tmp/out"
	check "check-plugin --oclgrind good.so passes (got $rc)" $?
else
	echo "SKIP: oclgrind is not installed: no check-plugin --oclgrind runs"
	PATH=/nonexistent "$strata" check-plugin --oclgrind "$tmp/good/good.so" >"$tmp/out" 2>&1
	[ $? -eq 1 ] && grep -q "oclgrind is not installed" "$tmp/out"
	check "check-plugin --oclgrind without oclgrind says so and exits 1" $?
fi

echo "test_guard: $passes passed, $fails failed"
[ "$fails" -eq 0 ]
