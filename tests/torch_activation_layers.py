#!/usr/bin/python3
"""The activation layers with parameters against PyTorch (issue 14, point 4).

A small CNN holding every type of plugins/activations is trained one epoch by Strata on a
synthetic IDX data set, so PReLU's slopes are non-trivial; `strata embed` then gives each layer's
input and output on test images, and PyTorch's layer, with Strata's weights where it has any,
must give the same output (largest absolute difference 1e-4, float32 on both sides):
  - prelu with shared_axes [1, 2] (one slope per channel): torch.nn.PReLU(channels) on NCHW, the
    activations converted from Strata's NHWC;
  - prelu without shared axes (a slope per element): torch.nn.PReLU over the flattened sample,
    the full alpha tensor (H, W, C) flattened in the same row-major order as its parameters; its
    alpha_constraint (max_norm 0.05 over the whole tensor) holds after training;
  - prelu with shared_axes 1 on a vector: torch.nn.PReLU(1);
  - leaky_relu (Keras 3's default slope, 0.3): torch.nn.LeakyReLU(0.3);
  - elu with alpha 0.7: torch.nn.ELU(0.7);
  - relu with max_value, negative_slope and threshold: keras.activations.relu's composition,
    torch.nn.Threshold, then clamp, then the negative slope's torch.relu term;
  - softmax: torch.nn.Softmax over the last axis.
Exit 0 pass, 1 fail.
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

MODEL = """\
name: activations_torch
input: {shape: [8, 8, 1]}
layers:
  - {type: conv2d, filters: 4, kernel_size: 3, name: conv}
  - {type: prelu, shared_axes: [1, 2], name: prelu_channels}
  - {type: conv2d, filters: 4, kernel_size: 3, name: conv2}
  - {type: prelu, alpha_constraint: {max_norm: {max_value: 0.05, axis: [0, 1, 2]}}, name: prelu_all}
  - {type: leaky_relu, name: leaky}
  - {type: elu, alpha: 0.7, name: elu}
  - {type: relu, max_value: 1.5, negative_slope: 0.1, threshold: 0.2, name: relu}
  - {type: flatten, name: flat}
  - {type: dense, units: 12, name: fc}
  - {type: prelu, shared_axes: 1, name: prelu_one}
  - {type: dense, units: 3, name: logits}
  - {type: softmax, name: probs}
loss: categorical_crossentropy
optimizer: {type: adam, learning_rate: 0.01}
data:
  train_images: train-images.idx
  train_labels: train-labels.idx
  test_images: test-images.idx
  test_labels: test-labels.idx
  scale: 0.00392156862745098
  num_classes: 3
training: {batch_size: 32, epochs: 1, seed: 6}
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


def keras_relu(x, max_value, negative_slope, threshold):
    """keras.activations.relu: x where x > threshold else 0, clipped at max_value, minus
    negative_slope * relu(threshold - x)."""
    y = nn.Threshold(threshold, 0.0)(x)
    y = torch.clamp(y, 0.0, max_value)
    return y - negative_slope * torch.relu(threshold - x)


def main():
    torch.set_grad_enabled(False)
    device = ["--device", os.environ["STRATA_TEST_DEVICE"]] if os.environ.get("STRATA_TEST_DEVICE") else []
    with tempfile.TemporaryDirectory() as tmp:
        rng = np.random.default_rng(15)
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
        # PReLU's slopes start at zeros: one epoch must have moved them, or the comparison of a
        # ReLU with a ReLU proves little about the slopes.
        for layer, shape in (("prelu_channels", (1, 1, 4)), ("prelu_all", (4, 4, 4)), ("prelu_one", (1,))):
            a = w[f"{layer}/alpha"]
            moved = float(np.abs(a).max())
            ok = a.shape == shape and moved > 1e-3
            print(f"{layer}/alpha: shape {a.shape}, moved {moved:.3g} from zeros{'' if ok else '  <- FAIL'}")
            fails += not ok
        # prelu_all's slopes are held to a norm of 0.05 over all three axes (Keras' MaxNorm): the
        # bound binds, since unconstrained they move further (prelu_channels' do).
        norm = float(np.sqrt((w["prelu_all/alpha"].astype(np.float64) ** 2).sum()))
        ok = 0.045 < norm <= 0.05 + 1e-6
        print(f"prelu_all/alpha: norm {norm:.6g} under max_norm 0.05{'' if ok else '  <- FAIL'}")
        fails += not ok

        def compare(layer, x, want, got):
            """want: torch's output on x, the layer's input; got: Strata's output."""
            nonlocal fails
            diff = float(np.abs(want - got).max())
            ok = diff <= TOLERANCE and want.shape == got.shape
            negative = float((x.numpy() < 0).mean())
            print(f"{layer}: max |strata - torch| = {diff:.3g} over {got.size} values "
                  f"({negative:.0%} of the inputs negative){'' if ok else '  <- FAIL'}")
            fails += not ok

        n = 64
        # shared_axes [1, 2]: one slope per channel, torch's PReLU(C) along NCHW's dim 1.
        conv = torch.from_numpy(act("conv")).reshape(n, 6, 6, 4)
        prelu = nn.PReLU(4)
        prelu.weight.copy_(torch.from_numpy(w["prelu_channels/alpha"].reshape(4)))
        want = prelu(conv.permute(0, 3, 1, 2)).permute(0, 2, 3, 1).reshape(n, -1).numpy()
        compare("prelu_channels (PReLU(4), NCHW)", conv, want, act("prelu_channels"))

        # no shared axes: the full (4, 4, 4) alpha, a parameter per element of the flattened sample.
        conv2 = torch.from_numpy(act("conv2")).reshape(n, 64)
        prelu = nn.PReLU(64)
        prelu.weight.copy_(torch.from_numpy(w["prelu_all/alpha"].reshape(64)))
        compare("prelu_all (PReLU(64) on the flattened sample)", conv2, prelu(conv2).numpy(), act("prelu_all"))

        x = torch.from_numpy(act("prelu_all"))
        compare("leaky (LeakyReLU(0.3))", x, nn.LeakyReLU(0.3)(x).numpy(), act("leaky"))
        x = torch.from_numpy(act("leaky"))
        compare("elu (ELU(0.7))", x, nn.ELU(0.7)(x).numpy(), act("elu"))
        x = torch.from_numpy(act("elu"))
        compare("relu (Threshold, clamp, slope)", x, keras_relu(x, 1.5, 0.1, 0.2).numpy(), act("relu"))

        fc = torch.from_numpy(act("fc"))
        prelu = nn.PReLU(1)
        prelu.weight.copy_(torch.from_numpy(w["prelu_one/alpha"].reshape(1)))
        compare("prelu_one (PReLU(1))", fc, prelu(fc).numpy(), act("prelu_one"))

        logits = torch.from_numpy(act("logits"))
        compare("probs (Softmax(-1))", logits, nn.Softmax(dim=-1)(logits).numpy(), act("probs"))
    print("passed" if fails == 0 else f"{fails} check(s) failed")
    return 0 if fails == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
