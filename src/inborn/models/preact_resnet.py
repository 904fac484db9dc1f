"""PreActResNet-18 of He et al. (2016, "Identity Mappings"), in the CIFAR layout common in robustness work.

BN-ReLU comes before each conv, so the identity path stays clean; a final BN-ReLU is
needed because the last block's output is otherwise never normalised or activated.
"""

from __future__ import annotations

import torch
import torch.nn as nn

from inborn.errors import InbornError
from inborn.models.layers import batch_norm, scaled
from inborn.models.registry import register_model


class PreActBlock(nn.Module):
    """BN-ReLU-conv twice; a 1x1 shortcut conv on the pre-activated input when the shape changes."""

    def __init__(self, cin: int, cout: int, stride: int, affine_bn: bool, dropout: float = 0.0) -> None:
        super().__init__()
        self.bn1 = batch_norm(cin, affine_bn)
        self.conv1 = nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False)
        self.bn2 = batch_norm(cout, affine_bn)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1, bias=False)
        self.relu = nn.ReLU(inplace=False)
        # Between the two convs, as in Wide ResNets (no parameters, so checkpoints are unchanged).
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.shortcut: nn.Module | None = None
        if stride != 1 or cin != cout:
            self.shortcut = nn.Conv2d(cin, cout, 1, stride=stride, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pre = self.relu(self.bn1(x))
        skip = x if self.shortcut is None else self.shortcut(pre)
        out = self.dropout(self.conv1(pre))
        out = self.conv2(self.relu(self.bn2(out)))
        return out + skip


class PreActResNet(nn.Module):
    """3x3 stem conv, four pre-activation stages, final BN-ReLU, global average pool, linear head."""

    def __init__(
        self, layers: list[int], *, num_classes: int, in_channels: int, width: float, affine_bn: bool
    ) -> None:
        super().__init__()
        cin = scaled(64, width)
        self.stem = nn.Conv2d(in_channels, cin, 3, padding=1, bias=False)
        stages: list[nn.Module] = []
        for i, (base, n) in enumerate(zip((64, 128, 256, 512), layers, strict=True)):
            cout = scaled(base, width)
            blocks: list[nn.Module] = []
            for j in range(n):
                blocks.append(PreActBlock(cin, cout, 2 if (i > 0 and j == 0) else 1, affine_bn))
                cin = cout
            stages.append(nn.Sequential(*blocks))
        self.layer1, self.layer2, self.layer3, self.layer4 = stages
        self.bn = batch_norm(cin, affine_bn)
        self.relu = nn.ReLU(inplace=False)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(cin, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.layer4(self.layer3(self.layer2(self.layer1(self.stem(x)))))
        x = self.relu(self.bn(x))
        return self.fc(torch.flatten(self.pool(x), 1))


@register_model(
    "preact_resnet18", family="preact_resnet", summary="PreActResNet-18, CIFAR stem, final BN-ReLU"
)
def preact_resnet18(
    *, num_classes: int, in_channels: int, width: float, image_size: int, affine_bn: bool, **extra
) -> nn.Module:
    """The standard robust-training baseline of Madry et al. / Rice et al."""
    if extra:
        raise InbornError(f"model 'preact_resnet18' takes no extra options, got {sorted(extra)}")
    return PreActResNet(
        [2, 2, 2, 2], num_classes=num_classes, in_channels=in_channels, width=width, affine_bn=affine_bn
    )
