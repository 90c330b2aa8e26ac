"""examples/torch/tests/build_extension.py — READ ME FIRST

The ctest fixture that compiles ecq_torch's C++ extension once (about a minute),
so the tests that need it do not race to build it. Prints where the module went.
"""
import time

import torch_or_skip  # noqa: F401  (exits 77 without torch)

start = time.time()
import ecq_torch  # noqa: E402  (compiles on first import)

print(f"ecq_torch extension: {ecq_torch._C.__file__} (ready in {time.time() - start:.1f} s)")
