#!/usr/bin/env python3
"""examples/torch/run_llama.py — READ ME FIRST

The example: a Llama (llama.py) on ecq-coded weights, from a llama2.c
safetensors file or an .ecq file this script saved; greedy tokens from BOS,
the compression report, tokens/s and the bytes the model holds.

  python3 run_llama.py WEIGHTS.safetensors [--n-heads 8] [--scheme affine4-g64] [--mode fused|cached|streamed]
                       [--steps 100] [--save OUT.ecq]
  python3 run_llama.py MODEL.ecq [--mode ...]          (a file --save wrote: the config travels in its metadata)
  python3 run_llama.py WEIGHTS.safetensors --device cuda [--scheme bf16|affine4-g64|g128|g256] [--mode ...]
                                                       (the CUDA path: the GPU layout, a LayerStreamer for streamed)

--scheme none runs the uncompressed float32 model. The weights are rounded
to bfloat16 before coding, so that --save can store the kept tensors
(norms, embeddings) losslessly; the token ids printed are ids (llama2.c's
stories260K needs its tok512 tokenizer to become text, which is not here).
"""
import argparse
import json
import time

import torch

import ecq_torch
import llama

CONFIG_KEY = "llama.config"

parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[1], formatter_class=argparse.RawTextHelpFormatter)
parser.add_argument("weights", help="llama2.c-layout .safetensors, or an .ecq file written by --save")
parser.add_argument("--n-heads", type=int, default=8, help="attention heads (safetensors input; stories260K: 8)")
parser.add_argument("--scheme", default="affine4-g64", help="ecq scheme for the Linear layers, or none")
parser.add_argument("--mode", default="fused", choices=ecq_torch.MODES)
parser.add_argument("--steps", type=int, default=100)
parser.add_argument("--save", help="write the compressed model to this .ecq file")
parser.add_argument("--device", default="cpu", help="cpu, or cuda (safetensors input; float32 compute, bf16 weights)")
args = parser.parse_args()

if args.weights.endswith(".ecq"):
    config = llama.LlamaConfig(**json.loads(ecq_torch.read_metadata(args.weights)[CONFIG_KEY]))
    model = llama.Llama(config)
    ecq_torch.load_model(model, args.weights, mode=args.mode)
    print(f"loaded {args.weights}: {config}")
else:
    model = llama.round_to_bf16(llama.load_llama2c_safetensors(args.weights, n_heads=args.n_heads))
    print(f"loaded {args.weights}: {model.config}")
    model.to(args.device)
    if args.scheme != "none":
        report = ecq_torch.compress_model(model, args.scheme, mode=args.mode, device=args.device)
        print(report.table())
streamer = None
if torch.device(args.device).type == "cuda" and args.mode == "streamed":
    streamer = ecq_torch.LayerStreamer(model.layers, args.device)  # copies each layer's coded bytes ahead of it

if args.save:
    ecq_torch.save_model(model, args.save, metadata={CONFIG_KEY: json.dumps(model.config.to_dict())})
    print(f"saved {args.save}")

start = time.time()
tokens, _ = model.generate_greedy(torch.tensor([[1]]), args.steps)
if torch.device(args.device).type == "cuda":
    torch.cuda.synchronize()
seconds = time.time() - start
print(f"tokens: {tokens[0].tolist()}")
print(f"{args.steps} tokens in {seconds:.2f} s ({args.steps / seconds:.0f} tokens/s, {torch.get_num_threads()} threads, "
      f"mode {args.mode}); the model holds {ecq_torch.model_bytes(model)} bytes")
