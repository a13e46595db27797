#!/usr/bin/python3
"""DepthwiseConv2D, SeparableConv2D and Conv2DTranspose against PyTorch (issue 14, point 3).

A small model made of the three layer types (every padding, strides 1 and 2, depth multipliers 1
to 4, a dilation, an output_padding, with and without bias, several fused activations) is trained
one epoch by Strata on a synthetic IDX data set, so every weight is non-trivial; `strata embed`
then gives each layer's input and output on test images, and the same layer in PyTorch, loading
Strata's weights, must give the same output (max |difference| <= 1e-4, float32 on both sides, and
<= 1e-4 of the layer's largest |value|):
  - depthwise_conv2d: torch.nn.functional.conv2d with groups = C; Keras' depthwise_kernel
    (KH, KW, C, DM) becomes PyTorch's (C*DM, 1, KH, KW) (output channel c*DM + m on both sides);
  - separable_conv2d: that depthwise convolution without bias, then a 1x1 conv2d with the
    pointwise_kernel (1, 1, C*DM, F) as (F, C*DM, 1, 1), then the bias;
  - conv2d_transpose: torch.nn.functional.conv_transpose2d with no padding (the full output,
    (H - 1)*S + DH*(KH - 1) + 1 rows), Keras' kernel (KH, KW, F, C) as PyTorch's (C, F, KH, KW),
    then the crop TensorFlow applies: output row oy is full row oy + PT, PT being the padding
    before of the convolution from the output back to the input (TensorFlow's 'same': the odd
    pixel after), zero past the full output (valid padding with a kernel smaller than the stride).
Activations are converted from Strata's NHWC rows to NCHW and back explicitly. TensorFlow's
'same' padding of the depthwise convolutions is applied with an explicit F.pad (the odd pixel at
the bottom/right), which PyTorch's symmetric padding cannot express. Exit 0 pass, 1 fail.
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
from pytorch_reference import read_stw, write_idx, activate, same_pads  # noqa: E402

STRATA = os.environ.get("STRATA_EXE", "build/src/strata")
TOLERANCE = 1e-4

# name: (type, parameters as the model file gives them, input shape (H, W, C), output shape)
LAYERS = [
    ("dw1", "depthwise_conv2d", dict(kernel_size=[3, 3], depth_multiplier=4, padding="same", activation="relu")),
    ("dw2", "depthwise_conv2d", dict(kernel_size=[3, 2], strides=[2, 2], depth_multiplier=2, activation="tanh")),
    ("sep1", "separable_conv2d", dict(filters=6, kernel_size=[3, 3], padding="same", depth_multiplier=2,
                                      activation="relu", depthwise_initializer="he_uniform")),
    ("ct1", "conv2d_transpose", dict(filters=5, kernel_size=[3, 3], strides=[2, 2], padding="same",
                                     kernel_initializer="he_uniform")),
    ("ct2", "conv2d_transpose", dict(filters=3, kernel_size=[2, 2], strides=[2, 2], activation="gelu",
                                     kernel_initializer="he_uniform")),
    ("dw3", "depthwise_conv2d", dict(kernel_size=[3, 3], strides=[2, 2], dilation_rate=[2, 2], padding="same",
                                     use_bias=False, depthwise_initializer="he_uniform")),
    ("sep2", "separable_conv2d", dict(filters=4, kernel_size=[2, 3], strides=[2, 1], padding="same",
                                      activation="swish", depthwise_initializer="he_uniform",
                                      pointwise_initializer="he_uniform")),
    ("ct3", "conv2d_transpose", dict(filters=3, kernel_size=[4, 3], strides=[2, 3], padding="same",
                                     output_padding=[1, 2], activation="sigmoid")),
    ("ct4", "conv2d_transpose", dict(filters=2, kernel_size=[1, 2], strides=[3, 3], dilation_rate=[1, 2],
                                     use_bias=False)),
    ("dw4", "depthwise_conv2d", dict(kernel_size=[2, 2], padding="same", depth_multiplier=1)),
]


def yaml_value(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, list):
        return "[" + ", ".join(str(x) for x in v) + "]"
    return str(v)


def model_text():
    lines = ["name: conv_torch", "input: {shape: [9, 9, 1]}", "layers:"]
    for name, kind, params in LAYERS:
        p = ", ".join(f"{k}: {yaml_value(v)}" for k, v in params.items())
        lines.append(f"  - {{type: {kind}, {p}, name: {name}}}")
    lines += [
        "  - {type: flatten, name: flat}",
        "  - {type: dense, units: 3, activation: softmax, name: out}",
        "loss: categorical_crossentropy",
        "optimizer: adam",
        "data:",
        "  train_images: train-images.idx",
        "  train_labels: train-labels.idx",
        "  test_images: test-images.idx",
        "  test_labels: test-labels.idx",
        "  scale: 0.02",
        "  num_classes: 3",
        "training: {batch_size: 32, epochs: 1, seed: 4}",
    ]
    return "\n".join(lines) + "\n"


def data_set(rng, n):
    """9x9 images of three classes (a bright row, column or diagonal) with noise."""
    labels = rng.integers(0, 3, n).astype(np.uint8)
    images = rng.integers(0, 90, (n, 9, 9)).astype(np.int32)
    for i, c in enumerate(labels):
        k = rng.integers(1, 8)
        if c == 0:
            images[i, k, :] += 150
        elif c == 1:
            images[i, :, k] += 150
        else:
            images[i, np.arange(9), np.arange(9)] += 150
    return np.clip(images, 0, 255).astype(np.uint8), labels


def run(cmd):
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        sys.stderr.write(r.stdout + r.stderr)
        raise SystemExit(f"FAIL: {' '.join(cmd)} exited with {r.returncode}")
    return r.stdout


def pair(params, key, default):
    v = params.get(key, default)
    return tuple(v) if isinstance(v, list) else (v, v)


def depthwise(x, kernel, params):
    """x NCHW; kernel Keras' (KH, KW, C, DM). Returns NCHW, without bias."""
    kh, kw, c, dm = kernel.shape
    weight = torch.from_numpy(kernel).permute(2, 3, 0, 1).reshape(c * dm, 1, kh, kw)
    (sh, sw), (dh, dw) = pair(params, "strides", 1), pair(params, "dilation_rate", 1)
    if params.get("padding", "valid") == "same":
        top, bottom = same_pads(x.shape[2], dh * (kh - 1) + 1, sh)
        left, right = same_pads(x.shape[3], dw * (kw - 1) + 1, sw)
        x = F.pad(x, (left, right, top, bottom))
    return F.conv2d(x, weight, stride=(sh, sw), dilation=(dh, dw), groups=c)


def transpose_output(size, k, s, d, same, out_pad):
    """Keras' output size and TensorFlow's padding before of the convolution it is the adjoint of."""
    e = d * (k - 1) + 1
    if out_pad is None:
        out = size * s if same else size * s + max(e - s, 0)
    else:
        out = (size - 1) * s + e - 2 * (e // 2 if same else 0) + out_pad
    before = same_pads(out, e, s)[0] if same else 0
    return out, before


def conv_transpose(x, kernel, params):
    """x NCHW; kernel Keras' (KH, KW, F, C). Returns NCHW, without bias: the full transposed
    convolution, then TensorFlow's crop."""
    kh, kw, f, c = kernel.shape
    weight = torch.from_numpy(kernel).permute(3, 2, 0, 1).contiguous()
    (sh, sw), (dh, dw) = pair(params, "strides", 1), pair(params, "dilation_rate", 1)
    full = F.conv_transpose2d(x, weight, stride=(sh, sw), dilation=(dh, dw))
    same = params.get("padding", "valid") == "same"
    op = params.get("output_padding")
    oh, top = transpose_output(x.shape[2], kh, sh, dh, same, None if op is None else op[0])
    ow, left = transpose_output(x.shape[3], kw, sw, dw, same, None if op is None else op[1])
    full = F.pad(full, (0, max(left + ow - full.shape[3], 0), 0, max(top + oh - full.shape[2], 0)))
    return full[:, :, top:top + oh, left:left + ow]


def main():
    torch.set_grad_enabled(False)
    device = ["--device", os.environ["STRATA_TEST_DEVICE"]] if os.environ.get("STRATA_TEST_DEVICE") else []
    fails = 0
    with tempfile.TemporaryDirectory() as tmp:
        rng = np.random.default_rng(14)
        for part, n in (("train", 384), ("test", 48)):
            images, labels = data_set(rng, n)
            write_idx(os.path.join(tmp, f"{part}-images.idx"), images)
            write_idx(os.path.join(tmp, f"{part}-labels.idx"), labels)
        model = os.path.join(tmp, "model.yaml")
        with open(model, "w") as f:
            f.write(model_text())
        # The shapes as Strata computes them: summary's "(None, H, W, C)".
        shapes = {}
        for line in run([STRATA, "summary", model] + device).splitlines():
            parts = line.split()
            if parts and parts[0] in [n for n, _, _ in LAYERS]:
                dims = line[line.index("(None,") + 6:line.index(")", line.index("(None,"))]
                shapes[parts[0]] = tuple(int(v) for v in dims.split(","))
        weights = os.path.join(tmp, "w.stw")
        run([STRATA, "train", model, "--epochs", "1", "--save", weights] + device)
        _, w = read_stw(weights)
        test_images = os.path.join(tmp, "test-images.idx")

        def act(layer, shape):
            out = os.path.join(tmp, layer + ".npy")
            run([STRATA, "embed", model, test_images, "--weights", weights, "--layer", layer, "-o", out] + device)
            a = np.load(out).astype(np.float32)
            return torch.from_numpy(a.reshape((a.shape[0],) + shape)).permute(0, 3, 1, 2)  # NHWC -> NCHW

        # The model's input as Strata reads it: bytes times the scale (0.02: values up to 5, so that the
        # activations stay far from 0 through the layers), (N, 9, 9, 1).
        with open(test_images, "rb") as f:
            raw = np.frombuffer(f.read()[4 + 12:], dtype=np.uint8).reshape(-1, 9, 9, 1)
        x = torch.from_numpy(raw.astype(np.float32) * np.float32(0.02)).permute(0, 3, 1, 2)
        for name, kind, params in LAYERS:
            kmax = float(np.abs(w[f"{name}/{'kernel' if kind == 'conv2d_transpose' else 'depthwise_kernel'}"]).max())
            if kind == "depthwise_conv2d":
                z = depthwise(x, w[f"{name}/depthwise_kernel"], params)
            elif kind == "separable_conv2d":
                d = depthwise(x, w[f"{name}/depthwise_kernel"], params)
                pw = w[f"{name}/pointwise_kernel"]
                z = F.conv2d(d, torch.from_numpy(pw).permute(3, 2, 0, 1).contiguous())
            else:
                z = conv_transpose(x, w[f"{name}/kernel"], params)
            if params.get("use_bias", True):
                bias = w[f"{name}/bias"]
                z = z + torch.from_numpy(bias).reshape(1, -1, 1, 1)
                # the bias trained: it left its zero initial value
                if float(np.abs(bias).max()) < 1e-4:
                    print(f"{name}: the bias did not train (max |bias| {float(np.abs(bias).max()):.3g})  <- FAIL")
                    fails += 1
            want = activate(z, params.get("activation", "linear"))
            got = act(name, shapes[name])
            diff = float((want - got).abs().max()) if want.shape == got.shape else float("inf")
            # Also relative to the layer's largest value, should the activations be small.
            ok = diff <= TOLERANCE and diff <= TOLERANCE * float(got.abs().max())
            print(f"{name} ({kind}): output {tuple(got.shape[2:]) + (got.shape[1],)}, max |strata - torch| = "
                  f"{diff:.3g} over {got.numel()} values (largest |value| {float(got.abs().max()):.3g}, "
                  f"largest |kernel| {kmax:.3g}){'' if ok else '  <- FAIL'}")
            if want.shape != got.shape:
                print(f"  shapes differ: torch {tuple(want.shape)}, strata {tuple(got.shape)}")
            fails += not ok
            x = got  # the next layer's input, as Strata computed it
    print("passed" if fails == 0 else f"{fails} check(s) failed")
    return 0 if fails == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
