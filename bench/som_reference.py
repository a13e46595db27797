#!/usr/bin/python3
"""The NumPy reference of Strata's self-organizing map (plugins/som/som.c), for issue 15's proof.

The same update rule, initial codebook and sample order as `strata train models/mnist_som.yaml`:
  - samples in file order (the model's shuffle: false, MiniSom's default), batches of B;
  - the codebook initialized from the first batch by pca: the mean plus a and b (evenly spaced over
    [-1, 1] along the columns and the rows) times the two first principal components, each scaled
    by its standard deviation; the components by the same power iteration as the device (the same
    start vector, 64 iterations, the sign that makes the largest element positive);
  - per batch: each sample's best-matching unit (the nearest, the first of equal distances) from
    the codebook before the step, then W[j] += lr(t) / B * sum_i h(bmu_i, j; sigma(t)) (x_i - W[j])
    with a gaussian neighbourhood on a rectangular grid and the asymptotic decay x / (1 + 2t/T),
    T the run's steps.
Then the test set's quantization error, topographic error (MiniSom's: the two best units not among
the 8 around each other) and purity (each unit's most frequent label), as `strata eval` reports them.
In float32, as the device computes.

usage: bench/som_reference.py [--data DIR] [--rows 10] [--columns 10] [--sigma 3] [--learning-rate 0.5]
                              [--epochs N] [--batch-size N] [--save CODEBOOK.npy]
"""
import argparse
import time

import numpy as np

from idx import read_idx  # bench/idx.py


def start_vector(f):
    """som_start: a hash of the index, in [-0.5, 0.5)."""
    k = np.arange(f, dtype=np.uint64)
    return (((k * 2654435761) & 0xFFFFFFFF) >> 8).astype(np.float32) / np.float32(16777216.0) - np.float32(0.5)


def normalize(v):
    big = v[np.argmax(np.abs(v))]
    return (v / np.linalg.norm(v) * (-1 if big < 0 else 1)).astype(np.float32)


def component(xc, prev, iterations=64):
    v = start_vector(xc.shape[1])
    for _ in range(iterations):
        v = xc.T @ (xc @ v)
        if prev is not None:
            v = v - np.dot(v, prev) * prev
        v = normalize(v)
    return v, float(np.linalg.norm(xc.T @ (xc @ v)))


def pca_codebook(x, rows, columns):
    mean = x.mean(axis=0, dtype=np.float32)
    xc = x - mean
    v1, l1 = component(xc, None)
    v2, l2 = component(xc, v1)
    n = x.shape[0]
    s1, s2 = np.sqrt(l1 / (n - 1)), np.sqrt(l2 / (n - 1))
    a = np.linspace(-1, 1, columns) if columns > 1 else np.zeros(1)
    b = np.linspace(-1, 1, rows) if rows > 1 else np.zeros(1)
    w = mean + (a[None, :, None] * s1 * v1) + (b[:, None, None] * s2 * v2)
    return w.reshape(rows * columns, -1).astype(np.float32)


def distances2(x, w):
    return np.maximum((x * x).sum(1)[:, None] + (w * w).sum(1)[None, :] - 2 * x @ w.T, 0)


def train(w, x, rows, columns, sigma0, lr0, epochs, batch):
    pos = np.stack([np.arange(rows * columns) % columns, np.arange(rows * columns) // columns], 1).astype(np.float32)
    batches = (len(x) + batch - 1) // batch
    total = epochs * batches
    t = 0
    for _ in range(epochs):
        for start in range(0, len(x), batch):
            xb = x[start : start + batch]
            n = len(xb)
            decay = 1 + 2 * min(t, total) / total
            sigma, rate = np.float32(sigma0 / decay), np.float32(lr0 / decay / n)
            bmu = distances2(xb, w).argmin(1)
            d = pos[None, :, :] - pos[bmu][:, None, :]
            h = np.exp(-(d ** 2).sum(2) / (2 * sigma * sigma)).astype(np.float32)  # n x units
            w = w * (1 - rate * h.sum(0))[:, None] + rate * (h.T @ xb)
            t += 1
    return w


def figures(w, x, labels, columns):
    d = np.sqrt(distances2(x, w))
    order = np.argsort(d, axis=1, kind="stable")
    best, second = order[:, 0], order[:, 1]
    qe = d[np.arange(len(x)), best].mean()
    rb, cb, rs, cs = best // columns, best % columns, second // columns, second % columns
    te = ((np.abs(rb - rs) > 1) | (np.abs(cb - cs) > 1)).mean()
    counts = np.zeros((w.shape[0], labels.max() + 1), dtype=np.int64)
    np.add.at(counts, (best, labels), 1)
    return qe, te, counts.max(1).sum() / len(x), int((counts.sum(1) > 0).sum())


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default="data/mnist")
    p.add_argument("--rows", type=int, default=10)
    p.add_argument("--columns", type=int, default=10)
    p.add_argument("--sigma", type=float, default=3.0)
    p.add_argument("--learning-rate", type=float, default=0.5)
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--save", help="write the trained codebook (units x features) as .npy")
    a = p.parse_args()
    x = read_idx(f"{a.data}/train-images-idx3-ubyte").reshape(60000, -1).astype(np.float32) / np.float32(255)
    xt = read_idx(f"{a.data}/t10k-images-idx3-ubyte").reshape(10000, -1).astype(np.float32) / np.float32(255)
    yt = read_idx(f"{a.data}/t10k-labels-idx1-ubyte").astype(np.int64)
    w = pca_codebook(x[: a.batch_size], a.rows, a.columns)
    start = time.perf_counter()
    w = train(w, x, a.rows, a.columns, a.sigma, a.learning_rate, a.epochs, a.batch_size)
    seconds = time.perf_counter() - start
    qe, te, purity, used = figures(w, xt, yt, a.columns)
    if a.save:
        np.save(a.save, w)
    print(f"numpy: quantization_error={qe:.4f} topographic_error={te:.4f} purity={purity:.4f} units_used={used} "
          f"seconds={seconds:.1f} train_images_per_s={a.epochs * len(x) / seconds:.0f}")


if __name__ == "__main__":
    main()
