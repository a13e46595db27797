#!/usr/bin/env bash
# Installs what Strata needs on Debian 12. Quick and silent when everything is already there:
# apt-get runs only for packages dpkg does not list as installed.
set -euo pipefail

packages=(
	build-essential pkg-config meson ninja-build
	ocl-icd-opencl-dev opencl-c-headers pocl-opencl-icd clinfo
	libclblast-dev libyaml-dev zlib1g-dev libpng-dev check
	libcairo2-dev fonts-dejavu-core
	# ONNX import and export (issue 16): protobuf-c and the onnx.proto it is generated from, ONNX's
	# backend test data, and Debian's onnx for the checker in tests and bench
	protobuf-c-compiler libprotobuf-c-dev libonnx-dev libonnx-testdata python3-onnx
	# `strata serve` (issue 17): HTTP, JSON, and promtool (Debian's prometheus) for the metrics test
	libmicrohttpd-dev libjansson-dev prometheus curl
	# data-parallel training (issue 18): Open MPI's mpirun and headers
	openmpi-bin libopenmpi-dev
	python3 npm
	# the layer suites' agreement with PyTorch (tests/torch_*.py): Debian's PyTorch on OpenBLAS
	python3-torch python3-numpy python3-yaml
	clang libclang-rt-14-dev valgrind oclgrind
)

is_installed() {
	# NodeSource's nodejs ships npm itself and conflicts with Debian's npm package.
	if [ "$1" = npm ] && command -v npm >/dev/null 2>&1; then
		return 0
	fi
	[ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null)" = "install ok installed" ]
}

if ! command -v dpkg-query >/dev/null 2>&1 || ! command -v apt-get >/dev/null 2>&1; then
	echo "setup.sh: not a Debian system; install the equivalents of: ${packages[*]}" >&2
	for tool in cc pkg-config meson ninja clinfo python3 npm; do
		command -v "$tool" >/dev/null 2>&1 || { echo "setup.sh: $tool not found" >&2; exit 1; }
	done
	exit 0
fi

missing=()
for p in "${packages[@]}"; do
	is_installed "$p" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -eq 0 ]; then
	as_root=()
elif command -v sudo >/dev/null 2>&1; then
	as_root=(sudo)
else
	echo "setup.sh: missing ${missing[*]}; run as root or install sudo" >&2
	exit 1
fi

echo "setup.sh: installing ${missing[*]}"
"${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update
"${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y "${missing[@]}"
