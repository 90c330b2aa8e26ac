"""examples/torch/ecq_torch/streaming.py — READ ME FIRST

Streaming weights from host memory to the GPU, layer by layer: the pipeline
of issue #12 (bench/cuda/gpu_stream_bench.cu) in torch terms, for models
whose weights do not all fit the GPU.

  StreamedLinear   the uncompressed baseline: an nn.Linear whose weight stays
                   in pinned host memory (bf16) and is copied for each use
  LayerStreamer    drives the copies for a list of blocks (e.g. a Llama's
                   decoder layers): the streamed weights of each block
                   (EcqLinear in mode "streamed" on CUDA, StreamedLinear) are
                   packed at 256-byte offsets into one of two device buffers

The pipeline. Copy k of a block goes into buffer k % 2 on a side stream
(torch.cuda.Stream), after an event that says the block which used that
buffer before has finished on the compute stream (torch's current stream);
an event recorded after the copy makes the compute stream wait for it
before the block runs. A block's copy is queued when the block before it
starts (forward pre-hook), so copy i + 1 runs while block i computes, and
the first block's copy of the next token is queued when the last block
starts. Nothing synchronises the host. The device holds two buffers of the
largest block's streamed bytes; the host holds every streamed weight pinned.
"""
import torch
import torch.nn.functional as F
from torch import nn

from .linear import EcqLinear, gpu_linear

ALIGNMENT = 256  # GpuImage bases (csrc/gpu_ops.hpp)


class StreamedLinear(nn.Module):
    """An uncompressed bf16 nn.Linear without bias whose weight lives in pinned host memory (see the module
    docstring); forward computes gpu_linear(x, W) with W the bytes a LayerStreamer attached."""

    def __init__(self, weight):
        super().__init__()
        w = weight.detach().to(torch.bfloat16).cpu().contiguous()
        self.out_features, self.in_features = w.shape
        self._host_bytes = w.view(torch.uint8).reshape(-1).pin_memory()
        self._stream_bytes = None

    @classmethod
    def from_linear(cls, linear):
        if linear.bias is not None:
            raise ValueError("StreamedLinear: a layer with a bias is not streamed")
        return cls(linear.weight)

    def stream_host_bytes(self):
        return self._host_bytes

    def attach_stream_bytes(self, device_bytes):
        self._stream_bytes = device_bytes

    def forward(self, x):
        if self._stream_bytes is None:
            raise RuntimeError("StreamedLinear ran with no bytes attached; run it under a LayerStreamer")
        w = self._stream_bytes.view(torch.bfloat16).view(self.out_features, self.in_features)
        return gpu_linear(x, w)


def _streamed_modules(block):
    return [m for m in block.modules()
            if isinstance(m, (EcqLinear, StreamedLinear)) and m.stream_host_bytes() is not None]


class LayerStreamer:
    """Streams the streamed weights of `blocks` (see the module docstring). Keep the object alive while the model
    runs; remove() takes its hooks out."""

    def __init__(self, blocks, device):
        self.device = torch.device(device)
        self.groups, self.offsets, self.hooks = [], [], []
        size = 0
        for block in blocks:
            modules = _streamed_modules(block)
            if not modules:
                continue
            offsets, at = [], 0
            for m in modules:
                offsets.append(at)
                at += -(-m.stream_host_bytes().numel() // ALIGNMENT) * ALIGNMENT
            size = max(size, at)
            index = len(self.groups)
            self.groups.append(modules)
            self.offsets.append(offsets)
            self.hooks.append(block.register_forward_pre_hook(lambda _m, _in, i=index: self._before(i)))
            self.hooks.append(block.register_forward_hook(lambda _m, _in, _out, i=index: self._after(i)))
        self.buffer_bytes = size
        self.buffers = [torch.empty(size, dtype=torch.uint8, device=self.device) for _ in range(2)]
        self.copy_stream = torch.cuda.Stream(self.device)
        self.copied = [torch.cuda.Event() for _ in range(2)]
        self.freed = [torch.cuda.Event() for _ in range(2)]
        self.in_flight = []  # (group, buffer) copies queued and not yet used, oldest first
        self.next_buffer = 0
        self.current = None

    @property
    def device_bytes(self):
        """Device memory of the two buffers."""
        return 2 * self.buffer_bytes

    def host_bytes(self):
        """Pinned host memory of every streamed weight."""
        return sum(m.stream_host_bytes().numel() for g in self.groups for m in g)

    def remove(self):
        """Takes the hooks out; later work on the current stream waits for the copies still in flight, so the
        buffers can be freed."""
        for h in self.hooks:
            h.remove()
        self.hooks = []
        torch.cuda.current_stream(self.device).wait_stream(self.copy_stream)

    def _queue(self, group):
        b = self.next_buffer
        self.next_buffer ^= 1
        self.copy_stream.wait_event(self.freed[b])  # the block that used buffer b has finished
        with torch.cuda.stream(self.copy_stream):
            for m, at in zip(self.groups[group], self.offsets[group]):
                src = m.stream_host_bytes()
                self.buffers[b][at:at + src.numel()].copy_(src, non_blocking=True)
        self.copied[b].record(self.copy_stream)
        self.in_flight.append((group, b))

    def _before(self, group):
        if not self.in_flight or self.in_flight[0][0] != group:
            # Not the block prefetched (the first one, or blocks run out of order): its copy now.
            self.in_flight.clear()
            self._queue(group)
        _, b = self.in_flight.pop(0)
        torch.cuda.current_stream(self.device).wait_event(self.copied[b])
        for m, at in zip(self.groups[group], self.offsets[group]):
            m.attach_stream_bytes(self.buffers[b][at:at + m.stream_host_bytes().numel()])
        self.current = b
        self._queue((group + 1) % len(self.groups))

    def _after(self, group):
        self.freed[self.current].record(torch.cuda.current_stream(self.device))
        for m in self.groups[group]:
            m.attach_stream_bytes(None)
