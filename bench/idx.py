"""IDX files (MNIST's format, and Strata's int32 ids) for the bench scripts beside this one.

read_idx(path) returns the array: unsigned bytes (type 0x08) as uint8, int32 ids (type 0x0C,
big-endian in the file) as int32. A file that is no IDX file of these types, or whose size does
not match its dimensions, raises ValueError naming it.
"""
import math
import struct

import numpy as np

_TYPES = {0x08: np.dtype(np.uint8), 0x0C: np.dtype(">i4")}


def read_idx(path):
    with open(path, "rb") as f:
        data = f.read()
    if len(data) < 4:
        raise ValueError(f"{path}: not an IDX file")
    zero, kind, rank = struct.unpack(">HBB", data[:4])
    if zero != 0 or kind not in _TYPES or len(data) < 4 + 4 * rank:
        raise ValueError(f"{path}: not an IDX file of bytes or int32 ids")
    dims = struct.unpack(">" + "I" * rank, data[4 : 4 + 4 * rank])
    dtype = _TYPES[kind]
    if len(data) != 4 + 4 * rank + math.prod(dims) * dtype.itemsize:
        raise ValueError(f"{path}: size does not match its dimensions {list(dims)}")
    array = np.frombuffer(data, dtype=dtype, offset=4 + 4 * rank).reshape(dims)
    return array.astype(np.int32) if kind == 0x0C else array
