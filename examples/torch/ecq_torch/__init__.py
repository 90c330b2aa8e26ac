"""examples/torch/ecq_torch — READ ME FIRST

PyTorch on ecq's entropy-coded weights (issue #14). The C++ half
(csrc/bindings.cpp) is compiled on first import by _extension.py, against the
torch in use (about a minute; then cached).

  CodedTensor                  one ecq container: encode / from_bytes / decode / gemv
  EcqLinear                    an nn.Linear on a coded weight, modes fused / cached / streamed, CPU or CUDA
                               (linear.py); gpu_linear: the CUDA path's matmul numerics
  LayerStreamer, StreamedLinear  weights streamed from pinned host memory, layer by layer (streaming.py)
  compress_model, set_mode     swap a model's Linear layers, with a keep policy and a byte report (compress.py)
  save_model, load_model       a model through one .ecq file (compress.py)
  read_safetensors, read_ecq, write_ecq   files, through ecq's own readers and writer
  rmsnorm                      the unfused RMSNorm kernel, baseline of the fused one

A Llama that runs on it: examples/torch/llama.py.
"""
from ._extension import load as _load

_C = _load()
CodedTensor = _C.CodedTensor
read_safetensors = _C.read_safetensors
read_ecq = _C.read_ecq
write_ecq = _C.write_ecq
rmsnorm = _C.rmsnorm

from .linear import EcqLinear, FUSED_MAX_TOKENS, MODES, gpu_linear  # noqa: E402  (needs _C)
from .streaming import LayerStreamer, StreamedLinear  # noqa: E402
from .compress import (CompressionReport, compress_model, load_model, model_bytes, read_metadata,  # noqa: E402
                       save_model, set_mode)

__all__ = ["CodedTensor", "EcqLinear", "FUSED_MAX_TOKENS", "MODES", "gpu_linear", "LayerStreamer", "StreamedLinear", "CompressionReport", "compress_model",
           "load_model", "model_bytes", "read_metadata", "save_model", "set_mode", "read_safetensors", "read_ecq",
           "write_ecq", "rmsnorm"]
