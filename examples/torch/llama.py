"""examples/torch/llama.py — READ ME FIRST

A small, readable Llama forward pass in PyTorch, for running models on ecq's
coded weights (ecq_torch). The architecture of Llama 2 / llama2.c:

  tokens -> embedding -> n_layers x [ x += attention(rmsnorm(x)); x += ffn(rmsnorm(x)) ] -> rmsnorm -> output

  RMSNorm    x / sqrt(mean(x^2) + eps) * weight
  RoPE       rotary position embedding on (even, odd) pairs of each head's
             dimensions, frequency theta^(-2i/head_dim): llama2.c's and
             Meta's convention (Hugging Face checkpoints permute wq and wk to
             rotate halves instead; convert them before loading)
  attention  grouped-query: n_heads query heads share n_kv_heads key/value
             heads (query head h reads KV head h // (n_heads / n_kv_heads)),
             causal, with a KV cache so each generated token costs one step
  SwiGLU     w2(silu(w1 x) * w3 x)

Every projection is an nn.Linear without bias, so ecq_torch.compress_model
can swap them for EcqLinear layers; the model computes in its parameters'
dtype and device (float32 on the CPU; model.to("cuda", torch.bfloat16) for
a bf16 model on the GPU: the KV cache, RoPE tables and masks follow the
final norm's weight). The token embedding may stay on another device (the
host, to save GPU memory): embed() looks tokens up where it is and moves the
rows. With fuse_norms=True, when the three attention projections (or w1 and
w3) are fused-mode CPU EcqLinear layers and a step has at most 8 tokens, the
norm before them runs inside their GEMVs (EcqLinear.forward_rmsnorm). Off by
default: on the CPU it saves 4-9 % on stories260K's bf16 GEMVs and nothing
from 1024 x 1024 on, and for affine codes the library's own GEMV has a SIMD
loop the fused kernel lacks (up to 3.3x faster; docs/performance.md).

CUDA graphs: forward() also takes the position as a 0-d tensor on the device
(a one-token step: attention then runs over the whole cache with the future
masked, so the step has one shape at every position); GraphedStep captures
such a step, embedding excluded, and replays it (the GPU benchmark's decode
loop: a step is hundreds of small kernels, which Python alone cannot launch
as fast as an H200 runs them).

Weights: load_llama2c_safetensors() reads llama2.c's layout (tensors stacked
over layers: wq [L, dim, dim], wk/wv [L, kv_dim x dim], w1/w3 [L, hidden,
dim], w2 [L, dim, hidden], rms_att / rms_ffn [L, dim], rms_final, and an
output matrix tied to tok_embeddings unless "wcls" / "output.weight" is
there), as in ../shared/data/stories260K.safetensors. Each layer's slice is
row-major [out_features, in_features], the layout llama2.c's matmul reads,
whatever the stored shape says (its wk is labelled [L, dim, kv_dim]).
"""
import math
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn


@dataclass
class LlamaConfig:
    dim: int
    n_layers: int
    n_heads: int
    n_kv_heads: int
    vocab_size: int
    hidden_dim: int
    max_seq_len: int = 512
    norm_eps: float = 1e-5
    rope_theta: float = 10000.0
    tie_embeddings: bool = True

    @property
    def head_dim(self):
        return self.dim // self.n_heads

    def check(self):
        if self.dim % self.n_heads or self.n_heads % self.n_kv_heads or self.head_dim % 2:
            raise ValueError(f"LlamaConfig: dim {self.dim} must split into {self.n_heads} heads of even size, and "
                             f"the heads into {self.n_kv_heads} KV groups")
        return self

    def to_dict(self):
        return asdict(self)


class RMSNorm(nn.Module):
    def __init__(self, dim, eps):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight


def normed_projections(norm, projections, x, fuse):
    """[p(norm(x)) for p in projections], with the norm fused into the GEMVs where every projection can."""
    tokens = x.numel() // x.shape[-1]
    if fuse and all(hasattr(p, "forward_rmsnorm") and p.norm_fuses(tokens) for p in projections):
        return [p.forward_rmsnorm(x, norm.weight, norm.eps) for p in projections]
    h = norm(x)
    return [p(h) for p in projections]


def rope_tables(config):
    """cos, sin [max_seq_len, head_dim / 2] of the rotary embedding."""
    half = config.head_dim // 2
    freqs = config.rope_theta ** (-torch.arange(0, half, dtype=torch.float64, device="cpu") * 2.0 / config.head_dim)
    angles = torch.arange(config.max_seq_len, dtype=torch.float64, device="cpu")[:, None] * freqs[None, :]
    return torch.cos(angles).float(), torch.sin(angles).float()


def apply_rope(x, cos, sin):
    """Rotates (even, odd) pairs of x [batch, seq, heads, head_dim] by the positions' angles cos/sin [seq, half]."""
    pairs = x.reshape(*x.shape[:-1], -1, 2)
    even, odd = pairs[..., 0], pairs[..., 1]
    c, s = cos[None, :, None, :], sin[None, :, None, :]
    return torch.stack((even * c - odd * s, even * s + odd * c), dim=-1).reshape(x.shape)


class KVCache:
    """Keys and values of every layer for positions [0, length), [batch, max_seq_len, n_kv_heads, head_dim] each."""

    def __init__(self, config, batch, device="cpu", dtype=torch.float32):
        shape = (batch, config.max_seq_len, config.n_kv_heads, config.head_dim)
        self.keys = [torch.zeros(shape, device=device, dtype=dtype) for _ in range(config.n_layers)]
        self.values = [torch.zeros(shape, device=device, dtype=dtype) for _ in range(config.n_layers)]

    def nbytes(self):
        return sum(t.numel() * t.element_size() for t in self.keys + self.values)


class Attention(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.config = config
        kv_dim = config.n_kv_heads * config.head_dim
        self.wq = nn.Linear(config.dim, config.dim, bias=False)
        self.wk = nn.Linear(config.dim, kv_dim, bias=False)
        self.wv = nn.Linear(config.dim, kv_dim, bias=False)
        self.wo = nn.Linear(config.dim, config.dim, bias=False)

    def forward(self, q, k, v, layer, cache, start, cos, sin):
        c = self.config
        batch, seq, _ = q.shape
        q = apply_rope(q.reshape(batch, seq, c.n_heads, c.head_dim), cos, sin)
        k = apply_rope(k.reshape(batch, seq, c.n_kv_heads, c.head_dim), cos, sin)
        v = v.reshape(batch, seq, c.n_kv_heads, c.head_dim)
        if torch.is_tensor(start):  # one token at a device-held position, over the whole cache (CUDA graphs)
            cache.keys[layer].index_copy_(1, start.view(1), k)
            cache.values[layer].index_copy_(1, start.view(1), v)
            end, first = c.max_seq_len, start
        else:
            cache.keys[layer][:batch, start:start + seq] = k
            cache.values[layer][:batch, start:start + seq] = v
            end, first = start + seq, start
        group = c.n_heads // c.n_kv_heads
        keys = cache.keys[layer][:batch, :end].repeat_interleave(group, dim=2)    # [batch, end, n_heads, head_dim]
        values = cache.values[layer][:batch, :end].repeat_interleave(group, dim=2)
        scores = torch.einsum("bshd,bthd->bhst", q, keys) / math.sqrt(c.head_dim)
        # Causal: query at position start + i sees keys at positions <= start + i.
        positions = torch.arange(seq, device=q.device)
        future = torch.arange(end, device=q.device)[None, :] > (first + positions)[:, None]
        scores = scores.masked_fill(future, float("-inf"))
        out = torch.einsum("bhst,bthd->bshd", torch.softmax(scores, dim=-1), values)
        return self.wo(out.reshape(batch, seq, c.dim))


class FeedForward(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.w1 = nn.Linear(config.dim, config.hidden_dim, bias=False)
        self.w2 = nn.Linear(config.hidden_dim, config.dim, bias=False)
        self.w3 = nn.Linear(config.dim, config.hidden_dim, bias=False)


class Block(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.attention_norm = RMSNorm(config.dim, config.norm_eps)
        self.attention = Attention(config)
        self.ffn_norm = RMSNorm(config.dim, config.norm_eps)
        self.feed_forward = FeedForward(config)

    def forward(self, x, layer, cache, start, cos, sin, fuse_norms):
        a = self.attention
        q, k, v = normed_projections(self.attention_norm, (a.wq, a.wk, a.wv), x, fuse_norms)
        x = x + a(q, k, v, layer, cache, start, cos, sin)
        f = self.feed_forward
        gate, up = normed_projections(self.ffn_norm, (f.w1, f.w3), x, fuse_norms)
        return x + f.w2(F.silu(gate) * up)


class Llama(nn.Module):
    def __init__(self, config, fuse_norms=False):
        super().__init__()
        self.config = config.check()
        self.fuse_norms = fuse_norms
        self.tok_embeddings = nn.Embedding(config.vocab_size, config.dim)
        self.layers = nn.ModuleList(Block(config) for _ in range(config.n_layers))
        self.norm = RMSNorm(config.dim, config.norm_eps)
        self.output = nn.Linear(config.dim, config.vocab_size, bias=False)
        if config.tie_embeddings:
            self.output.weight = self.tok_embeddings.weight
        # Plain attributes, not buffers: derived from the config, so not saved with the weights.
        self.rope_cos, self.rope_sin = rope_tables(config)
        self._rope = {}  # (device, dtype) -> the tables there

    @property
    def compute(self):
        """(device, dtype) the model computes in: its final norm's."""
        return self.norm.weight.device, self.norm.weight.dtype

    def new_cache(self, batch):
        device, dtype = self.compute
        return KVCache(self.config, batch, device, dtype)

    def embed(self, tokens):
        """The embedding rows of tokens [batch, seq], looked up where the embedding is, on the compute device."""
        w = self.tok_embeddings.weight
        return self.tok_embeddings(tokens.to(w.device)).to(self.compute[0], self.compute[1])

    def _rope_tables(self, device, dtype):
        key = (device, dtype)
        if key not in self._rope:
            self._rope[key] = (self.rope_cos.to(device, dtype), self.rope_sin.to(device, dtype))
        return self._rope[key]

    @torch.no_grad()
    def forward(self, tokens, cache, start):
        """Logits [batch, seq, vocab] for tokens [batch, seq] at positions start .. start + seq - 1 (start an int, or
        a 0-d long tensor on the compute device with seq 1: see the module docstring)."""
        return self.forward_embedded(self.embed(tokens), cache, start)

    @torch.no_grad()
    def forward_embedded(self, x, cache, start):
        """forward() from the embedded tokens x [batch, seq, dim]."""
        seq = x.shape[1]
        cos_all, sin_all = self._rope_tables(x.device, x.dtype)
        if torch.is_tensor(start):
            if seq != 1:
                raise ValueError("Llama: a device-held position takes one token per step")
            cos, sin = cos_all.index_select(0, start.view(1)), sin_all.index_select(0, start.view(1))
        else:
            if start + seq > self.config.max_seq_len:
                raise ValueError(f"Llama: positions up to {start + seq} exceed max_seq_len {self.config.max_seq_len}")
            cos, sin = cos_all[start:start + seq], sin_all[start:start + seq]
        for i, block in enumerate(self.layers):
            x = block(x, i, cache, start, cos, sin, self.fuse_norms)
        return self.output(self.norm(x)).float()

    @torch.no_grad()
    def generate_greedy(self, prompt, steps):
        """Greedy decoding of `steps` tokens after prompt [batch, n] (n >= 1).
        @return (tokens [batch, steps], logits [batch, steps, vocab]: the logits each token was chosen from)."""
        cache = self.new_cache(prompt.shape[0])
        logits = self(prompt, cache, 0)[:, -1]
        position = prompt.shape[1]
        tokens, all_logits = [], []
        for _ in range(steps):
            token = logits.argmax(dim=-1)
            tokens.append(token)
            all_logits.append(logits)
            logits = self(token[:, None], cache, position)[:, -1]
            position += 1
        return torch.stack(tokens, dim=1), torch.stack(all_logits, dim=1)


class GraphedStep:
    """One decode step of `batch` sequences (embedding excluded) captured as a CUDA graph, with its own KV cache
    (see the module docstring). step(tokens [batch, 1], position) -> logits [batch, 1, vocab] (a tensor the next
    step overwrites)."""

    def __init__(self, model, batch):
        self.model = model
        device, dtype = model.compute
        self.cache = model.new_cache(batch)
        self.x = torch.zeros(batch, 1, model.config.dim, device=device, dtype=dtype)
        self.position = torch.zeros((), dtype=torch.long, device=device)
        side = torch.cuda.Stream(device)
        side.wait_stream(torch.cuda.current_stream(device))
        with torch.cuda.stream(side):  # warm-up outside the capture (lazy initialisation, allocator pools)
            for _ in range(2):
                model.forward_embedded(self.x, self.cache, self.position)
        torch.cuda.current_stream(device).wait_stream(side)
        self.graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(self.graph):
            self.logits = model.forward_embedded(self.x, self.cache, self.position)
        self.reset()

    def reset(self):
        """Empties the cache (a new sequence)."""
        for t in self.cache.keys + self.cache.values:
            t.zero_()

    def step(self, tokens, position):
        self.x.copy_(self.model.embed(tokens))
        self.position.fill_(position)
        self.graph.replay()
        return self.logits


def load_llama2c_safetensors(path, n_heads, max_seq_len=512, norm_eps=1e-5):
    """A Llama from llama2.c's safetensors layout (see the module docstring). The file does not say how many heads
    the model has: n_heads is the model's (8 for stories260K)."""
    import ecq_torch  # the file is read with ecq's own safetensors reader

    t = {name: tensor for name, _dtype, _shape, tensor in ecq_torch.read_safetensors(str(path))}
    needed = ["tok_embeddings.weight", "rms_att.weight", "wq", "wk", "wv", "wo", "rms_ffn.weight", "w1", "w2", "w3",
              "rms_final.weight"]
    absent = [n for n in needed if n not in t]
    if absent:
        raise KeyError(f"{path}: not llama2.c's layout, it lacks {absent}")
    vocab, dim = t["tok_embeddings.weight"].shape
    layers = t["rms_att.weight"].shape[0]
    kv_dim = t["wk"].numel() // (layers * dim)
    head_dim = dim // n_heads
    output = t.get("wcls", t.get("output.weight"))
    config = LlamaConfig(dim=dim, n_layers=layers, n_heads=n_heads, n_kv_heads=kv_dim // head_dim, vocab_size=vocab,
                         hidden_dim=t["w1"].numel() // (layers * dim), max_seq_len=max_seq_len, norm_eps=norm_eps,
                         tie_embeddings=output is None)
    model = Llama(config)

    def layer_matrix(name, i, out_features, in_features):
        return t[name].reshape(layers, out_features * in_features)[i].reshape(out_features, in_features)

    with torch.no_grad():
        model.tok_embeddings.weight.copy_(t["tok_embeddings.weight"])
        if output is not None:
            model.output.weight.copy_(output.reshape(vocab, dim))
        model.norm.weight.copy_(t["rms_final.weight"])
        for i, b in enumerate(model.layers):
            b.attention_norm.weight.copy_(t["rms_att.weight"][i])
            b.ffn_norm.weight.copy_(t["rms_ffn.weight"][i])
            b.attention.wq.weight.copy_(layer_matrix("wq", i, dim, dim))
            b.attention.wk.weight.copy_(layer_matrix("wk", i, kv_dim, dim))
            b.attention.wv.weight.copy_(layer_matrix("wv", i, kv_dim, dim))
            b.attention.wo.weight.copy_(layer_matrix("wo", i, dim, dim))
            b.feed_forward.w1.weight.copy_(layer_matrix("w1", i, config.hidden_dim, dim))
            b.feed_forward.w2.weight.copy_(layer_matrix("w2", i, dim, config.hidden_dim))
            b.feed_forward.w3.weight.copy_(layer_matrix("w3", i, config.hidden_dim, dim))
    return model


def synthetic_llama(config, seed=0):
    """A model of `config` with seeded random weights of trained-model statistics: every matrix (the embedding too)
    with std 1/sqrt(its last dimension) and heavy tails (a Student-t with 4 degrees of freedom, as the outlier
    weights of trained LLMs), norm weights around 1."""
    model = Llama(config)
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("norm.weight"):
                p.copy_(1.0 + 0.1 * torch.randn(p.shape, generator=g))
            else:
                chi2 = torch.randn((4,) + tuple(p.shape), generator=g).pow(2).mean(0)
                t4 = torch.randn(p.shape, generator=g) / chi2.sqrt()  # Student-t, 4 degrees of freedom (variance 2)
                p.copy_(t4 / math.sqrt(2.0 * p.shape[-1]))
    return model


def round_to_bf16(model):
    """Rounds every parameter to bfloat16 (to nearest even) in place, keeping float32 storage: the bf16 model that
    lossless ecq compression must reproduce, computing in float32."""
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(p.to(torch.bfloat16).float())
    return model
