#!/usr/bin/env python3
"""Writes the seed corpus of fuzz_weights into corpus/fuzz_weights/: small weights files (.stw,
format version 1 as src/checkpoint.h documents it) with and without optimizer state, and the
refusals the reader knows (bad magic, newer and zero versions, flags, truncation, trailing
bytes, a damaged checksum, duplicate names, a NUL in a name, zero and too many dimensions,
unknown kinds, a tensor count the file cannot hold). Run again after changing it."""
import os
import struct
import zlib

out = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'corpus', 'fuzz_weights')
os.makedirs(out, exist_ok=True)


def string(s):
    b = s.encode() if isinstance(s, str) else s
    return struct.pack('<I', len(b)) + b


def tensor(name, dims, kind=0, values=None):
    n = 1
    for d in dims:
        n *= d
    if values is None:
        values = [0.25 * (i % 7) - 0.5 for i in range(n)]
    return (string(name) + struct.pack('<II', kind, len(dims)) +
            b''.join(struct.pack('<Q', d) for d in dims) + struct.pack('<%df' % len(values), *values))


def body(tensors, model='tiny', optimizer='', version=1, flags=0, epoch=1, step=10, seed=1,
         iterations=10, count=None):
    return (b'STRATAW\0' + struct.pack('<IIQQQ', version, flags, epoch, step, seed) + string(model) +
            string(optimizer) + struct.pack('<QI', iterations, len(tensors) if count is None else count) +
            b''.join(tensors))


def put(name, data, crc=True):
    if crc:
        data += struct.pack('<I', zlib.crc32(data) & 0xffffffff)
    with open(os.path.join(out, name), 'wb') as f:
        f.write(data)


dense = [tensor('dense_1/kernel', [4, 3]), tensor('dense_1/bias', [3])]
conv = [tensor('conv2d_1/kernel', [3, 3, 1, 2]), tensor('conv2d_1/bias', [2])]
slots = [tensor('dense_1/kernel:accum_grad', [4, 3], kind=1), tensor('dense_1/bias:accum_grad', [3], kind=1),
         tensor('dense_1/kernel:accum_var', [4, 3], kind=1), tensor('dense_1/bias:accum_var', [3], kind=1)]

put('empty_model', body([]))
put('dense_weights', body(dense))
put('dense_adadelta', body(dense + slots, optimizer='adadelta'))
put('conv_dense', body(conv + dense, model='mnist_cnn'))
put('long_names', body([tensor('l' * 180 + '/kernel', [1])], model='m' * 127, optimizer='o' * 31))

good = body(dense)
put('bad_magic', b'STRATAX\0' + good[8:])
put('newer_version', body(dense, version=2))
put('version_zero', body(dense, version=0))
put('flags_set', body(dense, flags=1))
put('truncated', good[:len(good) // 2], crc=False)
put('truncated_header', good[:10], crc=False)
put('no_checksum', good, crc=False)
put('trailing_bytes', good + b'\0\0')
whole = good + struct.pack('<I', zlib.crc32(good) & 0xffffffff)
put('bad_checksum', whole[:-1] + bytes([whole[-1] ^ 1]), crc=False)
put('duplicate_name', body([tensor('dense_1/bias', [3]), tensor('dense_1/bias', [3])]))
put('nul_in_name', body([tensor(b'dense_1\0bias', [3])]))
put('empty_name', body([tensor('', [3])]))
put('zero_dim', body([tensor('a', [0, 3], values=[])]))
put('rank_five', body([tensor('a', [1, 1, 1, 1, 1])]))
put('unknown_kind', body([tensor('a', [2], kind=7)]))
put('count_too_large', body(dense, count=1000000))
put('dims_overflow', body([string('a') + struct.pack('<II', 0, 2) + struct.pack('<QQ', 2**63, 4)]))
put('model_name_too_long', body(dense, model='m' * 200))
