"""Small networks of Frankle & Carbin (2019): LeNet-300-100 (`fc`) and Conv-2/4/6/8.

Conv-n here puts a BatchNorm after each conv by default (its kind set by `affine_bn`),
which makes short CPU-scale training stable; `bn=False` gives the original layout.
"""

from __future__ import annotations

import torch.nn as nn

from inborn.models.kernels import MaxPool2d
from inborn.models.layers import append_max_pool, batch_norm, scaled
from inborn.models.registry import register_model

_CONV_PLANS = {
    "conv2": [64, 64, "M"],
    "conv4": [64, 64, "M", 128, 128, "M"],
    "conv6": [64, 64, "M", 128, 128, "M", 256, 256, "M"],
    "conv8": [64, 64, "M", 128, 128, "M", 256, 256, "M", 512, 512, "M"],
}


def _conv_net(
    plan: list, *, num_classes: int, in_channels: int, width: float, image_size: int,
    affine_bn: bool, bn: bool = True, hidden: int = 256,
) -> nn.Sequential:
    layers: list[nn.Module] = []
    channels, size = in_channels, image_size
    for item in plan:
        if item == "M":
            append_max_pool(layers, MaxPool2d(2))
            size //= 2
            continue
        out = scaled(item, width)
        layers.append(nn.Conv2d(channels, out, 3, padding=1, bias=not bn))
        if bn:
            layers.append(batch_norm(out, affine_bn))
        layers.append(nn.ReLU(inplace=True))
        channels = out
    h = scaled(hidden, width)
    layers += [
        nn.Flatten(),
        nn.Linear(channels * size * size, h), nn.ReLU(inplace=True),
        nn.Linear(h, h), nn.ReLU(inplace=True),
        nn.Linear(h, num_classes),
    ]
    return nn.Sequential(*layers)


def _register_conv(name: str) -> None:
    depth = name[4:]

    @register_model(name, family="frankle", summary=f"Conv-{depth} of Frankle & Carbin (BN after each conv)")
    def build(**kw) -> nn.Module:
        return _conv_net(_CONV_PLANS[name], **kw)


for _name in _CONV_PLANS:
    _register_conv(_name)


@register_model("fc", family="frankle", summary="LeNet-300-100 fully connected network")
def fc(*, num_classes: int, in_channels: int, width: float, image_size: int, affine_bn: bool) -> nn.Module:
    h1, h2 = scaled(300, width), scaled(100, width)
    return nn.Sequential(
        nn.Flatten(),
        nn.Linear(in_channels * image_size * image_size, h1), nn.ReLU(inplace=True),
        nn.Linear(h1, h2), nn.ReLU(inplace=True),
        nn.Linear(h2, num_classes),
    )
