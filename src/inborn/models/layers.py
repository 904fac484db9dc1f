"""Reusable pieces shared by the model families."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn as nn

from inborn.errors import InbornError


class Normalize(nn.Module):
    """Per-channel (x - mean) / std as the model's first layer, so the model takes pixels in [0,1]."""

    def __init__(self, mean: Sequence[float], std: Sequence[float]) -> None:
        super().__init__()
        self.register_buffer("mean", torch.tensor(list(mean), dtype=torch.float32).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(list(std), dtype=torch.float32).view(1, -1, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # Broadcasting would silently turn a grey image into three equal channels of an RGB model.
        if x.dim() != 4 or x.shape[1] != self.mean.shape[1]:
            raise InbornError(f"the model takes images of {self.mean.shape[1]} channels (N×C×H×W), "
                              f"got a batch of shape {tuple(x.shape)}")
        return (x - self.mean) / self.std


def batch_norm(channels: int, affine: bool = True) -> nn.BatchNorm2d:
    """BatchNorm2d; `affine=False` gives the non-learnable kind that supermask search uses."""
    return nn.BatchNorm2d(channels, affine=affine)


def append_max_pool(layers: list[nn.Module], pool: nn.Module) -> None:
    """Append a max-pool to a conv-BN-ReLU stack, placed before its last ReLU.

    Max-pool and ReLU commute exactly, values and gradients alike (a window's maximum is
    positive in both orders or its gradient is zero in both), and the ReLU then runs on a
    quarter of the values.
    """
    if layers and isinstance(layers[-1], nn.ReLU):
        layers.insert(len(layers) - 1, pool)
    else:
        layers.append(pool)


def scaled(channels: int, width: float, minimum: int = 1) -> int:
    """A channel count scaled by the width multiplier."""
    return max(minimum, int(round(channels * width)))


class Classifier(nn.Module):
    """Normalisation, then a feature network; the common wrapper for every family."""

    def __init__(self, body: nn.Module, mean: Sequence[float], std: Sequence[float]) -> None:
        super().__init__()
        self.normalize = Normalize(mean, std)
        self.body = body

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(self.normalize(x))
