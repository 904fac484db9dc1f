"""Masked layers: a frozen weight, learnable scores, and a mask = top-k of |scores|.

The forward uses `weight * mask`. The mask's gradient passes straight through to |scores|
(so to the scores, through abs), as in Ramanujan et al. and the RST reference.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from inborn.masks.packing import unpack_on_device
from inborn.masks.patterns import layer_mask
from inborn.models.kernels import conv2d, is_channels_last


class MaskedLayer(nn.Module):
    """Mixin for the mask logic shared by MaskedConv2d and MaskedLinear."""

    weight: nn.Parameter
    scores: nn.Parameter

    def _init_mask_state(self, keep_ratio: float, pattern: str, keep_count: str = "round") -> None:
        self.keep_ratio = keep_ratio
        self.pattern = pattern
        self.keep_count = keep_count  # kept_groups' rule: "round" or the authors' "reference"
        # A mask fixed from outside (fine-tuning, a loaded ticket) wins over the scores.
        self.register_buffer("fixed_mask", None, persistent=False)
        # Or a fixed mask kept as bits (a ticket family), unpacked at each forward: a family's
        # memory stays one weight tensor plus 1 bit per weight per ticket.
        self.packed_mask: torch.Tensor | None = None
        # Set for the span of one batch by `reuse_masks`, so the mask is computed once per batch.
        self._batch_mask: torch.Tensor | None = None

    def compute_mask(self) -> torch.Tensor:
        return layer_mask(self.scores, self.keep_ratio, self.pattern, layer=getattr(self, "layer_name", "layer"),
                          count=self.keep_count)

    @property
    def mask_is_fixed(self) -> bool:
        return self.fixed_mask is not None or self.packed_mask is not None

    def current_mask(self) -> torch.Tensor:
        if self.fixed_mask is not None:
            return self.fixed_mask
        if self.packed_mask is not None:
            return unpack_on_device(self.packed_mask, self.weight.shape).to(self.weight.dtype)
        if self._batch_mask is not None:
            return self._batch_mask
        return self.compute_mask()

    def effective_weight(self) -> torch.Tensor:
        mask = self.current_mask()
        if not self.mask_is_fixed and self.scores is not None and self.scores.requires_grad and torch.is_grad_enabled():
            # Straight-through: the value is the 0/1 mask, the gradient flows to |scores|.
            magnitude = self.scores.abs()
            mask = mask + (magnitude - magnitude.detach())
        return self.weight * mask


class MaskedConv2d(nn.Conv2d, MaskedLayer):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.padding_mode != "zeros":
            return self._conv_forward(x, self.effective_weight(), self.bias)
        return conv2d(x, self.effective_weight(), self.bias, self.stride, self.padding, self.dilation, self.groups,
                      channels_last=is_channels_last(self.weight))


class MaskedLinear(nn.Linear, MaskedLayer):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.effective_weight(), self.bias)
