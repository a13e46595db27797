#!/bin/sh
# ONNX import and export through the CLI and against ONNX's own tests (issue 16):
#  - ONNX's backend tests as Debian's libonnx-testdata ships them (node, pytorch-converted,
#    pytorch-operator, simple): no case fails, and every case of tests/onnx/backend_pass.txt
#    passes (tests/onnx_backend: import, run the stored inputs, compare the stored outputs);
#  - `strata export` of the repository's models: ONNX's checker (full_check) and strict shape
#    inference accept every file (tests/onnx_check.py, python3-onnx);
#  - round trips with PyTorch at a small size (bench/onnx_roundtrip.py, python3-torch): a ResNet,
#    a MobileNet, LSTM and bidirectional-LSTM text models, the Keras MNIST CNN and a CNN of
#    broadcast arithmetic exported by torch.onnx.export agree with PyTorch within 1e-4 on 32
#    inputs;
#  - the CLI: an import that refuses exits 2 listing every node and writes nothing; summary names
#    the ONNX node of each imported layer; export of a layer with no ONNX form exits 2.
set -u
. "$(dirname "$0")/lib.sh"
private_cache
backend=${STRATA_ONNX_BACKEND:?run through meson test}
data=/usr/share/libonnx-testdata/data
python=/usr/bin/python3
build=$(dirname "$(dirname "$strata")")

if [ -d "$data" ]; then
	"$backend" --quiet --expect "$src/onnx/backend_pass.txt" "$data/node" "$data/pytorch-converted" \
		"$data/pytorch-operator" "$data/simple" >"$tmp/backend" 2>&1
	check "ONNX's backend tests: $(grep -v 'warnings generated' "$tmp/backend" | tail -3)" $?
else
	echo "FAIL: $data is missing: install libonnx-testdata (scripts/setup.sh)"
	fails=$((fails + 1))
fi

for m in mnist_cnn mnist_resnet_bn mobilenet_mini mnist_best mnist_lstm mnist_gru mnist_simple_rnn; do
	"$strata" export "$src/../models/$m.yaml" -o "$tmp/$m.onnx" >"$tmp/out" 2>&1
	check "strata export $m: $(cat "$tmp/out")" $?
done
$python "$src/onnx_check.py" "$tmp"/*.onnx >"$tmp/out" 2>&1
check "ONNX's checker and shape inference on the exported models: $(cat "$tmp/out")" $?

$python "$src/../bench/onnx_roundtrip.py" --build "$build" --out "$tmp/roundtrip" --samples 32 >"$tmp/out" 2>&1
check "PyTorch round trips: $(grep -v -i warn "$tmp/out" | tail -6)" $?

# An import that refuses: every node listed, exit 2, nothing written.
"$strata" import "$data/node/test_argmax_default_axis_example/model.onnx" -o "$tmp/refused.yaml" >"$tmp/out" 2>&1
[ $? -eq 2 ] && grep -q "ArgMax (node 0) (opset 13): no Strata layer does ArgMax" "$tmp/out" && [ ! -e "$tmp/refused.yaml" ] &&
	[ ! -e "$tmp/refused.stw" ]
check "a refused import exits 2, names the node and writes nothing ($(cat "$tmp/out"))" $?
"$strata" import "$tmp/mnist_cnn.onnx" >"$tmp/out" 2>&1
[ $? -eq 2 ] && grep -q "\-o NAME.yaml" "$tmp/out"
check "import without -o is refused ($(cat "$tmp/out"))" $?

# An import's summary names each layer's node; its model and weights run as they are.
"$strata" import "$tmp/mnist_cnn.onnx" -o "$tmp/back.yaml" >"$tmp/out" 2>&1 &&
	"$strata" summary "$tmp/back.yaml" >"$tmp/summary" 2>&1 &&
	grep -q "Layer sources:" "$tmp/summary" && grep -q "<-  Conv 'conv2d_1/Conv_" "$tmp/summary"
check "summary of an import names the ONNX nodes ($(tail -3 "$tmp/summary"))" $?

# Export refuses a layer with no ONNX form, exit 2, nothing written.
cat >"$tmp/som.yaml" <<YAML
name: map
input: {shape: [4]}
layers:
  - {type: som, rows: 2, columns: 2}
YAML
"$strata" export "$tmp/som.yaml" -o "$tmp/som.onnx" >"$tmp/out" 2>&1
[ $? -eq 2 ] && grep -q "som_1 (som): no ONNX operator does som" "$tmp/out" && [ ! -e "$tmp/som.onnx" ]
check "export of a som is refused ($(cat "$tmp/out"))" $?

echo "$passes passed, $fails failed"
[ "$fails" -eq 0 ]
