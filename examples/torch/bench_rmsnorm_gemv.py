#!/usr/bin/env python3
"""examples/torch/bench_rmsnorm_gemv.py — READ ME FIRST

Issue #14, point 5: RMSNorm fused into the coded GEMV's activation staging
(ecq_torch/csrc/rmsnorm_gemv.hpp) against the unfused pair, on CPU.

Per shape, scheme and token count, the median time of one normalised GEMV
  fused      coded.rmsnorm_gemv(x, g, eps)              one kernel
  pair       coded.gemv(ecq_torch.rmsnorm(x, g, eps))   the norm kernel, then the GEMV
  torch+gemv coded.gemv(torch RMSNorm expression)       what a PyTorch model does unfused
The three run in turn within each round, so a neighbour's load on a shared
machine falls on all of them alike; the median over rounds is reported.
Weights: seeded Gaussian, std 1/sqrt(cols). Before timing, fused and pair
are checked against the float64 product of W and rmsnorm(x) with ecq::gemv's
documented bound (they sum in different orders where ecq::gemv has a
dedicated loop for the scheme).

  python3 bench_rmsnorm_gemv.py [--threads 1] [--rounds 15] [--schemes bf16,affine4-g64] [--tokens 1,8]
"""
import argparse
import platform
import statistics
import time

import torch

import ecq_torch

SHAPES = [  # (name, rows, cols)
    ("stories260K wq", 64, 64),
    ("stories260K w1", 172, 64),
    ("1024 x 1024", 1024, 1024),
    ("Llama-3-8B wq", 4096, 4096),
]

parser = argparse.ArgumentParser()
parser.add_argument("--threads", type=int, default=1)
parser.add_argument("--rounds", type=int, default=15)
parser.add_argument("--schemes", default="bf16,affine4-g64")
parser.add_argument("--tokens", default="1,8")
args = parser.parse_args()
torch.set_num_threads(args.threads)


def torch_rmsnorm(x, g, eps):
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * g


def timed(f, repeat):
    start = time.perf_counter()
    for _ in range(repeat):
        f()
    return (time.perf_counter() - start) / repeat


def cpu_name():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


gen = torch.Generator().manual_seed(5)
print(f"# {cpu_name()}, torch {torch.__version__}, {args.threads} thread(s), median of {args.rounds} rounds")
header = "| weight | rows x cols | scheme | tokens | fused (us) | pair (us) | torch norm + gemv (us) | pair / fused |"
print(header)
print("|" + "---|" * 8)
eps = 1e-5
for name, rows, cols in SHAPES:
    w = torch.randn(rows, cols, generator=gen) / cols ** 0.5
    g = 1.0 + 0.1 * torch.randn(cols, generator=gen)
    for scheme in args.schemes.split(","):
        coded = ecq_torch.CodedTensor.encode(w, scheme, "storage")
        w_coded = coded.decode_float()
        for tokens in (int(t) for t in args.tokens.split(",")):
            x = torch.randn(tokens, cols, generator=gen)
            variants = {
                "fused": lambda: coded.rmsnorm_gemv(x, g, eps),
                "pair": lambda: coded.gemv(ecq_torch.rmsnorm(x, g, eps)),
                "torch": lambda: coded.gemv(torch_rmsnorm(x, g, eps)),
            }
            staged = ecq_torch.rmsnorm(x, g, eps)
            exact = staged.double() @ w_coded.double().t()
            bound = cols * 2.0 ** -24 * (staged.double().abs() @ w_coded.double().abs().t())
            for k in ("fused", "pair"):
                if not bool(((variants[k]().double() - exact).abs() <= bound).all()):
                    raise SystemExit(f"{name} {scheme} {tokens} tokens: {k} exceeds the documented error bound")
            once = timed(variants["pair"], 1)
            repeat = max(1, int(0.01 / max(once, 1e-7)))  # ~10 ms per sample
            samples = {k: [] for k in variants}
            for _ in range(args.rounds):
                for k, f in variants.items():
                    samples[k].append(timed(f, repeat))
            med = {k: statistics.median(v) * 1e6 for k, v in samples.items()}
            print(f"| {name} | {rows} x {cols} | {scheme} | {tokens} | {med['fused']:.1f} | {med['pair']:.1f} | "
                  f"{med['torch']:.1f} | {med['pair'] / med['fused']:.3f} |", flush=True)
