#!/usr/bin/env python3
# bench/cuda/bf16_byte_split.py — READ ME FIRST
#
# The size side of issue #13's "byte-boundary bf16 split" lever (docs/cuda-notes.md): order-0 entropies of the
# large tensors (>= 2^18 weights, F32 rounded to bf16 to nearest even, or BF16) of a safetensors file, for
#   field split: the 8-bit exponent coded, sign + 7 mantissa bits raw (what the GPU layout does today, in pairs);
#   byte split:  the high byte (sign + the exponent's top 7 bits) coded, the low byte raw.
# Prints bits per weight (singles and pairs) and the largest pair probability of each (narrow decode entries need
# it <= 255 / 2^ScaleBits). Standard library only. Usage: bf16_byte_split.py FILE.safetensors
import array, collections, json, math, struct, sys
f = open(sys.argv[1], 'rb'); n = struct.unpack('<Q', f.read(8))[0]; hdr = json.loads(f.read(n)); base = 8 + n
used = 0; mx_e = 0.0; mx_h = 0.0; tot = 0; h_exp = 0.0; h_hi = 0.0; h_exp_pair = 0.0; h_hi_pair = 0.0; kinds = collections.Counter()
for name, t in hdr.items():
    if name == '__metadata__': continue
    kinds[t['dtype']] += 1
    cnt = 1
    for d in t['shape']: cnt *= d
    if t['dtype'] not in ('F32', 'BF16') or cnt < 1 << 18: continue
    f.seek(base + t['data_offsets'][0])
    if t['dtype'] == 'BF16':
        bf = array.array('H'); bf.frombytes(f.read(2 * cnt))
    else:
        a = array.array('I'); a.frombytes(f.read(4 * cnt))
        bf = [((u + 0x7fff + ((u >> 16) & 1)) >> 16) & 0xffff for u in a]  # round to nearest even (no NaNs here)
    hi = [v >> 8 for v in bf]
    e = [(v >> 7) & 0xff for v in bf]
    def H(c, m):
        return -sum(v / m * math.log2(v / m) for v in c.values())
    ce = collections.Counter(e); ch = collections.Counter(hi)
    cep = collections.Counter(zip(e[0::2], e[1::2])); chp = collections.Counter(zip(hi[0::2], hi[1::2]))
    h_exp += H(ce, cnt) * cnt; h_hi += H(ch, cnt) * cnt
    h_exp_pair += H(cep, cnt // 2) * cnt / 2; h_hi_pair += H(chp, cnt // 2) * cnt / 2
    tot += cnt
    used += 1
    mx_e = max(mx_e, max(cep.values()) / (cnt // 2)); mx_h = max(mx_h, max(chp.values()) / (cnt // 2))
print('dtypes', dict(kinds))
print('tensors used', used, 'weights', tot)
print('field split: H(exponent) + 8 raw = %.3f bits/weight; pairs %.3f' % (h_exp / tot + 8, h_exp_pair / tot + 8))
print('byte split:  H(high byte) + 8 raw = %.3f bits/weight; pairs %.3f' % (h_hi / tot + 8, h_hi_pair / tot + 8))
print('largest pair probability: exponent pairs %.4f, high-byte pairs %.4f' % (mx_e, mx_h))
