#!/usr/bin/env python3
"""examples/torch/bench_llama_gpu.py — READ ME FIRST

Issue #14 point 4 on a GPU: a Llama-3-8B-shaped model (32 layers, dim 4096,
32 heads, 8 KV heads, ffn 14336, vocab 128256, untied output) through
llama.py on ecq_torch's CUDA path, greedy decoding from BOS.

Weights: synthetic, with trained-model statistics (Student-t with 4 degrees
of freedom, std 1/sqrt(fan-in), as llama.synthetic_llama and the issue #12
benchmarks make them; norm weights around 1). ONE decoder layer is generated
and encoded (ecq encodes on the host, 16 tensors at a time on threads), and
its bytes are reused for all 32 layers; every layer still gets its own copy in
device (or pinned host) memory, so sizes and bandwidth are the full model's.
The output layer and the embedding are generated in full.

Part 1, the table: each model at batch 1 and 8, decode steps captured as a
CUDA graph (llama.GraphedStep; a step's embedding lookup and argmax run
outside it), tokens/s = batch x steps / time of `--steps` steps after
`--warmup` (CUDA events), and peak GPU memory = torch.cuda.max_memory_allocated
over the resident model and one batch's run, the load's own peak beside it
(torch's allocator holds every tensor here:
weights, images, KV cache, activations; the CUDA context and cuBLAS's
workspace are outside it):
  bf16            torch nn.Linear (cuBLAS), uncompressed
  ecq bf16 fused  every Linear (the output layer too) EcqLinear(bf16, fused)
  ecq bf16 cached the same, decoded on the GPU at load into bf16 weights
  ecq 4-bit fused affine4-g128 (bfloat16 scale and bias), fused
Part 2, --budget-gb B (12): the model under a GPU memory budget, enforced with
torch.cuda.set_per_process_memory_fraction. The bytes are counted first; the
embedding stays on the host in both rows (one row looked up per token), which
the counts say why. ecq bf16 fused, resident if it fits (else an error says
so), against the bf16 model with the layers that do not fit streamed from
pinned host memory (StreamedLinear + LayerStreamer, eager: hooks do not run in
a graph); ecq bf16 also eager, so the two rows run the same way.
--json PATH writes every row.
"""
import argparse
import gc
import json
import math
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import torch
from torch import nn

import ecq_torch
import llama

parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[1])
parser.add_argument("--layers", type=int, default=32)
parser.add_argument("--steps", type=int, default=32, help="timed decode steps")
parser.add_argument("--warmup", type=int, default=4)
parser.add_argument("--budget-gb", type=float, default=12.0, help="part 2's GPU memory budget (0: skip part 2)")
parser.add_argument("--budget-steps", type=int, default=8)
parser.add_argument("--json")
args = parser.parse_args()

DEVICE = torch.device("cuda", torch.cuda.current_device())
BOS = 1
GB = 1e9
config = llama.LlamaConfig(dim=4096, n_layers=args.layers, n_heads=32, n_kv_heads=8, vocab_size=128256,
                           hidden_dim=14336, max_seq_len=args.warmup + args.steps + 1, rope_theta=500000.0,
                           tie_embeddings=False)
kv_dim = config.n_kv_heads * config.head_dim
SHAPES = {"attention.wq": (config.dim, config.dim), "attention.wk": (kv_dim, config.dim),
          "attention.wv": (kv_dim, config.dim), "attention.wo": (config.dim, config.dim),
          "feed_forward.w1": (config.hidden_dim, config.dim), "feed_forward.w2": (config.dim, config.hidden_dim),
          "feed_forward.w3": (config.hidden_dim, config.dim)}
rows = []
print(f"{torch.cuda.get_device_name(DEVICE)}, torch {torch.__version__}; {config}", flush=True)


def student_t(shape, g):
    """bf16 weights, Student-t (4 dof) with std 1/sqrt(fan-in), made on the GPU, returned on the host."""
    chi2 = torch.randn((4,) + tuple(shape), generator=g, device=DEVICE).pow(2).mean(0)
    w = torch.randn(shape, generator=g, device=DEVICE) / chi2.sqrt() / math.sqrt(2.0 * shape[-1])
    return w.to(torch.bfloat16).cpu()


t0 = time.time()
g = torch.Generator(device=DEVICE).manual_seed(14)
layer_weights = {name: student_t(shape, g) for name, shape in SHAPES.items()}
output_weight = student_t((config.vocab_size, config.dim), g)
embedding = student_t((config.vocab_size, config.dim), g)
norms = (1.0 + 0.1 * torch.randn(2 * config.n_layers + 1, config.dim, generator=g, device=DEVICE)).to(torch.bfloat16).cpu()
print(f"weights generated in {time.time() - t0:.1f} s", flush=True)

t0 = time.time()
SCHEMES = ("bf16", "affine4-g128")
jobs = [(s, n) for s in SCHEMES for n in list(SHAPES) + ["output"]]


def encode(job):
    scheme, name = job
    w = output_weight if name == "output" else layer_weights[name]
    return ecq_torch.CodedTensor.encode(w.float(), scheme, "gpu")


with ThreadPoolExecutor(16) as pool:
    coded = dict(zip(jobs, pool.map(encode, jobs)))
layer_weights_count = sum(w.numel() for w in layer_weights.values())
for s in SCHEMES:
    layer_bytes = sum(coded[(s, n)].nbytes for n in SHAPES)
    print(f"{s}: one layer {layer_bytes / GB:.3f} GB coded ({8 * layer_bytes / layer_weights_count:.3f} bits/weight), "
          f"output {coded[(s, 'output')].nbytes / GB:.3f} GB; encoded in {time.time() - t0:.1f} s", flush=True)


def set_param(model, name, value):
    module_name, _, leaf = name.rpartition(".")
    setattr(model.get_submodule(module_name) if module_name else model, leaf, nn.Parameter(value, requires_grad=False))


def build(kind, embedding_device=DEVICE, streamed_from=None):
    """kind: 'bf16' (streamed_from: layers from that index on are StreamedLinear), or (scheme, mode)."""
    prev = torch.get_default_dtype()
    torch.set_default_dtype(torch.bfloat16)
    with torch.device("meta"):
        model = llama.Llama(config)
    torch.set_default_dtype(prev)
    set_param(model, "tok_embeddings.weight", embedding.to(embedding_device))
    set_param(model, "norm.weight", norms[-1].to(DEVICE))
    for i, block in enumerate(model.layers):
        set_param(block, "attention_norm.weight", norms[2 * i].to(DEVICE))
        set_param(block, "ffn_norm.weight", norms[2 * i + 1].to(DEVICE))
        for name in SHAPES:
            if kind == "bf16" and streamed_from is not None and i >= streamed_from:
                _replace(block, name, ecq_torch.StreamedLinear(layer_weights[name]))
            elif kind == "bf16":
                set_param(block, name + ".weight", layer_weights[name].to(DEVICE))
            else:
                _replace(block, name, ecq_torch.EcqLinear(coded[(kind[0], name)], mode=kind[1], device=DEVICE))
    if kind == "bf16":
        set_param(model, "output.weight", output_weight.to(DEVICE))
    else:
        model.output = ecq_torch.EcqLinear(coded[(kind[0], "output")], mode=kind[1], device=DEVICE)
    for n, t in list(model.named_parameters()):
        assert not t.is_meta, n
    return model


def _replace(block, name, module):
    parent, _, child = name.rpartition(".")
    setattr(block.get_submodule(parent), child, module)


def free():
    gc.collect()
    torch.cuda.synchronize()
    torch.cuda.empty_cache()


def timed_graph(model, batch):
    step = llama.GraphedStep(model, batch)
    tokens = torch.full((batch, 1), BOS, dtype=torch.long, device=DEVICE)
    first = None
    for p in range(args.warmup):
        logits = step.step(tokens, p)
        if p == 0:
            first = logits[:, -1].float().clone()
        tokens = logits[:, -1].argmax(-1, keepdim=True)
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    for p in range(args.warmup, args.warmup + args.steps):
        tokens = step.step(tokens, p)[:, -1].argmax(-1, keepdim=True)
    end.record()
    end.synchronize()
    return start.elapsed_time(end) / args.steps, first


def timed_eager(model, batch, steps):
    cache = model.new_cache(batch)
    tokens = torch.full((batch, 1), BOS, dtype=torch.long, device=DEVICE)
    for p in range(2):
        tokens = model(tokens, cache, p)[:, -1].argmax(-1, keepdim=True)
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    for p in range(2, 2 + steps):
        tokens = model(tokens, cache, p)[:, -1].argmax(-1, keepdim=True)
    end.record()
    end.synchronize()
    return start.elapsed_time(end) / steps


def weights_on_device(model):
    seen, total = set(), 0
    for t in model.parameters():
        if t.is_cuda and id(t) not in seen:
            seen.add(id(t))
            total += t.numel() * t.element_size()
    return total + sum(m.resident_bytes() for m in model.modules() if isinstance(m, ecq_torch.EcqLinear))


# ---- part 1 ----
VARIANTS = [("bf16 (torch nn.Linear)", "bf16"), ("ecq bf16 lossless, fused", ("bf16", "fused")),
            ("ecq bf16 lossless, cached", ("bf16", "cached")), ("ecq 4-bit affine g128, fused", ("affine4-g128", "fused"))]
reference_first = None
for label, kind in VARIANTS:
    free()
    torch.cuda.reset_peak_memory_stats()
    t0 = time.time()
    model = build(kind)
    load_s = time.time() - t0
    weights = weights_on_device(model)
    load_peak = torch.cuda.max_memory_allocated()
    for batch in (1, 8):
        free()
        torch.cuda.reset_peak_memory_stats()  # the peak from here: the model resident plus this batch's run
        ms, first = timed_graph(model, batch)
        free()
        peak = torch.cuda.max_memory_allocated()
        if batch == 1:
            if reference_first is None:
                reference_first = first
            diff = ((first - reference_first).abs().max() / reference_first.abs().max()).item()
        row = {"part": "table", "model": label, "batch": batch, "ms_per_step": ms,
               "tokens_per_s": batch * 1000.0 / ms, "peak_gpu_gb": peak / GB, "weights_gpu_gb": weights / GB,
               "load_s": load_s, "load_peak_gpu_gb": load_peak / GB, "first_logits_rel_diff_vs_bf16": diff}
        rows.append(row)
        print(f"{label:<32} batch {batch}: {ms:7.3f} ms/step, {row['tokens_per_s']:8.1f} tokens/s, peak "
              f"{peak / GB:6.2f} GB (weights {weights / GB:.2f} GB), load {load_s:.1f} s, first-step logits vs bf16 "
              f"{diff:.2g}", flush=True)
    del model

# ---- part 2 ----
if args.budget_gb > 0:
    free()
    total = torch.cuda.get_device_properties(DEVICE).total_memory
    budget = args.budget_gb * GB
    layer_bf16 = sum(w.numel() * 2 for w in layer_weights.values())
    layer_ecq = sum(coded[("bf16", n)].gpu_image().nbytes for n in SHAPES)
    emb_bytes = embedding.numel() * 2
    out_bf16, out_ecq = output_weight.numel() * 2, coded[("bf16", "output")].gpu_image().nbytes
    kv = 2 * config.n_layers * config.max_seq_len * kv_dim * 2
    counts = {"budget_gb": budget / GB, "embedding_gb": emb_bytes / GB, "kv_cache_batch1_gb": kv / GB,
              "bf16_model_gb": (config.n_layers * layer_bf16 + out_bf16 + emb_bytes) / GB,
              "ecq_bf16_model_gb": (config.n_layers * layer_ecq + out_ecq + emb_bytes) / GB,
              "ecq_bf16_without_embedding_gb": (config.n_layers * layer_ecq + out_ecq) / GB,
              "bf16_layer_gb": layer_bf16 / GB, "ecq_bf16_layer_gb": layer_ecq / GB}
    reserve = 0.5 * GB  # activations, logits, graph pools: what part 1's peaks show beyond weights + KV
    resident = int((budget - reserve - kv - out_bf16 - 2 * layer_bf16) // layer_bf16)
    resident = max(0, min(config.n_layers, resident))
    counts["bf16_resident_layers"] = resident
    counts["reserve_gb"] = reserve / GB
    print("counts (GB): " + ", ".join(f"{k} {v:.3f}" if isinstance(v, float) else f"{k} {v}" for k, v in counts.items()),
          flush=True)
    torch.cuda.set_per_process_memory_fraction(budget / total, DEVICE)
    for label, kind, streamed_from in (("ecq bf16 fused, embedding on host", ("bf16", "fused"), None),
                                       (f"bf16, embedding on host, layers {resident}-{config.n_layers - 1} streamed",
                                        "bf16", resident)):
        free()
        torch.cuda.reset_peak_memory_stats()
        try:
            model = build(kind, embedding_device="cpu", streamed_from=streamed_from)
            streamer = ecq_torch.LayerStreamer(model.layers[resident:], DEVICE) if streamed_from is not None else None
            for batch in (1, 8):
                eager = timed_eager(model, batch, args.budget_steps)
                graphed = None if streamer is not None else timed_graph(model, batch)[0]
                free()
                peak = torch.cuda.max_memory_allocated()
                row = {"part": "budget", "model": label, "batch": batch, "eager_ms_per_step": eager,
                       "eager_tokens_per_s": batch * 1000.0 / eager, "graph_ms_per_step": graphed,
                       "graph_tokens_per_s": None if graphed is None else batch * 1000.0 / graphed,
                       "peak_gpu_gb": peak / GB, "fits": True,
                       "streamer_buffers_gb": 0.0 if streamer is None else streamer.device_bytes / GB,
                       "streamer_host_gb": 0.0 if streamer is None else streamer.host_bytes() / GB}
                rows.append(row)
                print(f"{label:<52} batch {batch}: eager {eager:8.2f} ms/step ({row['eager_tokens_per_s']:.1f} tokens/s)"
                      + ("" if graphed is None else f", graph {graphed:.2f} ms/step ({row['graph_tokens_per_s']:.1f} tokens/s)")
                      + f", peak {peak / GB:.2f} GB", flush=True)
            if streamer is not None:
                streamer.remove()
            del model, streamer
        except torch.cuda.OutOfMemoryError as e:
            rows.append({"part": "budget", "model": label, "fits": False, "error": str(e)[:300]})
            print(f"{label}: does not fit {budget / GB:.0f} GB: {str(e)[:200]}", flush=True)
    rows.append({"part": "budget_counts", **counts})

if args.json:
    with open(args.json, "w") as f:
        json.dump({"device": torch.cuda.get_device_name(DEVICE), "torch": torch.__version__, "config": config.to_dict(),
                   "weights": "synthetic Student-t (4 dof), one decoder layer generated and encoded, its bytes reused "
                              "for all layers (each its own copy); output and embedding generated in full",
                   "steps": args.steps, "warmup": args.warmup, "rows": rows}, f, indent=1)
