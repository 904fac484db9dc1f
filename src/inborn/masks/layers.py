"""Masked layers: a frozen weight, learnable scores, and a mask = top-k of |scores|.

The forward uses `weight * mask`. The mask's gradient passes straight through to |scores|
(so to the scores, through abs), as in Ramanujan et al. and the RST reference.

A forward that needs no gradient to the weight or the scores (an attack's, whose scores are
frozen; an evaluation's; a ticket family's) reuses the product `weight * mask` of the last such
forward while nothing it was computed from has changed: the same weight, scores and mask
tensors at the same version (an optimiser step bumps the version of what it updates). The PGD-7
steps of a search batch then multiply once, and an evaluation of fixed masks once in all.
"""

from __future__ import annotations

import contextlib
import weakref
from collections.abc import Iterator
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F

from inborn.masks.packing import unpack_on_device
from inborn.masks.patterns import layer_mask
from inborn.models.kernels import conv2d, is_channels_last

_cache_enabled = True


@contextlib.contextmanager
def uncached() -> Iterator[None]:
    """Every forward recomputes `weight * mask` inside (the reference the cache is tested and timed against)."""
    global _cache_enabled
    was, _cache_enabled = _cache_enabled, False
    try:
        yield
    finally:
        _cache_enabled = was


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
        # Or a fixed mask kept as bits (a ticket family), unpacked when the product is computed
        # (once per ticket switch): a family keeps 1 bit per weight per ticket.
        self.packed_mask: torch.Tensor | None = None
        # Set for the span of one batch by `reuse_masks`, so the mask is computed once per batch.
        self._batch_mask: torch.Tensor | None = None
        # (what it was computed from, weight * mask): see `_product_key`. Not a buffer: never saved.
        self._product: tuple[tuple[Any, ...], torch.Tensor] | None = None

    def __getstate__(self) -> dict[str, Any]:
        # The cached product holds weak references (not picklable); a copy recomputes it.
        state = super().__getstate__()
        state["_product"] = None
        return state

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

    def _needs_graph(self) -> bool:
        """Whether this forward must record the product for a gradient to the weight or the scores."""
        if not torch.is_grad_enabled():
            return False
        return self.weight.requires_grad or self._straight_through()

    def _straight_through(self) -> bool:
        return not self.mask_is_fixed and self.scores is not None and self.scores.requires_grad

    def _product_key(self) -> tuple[Any, ...]:
        """Everything `weight * current_mask()` depends on. Tensors by weak reference (a tensor
        freed and another made at its address must not match) and version (in-place updates)."""
        if self.fixed_mask is not None:
            source: tuple[Any, ...] = ("fixed", *_tensor_key(self.fixed_mask))
        elif self.packed_mask is not None:
            source = ("packed", *_tensor_key(self.packed_mask))
        elif self._batch_mask is not None:
            source = ("batch", *_tensor_key(self._batch_mask))
        else:
            source = ("scores", *_tensor_key(self.scores), self.keep_ratio, self.pattern, self.keep_count)
        return (*_tensor_key(self.weight), *source)

    def effective_weight(self) -> torch.Tensor:
        if self._needs_graph() or not _cache_enabled or torch.compiler.is_compiling():
            # A fresh product in this forward's graph (compiled code traces it instead of caching).
            mask = self.current_mask()
            if self._straight_through():
                # Straight-through: the value is the 0/1 mask, the gradient flows to |scores|.
                magnitude = self.scores.abs()
                mask = mask + (magnitude - magnitude.detach())
            return self.weight * mask
        key = self._product_key()
        if self._product is not None and _same_key(self._product[0], key):
            return self._product[1]
        # Outside any graph, and never an inference tensor: a later forward that records a graph
        # (an attack's, for the input gradient) may save it for backward.
        with torch.inference_mode(False), torch.no_grad():
            product = self.weight * self.current_mask()
        self._product = (key, product)
        return product


class MaskedConv2d(nn.Conv2d, MaskedLayer):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.padding_mode != "zeros":
            return self._conv_forward(x, self.effective_weight(), self.bias)
        return conv2d(x, self.effective_weight(), self.bias, self.stride, self.padding, self.dilation, self.groups,
                      channels_last=is_channels_last(self.weight))


class MaskedLinear(nn.Linear, MaskedLayer):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.effective_weight(), self.bias)


def _tensor_key(t: torch.Tensor) -> tuple[Any, ...]:
    # data_ptr and dtype: `module.to()` swaps a parameter's data without bumping its version.
    return (weakref.ref(t), t._version, t.data_ptr(), t.dtype, t.device, t.stride())


def _same_key(a: tuple[Any, ...], b: tuple[Any, ...]) -> bool:
    if len(a) != len(b):
        return False
    for x, y in zip(a, b, strict=True):
        if isinstance(x, weakref.ref):
            if not isinstance(y, weakref.ref) or x() is None or x() is not y():
                return False
        elif x != y:
            return False
    return True
