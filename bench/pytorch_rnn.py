#!/usr/bin/python3
"""models/mnist_lstm.yaml (and its GRU and SimpleRNN versions) in PyTorch, for issue 15's proof.

The same network as the model file: MNIST images read as 28 steps of 28 pixels (scaled by 1/255),
nn.LSTM / nn.GRU / nn.RNN (tanh) of 128 units, its final state into Linear(128, 10) with softmax
folded into the cross-entropy; Keras' initial weights (glorot_uniform kernels, orthogonal
recurrent kernels, zero biases with the LSTM's forget gate at 1; PyTorch's GRU is Keras' with
reset_after, its second bias the recurrent one), Adam with Keras' defaults (lr 1e-3, eps 1e-7),
batch 64, shuffled every epoch.

Two modes:
  --epochs N   trains N epochs, printing after each the test accuracy and the training speed
               ("pytorch: epoch=E test_accuracy=A train_images_per_s=R seconds=S");
  (default)    times training and inference steps as `strata bench` does: the median images/s of
               a few timed windows after a warm-up ("pytorch: train_images_per_s=..." lines).

usage: bench/pytorch_rnn.py [--cell lstm|gru|simple_rnn] [--data DIR] [--epochs N] [--threads N]
                            [--batch-size N] [--seed N] [--device cpu|cuda]
                            [--dropout R] [--global-clipnorm C] [--cosine]   (a model file's recipe)
"""
import argparse
import math
import statistics
import time

import numpy as np
import torch
from torch import nn

from idx import read_idx  # bench/idx.py


class SequenceClassifier(nn.Module):
    def __init__(self, cell, features=28, units=128, classes=10, activation="tanh"):
        super().__init__()
        if cell == "simple_rnn":
            self.rnn = nn.RNN(features, units, nonlinearity=activation, batch_first=True)
        else:
            self.rnn = {"lstm": nn.LSTM, "gru": nn.GRU}[cell](features, units, batch_first=True)
        self.out = nn.Linear(units, classes)
        self.dropout = 0.0
        gates = {"lstm": 4, "gru": 3, "simple_rnn": 1}[cell]
        with torch.no_grad():
            # Keras' initializers on Keras' shapes: kernel (features, gates x units) glorot_uniform,
            # recurrent kernel (units, gates x units) orthogonal; PyTorch stores them transposed.
            limit = (6.0 / (features + gates * units)) ** 0.5
            self.rnn.weight_ih_l0.uniform_(-limit, limit)
            rec = torch.empty(units, gates * units)
            nn.init.orthogonal_(rec)
            self.rnn.weight_hh_l0.copy_(rec.t())
            self.rnn.bias_ih_l0.zero_()
            self.rnn.bias_hh_l0.zero_()
            if cell == "lstm":
                self.rnn.bias_ih_l0[units : 2 * units] = 1.0  # unit_forget_bias
            limit = (6.0 / (units + classes)) ** 0.5
            self.out.weight.uniform_(-limit, limit)
            self.out.bias.zero_()

    def forward(self, x):
        if self.training and self.dropout > 0:
            # Keras 3's recurrent input dropout: one mask per sample over the features, every step.
            keep = torch.empty(x.shape[0], 1, x.shape[2], device=x.device).bernoulli_(1 - self.dropout)
            x = x * keep / (1 - self.dropout)
        seq, _ = self.rnn(x)
        return self.out(seq[:, -1])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--cell", default="lstm", choices=["lstm", "gru", "simple_rnn"])
    ap.add_argument("--data", default="data/mnist")
    ap.add_argument("--epochs", type=int, default=0)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--windows", type=int, default=5)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--dropout", type=float, default=0.0, help="the recurrent layer's input dropout (Keras')")
    ap.add_argument("--global-clipnorm", type=float, default=0.0, help="clip all gradients to this joint norm")
    ap.add_argument("--cosine", action="store_true", help="Keras' cosine_decay of the rate to 0 over the epochs")
    ap.add_argument("--activation", default="tanh", choices=["tanh", "relu"], help="simple_rnn's activation")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    dev = torch.device(args.device)

    scale = np.float32(1.0 / 255.0)
    x_train = torch.from_numpy(read_idx(f"{args.data}/train-images-idx3-ubyte").astype(np.float32) * scale)
    y_train = torch.from_numpy(read_idx(f"{args.data}/train-labels-idx1-ubyte").astype(np.int64))
    x_test = torch.from_numpy(read_idx(f"{args.data}/t10k-images-idx3-ubyte").astype(np.float32) * scale)
    y_test = torch.from_numpy(read_idx(f"{args.data}/t10k-labels-idx1-ubyte").astype(np.int64))
    x_train, y_train, x_test, y_test = (t.to(dev) for t in (x_train, y_train, x_test, y_test))

    model = SequenceClassifier(args.cell, activation=args.activation).to(dev)
    model.dropout = args.dropout
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, eps=1e-7)
    loss_fn = nn.CrossEntropyLoss()
    b = args.batch_size
    sched = None
    if args.cosine and args.epochs:
        total = args.epochs * ((len(x_train) + b - 1) // b)
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda t: 0.5 * (1 + math.cos(math.pi * min(t, total) / total)))

    def step(xb, yb):
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(model(xb), yb)
        loss.backward()
        if args.global_clipnorm > 0:
            nn.utils.clip_grad_norm_(model.parameters(), args.global_clipnorm)
        opt.step()
        if sched:
            sched.step()
        return loss

    def sync():
        if dev.type == "cuda":
            torch.cuda.synchronize()

    def accuracy():
        model.eval()
        correct = 0
        with torch.no_grad():
            for i in range(0, len(x_test), 1000):
                correct += (model(x_test[i : i + 1000]).argmax(1) == y_test[i : i + 1000]).sum().item()
        model.train()
        return correct / len(x_test)

    if args.epochs:
        gen = torch.Generator().manual_seed(args.seed)
        for epoch in range(1, args.epochs + 1):
            order = torch.randperm(len(x_train), generator=gen).to(dev)
            start = time.perf_counter()
            for i in range(0, len(x_train), b):
                idx = order[i : i + b]
                step(x_train[idx], y_train[idx])
            sync()
            seconds = time.perf_counter() - start
            print(f"pytorch: epoch={epoch} test_accuracy={accuracy():.4f} "
                  f"train_images_per_s={len(x_train) / seconds:.1f} seconds={seconds:.1f}", flush=True)
        return

    # Timed windows, as `strata bench`: warm-up, then the median of a few windows.
    def timed(fn, steps):
        rates = []
        for w in range(args.windows + 1):
            sync()
            start = time.perf_counter()
            for s in range(steps):
                i = ((w * steps + s) * b) % (len(x_train) - b)
                fn(i)
            sync()
            if w:
                rates.append(steps * b / (time.perf_counter() - start))
        return statistics.median(rates)

    train = timed(lambda i: step(x_train[i : i + b], y_train[i : i + b]), 12)
    model.eval()
    with torch.no_grad():
        infer = timed(lambda i: model(x_train[i : i + b]), 36)
    print(f"pytorch: version={torch.__version__}")
    print(f"pytorch: device={dev}")
    print(f"pytorch: cell={args.cell}")
    print(f"pytorch: batch={b}")
    print(f"pytorch: train_images_per_s={train:.1f}")
    print(f"pytorch: infer_images_per_s={infer:.1f}")


if __name__ == "__main__":
    main()
