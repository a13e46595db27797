#!/bin/sh
# The sequence layers through the CLI (issue 15): `strata gradcheck` of simple_rnn, lstm and gru
# (reset_after both ways) against finite differences, each alone, with return_sequences both
# ways, go_backwards, without bias, with other activations, with dropout and recurrent_dropout,
# with return_state and initial states; of embedding's table (ids repeated,
# out of range, batches that are no power of two); `strata summary` counting Keras' parameters;
# `strata layers` listing them; bad inputs and parameters refused with exit status 2 and the
# value's FILE:LINE:COLUMN.
set -u
. "$(dirname "$0")/lib.sh"

# ---- gradients of every path -------------------------------------------------------------------
cat >"$tmp/seq.yaml" <<'YAML'
name: seq
inputs: [{name: x, shape: [5, 3]}]
layers:
  - {type: simple_rnn, units: 4, name: rnn, inputs: x}
  - {type: simple_rnn, units: 4, return_sequences: true, go_backwards: true, activation: relu, name: rnn_seq, inputs: x}
  - {type: simple_rnn, units: 3, use_bias: false, activation: softsign, return_sequences: true, name: rnn_bare, inputs: x}
  - {type: lstm, units: 4, name: lstm, inputs: x}
  - {type: lstm, units: 3, return_sequences: true, name: lstm_seq, inputs: x}
  - {type: lstm, units: 3, go_backwards: true, recurrent_activation: hard_sigmoid, activation: elu, name: lstm_back, inputs: x}
  - {type: lstm, units: 3, use_bias: false, return_sequences: true, go_backwards: true, name: lstm_bare, inputs: x}
  - {type: gru, units: 4, name: gru, inputs: x}
  - {type: gru, units: 4, return_sequences: true, go_backwards: true, name: gru_seq, inputs: x}
  - {type: gru, units: 3, use_bias: false, recurrent_activation: hard_sigmoid, name: gru_bare, inputs: x}
  - {type: gru, units: 4, reset_after: false, name: gru_v1, inputs: x}
  - {type: gru, units: 3, reset_after: false, return_sequences: true, go_backwards: true, name: gru_v1_seq, inputs: x}
  - {type: gru, units: 3, reset_after: false, use_bias: false, activation: softsign, name: gru_v1_bare, inputs: x}
outputs: [rnn, rnn_seq, rnn_bare, lstm, lstm_seq, lstm_back, lstm_bare, gru, gru_seq, gru_bare, gru_v1, gru_v1_seq, gru_v1_bare]
YAML
for layer in rnn rnn_seq rnn_bare lstm lstm_seq lstm_back lstm_bare gru gru_seq gru_bare gru_v1 gru_v1_seq gru_v1_bare; do
	gradcheck "$tmp/seq.yaml" $layer --seed 3 --inputs 3
	status=$?
	[ $status -eq 0 ] && grep -q "^passed: " "$tmp/out" && grep -q "^  training  recurrent_kernel " "$tmp/out" &&
		grep -q "^  inference input 0" "$tmp/out"
	check "gradcheck $layer passes (status $status: $(said))" $?
	# Two runs say more than that they pass (read here: each run is seconds under the sanitizers).
	case $layer in
	gru)
		grep -q "^passed: 8 gradients" "$tmp/out" && grep -q "^  training  bias  *24 " "$tmp/out"
		check "gradcheck gru checks its (2, 12) bias ($(said))" $? ;;
	lstm_bare)
		grep -q "^passed: 6 gradients" "$tmp/out" && ! grep -q " bias " "$tmp/out"
		check "gradcheck lstm_bare has no bias ($(said))" $? ;;
	esac
done

# ---- embedding -------------------------------------------------------------------------------------
cat >"$tmp/ids.yaml" <<'YAML'
name: ids
inputs: [{name: ids, shape: [6], dtype: int32}, {name: grid, shape: [3, 4], dtype: int32}]
layers:
  - {type: embedding, input_dim: 5, output_dim: 3, name: emb, inputs: ids}
  - {type: embedding, input_dim: 7, output_dim: 2, embeddings_initializer: glorot_uniform, name: emb_grid, inputs: grid}
  - {type: gru, units: 4, name: gru, inputs: emb}
outputs: [gru, emb_grid]
YAML
# ids 0..4 over 5 rows: every row repeated; ids 0..8 over 5 and 7 rows: some out of range (rows of
# zeros, no gradient); 3 and 5 samples: 18, 30, 36 and 60 ids, padded to a power of two to sort.
for args in "emb --ids 5 --inputs 3" "emb --ids 9 --inputs 5" "emb_grid --ids 7 --inputs 3" "emb_grid --ids 9 --inputs 5"; do
	# shellcheck disable=SC2086 # the layer's name and options
	gradcheck "$tmp/ids.yaml" $args --seed 4
	status=$?
	[ $status -eq 0 ] && grep -q "^passed: 2 gradients" "$tmp/out" && grep -q "^  training  embeddings " "$tmp/out"
	check "gradcheck $args passes (status $status: $(said))" $?
done
gradcheck "$tmp/ids.yaml" gru --ids 5 --inputs 3 --seed 4
[ $? -eq 0 ] && grep -q "^passed: " "$tmp/out"
check "gradcheck of a gru reading an embedding passes ($(said))" $?

# ---- dropout and recurrent_dropout: the backward pass of a training pass with its masks ----------
cat >"$tmp/drop.yaml" <<'YAML'
name: drop
inputs: [{name: x, shape: [5, 3]}, {name: ids, shape: [6], dtype: int32}]
layers:
  - {type: simple_rnn, units: 4, dropout: 0.3, recurrent_dropout: 0.4, return_sequences: true, name: rnn, inputs: x}
  - {type: lstm, units: 4, dropout: 0.3, recurrent_dropout: 0.4, name: lstm, inputs: x}
  - {type: gru, units: 4, dropout: 0.3, recurrent_dropout: 0.4, go_backwards: true, name: gru, inputs: x}
  - {type: gru, units: 4, reset_after: false, dropout: 0.3, recurrent_dropout: 0.4, return_sequences: true, name: gru_v1, inputs: x}
  - {type: embedding, input_dim: 5, output_dim: 3, mask_zero: true, name: emb, inputs: ids}
  - {type: gru, units: 3, dropout: 0.2, recurrent_dropout: 0.3, name: gru_masked, inputs: emb}
outputs: [rnn, lstm, gru, gru_v1, gru_masked]
YAML
for layer in rnn lstm gru gru_v1 gru_masked; do
	gradcheck "$tmp/drop.yaml" $layer --seed 3 --inputs 3 --ids 5
	status=$?
	[ $status -eq 0 ] && grep -q "^passed: 8 gradients" "$tmp/out"
	check "gradcheck $layer with dropout passes (status $status: $(said))" $?
done

# ---- masks: every layer that reads or makes one ------------------------------------------------
cat >"$tmp/mask.yaml" <<'YAML'
name: masked
inputs: [{name: ids, shape: [6], dtype: int32}, {name: x, shape: [5, 3]}]
layers:
  - {type: embedding, input_dim: 5, output_dim: 3, mask_zero: true, name: emb, inputs: ids}
  - {type: lstm, units: 4, return_sequences: true, name: lstm, inputs: emb}
  - {type: gru, units: 3, name: gru, inputs: lstm}
  - {type: masking, name: mask, inputs: x}
  - {type: dense, units: 4, name: dense, inputs: mask}
  - {type: simple_rnn, units: 3, return_sequences: true, go_backwards: true, name: rnn, inputs: dense}
  - {type: global_average_pooling1d, name: gap, inputs: rnn}
  - {type: gru, units: 3, reset_after: false, return_sequences: true, name: gru_v1, inputs: mask}
  - {type: global_max_pooling1d, name: gmp, inputs: gru_v1}
outputs: [gru, gap, gmp]
YAML
# A layer reading a mask is checked with about a third of its steps masked.
for layer in emb lstm gru mask dense rnn gap gru_v1 gmp; do
	gradcheck "$tmp/mask.yaml" $layer --seed 3 --inputs 3 --ids 5
	status=$?
	[ $status -eq 0 ] && grep -q "^passed: " "$tmp/out"
	check "gradcheck $layer (masked) passes (status $status: $(said))" $?
done

# ---- return_state and initial_state ----------------------------------------------------------------
# Each layer's gradients reach every part of its [output, states] and both initial states, with a
# mask, recurrent dropout (h0 dropped as h_prev), go_backwards and the GRU without reset_after.
cat >"$tmp/states.yaml" <<'YAML'
name: states
inputs: [{name: x, shape: [5, 3]}]
layers:
  - {type: lstm, units: 4, return_sequences: true, return_state: true, name: enc, inputs: x}
  - {type: lstm, units: 4, go_backwards: true, inputs: [enc_output, enc_state_h, enc_state_c], name: dec}
  - {type: masking, name: mask, inputs: x}
  - {type: gru, units: 4, return_state: true, recurrent_dropout: 0.3, inputs: [mask, dec], name: g}
  - {type: gru, units: 4, reset_after: false, return_sequences: true, inputs: [mask, g_state_h], name: g1}
  - {type: simple_rnn, units: 4, return_state: true, go_backwards: true, inputs: [x, g_output], name: s}
  - {type: lstm, units: 4, recurrent_dropout: 0.3, inputs: [mask, s_state_h, enc_state_c], name: l}
outputs: [g1, s_output, l]
YAML
for layer in enc dec g g1 s l enc_state_c s_output; do
	gradcheck "$tmp/states.yaml" $layer --seed 3 --inputs 3
	status=$?
	[ $status -eq 0 ] && grep -q "^passed: " "$tmp/out"
	check "gradcheck $layer (return_state, initial_state) passes (status $status: $(said))" $?
done
gradcheck "$tmp/states.yaml" dec --seed 3 --inputs 3
grep -q "^  training  input 1 (enc_state_h) " "$tmp/out" && grep -q "^  training  input 2 (enc_state_c) " "$tmp/out"
check "gradcheck checks the initial states' gradients ($(said))" $?
"$strata" summary "$tmp/states.yaml" >"$tmp/out" 2>&1
grep -q "^ enc (LSTM) *(None, 28) *128 " "$tmp/out" && grep -q "^ enc_state_c (RNNPart) *(None, 4) *0 " "$tmp/out" &&
	grep -q "^ enc_output (RNNPart) *(None, 5, 4) *0 " "$tmp/out"
check "summary shows the layer with return_state and its parts ($(said))" $?
# states_refused WHAT LAYERS WANT: a model of input x (5, 3) with these layers is refused.
states_refused() {
	printf 'name: bad\ninputs: [{name: x, shape: [5, 3]}]\nlayers:\n%s\n' "$2" >"$tmp/bad.yaml"
	"$strata" summary "$tmp/bad.yaml" >"$tmp/out" 2>&1
	status=$?
	[ $status -eq 2 ] && grep -qF -- "$3" "$tmp/out"
	check "summary refuses $1 (status $status: $(said))" $?
}
states_refused "return_state without a name" "  - {type: gru, units: 3, return_state: true}" \
	"bad.yaml:4:41: a layer with return_state needs a 'name': later layers read its parts as NAME_output, NAME_state_h"
states_refused "reading a layer with return_state itself" \
	"  - {type: lstm, units: 3, return_state: true, name: e}
  - {type: dense, units: 2, inputs: e}" "bad.yaml:5:37: e returns its states (return_state): read e_output, e_state_h or e_state_c instead"
states_refused "an initial state of the wrong size" \
	"  - {type: gru, units: 3, return_state: true, name: e}
  - {type: gru, units: 4, inputs: [x, e_state_h]}" "gru_1: initial state h0 (input 1) must be (4) floats, got (3)"
states_refused "an LSTM given h0 alone" \
	"  - {type: lstm, units: 3, return_state: true, name: e}
  - {type: lstm, units: 3, inputs: [x, e_state_h]}" "lstm_1: takes its sequence and, as initial_state, h0 and c0 (3 inputs): 2 inputs given"
states_refused "return_state in a bidirectional layer" \
	"  - {type: bidirectional, layer: {type: gru, units: 3, return_state: true}}" \
	"bad.yaml:4:70: return_state in a bidirectional layer (its four states as outputs) is not supported"

# ---- bidirectional: both directions and the merge, masked -----------------------------------------
cat >"$tmp/bi.yaml" <<'YAML'
name: bi
inputs: [{name: ids, shape: [6], dtype: int32}]
layers:
  - {type: embedding, input_dim: 5, output_dim: 3, mask_zero: true, name: emb}
  - {type: bidirectional, layer: {type: lstm, units: 4, return_sequences: true}}
  - {type: bidirectional, layer: {type: gru, units: 3}, merge_mode: sum, name: bgru}
  - {type: dense, units: 2, activation: softmax}
YAML
for layer in bidirectional_1_forward bidirectional_1_backward bgru_forward bgru_backward bgru; do
	gradcheck "$tmp/bi.yaml" $layer --seed 3 --inputs 3 --ids 5
	status=$?
	[ $status -eq 0 ] && grep -q "^passed: " "$tmp/out"
	check "gradcheck $layer passes (status $status: $(said))" $?
done
"$strata" summary "$tmp/bi.yaml" >"$tmp/out" 2>&1
status=$?
# Bidirectional(LSTM(4)) on 3 features: 2 x 128; Bidirectional(GRU(3)) on 8: 2 x 3 x (24 + 9 + 6) = 234
[ $status -eq 0 ] && grep -q "^ bidirectional_1_forward (LSTM *(None, 6, 4) *128 " "$tmp/out" &&
	grep -q "^ bidirectional_1_backward (LST *(None, 6, 4) *128 " "$tmp/out" &&
	grep -q "^ bidirectional_1 (Concatenate) *(None, 6, 8) *0 " "$tmp/out" &&
	grep -q "^ bgru_backward (GRU) *(None, 3) *117 " "$tmp/out" && grep -q "^ bgru (Add) *(None, 3) *0 " "$tmp/out" &&
	grep -q "^Total params: 513" "$tmp/out"
check "summary shows a bidirectional layer's directions and merge with Keras' counts (status $status: $(said))" $?
# bad wrappers: exit status 2 at the value's FILE:LINE:COLUMN
bad_bi() {
	printf 'name: bad
input: {shape: [4, 2]}
layers:
  - %s
' "$1" >"$tmp/bad.yaml"
	"$strata" summary "$tmp/bad.yaml" >"$tmp/out" 2>&1
	status=$?
	[ $status -eq 2 ] && grep -qF -- "$2" "$tmp/out"
	check "summary refuses $1 (status $status: $(said))" $?
}
bad_bi "{type: bidirectional}" "bad.yaml:4:5: a bidirectional layer needs 'layer'"
bad_bi "{type: bidirectional, layer: {type: dense, units: 3}}" \
	"bad.yaml:4:41: 'layer' of a bidirectional layer must be a mapping of type lstm, gru or simple_rnn"
bad_bi "{type: bidirectional, layer: {type: gru, units: 3}, merge_mode: null}" \
	"bad.yaml:4:69: 'merge_mode' must be one of concat, sum, mul, ave (null, two outputs, is not supported)"
bad_bi "{type: bidirectional, layer: {type: gru, units: 3}, backward_layer: {type: gru, units: 3}}" \
	"bad.yaml:4:57: unknown key 'backward_layer' in a bidirectional layer"
bad_bi "{type: bidirectional, layer: {type: gru, units: 0}}" "bad.yaml:4:53: 'units' must be in [1, 65536]"

# ---- time_distributed: a layer on every step --------------------------------------------------------
cat >"$tmp/td.yaml" <<'YAML'
name: td
input: {shape: [4, 6, 6, 1]}
layers:
  - {type: time_distributed, layer: {type: conv2d, filters: 3, kernel_size: 3, activation: relu}}
  - {type: time_distributed, layer: {type: maxpool2d, pool_size: 2}, name: pool}
  - {type: time_distributed, layer: {type: flatten}}
  - {type: lstm, units: 5}
  - {type: time_distributed, layer: {type: dense, units: 2}, inputs: time_distributed_2, name: per_step}
outputs: [lstm_1, per_step]
YAML
for layer in time_distributed_1 pool time_distributed_2 per_step; do
	gradcheck "$tmp/td.yaml" $layer --seed 3 --inputs 3
	status=$?
	[ $status -eq 0 ] && grep -q "^passed: " "$tmp/out"
	check "gradcheck $layer (time_distributed) passes (status $status: $(said))" $?
done
"$strata" summary "$tmp/td.yaml" >"$tmp/out" 2>&1
status=$?
[ $status -eq 0 ] && grep -q "^ time_distributed_1 (TimeDistr *(None, 4, 4, 4, 3) *30 " "$tmp/out" &&
	grep -q "^ pool (TimeDistributed) *(None, 4, 2, 2, 3) *0 " "$tmp/out" &&
	grep -q "^ per_step (TimeDistributed) *(None, 4, 2) *26 " "$tmp/out"
check "summary shows time_distributed layers with Keras' shapes and counts (status $status: $(said))" $?
bad_bi "{type: time_distributed, layer: lstm}" "bad.yaml:4:37: a time_distributed layer needs 'layer'"
printf 'name: bad\ninput: {shape: [5]}\nlayers:\n  - {type: time_distributed, layer: {type: dense, units: 2}}\n' >"$tmp/bad.yaml"
"$strata" summary "$tmp/bad.yaml" >"$tmp/out" 2>&1
status=$?
[ $status -eq 2 ] && grep -q "bad.yaml:4:5: time_distributed_1: time_distributed needs inputs of (timesteps, ...)" "$tmp/out"
check "summary refuses time_distributed on a vector (status $status: $(said))" $?

# ---- text: scripts/text_to_ids.py, and predict through its vocabulary ------------------------------
mkdir -p "$tmp/corpus"
: >"$tmp/corpus/manifest.tsv"
for k in 1 2 3 4 5; do
	printf 'Subject: x\n\nCheap PILLS, cheap pills! Buy now: %s offers... caf\303\251 win $$$\n' $k >"$tmp/corpus/s$k.txt"
	printf 'Subject: y\n\nThe meeting (room %s) moved to Tuesday; see the notes.\tThanks\n' $k >"$tmp/corpus/h$k.txt"
	printf '1\ts%s.txt\n0\th%s.txt\n' $k $k >>"$tmp/corpus/manifest.tsv"
done
python3 "$src/../scripts/text_to_ids.py" "$tmp/corpus/manifest.tsv" --out "$tmp/text" --body --max-tokens 12 \
	--length 8 >"$tmp/out" 2>&1
status=$?
[ $status -eq 0 ] && [ "$(sed -n 1p "$tmp/text/vocabulary.txt")" = "" ] && [ "$(sed -n 2p "$tmp/text/vocabulary.txt")" = "[UNK]" ] &&
	[ "$(wc -l <"$tmp/text/vocabulary.txt")" -eq 12 ] && grep -q "^train: 8 documents" "$tmp/out" &&
	grep -q "^test: 2 documents" "$tmp/out" && ! sed 1,2d "$tmp/text/vocabulary.txt" | grep -q "[[:upper:][:punct:]]" &&
	grep -q "^cheap$" "$tmp/text/vocabulary.txt" && ! grep -q "^subject$" "$tmp/text/vocabulary.txt"
check "text_to_ids.py writes a vocabulary of 12 ids and a fixed split (status $status: $(said))" $?
cat >"$tmp/text.yaml" <<YAML
name: text
inputs: [{name: ids, shape: [8], dtype: int32}]
layers:
  - {type: embedding, input_dim: 12, output_dim: 4, mask_zero: true}
  - {type: global_average_pooling1d}
  - {type: dense, units: 2, activation: softmax}
loss: categorical_crossentropy
optimizer: adam
data: {train_images: $tmp/text/train-ids.idx, train_labels: $tmp/text/train-labels.idx,
       test_images: $tmp/text/test-ids.idx, test_labels: $tmp/text/test-labels.idx, num_classes: 2}
training: {batch_size: 4, epochs: 2, seed: 1}
YAML
"$strata" train "$tmp/text.yaml" --save "$tmp/text.stw" >"$tmp/out" 2>&1
check "a text model trains on int32 ids ($(said))" $?
# The test set is every 5th document of each label: s5 (spam, label 1) then h5 (ham).
"$strata" predict "$tmp/text.yaml" "$tmp/text/test-ids.idx" --weights "$tmp/text.stw" >"$tmp/idx.out" 2>&1
sed '1,/^$/d' "$tmp/corpus/s5.txt" >"$tmp/s5.body"
"$strata" predict "$tmp/text.yaml" "$tmp/s5.body" --weights "$tmp/text.stw" --vocabulary "$tmp/text/vocabulary.txt" \
	>"$tmp/out" 2>&1
status=$?
[ $status -eq 0 ] && [ "$(sed -n 1p "$tmp/idx.out")" = "$(cat "$tmp/out")" ]
check "predict --vocabulary on raw text gives the prepared ids' prediction (status $status: $(said) vs $(head -1 "$tmp/idx.out"))" $?
printf 'x\n[UNK]\n' >"$tmp/bad_vocab.txt"
"$strata" predict "$tmp/text.yaml" "$tmp/s5.body" --weights "$tmp/text.stw" --vocabulary "$tmp/bad_vocab.txt" >"$tmp/out" 2>&1
status=$?
[ $status -eq 2 ] && grep -q "bad_vocab.txt:1: not a vocabulary" "$tmp/out"
check "predict refuses a file that is no vocabulary (status $status: $(said))" $?
printf '\n[UNK]\nok\nOops\n' >"$tmp/bad_vocab.txt"
"$strata" predict "$tmp/text.yaml" "$tmp/s5.body" --weights "$tmp/text.stw" --vocabulary "$tmp/bad_vocab.txt" >"$tmp/out" 2>&1
status=$?
[ $status -eq 2 ] && grep -q "bad_vocab.txt:4: not a token of the tokenizer" "$tmp/out"
check "predict refuses a vocabulary with a token the tokenizer cannot make (status $status: $(said))" $?

# ---- Keras' counts -------------------------------------------------------------------------------
"$strata" summary "$tmp/seq.yaml" >"$tmp/out" 2>&1
status=$?
# SimpleRNN(4) on 3 features: 3*4 + 4*4 + 4 = 32; LSTM(4): 4 * 32 = 128; GRU(4), reset_after:
# 3 * (12 + 16 + 2*4) = 108; without: 3 * (12 + 16 + 4) = 96; LSTM(3) without bias: 4 * (9 + 9) = 72
[ $status -eq 0 ] && grep -q "^ rnn (SimpleRNN) *(None, 4) *32 " "$tmp/out" &&
	grep -q "^ rnn_seq (SimpleRNN) *(None, 5, 4) *32 " "$tmp/out" &&
	grep -q "^ lstm (LSTM) *(None, 4) *128 " "$tmp/out" &&
	grep -q "^ lstm_bare (LSTM) *(None, 5, 3) *72 " "$tmp/out" &&
	grep -q "^ gru (GRU) *(None, 4) *108 " "$tmp/out" &&
	grep -q "^ gru_v1 (GRU) *(None, 4) *96 " "$tmp/out" &&
	grep -q "^ gru_v1_seq (GRU) *(None, 5, 3) *63 " "$tmp/out"
check "summary counts as Keras does (status $status: $(said))" $?
"$strata" summary "$tmp/ids.yaml" >"$tmp/out" 2>&1
status=$?
[ $status -eq 0 ] && grep -q "^ emb (Embedding) *(None, 6, 3) *15 " "$tmp/out" &&
	grep -q "^ emb_grid (Embedding) *(None, 3, 4, 2) *14 " "$tmp/out"
check "summary counts embeddings as Keras does (status $status: $(said))" $?

"$strata" layers >"$tmp/out" 2>&1
grep -q "^simple_rnn (SimpleRNN)" "$tmp/out" && grep -q "^lstm (LSTM)" "$tmp/out" && grep -q "^gru (GRU)" "$tmp/out" &&
	grep -q "^    recurrent_initializer  *.*default orthogonal" "$tmp/out" &&
	grep -q "^    unit_forget_bias  *bool  *default true" "$tmp/out" &&
	grep -q "^    reset_after  *bool  *default true" "$tmp/out" &&
	grep -q "^    stateful  *not supported  *only false" "$tmp/out" && grep -q "^embedding (Embedding)" "$tmp/out" &&
	grep -q "^    embeddings_initializer  *.*default uniform" "$tmp/out" && grep -q "^masking (Masking)" "$tmp/out" &&
	grep -q "^global_average_pooling1d (GlobalAveragePooling1D)" "$tmp/out" &&
	grep -q "^global_max_pooling1d (GlobalMaxPooling1D)" "$tmp/out" && grep -q "^    mask_zero  *bool  *default false" "$tmp/out"
check "strata layers lists the recurrent layers and what they leave out ($(said))" $?

# ---- refusals: exit status 2, the value's FILE:LINE:COLUMN ----------------------------------------
# refused TEXT SHAPE LAYER-LINE WANT...: the model with that layer is refused by summary.
refused() {
	what=$1
	shape=$2
	line=$3
	shift 3
	printf 'name: bad\ninput: {shape: %s}\nlayers:\n  - %s\n' "$shape" "$line" >"$tmp/bad.yaml"
	"$strata" summary "$tmp/bad.yaml" >"$tmp/out" 2>&1
	status=$?
	ok=0
	[ $status -eq 2 ] || ok=1
	for want in "$@"; do
		grep -qF -- "$want" "$tmp/out" || ok=1
	done
	check "summary refuses $what (status $status: $(said))" $ok
}
refused "an image" "[4, 4, 2]" "{type: lstm, units: 3}" "bad.yaml:4:5: lstm_1: needs float sequences of (timesteps, features), got (4, 4, 2)"
refused "a vector" "[8]" "{type: gru, units: 3}" "bad.yaml:4:5: gru_1: needs float sequences"
refused "units 0" "[4, 2]" "{type: simple_rnn, units: 0}" "bad.yaml:4:31: 'units' must be in [1, 65536]"
refused "no units" "[4, 2]" "{type: lstm}" "bad.yaml:4:5" "units"
refused "dropout 1" "[4, 2]" "{type: lstm, units: 3, dropout: 1}" "bad.yaml:4:37: 'dropout' must be in [0, 1)"
refused "stateful" "[4, 2]" "{type: gru, units: 3, stateful: true}" "bad.yaml:4:37: 'stateful' is a Keras parameter Strata leaves out"
refused "float ids" "[6]" "{type: embedding, input_dim: 5, output_dim: 2}" \
	"bad.yaml:4:5: embedding_1: needs int32 ids of 1 to 3 axes (an input with dtype: int32), got (6) of floats"
refused "input_dim 0" "[6]" "{type: embedding, input_dim: 0, output_dim: 2}" "bad.yaml:4:34: 'input_dim' must be in [1, "
refused "sparse" "[6]" "{type: embedding, input_dim: 4, output_dim: 2, sparse: true}" \
	"bad.yaml:4:60: 'sparse' is a Keras parameter Strata leaves out"
refused "pooling an image" "[4, 4, 2]" "{type: global_average_pooling1d}" \
	"bad.yaml:4:5: global_average_pooling1d_1: GlobalAveragePooling1D needs a (steps, channels) input, got (4, 4, 2)"
refused "masking a vector" "[4]" "{type: masking}" "bad.yaml:4:5: masking_1: Masking needs sequences of (steps, features)"
refused "gelu" "[4, 2]" "{type: simple_rnn, units: 3, activation: gelu}" "bad.yaml:4:46: 'activation' must be one of tanh, sigmoid"

echo "$passes passed, $fails failed"
[ "$fails" -eq 0 ]
