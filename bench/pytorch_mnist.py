#!/usr/bin/python3
"""The Keras MNIST CNN in PyTorch, timed the way `strata bench` times Strata.

Same network (Conv2D 32 3x3 relu, Conv2D 64 3x3 relu, MaxPool 2x2, Dropout .25, Flatten,
Dense 128 relu, Dropout .5, Dense 10 softmax), loss (categorical cross-entropy), optimizer
(Adadelta lr 1.0, rho 0.95, eps 1e-7), batch size and data (the MNIST IDX files, scaled by
1/255). Prints "pytorch: key=value" lines: training and inference images/s (median of timed
windows after warm-up) and peak host memory.

usage: bench/pytorch_mnist.py [--data DIR] [--batch-size N] [--threads N] [--windows N]
                              [--device cpu|cuda]
"""
import argparse
import resource
import statistics
import time

import numpy as np
import torch
from torch import nn

from idx import read_idx  # bench/idx.py


def keras_mnist_cnn():
    return nn.Sequential(
        nn.Conv2d(1, 32, 3), nn.ReLU(),
        nn.Conv2d(32, 64, 3), nn.ReLU(),
        nn.MaxPool2d(2), nn.Dropout(0.25), nn.Flatten(),
        nn.Linear(9216, 128), nn.ReLU(), nn.Dropout(0.5),
        nn.Linear(128, 10),  # softmax folded into the loss, as Strata folds it
    )


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default="data/mnist")
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--windows", type=int, default=5)
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    torch.manual_seed(1)
    dev = torch.device(args.device)
    x = torch.from_numpy(read_idx(f"{args.data}/train-images-idx3-ubyte").astype(np.float32) / 255.0)
    x = x.unsqueeze(1).to(dev)
    y = torch.from_numpy(read_idx(f"{args.data}/train-labels-idx1-ubyte").astype(np.int64)).to(dev)
    model = keras_mnist_cnn().to(dev)
    opt = torch.optim.Adadelta(model.parameters(), lr=1.0, rho=0.95, eps=1e-7)
    loss_fn = nn.CrossEntropyLoss()
    bs = args.batch_size
    batches = x.shape[0] // bs
    step = [0]

    def sync():
        if dev.type == "cuda":
            torch.cuda.synchronize()

    def train(n):
        model.train()
        for _ in range(n):
            i = step[0] % batches
            step[0] += 1
            xb, yb = x[i * bs : (i + 1) * bs], y[i * bs : (i + 1) * bs]
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(model(xb), yb)
            loss.backward()
            opt.step()
        sync()

    def infer(n):
        model.eval()
        with torch.no_grad():
            for j in range(n):
                i = j % batches
                torch.softmax(model(x[i * bs : (i + 1) * bs]), dim=1).cpu()
        sync()

    t = time.perf_counter()
    train(3)
    steps = max(3, min(200, int(1.0 / ((time.perf_counter() - t) / 3)) + 1))
    rates = []
    for _ in range(args.windows):
        t = time.perf_counter()
        train(steps)
        rates.append(steps * bs / (time.perf_counter() - t))
    infer(2)
    irates = []
    for _ in range(args.windows):
        t = time.perf_counter()
        infer(steps * 3)
        irates.append(steps * 3 * bs / (time.perf_counter() - t))
    print(f"pytorch: version={torch.__version__} threads={torch.get_num_threads()} device={dev}")
    print(f"pytorch: train_images_per_s={statistics.median(rates):.1f}")
    print(f"pytorch: infer_images_per_s={statistics.median(irates):.1f}")
    print(f"pytorch: peak_host_mib={resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.1f}")


if __name__ == "__main__":
    main()
