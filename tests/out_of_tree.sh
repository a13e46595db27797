#!/usr/bin/env bash
# Installs the build into a temporary DESTDIR and uses it as a plugin author and an application
# author would: the installed strata runs without LD_LIBRARY_PATH (its rpath is relative,
# $ORIGIN/../lib/<triplet>) and loads the installed plugins from its default plugin folder; the
# example plugin (examples/plugin_scale) is built out of tree against the installed strata.pc and
# the installed strata-embed-cl, with the compiler line README.md and plugins/README.md document,
# and with its Makefile, and run by the installed strata; a small program links against the
# installed libstrata; and a plugin built for another ABI version must be refused.
#
# usage: out_of_tree.sh BUILD_DIR SOURCE_DIR   (meson passes both; see tests/meson.build)
set -euo pipefail

build=${1:?usage: out_of_tree.sh BUILD_DIR SOURCE_DIR}
src=${2:?usage: out_of_tree.sh BUILD_DIR SOURCE_DIR}
example="$src/examples/plugin_scale"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/strata-out-of-tree.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

fail() {
	echo "out_of_tree: FAIL: $*" >&2
	exit 1
}

step() {
	echo "out_of_tree: $*"
}

# ---- install --------------------------------------------------------------------------------
dest="$tmp/destdir"
step "meson install -C $build --destdir $dest"
meson install -C "$build" --destdir "$dest" --no-rebuild >"$tmp/install.log" 2>&1 ||
	{ cat "$tmp/install.log" >&2; fail "meson install failed"; }

pc=$(find "$dest" -name strata.pc -type f -print -quit)
exe=$(find "$dest" -path '*/bin/strata' -type f -print -quit)
lib=$(find "$dest" -name 'libstrata.so*' -print -quit)
[ -n "$pc" ] || fail "no strata.pc installed under $dest"
[ -n "$exe" ] || fail "no bin/strata installed under $dest"
[ -n "$lib" ] || fail "no libstrata.so installed under $dest"
lib=$(dirname "$lib")
step "installed: $exe, $pc, $lib"

# pkg-config reads the installed strata.pc; the sysroot makes its /usr/local/... paths resolve
# inside the DESTDIR.
PKG_CONFIG_PATH=$(dirname "$pc")
export PKG_CONFIG_PATH
export PKG_CONFIG_SYSROOT_DIR="$dest"
pkg-config --exists strata || fail "pkg-config does not find the installed strata.pc"
read -ra strata_cflags <<<"$(pkg-config --cflags strata)"
read -ra strata_libs <<<"$(pkg-config --libs strata)"
step "pkg-config --cflags --libs strata: ${strata_cflags[*]} ${strata_libs[*]}"

# Nothing of the build tree or of the caller's environment helps the installed files: no
# LD_LIBRARY_PATH (the tool finds libstrata through its rpath), no STRATA_PLUGIN_PATH.
unset LD_LIBRARY_PATH STRATA_PLUGIN_PATH
device_args=()
if [ -n "${STRATA_TEST_DEVICE:-}" ]; then
	device_args=(--device "$STRATA_TEST_DEVICE")
fi

cc=${CC:-cc}
strict=(-O2 -g -Wall -Wextra -Werror)

# ---- the installed strata, without LD_LIBRARY_PATH --------------------------------------------
# pkg-config's variables are paths of the final prefix; a DESTDIR install holds them under $dest
# (pkgconf may already have prefixed the sysroot).
in_dest() {
	case "$1" in
	"$dest"/*) printf '%s\n' "$1" ;;
	*) printf '%s%s\n' "$dest" "$1" ;;
	esac
}

if command -v readelf >/dev/null; then
	runpath=$(readelf -d "$exe" | sed -n 's/.*(\(RUNPATH\|RPATH\)).*\[\(.*\)\]/\2/p')
	step "rpath of the installed strata: $runpath"
	# shellcheck disable=SC2016 # a literal $ORIGIN
	case "$runpath" in
	*'$ORIGIN'*) ;;
	*) fail "the installed strata has no \$ORIGIN-relative rpath (got '$runpath')" ;;
	esac
	case "$runpath" in
	*"$build"*) fail "the installed strata's rpath names the build folder: $runpath" ;;
	esac
fi

step "strata --version (installed, no LD_LIBRARY_PATH)"
"$exe" --version >"$tmp/version.out" 2>&1 || { cat "$tmp/version.out" >&2; fail "the installed strata does not start"; }
cat "$tmp/version.out"
grep -q '^strata [0-9]' "$tmp/version.out" || fail "strata --version printed no version"
# The dynamic loader resolves libstrata to the installed copy, not the build tree's or another one.
LD_TRACE_LOADED_OBJECTS=1 "$exe" >"$tmp/ldd.out" 2>&1 || true
resolved=$(sed -n 's/^[[:space:]]*libstrata\.so[^ ]* => \([^ ]*\).*/\1/p' "$tmp/ldd.out" | head -n 1)
[ -n "$resolved" ] || { cat "$tmp/ldd.out" >&2; fail "the installed strata does not find libstrata"; }
[ "$(realpath "$(dirname "$resolved")")" = "$(realpath "$lib")" ] ||
	fail "the installed strata loads $resolved instead of the installed $lib/libstrata"

# Its default plugin folder is where the plugins were installed: pkg-config's plugindir.
plugindir=$(pkg-config --variable=plugindir strata)
plugindir=${plugindir#"$dest"}
step "strata layers (installed; default plugin folder $plugindir)"
"$exe" layers >"$tmp/layers_default.out" 2>&1 ||
	{ cat "$tmp/layers_default.out" >&2; fail "the installed strata layers exited non-zero"; }
sed -n '2p' "$tmp/layers_default.out" | grep -qxF "$plugindir" ||
	{ cat "$tmp/layers_default.out" >&2; fail "the installed strata does not search $plugindir first"; }
for p in dense conv2d merge; do
	[ -f "$dest$plugindir/$p.so" ] || fail "plugin $p.so is not installed in $dest$plugindir"
done
# In a DESTDIR the folder is not at its final place: point the tool at it as the prefix would.
"$exe" layers --plugin-path "$dest$plugindir" >"$tmp/layers_installed.out" 2>&1 ||
	{ cat "$tmp/layers_installed.out" >&2; fail "the installed plugins do not load into the installed strata"; }
grep -q '^dense (Dense)' "$tmp/layers_installed.out" && grep -q '^conv2d (Conv2D)' "$tmp/layers_installed.out" ||
	{ cat "$tmp/layers_installed.out" >&2; fail "strata layers does not list the installed dense and conv2d"; }

# ---- the example plugin, by hand, as README.md and plugins/README.md say ------------------------
embed=$(pkg-config --variable=embed_cl strata)
[ -n "$embed" ] || fail "strata.pc has no embed_cl variable"
embed=$(in_dest "$embed")
[ -x "$embed" ] || fail "strata-embed-cl is not installed at $embed"
author="$tmp/author"
mkdir -p "$author"
cp "$example/scale.c" "$example/scale.cl" "$example/blend.c" "$example/blend.cl" "$author/"
step "strata-embed-cl and the documented cc line in $author"
# The documented line word for word (plus -Werror): pkg-config's flags split into words.
# shellcheck disable=SC2046
(
	cd "$author"
	"$embed" scale.cl >scale_cl.h &&
		"$embed" blend.cl blend_cl_source >blend_cl.h &&
		"$cc" -std=c11 -shared -fPIC -fvisibility=hidden -O2 -Wall -Wextra -Werror $(pkg-config --cflags strata) \
			-o scale.so scale.c &&
		"$cc" -std=c11 -shared -fPIC -fvisibility=hidden -O2 -Wall -Wextra -Werror $(pkg-config --cflags strata) \
			-o blend.so blend.c
) >"$tmp/author.log" 2>&1 || { cat "$tmp/author.log" >&2; fail "the documented commands do not build the example"; }
grep -q '^static const char scale_cl_source\[\] =$' "$author/scale_cl.h" ||
	fail "strata-embed-cl did not write scale_cl_source"
"$exe" "${device_args[@]}" summary "$example/example.yaml" --plugin-path "$author" >"$tmp/author_summary.out" 2>&1 ||
	{ cat "$tmp/author_summary.out" >&2; fail "strata summary with the hand-built plugin exited non-zero"; }
grep -q 'scale_1' "$tmp/author_summary.out" || fail "the summary does not show scale_1 from the hand-built plugin"
"$exe" "${device_args[@]}" forward "$example/graph.yaml" --random --batch-size 3 --plugin-path "$author" \
	>"$tmp/author_forward.out" 2>&1 ||
	{ cat "$tmp/author_forward.out" >&2; fail "strata forward --random with the hand-built plugins exited non-zero"; }
step "hand-built plugins: summary and forward --random passed"

# ---- the example plugin, out of tree ----------------------------------------------------------
plugins="$tmp/plugins"
step "make -C $example O=$plugins"
make -C "$example" O="$plugins" CFLAGS="${strict[*]}" >"$tmp/make.log" 2>&1 ||
	{ cat "$tmp/make.log" >&2; fail "the example plugin does not build against the installed strata.pc"; }
[ -f "$plugins/scale.so" ] && [ -f "$plugins/blend.so" ] || fail "make left no $plugins/scale.so and blend.so"
# The Makefile embeds with the installed tool, and gets what the documented commands got.
grep -qF "$embed " "$tmp/make.log" || { cat "$tmp/make.log" >&2; fail "make did not use the installed $embed"; }
cmp -s "$plugins/scale_cl.h" "$author/scale_cl.h" || fail "make's scale_cl.h differs from strata-embed-cl's"

run_strata() {
	STRATA_PLUGIN_PATH="$1" "$exe" "${device_args[@]}" "${@:2}"
}

step "strata layers"
run_strata "$plugins" layers >"$tmp/layers.out" 2>&1 ||
	{ cat "$tmp/layers.out" >&2; fail "strata layers exited non-zero"; }
cat "$tmp/layers.out"
grep -qw scale "$tmp/layers.out" || fail "strata layers does not list the layer type scale"

step "strata summary example.yaml"
run_strata "$plugins" summary "$example/example.yaml" >"$tmp/summary.out" 2>&1 ||
	{ cat "$tmp/summary.out" >&2; fail "strata summary exited non-zero"; }
cat "$tmp/summary.out"
grep -q 'scale_1' "$tmp/summary.out" || fail "the summary does not show the layer scale_1"

step "strata forward example.yaml --random"
run_strata "$plugins" forward "$example/example.yaml" --random >"$tmp/forward.out" 2>&1 ||
	{ cat "$tmp/forward.out" >&2; fail "strata forward --random exited non-zero"; }
cat "$tmp/forward.out"

step "strata summary graph.yaml (blend, a layer of two inputs)"
run_strata "$plugins" summary "$example/graph.yaml" >"$tmp/graph.out" 2>&1 ||
	{ cat "$tmp/graph.out" >&2; fail "strata summary graph.yaml exited non-zero"; }
cat "$tmp/graph.out"
grep -q "blend_1 (Blend)" "$tmp/graph.out" && grep -q "'scale_1\[0\]\[0\]'" "$tmp/graph.out" ||
	fail "the summary of graph.yaml does not show blend_1 reading scale_1"

# ---- a plugin built against the plugin.h of Strata 0.2, kept in tests/abi/0.2 ------------------
# The ABI only grows: a plugin compiled before graphs (one input, no element types) loads and
# runs on this host unchanged.
old="$tmp/old_plugins"
step "scale.so built against tests/abi/0.2's plugin.h"
make -s -C "$example" O="$old" "$old/scale_cl.h" >"$tmp/make_old.log" 2>&1 ||
	{ cat "$tmp/make_old.log" >&2; fail "cannot generate scale_cl.h"; }
"$cc" -std=c11 "${strict[@]}" -fPIC -fvisibility=hidden -I"$src/tests/abi/0.2" -I"$old" -shared \
	-o "$old/scale.so" "$example/scale.c" >"$tmp/cc_old.log" 2>&1 ||
	{ cat "$tmp/cc_old.log" >&2; fail "scale.c does not build against the 0.2 plugin.h"; }
run_strata "$old" forward "$example/example.yaml" --random >"$tmp/forward_old.out" 2>&1 ||
	{ cat "$tmp/forward_old.out" >&2; fail "the 0.2 plugin does not run on this host"; }

# ---- an application against the installed library ---------------------------------------------
cat >"$tmp/api_check.c" <<'EOF'
/* Loads an example model through the public API and checks y == a x + b (default 2x + 1). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <strata/strata.h>

#define MAX_BATCH 3
#define WIDTH 4

static float want_a = 2.0f, want_b = 1.0f;

static int check_batch(strata_session *s, uint32_t batch, float first)
{
	float in[MAX_BATCH * WIDTH], out[MAX_BATCH * WIDTH];
	strata_error err = {0};
	size_t n = (size_t)batch * WIDTH;

	for (size_t i = 0; i < n; i++) {
		in[i] = first + 0.75f * (float)i * (i % 2 ? -1.0f : 1.0f);
		out[i] = NAN;
	}
	if (strata_session_forward(s, in, batch, out, &err) != STRATA_OK) {
		fprintf(stderr, "forward of %u samples: %s\n", batch, err.message);
		return 1;
	}
	for (size_t i = 0; i < n; i++) {
		float want = want_a * in[i] + want_b;
		if (!(fabsf(out[i] - want) <= 1e-5f * fmaxf(1.0f, fabsf(want)))) {
			fprintf(stderr, "batch %u, element %zu: x = %g, y = %g, want %gx + %g = %g\n", batch, i,
			        (double)in[i], (double)out[i], (double)want_a, (double)want_b, (double)want);
			return 1;
		}
	}
	printf("batch %u: %zu values, y == %gx + %g\n", batch, n, (double)want_a, (double)want_b);
	return 0;
}

int main(int argc, char **argv)
{
	strata_registry_options ropts = {.size = sizeof(ropts)};
	strata_runtime_options rtopts = {.size = sizeof(rtopts)};
	strata_registry *reg = NULL;
	strata_model *model = NULL;
	strata_runtime *rt = NULL;
	strata_session *s = NULL;
	strata_error err = {0};
	strata_shape shape;
	int rc = 1;

	if (argc != 2 && argc != 4) {
		fprintf(stderr, "usage: api_check MODEL.yaml [A B]\n");
		return 2;
	}
	if (argc == 4) {
		want_a = strtof(argv[2], NULL);
		want_b = strtof(argv[3], NULL);
	}
	printf("strata %s (header %s)\n", strata_version_string(), STRATA_VERSION);
	if (strata_registry_open(&ropts, &reg, &err) != STRATA_OK) {
		fprintf(stderr, "strata_registry_open: %s\n", err.message);
		goto out;
	}
	if (strata_model_load(reg, argv[1], &model, &err) != STRATA_OK) {
		fprintf(stderr, "strata_model_load: %s\n", err.message);
		goto out_close_registry;
	}
	shape = strata_model_output_shape(model, 0);
	if (argc == 2 && (strata_model_layer_count(model) != 1 || strcmp(strata_model_layer_type(model, 0), "scale") != 0 ||
	                  shape.rank != 1 || shape.dims[0] != WIDTH)) {
		fprintf(stderr, "expected one scale layer of output shape (%d), got %zu layers\n", WIDTH,
		        strata_model_layer_count(model));
		goto out_free_model;
	}
	rtopts.device = getenv("STRATA_TEST_DEVICE");
	if (strata_runtime_create(reg, &rtopts, &rt, &err) != STRATA_OK) {
		fprintf(stderr, "strata_runtime_create: %s\n", err.message);
		goto out_free_model;
	}
	printf("device: %s\n", strata_runtime_device(rt)->name);
	if (strata_session_create(rt, model, MAX_BATCH, 1, &s, &err) != STRATA_OK) {
		fprintf(stderr, "strata_session_create: %s\n", err.message);
		goto out_destroy_runtime;
	}
	/* A full batch, then a smaller one than the session was planned for. */
	if (check_batch(s, MAX_BATCH, -3.5f) || check_batch(s, 1, 1000.25f))
		goto out_destroy_session;
	rc = 0;

out_destroy_session:
	strata_session_destroy(s);
out_destroy_runtime:
	strata_runtime_destroy(rt);
out_free_model:
	strata_model_free(model);
out_close_registry:
	strata_registry_close(reg);
out:
	return rc;
}
EOF
step "api_check against the installed strata.pc"
# A sanitized build's libstrata takes the sanitizers' runtime from the program (tests/sanitizers/).
# Outside the loader's default folders a program needs an rpath (or LD_LIBRARY_PATH) to find
# libstrata, as README.md's install section says.
"$cc" -std=c11 "${strict[@]}" "${strata_cflags[@]}" ${STRATA_TEST_SANITIZE:+-fsanitize=$STRATA_TEST_SANITIZE} \
	-o "$tmp/api_check" "$tmp/api_check.c" "${strata_libs[@]}" -Wl,-rpath,"$lib" -lm >"$tmp/cc.log" 2>&1 ||
	{ cat "$tmp/cc.log" >&2; fail "a program using strata.h does not build against the installed strata.pc"; }
STRATA_PLUGIN_PATH="$plugins" "$tmp/api_check" "$example/example.yaml" ||
	fail "the public API does not compute y == 2x + 1 through the example plugin"
STRATA_PLUGIN_PATH="$old" "$tmp/api_check" "$example/example.yaml" ||
	fail "the plugin built against the 0.2 plugin.h does not compute y == 2x + 1 on this host"
STRATA_PLUGIN_PATH="$plugins" "$tmp/api_check" "$example/graph.yaml" 1.25 0.25 ||
	fail "the graph of scale and blend does not compute y == 1.25x + 0.25"

# ---- exclusive bounds (plugin.h 0.3): `choices` of a FLOAT says "(]" ------------------------------
bounded_src="$tmp/bounded_src"
mkdir -p "$bounded_src"
cp "$example/scale.c" "$example/scale.cl" "$bounded_src/"
# factor: in (0, FLT_MAX] instead of [-FLT_MAX, FLT_MAX].
sed -i '0,/\.min = -FLT_MAX,/s//.min = 0.0, .choices = "(]",/' "$bounded_src/scale.c"
grep -q '\.choices = "(]"' "$bounded_src/scale.c" || fail "could not make the bounded copy of scale.c"
step "exclusive bounds through an out-of-tree plugin"
# shellcheck disable=SC2046
(
	cd "$bounded_src"
	"$embed" scale.cl >scale_cl.h &&
		"$cc" -std=c11 -shared -fPIC -fvisibility=hidden -O2 -Wall -Wextra -Werror $(pkg-config --cflags strata) \
			-o scale.so scale.c
) >"$tmp/bounded.log" 2>&1 || { cat "$tmp/bounded.log" >&2; fail "the bounded copy of scale.c does not build"; }
rm -f "$bounded_src/scale.c" "$bounded_src/scale.cl" "$bounded_src/scale_cl.h"
"$exe" layers --plugin-path "$bounded_src" >"$tmp/bounded_layers.out" 2>&1 ||
	{ cat "$tmp/bounded_layers.out" >&2; fail "strata layers with the bounded plugin exited non-zero"; }
grep -E '^ +factor +float in \(0, [0-9.e+]+\] ' "$tmp/bounded_layers.out" ||
	{ cat "$tmp/bounded_layers.out" >&2; fail "strata layers does not show factor's range as (0, ...]"; }
printf 'input: {shape: [4]}\nlayers:\n  - type: scale\n    factor: 0\n' >"$tmp/bounded.yaml"
status=0
"$exe" summary "$tmp/bounded.yaml" --plugin-path "$bounded_src" >"$tmp/bounded_summary.out" 2>&1 || status=$?
cat "$tmp/bounded_summary.out"
[ "$status" -eq 2 ] || fail "factor: 0 against (0, ...] gave status $status, not 2"
grep -qF "$tmp/bounded.yaml:4:13: 'factor' must be > 0, got 0" "$tmp/bounded_summary.out" ||
	grep -qF "bounded.yaml:4:13: 'factor' must be in (0, " "$tmp/bounded_summary.out" ||
	fail "the refusal of factor: 0 does not name bounded.yaml:4:13 and the range (0, ...]"
printf 'input: {shape: [4]}\nlayers:\n  - type: scale\n    factor: 1.0e-30\n' >"$tmp/bounded_ok.yaml"
"$exe" summary "$tmp/bounded_ok.yaml" --plugin-path "$bounded_src" >"$tmp/bounded_ok.out" 2>&1 ||
	{ cat "$tmp/bounded_ok.out" >&2; fail "factor: 1.0e-30, inside (0, ...], was refused"; }

# ---- a plugin built for another ABI version ---------------------------------------------------
host_abi=$(printf '#include <strata/plugin.h>\nSTRATA_PLUGIN_ABI_VERSION\n' |
	"$cc" -E -P "${strata_cflags[@]}" -x c - | tail -n 1 | tr -d ' u')
case "$host_abi" in
'' | *[!0-9]*) fail "cannot read STRATA_PLUGIN_ABI_VERSION from the installed plugin.h" ;;
esac
bad_abi=$((host_abi + 1))

bad_src="$tmp/bad_src"
mkdir -p "$bad_src"
cp "$example/Makefile" "$example/scale.c" "$example/scale.cl" "$bad_src/"
sed -i 's/\.abi_version = STRATA_PLUGIN_ABI_VERSION,/.abi_version = STRATA_PLUGIN_ABI_VERSION + 1,/' \
	"$bad_src/scale.c"
grep -q 'STRATA_PLUGIN_ABI_VERSION + 1' "$bad_src/scale.c" || fail "could not make the ABI $bad_abi copy"
bad="$tmp/bad_plugins"
make -s -C "$bad_src" O="$bad" CFLAGS="${strict[*]}" "$bad/scale.so" >"$tmp/make_bad.log" 2>&1 ||
	{ cat "$tmp/make_bad.log" >&2; fail "the ABI $bad_abi copy does not build"; }

step "strata layers with a plugin built for ABI $bad_abi (host: $host_abi)"
status=0
run_strata "$bad" layers >"$tmp/bad.out" 2>&1 || status=$?
cat "$tmp/bad.out"
[ "$status" -ne 0 ] || fail "a plugin for ABI version $bad_abi was accepted by a host of version $host_abi"
[ "$status" -lt 126 ] || fail "strata crashed ($status) instead of refusing the plugin"
grep -w -- "$bad_abi" "$tmp/bad.out" | grep -qw -- "$host_abi" ||
	fail "the refusal does not name both ABI versions ($bad_abi and $host_abi) in one line"

step "all checks passed"
