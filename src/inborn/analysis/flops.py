"""Model cost: multiply-accumulates of one forward pass and parameter counts.

DARTS-family papers report "FLOPs" / "Mult-Adds" as multiply-accumulates (MACs) of one
image; `count_flops` follows that convention. Counting is done by torch's own
`FlopCounterMode`, which covers convolutions and matrix products (2 FLOPs per MAC) and,
like those papers, ignores biases, normalisation and activations.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn as nn
from torch.utils.flop_counter import FlopCounterMode

from inborn.errors import InbornError
from inborn.masks.convert import current_masks, masked_layers


def count_flops(model: nn.Module, input_shape: Sequence[int], *, device: str | torch.device | None = None) -> int:
    """MACs of one forward pass of a single image of `input_shape` (C, H, W), in eval mode.

    `device` defaults to the model's own. A masked (supermask) layer counts as dense: its
    zeros are not skipped by the hardware.
    """
    if device is None:
        first = next(iter(model.parameters()), None)
        if first is None:
            first = next(iter(model.buffers()), None)
        device = first.device if first is not None else "cpu"
    shape = tuple(int(s) for s in input_shape)
    if len(shape) == 4:  # (1, C, H, W) given: still one image
        if shape[0] != 1:
            raise InbornError(f"count_flops counts one image; got a batch of {shape[0]}")
        shape = shape[1:]
    was_training = model.training
    model.eval()  # BatchNorm in train mode would update its statistics on the zeros
    try:
        x = torch.zeros((1, *shape), device=device)
        counter = FlopCounterMode(display=False)
        with torch.no_grad(), counter:
            model(x)
    finally:
        model.train(was_training)
    return int(counter.get_total_flops()) // 2


def count_parameters(model: nn.Module, *, kept_only: bool = False, include_auxiliary: bool = False) -> int:
    """Parameters of the network (shared tensors counted once).

    Masked layers' `scores` are left out in both modes: they choose the mask and are not part
    of the function the network computes. With `kept_only`, a masked layer's weight counts only
    its kept entries (its mask), everything else in full. An auxiliary head (DARTS) is left out
    unless `include_auxiliary`: it only trains the network, and DARTS's counts leave it out too.
    """

    layers = masked_layers(model)
    scores = {id(m.scores) for m in layers if getattr(m, "scores", None) is not None}
    skip = set(scores)
    if not include_auxiliary:
        skip |= {id(p) for name, p in model.named_parameters() if "auxiliary" in name}
    total = sum(p.numel() for p in model.parameters() if id(p) not in skip)
    if kept_only and layers:
        with torch.no_grad():
            masks = current_masks(model)
        for layer, mask in zip(layers, masks, strict=True):
            if id(layer.weight) not in skip:
                total -= layer.weight.numel() - int(mask.count_nonzero())
    return total
