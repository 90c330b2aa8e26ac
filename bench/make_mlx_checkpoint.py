#!/usr/bin/env python3
"""Writes an MLX-style 4-bit checkpoint (group 64) of a float32 safetensors file, for `ecq pack --mlx-bits 4`.

Every 2-D F32 tensor whose columns are a multiple of 64 becomes an MLX triplet: X.weight (U32, eight 4-bit
codes per word, code j of a word in bits [4j, 4j + 4)), X.scales and X.biases (F16, one per group of 64),
quantised as MLX's affine mode does it: scale = (max - min) / 15 and bias = min per group, both rounded to
F16, q = round((w - bias) / scale) clamped to [0, 15]. Other tensors are left out, so the file holds only
quantised weights and its size is exactly 4.5 bits per weight.

Usage: bench/make_mlx_checkpoint.py IN.safetensors OUT.safetensors   (standard library only)
"""
import json
import struct
import sys
from array import array

GROUP = 64


def to_f16(x):
    return struct.unpack('<e', struct.pack('<e', x))[0]


def f16_bits(x):
    return struct.unpack('<H', struct.pack('<e', x))[0]


def main(src, dst):
    blob = open(src, 'rb').read()
    n = struct.unpack('<Q', blob[:8])[0]
    header = json.loads(blob[8:8 + n])
    data = blob[8 + n:]
    out = {}
    for name, t in header.items():
        if name == '__metadata__' or t['dtype'] != 'F32' or len(t['shape']) != 2 or t['shape'][1] % GROUP:
            continue
        rows, cols = t['shape']
        begin, end = t['data_offsets']
        w = array('f')
        w.frombytes(data[begin:end])
        groups = rows * cols // GROUP
        words = array('I', [0]) * (rows * cols // 8)
        scales = array('H', [0]) * groups
        biases = array('H', [0]) * groups
        for g in range(groups):
            x = w[g * GROUP:(g + 1) * GROUP]
            lo, hi = min(x), max(x)
            scale = to_f16((hi - lo) / 15 if hi > lo else 1.0)
            bias = to_f16(lo)
            scales[g], biases[g] = f16_bits(scale), f16_bits(bias)
            for j, v in enumerate(x):
                q = min(15, max(0, int(round((v - bias) / scale))))
                i = g * GROUP + j
                words[i // 8] |= q << (4 * (i % 8))
        stem = name[:-len('.weight')] if name.endswith('.weight') else name
        out[stem + '.weight'] = ('U32', [rows, cols // 8], words.tobytes())
        out[stem + '.scales'] = ('F16', [rows, cols // GROUP], scales.tobytes())
        out[stem + '.biases'] = ('F16', [rows, cols // GROUP], biases.tobytes())
    entries, offset, payload = {}, 0, bytearray()
    for key, (dtype, shape, raw) in out.items():
        entries[key] = {'dtype': dtype, 'shape': shape, 'data_offsets': [offset, offset + len(raw)]}
        offset += len(raw)
        payload += raw
    head = json.dumps(entries).encode()
    with open(dst, 'wb') as f:
        f.write(struct.pack('<Q', len(head)) + head + bytes(payload))
    print(f'{dst}: {len(out) // 3} MLX triplets, {offset * 8 // 9 * 2} weights, {offset} bytes of tensors')


if __name__ == '__main__':
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2])
