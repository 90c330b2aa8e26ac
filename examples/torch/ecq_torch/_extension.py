"""examples/torch/ecq_torch/_extension.py — READ ME FIRST

Builds and loads the C++ half of ecq_torch (csrc/bindings.cpp) with
torch.utils.cpp_extension.load: compiled on first import against the torch in
use and cached, so no setup.py step is needed and the module always matches
the interpreter's torch.

Where things are found:
  ECQ_INCLUDE_DIR       ecq's include/ folder; default: the repository's, three
                        levels above this package (examples/torch/ecq_torch/)
  ECQ_TORCH_BUILD_DIR   where the build and the compiled module go; default:
                        torch's own cache (~/.cache/torch_extensions/...)
  ECQ_TORCH_VERBOSE=1   print the compiler commands

The flags: C++17 (ecq's language level; torch 1.13 would otherwise add
-std=c++14) and -O2. No -march flag: ecq picks its SIMD path at run time.
"""
import os
import pathlib

import torch.utils.cpp_extension as cpp_extension

_PACKAGE_DIR = pathlib.Path(__file__).resolve().parent
_SOURCES = [_PACKAGE_DIR / "csrc" / "bindings.cpp"]
_HEADERS = sorted((_PACKAGE_DIR / "csrc").glob("*.hpp"))


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
    headers = list(_HEADERS) + list((include / "ecq").rglob("*.hpp"))
    stamp = max(int(h.stat().st_mtime) for h in headers)
    return cpp_extension.load(
        name="ecq_torch_C",
        sources=[str(s) for s in _SOURCES],
        extra_include_paths=[str(include)],
        extra_cflags=["-std=c++17", "-O2", f"-DECQ_TORCH_HEADERS_STAMP={stamp}"],
        build_directory=build_dir,
        verbose=os.environ.get("ECQ_TORCH_VERBOSE") == "1",
    )
