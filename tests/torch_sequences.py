#!/usr/bin/python3
"""Embedding, SimpleRNN, LSTM and GRU against PyTorch's nn.Embedding, nn.RNN, nn.LSTM and nn.GRU
(issue 15, point 5).

A chain of every recurrent variant (GRU with reset_after both ways, LSTM, SimpleRNN with tanh and
relu, return_sequences both ways, go_backwards) is trained three epochs by Strata on synthetic
sequences, so every weight is a trained one; `strata embed` then gives each layer's output on test
sequences, and PyTorch's layer loading the same weights must give the same outputs from the same
input (the previous layer's output as Strata computed it, so an error does not spread):
  - Keras' kernel (features, gates x units) is PyTorch's weight_ih_l0 transposed, the recurrent
    kernel likewise; LSTM gates i, f, c, o are PyTorch's i, f, g, o; GRU gates z, r, h are
    PyTorch's r, z, n reordered; the GRU's (2, 3 x units) bias is (b_ih, b_hh); LSTM and SimpleRNN
    have one bias, given as b_ih with b_hh = 0;
  - go_backwards: PyTorch runs the reversed sequence, its outputs in the order of the steps;
  - the GRU without reset_after (the original GRU, which PyTorch has no layer for) against a NumPy
    reference of Keras' formula;
  - a text model (int32 ids, embedding, LSTM, dense) trained the same way: the embedding's output
    against nn.Embedding with the trained table, the LSTM's against nn.LSTM on it;
  - Bidirectional(GRU) against nn.GRU(bidirectional=True), the backward direction's weights as the
    reverse direction's;
  - masks: a text model whose ids hold padding 0s (at the end and within), embedding with
    mask_zero, LSTM, GRU and SimpleRNN (go_backwards) returning sequences, global average pooling:
    each against PyTorch's cells stepped by hand with Keras' rule (a masked step keeps the state
    and outputs the previous output), the pooling against the mean over the real steps; and
    bidirectional GRU (concat) and LSTM (ave) over the masked ids the same way;
  - return_state and initial_state: an encoder LSTM's sequence and final (h, c) against nn.LSTM's
    output and (h_n, c_n), a decoder LSTM and a GRU started from given states against nn.LSTM and
    nn.GRU called with them.
Largest absolute difference allowed: 1e-4 (float32 on both sides). Exit 0 pass, 1 fail.
"""
import os
import subprocess
import sys
import tempfile

try:
    import numpy as np
    import torch
    from torch import nn
except ImportError:
    # meson's python3 may be another interpreter (pyenv's) than Debian's, which has python3-torch.
    if sys.executable != "/usr/bin/python3" and os.path.exists("/usr/bin/python3"):
        os.execv("/usr/bin/python3", ["/usr/bin/python3"] + sys.argv)
    raise

SRC = os.environ.get("STRATA_TEST_SRCDIR") or os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(SRC, "..", "bench"))
from pytorch_reference import read_stw, write_idx  # noqa: E402

STRATA = os.environ.get("STRATA_EXE", "build/src/strata")
TOLERANCE = 1e-4
STEPS, FEATURES, CLASSES, SAMPLES = 7, 5, 3, 384

MODEL = """\
name: rnn_torch
input: {shape: [7, 5]}
layers:
  - {type: gru, units: 6, return_sequences: true, name: g1}
  - {type: gru, units: 5, reset_after: false, return_sequences: true, go_backwards: true, name: g2}
  - {type: lstm, units: 6, return_sequences: true, go_backwards: true, name: l1}
  - {type: simple_rnn, units: 5, return_sequences: true, activation: relu, name: s1}
  - {type: bidirectional, layer: {type: gru, units: 3, return_sequences: true}, name: bi}
  - {type: simple_rnn, units: 4, go_backwards: true, name: s2}
  - {type: dense, units: 3, activation: softmax, name: out}
loss: categorical_crossentropy
optimizer: {type: adam, learning_rate: 0.01}
data:
  train_images: train-seq.idx
  train_labels: train-labels.idx
  test_images: test-seq.idx
  test_labels: test-labels.idx
  scale: 0.00392156862745098
  num_classes: 3
training: {batch_size: 32, epochs: 3, seed: 15}
"""
# name: (type, the layer it reads, its output shape, go_backwards)
LAYERS = {
    "g1": ("gru", None, (STEPS, 6), False),
    "g2": ("gru_v1", "g1", (STEPS, 5), True),
    "l1": ("lstm", "g2", (STEPS, 6), True),
    "s1": ("relu", "l1", (STEPS, 5), False),
    "bi": ("bigru", "s1", (STEPS, 6), False),
    "s2": ("tanh", "bi", (4,), True),
}


TEXT_MODEL = """\
name: text_torch
inputs: [{name: ids, shape: [12], dtype: int32}]
layers:
  - {type: embedding, input_dim: 40, output_dim: 8, name: emb}
  - {type: lstm, units: 6, name: lstm}
  - {type: dense, units: 3, activation: softmax, name: out}
loss: categorical_crossentropy
optimizer: {type: adam, learning_rate: 0.01}
data: {train_images: train-ids.idx, train_labels: train-ids-labels.idx, test_images: test-ids.idx,
       test_labels: test-ids-labels.idx, num_classes: 3}
training: {batch_size: 32, epochs: 3, seed: 15}
"""


# Keras' return_state and initial_state: an encoder LSTM returning its sequence and both final
# states, a decoder LSTM (go_backwards) starting from them, a GRU starting from the decoder's output
# and returning its state, read by the classifier.
STATES_MODEL = MODEL.split("layers:")[0] + """layers:
  - {type: lstm, units: 6, return_sequences: true, return_state: true, name: enc}
  - {type: lstm, units: 6, go_backwards: true, inputs: [enc_output, enc_state_h, enc_state_c], name: dec}
  - {type: gru, units: 6, return_state: true, inputs: [enc_output, dec], name: g}
  - {type: dense, units: 3, activation: softmax, inputs: g_state_h, name: out}
outputs: [out]
""" + "loss:" + MODEL.split("loss:")[1]


def id_set(rng, n):
    """12 ids of 40 per sample; class c's samples hold several ids from c's block of ten."""
    ids = rng.integers(0, 40, (n, 12)).astype(np.uint8)
    labels = rng.integers(0, CLASSES, n).astype(np.uint8)
    for i, c in enumerate(labels):
        at = rng.choice(12, 4, replace=False)
        ids[i, at] = rng.integers(10 * c, 10 * c + 10, 4)
    return ids, labels


MASKED_MODEL = """\
name: masked_torch
inputs: [{name: ids, shape: [12], dtype: int32}]
layers:
  - {type: embedding, input_dim: 40, output_dim: 8, mask_zero: true, name: emb}
  - {type: lstm, units: 6, return_sequences: true, name: lstm}
  - {type: gru, units: 5, return_sequences: true, name: gru}
  - {type: simple_rnn, units: 4, return_sequences: true, go_backwards: true, name: rnn}
  - {type: global_average_pooling1d, name: avg}
  - {type: dense, units: 3, activation: softmax, name: out}
loss: categorical_crossentropy
optimizer: {type: adam, learning_rate: 0.01}
data: {train_images: train-pad.idx, train_labels: train-ids-labels.idx, test_images: test-pad.idx,
       test_labels: test-ids-labels.idx, num_classes: 3}
training: {batch_size: 32, epochs: 3, seed: 15}
"""


def padded(rng, ids):
    """Padding: each sample's tail of 0 to 8 steps set to id 0, and a few 0s within."""
    ids = ids.copy()
    for i in range(len(ids)):
        ids[i, ids.shape[1] - rng.integers(0, 9):] = 0
        ids[i, rng.integers(0, ids.shape[1], 2)] = 0
    ids[0, :] = 0  # a sample of padding only
    return ids


def masked_run(kind, name, w, x, mask, backwards):
    """Keras' masked recurrence with PyTorch's cells: a masked step keeps h (and c) and outputs the
    previous output."""
    units = w[name + "/recurrent_kernel"].shape[0]
    features = x.shape[2]
    if kind == "gru":
        cell = nn.GRUCell(features, units)
        wih, whh, bih, bhh = gru_torch_weights(w, name)
    else:
        cell = nn.LSTMCell(features, units) if kind == "lstm" else nn.RNNCell(features, units)
        wih, whh = w[name + "/kernel"].T, w[name + "/recurrent_kernel"].T
        bih, bhh = w[name + "/bias"], np.zeros_like(w[name + "/bias"])
    outs = []
    with torch.no_grad():
        for attr, value in (("weight_ih", wih), ("weight_hh", whh), ("bias_ih", bih), ("bias_hh", bhh)):
            getattr(cell, attr).copy_(torch.from_numpy(np.ascontiguousarray(value, dtype=np.float32)))
        h = torch.zeros(x.shape[0], units)
        c = torch.zeros(x.shape[0], units)
        for s in range(x.shape[1]):
            t = x.shape[1] - 1 - s if backwards else s
            xt = torch.from_numpy(np.ascontiguousarray(x[:, t]))
            m = torch.from_numpy(mask[:, t:t + 1].astype(np.float32)) > 0
            if kind == "lstm":
                hn, cn = cell(xt, (h, c))
                c = torch.where(m, cn, c)
            else:
                hn = cell(xt, h)
            h = torch.where(m, hn, h)
            outs.append(h.clone())
    return torch.stack(outs, 1).numpy()


BI_MODEL = """\
name: bi_torch
inputs: [{name: ids, shape: [12], dtype: int32}]
layers:
  - {type: embedding, input_dim: 40, output_dim: 8, mask_zero: true, name: emb}
  - {type: bidirectional, layer: {type: gru, units: 5, return_sequences: true}, name: bi1}
  - {type: bidirectional, layer: {type: lstm, units: 4}, merge_mode: ave, name: bi2}
  - {type: dense, units: 3, activation: softmax, name: out}
loss: categorical_crossentropy
optimizer: {type: adam, learning_rate: 0.01}
data: {train_images: train-pad.idx, train_labels: train-ids-labels.idx, test_images: test-pad.idx,
       test_labels: test-ids-labels.idx, num_classes: 3}
training: {batch_size: 32, epochs: 3, seed: 15}
"""


# Keras' initial weights: sgd at rate 0 leaves them as initialized.
INIT_MODEL = """\
name: rnn_init
input: {shape: [7, 5]}
layers:
  - {type: lstm, units: 6, return_sequences: true, name: forget}
  - {type: lstm, units: 6, unit_forget_bias: false, bias_initializer: ones, return_sequences: true, name: plain}
  - {type: gru, units: 6, name: gru}
  - {type: dense, units: 3, activation: softmax, name: out}
loss: categorical_crossentropy
optimizer: {type: sgd, learning_rate: 0}
data: {train_images: train-seq.idx, train_labels: train-labels.idx, scale: 0.00392156862745098, num_classes: 3}
training: {batch_size: 32, epochs: 1, seed: 15}
"""


def check_initial(w):
    """Keras' initializers: the LSTM's forget-gate bias at 1 with unit_forget_bias, the recurrent
    kernels orthogonal (orthonormal rows: (units, gates x units)), the kernels glorot_uniform."""
    problems = []
    u = 6
    want = np.concatenate([np.zeros(u), np.ones(u), np.zeros(2 * u)])
    if not np.array_equal(w["forget/bias"], want):
        problems.append(f"forget/bias is {w['forget/bias']}, want zeros, ones, zeros, zeros")
    if not np.array_equal(w["plain/bias"], np.ones(4 * u)):
        problems.append("plain/bias is not all ones")
    if w["gru/bias"].shape != (2, 3 * u) or np.any(w["gru/bias"] != 0):
        problems.append(f"gru/bias has shape {w['gru/bias'].shape} or is not zeros")
    for name in ("forget", "plain", "gru"):
        r = w[name + "/recurrent_kernel"].astype(np.float64)
        if np.abs(r @ r.T - np.eye(u)).max() > 1e-5:
            problems.append(f"{name}/recurrent_kernel's rows are not orthonormal")
        k = w[name + "/kernel"]
        limit = np.sqrt(6.0 / (k.shape[0] + k.shape[1]))
        if np.abs(k).max() > limit or np.abs(k).max() < 0.5 * limit:
            problems.append(f"{name}/kernel is not glorot_uniform within {limit:.3g}")
    return problems


def data_set(rng, n):
    """Sequences of 7 steps of 5 values; the class is the feature with the largest sum over time."""
    seq = rng.integers(0, 120, (n, STEPS, FEATURES)).astype(np.int32)
    labels = rng.integers(0, CLASSES, n).astype(np.uint8)
    for i, c in enumerate(labels):
        seq[i, :, c] += rng.integers(40, 130, STEPS)
    return np.clip(seq, 0, 255).astype(np.uint8), labels


def gru_torch_weights(w, name):
    """Keras' z, r, h blocks as PyTorch's r, z, n."""
    units = w[name + "/recurrent_kernel"].shape[0]

    def reorder(m):
        z, r, h = m[..., :units], m[..., units:2 * units], m[..., 2 * units:]
        return np.concatenate([r, z, h], axis=-1)
    bias = w[name + "/bias"]
    return (reorder(w[name + "/kernel"]).T, reorder(w[name + "/recurrent_kernel"]).T, reorder(bias[0]),
            reorder(bias[1]))


def torch_layer(kind, name, w, x, backwards, initial=None, final=False):
    """PyTorch's layer with the Keras weights of `name` on x (n, steps, features); `initial`: the
    initial state (h0, or (h0, c0) for an LSTM), each (n, units); `final`: also the final state."""
    features = x.shape[2]
    if kind == "bigru":
        # Bidirectional(GRU): nn.GRU(bidirectional=True), its reverse direction from name_backward.
        units = w[name + "_forward/recurrent_kernel"].shape[0]
        layer = nn.GRU(features, units, batch_first=True, bidirectional=True)
        with torch.no_grad():
            for suffix, part in (("", "_forward"), ("_reverse", "_backward")):
                for attr, value in zip(("weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0"),
                                       gru_torch_weights(w, name + part)):
                    getattr(layer, attr + suffix).copy_(torch.from_numpy(np.ascontiguousarray(value, dtype=np.float32)))
            out, _ = layer(torch.from_numpy(x))
        return out.numpy()
    units = w[name + "/recurrent_kernel"].shape[0]
    if kind == "gru":
        layer = nn.GRU(features, units, batch_first=True)
        wih, whh, bih, bhh = gru_torch_weights(w, name)
    else:
        layer = nn.LSTM(features, units, batch_first=True) if kind == "lstm" else \
            nn.RNN(features, units, nonlinearity=kind, batch_first=True)
        wih, whh = w[name + "/kernel"].T, w[name + "/recurrent_kernel"].T
        bih, bhh = w[name + "/bias"], np.zeros_like(w[name + "/bias"])
    with torch.no_grad():
        for attr, value in (("weight_ih_l0", wih), ("weight_hh_l0", whh), ("bias_ih_l0", bih), ("bias_hh_l0", bhh)):
            getattr(layer, attr).copy_(torch.from_numpy(np.ascontiguousarray(value, dtype=np.float32)))
        seq = torch.from_numpy(x)
        if backwards:
            seq = seq.flip(1)
        if initial is not None:
            state = tuple(torch.from_numpy(v)[None] for v in initial) if kind == "lstm" else torch.from_numpy(initial)[None]
            out, last = layer(seq, state)
        else:
            out, last = layer(seq)
    if final:
        return out.numpy(), tuple(v[0].numpy() for v in last) if kind == "lstm" else last[0].numpy()
    return out.numpy()


def gru_v1_numpy(w, name, x, backwards):
    """Keras' GRU with reset_after=False: h~ = tanh(x W_h + b_h + (r h_prev) U_h)."""
    kernel, rec, bias = (w[name + "/kernel"].astype(np.float64), w[name + "/recurrent_kernel"].astype(np.float64),
                         w[name + "/bias"].astype(np.float64))
    units = rec.shape[0]
    sig = lambda v: 1.0 / (1.0 + np.exp(-v))  # noqa: E731
    h = np.zeros((x.shape[0], units))
    outs = []
    for s in range(x.shape[1]):
        xt = x[:, x.shape[1] - 1 - s if backwards else s].astype(np.float64)
        xw = xt @ kernel + bias
        z = sig(xw[:, :units] + h @ rec[:, :units])
        r = sig(xw[:, units:2 * units] + h @ rec[:, units:2 * units])
        hh = np.tanh(xw[:, 2 * units:] + (r * h) @ rec[:, 2 * units:])
        h = z * h + (1 - z) * hh
        outs.append(h)
    return np.stack(outs, axis=1).astype(np.float32)


def agrees(name, want, have, ref="PyTorch", floor=0.05):
    """Prints the largest difference; true when within TOLERANCE of a reference that is not ~0."""
    diff = float(np.abs(want - have).max())
    top = float(np.abs(want).max())
    ok = diff <= TOLERANCE and top > floor
    print(f"{name}: max |strata - {ref}| = {diff:.3g}, max |{ref}| = {top:.3g}{'' if ok else '  FAIL'}")
    return ok


def run(*args):
    r = subprocess.run([STRATA, *args], capture_output=True, text=True, timeout=300)
    if r.returncode != 0:
        print(f"FAIL: strata {' '.join(args)} exited {r.returncode}:\n{r.stdout}{r.stderr}")
        sys.exit(1)
    return r.stdout


def train(tmp, name, text, *extra):
    """Writes model `name`, trains it; its output and weights."""
    model = os.path.join(tmp, name + ".yaml")
    with open(model, "w") as f:
        f.write(text)
    weights = os.path.join(tmp, name + ".stw")
    out = run("train", model, *extra, "--save", weights)
    return model, out, read_stw(weights)[1]


def test_figure(out, key):
    """The number of the training output's "Test KEY:" line, in a list (empty when missing)."""
    return [float(line.split()[-1]) for line in out.splitlines() if line.startswith("Test " + key)]


def embed(tmp, model, data, names):
    """Each layer's output for the samples of IDX file `data` in tmp, with the model's weights."""
    weights = model[:-len(".yaml")] + ".stw"
    got = {}
    for name in names:
        path = os.path.join(tmp, os.path.basename(model)[:-len(".yaml")] + "-" + name + ".npy")
        run("embed", model, os.path.join(tmp, data), "--weights", weights, "--layer", name, "-o", path)
        got[name] = np.load(path)
    return got


def main():
    rng = np.random.default_rng(15)
    failed = 0
    with tempfile.TemporaryDirectory(prefix="strata-rnn-torch-") as tmp:
        for part, n in (("train", SAMPLES), ("test", 64)):
            seq, labels = data_set(rng, n)
            write_idx(os.path.join(tmp, part + "-seq.idx"), seq)
            write_idx(os.path.join(tmp, part + "-labels.idx"), labels)
        test_seq = seq.astype(np.float32) * np.float32(1.0 / 255.0)
        model, out, w = train(tmp, "model", MODEL)
        # Training learned: the test loss fell well below log(3) = 1.0986 of a uniform guess.
        loss = test_figure(out, "loss")
        if not loss or loss[0] >= 0.9:
            print(f"FAIL: three epochs did not lower the test loss below 0.9: {loss}\n{out}")
            failed += 1

        # The text model: byte ids read as int32, through the embedding.
        id_sets = {}
        for part, n in (("train", SAMPLES), ("test", 64)):
            id_sets[part], labels = id_set(rng, n)
            write_idx(os.path.join(tmp, part + "-ids.idx"), id_sets[part])
            write_idx(os.path.join(tmp, part + "-ids-labels.idx"), labels)
        text, out, tw = train(tmp, "text", TEXT_MODEL)
        acc = test_figure(out, "accuracy")
        if not acc or acc[0] < 0.6:
            print(f"FAIL: the text model did not learn (test accuracy {acc}):\n{out}")
            failed += 1
        tgot = embed(tmp, text, "test-ids.idx", ("emb", "lstm"))
        got_emb = tgot["emb"].reshape(-1, 12, 8)
        with torch.no_grad():
            table = nn.Embedding(40, 8)
            table.weight.copy_(torch.from_numpy(tw["emb/embeddings"]))
            want_emb = table(torch.from_numpy(id_sets["test"].astype(np.int64))).numpy()
        want_lstm = torch_layer("lstm", "lstm", tw, got_emb, False)[:, -1]
        for name, want, got in (("emb (embedding)", want_emb, got_emb), ("lstm after it", want_lstm, tgot["lstm"])):
            failed += not agrees(name, want, got)

        # Masks: the same ids with padding, through masked layers.
        for part in ("train", "test"):
            pad = padded(rng, id_sets[part])
            write_idx(os.path.join(tmp, part + "-pad.idx"), pad)
        masked, out, mw = train(tmp, "masked", MASKED_MODEL)
        acc = test_figure(out, "accuracy")
        if not acc or acc[0] < 0.5:
            print(f"FAIL: the masked model did not learn (test accuracy {acc}):\n{out}")
            failed += 1
        got = embed(tmp, masked, "test-pad.idx", ("emb", "lstm", "gru", "rnn", "avg"))
        mask = (pad != 0)
        emb_out = got["emb"].reshape(-1, 12, 8)
        lstm_out = got["lstm"].reshape(-1, 12, 6)
        gru_out = got["gru"].reshape(-1, 12, 5)
        rnn_out = got["rnn"].reshape(-1, 12, 4)
        checks = [
            ("lstm, masked", masked_run("lstm", "lstm", mw, emb_out, mask, False), lstm_out),
            ("gru, masked", masked_run("gru", "gru", mw, lstm_out, mask, False), gru_out),
            ("simple_rnn, masked, go_backwards", masked_run("tanh", "rnn", mw, gru_out, mask, True), rnn_out),
        ]
        # The mean over the real steps: Keras passes a recurrent layer's mask on as it came, also
        # with go_backwards (whose output step s read input step 11 - s), and so does Strata.
        real = mask.astype(np.float32)[:, :, None]
        count = real.sum(axis=1)
        mean = np.where(count > 0, (rnn_out * real).sum(axis=1) / np.maximum(count, 1), 0.0)
        checks.append(("global_average_pooling1d, masked", mean, got["avg"]))
        for name, want, have in checks:
            failed += not agrees(name, want, have)
        # Bidirectional layers on masked sequences: each direction with Keras' masking rule, the
        # backward one's sequence put back in time order, then merged (concat, ave).
        bi, _, bw = train(tmp, "bi", BI_MODEL)
        bgot = embed(tmp, bi, "test-pad.idx", ("emb", "bi1", "bi2"))
        bemb = bgot["emb"].reshape(-1, 12, 8)
        bi1 = bgot["bi1"].reshape(-1, 12, 10)
        want1 = np.concatenate([masked_run("gru", "bi1_forward", bw, bemb, mask, False),
                                masked_run("gru", "bi1_backward", bw, bemb, mask, True)[:, ::-1]], axis=2)
        want2 = 0.5 * (masked_run("lstm", "bi2_forward", bw, bi1, mask, False)[:, -1] +
                       masked_run("lstm", "bi2_backward", bw, bi1, mask, True)[:, -1])
        for name, want, have in (("bidirectional gru, concat, masked", want1, bi1),
                                 ("bidirectional lstm, ave, masked", want2, bgot["bi2"])):
            failed += not agrees(name, want, have)

        # The padding-only sample: every state stays 0.
        if np.abs(rnn_out[0]).max() != 0 or np.abs(got["avg"][0]).max() != 0:
            print("FAIL: a sample of padding only has non-zero states")
            failed += 1

        _, _, init_weights = train(tmp, "init", INIT_MODEL, "--limit", "32")
        for problem in check_initial(init_weights):
            print(f"FAIL: initial weights: {problem}")
            failed += 1

        # return_state and initial_state against nn.LSTM / nn.GRU given (h0, c0) and returning (h_n, c_n).
        states, out, sw = train(tmp, "states", STATES_MODEL)
        loss = test_figure(out, "loss")
        if not loss or loss[0] >= 0.9:
            print(f"FAIL: the return_state model did not learn (test loss {loss}):\n{out}")
            failed += 1
        sgot = embed(tmp, states, "test-seq.idx", ("enc_output", "enc_state_h", "enc_state_c", "dec", "g_state_h"))
        enc_out = sgot["enc_output"].reshape(-1, STEPS, 6)
        want_seq, (want_h, want_c) = torch_layer("lstm", "enc", sw, test_seq, False, final=True)
        want_dec = torch_layer("lstm", "dec", sw, enc_out, True, (sgot["enc_state_h"], sgot["enc_state_c"]))[:, -1]
        want_g = torch_layer("gru", "g", sw, enc_out, False, sgot["dec"])[:, -1]
        for name, want, have in (("enc_output (lstm, return_state)", want_seq, enc_out),
                                 ("enc_state_h", want_h, sgot["enc_state_h"]), ("enc_state_c", want_c, sgot["enc_state_c"]),
                                 ("dec (lstm from enc's states, go_backwards)", want_dec, sgot["dec"]),
                                 ("g_state_h (gru from dec, return_state)", want_g, sgot["g_state_h"])):
            failed += not agrees(name, want, have)

        strata = embed(tmp, model, "test-seq.idx", LAYERS)
        for name, (kind, src, shape, backwards) in LAYERS.items():
            x = test_seq if src is None else strata[src].reshape((-1,) + LAYERS[src][2])
            got = strata[name].reshape((-1,) + shape)
            if kind == "gru_v1":
                want = gru_v1_numpy(w, name, x, backwards)
                ref = "NumPy"
            else:
                want = torch_layer(kind, name, w, x, backwards)
                ref = "PyTorch"
            if len(shape) == 1:
                want = want[:, -1]
            # The states are not near zero (a layer that output zeros would agree trivially).
            failed += not agrees(f"{name} ({kind}{', go_backwards' if backwards else ''})", want, got, ref, 0.1)
    if failed:
        print(f"FAIL: {failed} checks")
        return 1
    print(f"passed: every recurrent layer within {TOLERANCE} of PyTorch (NumPy for reset_after=False)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
