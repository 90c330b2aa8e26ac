"""examples/torch/ecq_torch/_extension.py — READ ME FIRST

Builds and loads the C++ half of ecq_torch (csrc/bindings.cpp) with
torch.utils.cpp_extension.load: compiled on first import against the torch in
use and cached, so no setup.py step is needed and the module always matches
the interpreter's torch.

CUDA: when torch was built with CUDA (torch.version.cuda) and nvcc is found
(CUDA_HOME), the module is the CUDA build, ecq_torch_cuda_C: bindings.cpp
with ECQ_TORCH_CUDA defined (GpuImage, csrc/gpu_tensor.hpp) plus the CUDA
sources csrc/gpu_*.cu (compiled in parallel). Its architectures are torch's:
TORCH_CUDA_ARCH_LIST (e.g. 9.0 for an H100/H200), else the visible GPUs'.
MAX_JOBS sets the parallel compile jobs. ECQ_TORCH_CUDA=0 forces the CPU build.

Where things are found:
  ECQ_INCLUDE_DIR       ecq's include/ folder; default: the repository's, three
                        levels above this package (examples/torch/ecq_torch/)
  ECQ_TORCH_BUILD_DIR   where the build and the compiled module go; default:
                        torch's own cache (~/.cache/torch_extensions/...)
  ECQ_TORCH_VERBOSE=1   print the compiler commands

The flags: C++17 under torch 1.x (ecq's language level; torch 1.13 would
otherwise add -std=c++14; torch 2 picks at least C++17 itself) and -O2. No
-march flag: ecq picks its SIMD path at run time.
"""
import os
import pathlib

import torch
import torch.utils.cpp_extension as cpp_extension

_PACKAGE_DIR = pathlib.Path(__file__).resolve().parent
_SOURCES = [_PACKAGE_DIR / "csrc" / "bindings.cpp"]
_CUDA_SOURCES = sorted((_PACKAGE_DIR / "csrc").glob("gpu_*.cu"))  # gpu_ops.cu and one gpu_fused_*.cu per dequantiser
_HEADERS = sorted((_PACKAGE_DIR / "csrc").glob("*.hpp")) + sorted((_PACKAGE_DIR / "csrc").glob("*.cuh"))


def cuda_build():
    """Whether load() builds the CUDA module (see the module docstring)."""
    if os.environ.get("ECQ_TORCH_CUDA") == "0":
        return False
    return torch.version.cuda is not None and cpp_extension.CUDA_HOME is not None


def _include_dir():
    include = pathlib.Path(os.environ.get("ECQ_INCLUDE_DIR", _PACKAGE_DIR.parents[2] / "include"))
    if not (include / "ecq" / "ecq.hpp").is_file():
        raise ImportError(
            f"ecq_torch: ecq's headers are not at {include} (no ecq/ecq.hpp there); "
            "set ECQ_INCLUDE_DIR to ecq's include/ folder")
    return include


def load():
    """The compiled extension module (built on first use, then cached)."""
    include = _include_dir()
    build_dir = os.environ.get("ECQ_TORCH_BUILD_DIR")
    if build_dir:
        os.makedirs(build_dir, exist_ok=True)
    # ecq's headers are dependencies of the build: a changed header must rebuild the module. cpp_extension only
    # tracks the sources and the flags, so the headers' newest modification time goes into the flags.
    headers = list(_HEADERS) + list((include / "ecq").rglob("*.hpp")) + list((include / "ecq").rglob("*.cuh"))
    stamp = max(int(h.stat().st_mtime) for h in headers)
    std = ["-std=c++17"] if int(torch.__version__.split(".")[0]) < 2 else []
    cflags = std + ["-O2", f"-DECQ_TORCH_HEADERS_STAMP={stamp}"]
    cuda = cuda_build()
    return cpp_extension.load(
        name="ecq_torch_cuda_C" if cuda else "ecq_torch_C",
        sources=[str(s) for s in _SOURCES + (_CUDA_SOURCES if cuda else [])],
        extra_include_paths=[str(include)],
        extra_cflags=cflags + (["-DECQ_TORCH_CUDA"] if cuda else []),
        extra_cuda_cflags=std + ["-O3", f"-DECQ_TORCH_HEADERS_STAMP={stamp}"],
        with_cuda=cuda,
        build_directory=build_dir,
        verbose=os.environ.get("ECQ_TORCH_VERBOSE") == "1",
    )
