"""Small models and helpers the tests share."""

from __future__ import annotations

import torch
import torch.nn as nn


class Linear(nn.Module):
    """A linear classifier on flattened pixels: its worst case under L-inf is known in closed form."""

    def __init__(self, in_features: int, classes: int, seed: int = 0) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.fc = nn.Linear(in_features, classes)
        with torch.no_grad():
            self.fc.weight.copy_(torch.randn(classes, in_features, generator=g))
            self.fc.bias.copy_(torch.randn(classes, generator=g))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x.flatten(1))
