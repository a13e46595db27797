#!/usr/bin/env bash
# The walk through plugins/README.md's "A layer from an empty folder" section, as a reader would
# do it: the build is installed to a temporary DESTDIR, the section's files (each code block after
# a `<!-- guide-file: NAME -->` line) are written to an empty folder, and its commands (the block
# after `<!-- guide-commands -->`) run there, one by one, with the installed strata and
# strata-embed-cl on PATH and its strata.pc on PKG_CONFIG_PATH. Every command must succeed, and
# the trained model must reach the accuracy the guide states.
#
# usage: test_plugin_guide.sh BUILD_DIR SOURCE_DIR   (meson passes both)
set -euo pipefail
build=${1:?usage: test_plugin_guide.sh BUILD_DIR SOURCE_DIR}
src=${2:?usage: test_plugin_guide.sh BUILD_DIR SOURCE_DIR}
guide="$src/plugins/README.md"
tmp=$(mktemp -d "${TMPDIR:-/tmp}/strata-guide.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
fail() {
	echo "plugin_guide: FAIL: $*" >&2
	exit 1
}
[ -d "$src/data/mnist" ] || fail "$src/data/mnist is missing: run scripts/fetch-mnist.sh"

dest="$tmp/destdir"
meson install -C "$build" --destdir "$dest" --no-rebuild >"$tmp/install.log" 2>&1 ||
	{ cat "$tmp/install.log" >&2; fail "meson install failed"; }
exe=$(find "$dest" -path '*/bin/strata' -type f -print -quit)
pc=$(find "$dest" -name strata.pc -type f -print -quit)
[ -n "$exe" ] && [ -n "$pc" ] || fail "no bin/strata or strata.pc under $dest"
export PATH="$(dirname "$exe"):$PATH"
export PKG_CONFIG_PATH=$(dirname "$pc") PKG_CONFIG_SYSROOT_DIR="$dest"
unset LD_LIBRARY_PATH
# A DESTDIR install keeps the plugins below $dest, not in the folder the installed strata searches
# by default (the prefix's); STRATA_PLUGIN_PATH stands for that folder, as a real install has it.
plugins=$(find "$dest" -type f -name 'conv2d.so' -print -quit)
[ -n "$plugins" ] || fail "no installed plugins under $dest"
export STRATA_PLUGIN_PATH=$(dirname "$plugins")
[ -n "${STRATA_TEST_DEVICE:-}" ] && export STRATA_DEVICE="$STRATA_TEST_DEVICE"

work="$tmp/swish"
mkdir "$work"
ln -s "$src/data/mnist" "$work/mnist"
# Files and commands, exactly as the page has them.
awk -v dir="$work" '
	/^<!-- guide-file: / { name = $3; want = 1; next }
	/^<!-- guide-commands -->/ { name = "commands.sh"; want = 1; next }
	want && /^```/ && !inside { inside = 1; next }
	inside && /^```/ { inside = 0; want = 0; close(dir "/" name); files++; next }
	inside { print > (dir "/" name) }
	END { if (files < 4) exit 1 }' "$guide" || fail "the guide's walk holds fewer than 4 files"
for f in swish.cl swish.c swish.yaml commands.sh; do
	[ -s "$work/$f" ] || fail "the guide gives no $f"
done

cd "$work"
n=0
while IFS= read -r command; do
	[ -n "$command" ] || continue
	n=$((n + 1))
	echo "plugin_guide: \$ $command"
	bash -c "set -o pipefail; $command" >"out.$n" 2>&1 || { cat "out.$n" >&2; fail "command $n failed: $command"; }
	tail -n 3 "out.$n"
done <commands.sh
[ "$n" -ge 6 ] || fail "only $n commands in the guide's walk"
# What the guide says of the results.
grep -q "float in (0, 10\]" out.* || fail "strata layers does not show beta in (0, 10]"
acc=$(sed -n 's/^Test accuracy: //p' out.$n)
awk -v a="$acc" 'BEGIN { exit !(a > 0.8) }' || fail "test accuracy $acc, the guide says about 87%"
echo "plugin_guide: $n commands ran; test accuracy $acc"
