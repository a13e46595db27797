"""ONNX round trips with PyTorch (issue 16, point 4).

Six PyTorch models are exported with torch.onnx.export (opset 13), imported into Strata and run
on the same inputs; the outputs must agree to 1e-4 absolute:

  keras_mnist_cnn  the Keras MNIST example (two convolutions, max pooling, dropout, two dense)
  resnet           a small ResNet: 3x3 stem, an identity block and a strided block with a 1x1
                   projection, batch normalization after every convolution, global pooling
  mobilenet        a MobileNet-style CNN: strided stem, depthwise separable blocks (depthwise
                   3x3 with groups = channels, pointwise 1x1), batch normalization, ReLU6
  lstm_text        Embedding -> LSTM (batch first) -> the last state -> dense, on int64 ids
  bilstm_text      Embedding -> bidirectional LSTM -> out[:, -1] and h[-1] -> dense
  se_arith         arithmetic with broadcasting: the input normalized by constants, a per-channel
                   affine by constants, hard swish written out (x * clamp(x + 3, 0, 6) / 6), a
                   squeeze-and-excitation gate (x * s.view(N, C, 1, 1)), a per-channel scale and
                   shift of 16 channels, a negation

Each becomes a folder in ONNX's backend-test form (model.onnx, test_data_set_0/input_0.pb and
output_0.pb, PyTorch's outputs on --samples inputs: MNIST test images, random ids for the text
model) checked by tests/onnx_backend. Batch normalization gets random statistics and affine
weights, so it is not the identity. With --finetune the MNIST CNN is first trained by PyTorch for
one epoch, imported, evaluated by `strata eval` and trained one more epoch by `strata train`
(init_from the imported weights): both accuracies are printed.

Usage: python3 bench/onnx_roundtrip.py [--build build] [--out runs/onnx_roundtrip]
                                       [--samples 1000] [--finetune]
"""
import argparse
import os
import re
import subprocess
import sys
import time

import numpy as np
import torch
import torch.nn as nn
from onnx import numpy_helper

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from idx import read_idx  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class KerasMnistCnn(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 32, 3)
        self.conv2 = nn.Conv2d(32, 64, 3)
        self.drop1 = nn.Dropout(0.25)
        self.fc1 = nn.Linear(9216, 128)
        self.drop2 = nn.Dropout(0.5)
        self.fc2 = nn.Linear(128, 10)

    def forward(self, x):
        x = torch.relu(self.conv1(x))
        x = torch.relu(self.conv2(x))
        x = self.drop1(torch.max_pool2d(x, 2))
        x = self.drop2(torch.relu(self.fc1(torch.flatten(x, 1))))
        return finish(self, self.fc2(x))


def finish(model, logits):
    """The round trips compare logits (a softmax would hide differences); fine-tuning needs the
    probabilities (categorical cross-entropy), hence `probs`."""
    return torch.softmax(logits, 1) if getattr(model, "probs", False) else logits


def conv_bn(cin, cout, k, stride=1, groups=1):
    return nn.Sequential(nn.Conv2d(cin, cout, k, stride, k // 2, groups=groups, bias=False), nn.BatchNorm2d(cout))


class Block(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.a = conv_bn(cin, cout, 3, stride)
        self.b = conv_bn(cout, cout, 3)
        self.short = conv_bn(cin, cout, 1, stride) if stride != 1 or cin != cout else None

    def forward(self, x):
        y = self.b(torch.relu(self.a(x)))
        return torch.relu(y + (self.short(x) if self.short is not None else x))


class ResNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = conv_bn(1, 16, 3)
        self.block1 = Block(16, 16, 1)
        self.block2 = Block(16, 32, 2)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(32, 10)

    def forward(self, x):
        x = self.block2(self.block1(torch.relu(self.stem(x))))
        return finish(self, self.fc(torch.flatten(self.pool(x), 1)))


class MobileNet(nn.Module):
    def __init__(self):
        super().__init__()

        def separable(cin, cout, stride):
            return nn.Sequential(conv_bn(cin, cin, 3, stride, groups=cin), nn.ReLU6(), conv_bn(cin, cout, 1),
                                 nn.ReLU6())

        self.stem = nn.Sequential(conv_bn(1, 16, 3, 2), nn.ReLU6())
        self.blocks = nn.Sequential(separable(16, 32, 1), separable(32, 64, 2), separable(64, 64, 1))
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(64, 10)

    def forward(self, x):
        x = self.blocks(self.stem(x))
        return finish(self, self.fc(torch.flatten(self.pool(x), 1)))


class LstmText(nn.Module):
    def __init__(self):
        super().__init__()
        self.embed = nn.Embedding(1000, 32)
        self.lstm = nn.LSTM(32, 64, batch_first=True)
        self.fc = nn.Linear(64, 2)

    def forward(self, ids):
        _, (h, _) = self.lstm(self.embed(ids))
        return finish(self, self.fc(h.squeeze(0)))


class BiLstmText(nn.Module):
    """A bidirectional LSTM read the two ways PyTorch code reads one: the last step of its output
    (out[:, -1]) and the backward direction's final state (h[-1]), both Gather in the export."""

    def __init__(self):
        super().__init__()
        self.embed = nn.Embedding(1000, 16)
        self.lstm = nn.LSTM(16, 24, batch_first=True, bidirectional=True)
        self.fc = nn.Linear(48 + 24, 2)

    def forward(self, ids):
        out, (h, _) = self.lstm(self.embed(ids))
        return finish(self, self.fc(torch.cat([out[:, -1], h[-1]], 1)))


class SeArith(nn.Module):
    """ONNX's element-wise arithmetic as PyTorch writes it: Sub and Div by constants (one number,
    one per channel of 3 and of 16), Add, Clip, Mul and Div of hard swish, Mul by a broadcast
    gate, Neg."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 3, 3, padding=1)
        self.register_buffer("mean", torch.tensor([0.1, -0.2, 0.3]).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor([0.5, 2.0, 1.5]).view(1, 3, 1, 1))
        self.conv2 = nn.Conv2d(3, 16, 3, stride=2)
        self.fc1 = nn.Linear(16, 4)
        self.fc2 = nn.Linear(4, 16)
        self.fc = nn.Linear(16, 10)
        self.register_buffer("gamma", torch.linspace(0.5, 2.0, 16).view(1, 16, 1, 1))
        self.register_buffer("beta", torch.linspace(-0.3, 0.3, 16).view(1, 16, 1, 1))

    def forward(self, x):
        x = (x - 0.1307) / 0.3081
        x = (self.conv1(x) - self.mean) / self.std
        x = self.conv2(x)
        x = x * torch.clamp(x + 3, 0, 6) / 6
        s = torch.sigmoid(self.fc2(torch.relu(self.fc1(x.mean((2, 3))))))
        x = x * s.view(-1, 16, 1, 1) * self.gamma - self.beta
        return finish(self, self.fc(-torch.amax(x, (2, 3))))


def randomize_batch_norm(model, gen):
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            n = m.num_features
            m.weight.data = torch.rand(n, generator=gen) + 0.5
            m.bias.data = torch.randn(n, generator=gen) * 0.1
            m.running_mean = torch.randn(n, generator=gen) * 0.1
            m.running_var = torch.rand(n, generator=gen) + 0.5


def write_case(folder, model, x, input_name):
    os.makedirs(os.path.join(folder, "test_data_set_0"), exist_ok=True)
    model.eval()
    with torch.no_grad():
        y = model(x)
    # PRESERVE keeps batch normalization as its own node (EVAL folds it into the convolution
    # before it): the model is in eval mode, so the node is inference's.
    torch.onnx.export(model, x[:2], os.path.join(folder, "model.onnx"), opset_version=13,
                      training=torch.onnx.TrainingMode.PRESERVE,
                      input_names=[input_name], output_names=["probs" if getattr(model, "probs", False) else "logits"],
                      dynamic_axes={input_name: {0: "batch"}, "probs": {0: "batch"}, "logits": {0: "batch"}})
    for name, array in (("input_0.pb", x.numpy()), ("output_0.pb", y.numpy())):
        with open(os.path.join(folder, "test_data_set_0", name), "wb") as f:
            f.write(numpy_helper.from_array(array).SerializeToString())


def mnist(split, samples=None):
    prefix = "train" if split == "train" else "t10k"
    images = read_idx(os.path.join(ROOT, "data", "mnist", f"{prefix}-images-idx3-ubyte"))
    labels = read_idx(os.path.join(ROOT, "data", "mnist", f"{prefix}-labels-idx1-ubyte"))
    if samples:
        images, labels = images[:samples], labels[:samples]
    return torch.from_numpy(images.astype(np.float32) / 255.0).unsqueeze(1), torch.from_numpy(labels.astype(np.int64))


def run(cmd):
    result = subprocess.run(cmd, capture_output=True, text=True)
    if result.returncode not in (0, 1):
        sys.exit(f"{' '.join(cmd)} failed ({result.returncode}):\n{result.stdout}{result.stderr}")
    return result


def pytorch_epoch(model):
    """One epoch of the Keras example's training (Adadelta 1.0, rho 0.95, batch 128)."""
    x, y = mnist("train")
    model.probs = True
    opt = torch.optim.Adadelta(model.parameters(), lr=1.0, rho=0.95, eps=1e-7)
    gen = torch.Generator().manual_seed(1)
    model.train()
    for batch in torch.randperm(len(x), generator=gen).split(128):
        opt.zero_grad()
        loss = nn.functional.nll_loss(torch.log(model(x[batch]) + 1e-7), y[batch])
        loss.backward()
        opt.step()
    model.eval()
    tx, ty = mnist("test")
    with torch.no_grad():
        return (model(tx).argmax(1) == ty).float().mean().item()


def finetune(args, strata, folder, model):
    model.probs = True
    x, _ = mnist("test", 16)
    write_case(folder, model, x, "image")
    recipe = f"""loss: categorical_crossentropy
optimizer: {{type: adadelta, learning_rate: 1.0, rho: 0.95, epsilon: 1.0e-7}}
metrics: [accuracy]
data:
  train_images: {ROOT}/data/mnist/train-images-idx3-ubyte
  train_labels: {ROOT}/data/mnist/train-labels-idx1-ubyte
  test_images: {ROOT}/data/mnist/t10k-images-idx3-ubyte
  test_labels: {ROOT}/data/mnist/t10k-labels-idx1-ubyte
  scale: 0.00392156862745098
  num_classes: 10
training: {{batch_size: 128, epochs: 1, seed: 1, shuffle: true}}
"""
    imported = os.path.join(folder, "imported.yaml")
    run([strata, "import", os.path.join(folder, "model.onnx"), "-o", imported])
    with open(imported) as f:
        text = f.read()
    with open(imported, "w") as f:
        f.write(text + recipe)
    evaluated = run([strata, "eval", imported, "--weights", os.path.join(folder, "imported.stw")])
    before = re.search(r"accuracy[: ]+([0-9.]+)", evaluated.stdout, re.I)
    tuned = os.path.join(folder, "finetune.yaml")
    with open(tuned, "w") as f:
        f.write(text.replace('name: "imported"', 'name: "finetune"') + recipe + "init_from: {weights: imported.stw}\n")
    start = time.time()
    trained = run([strata, "train", tuned, "--save", os.path.join(folder, "finetune.stw")])
    after = re.search(r"Test accuracy: ([0-9.]+)", trained.stdout)
    return (before.group(1) if before else "?", after.group(1) if after else "?", time.time() - start,
            trained.stdout + trained.stderr)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--build", default=os.path.join(ROOT, "build"))
    parser.add_argument("--out", default=os.path.join(ROOT, "runs", "onnx_roundtrip"))
    parser.add_argument("--samples", type=int, default=1000)
    parser.add_argument("--finetune", action="store_true")
    args = parser.parse_args()
    strata = os.path.join(args.build, "src", "strata")
    backend = os.path.join(args.build, "tests", "onnx_backend")
    torch.manual_seed(1)
    gen = torch.Generator().manual_seed(1)
    images, _ = mnist("test", args.samples)
    ids = torch.randint(0, 1000, (args.samples, 40), generator=gen)
    cnn = KerasMnistCnn()
    accuracy = pytorch_epoch(cnn) if args.finetune else None
    cnn.probs = False
    cases = [("keras_mnist_cnn", cnn, images, "image"), ("resnet", ResNet(), images, "image"),
             ("mobilenet", MobileNet(), images, "image"), ("lstm_text", LstmText(), ids, "ids"),
             ("bilstm_text", BiLstmText(), ids, "ids"), ("se_arith", SeArith(), images, "image")]
    folders = []
    for name, model, x, input_name in cases:
        randomize_batch_norm(model, gen)
        folder = os.path.join(args.out, name)
        write_case(folder, model, x, input_name)
        folders.append(folder)
    result = run([backend, "--report", "--atol", "1e-4", "--rtol", "0"] + folders)
    print(f"PyTorch {torch.__version__} -> ONNX opset 13 -> Strata, {args.samples} inputs each, outputs within 1e-4:")
    print(result.stdout.rstrip())
    failed = result.returncode != 0
    if args.finetune:
        before, after, seconds, log = finetune(args, strata, os.path.join(args.out, "keras_mnist_cnn_finetune"), cnn)
        print(f"keras_mnist_cnn: PyTorch after 1 epoch {accuracy:.4f}; imported into Strata: eval {before}; "
              f"after 1 more epoch of `strata train` (init_from the import): {after} ({seconds:.0f} s)")
        if after == "?":
            print(log)
            failed = True
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
