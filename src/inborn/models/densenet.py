"""DenseNet-BC of Huang et al. (2017) with a CIFAR stem (3x3 conv of 2*growth channels, no max-pool).

Growth 32, bottleneck 4*growth, compression 0.5; `width` scales the growth rate, which sets
every layer's width.
"""

from __future__ import annotations

import torch
import torch.nn as nn

from inborn.errors import InbornError
from inborn.models.layers import batch_norm, scaled
from inborn.models.registry import register_model


class DenseLayer(nn.Module):
    """BN-ReLU-1x1 (to 4*growth), BN-ReLU-3x3 (to growth); the output is appended to the input."""

    def __init__(self, cin: int, growth: int, affine_bn: bool) -> None:
        super().__init__()
        self.bn1 = batch_norm(cin, affine_bn)
        self.conv1 = nn.Conv2d(cin, 4 * growth, 1, bias=False)
        self.bn2 = batch_norm(4 * growth, affine_bn)
        self.conv2 = nn.Conv2d(4 * growth, growth, 3, padding=1, bias=False)
        self.relu = nn.ReLU(inplace=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv1(self.relu(self.bn1(x)))
        out = self.conv2(self.relu(self.bn2(out)))
        return torch.cat([out, x], 1)


class Transition(nn.Module):
    """BN-ReLU-1x1 conv halving the channels, then 2x2 average pooling (skipped once the map is 1x1)."""

    def __init__(self, cin: int, cout: int, affine_bn: bool, pool: bool) -> None:
        super().__init__()
        self.bn = batch_norm(cin, affine_bn)
        self.relu = nn.ReLU(inplace=False)
        self.conv = nn.Conv2d(cin, cout, 1, bias=False)
        self.pool = nn.AvgPool2d(2) if pool else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(self.conv(self.relu(self.bn(x))))


class DenseNet(nn.Module):
    """Stem, four dense blocks joined by transitions, final BN-ReLU, global average pool, linear."""

    def __init__(
        self, blocks: list[int], *, num_classes: int, in_channels: int, width: float, image_size: int,
        affine_bn: bool, growth: int = 32, compression: float = 0.5,
    ) -> None:
        super().__init__()
        g = scaled(growth, width)
        ch = 2 * g
        layers: list[nn.Module] = [nn.Conv2d(in_channels, ch, 3, padding=1, bias=False)]
        size = image_size
        for i, n in enumerate(blocks):
            for _ in range(n):
                layers.append(DenseLayer(ch, g, affine_bn))
                ch += g
            if i < len(blocks) - 1:
                out = int(ch * compression)
                layers.append(Transition(ch, out, affine_bn, pool=size >= 2))
                size //= 2 if size >= 2 else 1
                ch = out
        layers += [batch_norm(ch, affine_bn), nn.ReLU(inplace=False)]
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(ch, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(self.pool(self.features(x)), 1))


_PLANS = {"densenet121": [6, 12, 24, 16], "densenet169": [6, 12, 32, 32]}


def _register(name: str) -> None:
    depth = name[8:]

    @register_model(name, family="densenet", summary=f"DenseNet-BC-{depth}, growth 32, CIFAR stem")
    def build(
        *, num_classes: int, in_channels: int, width: float, image_size: int, affine_bn: bool, **extra
    ) -> nn.Module:
        if extra:
            raise InbornError(f"model {name!r} takes no extra options, got {sorted(extra)}")
        return DenseNet(
            _PLANS[name], num_classes=num_classes, in_channels=in_channels, width=width,
            image_size=image_size, affine_bn=affine_bn,
        )


for _name in _PLANS:
    _register(_name)
