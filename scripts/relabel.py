#!/usr/bin/env python3
"""Writes an IDX label file whose labels are another's mapped through a table: a second target
for a model of two outputs. `relabel.py IN OUT 0 1 0 1 0 1 0 1 0 1` gives MNIST's parity (0 even,
1 odd). IDX: two zero bytes, the type (0x08, unsigned bytes), the rank, then each dimension as a
big-endian uint32 and the data."""
import struct
import sys


def main():
    if len(sys.argv) < 4:
        sys.exit("usage: relabel.py IN.idx OUT.idx NEW_LABEL_OF_0 NEW_LABEL_OF_1 ...")
    src, dst, table = sys.argv[1], sys.argv[2], [int(v) for v in sys.argv[3:]]
    if any(not 0 <= v <= 255 for v in table):
        sys.exit("relabel.py: every new label must be 0 to 255")
    with open(src, "rb") as f:
        data = f.read()
    if len(data) < 8 or data[0:3] != b"\0\0\x08" or data[3] != 1:
        sys.exit(f"relabel.py: {src} is not an IDX file of unsigned-byte labels (rank 1)")
    (count,) = struct.unpack(">I", data[4:8])
    labels = data[8:]
    if len(labels) != count:
        sys.exit(f"relabel.py: {src} declares {count} labels and holds {len(labels)}")
    bad = [v for v in set(labels) if v >= len(table)]
    if bad:
        sys.exit(f"relabel.py: {src} holds label {min(bad)}, the table maps 0 to {len(table) - 1}")
    with open(dst + ".tmp", "wb") as f:
        f.write(data[:8] + bytes(table[v] for v in labels))
    import os

    os.replace(dst + ".tmp", dst)


if __name__ == "__main__":
    main()
