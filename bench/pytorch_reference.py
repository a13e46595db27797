#!/usr/bin/python3
"""Forward agreement with PyTorch (issue 12, point 7).

What it checks: that Strata's forward pass computes what the same network computes in PyTorch
with the same weights. The script reads the model YAML and builds the network in PyTorch as a
small graph interpreter (sequential models and graph models with `inputs:`, per-layer `inputs:`,
merge layers and `outputs:`), with Keras' semantics: channels-last tensors, HWIO conv kernels and
(in, out) dense kernels converted to PyTorch's OIHW and (out, in), Flatten in NHWC order,
TensorFlow's 'same' padding (the odd pixel of padding at the bottom/right), average pooling that
counts only the positions inside the input, Keras' default layer names (conv2d_1, dense_1, ...
counted per prefix over the unnamed layers, as `strata summary` prints them). It loads the
weights from Strata's .stw file (format: src/exec/checkpoint.h; the CRC-32 is verified and a bad
file refused; optimizer state is skipped), runs `strata embed` on the first N test images of
the model's data to get each output layer's activations in full float32 (.npy), runs PyTorch
in float32 on the same images (same scale, same per-pixel standardization from the training
set when the model has `data: standardize: true`), and prints the largest and the mean
absolute difference per output.

usage: /usr/bin/python3 bench/pytorch_reference.py MODEL.yaml WEIGHTS.stw
           [--strata build/src/strata] [--images N (1000)] [--tolerance 1e-4]
           [--device SEL (Strata's)] [--layer NAME ... | --all-layers] [--whole-test-set]
           [--params-only] [--keep DIR]
  e.g. build/src/strata train models/mnist_cnn.yaml --epochs 1 --limit 2048 --save /tmp/x/cnn.stw
       /usr/bin/python3 bench/pytorch_reference.py models/mnist_cnn.yaml /tmp/x/cnn.stw
  The model's outputs are compared; --layer NAME (repeatable) or --all-layers compares those
  layers' activations instead, which localizes a disagreement. --params-only (WEIGHTS.stw may then
  be left out) builds the model and prints its per-layer parameter counts, PyTorch's against
  Keras' formula, and runs nothing (e.g. models/mnist_resnet.yaml; exit 1 if they
  differ). By default the first N test images (after keep_labels) are written to a temporary IDX
  file and Strata embeds that file; --whole-test-set has Strata embed the whole test set and takes
  its first N rows instead, checking its labels against the IDX order (slower, and with
  --all-layers it writes CSVs of gigabytes: embed always writes its CSV beside the .npy).
Needs Debian's python3-torch, python3-numpy and python3-yaml.

Exit status: 0 when every output's largest absolute difference is within --tolerance, 1 when
one exceeds it (or Strata fails), 2 for bad usage or a bad model or weights file.

Tolerance: 1e-4 absolute by default. Both sides compute in float32 from the same float32
weights and inputs; they differ only in the order of the summations (Strata's GEMM tiling,
im2col order and reductions against PyTorch's oneDNN/BLAS kernels), which moves a sum of k
products by a few ulps times sqrt(k) or so: for the MNIST models (sums of up to 9216 terms,
activations of order 1-10) that is around 1e-6 to 1e-5, and softmax outputs in [0, 1] differ
less. A wrong layout (an untransposed kernel, a flatten in NCHW order, padding on the wrong
side) gives differences of order 0.1-1, so 1e-4 separates the two cleanly. Measured on PoCL
(CPU) with weights after one short epoch: mnist_cnn 7.7e-7 on the softmax output (1.1e-5 at
dense_1, whose pre-softmax values reach 3.5), mnist_mlp 4.8e-7, mnist_linear (standardized)
1.9e-6; a kernel left in HWIO order, a dense kernel left (in, out), a flatten in NCHW order gave
0.65-0.95, symmetric instead of TensorFlow's 'same' padding 1e-2.
"""
import argparse
import math
import os
import platform
import struct
import subprocess
import sys
import tempfile
import zlib

import numpy as np
import torch
import torch.nn.functional as F
import yaml
from torch import nn

import idx  # bench/idx.py


class Refused(Exception):
    """A bad model or weights file, or bad usage: exit status 2."""


# ----------------------------------------------------------------------------------------------
# Strata's weights file (.stw), format version 1 (src/exec/checkpoint.h)

STW_MAGIC = b"STRATAW\0"
KIND_WEIGHT, KIND_OPTIMIZER = 0, 1


def read_stw(path):
    """Returns (header dict, {name: float32 ndarray}) for the tensors of kind 'weight'."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        raise Refused(f"{path}: cannot read the weights file: {e.strerror}")
    if len(data) < len(STW_MAGIC) + 4 or data[: len(STW_MAGIC)] != STW_MAGIC:
        raise Refused(f"{path}: not a Strata weights file (no STRATAW magic)")
    stored = struct.unpack_from("<I", data, len(data) - 4)[0]
    computed = zlib.crc32(data[:-4]) & 0xFFFFFFFF
    if stored != computed:
        raise Refused(f"{path}: bad checksum (stored CRC-32 {stored:08x}, computed {computed:08x}): "
                      f"the file is damaged or truncated")
    body = memoryview(data)[:-4]
    pos = len(STW_MAGIC)

    def take(fmt):
        nonlocal pos
        size = struct.calcsize(fmt)
        if pos + size > len(body):
            raise Refused(f"{path}: truncated at byte {pos} (wanted {size} more bytes)")
        v = struct.unpack_from(fmt, body, pos)
        pos += size
        return v

    def take_str(what):
        nonlocal pos
        (n,) = take("<I")
        if pos + n > len(body):
            raise Refused(f"{path}: {what} of {n} bytes runs past the end of the file")
        s = bytes(body[pos : pos + n]).decode("utf-8", "replace")
        pos += n
        return s

    version, flags = take("<II")
    if version != 1:
        raise Refused(f"{path}: format version {version}; this script reads version 1")
    epoch, step, seed = take("<QQQ")
    model = take_str("the model name")
    optimizer = take_str("the optimizer name")
    (iterations,) = take("<Q")
    (count,) = take("<I")
    weights = {}
    for i in range(count):
        name = take_str(f"tensor {i}'s name")
        kind, rank = take("<II")
        if rank > 8:
            raise Refused(f"{path}: tensor {name} has rank {rank}")
        dims = take(f"<{rank}Q") if rank else ()
        n = math.prod(dims)
        if pos + 4 * n > len(body):
            raise Refused(f"{path}: tensor {name} {list(dims)} runs past the end of the file")
        values = np.frombuffer(body, dtype="<f4", count=n, offset=pos).astype(np.float32).reshape(dims)
        pos += 4 * n
        if kind == KIND_WEIGHT:
            if name in weights:
                raise Refused(f"{path}: tensor {name} appears twice")
            weights[name] = values
        elif kind != KIND_OPTIMIZER:
            raise Refused(f"{path}: tensor {name} has unknown kind {kind}")
    if pos != len(body):
        raise Refused(f"{path}: {len(body) - pos} bytes after the last tensor")
    header = dict(version=version, flags=flags, epoch=epoch, step=step, seed=seed, model=model,
                  optimizer=optimizer, iterations=iterations, tensors=count)
    return header, weights


# ----------------------------------------------------------------------------------------------
# IDX files


def read_idx(path):
    """An unsigned-byte IDX file (bench/idx.py), refused with its reason otherwise."""
    try:
        array = idx.read_idx(path)
    except OSError as e:
        raise Refused(f"{path}: cannot read: {e.strerror}")
    except ValueError as e:
        raise Refused(str(e))
    if array.dtype != np.uint8:
        raise Refused(f"{path}: not an unsigned-byte IDX file")
    return array


def write_idx(path, array):
    array = np.ascontiguousarray(array, dtype=np.uint8)
    with open(path, "wb") as f:
        f.write(struct.pack(">HBB", 0, 0x08, array.ndim))
        f.write(struct.pack(">" + "I" * array.ndim, *array.shape))
        f.write(array.tobytes())


# ----------------------------------------------------------------------------------------------
# The model: a graph interpreter over the YAML, channels-last (NHWC) throughout like Keras

PREFIX = {
    "conv2d": "conv2d", "dense": "dense", "maxpool2d": "max_pooling2d",
    "averagepool2d": "average_pooling2d", "dropout": "dropout", "flatten": "flatten",
    "activation": "activation",
    "add": "add", "subtract": "subtract", "multiply": "multiply", "average": "average",
    "maximum": "maximum", "minimum": "minimum", "concatenate": "concatenate",
    # issue 14
    "batch_normalization": "batch_normalization", "layer_normalization": "layer_normalization",
    "depthwise_conv2d": "depthwise_conv2d", "separable_conv2d": "separable_conv2d",
    "global_average_pooling2d": "global_average_pooling2d", "global_max_pooling2d": "global_max_pooling2d",
    "zero_padding2d": "zero_padding2d",
    "random_translation": "random_translation", "random_rotation": "random_rotation", "random_zoom": "random_zoom",
    "random_flip": "random_flip", "random_contrast": "random_contrast", "gaussian_noise": "gaussian_noise",
    "gaussian_dropout": "gaussian_dropout", "spatial_dropout2d": "spatial_dropout2d",
}
# Layers that act only while training: the identity here (inference).
TRAINING_ONLY = {"dropout", "random_translation", "random_rotation", "random_zoom", "random_flip",
                 "random_contrast", "gaussian_noise", "gaussian_dropout", "spatial_dropout2d"}
MERGES = {"add", "subtract", "multiply", "average", "maximum", "minimum", "concatenate"}
KERAS_CLASS = {
    "conv2d": "Conv2D", "dense": "Dense", "maxpool2d": "MaxPooling2D",
    "averagepool2d": "AveragePooling2D", "dropout": "Dropout", "flatten": "Flatten",
    "activation": "Activation", "add": "Add", "subtract": "Subtract", "multiply": "Multiply",
    "average": "Average", "maximum": "Maximum", "minimum": "Minimum", "concatenate": "Concatenate",
    "batch_normalization": "BatchNormalization", "layer_normalization": "LayerNormalization",
    "depthwise_conv2d": "DepthwiseConv2D", "separable_conv2d": "SeparableConv2D",
    "global_average_pooling2d": "GlobalAveragePooling2D", "global_max_pooling2d": "GlobalMaxPooling2D",
    "zero_padding2d": "ZeroPadding2D", "random_translation": "RandomTranslation",
    "random_rotation": "RandomRotation", "random_zoom": "RandomZoom", "random_flip": "RandomFlip",
    "random_contrast": "RandomContrast", "gaussian_noise": "GaussianNoise", "gaussian_dropout": "GaussianDropout",
    "spatial_dropout2d": "SpatialDropout2D",
}
# Keras 3's activations (keras.activations), each as PyTorch computes it.
ACTIVATION_FNS = {
    "relu": torch.relu, "sigmoid": torch.sigmoid, "tanh": torch.tanh,
    "softmax": lambda x: torch.softmax(x, dim=-1),  # Keras: along the last axis (channels)
    "elu": F.elu, "selu": F.selu, "gelu": F.gelu, "swish": F.silu, "silu": F.silu, "softplus": F.softplus,
    "softsign": F.softsign, "hard_sigmoid": F.hardsigmoid, "exponential": torch.exp, "relu6": F.relu6,
    "leaky_relu": lambda x: F.leaky_relu(x, 0.2), "hard_silu": F.hardswish, "hard_swish": F.hardswish,
    "mish": F.mish,
}
ACTIVATIONS = ("linear",) + tuple(ACTIVATION_FNS)


def activate(x, name):
    if name in (None, "linear"):
        return x
    if name in ACTIVATION_FNS:
        return ACTIVATION_FNS[name](x)
    raise Refused(f"unknown activation {name!r} (known: {', '.join(ACTIVATIONS)})")


def pair(v, what, layer):
    if isinstance(v, int) and not isinstance(v, bool):
        return (v, v)
    if isinstance(v, (list, tuple)) and len(v) == 2 and all(isinstance(a, int) for a in v):
        return tuple(v)
    raise Refused(f"layer {layer}: {what} must be an int or 2 ints, got {v!r}")


def same_pads(size, k, s):
    """TensorFlow's 'same': output ceil(size / s); the extra pixel of padding after (bottom/right)."""
    out = -(-size // s)
    total = max((out - 1) * s + k - size, 0)
    return total // 2, total - total // 2


def window_pads(x_nchw, k, s, padding):
    """(left, right, top, bottom) for F.pad, or None for 'valid'."""
    if padding == "valid":
        return None
    if padding != "same":
        raise Refused(f"padding must be valid or same, got {padding!r}")
    top, bottom = same_pads(x_nchw.shape[2], k[0], s[0])
    left, right = same_pads(x_nchw.shape[3], k[1], s[1])
    return (left, right, top, bottom)


class Conv2D(nn.Module):
    def __init__(self, name, spec, in_channels):
        super().__init__()
        self.lname = name
        if "filters" not in spec or "kernel_size" not in spec:
            raise Refused(f"layer {name}: conv2d needs filters and kernel_size")
        self.k = pair(spec["kernel_size"], "kernel_size", name)
        self.s = pair(spec.get("strides", 1), "strides", name)
        self.d = pair(spec.get("dilation_rate", 1), "dilation_rate", name)
        self.padding = spec.get("padding", "valid")
        self.activation = spec.get("activation", "linear")
        self.conv = nn.Conv2d(in_channels, int(spec["filters"]), self.k, stride=self.s, padding=0,
                              dilation=self.d, groups=int(spec.get("groups", 1)),
                              bias=bool(spec.get("use_bias", True)))

    def forward(self, x):  # x: NHWC
        if x.dim() != 4:
            raise Refused(f"layer {self.lname}: conv2d needs (height, width, channels) inputs, got {tuple(x.shape[1:])}")
        x = x.permute(0, 3, 1, 2)
        extent = tuple(d * (k - 1) + 1 for k, d in zip(self.k, self.d))
        pads = window_pads(x, extent, self.s, self.padding)
        if pads:
            x = F.pad(x, pads)
        y = self.conv(x).permute(0, 2, 3, 1)
        return activate(y, self.activation)

    def load(self, w, consumed):
        kernel = take_weight(w, f"{self.lname}/kernel", consumed)
        want = (self.k[0], self.k[1], self.conv.in_channels // self.conv.groups, self.conv.out_channels)
        check_shape(self.lname, "kernel", kernel, want)
        self.conv.weight.data.copy_(torch.from_numpy(HWIO_TO_OIHW(kernel)))
        if self.conv.bias is not None:
            bias = take_weight(w, f"{self.lname}/bias", consumed)
            check_shape(self.lname, "bias", bias, (self.conv.out_channels,))
            self.conv.bias.data.copy_(torch.from_numpy(bias.copy()))


def HWIO_TO_OIHW(kernel):
    """Keras' (kh, kw, in, out) conv kernel as PyTorch's (out, in, kh, kw)."""
    return np.ascontiguousarray(kernel.transpose(3, 2, 0, 1))


def IO_TO_OI(kernel):
    """Keras' (in, out) dense kernel as PyTorch's (out, in)."""
    return np.ascontiguousarray(kernel.T)


class Dense(nn.Module):
    def __init__(self, name, spec, in_features):
        super().__init__()
        self.lname = name
        if "units" not in spec:
            raise Refused(f"layer {name}: dense needs units")
        self.activation = spec.get("activation", "linear")
        self.fc = nn.Linear(in_features, int(spec["units"]), bias=bool(spec.get("use_bias", True)))

    def forward(self, x):
        if x.dim() != 2:
            raise Refused(f"layer {self.lname}: dense takes rank-1 inputs (add a flatten), got {tuple(x.shape[1:])}")
        return activate(self.fc(x), self.activation)

    def load(self, w, consumed):
        kernel = take_weight(w, f"{self.lname}/kernel", consumed)
        check_shape(self.lname, "kernel", kernel, (self.fc.in_features, self.fc.out_features))
        self.fc.weight.data.copy_(torch.from_numpy(IO_TO_OI(kernel)))
        if self.fc.bias is not None:
            bias = take_weight(w, f"{self.lname}/bias", consumed)
            check_shape(self.lname, "bias", bias, (self.fc.out_features,))
            self.fc.bias.data.copy_(torch.from_numpy(bias.copy()))


class Pool2D(nn.Module):
    def __init__(self, name, spec, kind):
        super().__init__()
        self.lname, self.kind = name, kind
        self.k = pair(spec.get("pool_size", 2), "pool_size", name)
        strides = spec.get("strides")
        self.s = self.k if strides is None else pair(strides, "strides", name)
        self.padding = spec.get("padding", "valid")

    def forward(self, x):
        if x.dim() != 4:
            raise Refused(f"layer {self.lname}: pooling needs (height, width, channels) inputs")
        x = x.permute(0, 3, 1, 2)
        pads = window_pads(x, self.k, self.s, self.padding)
        if self.kind == "max":
            if pads:
                x = F.pad(x, pads, value=float("-inf"))  # padded positions never win, as TF's
            y = F.max_pool2d(x, self.k, self.s)
        else:
            if pads:
                # TF's 'same' average counts only the positions inside the input.
                ones = F.pad(torch.ones_like(x[:, :1]), pads)
                y = F.avg_pool2d(F.pad(x, pads), self.k, self.s) / F.avg_pool2d(ones, self.k, self.s)
            else:
                y = F.avg_pool2d(x, self.k, self.s)
        return y.permute(0, 2, 3, 1)


class DepthwiseConv2D(nn.Module):
    """DepthwiseConv2D, or with `filters` SeparableConv2D (the depthwise step, then a 1x1 one)."""

    def __init__(self, name, spec, in_channels, separable):
        super().__init__()
        self.lname, self.separable = name, separable
        if "kernel_size" not in spec or (separable and "filters" not in spec):
            raise Refused(f"layer {name}: needs kernel_size{' and filters' if separable else ''}")
        self.k = pair(spec["kernel_size"], "kernel_size", name)
        self.s = pair(spec.get("strides", 1), "strides", name)
        self.d = pair(spec.get("dilation_rate", 1), "dilation_rate", name)
        self.padding = spec.get("padding", "valid")
        self.activation = spec.get("activation", "linear")
        self.dm = int(spec.get("depth_multiplier", 1))
        self.c = int(in_channels)
        bias = bool(spec.get("use_bias", True))
        self.dw = nn.Conv2d(self.c, self.c * self.dm, self.k, stride=self.s, dilation=self.d, groups=self.c,
                            bias=bias and not separable)
        self.pw = nn.Conv2d(self.c * self.dm, int(spec["filters"]), 1, bias=bias) if separable else None

    def forward(self, x):
        x = x.permute(0, 3, 1, 2)
        extent = tuple(d * (k - 1) + 1 for d, k in zip(self.d, self.k))
        pads = window_pads(x, extent, self.s, self.padding)
        if pads:
            x = F.pad(x, pads)
        y = self.dw(x)
        if self.pw is not None:
            y = self.pw(y)
        return activate(y.permute(0, 2, 3, 1), self.activation)

    def load(self, w, consumed):
        kernel = take_weight(w, f"{self.lname}/depthwise_kernel", consumed)
        check_shape(self.lname, "depthwise_kernel", kernel, (self.k[0], self.k[1], self.c, self.dm))
        # (kh, kw, C, dm) -> (C * dm, 1, kh, kw): output channel c * dm + m, as Keras orders them
        self.dw.weight.data.copy_(torch.from_numpy(np.ascontiguousarray(
            kernel.transpose(2, 3, 0, 1).reshape(self.c * self.dm, 1, self.k[0], self.k[1]))))
        last = self.pw if self.pw is not None else self.dw
        if self.pw is not None:
            pk = take_weight(w, f"{self.lname}/pointwise_kernel", consumed)
            check_shape(self.lname, "pointwise_kernel", pk, (1, 1, self.c * self.dm, self.pw.out_channels))
            self.pw.weight.data.copy_(torch.from_numpy(HWIO_TO_OIHW(pk)))
        if last.bias is not None:
            bias = take_weight(w, f"{self.lname}/bias", consumed)
            check_shape(self.lname, "bias", bias, (last.out_channels,))
            last.bias.data.copy_(torch.from_numpy(bias.copy()))


class Normalization(nn.Module):
    """BatchNormalization at inference (the moving statistics, Keras' formula) or
    LayerNormalization, over the last axis, with Keras' epsilon (1e-3) unless the file says."""

    def __init__(self, name, spec, features, kind):
        super().__init__()
        self.lname, self.kind = name, kind
        if spec.get("axis", -1) != -1:
            raise Refused(f"layer {name}: only axis -1")
        self.eps = float(spec.get("epsilon", 1e-3))
        self.center, self.scale = bool(spec.get("center", True)), bool(spec.get("scale", True))
        self.n = int(features)
        self.gamma = nn.Parameter(torch.ones(self.n)) if self.scale else None
        self.beta = nn.Parameter(torch.zeros(self.n)) if self.center else None
        if kind == "batch":
            self.register_buffer("mean", torch.zeros(self.n))
            self.register_buffer("var", torch.ones(self.n))

    def forward(self, x):
        if self.kind == "batch":
            y = (x - self.mean) / torch.sqrt(self.var + self.eps)
        else:
            y = F.layer_norm(x, (self.n,), eps=self.eps)
        if self.gamma is not None:
            y = y * self.gamma
        if self.beta is not None:
            y = y + self.beta
        return y

    def load(self, w, consumed):
        for attr, wname in (("gamma", "gamma"), ("beta", "beta"), ("mean", "moving_mean"), ("var", "moving_variance")):
            t = getattr(self, attr, None)
            if t is None:
                continue
            v = take_weight(w, f"{self.lname}/{wname}", consumed)
            check_shape(self.lname, wname, v, (self.n,))
            t.data.copy_(torch.from_numpy(v.copy()))


def zero_padding(spec, name):
    """((top, bottom), (left, right)) from Keras' forms: an int, (h, w), or the pairs."""
    p = spec.get("padding", 1)
    if isinstance(p, int):
        return (p, p), (p, p)
    if isinstance(p, list) and len(p) == 2 and all(isinstance(a, int) for a in p):
        return (p[0], p[0]), (p[1], p[1])
    if isinstance(p, list) and len(p) == 4 and all(isinstance(a, int) for a in p):
        return (p[0], p[1]), (p[2], p[3])
    if isinstance(p, list) and len(p) == 2 and all(isinstance(a, list) and len(a) == 2 for a in p):
        return tuple(p[0]), tuple(p[1])
    raise Refused(f"layer {name}: padding {p!r} is not a Keras form")


class Lambda(nn.Module):
    def __init__(self, fn):
        super().__init__()
        self.fn = fn

    def forward(self, *xs):
        return self.fn(*xs)


def merge(kind, name, axis):
    def fn(*xs):
        if len(xs) < 2:
            raise Refused(f"layer {name}: {kind} needs at least 2 inputs, got {len(xs)}")
        if kind == "concatenate":
            rank = xs[0].dim()
            ax = axis if axis >= 0 else rank + axis  # Keras' axis counts the batch axis
            if not 1 <= ax < rank:
                raise Refused(f"layer {name}: concatenate axis {axis} is out of range for rank {rank - 1} inputs")
            for x in xs[1:]:
                if x.dim() != rank or any(x.shape[d] != xs[0].shape[d] for d in range(1, rank) if d != ax):
                    raise Refused(f"layer {name}: concatenate inputs {[tuple(t.shape[1:]) for t in xs]} "
                                  f"differ outside axis {axis}")
            return torch.cat(xs, dim=ax)
        for x in xs[1:]:
            if x.shape != xs[0].shape:
                raise Refused(f"layer {name}: {kind} needs inputs of one shape, got "
                              f"{[tuple(t.shape[1:]) for t in xs]}")
        if kind == "subtract":
            if len(xs) != 2:
                raise Refused(f"layer {name}: subtract takes exactly 2 inputs, got {len(xs)}")
            return xs[0] - xs[1]
        out = xs[0]
        for x in xs[1:]:
            if kind in ("add", "average"):
                out = out + x
            elif kind == "multiply":
                out = out * x
            elif kind == "maximum":
                out = torch.maximum(out, x)
            elif kind == "minimum":
                out = torch.minimum(out, x)
        return out / len(xs) if kind == "average" else out
    return fn


def take_weight(w, name, consumed):
    if name not in w:
        raise Refused(f"the weights file holds no tensor {name}")
    consumed.add(name)
    return w[name]


def check_shape(layer, what, a, want):
    if tuple(a.shape) != tuple(want):
        raise Refused(f"{layer}/{what}: the weights file has shape {list(a.shape)}, the model needs {list(want)}")


def as_name_list(v, where):
    if isinstance(v, str):
        return [v]
    if isinstance(v, list) and v and all(isinstance(a, str) for a in v):
        return list(v)
    raise Refused(f"{where}: expected a name or a list of names, got {v!r}")


class GraphModel(nn.Module):
    """Runs the YAML's layers in file order; each takes its `inputs:` (default: the previous
    layer's output, or the model's input for the first layer). Tensors are channels-last."""

    def __init__(self, spec):
        super().__init__()
        if not isinstance(spec, dict) or not isinstance(spec.get("layers"), list) or not spec["layers"]:
            raise Refused("the model file needs a non-empty 'layers:' list")
        self.model_name = spec.get("name", "model")
        self.inputs = self._read_inputs(spec)  # [(name, shape)]
        self.nodes = []  # (name, type, input names, module, keras class)
        self.mods = nn.ModuleDict()
        counters = {}
        taken = {n for n, _ in self.inputs}
        explicit = {l.get("name") for l in spec["layers"] if isinstance(l, dict) and l.get("name")}
        # Dummy tensors of batch 1 give every layer its input shape while it is built.
        values = {n: torch.zeros((1,) + tuple(s)) for n, s in self.inputs}
        previous = self.inputs[0][0]
        for i, l in enumerate(spec["layers"]):
            if not isinstance(l, dict) or "type" not in l:
                raise Refused(f"layer {i + 1}: needs a 'type:'")
            t = l["type"]
            if t not in PREFIX:
                raise Refused(f"layer {i + 1}: unknown type {t!r} (known: {', '.join(PREFIX)})")
            name = l.get("name")
            if not name:  # prefix_N counting over the unnamed layers of that prefix, as Strata
                counters[PREFIX[t]] = counters.get(PREFIX[t], 0) + 1
                name = f"{PREFIX[t]}_{counters[PREFIX[t]]}"
            if name in taken or (not l.get("name") and name in explicit):
                raise Refused(f"layer {i + 1}: the name {name} is used twice")
            taken.add(name)
            srcs = as_name_list(l["inputs"], f"layer {name}: inputs") if "inputs" in l else [previous]
            for s in srcs:
                if s not in values:
                    raise Refused(f"layer {name}: input {s!r} is no model input or earlier layer")
            xs = [values[s] for s in srcs]
            if t not in MERGES and len(xs) != 1:
                raise Refused(f"layer {name}: {t} takes one input, got {len(xs)}")
            x = xs[0]
            if t == "conv2d":
                if x.dim() != 4:
                    raise Refused(f"layer {name}: conv2d needs (height, width, channels) inputs, got {tuple(x.shape[1:])}")
                m = Conv2D(name, l, x.shape[-1])
            elif t == "dense":
                if x.dim() != 2:
                    raise Refused(f"layer {name}: dense takes rank-1 inputs (add a flatten), got {tuple(x.shape[1:])}")
                m = Dense(name, l, x.shape[-1])
            elif t == "maxpool2d":
                m = Pool2D(name, l, "max")
            elif t == "averagepool2d":
                m = Pool2D(name, l, "average")
            elif t in TRAINING_ONLY:
                m = Lambda(lambda x: x)  # the identity at inference
            elif t in ("depthwise_conv2d", "separable_conv2d"):
                if x.dim() != 4:
                    raise Refused(f"layer {name}: {t} needs (height, width, channels) inputs")
                m = DepthwiseConv2D(name, l, x.shape[-1], t == "separable_conv2d")
            elif t in ("batch_normalization", "layer_normalization"):
                m = Normalization(name, l, x.shape[-1], "batch" if t == "batch_normalization" else "layer")
            elif t in ("global_average_pooling2d", "global_max_pooling2d"):
                keep = bool(l.get("keepdims", False))
                if t == "global_average_pooling2d":
                    m = Lambda(lambda x, keep=keep: x.mean(dim=(1, 2), keepdim=keep))
                else:
                    m = Lambda(lambda x, keep=keep: x.amax(dim=(1, 2), keepdim=keep))
            elif t == "zero_padding2d":
                (pt, pb), (pl, pr) = zero_padding(l, name)
                m = Lambda(lambda x, p=(0, 0, pl, pr, pt, pb): F.pad(x, p))  # NHWC: channels, width, height
            elif t == "flatten":
                m = Lambda(lambda x: x.reshape(x.shape[0], -1))  # NHWC order, as Keras' Flatten
            elif t == "activation":
                if "activation" not in l:
                    raise Refused(f"layer {name}: activation needs 'activation:'")
                fn = l["activation"]
                activate(x, fn)  # refuses unknown names now
                m = Lambda(lambda x, fn=fn: activate(x, fn))
            else:
                m = Lambda(merge(t, name, int(l.get("axis", -1))))
            self.mods[name] = m
            self.nodes.append((name, t, srcs, KERAS_CLASS[t]))
            with torch.no_grad():
                values[name] = m(*xs)
            previous = name
        self.shapes = {n: tuple(v.shape[1:]) for n, v in values.items()}
        outs = spec.get("outputs")
        self.outputs = as_name_list(outs, "outputs") if outs is not None else [previous]
        for o in self.outputs:
            if o not in self.mods:
                raise Refused(f"outputs: {o!r} is not a layer")

    @staticmethod
    def _read_inputs(spec):
        def shape_of(v, where):
            s = v.get("shape") if isinstance(v, dict) else None
            if not isinstance(s, list) or not s or not all(isinstance(a, int) and a > 0 for a in s):
                raise Refused(f"{where}: needs 'shape: [...]' of positive ints")
            return tuple(s)

        if "inputs" in spec:
            ins = spec["inputs"]
            if isinstance(ins, dict):
                out = [(str(k), shape_of(v, f"inputs: {k}")) for k, v in ins.items()]
            elif isinstance(ins, list):
                out = []
                for i, v in enumerate(ins):
                    if not isinstance(v, dict) or not v.get("name"):
                        raise Refused(f"inputs: entry {i + 1} needs a name and a shape")
                    out.append((str(v["name"]), shape_of(v, f"inputs: {v['name']}")))
            else:
                raise Refused("inputs: expected a mapping or a list of named inputs")
            if not out:
                raise Refused("inputs: is empty")
            return out
        if "input" in spec:
            v = spec["input"]
            return [(str(v.get("name", "input_1")) if isinstance(v, dict) else "input_1", shape_of(v, "input"))]
        raise Refused("the model file has no 'input:' or 'inputs:'")

    def forward(self, *xs, layers=None):
        """The outputs' values, or those of `layers` (names) when given."""
        values = dict(zip((n for n, _ in self.inputs), xs))
        for name, _, srcs, _ in self.nodes:
            values[name] = self.mods[name](*(values[s] for s in srcs))
        return [values[o] for o in (layers or self.outputs)]

    def load_weights(self, weights):
        consumed = set()
        for name, _, _, _ in self.nodes:
            m = self.mods[name]
            if hasattr(m, "load"):
                m.load(weights, consumed)
        extra = sorted(set(weights) - consumed)
        if extra:
            raise Refused(f"the weights file holds tensors this model does not have: {', '.join(extra)}")

    def param_counts(self):
        return [(name, cls, sum(p.numel() for p in self.mods[name].parameters()), self.shapes[name])
                for name, _, _, cls in self.nodes]


def keras_count(m):
    """Keras' parameter count of a layer, by its formula (a check on the PyTorch modules)."""
    if isinstance(m, Conv2D):
        c = m.conv
        return (c.kernel_size[0] * c.kernel_size[1] * (c.in_channels // c.groups) * c.out_channels +
                (c.out_channels if c.bias is not None else 0))
    if isinstance(m, Dense):
        return m.fc.in_features * m.fc.out_features + (m.fc.out_features if m.fc.bias is not None else 0)
    if isinstance(m, DepthwiseConv2D):
        n = m.k[0] * m.k[1] * m.c * m.dm
        if m.pw is not None:
            n += m.c * m.dm * m.pw.out_channels
        last = m.pw if m.pw is not None else m.dw
        return n + (last.out_channels if last.bias is not None else 0)
    if isinstance(m, Normalization):
        return m.n * (int(m.scale) + int(m.center) + (2 if m.kind == "batch" else 0))
    return 0


def print_summary(model):
    """Prints the PyTorch modules' parameter counts per layer; False when one differs from Keras'."""
    print(f'PyTorch build of "{model.model_name}": parameters per layer')
    print(f"  {'layer (type)':<38} {'output shape':<20} {'PyTorch':>10} {'Keras':>10}  inputs")
    ok = True
    for (name, cls, n, shape), (_, _, srcs, _) in zip(model.param_counts(), model.nodes):
        k = keras_count(model.mods[name])
        ok &= k == n
        print(f"  {name + ' (' + cls + ')':<38} {str(shape):<20} {n:>10,} {k:>10,}  {', '.join(srcs)}"
              f"{'' if k == n else '  <- differs'}")
    total = sum(n for _, _, n, _ in model.param_counts())
    print(f"  total params: {total:,} ({'as Keras counts them' if ok else 'NOT as Keras counts them'})")
    return ok


# ----------------------------------------------------------------------------------------------
# Data, as Strata's data loader prepares it (src/train/dataset.c, cl/data.cl)


def model_data(spec, model_path):
    data = spec.get("data") or {}
    base = os.path.dirname(os.path.abspath(model_path))
    path = lambda k: os.path.normpath(os.path.join(base, data[k])) if data.get(k) else None
    return dict(test_images=path("test_images"), test_labels=path("test_labels"),
                train_images=path("train_images"), train_labels=path("train_labels"),
                scale=np.float32(data.get("scale", 1.0)), standardize=bool(data.get("standardize", False)),
                keep_labels=data.get("keep_labels"))


def kept(images, labels_path, keep):
    if keep is None:
        return images
    labels = read_idx(labels_path)
    return images[np.isin(labels, np.asarray(keep))]


def standardization(d):
    """Per-pixel mean and 1/std of the training set, as compute_standardization(): sums in double
    of pixel * (double)(float)scale, population variance, float32 results."""
    px = kept(read_idx(d["train_images"]), d["train_labels"], d["keep_labels"])
    px = px.reshape(px.shape[0], -1)
    v = px.astype(np.float64) * np.float64(d["scale"])
    s = v.sum(axis=0)
    sq = (v * v).sum(axis=0)
    mean = s / px.shape[0]
    var = sq / px.shape[0] - mean * mean
    inv = np.where(var > 1e-12, 1.0 / np.sqrt(np.maximum(var, 1e-300)), 1.0)
    return mean.astype(np.float32), inv.astype(np.float32)


def prepare(pixels, d, stats):
    """float v = pixel * scale; standardized: (v - mean[k]) * inv_std[k], all in float32."""
    flat = pixels.reshape(pixels.shape[0], -1)
    v = flat.astype(np.float32) * d["scale"]
    if stats is not None:
        v = (v - stats[0]) * stats[1]
    return v.astype(np.float32)


# ----------------------------------------------------------------------------------------------


def run_strata(args, model_path, layer, data_arg, out_npy):
    cmd = [args.strata, "embed", model_path, "--weights", args.weights, "--layer", layer, "-o", out_npy]
    if data_arg:
        cmd.insert(3, data_arg)
    if args.device:
        cmd += ["--device", args.device]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        sys.stderr.write(r.stdout + r.stderr)
        raise RuntimeError(f"strata embed failed with status {r.returncode}: {' '.join(cmd)}")
    return np.load(out_npy)


def strata_device(args):
    cmd = [args.strata, "devices"] + (["--device", args.device] if args.device else [])
    r = subprocess.run(cmd, capture_output=True, text=True)
    lines = r.stdout.splitlines()
    # The device line is the one marked '*' just before the chooser line, when there is one.
    marked = [l.strip("* ").strip() for l in lines if l.startswith("* ") and "chooses" not in l]
    return (marked[0] if marked else "?") + f" (selector {args.device or 'default'})"


def main():
    ap = argparse.ArgumentParser(description="Checks Strata's forward pass against PyTorch with the same weights.")
    ap.add_argument("model")
    ap.add_argument("weights", nargs="?")
    ap.add_argument("--strata", default="build/src/strata")
    ap.add_argument("--images", type=int, default=1000)
    ap.add_argument("--tolerance", type=float, default=1e-4)
    ap.add_argument("--device", help="Strata's device selector (default: Strata's own choice)")
    ap.add_argument("--whole-test-set", action="store_true",
                    help="have Strata embed the whole test set and take its first N rows")
    ap.add_argument("--params-only", action="store_true", help="print the per-layer parameter counts and stop")
    ap.add_argument("--keep", metavar="DIR", help="keep Strata's .npy outputs in DIR")
    ap.add_argument("--layer", action="append", metavar="NAME",
                    help="compare this layer's activations instead of the outputs' (repeatable)")
    ap.add_argument("--all-layers", action="store_true", help="compare every layer's activations")
    args = ap.parse_args()
    if args.images < 1:
        ap.error("--images must be at least 1")
    if not args.tolerance >= 0:
        ap.error("--tolerance must be a number >= 0")
    if not args.params_only and not args.weights:
        ap.error("WEIGHTS.stw is required (unless --params-only)")

    torch.set_grad_enabled(False)
    try:
        with open(args.model) as f:
            spec = yaml.safe_load(f)
    except OSError as e:
        raise Refused(f"{args.model}: cannot read: {e.strerror}")
    except yaml.YAMLError as e:
        raise Refused(f"{args.model}: not valid YAML: {e}")
    model = GraphModel(spec).float().eval()
    if args.params_only:
        return 0 if print_summary(model) else 1

    if not (os.path.isfile(args.strata) and os.access(args.strata, os.X_OK)):
        raise Refused(f"--strata {args.strata}: no such executable; build it (meson compile -C build) or name it")
    print(f"python {platform.python_version()}, torch {torch.__version__}, numpy {np.__version__}, "
          f"PyYAML {yaml.__version__}; PyTorch device: cpu, float32, {torch.get_num_threads()} threads")
    v = subprocess.run([args.strata, "--version"], capture_output=True, text=True)
    print(f"{v.stdout.strip() or args.strata}; Strata device: {strata_device(args)}")

    header, weights = read_stw(args.weights)
    print(f"weights: {args.weights}: model {header['model']!r}, epoch {header['epoch']}, step {header['step']}, "
          f"{len(weights)} weight tensors (of {header['tensors']}), CRC-32 ok")
    if header["model"] != model.model_name:
        print(f"note: the weights file was saved by model {header['model']!r}, the model file is {model.model_name!r}")
    try:
        model.load_weights(weights)
    except Refused as e:
        raise Refused(f"{args.weights}: {e}")
    total = sum(n for _, _, n, _ in model.param_counts())
    print(f"model: {args.model}: {len(model.nodes)} layers, {total:,} parameters, outputs {', '.join(model.outputs)}")

    d = model_data(spec, args.model)
    if not d["test_images"]:
        raise Refused(f"{args.model}: the model's data section names no test_images")
    images = read_idx(d["test_images"])
    if d["keep_labels"] is not None:
        images = kept(images, d["test_labels"], d["keep_labels"])
    n = min(args.images, images.shape[0])
    images = images[:n]
    stats = standardization(d) if d["standardize"] else None
    x = prepare(images, d, stats)
    feeds = []
    for name, shape in model.inputs:
        if math.prod(shape) != x.shape[1]:
            raise Refused(f"input {name} of shape {list(shape)} does not take the test images' "
                          f"{list(images.shape[1:])} samples")
        feeds.append(torch.from_numpy(x.reshape((n,) + shape)))
    print(f"data: first {n} images of {d['test_images']}, scale {float(d['scale']):.9g}"
          f"{', standardized with the training set statistics' if stats is not None else ''}")

    compared = [name for name, _, _, _ in model.nodes] if args.all_layers else (args.layer or model.outputs)
    for name in compared:
        if name not in model.mods:
            raise Refused(f"--layer {name}: the model has no such layer")
    ours = [t.numpy().reshape(n, -1) for t in model(*feeds, layers=compared)]

    worst = 0.0
    with tempfile.TemporaryDirectory(prefix="strata-ref-") as tmp:
        out_dir = args.keep or tmp
        os.makedirs(out_dir, exist_ok=True)
        if args.whole_test_set:
            data_arg = None
        else:
            data_arg = os.path.join(tmp, "images-idx3-ubyte")
            write_idx(data_arg, images)
        print(f"{'layer':<20} {'features':>8} {'max |diff|':>12} {'mean |diff|':>12} {'max |value|':>12}  argmax agree")
        for layer, mine in zip(compared, ours):
            theirs = run_strata(args, args.model, layer, data_arg, os.path.join(out_dir, f"{layer}.npy"))
            if theirs.shape[0] < n or theirs.reshape(theirs.shape[0], -1).shape[1] != mine.shape[1]:
                raise RuntimeError(f"{layer}: Strata gave {theirs.shape}, PyTorch {mine.shape}")
            theirs = theirs.reshape(theirs.shape[0], -1)[:n].astype(np.float32)
            if args.whole_test_set and d["test_labels"]:  # the rows are the test set in file order
                labels = np.load(os.path.join(out_dir, f"{layer}.labels.npy")).reshape(-1)[:n]
                want = read_idx(d["test_labels"])
                if d["keep_labels"] is not None:
                    want = want[np.isin(want, np.asarray(d["keep_labels"]))]
                if not np.array_equal(labels.astype(np.int64), want[:n].astype(np.int64)):
                    raise RuntimeError(f"{layer}: Strata's rows are not the test set's first {n} samples in order")
            diff = np.abs(theirs.astype(np.float64) - mine.astype(np.float64))
            mx = float(diff.max()) if diff.size else 0.0
            if not np.isfinite(theirs).all() or not np.isfinite(mine).all():
                mx = float("inf")
            agree = int((theirs.argmax(axis=1) == mine.argmax(axis=1)).sum())
            print(f"{layer:<20} {mine.shape[1]:>8} {mx:>12.3e} {float(diff.mean()):>12.3e} "
                  f"{float(np.abs(mine).max()):>12.3e}  {agree}/{n}")
            worst = max(worst, mx)
    ok = worst <= args.tolerance
    print(f"{'PASS' if ok else 'FAIL'}: largest absolute difference {worst:.3e} "
          f"{'<=' if ok else '>'} tolerance {args.tolerance:g}")
    return 0 if ok else 1


if __name__ == "__main__":
    try:
        sys.exit(main())
    except Refused as e:
        print(f"pytorch_reference: {e}", file=sys.stderr)
        sys.exit(2)
    except RuntimeError as e:
        print(f"pytorch_reference: {e}", file=sys.stderr)
        sys.exit(1)
