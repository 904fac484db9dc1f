"""The operations of the DARTS search space (Liu et al., 2019) and of the genotypes it hosts.

Every conv has `bias=False` and every BatchNorm comes from `batch_norm(channels, affine)`, so a
network built with `affine_bn=False` has no learnable BN parameter anywhere. ReLUs are never
in place: a cell's states feed several edges, and an in-place ReLU on one would change the others.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn as nn
import torch.nn.functional as F

from inborn.models.kernels import MaxPool2d
from inborn.models.layers import batch_norm


class ReLUConvBN(nn.Sequential):
    """ReLU, conv, BN: the preprocessing of a cell's inputs."""

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int, padding: int, affine: bool = True) -> None:
        super().__init__(
            nn.ReLU(),
            nn.Conv2d(c_in, c_out, kernel, stride=stride, padding=padding, bias=False),
            batch_norm(c_out, affine),
        )


class DilConv(nn.Sequential):
    """ReLU, dilated depthwise conv, pointwise conv, BN."""

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int, padding: int, dilation: int,
                 affine: bool = True) -> None:
        super().__init__(
            nn.ReLU(),
            nn.Conv2d(c_in, c_in, kernel, stride=stride, padding=padding, dilation=dilation, groups=c_in,
                      bias=False),
            nn.Conv2d(c_in, c_out, 1, bias=False),
            batch_norm(c_out, affine),
        )


class SepConv(nn.Sequential):
    """Two depthwise-separable convs in a row (the first one strided), as in DARTS."""

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int, padding: int, affine: bool = True) -> None:
        super().__init__(
            DilConv(c_in, c_in, kernel, stride, padding, 1, affine),
            DilConv(c_in, c_out, kernel, 1, padding, 1, affine),
        )


class Zero(nn.Module):
    """The `none` op: zeros of the (strided) input's shape."""

    def __init__(self, stride: int) -> None:
        super().__init__()
        self.stride = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.stride == 1:
            return x.mul(0.0)
        return x[:, :, :: self.stride, :: self.stride].mul(0.0)


class FactorizedReduce(nn.Module):
    """Halve the resolution with two 1x1 stride-2 convs, the second one on the grid shifted by one pixel.

    The shifted input is zero-padded at the bottom/right so odd sizes (7x7, say) give the same
    output size on both paths; at even sizes this is exactly DARTS's `x[:, :, 1:, 1:]`, because
    a stride-2 1x1 conv never reads the padded row. An odd `c_out` gives the second path the extra channel.
    """

    def __init__(self, c_in: int, c_out: int, affine: bool = True) -> None:
        super().__init__()
        self.relu = nn.ReLU()
        self.conv_1 = nn.Conv2d(c_in, c_out // 2, 1, stride=2, bias=False)
        self.conv_2 = nn.Conv2d(c_in, c_out - c_out // 2, 1, stride=2, bias=False)
        self.bn = batch_norm(c_out, affine)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(x)
        shifted = F.pad(x, (0, 1, 0, 1))[:, :, 1:, 1:]
        return self.bn(torch.cat([self.conv_1(x), self.conv_2(shifted)], dim=1))


def _conv_7x1_1x7(c: int, stride: int, affine: bool) -> nn.Module:
    # AmoebaNet's factorised 7x7 conv.
    return nn.Sequential(
        nn.ReLU(),
        nn.Conv2d(c, c, (1, 7), stride=(1, stride), padding=(0, 3), bias=False),
        nn.Conv2d(c, c, (7, 1), stride=(stride, 1), padding=(3, 0), bias=False),
        batch_norm(c, affine),
    )


OpFactory = Callable[[int, int, bool], nn.Module]

# name -> factory(channels, stride, affine). Every op keeps the channel count; stride 2 halves the size.
OPS: dict[str, OpFactory] = {
    "none": lambda c, stride, affine: Zero(stride),
    "avg_pool_3x3": lambda c, stride, affine: nn.AvgPool2d(3, stride=stride, padding=1, count_include_pad=False),
    "max_pool_3x3": lambda c, stride, affine: MaxPool2d(3, stride=stride, padding=1),
    "skip_connect": lambda c, stride, affine: nn.Identity() if stride == 1 else FactorizedReduce(c, c, affine),
    "sep_conv_3x3": lambda c, stride, affine: SepConv(c, c, 3, stride, 1, affine),
    "sep_conv_5x5": lambda c, stride, affine: SepConv(c, c, 5, stride, 2, affine),
    "sep_conv_7x7": lambda c, stride, affine: SepConv(c, c, 7, stride, 3, affine),
    "dil_conv_3x3": lambda c, stride, affine: DilConv(c, c, 3, stride, 2, 2, affine),
    "dil_conv_5x5": lambda c, stride, affine: DilConv(c, c, 5, stride, 4, 2, affine),
    "conv_7x1_1x7": _conv_7x1_1x7,
}


def make_op(name: str, channels: int, stride: int, affine: bool = True) -> nn.Module:
    """The op `name` on `channels` channels (KeyError on an unknown name; genotypes are checked before)."""
    return OPS[name](channels, stride, affine)
