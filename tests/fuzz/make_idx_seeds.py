#!/usr/bin/env python3
"""Writes the seed corpus of fuzz_idx into corpus/fuzz_idx/: small IDX files of every element
type and rank 1 to 3, plain and gzip; the first images and labels of MNIST when data/mnist has
them; and the refusals the reader knows (truncated, trailing bytes, bad magic, type, rank,
overflowing dimensions, damaged gzip). Run again after changing it; the files are committed."""
import gzip
import os
import struct
import sys

root = os.path.dirname(os.path.abspath(__file__))
out = os.path.join(root, 'corpus', 'fuzz_idx')
os.makedirs(out, exist_ok=True)

# type code: (struct format, sample values)
types = {0x08: ('B', [0, 1, 127, 255]), 0x09: ('b', [-128, -1, 0, 127]),
         0x0B: ('h', [-32768, -2, 3, 32767]), 0x0C: ('i', [-2**31, -1, 5, 2**31 - 1]),
         0x0D: ('f', [0.0, -1.5, 3.25, 1e30]), 0x0E: ('d', [0.0, -2.5, 1e-300, 1e300])}


def idx(type_code, dims, values=None, pad=b''):
    fmt, sample = types[type_code]
    n = 1
    for d in dims:
        n *= d
    if values is None:
        values = [sample[i % len(sample)] for i in range(n)]
    head = bytes([0, 0, type_code, len(dims)]) + b''.join(struct.pack('>I', d) for d in dims)
    return head + struct.pack('>%d%s' % (len(values), fmt), *values) + pad


def put(name, data, gz=False):
    if gz:
        data = gzip.compress(data, compresslevel=6, mtime=0)
        name += '.gz'
    with open(os.path.join(out, name), 'wb') as f:
        f.write(data)


for code in types:
    for dims in ([3], [2, 3], [2, 2, 2]):
        name = 'type%02x_rank%d' % (code, len(dims))
        put(name, idx(code, dims))
        if len(dims) == 2:
            put(name, idx(code, dims), gz=True)

good = idx(0x08, [2, 3])
put('truncated_data', good[:-2])
put('truncated_header', good[:6])
put('truncated_magic', good[:3])
put('trailing_bytes', good + b'\x00\x01')
put('bad_magic', b'\x01\x00' + good[2:])
put('bad_type', bytes([0, 0, 0x0A]) + good[3:])
put('rank_zero', bytes([0, 0, 0x08, 0]))
put('rank_nine', bytes([0, 0, 0x08, 9]) + b'\x00\x00\x00\x01' * 9)
put('huge_dims', bytes([0, 0, 0x0E, 3]) + b'\xff\xff\xff\xff' * 3)
put('claims_gigabytes', bytes([0, 0, 0x08, 2]) + struct.pack('>II', 65536, 65536) + b'\x00' * 8)
put('zero_dim', bytes([0, 0, 0x08, 2]) + struct.pack('>II', 0, 5))
put('empty', b'')
put('truncated_data', good[:-2], gz=True)
put('trailing_bytes', good + b'\x00', gz=True)
z = gzip.compress(good, mtime=0)
put('gzip_cut_short', z[:len(z) // 2])
put('gzip_bad_crc', z[:-8] + bytes([z[-8] ^ 0xff]) + z[-7:])
put('gzip_two_members', gzip.compress(good[:7], mtime=0) + gzip.compress(good[7:], mtime=0))
put('gzip_trailing_garbage', z + b'garbage')

mnist = os.path.join(root, '..', '..', 'data', 'mnist')
for name, n, per in (('t10k-images-idx3-ubyte', 2, 28 * 28), ('t10k-labels-idx1-ubyte', 8, 1)):
    path = os.path.join(mnist, name)
    if not os.path.exists(path):
        print('make_idx_seeds.py: no %s, skipped' % path, file=sys.stderr)
        continue
    with open(path, 'rb') as f:
        data = f.read()
    rank = data[3]
    head = bytearray(data[:4 + 4 * rank])
    head[4:8] = struct.pack('>I', n)
    put('mnist_' + name.split('-')[1], bytes(head) + data[4 + 4 * rank:4 + 4 * rank + n * per])
