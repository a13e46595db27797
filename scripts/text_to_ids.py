#!/usr/bin/python3
"""Turns a text corpus into id sequences for Strata's text models (issue 15, point 4).

Input: a manifest, one document per line, `LABEL<TAB>PATH` (PATH relative to the manifest's
folder), LABEL a class number 0..255. Each document is read as UTF-8 (bad bytes replaced); with
--body, only what follows its first empty line (an e-mail's body, without its headers).

Tokens, as Keras' TextVectorization with its defaults: the text lowercased (ASCII letters only, so
`strata predict --vocabulary` gives the same tokens byte for byte), the ASCII punctuation
!"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~ removed, split on whitespace.

Outputs, in --out:
  vocabulary.txt   the vocabulary, one token per line; line k (from 0) is id k. Line 0 is empty
                   (id 0: padding, what `embedding: {mask_zero: true}` masks), line 1 is [UNK]
                   (id 1: every token not in the vocabulary), then the --max-tokens - 2 most
                   frequent tokens of the training documents, most frequent first (ties in
                   alphabetical order).
  train-ids.idx    int32 ids (IDX type 0x0C), documents x --length: each document's first
                   --length tokens, padded with 0 at the end (Keras' output_sequence_length).
  train-labels.idx the labels (IDX type 0x08), one byte per document.
  test-ids.idx, test-labels.idx: the same for the test documents.
The split is fixed: the documents of each label in manifest order, every --test-every-th one
(default 5th: 20%) goes to the test set.

usage: scripts/text_to_ids.py MANIFEST --out DIR [--max-tokens 20000] [--length 200] [--body]
                              [--test-every 5]
"""
import argparse
import collections
import os
import re
import struct
import sys

PUNCTUATION = re.compile(rb"[!\"#$%&'()*+,\-./:;<=>?@\[\\\]^_`{|}~]")


def tokens(raw, body):
    """The tokens of a document's bytes, as `strata predict --vocabulary` splits them."""
    if body:
        cut = re.search(rb"\r?\n\r?\n", raw)
        raw = raw[cut.end():] if cut else b""
    lowered = bytes(c + 32 if 65 <= c <= 90 else c for c in raw)
    return PUNCTUATION.sub(b"", lowered).split()


def write_idx(path, kind, dims, payload):
    with open(path, "wb") as f:
        f.write(struct.pack(">HBB", 0, kind, len(dims)))
        f.write(struct.pack(">" + "I" * len(dims), *dims))
        f.write(payload)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("manifest")
    ap.add_argument("--out", required=True)
    ap.add_argument("--max-tokens", type=int, default=20000)
    ap.add_argument("--length", type=int, default=200)
    ap.add_argument("--test-every", type=int, default=5)
    ap.add_argument("--body", action="store_true")
    args = ap.parse_args()
    if args.max_tokens < 3 or args.length < 1 or args.test_every < 2:
        sys.exit("text_to_ids.py: --max-tokens must be 3 or more, --length 1 or more, --test-every 2 or more")
    base = os.path.dirname(os.path.abspath(args.manifest))
    docs = {"train": [], "test": []}
    seen = collections.Counter()
    with open(args.manifest, encoding="utf-8") as f:
        for line_no, line in enumerate(f, 1):
            line = line.rstrip("\n")
            if not line:
                continue
            label, sep, path = line.partition("\t")
            if not sep or not label.isdigit() or int(label) > 255:
                sys.exit(f"{args.manifest}:{line_no}: expected LABEL<TAB>PATH with a label 0..255")
            with open(os.path.join(base, path), "rb") as doc:
                toks = tokens(doc.read(), args.body)
            label = int(label)
            part = "test" if seen[label] % args.test_every == args.test_every - 1 else "train"
            seen[label] += 1
            docs[part].append((label, toks))
    counts = collections.Counter(t for _, toks in docs["train"] for t in toks)
    vocab = [b"", b"[UNK]"] + [t for t, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))]
    vocab = vocab[: args.max_tokens]
    index = {t: i for i, t in enumerate(vocab) if i > 1}
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "vocabulary.txt"), "wb") as f:
        f.write(b"".join(t + b"\n" for t in vocab))
    for part, items in docs.items():
        ids = bytearray()
        for _, toks in items:
            row = [index.get(t, 1) for t in toks[: args.length]]
            row += [0] * (args.length - len(row))
            ids += struct.pack(">" + "i" * args.length, *row)
        write_idx(os.path.join(args.out, part + "-ids.idx"), 0x0C, (len(items), args.length), bytes(ids))
        write_idx(os.path.join(args.out, part + "-labels.idx"), 0x08, (len(items),),
                  bytes(label for label, _ in items))
        print(f"{part}: {len(items)} documents, labels {dict(sorted(collections.Counter(l for l, _ in items).items()))}")
    print(f"vocabulary: {len(vocab)} ids ({len(counts)} distinct training tokens)")


if __name__ == "__main__":
    main()
