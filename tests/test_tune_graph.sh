#!/bin/sh
# `strata bench` and `strata tune` on a graph model (issue 12): two inputs, a residual Add with a 1x1
# projection on a side branch, a layer that shares another's weights, two outputs. bench must train
# and infer it and print its lines; tune must record every GEMM of its step (19 shapes, 22 calls at
# batch 4), time them and finish; a data file that does not match, and a graph without GEMMs, are
# refused with a message and status 2. The data are small IDX files written here (no MNIST).
set -u
. "$(dirname "$0")/lib.sh"
said() { head -c 600 "$tmp/out" | tr '\n' ' '; }
# tune stores its winners in the cache folder: a private one, so no other test applies them.
private_cache

# 64 samples: 8 x 8 images (unsigned bytes, rank 3), vectors of 5, labels 0, 1, 2, 0, ... and 0, 1, ...
{ printf '\0\0\10\3\0\0\0\100\0\0\0\10\0\0\0\10'; head -c 4096 /dev/zero | tr '\0' '\100'; } >"$tmp/images"
{ printf '\0\0\10\2\0\0\0\100\0\0\0\5'; head -c 320 /dev/zero | tr '\0' '\40'; } >"$tmp/extra"
{ printf '\0\0\10\2\0\0\0\40\0\0\0\5'; head -c 160 /dev/zero | tr '\0' '\40'; } >"$tmp/extra32"
{ printf '\0\0\10\1\0\0\0\100'; i=0; while [ $i -lt 64 ]; do printf "\\$((i % 3))"; i=$((i + 1)); done; } >"$tmp/digits"
{ printf '\0\0\10\1\0\0\0\100'; i=0; while [ $i -lt 64 ]; do printf "\\$((i % 2))"; i=$((i + 1)); done; } >"$tmp/parity"

# graph FILE EXTRA: the model, its second input's training file EXTRA.
graph() {
	cat >"$1" <<YAML
name: tiny_graph
inputs: [{name: image, shape: [8, 8, 1]}, {name: extra, shape: [5]}]
layers:
  - {type: conv2d, filters: 4, kernel_size: 3, padding: same, activation: relu, name: c1, inputs: image}
  - {type: conv2d, filters: 4, kernel_size: 3, padding: same, name: c2}
  - {type: conv2d, filters: 4, kernel_size: 1, name: proj, inputs: c1}
  - {type: add, inputs: [c2, proj]}
  - {type: maxpool2d}
  - {type: flatten}
  - {type: dense, units: 5, activation: tanh, name: g}
  - {type: dense, units: 4, activation: tanh, name: s1, inputs: g}
  - {type: dense, units: 4, activation: tanh, name: s2, inputs: extra, shares: s1}
  - {type: concatenate, name: both, inputs: [s1, s2]}
  - {type: dense, units: 3, activation: softmax, name: digit, inputs: both}
  - {type: dense, units: 2, activation: softmax, name: parity, inputs: both}
outputs: [digit, parity]
loss: categorical_crossentropy
optimizer: sgd
data:
  train_images: {image: $tmp/images, extra: $2}
  train_labels: {digit: $tmp/digits, parity: $tmp/parity}
  test_images: {image: $tmp/images, extra: $tmp/extra}
  test_labels: {digit: $tmp/digits, parity: $tmp/parity}
  num_classes: {digit: 3, parity: 2}
training: {batch_size: 8, epochs: 1, seed: 1}
YAML
}
graph "$tmp/graph.yaml" "$tmp/extra"

timeout 120 "$strata" bench "$tmp/graph.yaml" --no-cold --batch-size 4 --peak 100 >"$tmp/out" 2>&1
status=$?
[ $status -eq 0 ]
check "bench on the graph exits 0 (status $status: $(said))" $?
for line in "bench: batch=4" "bench: train_images_per_s=" "bench: infer_images_per_s=" "bench: train_gflops=" "bench: infer_gflops=" \
	"Benchmark of tiny_graph on " "Training  " "Inference  "; do
	grep -q "^$line" "$tmp/out"
	check "bench prints '$line'" $?
done
# Throughputs above zero: the steps ran.
grep -Eq "^bench: train_images_per_s=[0-9]*[1-9]" "$tmp/out" && grep -Eq "^bench: infer_images_per_s=[0-9]*[1-9]" "$tmp/out"
check "bench measures training and inference ($(grep images_per_s "$tmp/out" | tr '\n' ' '))" $?
# The arithmetic bench counts, from the layers by hand: forward 2 x (64*4*9 (c1) + 64*4*36 (c2) +
# 64*4*4 (proj) + 64*5 (g) + 5*4 (s1) + 5*4 (s2) + 8*3 + 8*2) = 25,888 flop an image; training
# adds every weight gradient (as much again) and the input gradients of the layers that read no
# model input (c1 and s2 do): c2 18,432 + proj 2,048 + g 640 + s1 40 + digit 48 + parity 32 =
# 21,240, so 2 x 25,888 + 21,240 = 73,016. The peak's share is the rate over --peak.
grep -q "^bench: train_flop_per_image=73016$" "$tmp/out" && grep -q "^bench: infer_flop_per_image=25888$" "$tmp/out" &&
	awk -F= '/^bench: train_gflops=/ { g = $2 } /^bench: train_peak_fraction=/ { f = $2 }
		END { exit !(g > 0 && f - g / 100 < 0.001 && g / 100 - f < 0.001) }' "$tmp/out"
check "bench counts the graph's 73,016 flop a trained image, 25,888 an inferred one, and the peak's share: $(grep -E 'flop_per|fraction|gflops' "$tmp/out" | tr '\n' ' ')" $?

timeout 180 "$strata" tune "$tmp/graph.yaml" --budget 1 --batch-size 4 >"$tmp/out" 2>&1
status=$?
[ $status -eq 0 ]
check "tune on the graph exits 0 (status $status: $(said))" $?
# c1: forward and kernel gradient (it reads an input); c2, proj, g, s1, digit, parity: and their
# input gradients; s2 runs s1's forward and kernel gradient again, on the second input. c2's input
# gradient, a GEMM over its padded dz (256 x 4 x 36), has c2's forward shape: 19 shapes.
grep -q "^tiny_graph at batch 4: 19 GEMM shapes, 22 calls" "$tmp/out"
check "tune records the graph's 19 shapes, 22 calls ($(grep 'GEMM shapes' "$tmp/out"))" $?
grep -Eq "^NN +256 +4 +36 +2 " "$tmp/out"
check "c2's forward GEMM and its input gradient's share a shape, called twice" $?
# The shared weights' shapes, called twice, and the second output's input gradient, in the table.
grep -Eq "^NN +4 +4 +5 +2 " "$tmp/out" && grep -Eq "^TN +5 +4 +4 +2 " "$tmp/out" && grep -Eq "^NT +4 +8 +2 +1 " "$tmp/out"
check "tune's table times the shared and the second output's GEMMs" $?
grep -q "^step " "$tmp/out" && grep -q "candidates tried: 0 computed wrong results" "$tmp/out"
check "tune times the step, no candidate wrong" $?
if grep -q "DIFFERENT RESULTS" "$tmp/out"; then false; else true; fi
check "every kernel tunable agrees on the graph ($(grep -c DIFFERENT "$tmp/out") differ)" $?

# A second input of 32 samples where the first has 64: refused, naming the file.
graph "$tmp/bad.yaml" "$tmp/extra32"
timeout 60 "$strata" bench "$tmp/bad.yaml" --no-cold --batch-size 4 >"$tmp/out" 2>&1
status=$?
[ $status -eq 2 ] && grep -q "extra32 holds 32 samples" "$tmp/out"
check "bench refuses a second input of other samples with status 2 (status $status: $(said))" $?

# Two inputs added, pooled and flattened: no GEMM to tune.
cat >"$tmp/nogemm.yaml" <<'YAML'
name: no_gemm
inputs: [{name: a, shape: [8, 8, 1]}, {name: b, shape: [8, 8, 1]}]
layers:
  - {type: add, inputs: [a, b]}
  - {type: maxpool2d}
  - {type: flatten}
  - {type: activation, activation: softmax}
loss: categorical_crossentropy
optimizer: sgd
YAML
timeout 60 "$strata" tune "$tmp/nogemm.yaml" --budget 1 --batch-size 4 >"$tmp/out" 2>&1
status=$?
[ $status -eq 2 ] && grep -q "model 'no_gemm' runs no GEMMs: nothing to tune" "$tmp/out"
check "tune refuses a graph without GEMMs with status 2 (status $status: $(said))" $?

echo "$passes passed, $fails failed"
[ "$fails" -eq 0 ]
