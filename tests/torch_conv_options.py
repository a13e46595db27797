#!/usr/bin/python3
"""Conv2D's dilation_rate and groups, and Conv1D, against PyTorch (issue 14, point 3).

Two small models are trained one epoch by Strata on synthetic IDX data sets, so their weights are
non-trivial: an image model whose convolutions are dilated (2, valid and same; 3 with an even
extent), grouped (2, 3 and 4 groups, with and without a bias, with strides) or both, and a sequence
model of Conv1D layers (causal with dilation and groups, same with strides, valid with groups,
causal with strides). `strata embed` then gives each layer's input and output on test samples, and
the same layer in PyTorch, loading Strata's weights, must give the same output:
  - conv2d against torch.nn.functional.conv2d(dilation=, groups=, stride=), NHWC <-> NCHW
    converted explicitly, the kernel (KH, KW, C / G, F) as PyTorch's (F, C / G, KH, KW), and
    TensorFlow's 'same' padding (the odd element after) applied with F.pad beforehand;
  - conv1d against torch.nn.functional.conv1d, (steps, C) <-> (C, steps), the kernel
    (K, C / G, F) as (F, C / G, K); 'causal' as F.pad by dilation * (K - 1) on the left.
Each layer's activation is applied after PyTorch's convolution. Largest absolute difference
allowed: 1e-4 (float32 on both sides). Exit 0 pass, 1 fail.
"""
import os
import subprocess
import sys
import tempfile

try:
    import numpy as np
    import torch
    import torch.nn.functional as F
except ImportError:
    # meson's python3 may be another interpreter (pyenv's) than Debian's, which has python3-torch.
    if sys.executable != "/usr/bin/python3" and os.path.exists("/usr/bin/python3"):
        os.execv("/usr/bin/python3", ["/usr/bin/python3"] + sys.argv)
    raise

SRC = os.environ.get("STRATA_TEST_SRCDIR") or os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(SRC, "..", "bench"))
from pytorch_reference import read_stw, write_idx, activate  # noqa: E402

STRATA = os.environ.get("STRATA_EXE", "build/src/strata")
TOLERANCE = 1e-4

DATA = """\
data:
  train_images: train-images.idx
  train_labels: train-labels.idx
  test_images: test-images.idx
  test_labels: test-labels.idx
  scale: 0.00392156862745098
  num_classes: 3
training: {batch_size: 32, epochs: 1, seed: 7}
loss: categorical_crossentropy
optimizer: adam
"""

# name -> (kernel_size, strides, padding, dilation, groups, activation), as in the model text
IMAGE_LAYERS = {
    "c0": ((3, 3), (1, 1), "same", (1, 1), 1, "relu"),
    "dil_same": ((3, 3), (1, 1), "same", (2, 2), 1, "tanh"),
    "grp4": ((3, 3), (1, 1), "same", (1, 1), 4, "relu"),
    "grp_dil": ((3, 2), (1, 1), "same", (2, 3), 2, "tanh"),
    "dil_valid": ((3, 3), (1, 1), "valid", (3, 3), 1, "relu"),
    "grp_strided": ((3, 3), (2, 2), "same", (1, 1), 2, "linear"),
    "grp3": ((2, 2), (1, 1), "valid", (1, 1), 3, "linear"),
}
IMAGE_MODEL = """\
name: conv_options_images
input: {shape: [12, 12, 1]}
layers:
  - {type: conv2d, filters: 4, kernel_size: 3, padding: same, activation: relu, name: c0}
  - {type: conv2d, filters: 8, kernel_size: 3, dilation_rate: 2, padding: same, activation: tanh, name: dil_same}
  - {type: conv2d, filters: 8, kernel_size: 3, groups: 4, padding: same, activation: relu, name: grp4}
  - {type: conv2d, filters: 6, kernel_size: [3, 2], dilation_rate: [2, 3], groups: 2, padding: same, activation: tanh,
     name: grp_dil}
  - {type: conv2d, filters: 6, kernel_size: 3, dilation_rate: 3, activation: relu, name: dil_valid}
  - {type: conv2d, filters: 6, kernel_size: 3, strides: 2, groups: 2, padding: same, name: grp_strided}
  - {type: conv2d, filters: 6, kernel_size: 2, groups: 3, use_bias: false, name: grp3}
  - {type: flatten}
  - {type: dense, units: 3, activation: softmax, name: out}
""" + DATA
IMAGE_ORDER = ["c0", "dil_same", "grp4", "grp_dil", "dil_valid", "grp_strided", "grp3"]

# name -> (kernel_size, strides, padding, dilation, groups, activation)
SEQUENCE_LAYERS = {
    "s_causal": (3, 1, "causal", 2, 2, "tanh"),
    "s_same": (4, 2, "same", 1, 1, "relu"),
    "s_valid": (3, 1, "valid", 1, 2, "linear"),
    "s_dilated": (3, 1, "same", 2, 1, "tanh"),
    "s_causal_strided": (3, 2, "causal", 1, 1, "linear"),
}
SEQUENCE_MODEL = """\
name: conv_options_sequences
input: {shape: [20, 4]}
layers:
  - {type: conv1d, filters: 6, kernel_size: 3, padding: causal, dilation_rate: 2, groups: 2, activation: tanh,
     name: s_causal}
  - {type: conv1d, filters: 6, kernel_size: 4, strides: 2, padding: same, activation: relu, name: s_same}
  - {type: conv1d, filters: 4, kernel_size: 3, groups: 2, name: s_valid}
  - {type: conv1d, filters: 4, kernel_size: 3, dilation_rate: 2, padding: same, activation: tanh, name: s_dilated}
  - {type: conv1d, filters: 3, kernel_size: 3, strides: 2, padding: causal, use_bias: false, name: s_causal_strided}
  - {type: flatten}
  - {type: dense, units: 3, activation: softmax, name: out}
""" + DATA
SEQUENCE_ORDER = ["s_causal", "s_same", "s_valid", "s_dilated", "s_causal_strided"]


def image_set(rng, n):
    """12x12 images of three classes (a bright row, column or diagonal) with noise and offsets."""
    labels = rng.integers(0, 3, n).astype(np.uint8)
    images = rng.integers(0, 90, (n, 12, 12)).astype(np.int32)
    for i, c in enumerate(labels):
        k = rng.integers(1, 11)
        if c == 0:
            images[i, k, :] += 150
        elif c == 1:
            images[i, :, k] += 150
        else:
            images[i, np.arange(12), np.arange(12)] += 150
        images[i] += rng.integers(0, 15)
    return np.clip(images, 0, 255).astype(np.uint8), labels


def sequence_set(rng, n):
    """20 steps of 4 channels, three classes: a pulse in channel 0, in channel 3, or a ramp."""
    labels = rng.integers(0, 3, n).astype(np.uint8)
    seqs = rng.integers(0, 80, (n, 20, 4)).astype(np.int32)
    for i, c in enumerate(labels):
        t = rng.integers(2, 18)
        if c == 0:
            seqs[i, t - 1:t + 2, 0] += 160
        elif c == 1:
            seqs[i, t - 1:t + 2, 3] += 160
        else:
            seqs[i, :, 1] += np.arange(20) * 8
    return np.clip(seqs, 0, 255).astype(np.uint8), labels


def run(cmd):
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        sys.stderr.write(r.stdout + r.stderr)
        raise SystemExit(f"FAIL: {' '.join(cmd)} exited with {r.returncode}")
    return r.stdout


def tf_padding(size, k, s, d, mode):
    """(before, after) zeros along one axis, as TensorFlow pads: the odd element after."""
    extent = d * (k - 1) + 1
    if mode == "valid":
        return 0, 0
    if mode == "causal":
        return extent - 1, 0
    out = -(-size // s)
    pad = max((out - 1) * s + extent - size, 0)
    return pad // 2, pad - pad // 2


def torch_conv2d(x, kernel, bias, spec):
    """x: NHWC float32 numpy; returns NHWC."""
    (kh, kw), (sh, sw), padding, (dh, dw), groups, act = spec
    t = torch.from_numpy(x).permute(0, 3, 1, 2)
    top, bottom = tf_padding(t.shape[2], kh, sh, dh, padding)
    left, right = tf_padding(t.shape[3], kw, sw, dw, padding)
    t = F.pad(t, (left, right, top, bottom))
    w = torch.from_numpy(np.ascontiguousarray(kernel.transpose(3, 2, 0, 1)))
    b = torch.from_numpy(bias) if bias is not None else None
    y = F.conv2d(t, w, b, stride=(sh, sw), dilation=(dh, dw), groups=groups)
    return activate(y, act).permute(0, 2, 3, 1).numpy()


def torch_conv1d(x, kernel, bias, spec):
    """x: (N, steps, C) float32 numpy; returns (N, steps', F)."""
    k, s, padding, d, groups, act = spec
    t = torch.from_numpy(x).permute(0, 2, 1)
    left, right = tf_padding(t.shape[2], k, s, d, padding)
    t = F.pad(t, (left, right))
    w = torch.from_numpy(np.ascontiguousarray(kernel.transpose(2, 1, 0)))
    b = torch.from_numpy(bias) if bias is not None else None
    y = F.conv1d(t, w, b, stride=s, dilation=d, groups=groups)
    return activate(y, act).permute(0, 2, 1).numpy()


def main():
    torch.set_grad_enabled(False)
    device = ["--device", os.environ["STRATA_TEST_DEVICE"]] if os.environ.get("STRATA_TEST_DEVICE") else []
    fails = 0
    with tempfile.TemporaryDirectory() as top:
        for kind, text, order, specs, make, sample in (
                ("images", IMAGE_MODEL, IMAGE_ORDER, IMAGE_LAYERS, image_set, (12, 12, 1)),
                ("sequences", SEQUENCE_MODEL, SEQUENCE_ORDER, SEQUENCE_LAYERS, sequence_set, (20, 4))):
            tmp = os.path.join(top, kind)
            os.mkdir(tmp)
            rng = np.random.default_rng(14)
            test = None
            for part, n in (("train", 256), ("test", 48)):
                data, labels = make(rng, n)
                write_idx(os.path.join(tmp, f"{part}-images.idx"), data)
                write_idx(os.path.join(tmp, f"{part}-labels.idx"), labels)
                test = data
            model = os.path.join(tmp, "model.yaml")
            with open(model, "w") as f:
                f.write(text)
            weights = os.path.join(tmp, "w.stw")
            run([STRATA, "train", model, "--epochs", "1", "--save", weights] + device)
            _, w = read_stw(weights)
            n = test.shape[0]

            def act(layer):
                out = os.path.join(tmp, layer + ".npy")
                run([STRATA, "embed", model, os.path.join(tmp, "test-images.idx"), "--weights", weights, "--layer",
                     layer, "-o", out] + device)
                return np.load(out).astype(np.float32)

            x = (test.astype(np.float32) * np.float32(0.00392156862745098)).reshape((n,) + sample)
            for layer in order:
                kernel = w[f"{layer}/kernel"]
                bias = w.get(f"{layer}/bias")
                got = act(layer)
                if kind == "images":
                    want = torch_conv2d(x, kernel, bias, specs[layer])
                else:
                    want = torch_conv1d(x, kernel, bias, specs[layer])
                diff = float(np.abs(want.reshape(n, -1) - got).max()) if want.size == got.size else float("inf")
                ok = diff <= TOLERANCE and float(np.abs(got).max()) > 0.0
                print(f"{layer} ({kind}, kernel {tuple(kernel.shape)}): max |strata - torch| = {diff:.3g} over "
                      f"{got.size} values (largest |value| {float(np.abs(got).max()):.3g}){'' if ok else '  <- FAIL'}")
                fails += not ok
                # The next layer reads Strata's output, so each layer is compared on its own.
                x = got.reshape(want.shape)
    print("passed" if fails == 0 else f"{fails} check(s) failed")
    return 0 if fails == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
