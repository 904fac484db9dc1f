"""Faster CPU paths for layers whose stock kernels are slow at the shapes inborn uses.

- Max pooling of an NCHW tensor: ATen's NCHW kernel is several times slower than its
  channels-last one. `max_pool2d` pools in channels-last and hands back NCHW; the values and
  the gradient (the same argmax, ties to the first element) are bit for bit the stock ones.
- A convolution with few inputs per output (the first layer of an MNIST or CIFAR network, one
  or three channels): unfold + matmul instead of oneDNN (float32 rounding may differ in the
  last bit).
- BatchNorm folded into the convolution before it, for evaluation (`inborn.models.fold`).

What each buys in the search and in a PGD evaluation, each switched off alone, is measured by
`python benchmarks/ablation.py` (docs/performance.md). All apply on CPU only (CUDA's kernels
are fine). `stock()` turns them off, for a reference that runs on stock PyTorch
(benchmarks/search_speed.py), for that ablation and for the tests that compare the two.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.autograd.function import once_differentiable

# Unfold + matmul up to this many inputs per output (in_channels x kernel area): 3x3 kernels
# over 1 to 4 channels. Beyond it oneDNN wins.
IM2COL_MAX_FAN_IN = 36

PATHS = ("max_pool", "conv", "fold")
_enabled = dict.fromkeys(PATHS, True)


@contextlib.contextmanager
def stock(*paths: str) -> Iterator[None]:
    """Use PyTorch's stock kernels inside: for the given paths of this module, or for all."""
    chosen = paths or PATHS
    unknown = set(chosen) - set(PATHS)
    if unknown:
        raise ValueError(f"unknown kernel paths {sorted(unknown)}; known: {', '.join(PATHS)}")
    was = dict(_enabled)
    _enabled.update(dict.fromkeys(chosen, False))
    try:
        yield
    finally:
        _enabled.update(was)


def fast_enabled(path: str) -> bool:
    return _enabled[path]


def _pair(v: int | tuple[int, ...] | list[int]) -> list[int]:
    return [int(v), int(v)] if isinstance(v, int) else [int(e) for e in v]


class _ChannelsLastMaxPool(torch.autograd.Function):
    """Forward by the channels-last kernel, backward by the NCHW one, on NCHW tensors.

    The indices are positions within each channel's plane, so they mean the same in both layouts.
    """

    @staticmethod
    def forward(ctx, x, kernel_size, stride, padding, dilation, ceil_mode):  # noqa: ANN001, ANN205
        y, indices = torch.ops.aten.max_pool2d_with_indices(
            x.contiguous(memory_format=torch.channels_last), kernel_size, stride, padding, dilation, ceil_mode)
        ctx.save_for_backward(x, indices)
        ctx.args = (kernel_size, stride, padding, dilation, ceil_mode)
        return y.contiguous()

    @staticmethod
    @once_differentiable
    def backward(ctx, grad):  # noqa: ANN001, ANN205
        x, indices = ctx.saved_tensors
        grad_x = torch.ops.aten.max_pool2d_with_indices_backward(
            grad.contiguous(), x, *ctx.args, indices.contiguous())
        return grad_x, None, None, None, None, None


def max_pool2d(x: torch.Tensor, kernel_size, stride=None, padding=0, dilation=1,  # noqa: ANN001
               ceil_mode: bool = False) -> torch.Tensor:
    """`F.max_pool2d` with the same result, faster on CPU for batched NCHW input."""
    stride = kernel_size if stride is None or stride == [] else stride
    if (_enabled["max_pool"] and x.device.type == "cpu" and x.dim() == 4 and x.shape[1] > 1 and x.is_contiguous()
            and x.dtype in (torch.float32, torch.float64)):
        return _ChannelsLastMaxPool.apply(x, _pair(kernel_size), _pair(stride), _pair(padding), _pair(dilation),
                                          ceil_mode)
    return F.max_pool2d(x, kernel_size, stride, padding, dilation, ceil_mode=ceil_mode)


class MaxPool2d(nn.MaxPool2d):
    """nn.MaxPool2d through `max_pool2d` (the zoo's pooling layer; the same module otherwise)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.return_indices:
            return super().forward(x)
        return max_pool2d(x, self.kernel_size, self.stride, self.padding, self.dilation, self.ceil_mode)


def _im2col_ok(x: torch.Tensor, weight: torch.Tensor, padding, groups: int) -> bool:  # noqa: ANN001
    return (_enabled["conv"] and x.device.type == "cpu" and x.dim() == 4 and groups == 1
            and not isinstance(padding, str) and weight[0].numel() <= IM2COL_MAX_FAN_IN
            and x.dtype in (torch.float32, torch.float64))


def conv2d(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, stride, padding,  # noqa: ANN001
           dilation, groups: int, *, channels_last: bool | None = None) -> torch.Tensor:
    """`F.conv2d` (zero padding), by unfold + matmul on CPU when each output sums few inputs.

    `channels_last`: the output layout of that path (default: the weight's), so that a
    channels-last model stays channels-last after its first layer, as it would with oneDNN.
    """
    if not _im2col_ok(x, weight, padding, groups):
        return F.conv2d(x, weight, bias, stride, padding, dilation, groups)
    stride, padding, dilation = _pair(stride), _pair(padding), _pair(dilation)
    n, _, h, w = x.shape
    out_channels, _, kh, kw = weight.shape
    oh = (h + 2 * padding[0] - dilation[0] * (kh - 1) - 1) // stride[0] + 1
    ow = (w + 2 * padding[1] - dilation[1] * (kw - 1) - 1) // stride[1] + 1
    columns = F.unfold(x, (kh, kw), dilation=dilation, padding=padding, stride=stride)  # (n, fan_in, oh*ow)
    if is_channels_last(weight) if channels_last is None else channels_last:
        y = (columns.transpose(1, 2) @ weight.reshape(out_channels, -1).t()).view(n, oh, ow, out_channels)
        y = y.permute(0, 3, 1, 2)
    else:
        y = (weight.reshape(out_channels, -1) @ columns).view(n, out_channels, oh, ow)
    return y if bias is None else y + bias.view(1, -1, 1, 1)


def is_channels_last(weight: torch.Tensor) -> bool:
    """Whether a conv weight is laid out channels-last (with one input channel both layouts
    count as contiguous; the strides still tell them apart)."""
    return weight.stride(1) == 1 and weight.shape[1] * weight.shape[2] * weight.shape[3] > 1
