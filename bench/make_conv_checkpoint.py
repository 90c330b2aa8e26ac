#!/usr/bin/env python3
"""Writes a synthetic checkpoint shaped like a small convolutional network, for `ecq pack` / `ecq inspect`.

What such checkpoints hold besides matrices, as torchvision's ResNets and PaddlePaddle's exports name it: 4-D
convolution kernels [out, in, kh, kw], batch-norm weights, biases, running means and variances (one of them up
to ~1e8, beyond what binary16 scales and biases hold), num_batches_tracked (I64 scalars), a scalar F32 constant,
an I32 index tensor, and a 1000 x 512 classifier with its bias. Values are Gaussian (seeded: the file is the same
on every run); 608,308 weights.

Usage: bench/make_conv_checkpoint.py OUT.safetensors   (standard library only)
"""
import json
import random
import struct
import sys


def main(dst):
    rng = random.Random(15)
    tensors = []  # (name, dtype, shape, bytes)

    def f32(name, shape, scale, offset=0.0):
        n = 1
        for d in shape:
            n *= d
        values = [offset + scale * rng.gauss(0.0, 1.0) for _ in range(n)]
        tensors.append((name, 'F32', shape, struct.pack('<%df' % n, *values)))

    channels = [3, 32, 64, 128]
    for i in range(1, len(channels)):
        cin, cout = channels[i - 1], channels[i]
        f32('layer%d.conv.weight' % i, [cout, cin, 3, 3], (2.0 / (cin * 9)) ** 0.5)
        f32('layer%d.bn.weight' % i, [cout], 0.1, 1.0)
        f32('layer%d.bn.bias' % i, [cout], 0.05)
        f32('layer%d.bn.running_mean' % i, [cout], 0.5)
        f32('layer%d.bn.running_var' % i, [cout], 0.3, 1.0)
        tensors.append(('layer%d.bn.num_batches_tracked' % i, 'I64', [], struct.pack('<q', 1000 * i)))
    # A PaddlePaddle-style batch norm whose variance (w_2) reaches ~1e8, the case of issue #15.
    f32('batch_norm_0.w_0', [128], 0.1, 1.0)
    f32('batch_norm_0.w_1', [128], 1.0e3)
    f32('batch_norm_0.w_2', [128], 3.0e7, 5.0e7)
    f32('fc.weight', [1000, 512], 0.02)
    f32('fc.bias', [1000], 0.01)
    f32('logit_scale', [], 1.0, 2.6)
    tensors.append(('class_ids', 'I32', [1000], struct.pack('<1000i', *range(1000))))

    header, offset = {}, 0
    for name, dtype, shape, data in tensors:
        header[name] = {'dtype': dtype, 'shape': shape, 'data_offsets': [offset, offset + len(data)]}
        offset += len(data)
    text = json.dumps(header, separators=(',', ':')).encode()
    text += b' ' * (-len(text) % 8)
    with open(dst, 'wb') as f:
        f.write(struct.pack('<Q', len(text)))
        f.write(text)
        for _, _, _, data in tensors:
            f.write(data)


if __name__ == '__main__':
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(sys.argv[1])
