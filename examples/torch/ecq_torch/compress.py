"""examples/torch/ecq_torch/compress.py — READ ME FIRST

Whole models: compress_model() swaps a model's nn.Linear layers for EcqLinear
layers, keeping what the policy says uncompressed, and reports the bytes
before and after; save_model() / load_model() move such a model through one
.ecq file.

Keep policy. Only nn.Linear layers are coded: embeddings, norms and every
other parameter stay as they are. Of the Linear layers, these are kept:
  - always: a layer whose weight is also used by another module (a tied
    output layer: coding it would store a second, coded copy next to the
    kept embedding), and one of fewer than 1024 weights (a container's fixed
    ~170 bytes outweigh what coding saves);
  - and those `keep` selects: a callable keep(name, linear) -> bool, or a
    collection of fnmatch patterns of module names ("layers.*.attention.wo").
The report names every kept layer with its reason.

CUDA: compress_model(..., device="cuda") codes in the GPU layout
(EcqLinear.from_linear, linear.py) and puts each EcqLinear on that device in
the given mode; the weights are encoded on the host, `threads` layers at a
time (the encoders release the GIL). The rest of the model is not moved:
model.to(device) it before or after. A model with padded (GPU layout) layers
has no .ecq file form (save_model says so).

Files. save_model() writes every EcqLinear's container as "<module>.weight"
(the source dtype F32), and every other parameter and buffer coded with the
lossless bf16 scheme: the only lossless scheme ecq has for float weights, so
they must hold bfloat16 values exactly (a model rounded to bf16 does) and
save_model says which tensor does not. A bias of an EcqLinear goes as
"<module>.bias" the same way. load_model() fills a model of the same
architecture: the weight of every layer the file lists as coded (metadata
key "ecq_torch.coded_layers", a JSON list of module names) becomes an
EcqLinear holding the container as read (no re-encoding); every other tensor,
a kept Linear's weight too, is decoded into its parameter or buffer. The
caller's metadata (string pairs) travel in the file's directory beside it.
"""
import fnmatch
import json
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import torch
from torch import nn

from . import _C
from .linear import EcqLinear

MIN_CODED_WEIGHTS = 1024
CODED_LAYERS_KEY = "ecq_torch.coded_layers"


@dataclass
class LayerReport:
    name: str
    shape: tuple
    bytes_before: int
    bytes_after: int
    scheme: str  # the scheme, or "kept: <reason>"


@dataclass
class CompressionReport:
    """Bytes of every parameter and buffer before and after, and what happened to each Linear layer."""
    bytes_before: int
    bytes_after: int
    layers: list = field(default_factory=list)

    @property
    def ratio(self):
        return self.bytes_before / self.bytes_after if self.bytes_after else float("inf")

    def table(self):
        lines = [f"{'layer':<32} {'shape':>12} {'before':>10} {'after':>10}  scheme"]
        for r in self.layers:
            shape = "x".join(str(d) for d in r.shape)
            lines.append(f"{r.name:<32} {shape:>12} {r.bytes_before:>10} {r.bytes_after:>10}  {r.scheme}")
        lines.append(f"model: {self.bytes_before} bytes before, {self.bytes_after} after ({self.ratio:.2f}x smaller)")
        return "\n".join(lines)


def _tensor_bytes(t):
    return t.numel() * t.element_size()


def model_bytes(model):
    """Bytes the model holds: parameters and buffers (each shared tensor once), coded weights, cached copies."""
    seen, total = set(), 0
    for t in list(model.parameters()) + list(model.buffers()):
        if id(t) not in seen:
            seen.add(id(t))
            total += _tensor_bytes(t)
    return total + sum(m.resident_bytes() for m in model.modules() if isinstance(m, EcqLinear))


def _keep_function(keep):
    if keep is None:
        return None
    if callable(keep):
        return keep
    patterns = [keep] if isinstance(keep, str) else list(keep)
    return lambda name, _linear: any(fnmatch.fnmatchcase(name, p) for p in patterns)


def _default_keep_reason(name, linear, users):
    if users[id(linear.weight)] > 1:
        return "tied weight (shared with another module)"
    if linear.weight.numel() < MIN_CODED_WEIGHTS:
        return f"fewer than {MIN_CODED_WEIGHTS} weights"
    return None


def compress_model(model, scheme, keep=None, layout="storage", mode="fused", device="cpu", threads=1):
    """Replaces model's nn.Linear layers by EcqLinear(scheme) in place, except those `keep` keeps (see the module
    docstring). @return a CompressionReport."""
    before = model_bytes(model)
    users = {}
    for m in model.modules():
        for p in m.parameters(recurse=False):
            users[id(p)] = users.get(id(p), 0) + 1
    keep_fn = _keep_function(keep)
    targets = [(n, m) for n, m in model.named_modules() if isinstance(m, nn.Linear)]
    report = CompressionReport(before, before)
    reasons = {}
    for name, linear in targets:
        reason = _default_keep_reason(name, linear, users)
        if reason is None and keep_fn is not None and keep_fn(name, linear):
            reason = "the keep argument"
        reasons[name] = reason
    linears = dict(targets)
    to_code = [n for n, _ in targets if reasons[n] is None]
    with ThreadPoolExecutor(max(1, threads)) as pool:
        coded = dict(zip(to_code, pool.map(lambda n: EcqLinear.from_linear(linears[n], scheme, layout, mode, device),
                                           to_code)))
    for name, linear in targets:
        weight_bytes, shape = _tensor_bytes(linear.weight), tuple(linear.weight.shape)
        if name not in coded:
            report.layers.append(LayerReport(name, shape, weight_bytes, weight_bytes, "kept: " + reasons[name]))
            continue
        _set_submodule(model, name, coded[name])
        report.layers.append(LayerReport(name, shape, weight_bytes, coded[name].resident_bytes(), coded[name].coded.scheme))
    report.bytes_after = model_bytes(model)
    return report


def set_mode(model, mode):
    """Sets the decode mode of every EcqLinear of the model."""
    for m in model.modules():
        if isinstance(m, EcqLinear):
            m.set_mode(mode)


def _set_submodule(model, name, module):
    parent_name, _, child = name.rpartition(".")
    parent = model.get_submodule(parent_name) if parent_name else model
    setattr(parent, child, module)


def _lossless_bf16(name, tensor):
    t = tensor.detach().float().reshape(1, -1) if tensor.dim() < 2 else tensor.detach().float().reshape(-1, tensor.shape[-1])
    if not torch.equal(t.to(torch.bfloat16).float(), t):
        raise ValueError(
            f"save_model: {name!r} holds values that bfloat16 cannot represent exactly, and ecq has no lossless "
            "float32 scheme to store it; round the model to bfloat16 first (model.to(torch.bfloat16).float())")
    return _C.CodedTensor.encode(t, "bf16", "storage")


def save_model(model, path, metadata=None):
    """Writes the model to an .ecq file (see the module docstring)."""
    entries, done = [], set()
    ecq_modules = {n: m for n, m in model.named_modules() if isinstance(m, EcqLinear)}
    padded = [n for n, m in ecq_modules.items() if m.padded]
    if padded:
        raise ValueError(f"save_model: {padded} hold GPU-layout containers padded to whole 256-column chunks, "
                         "which an .ecq file's shapes cannot describe")
    for name, m in ecq_modules.items():
        entries.append((f"{name}.weight", "F32", [m.out_features, m.in_features], m.coded))
        if m.bias is not None:
            entries.append((f"{name}.bias", "F32", list(m.bias.shape), _lossless_bf16(f"{name}.bias", m.bias)))
            done.add(id(m.bias))
    for name, t in model.state_dict(keep_vars=True).items():  # parameters and persistent buffers
        if id(t) in done:
            continue
        done.add(id(t))  # a tied tensor is stored once, under its first name
        coded = None if t.numel() == 0 else _lossless_bf16(name, t)
        entries.append((name, "F32", list(t.shape), coded))
    metadata = dict(metadata or {})
    if CODED_LAYERS_KEY in metadata:
        raise ValueError(f"save_model: the metadata key {CODED_LAYERS_KEY!r} is save_model's own")
    metadata[CODED_LAYERS_KEY] = json.dumps(sorted(ecq_modules))
    _C.write_ecq(str(path), entries, sorted(metadata.items()))


def read_metadata(path):
    """The metadata of an .ecq file, as a dict (without save_model's own key)."""
    metadata = dict(_C.read_ecq(str(path))[1])
    metadata.pop(CODED_LAYERS_KEY, None)
    return metadata


def load_model(model, path, mode="fused"):
    """Fills `model` (same architecture as the saved one) from an .ecq file; see the module docstring.
    @return the file's metadata."""
    tensors, metadata = _C.read_ecq(str(path))
    metadata = dict(metadata)
    coded_layers = set(json.loads(metadata.pop(CODED_LAYERS_KEY, "[]")))
    params = dict(model.named_parameters())
    params.update(dict(model.named_buffers()))
    modules = dict(model.named_modules())
    filled = set()
    for name, _dtype, shape, coded in tensors:
        module_name, _, leaf = name.rpartition(".")
        module = modules.get(module_name)
        if leaf == "weight" and module_name in coded_layers:
            if not isinstance(module, (nn.Linear, EcqLinear)) or coded is None:
                raise ValueError(f"{path}: coded layer {module_name!r} is not a Linear layer of the model")
            bias = getattr(module, "bias", None)
            layer = EcqLinear(coded, bias, mode)
            _set_submodule(model, module_name, layer)
            modules[module_name] = layer
            filled.add(name)
            continue
        if name.endswith(".bias") and isinstance(module, EcqLinear):
            module.bias = nn.Parameter(coded.decode_float().reshape(shape), requires_grad=False)
            filled.add(name)
            continue
        if name not in params:
            raise KeyError(f"{path}: tensor {name!r} has no parameter or buffer of that name in the model")
        target = params[name]
        if list(target.shape) != list(shape):
            raise ValueError(f"{path}: tensor {name!r} has shape {shape}, the model's is {list(target.shape)}")
        with torch.no_grad():
            if coded is not None:
                target.copy_(coded.decode_float().reshape(shape))
        filled.add(name)
    # Tied tensors were stored once: a parameter the file lacks is fine if it is the same tensor as one it has.
    stored = {id(params[n]) for n in filled if n in params}
    missing = [n for n, t in params.items() if n not in filled and id(t) not in stored
               and not isinstance(modules.get(n.rpartition(".")[0]), EcqLinear)]
    if missing:
        raise KeyError(f"{path}: the file has no tensor for {missing}")
    return metadata
