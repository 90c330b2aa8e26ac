"""examples/torch/ecq_torch/linear.py — READ ME FIRST

EcqLinear: an nn.Linear whose weight is an ecq container (entropy-coded,
quantised or lossless), with three decode modes, the names of the design ecq
grew from:

  fused     the weight stays coded. Up to FUSED_MAX_TOKENS (8) tokens, forward
            is ecq::gemv: decode -> dequantise -> dot in one pass, weights
            never stored. Above that, a GEMM beats a GEMV per token, so the
            weight is decoded into a transient float32 tensor and multiplied
            with torch (the dispatch fused-kernel projects use).
  cached    decoded once, when the mode is set; forward is F.linear on the
            float32 weight (speed of an uncompressed layer, memory of one).
  streamed  the weight stays coded and is decoded on every use, into a
            transient tensor that is freed after the layer ran; layer by
            layer, so a model holds its coded bytes plus one layer decoded.
            On the CPU the decode runs on the same cores as the matmul, so
            there is no transfer to overlap: nothing is prefetched.

Numerics: cached and streamed compute exactly F.linear(x, W) with W the
container's dequantised weights (decode_float is ecq::dequantize bit for
bit). fused accumulates in float32 in ecq::gemv's order; its error against
the float64 product of the same W and x is at most
cols * 2^-24 * sum_c |W[r][c] x[c]| per output (ecq/cpu/tensor_ops.hpp).
fused_error_bound() computes that bound.

Made from an nn.Linear and a scheme name (from_linear), from a tensor of an
.ecq file (from_ecq), or from a CodedTensor; saved with save() as a one-tensor
.ecq file. A bias stays an uncompressed float32 parameter.
"""
import torch
import torch.nn.functional as F
from torch import nn

from . import _C

FUSED_MAX_TOKENS = 8
MODES = ("fused", "cached", "streamed")


class EcqLinear(nn.Module):
    """y = x W^T + b with W held as an ecq container (see the module docstring)."""

    def __init__(self, coded, bias=None, mode="fused"):
        super().__init__()
        if not isinstance(coded, _C.CodedTensor):
            raise TypeError(f"EcqLinear needs an ecq_torch.CodedTensor, got {type(coded).__name__}")
        self.coded = coded
        self.in_features = coded.cols
        self.out_features = coded.rows
        if bias is not None:
            bias = torch.as_tensor(bias, dtype=torch.float32).detach().reshape(-1)
            if bias.numel() != self.out_features:
                raise ValueError(f"EcqLinear: bias has {bias.numel()} values, the weight {self.out_features} rows")
            self.bias = nn.Parameter(bias.clone(), requires_grad=False)
        else:
            self.register_parameter("bias", None)
        self._cached = None
        self.mode = None
        self.set_mode(mode)

    # -- construction ------------------------------------------------------------------------------------------
    @classmethod
    def from_linear(cls, linear, scheme, layout="storage", mode="fused"):
        """Codes linear.weight with `scheme` (e.g. "bf16", "affine4-g64"); layout "storage" or "kernel"."""
        if not isinstance(linear, nn.Linear):
            raise TypeError(f"EcqLinear.from_linear needs an nn.Linear, got {type(linear).__name__}")
        coded = _C.CodedTensor.encode(linear.weight.detach().float(), scheme, layout)
        return cls(coded, None if linear.bias is None else linear.bias.detach(), mode)

    @classmethod
    def from_ecq(cls, path, name, bias=None, mode="fused"):
        """The tensor `name` of the .ecq file at `path`; it must be 2-D [out_features, in_features]."""
        tensors, _ = _C.read_ecq(str(path))
        for tensor_name, _dtype, shape, coded in tensors:
            if tensor_name != name:
                continue
            if len(shape) != 2 or coded is None:
                raise ValueError(f"{path}: tensor {name!r} has shape {shape}; EcqLinear needs a 2-D, non-empty weight")
            return cls(coded, bias, mode)
        raise KeyError(f"{path}: no tensor named {name!r} (it has {[t[0] for t in tensors]})")

    def save(self, path, name="weight"):
        """Writes the coded weight as the one tensor `name` of an .ecq file (the bias is not stored)."""
        _C.write_ecq(str(path), [(name, "F32", [self.out_features, self.in_features], self.coded)], [])

    # -- modes -------------------------------------------------------------------------------------------------
    def set_mode(self, mode):
        if mode not in MODES:
            raise ValueError(f"EcqLinear: mode must be one of {MODES}, got {mode!r}")
        self.mode = mode
        self._cached = self.coded.decode_float() if mode == "cached" else None

    def resident_bytes(self):
        """Bytes the weight holds between calls: the container, plus the float32 copy in cached mode."""
        extra = 0 if self._cached is None else self._cached.numel() * self._cached.element_size()
        return self.coded.nbytes + extra

    def fuses(self, tokens):
        """Whether forward runs the fused GEMV for this many tokens."""
        return self.mode == "fused" and tokens <= FUSED_MAX_TOKENS

    # -- forward -----------------------------------------------------------------------------------------------
    def forward(self, x):
        x2 = x.reshape(-1, self.in_features).float()
        if self.fuses(x2.shape[0]):
            y = self.coded.gemv(x2)
        else:
            y = F.linear(x2, self._weight())
        return self._finish(y, x.shape)

    def forward_rmsnorm(self, x, norm_weight, eps):
        """self(rmsnorm(x)) with rmsnorm(x) = x / sqrt(mean(x^2) + eps) * norm_weight; in fused mode, up to
        FUSED_MAX_TOKENS tokens, the norm is applied while the GEMV stages its activations (csrc/rmsnorm_gemv.hpp)."""
        x2 = x.reshape(-1, self.in_features).float()
        if self.fuses(x2.shape[0]):
            y = self.coded.rmsnorm_gemv(x2, norm_weight, eps)
        else:
            y = F.linear(_C.rmsnorm(x2, norm_weight, eps), self._weight())
        return self._finish(y, x.shape)

    def fused_error_bound(self, x):
        """Per output, the bound on |fused - exact| of ecq::gemv for activations x [tokens, in_features]."""
        w = self.coded.decode_float().double()
        return self.in_features * 2.0 ** -24 * (x.double().abs() @ w.abs().t())

    def _weight(self):
        return self._cached if self._cached is not None else self.coded.decode_float()

    def _finish(self, y, shape):
        if self.bias is not None:
            y = y + self.bias
        return y.reshape(*shape[:-1], self.out_features)

    def extra_repr(self):
        return (f"in_features={self.in_features}, out_features={self.out_features}, scheme={self.coded.scheme}, "
                f"mode={self.mode}, coded_bytes={self.coded.nbytes}")
