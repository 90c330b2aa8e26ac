"""examples/torch/tests/torch_or_skip.py — READ ME FIRST

Imported first by every ecq_torch test: when PyTorch cannot be imported, the
test prints why and exits with 77, the code CMake registers as SKIP_RETURN_CODE,
so ctest counts it as skipped (with the reason in its output), not failed.
A machine without torch is a reason to skip; anything else is a failure.
"""
import sys

SKIP = 77

try:
    import torch  # noqa: F401
except ImportError as e:
    print(f"SKIP: PyTorch cannot be imported by {sys.executable} ({e}). "
          "Debian: apt-get install python3-torch (CI does this), or point ECQ_TORCH_PYTHON at an interpreter "
          "that has torch.")
    sys.exit(SKIP)
