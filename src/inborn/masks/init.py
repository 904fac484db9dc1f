"""Initialisations of the frozen random weights, reproducible from a seed alone."""

from __future__ import annotations

import math

import torch

from inborn.errors import InbornError
from inborn.masks.config import INITS

_RELU_GAIN = math.sqrt(2.0)


def fans(shape: torch.Size) -> tuple[int, int]:
    receptive = math.prod(shape[2:]) if len(shape) > 2 else 1
    return shape[1] * receptive, shape[0] * receptive


def random_weight(
    shape: torch.Size, init: str, generator: torch.Generator, keep_ratio: float = 1.0, scale_fan: bool = False
) -> torch.Tensor:
    """A weight tensor drawn from `init` (on CPU, so every device gets the same numbers).

    signed_constant: ±√2/√fan_in with random signs (Ramanujan et al.'s best, used by RST).
    `scale_fan` multiplies the fan (fan_in, and fan_out for Xavier) by the keep ratio k, so the
    std grows by 1/√k and a layer that keeps k of its weights keeps a dense layer's activation
    scale: the scaled inits of Ramanujan et al. The reference code (hidden-networks, and RST's
    copy of its builder) multiplies by 1 − prune_rate while its GetSubnet keeps the top
    prune_rate share, i.e. by the DROPPED share; inborn follows the stated intent (the two agree
    at k = 0.5). The reference also leaves kaiming_uniform and xavier_normal unscaled; RST's own
    configs never set scale_fan (docs/tickets.md, "Faithful to the reference").
    """
    fan_in, fan_out = fans(shape)
    if scale_fan:
        fan_in, fan_out = fan_in * keep_ratio, fan_out * keep_ratio
    normal = torch.randn(shape, generator=generator)
    std = _RELU_GAIN / math.sqrt(fan_in)
    if init == "signed_constant":
        return normal.sign() * std
    if init == "kaiming_normal":
        return normal * std
    if init == "kaiming_uniform":
        bound = math.sqrt(3.0) * std
        return (torch.rand(shape, generator=generator) * 2 - 1) * bound
    if init == "xavier_normal":
        return normal * math.sqrt(2.0 / (fan_in + fan_out))
    raise InbornError(f"unknown weight init {init!r}; known: {', '.join(INITS)}")


def initial_scores(shape: torch.Size, generator: torch.Generator) -> torch.Tensor:
    """Kaiming-uniform with a=√5 (PyTorch's default layer init), as the reference scores use."""
    fan_in, _ = fans(shape)
    bound = 1.0 / math.sqrt(fan_in)
    return (torch.rand(shape, generator=generator) * 2 - 1) * bound
