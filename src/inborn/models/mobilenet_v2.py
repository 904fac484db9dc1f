"""MobileNetV2 of Sandler et al. (2018), with strides adapted to 32x32 inputs.

The ImageNet model downsamples 32x; on CIFAR that leaves 1x1 maps after the third stage.
As in the common CIFAR versions, the stem and the 24-channel stage use stride 1 (8x overall).
"""

from __future__ import annotations

import torch
import torch.nn as nn

from inborn.errors import InbornError
from inborn.models.layers import batch_norm, scaled
from inborn.models.registry import register_model

# (expansion t, output channels c, repeats n, first stride s); the 24-channel stage has s=1 (2 on ImageNet).
_STAGES = [
    (1, 16, 1, 1), (6, 24, 2, 1), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1),
]


def _conv_bn(
    cin: int, cout: int, kernel: int, stride: int, groups: int, affine_bn: bool, act: bool
) -> nn.Module:
    layers: list[nn.Module] = [
        nn.Conv2d(cin, cout, kernel, stride=stride, padding=kernel // 2, groups=groups, bias=False),
        batch_norm(cout, affine_bn),
    ]
    if act:
        layers.append(nn.ReLU6(inplace=True))
    return nn.Sequential(*layers)


class InvertedResidual(nn.Module):
    """1x1 expand, 3x3 depthwise, linear 1x1 project; identity skip only when the shape is unchanged."""

    def __init__(self, cin: int, cout: int, stride: int, expansion: int, affine_bn: bool) -> None:
        super().__init__()
        hidden = cin * expansion
        layers: list[nn.Module] = []
        if expansion != 1:
            layers.append(_conv_bn(cin, hidden, 1, 1, 1, affine_bn, act=True))
        layers.append(_conv_bn(hidden, hidden, 3, stride, hidden, affine_bn, act=True))
        layers.append(_conv_bn(hidden, cout, 1, 1, 1, affine_bn, act=False))
        self.conv = nn.Sequential(*layers)
        self.use_skip = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv(x)
        return x + out if self.use_skip else out


class MobileNetV2(nn.Module):
    """Stride-1 32-channel stem, seven inverted-residual stages, 1x1 conv to 1280, pool, linear."""

    def __init__(self, *, num_classes: int, in_channels: int, width: float, affine_bn: bool) -> None:
        super().__init__()
        cin = scaled(32, width)
        layers: list[nn.Module] = [_conv_bn(in_channels, cin, 3, 1, 1, affine_bn, act=True)]
        for t, c, n, s in _STAGES:
            cout = scaled(c, width)
            for j in range(n):
                layers.append(InvertedResidual(cin, cout, s if j == 0 else 1, t, affine_bn))
                cin = cout
        last = scaled(1280, width)
        layers.append(_conv_bn(cin, last, 1, 1, 1, affine_bn, act=True))
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(last, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(self.pool(self.features(x)), 1))


@register_model("mobilenet_v2", family="mobilenet", summary="MobileNetV2, CIFAR strides (8x downsampling)")
def mobilenet_v2(
    *, num_classes: int, in_channels: int, width: float, image_size: int, affine_bn: bool, **extra
) -> nn.Module:
    """A small, depthwise-separable baseline; `width` scales every layer, the 1280 head included."""
    if extra:
        raise InbornError(f"model 'mobilenet_v2' takes no extra options, got {sorted(extra)}")
    return MobileNetV2(num_classes=num_classes, in_channels=in_channels, width=width, affine_bn=affine_bn)
