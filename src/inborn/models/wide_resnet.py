"""Wide ResNets of Zagoruyko & Komodakis (2016): WRN-depth-k with pre-activation wide basic blocks.

WRN-34-10 and WRN-28-10 are the usual large CIFAR baselines for adversarial training.
"""

from __future__ import annotations

import torch
import torch.nn as nn

from inborn.errors import InbornError
from inborn.models.layers import batch_norm, scaled
from inborn.models.preact_resnet import PreActBlock
from inborn.models.registry import register_model


class WideResNet(nn.Module):
    """3x3 stem of 16 channels, three stages of 16k/32k/64k channels, final BN-ReLU, pool, linear."""

    def __init__(
        self, *, depth: int, widen_factor: int, dropout: float, num_classes: int, in_channels: int,
        width: float, affine_bn: bool,
    ) -> None:
        super().__init__()
        n = (depth - 4) // 6
        cin = scaled(16, width)
        self.stem = nn.Conv2d(in_channels, cin, 3, padding=1, bias=False)
        stages: list[nn.Module] = []
        for i, base in enumerate((16, 32, 64)):
            cout = scaled(base * widen_factor, width)
            blocks: list[nn.Module] = []
            for j in range(n):
                blocks.append(PreActBlock(cin, cout, 2 if (i > 0 and j == 0) else 1, affine_bn, dropout))
                cin = cout
            stages.append(nn.Sequential(*blocks))
        self.block1, self.block2, self.block3 = stages
        self.bn = batch_norm(cin, affine_bn)
        self.relu = nn.ReLU(inplace=False)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(cin, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.block3(self.block2(self.block1(self.stem(x))))
        x = self.relu(self.bn(x))
        return self.fc(torch.flatten(self.pool(x), 1))


@register_model(
    "wide_resnet", family="wide_resnet", summary="WRN-depth-k; options depth, widen_factor, dropout"
)
def wide_resnet(
    *, num_classes: int, in_channels: int, width: float, image_size: int, affine_bn: bool,
    depth: int = 34, widen_factor: int = 10, dropout: float = 0.0, **extra,
) -> nn.Module:
    """Any WRN; `width` scales on top of `widen_factor` so quick runs can shrink a WRN-34-10."""
    if extra:
        raise InbornError(f"model 'wide_resnet' takes depth, widen_factor, dropout; got {sorted(extra)}")
    if depth < 10 or (depth - 4) % 6 != 0:
        raise InbornError(f"wide_resnet depth must be 6n+4 with n >= 1 (10, 16, 22, 28, 34), got {depth}")
    if widen_factor < 1:
        raise InbornError(f"wide_resnet widen_factor must be a positive integer, got {widen_factor}")
    if not 0.0 <= dropout < 1.0:
        raise InbornError(f"wide_resnet dropout must be in [0, 1), got {dropout}")
    return WideResNet(
        depth=depth, widen_factor=widen_factor, dropout=dropout, num_classes=num_classes,
        in_channels=in_channels, width=width, affine_bn=affine_bn,
    )


def _preset(name: str, depth: int, kw: dict) -> nn.Module:
    fixed = sorted({"depth", "widen_factor"} & kw.keys())
    if fixed:
        raise InbornError(f"model {name!r} fixes {fixed}; use 'wide_resnet' to choose them")
    return wide_resnet(depth=depth, widen_factor=10, **kw)


@register_model("wrn34_10", family="wide_resnet", summary="WRN-34-10 (the TRADES / adversarial baseline)")
def wrn34_10(**kw) -> nn.Module:
    """Preset so the common baseline is one name; `dropout` still passes through."""
    return _preset("wrn34_10", 34, kw)


@register_model("wrn28_10", family="wide_resnet", summary="WRN-28-10 (Zagoruyko & Komodakis' CIFAR model)")
def wrn28_10(**kw) -> nn.Module:
    """Preset so the common baseline is one name; `dropout` still passes through."""
    return _preset("wrn28_10", 28, kw)
