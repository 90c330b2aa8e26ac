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

CUDA (device="cuda" in from_linear or to_device; needs the CUDA build of the
extension, _C.has_cuda, and a container in the GPU layout: scheme bf16 or
affine4-g64|g128|g256, layout "gpu"). The weight goes through ecq's device
loader (GpuImage: checked on the host, then its bytes copied with torch, into
torch's allocator) and every kernel runs on torch's current stream:
  fused     the image stays in device memory; up to 8 tokens the fused
            decode -> dequantise -> dot GEMV (bf16 activations, float32
            accumulation), above that decode to a transient bf16 weight and
            torch's matmul (cuBLAS).
  cached    decoded on the GPU once, when the mode is set, into a bf16 weight
            (the image is then freed): torch's matmul, a bf16 layer's memory.
  streamed  the image stays in pinned host memory; a LayerStreamer
            (streaming.py) copies it into a device buffer ahead of its layer
            (double-buffered, on a side stream), and forward runs the fused
            GEMV (<= 8 tokens) or decode + matmul on those bytes.
The GPU layout takes whole 256-column chunks: a layer with another width is
coded with its columns padded (cyclically repeated weights, so the symbol
statistics stay the layer's; their activations are zeros, so they add exact
zeros) and in_features is the real width.
Numerics on CUDA: y = W bf16(x) accumulated in float32, in x's dtype:
gpu_linear() below, which the decode paths use and a reference model can
use too (a float32 x is rounded to bf16 at the matmul input: what the fused
kernel reads). The scheme-9 (affine) decode rounds scale * code + bias to
bf16, the fused GEMV does not: cached and decoded layers compute with the
dequantised weights rounded to bf16, fused ones with them unrounded.
"""
import torch
import torch.nn.functional as F
from torch import nn

from . import _C

FUSED_MAX_TOKENS = 8
MODES = ("fused", "cached", "streamed")
GPU_CHUNK_COLUMNS = 256  # the GPU layout's column chunk (ecq/gpu_layout.hpp)


def gpu_linear(x, w):
    """x @ w^T as the CUDA path computes it: w bf16 [out, in], x rounded to bf16, float32 accumulation, x's dtype."""
    w = w.to(torch.bfloat16)
    if x.dtype == torch.bfloat16:
        return F.linear(x, w)
    return F.linear(x.to(torch.bfloat16).to(x.dtype), w.to(x.dtype))


def _pad_columns(weight, columns):
    """weight [out, in] widened to `columns` by repeating its columns cyclically (see the module docstring)."""
    extra = columns - weight.shape[1]
    if extra == 0:
        return weight
    index = torch.arange(extra, device=weight.device) % weight.shape[1]
    return torch.cat([weight, weight[:, index]], dim=1)


class EcqLinear(nn.Module):
    """y = x W^T + b with W held as an ecq container (see the module docstring)."""

    def __init__(self, coded, bias=None, mode="fused", in_features=None, device="cpu"):
        super().__init__()
        if not isinstance(coded, _C.CodedTensor):
            raise TypeError(f"EcqLinear needs an ecq_torch.CodedTensor, got {type(coded).__name__}")
        self.coded = coded
        self.in_features = coded.cols if in_features is None else int(in_features)
        if not 0 < self.in_features <= coded.cols:
            raise ValueError(f"EcqLinear: in_features {self.in_features} must be in [1, {coded.cols}] (the container's "
                             "columns, padding included)")
        self.out_features = coded.rows
        self.device = torch.device("cpu")
        self._gpu = None          # GpuImage (CUDA)
        self._flags = None        # int32 [1] on the device: decode stream checks
        self._device_bytes = None  # fused on CUDA: the image in device memory
        self._host_bytes = None   # streamed on CUDA: the image in pinned host memory
        self._stream_bytes = None  # streamed on CUDA: where a LayerStreamer put it for this use
        if bias is not None:
            bias = torch.as_tensor(bias, dtype=torch.float32).detach().reshape(-1)
            if bias.numel() != self.out_features:
                raise ValueError(f"EcqLinear: bias has {bias.numel()} values, the weight {self.out_features} rows")
            self.bias = nn.Parameter(bias.clone(), requires_grad=False)
        else:
            self.register_parameter("bias", None)
        self._cached = None
        self.mode = mode
        self.to_device(device)

    # -- construction ------------------------------------------------------------------------------------------
    @classmethod
    def from_linear(cls, linear, scheme, layout="storage", mode="fused", device="cpu"):
        """Codes linear.weight with `scheme` (e.g. "bf16", "affine4-g64"); layout "storage" or "kernel", or "gpu"
        (the CUDA kernels' layout, padded to whole 256-column chunks; the layout on a CUDA device)."""
        if not isinstance(linear, nn.Linear):
            raise TypeError(f"EcqLinear.from_linear needs an nn.Linear, got {type(linear).__name__}")
        weight = linear.weight.detach().float().cpu()
        if torch.device(device).type == "cuda":
            layout = "gpu"
        if layout == "gpu":
            columns = -(-weight.shape[1] // GPU_CHUNK_COLUMNS) * GPU_CHUNK_COLUMNS
            weight = _pad_columns(weight, columns)
        coded = _C.CodedTensor.encode(weight.contiguous(), scheme, layout)
        bias = None if linear.bias is None else linear.bias.detach().cpu()
        return cls(coded, bias, mode, in_features=linear.in_features, device=device)

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

    @property
    def padded(self):
        """Whether the container has more columns than the layer (GPU layout padding)."""
        return self.in_features != self.coded.cols

    def save(self, path, name="weight"):
        """Writes the coded weight as the one tensor `name` of an .ecq file (the bias is not stored)."""
        if self.padded:
            raise ValueError(f"EcqLinear.save: the container has {self.coded.cols} columns for {self.in_features} "
                             "in_features (GPU layout padding), which an .ecq file's shape cannot say")
        _C.write_ecq(str(path), [(name, "F32", [self.out_features, self.in_features], self.coded)], [])

    # -- modes -------------------------------------------------------------------------------------------------
    @property
    def is_cuda(self):
        return self.device.type == "cuda"

    def to_device(self, device):
        """Moves the layer to `device` ("cpu" or a CUDA device) in its mode (see the module docstring)."""
        device = torch.device(device)
        if device.type == "cuda":
            if not getattr(_C, "has_cuda", False):
                raise RuntimeError("EcqLinear: the ecq_torch extension was built without CUDA (torch.version.cuda is "
                                   f"{torch.version.cuda!r}; see ecq_torch/_extension.py)")
            if not self.coded.gpu_layout:
                raise ValueError(f"EcqLinear: {self.coded.scheme} is not in the GPU layout; code the layer with "
                                 "device='cuda' (layout 'gpu': bf16 or affine4-g64|g128|g256)")
            if device.index is None:
                device = torch.device("cuda", torch.cuda.current_device())
        elif device.type != "cpu":
            raise ValueError(f"EcqLinear: no path for device {device}")
        self.device = device
        if self.bias is not None:
            self.bias.data = self.bias.data.to(device)
        self.set_mode(self.mode)
        return self

    def set_mode(self, mode):
        if mode not in MODES:
            raise ValueError(f"EcqLinear: mode must be one of {MODES}, got {mode!r}")
        self.mode = mode
        self._cached = self._device_bytes = self._host_bytes = self._stream_bytes = None
        if not self.is_cuda:
            self._cached = self.coded.decode_float()[:, :self.in_features] if mode == "cached" else None
            return
        if self._gpu is None:
            self._gpu = self.coded.gpu_image()
            self._flags = torch.zeros(1, dtype=torch.int32, device=self.device)
        if mode == "streamed":
            self._host_bytes = self._gpu.host_bytes(pinned=True)
            return
        on_device = self._gpu.host_bytes(pinned=False).to(self.device)
        if mode == "fused":
            self._device_bytes = on_device
            return
        weight = self._gpu.decode(on_device, self._flags)
        _C.check_flags(self._flags)
        self._cached = weight[:, :self.in_features].contiguous() if self.padded else weight

    def resident_bytes(self):
        """Bytes the weight holds between calls: on the CPU the container, plus the float32 copy in cached mode; on
        CUDA the device's: the image (fused), the bf16 weight (cached), nothing (streamed: see host_bytes)."""
        cached = 0 if self._cached is None else self._cached.numel() * self._cached.element_size()
        if self.is_cuda:
            return cached + (0 if self._device_bytes is None else self._device_bytes.numel())
        return self.coded.nbytes + cached

    def fuses(self, tokens):
        """Whether forward runs the fused GEMV for this many tokens."""
        return tokens <= FUSED_MAX_TOKENS and (self.mode == "fused" or (self.mode == "streamed" and self.is_cuda))

    def norm_fuses(self, tokens):
        """Whether forward_rmsnorm runs the norm inside the fused GEMV (the CPU path's; see forward_rmsnorm)."""
        return self.fuses(tokens) and not self.is_cuda

    # -- streaming (CUDA; driven by streaming.LayerStreamer) ----------------------------------------------------
    def stream_host_bytes(self):
        """The pinned host bytes a LayerStreamer copies for this layer (streamed mode on CUDA), else None."""
        return self._host_bytes

    def attach_stream_bytes(self, device_bytes):
        """The device copy of stream_host_bytes() that the next forward uses (a LayerStreamer's buffer)."""
        self._stream_bytes = device_bytes

    # -- forward -----------------------------------------------------------------------------------------------
    def forward(self, x):
        if self.is_cuda:
            return self._forward_cuda(x)
        x2 = x.reshape(-1, self.in_features).float()
        if self.fuses(x2.shape[0]):
            y = self.coded.gemv(x2)
        else:
            y = F.linear(x2, self._weight())
        return self._finish(y, x.shape)

    def forward_rmsnorm(self, x, norm_weight, eps):
        """self(rmsnorm(x)) with rmsnorm(x) = x / sqrt(mean(x^2) + eps) * norm_weight; on the CPU in fused mode, up to
        FUSED_MAX_TOKENS tokens, the norm is applied while the GEMV stages its activations (csrc/rmsnorm_gemv.hpp).
        On CUDA the norm runs first, in torch (the GPU kernels have no fused norm)."""
        if self.is_cuda:
            h = x.float()
            h = h * torch.rsqrt(h.pow(2).mean(-1, keepdim=True) + eps) * norm_weight.float()
            return self(h.to(x.dtype))
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
        return self._cached if self._cached is not None else self.coded.decode_float()[:, :self.in_features]

    def _forward_cuda(self, x):
        if x.device != self.device:
            raise ValueError(f"EcqLinear on {self.device} got x on {x.device}")
        x2 = x.reshape(-1, self.in_features)
        if self.mode == "cached":
            return self._finish(gpu_linear(x2, self._cached), x.shape)
        base = self._device_bytes if self.mode == "fused" else self._stream_bytes
        if base is None:
            raise RuntimeError("EcqLinear: a streamed layer ran with no bytes attached; run it under a "
                               "ecq_torch.LayerStreamer (streaming.py), which copies them ahead of the layer")
        if self.fuses(x2.shape[0]):
            xb = x2.to(torch.bfloat16)
            if self.padded:
                xb = F.pad(xb, (0, self.coded.cols - self.in_features))
            return self._finish(self._gpu.gemv(base, xb.contiguous()).to(x.dtype), x.shape)
        weight = self._gpu.decode(base, self._flags)
        if self.padded:  # contiguous, so that the matmul is the one a plain [out, in] weight gets
            weight = weight[:, :self.in_features].contiguous()
        return self._finish(gpu_linear(x2, weight), x.shape)

    def check_streams(self):
        """CUDA: raises if a decode since the mode was set failed ecq's stream checks (waits for the stream)."""
        if self._flags is not None:
            _C.check_flags(self._flags)

    def _finish(self, y, shape):
        if self.bias is not None:
            y = y + self.bias.to(y.dtype)
        return y.reshape(*shape[:-1], self.out_features)

    def extra_repr(self):
        return (f"in_features={self.in_features}, out_features={self.out_features}, scheme={self.coded.scheme}, "
                f"mode={self.mode}, device={self.device}, coded_bytes={self.coded.nbytes}")
