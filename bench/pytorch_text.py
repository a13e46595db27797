#!/usr/bin/python3
"""models/spam_bigru.yaml in PyTorch, for issue 15's text proof.

The same network on the same files (scripts/fetch-spam.sh): nn.Embedding(20000, 64) initialized
U(-0.05, 0.05) as Keras' Embedding; a bidirectional nn.GRU of 32 units per direction with Keras'
initializers (glorot_uniform kernels, orthogonal recurrent kernels, zero biases; PyTorch's GRU is
Keras' with reset_after) reading each document's real tokens only (pack_padded_sequence: with the
padding at the end, exactly what Keras' mask gives the final states); the two final states
concatenated, dropout 0.3, Linear(64, 2) with the softmax folded into the cross-entropy; Adam with
Keras' defaults, batch 32, shuffled every epoch. Prints after each epoch
"pytorch: epoch=E test_accuracy=A train_docs_per_s=R seconds=S".

usage: bench/pytorch_text.py [--data data/spam] [--epochs 5] [--threads 2] [--seed 1]
"""
import argparse
import time

import numpy as np
import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence

from idx import read_idx  # bench/idx.py


class BiGRU(nn.Module):
    def __init__(self, vocab=20000, dim=64, units=32, classes=2):
        super().__init__()
        self.emb = nn.Embedding(vocab, dim)
        self.gru = nn.GRU(dim, units, batch_first=True, bidirectional=True)
        self.drop = nn.Dropout(0.3)
        self.out = nn.Linear(2 * units, classes)
        with torch.no_grad():
            self.emb.weight.uniform_(-0.05, 0.05)
            limit = (6.0 / (dim + 3 * units)) ** 0.5
            for suffix in ("", "_reverse"):
                getattr(self.gru, "weight_ih_l0" + suffix).uniform_(-limit, limit)
                rec = torch.empty(units, 3 * units)
                nn.init.orthogonal_(rec)
                getattr(self.gru, "weight_hh_l0" + suffix).copy_(rec.t())
                getattr(self.gru, "bias_ih_l0" + suffix).zero_()
                getattr(self.gru, "bias_hh_l0" + suffix).zero_()
            limit = (6.0 / (2 * units + classes)) ** 0.5
            self.out.weight.uniform_(-limit, limit)
            self.out.bias.zero_()

    def forward(self, ids):
        lengths = (ids != 0).sum(1).clamp(min=1).cpu()
        packed = pack_padded_sequence(self.emb(ids), lengths, batch_first=True, enforce_sorted=False)
        _, h = self.gru(packed)
        return self.out(self.drop(torch.cat([h[0], h[1]], 1)))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default="data/spam")
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    x_train = torch.from_numpy(read_idx(f"{args.data}/train-ids.idx").astype(np.int64))
    y_train = torch.from_numpy(read_idx(f"{args.data}/train-labels.idx").astype(np.int64))
    x_test = torch.from_numpy(read_idx(f"{args.data}/test-ids.idx").astype(np.int64))
    y_test = torch.from_numpy(read_idx(f"{args.data}/test-labels.idx").astype(np.int64))
    model = BiGRU()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, eps=1e-7)
    loss_fn = nn.CrossEntropyLoss()
    gen = torch.Generator().manual_seed(args.seed)
    for epoch in range(1, args.epochs + 1):
        model.train()
        order = torch.randperm(len(x_train), generator=gen)
        start = time.perf_counter()
        for i in range(0, len(x_train), 32):
            idx = order[i : i + 32]
            opt.zero_grad(set_to_none=True)
            loss_fn(model(x_train[idx]), y_train[idx]).backward()
            opt.step()
        seconds = time.perf_counter() - start
        model.eval()
        with torch.no_grad():
            correct = sum((model(x_test[i : i + 256]).argmax(1) == y_test[i : i + 256]).sum().item()
                          for i in range(0, len(x_test), 256))
        print(f"pytorch: epoch={epoch} test_accuracy={correct / len(x_test):.4f} "
              f"train_docs_per_s={len(x_train) / seconds:.1f} seconds={seconds:.1f}", flush=True)


if __name__ == "__main__":
    main()
