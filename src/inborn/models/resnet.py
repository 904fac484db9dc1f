"""ResNets of He et al. (2016) with two stems sharing one set of blocks.

The CIFAR stem (3x3 conv, stride 1, no max-pool) keeps the resolution that 32x32 images
need; the ImageNet stem (7x7 stride-2 conv + 3x3 max-pool) is the original one.
"""

from __future__ import annotations

import torch
import torch.nn as nn

from inborn.errors import InbornError
from inborn.models.kernels import MaxPool2d
from inborn.models.layers import batch_norm, scaled
from inborn.models.registry import register_model


def _no_extra(name: str, extra: dict) -> None:
    if extra:
        raise InbornError(f"model {name!r} takes no extra options, got {sorted(extra)}")


def _projection(cin: int, cout: int, stride: int, affine_bn: bool) -> nn.Module:
    """1x1 conv + BN when the block changes shape, so the residual sum lines up."""
    if stride == 1 and cin == cout:
        return nn.Identity()
    return nn.Sequential(nn.Conv2d(cin, cout, 1, stride=stride, bias=False), batch_norm(cout, affine_bn))


class BasicBlock(nn.Module):
    """Two 3x3 convs; the block of ResNet-18/34."""

    expansion = 1

    def __init__(self, cin: int, planes: int, stride: int, affine_bn: bool) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, planes, 3, stride=stride, padding=1, bias=False)
        self.bn1 = batch_norm(planes, affine_bn)
        self.conv2 = nn.Conv2d(planes, planes, 3, padding=1, bias=False)
        self.bn2 = batch_norm(planes, affine_bn)
        self.shortcut = _projection(cin, planes, stride, affine_bn)
        self.relu = nn.ReLU(inplace=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + self.shortcut(x))


class Bottleneck(nn.Module):
    """1x1 reduce, 3x3, 1x1 expand (x4); the block of ResNet-50/101. Stride sits on the 3x3 (v1.5)."""

    expansion = 4

    def __init__(self, cin: int, planes: int, stride: int, affine_bn: bool) -> None:
        super().__init__()
        cout = planes * self.expansion
        self.conv1 = nn.Conv2d(cin, planes, 1, bias=False)
        self.bn1 = batch_norm(planes, affine_bn)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn2 = batch_norm(planes, affine_bn)
        self.conv3 = nn.Conv2d(planes, cout, 1, bias=False)
        self.bn3 = batch_norm(cout, affine_bn)
        self.shortcut = _projection(cin, cout, stride, affine_bn)
        self.relu = nn.ReLU(inplace=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + self.shortcut(x))


class ResNet(nn.Module):
    """Stem, four stages (strides 1, 2, 2, 2), global average pool, linear head."""

    def __init__(
        self, block: type[BasicBlock] | type[Bottleneck], layers: list[int], *, num_classes: int,
        in_channels: int, width: float, affine_bn: bool, imagenet_stem: bool,
    ) -> None:
        super().__init__()
        stem = scaled(64, width)
        if imagenet_stem:
            self.stem = nn.Sequential(
                nn.Conv2d(in_channels, stem, 7, stride=2, padding=3, bias=False),
                batch_norm(stem, affine_bn), nn.ReLU(inplace=True),
                MaxPool2d(3, stride=2, padding=1),
            )
        else:
            self.stem = nn.Sequential(
                nn.Conv2d(in_channels, stem, 3, padding=1, bias=False),
                batch_norm(stem, affine_bn), nn.ReLU(inplace=True),
            )
        stages: list[nn.Module] = []
        cin = stem
        for i, (base, n) in enumerate(zip((64, 128, 256, 512), layers, strict=True)):
            planes = scaled(base, width)
            blocks: list[nn.Module] = []
            for j in range(n):
                blocks.append(block(cin, planes, 2 if (i > 0 and j == 0) else 1, affine_bn))
                cin = planes * block.expansion
            stages.append(nn.Sequential(*blocks))
        self.layer1, self.layer2, self.layer3, self.layer4 = stages
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(cin, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(self.pool(x), 1))


_PLANS: dict[int, tuple[type[BasicBlock] | type[Bottleneck], list[int]]] = {
    18: (BasicBlock, [2, 2, 2, 2]),
    34: (BasicBlock, [3, 4, 6, 3]),
    50: (Bottleneck, [3, 4, 6, 3]),
    101: (Bottleneck, [3, 4, 23, 3]),
}


def _register(depth: int, imagenet_stem: bool) -> None:
    name = f"resnet{depth}" + ("_imagenet" if imagenet_stem else "")
    stem = "ImageNet stem (7x7/2 conv + max-pool)" if imagenet_stem else "CIFAR stem (3x3 conv, no max-pool)"

    @register_model(name, family="resnet", summary=f"ResNet-{depth}, {stem}")
    def build(
        *, num_classes: int, in_channels: int, width: float, image_size: int, affine_bn: bool, **extra
    ) -> nn.Module:
        _no_extra(name, extra)
        block, layers = _PLANS[depth]
        return ResNet(
            block, layers, num_classes=num_classes, in_channels=in_channels, width=width,
            affine_bn=affine_bn, imagenet_stem=imagenet_stem,
        )


for _depth in (18, 34, 50):
    _register(_depth, imagenet_stem=False)
for _depth in (18, 34, 50, 101):
    _register(_depth, imagenet_stem=True)
