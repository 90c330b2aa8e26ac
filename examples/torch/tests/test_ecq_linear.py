"""examples/torch/tests/test_ecq_linear.py — READ ME FIRST

Checks of EcqLinear and compress_model on seeded random layers (no model file
needed): every decode mode against F.linear on the container's dequantised
weights, the fused GEMV against the error bound ecq/cpu/tensor_ops.hpp
documents, the fused RMSNorm against the unfused pair, .ecq round trips, a
corrupted container's error, and the keep policy with its byte report.
Exit 0 when every check passes, 77 without torch (torch_or_skip).
"""
import os
import sys
import tempfile

import torch_or_skip  # noqa: F401

import torch
import torch.nn.functional as F
from torch import nn

import ecq_torch

failures = []


def check(ok, what):
    print(("ok   " if ok else "FAIL ") + what)
    if not ok:
        failures.append(what)


def random_linear(out_features, in_features, seed, bias=False):
    g = torch.Generator().manual_seed(seed)
    layer = nn.Linear(in_features, out_features, bias=bias)
    with torch.no_grad():
        layer.weight.copy_(torch.randn(out_features, in_features, generator=g) / in_features ** 0.5)
        if bias:
            layer.bias.copy_(torch.randn(out_features, generator=g))
    return layer


def fused_within_bound(layer, x):
    """|fused - float64 exact| <= the documented bound, for every output."""
    w = layer.coded.decode_float().double()
    exact = x.double() @ w.t()
    got = layer.coded.gemv(x).double()
    return bool(((got - exact).abs() <= layer.fused_error_bound(x)).all())


g = torch.Generator().manual_seed(1)
for scheme in ("bf16", "affine4-g64", "affine3-g32-p2", "uniform-sqnr30"):
    for layout in ("storage", "kernel"):
        linear = random_linear(200, 320, seed=7, bias=True)
        layer = ecq_torch.EcqLinear.from_linear(linear, scheme, layout)
        w = layer.coded.decode_float()
        tag = f"{scheme}/{layout}"
        check(layer.coded.rows == 200 and layer.coded.cols == 320, f"{tag}: container shape 200x320")
        if scheme == "bf16":
            check(torch.equal(w, linear.weight.detach().to(torch.bfloat16).float()),
                  f"{tag}: lossless (decode_float == weight rounded to bfloat16)")
            check(torch.equal(layer.coded.decode_bf16(), linear.weight.detach().to(torch.bfloat16)),
                  f"{tag}: decode_bf16 gives the bfloat16 weight")
        for tokens in (1, 3, 8):
            x = torch.randn(tokens, 320, generator=g)
            check(fused_within_bound(layer, x), f"{tag}: fused GEMV within the documented bound, {tokens} tokens")
            check(torch.allclose(layer(x), F.linear(x, w, linear.bias), rtol=0, atol=1e-4),
                  f"{tag}: fused forward ~= F.linear on the dequantised weight, {tokens} tokens")
        for tokens in (9, 20):
            x = torch.randn(tokens, 320, generator=g)
            check(torch.equal(layer(x), F.linear(x, w, linear.bias)),
                  f"{tag}: {tokens} tokens run decode-then-matmul (equal to F.linear)")
        x = torch.randn(2, 5, 320, generator=g)
        for mode in ("cached", "streamed"):
            layer.set_mode(mode)
            check(torch.equal(layer(x), F.linear(x, w, linear.bias)), f"{tag}: {mode} mode equals F.linear")
        layer.set_mode("fused")
        check(layer(x).shape == (2, 5, 200), f"{tag}: leading dimensions are kept")

# The fused RMSNorm: the GEMV's documented bound against the float64 product of W and the staged values, which
# the unfused rmsnorm kernel computes with the same expression.
norm_weight = 1.0 + 0.1 * torch.randn(512, generator=g)
for scheme in ("bf16", "affine4-g64"):
    layer = ecq_torch.EcqLinear.from_linear(random_linear(96, 512, seed=3), scheme, "kernel")
    for tokens in (1, 4, 8):
        x = 3.0 * torch.randn(tokens, 512, generator=g)
        staged = ecq_torch.rmsnorm(x, norm_weight, 1e-5)
        exact = staged.double() @ layer.coded.decode_float().double().t()
        bound = layer.fused_error_bound(staged)
        fused = layer.forward_rmsnorm(x, norm_weight, 1e-5)
        unfused = layer.coded.gemv(staged)
        check(bool(((fused.double() - exact).abs() <= bound).all()),
              f"{scheme}: rmsnorm_gemv within the documented bound of W x rmsnorm(x), {tokens} tokens")
        check(bool(((unfused.double() - exact).abs() <= bound).all()),
              f"{scheme}: rmsnorm + gemv within the same bound, {tokens} tokens")
        reference = x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-5) * norm_weight
        check(torch.allclose(staged, reference, rtol=1e-5, atol=1e-6),
              f"the rmsnorm kernel matches torch's RMSNorm expression, {tokens} tokens")
x = torch.randn(12, 512, generator=g)
check(torch.allclose(layer.forward_rmsnorm(x, norm_weight, 1e-5),
                     F.linear(ecq_torch.rmsnorm(x, norm_weight, 1e-5), layer.coded.decode_float()), rtol=0, atol=0),
      "forward_rmsnorm above 8 tokens is rmsnorm then decode-then-matmul")

with tempfile.TemporaryDirectory() as tmp:
    # One layer through an .ecq file: the same container bytes and outputs come back.
    path = os.path.join(tmp, "layer.ecq")
    layer.save(path, "proj.weight")
    again = ecq_torch.EcqLinear.from_ecq(path, "proj.weight")
    check(again.coded.to_bytes() == layer.coded.to_bytes(), "EcqLinear.save / from_ecq: same container bytes")
    x = torch.randn(2, 512, generator=g)
    check(torch.equal(again(x), layer(x)), "EcqLinear.from_ecq: same outputs")
    try:
        ecq_torch.EcqLinear.from_ecq(path, "missing")
        check(False, "from_ecq of a missing name raises KeyError")
    except KeyError as e:
        check("proj.weight" in str(e), "from_ecq of a missing name raises KeyError naming the file's tensors")

    # A model through compress_model, its report and an .ecq file.
    model = nn.Sequential(nn.Linear(256, 512, bias=False), nn.ReLU(), nn.Linear(512, 256), nn.Linear(256, 3))
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(p.to(torch.bfloat16).float())  # bf16-exact, so save_model can store the kept tensors losslessly
    reference = [m.weight.detach().clone() for m in (model[0], model[2])]
    x = torch.randn(4, 256, generator=g)
    report = ecq_torch.compress_model(model, "affine4-g64", keep=["2"])
    print(report.table())
    kinds = [type(model[i]).__name__ for i in (0, 2, 3)]
    check(kinds == ["EcqLinear", "Linear", "Linear"],
          f"keep=['2'] keeps layer 2, the default threshold keeps the 768-weight layer 3 ({kinds})")
    check(report.bytes_before == 4 * (256 * 512 + 512 * 256 + 256 + 256 * 3 + 3),
          "report.bytes_before counts every float32 parameter")
    expected_after = report.bytes_before - 4 * 256 * 512 + model[0].coded.nbytes
    check(report.bytes_after == expected_after and report.ratio > 1,
          f"report.bytes_after = before - the coded layer's float32 bytes + its container ({report.bytes_after})")
    check(bool((model[0].coded.decode_float() - reference[0]).abs().max() < 0.2), "the coded layer is affine4 of W")
    y = model(x)
    path = os.path.join(tmp, "model.ecq")
    ecq_torch.save_model(model, path, metadata={"what": "test model"})
    fresh = nn.Sequential(nn.Linear(256, 512, bias=False), nn.ReLU(), nn.Linear(512, 256), nn.Linear(256, 3))
    meta = ecq_torch.load_model(fresh, path)
    check(meta == {"what": "test model"}, "save_model / load_model: metadata")
    check(isinstance(fresh[0], ecq_torch.EcqLinear) and fresh[0].coded.to_bytes() == model[0].coded.to_bytes(),
          "load_model: the coded layer comes back as the same container")
    check(torch.equal(fresh(x), y), "load_model: the model gives the same outputs")

    # Kept tensors must be bf16-exact to be saved; the error says so.
    model[2].weight.data[0, 0] = 1.0 + 2.0 ** -20
    try:
        ecq_torch.save_model(model, path)
        check(False, "save_model refuses a tensor bfloat16 cannot hold")
    except ValueError as e:
        check("2.weight" in str(e) and "bfloat16" in str(e), "save_model names the tensor bfloat16 cannot hold")

# Corrupt bytes: the checked open refuses them and the error names ecq's status.
blob = bytearray(layer.coded.to_bytes())
blob[len(blob) // 2] ^= 0x40
try:
    ecq_torch.CodedTensor.from_bytes(bytes(blob))
    check(False, "a corrupted container is refused")
except RuntimeError as e:
    check("not a valid ecq container" in str(e), f"a corrupted container is refused: {e}")
try:
    ecq_torch.CodedTensor.encode(torch.randn(4, 64), "affine9-g64")
    check(False, "a bad scheme name is refused")
except ValueError as e:
    check("affine9-g64" in str(e), f"a bad scheme name is refused: {e}")

print(f"{len(failures)} check(s) failed" if failures else "all checks passed")
sys.exit(1 if failures else 0)
