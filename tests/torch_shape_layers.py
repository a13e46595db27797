#!/usr/bin/python3
"""The pooling and shape layers of issue 14 against PyTorch (issue 14, point 2).

A small graph model that holds every type (ZeroPadding2D, Cropping2D, UpSampling2D nearest and
bilinear, Permute, GlobalAveragePooling2D, GlobalMaxPooling2D with keepdims, Reshape, RepeatVector)
between two convolutions and a dense layer is trained one epoch by Strata on a synthetic IDX data
set, so the weights that feed the layers are non-trivial. `strata embed` then gives every layer's
activations on those images, and PyTorch computes the same network from Strata's weights (HWIO
kernels as OIHW, NHWC activations as NCHW where a torch op wants them, explicitly):
  - zero_padding2d    F.pad(x, (left, right, top, bottom))
  - cropping2d        slicing
  - up_sampling2d     F.interpolate(mode='nearest'), and mode='bilinear' with align_corners=False
                      (half-pixel centers: Keras 3's bilinear, TensorFlow's resize)
  - permute           Tensor.permute (Keras' 1-based dims, the batch kept first)
  - global pooling    F.adaptive_avg_pool2d(x, 1) and torch.amax over height and width
  - reshape           Tensor.reshape (channels-last order, as Keras)
  - repeat_vector     Tensor.repeat
Each layer is compared twice: along the whole chain from the image (PyTorch's own activations all
the way) and alone, the PyTorch op applied to Strata's activations of the layer's input. Largest
absolute difference allowed: 1e-4 (float32 on both sides; the data-moving layers agree exactly
alone). Exit 0 pass, 1 fail.
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
from pytorch_reference import read_stw, write_idx  # noqa: E402

STRATA = os.environ.get("STRATA_EXE", "build/src/strata")
TOLERANCE = 1e-4
H, W, SAMPLES, CLASSES = 12, 10, 192, 4

MODEL = """\
name: shape_torch
inputs: [{name: x, shape: [12, 10, 1]}]
layers:
  - {type: conv2d, filters: 4, kernel_size: 3, padding: same, activation: relu, name: c1, inputs: x}
  - {type: zero_padding2d, padding: [1, 2, 0, 3], name: pad, inputs: c1}
  - {type: cropping2d, cropping: [2, 1, 1, 2], name: crop, inputs: pad}
  - {type: up_sampling2d, size: [2, 3], name: upn, inputs: crop}
  - {type: up_sampling2d, size: [2, 3], interpolation: bilinear, name: upb, inputs: c1}
  - {type: conv2d, filters: 3, kernel_size: 3, strides: 2, activation: tanh, name: c2, inputs: upb}
  - {type: permute, dims: [2, 1, 3], name: perm, inputs: c2}
  - {type: global_average_pooling2d, name: gap, inputs: perm}
  - {type: global_max_pooling2d, keepdims: true, name: gmp, inputs: upn}
  - {type: reshape, target_shape: [2, 2, 1], name: rs, inputs: gmp}
  - {type: flatten, name: flat, inputs: rs}
  - {type: repeat_vector, n: 3, name: rep, inputs: gap}
  - {type: flatten, name: flat2, inputs: rep}
  - {type: concatenate, name: cat, inputs: [flat, flat2]}
  - {type: dense, units: 4, activation: softmax, name: out, inputs: cat}
outputs: [out]
loss: categorical_crossentropy
optimizer: adam
data:
  train_images: images.idx
  train_labels: labels.idx
  test_images: images.idx
  test_labels: labels.idx
  scale: 0.00392156862745098
  num_classes: 4
training: {batch_size: 32, epochs: 1, seed: 3}
"""

# Each compared layer: its input layer (None: the image) and its output shape, batch excluded.
LAYERS = {
    "c1": (None, (12, 10, 4)),
    "pad": ("c1", (15, 13, 4)),
    "crop": ("pad", (12, 10, 4)),
    "upn": ("crop", (24, 30, 4)),
    "upb": ("c1", (24, 30, 4)),
    "c2": ("upb", (11, 14, 3)),
    "perm": ("c2", (14, 11, 3)),
    "gap": ("perm", (3,)),
    "gmp": ("upn", (1, 1, 4)),
    "rs": ("gmp", (2, 2, 1)),
    "rep": ("gap", (3, 3)),
    "out": (None, (4,)),
}
# The layers computed alone from Strata's activations of their input.
ALONE = ["pad", "crop", "upn", "upb", "perm", "gap", "gmp", "rs", "rep"]


def nchw(x):
    return x.permute(0, 3, 1, 2)


def nhwc(x):
    return x.permute(0, 2, 3, 1)


def layer_op(name, x, w):
    """The PyTorch op of layer `name` on its NHWC input x, with Strata's weights w."""
    if name == "c1":
        k = torch.from_numpy(np.ascontiguousarray(w["c1/kernel"].transpose(3, 2, 0, 1)))
        return torch.relu(nhwc(F.conv2d(F.pad(nchw(x), (1, 1, 1, 1)), k, torch.from_numpy(w["c1/bias"]))))
    if name == "c2":
        k = torch.from_numpy(np.ascontiguousarray(w["c2/kernel"].transpose(3, 2, 0, 1)))
        return torch.tanh(nhwc(F.conv2d(nchw(x), k, torch.from_numpy(w["c2/bias"]), stride=2)))
    if name == "pad":  # [top, bottom, left, right] = [1, 2, 0, 3]
        return nhwc(F.pad(nchw(x), (0, 3, 1, 2)))
    if name == "crop":  # [2, 1, 1, 2]
        return x[:, 2 : x.shape[1] - 1, 1 : x.shape[2] - 2, :]
    if name == "upn":
        return nhwc(F.interpolate(nchw(x), scale_factor=(2, 3), mode="nearest"))
    if name == "upb":
        return nhwc(F.interpolate(nchw(x), scale_factor=(2, 3), mode="bilinear", align_corners=False))
    if name == "perm":  # Keras' dims (2, 1, 3): the batch stays axis 0
        return x.permute(0, 2, 1, 3)
    if name == "gap":
        return F.adaptive_avg_pool2d(nchw(x), 1).flatten(1)
    if name == "gmp":  # keepdims
        return torch.amax(x, dim=(1, 2), keepdim=True)
    if name == "rs":
        return x.reshape(x.shape[0], 2, 2, 1)
    if name == "rep":
        return x.unsqueeze(1).repeat(1, 3, 1)
    raise KeyError(name)


def network(x, w):
    """Every compared layer's activations, PyTorch's own all the way from the image."""
    a = {}
    a["c1"] = layer_op("c1", x, w)
    a["pad"] = layer_op("pad", a["c1"], w)
    a["crop"] = layer_op("crop", a["pad"], w)
    a["upn"] = layer_op("upn", a["crop"], w)
    a["upb"] = layer_op("upb", a["c1"], w)
    a["c2"] = layer_op("c2", a["upb"], w)
    a["perm"] = layer_op("perm", a["c2"], w)
    a["gap"] = layer_op("gap", a["perm"], w)
    a["gmp"] = layer_op("gmp", a["upn"], w)
    a["rs"] = layer_op("rs", a["gmp"], w)
    a["rep"] = layer_op("rep", a["gap"], w)
    cat = torch.cat([a["rs"].flatten(1), a["rep"].flatten(1)], dim=1)
    logits = cat @ torch.from_numpy(w["out/kernel"]) + torch.from_numpy(w["out/bias"])
    a["out"] = torch.softmax(logits, dim=1)
    return a


def run(*args):
    r = subprocess.run([STRATA, *args], capture_output=True, text=True, timeout=300)
    if r.returncode != 0:
        print(f"FAIL: strata {' '.join(args)} exited {r.returncode}:\n{r.stdout}{r.stderr}")
        sys.exit(1)
    return r.stdout


def main():
    rng = np.random.default_rng(14)
    with tempfile.TemporaryDirectory(prefix="strata-shape-torch-") as tmp:
        # Images of noise and a bright patch; the label is the quadrant that holds the patch.
        images = rng.integers(0, 96, size=(SAMPLES, H, W), dtype=np.uint8)
        labels = rng.integers(0, CLASSES, size=SAMPLES, dtype=np.uint8)
        for i, q in enumerate(labels):
            y0, x0 = (q // 2) * (H // 2), (q % 2) * (W // 2)
            images[i, y0 + 1 : y0 + 4, x0 + 1 : x0 + 4] = rng.integers(160, 256, size=(3, 3))
        write_idx(os.path.join(tmp, "images.idx"), images)
        write_idx(os.path.join(tmp, "labels.idx"), labels)
        model = os.path.join(tmp, "model.yaml")
        with open(model, "w") as f:
            f.write(MODEL)
        weights = os.path.join(tmp, "w.stw")
        run("train", model, "--epochs", "1", "--save", weights)
        _, w = read_stw(weights)
        for name in ("c1/kernel", "c1/bias", "c2/kernel", "c2/bias", "out/kernel", "out/bias"):
            if name not in w:
                print(f"FAIL: the weights file has no {name}")
                return 1
        # One epoch moved the biases off their zero initialization: the weights are trained ones.
        if not all(np.abs(w[b]).max() > 0 for b in ("c1/bias", "c2/bias", "out/bias")):
            print("FAIL: a bias is still all zero after training")
            return 1

        strata = {}
        for name, (_, shape) in LAYERS.items():
            out = os.path.join(tmp, name + ".npy")
            run("embed", model, os.path.join(tmp, "images.idx"), "--weights", weights, "--layer", name, "-o", out)
            a = np.load(out)
            if a.shape != (SAMPLES, int(np.prod(shape))):
                print(f"FAIL: {name}: strata embed gave {a.shape}, expected ({SAMPLES}, {int(np.prod(shape))})")
                return 1
            strata[name] = a.reshape((SAMPLES,) + shape)

        x = torch.from_numpy(images.astype(np.float32).reshape(SAMPLES, H, W, 1) * np.float32(1.0 / 255.0))
        failed = 0
        with torch.no_grad():
            chain = network(x, w)
            for name, (_, shape) in LAYERS.items():
                got = chain[name].numpy()
                if got.shape[1:] != shape:
                    print(f"FAIL: {name}: PyTorch's shape {got.shape[1:]}, Keras' {shape}")
                    failed += 1
                    continue
                diff = float(np.abs(got - strata[name]).max())
                ok = diff <= TOLERANCE
                failed += not ok
                print(f"{name:5s} chain  max |strata - torch| = {diff:.3g}{'' if ok else '  FAIL'}")
            for name in ALONE:
                src = LAYERS[name][0]
                got = layer_op(name, torch.from_numpy(strata[src]), w).numpy()
                diff = float(np.abs(got - strata[name]).max())
                ok = diff <= TOLERANCE
                failed += not ok
                print(f"{name:5s} alone  max |strata - torch| = {diff:.3g}{'' if ok else '  FAIL'}")
        # The bilinear layer did interpolate: its output is not the nearest one's.
        near = layer_op("upn", torch.from_numpy(strata["c1"]), w).numpy()
        if np.abs(near - strata["upb"]).max() < 1e-3:
            print("FAIL: the bilinear upsampling equals the nearest one")
            failed += 1
    if failed:
        print(f"FAIL: {failed} comparisons above {TOLERANCE}")
        return 1
    print(f"passed: every layer within {TOLERANCE} of PyTorch")
    return 0


if __name__ == "__main__":
    sys.exit(main())
