#!/usr/bin/env python3
"""examples/torch/sensitivity_bf16_inputs.py — READ ME FIRST

How much a Llama's logits move when its projections' outputs move a little,
with every projection rounding its input to bf16 as ecq_torch's CUDA path
does (gpu_linear): the tolerance tests/test_cuda_path.py puts on the fused
GEMV's logits comes from here. On the CPU: the model (stories260K by default)
rounded to bf16, float32 compute; each projection computes
F.linear(bf16(x), W) + eps * (|bf16(x)| @ |W|^T) * N(0, 1) (seeded), 100
greedy tokens from BOS against eps = 0.

  python3 sensitivity_bf16_inputs.py [WEIGHTS.safetensors] [--n-heads 8]
"""
import argparse
import copy

import torch
import torch.nn.functional as F
from torch import nn

import llama

parser = argparse.ArgumentParser()
parser.add_argument("weights", nargs="?", default="../../../shared/data/stories260K.safetensors")
parser.add_argument("--n-heads", type=int, default=8)
args = parser.parse_args()


class NoisyLinear(nn.Module):
    def __init__(self, weight):
        super().__init__()
        self.weight, self.eps, self.generator = weight.detach(), 0.0, None

    def forward(self, x):
        xb = x.to(torch.bfloat16).float()
        y = F.linear(xb, self.weight)
        if self.eps == 0.0:
            return y
        return y + self.eps * F.linear(xb.abs(), self.weight.abs()) * torch.randn(y.shape, generator=self.generator)


model = llama.round_to_bf16(llama.load_llama2c_safetensors(args.weights, n_heads=args.n_heads))
for name, layer in list(model.named_modules()):
    if isinstance(layer, nn.Linear) and layer.weight is not model.tok_embeddings.weight:
        parent, _, child = name.rpartition(".")
        setattr(model.get_submodule(parent) if parent else model, child, NoisyLinear(layer.weight))
ref_tokens, ref_logits = (t[0] for t in model.generate_greedy(torch.tensor([[1]]), 100))
for eps in (1e-7, 1e-6, 1e-5, 1e-4):
    noisy = copy.deepcopy(model)
    g = torch.Generator().manual_seed(1)
    for layer in noisy.modules():
        if isinstance(layer, NoisyLinear):
            layer.eps, layer.generator = eps, g
    tokens, logits = (t[0] for t in noisy.generate_greedy(torch.tensor([[1]]), 100))
    first = next((i for i in range(100) if tokens[i] != ref_tokens[i]), None)
    err = (logits - ref_logits).abs().max().item()
    print(f"eps {eps:g}: tokens {'equal' if first is None else f'differ from step {first}'}, max |logit difference| "
          f"{err:.3g} = {err / ref_logits.abs().max().item():.3g} x max |logit|")
