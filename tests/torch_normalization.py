#!/usr/bin/python3
"""BatchNormalization and LayerNormalization against PyTorch (issue 14, point 1).

A small CNN with both layers after a convolution (rank-3, per-pixel channels) and after a dense
layer (rank 1) is trained one epoch by Strata on a synthetic IDX data set, so gamma, beta and the
moving statistics are non-trivial; `strata embed` then gives each layer's input and output on test
images, and the same layers in PyTorch, loading Strata's weights, must give the same outputs:
  - batch_normalization (inference: the moving statistics) against torch.nn.BatchNorm2d (NCHW, the
    activations converted from Strata's NHWC) and torch.nn.BatchNorm1d, in eval mode with
    running_mean / running_var loaded from moving_mean / moving_variance, eps = 1e-3;
  - layer_normalization against torch.nn.LayerNorm over the last axis, eps = 1e-3.
PyTorch's running_var follows the unbiased batch variance while Keras' (and Strata's) moving
variance follows the biased one, so only inference outputs with the loaded statistics are
compared; the update rule itself is checked against a host computation in test_normalization.c.
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
EPS = 1e-3

MODEL = """\
name: norm_torch
input: {shape: [8, 8, 1]}
layers:
  - {type: conv2d, filters: 6, kernel_size: 3, name: conv}
  - {type: batch_normalization, momentum: 0.8, name: bn2d}
  - {type: activation, activation: relu, name: relu}
  - {type: layer_normalization, beta_initializer: glorot_uniform, name: ln2d}
  - {type: flatten, name: flat}
  - {type: dense, units: 20, name: fc}
  - {type: batch_normalization, momentum: 0.9, name: bn1d}
  - {type: layer_normalization, name: ln1d}
  - {type: dense, units: 3, activation: softmax, name: out}
loss: categorical_crossentropy
optimizer: adam
data:
  train_images: train-images.idx
  train_labels: train-labels.idx
  test_images: test-images.idx
  test_labels: test-labels.idx
  scale: 0.00392156862745098
  num_classes: 3
training: {batch_size: 32, epochs: 1, seed: 4}
"""


def data_set(rng, n):
    """8x8 images of three classes (a bright row, column or diagonal) with noise and offsets."""
    labels = rng.integers(0, 3, n).astype(np.uint8)
    images = rng.integers(0, 90, (n, 8, 8)).astype(np.int32)
    for i, c in enumerate(labels):
        k = rng.integers(1, 7)
        if c == 0:
            images[i, k, :] += 150
        elif c == 1:
            images[i, :, k] += 150
        else:
            images[i, np.arange(8), np.arange(8)] += 150
        images[i] += rng.integers(0, 15)
    return np.clip(images, 0, 255).astype(np.uint8), labels


def run(cmd):
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        sys.stderr.write(r.stdout + r.stderr)
        raise SystemExit(f"FAIL: {' '.join(cmd)} exited with {r.returncode}")
    return r.stdout


def main():
    torch.set_grad_enabled(False)
    device = ["--device", os.environ["STRATA_TEST_DEVICE"]] if os.environ.get("STRATA_TEST_DEVICE") else []
    with tempfile.TemporaryDirectory() as tmp:
        rng = np.random.default_rng(14)
        for part, n in (("train", 320), ("test", 64)):
            images, labels = data_set(rng, n)
            write_idx(os.path.join(tmp, f"{part}-images.idx"), images)
            write_idx(os.path.join(tmp, f"{part}-labels.idx"), labels)
        model = os.path.join(tmp, "model.yaml")
        with open(model, "w") as f:
            f.write(MODEL)
        weights = os.path.join(tmp, "w.stw")
        run([STRATA, "train", model, "--epochs", "1", "--save", weights] + device)
        _, w = read_stw(weights)

        def act(layer):
            out = os.path.join(tmp, layer + ".npy")
            run([STRATA, "embed", model, os.path.join(tmp, "test-images.idx"), "--weights", weights, "--layer", layer,
                 "-o", out] + device)
            return np.load(out).astype(np.float32)

        fails = 0

        def moved(name, init):
            """The trained tensor differs from its initial value: the comparison means something."""
            nonlocal fails
            d = float(np.abs(w[name] - init).max())
            ok = d > 1e-3
            print(f"{name}: moved {d:.3g} from its initial value{'' if ok else '  <- did not train'}")
            fails += not ok

        for layer in ("bn2d", "bn1d"):
            moved(f"{layer}/gamma", 1.0)
            moved(f"{layer}/beta", 0.0)
            moved(f"{layer}/moving_mean", 0.0)
            moved(f"{layer}/moving_variance", 1.0)
        # ln2d's beta feeds a dense layer and then bn1d, whose batch mean absorbs any constant
        # shift, so its gradient is 0 while training: it starts from glorot_uniform instead.
        for layer in ("ln2d", "ln1d"):
            moved(f"{layer}/gamma", 1.0)
            moved(f"{layer}/beta", 0.0)

        def compare(layer, want, got):
            nonlocal fails
            diff = float(np.abs(want - got).max())
            ok = diff <= TOLERANCE and want.shape == got.shape
            print(f"{layer}: max |strata - torch| = {diff:.3g} over {got.size} values "
                  f"(largest |value| {float(np.abs(got).max()):.3g}){'' if ok else '  <- FAIL'}")
            fails += not ok

        def load_bn(bn, name):
            bn.weight.copy_(torch.from_numpy(w[f"{name}/gamma"]))
            bn.bias.copy_(torch.from_numpy(w[f"{name}/beta"]))
            bn.running_mean.copy_(torch.from_numpy(w[f"{name}/moving_mean"]))
            bn.running_var.copy_(torch.from_numpy(w[f"{name}/moving_variance"]))
            return bn.eval()

        def load_ln(ln, name):
            ln.weight.copy_(torch.from_numpy(w[f"{name}/gamma"]))
            ln.bias.copy_(torch.from_numpy(w[f"{name}/beta"]))
            return ln.eval()

        n = 64
        # BatchNorm2d: Strata's NHWC rows (6 x 6 x 6 per sample) to NCHW and back.
        conv = torch.from_numpy(act("conv")).reshape(n, 6, 6, 6)
        bn2d = load_bn(nn.BatchNorm2d(6, eps=EPS), "bn2d")
        want = bn2d(conv.permute(0, 3, 1, 2)).permute(0, 2, 3, 1).reshape(n, -1).numpy()
        compare("bn2d (BatchNorm2d)", want, act("bn2d"))
        # LayerNorm over each pixel's 6 channels: the last axis in NHWC.
        relu = torch.from_numpy(act("relu")).reshape(n, 6, 6, 6)
        ln2d = load_ln(nn.LayerNorm(6, eps=EPS), "ln2d")
        compare("ln2d (LayerNorm, per pixel)", ln2d(relu).reshape(n, -1).numpy(), act("ln2d"))
        # BatchNorm1d and LayerNorm on dense features.
        fc = torch.from_numpy(act("fc"))
        bn1d = load_bn(nn.BatchNorm1d(20, eps=EPS), "bn1d")
        compare("bn1d (BatchNorm1d)", bn1d(fc).numpy(), act("bn1d"))
        ln1d = load_ln(nn.LayerNorm(20, eps=EPS), "ln1d")
        compare("ln1d (LayerNorm)", ln1d(torch.from_numpy(act("bn1d"))).numpy(), act("ln1d"))
    print("passed" if fails == 0 else f"{fails} check(s) failed")
    return 0 if fails == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
