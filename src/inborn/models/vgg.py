"""VGG-11/16 with BatchNorm (Simonyan & Zisserman, 2015) in the CIFAR layout.

The three big fully connected layers of the ImageNet model are replaced by one linear layer on
globally pooled features, as in the usual CIFAR versions; that is what keeps VGG-16 at ~14.7M.
"""

from __future__ import annotations

import torch
import torch.nn as nn

from inborn.errors import InbornError
from inborn.models.kernels import MaxPool2d
from inborn.models.layers import append_max_pool, batch_norm, scaled
from inborn.models.registry import register_model

_PLANS: dict[str, list[int | str]] = {
    "vgg11_bn": [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    "vgg16_bn": [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"],
}


class VGG(nn.Module):
    """Conv-BN-ReLU stacks with max-pools, global average pool, one linear layer."""

    def __init__(
        self, plan: list[int | str], *, num_classes: int, in_channels: int, width: float,
        image_size: int, affine_bn: bool,
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        cin, size = in_channels, image_size
        for item in plan:
            if item == "M":
                # Small inputs (16x16, 28x28) reach 1x1 before the last pool; pooling further would fail.
                if size >= 2:
                    append_max_pool(layers, MaxPool2d(2))
                    size //= 2
                continue
            cout = scaled(int(item), width)
            # Conv bias kept (as in the reference CIFAR VGG), so the parameter count is the standard one.
            layers += [nn.Conv2d(cin, cout, 3, padding=1), batch_norm(cout, affine_bn), nn.ReLU(inplace=True)]
            cin = cout
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(cin, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(self.pool(self.features(x)), 1))


def _register(name: str) -> None:
    depth = name[3:5]

    @register_model(name, family="vgg", summary=f"VGG-{depth} with BatchNorm, CIFAR layout (one linear head)")
    def build(
        *, num_classes: int, in_channels: int, width: float, image_size: int, affine_bn: bool, **extra
    ) -> nn.Module:
        if extra:
            raise InbornError(f"model {name!r} takes no extra options, got {sorted(extra)}")
        return VGG(
            _PLANS[name], num_classes=num_classes, in_channels=in_channels, width=width,
            image_size=image_size, affine_bn=affine_bn,
        )


for _name in _PLANS:
    _register(_name)
