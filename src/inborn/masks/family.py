"""Ticket families: several tickets drawn from ONE random weight tensor.

A family holds the shared frozen weights once, plus per ticket a 1-bit mask per weight and
its BatchNorm statistics. `select(i)` puts ticket i in place; its masks are unpacked on the
device at the first forward after the switch, and the masked weights (`weight * mask`) are kept
until the next switch (inborn.masks.layers), so the forwards in between unpack nothing. Memory
stays about two dense models' weights (the shared ones and the active ticket's masked copy)
whatever the number of tickets.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn

from inborn.errors import InbornError
from inborn.masks.convert import masked_layers
from inborn.masks.ticket import MASK_PREFIX, weights_digest

# What must agree for tickets to share one weight tensor.
_SHARED_SPEC = ("arch", "num_classes", "in_channels", "image_size", "width", "affine_bn", "mean", "std", "kwargs")
_SHARED_MASK = ("init", "weight_seed", "scale_fan", "dense_first", "dense_last", "scope")


@dataclass
class FamilyTicket:
    name: str
    keep_ratio: float
    packed_masks: list[torch.Tensor]  # uint8, one per masked layer
    buffers: dict[str, torch.Tensor]  # BatchNorm running statistics of this ticket


def check_compatible(specs: list[dict[str, Any]], names: list[str]) -> None:
    """Tickets of different architectures or weight seeds cannot share one weight tensor."""
    first = specs[0]
    for spec, name in zip(specs[1:], names[1:], strict=True):
        for key in _SHARED_SPEC:
            if spec.get(key) != first.get(key):
                raise InbornError(f"ticket {name!r} differs from {names[0]!r} in {key} "
                                  f"({spec.get(key)!r} vs {first.get(key)!r}): one family needs one network")
        for key in _SHARED_MASK:
            if spec["supermask"].get(key) != first["supermask"].get(key):
                raise InbornError(f"ticket {name!r} differs from {names[0]!r} in {key} "
                                  f"({spec['supermask'].get(key)!r} vs {first['supermask'].get(key)!r}): "
                                  "tickets of one family must share the same random weights")
        if spec.get("weights", "seed") != "seed":
            raise InbornError(f"ticket {name!r} has trained weights; a family shares random weights only")


class TicketFamily(nn.Module):
    """One supermask network and the masks of several tickets over its weights."""

    def __init__(self, model: nn.Module, tickets: list[FamilyTicket]) -> None:
        super().__init__()
        if not tickets:
            raise InbornError("a family needs at least one ticket")
        self.model = model
        self.tickets = tickets
        self.active: int | None = None
        self._layers = masked_layers(model)
        for layer in self._layers:
            layer.scores = None  # masks come from the tickets' bits; scores would double the memory
        for t in tickets:
            if len(t.packed_masks) != len(self._layers):
                raise InbornError(f"ticket {t.name!r} has {len(t.packed_masks)} masks for {len(self._layers)} layers")

    def __len__(self) -> int:
        return len(self.tickets)

    @property
    def keep_ratios(self) -> list[float]:
        return [t.keep_ratio for t in self.tickets]

    def to(self, *args, **kwargs) -> TicketFamily:  # type: ignore[override]
        super().to(*args, **kwargs)
        device = next(self.model.parameters()).device
        for t in self.tickets:
            t.packed_masks = [m.to(device) for m in t.packed_masks]
            t.buffers = {k: v.to(device) for k, v in t.buffers.items()}
        self.active = None
        return self

    def select(self, index: int) -> None:
        """Put ticket `index` in place: its masks and its BatchNorm statistics."""
        if self.active == index:
            return
        ticket = self.tickets[index]
        for layer, packed in zip(self._layers, ticket.packed_masks, strict=True):
            layer.fixed_mask = None
            layer.packed_mask = packed
        # Rebind the BN buffers rather than copy into them: an autograd graph spanning several
        # tickets (EOT, the expectation attack) still holds the previous ticket's tensors.
        for key, value in ticket.buffers.items():
            module_name, _, leaf = key.rpartition(".")
            setattr(self.model.get_submodule(module_name), leaf, value)
        self.active = index

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.active is None:
            self.select(0)
        return self.model(x)


def ticket_from_state(name: str, keep_ratio: float, model: nn.Module, tensors: dict[str, torch.Tensor]) -> FamilyTicket:
    """A family member from a ticket file's tensors (packed masks and BN buffers)."""
    names = {id(m): n for n, m in model.named_modules()}
    packed = [tensors[MASK_PREFIX + names[id(layer)]] for layer in masked_layers(model)]
    buffer_names = [n for n, _ in model.named_buffers() if "running_" in n or "num_batches" in n]
    return FamilyTicket(name, keep_ratio, packed, {n: tensors[n].clone() for n in buffer_names if n in tensors})


def family_tensors(family: TicketFamily) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """One file for the whole family: per ticket, packed masks and BN statistics; no weights."""
    tensors: dict[str, torch.Tensor] = {}
    for i, t in enumerate(family.tickets):
        for j, packed in enumerate(t.packed_masks):
            tensors[f"ticket{i}.mask{j}"] = packed.cpu()
        for key, value in t.buffers.items():
            tensors[f"ticket{i}.buffer.{key}"] = value.cpu()
    meta = {
        "inborn_family": json.dumps([{"name": t.name, "keep_ratio": t.keep_ratio} for t in family.tickets]),
        "inborn_weights_digest": weights_digest(family.model),
    }
    return tensors, meta


def family_from_tensors(model: nn.Module, tensors: dict[str, torch.Tensor], meta: dict[str, str],
                        source: str | Path) -> TicketFamily:
    digest = meta.get("inborn_weights_digest")
    if digest and digest != weights_digest(model):
        raise InbornError(f"the weights redrawn for family {str(source)!r} differ from the ones its tickets were "
                          "found on (another torch version or weight seed?)")
    try:
        members = json.loads(meta["inborn_family"])
        if not isinstance(members, list) or not all(
                isinstance(m, dict) and isinstance(m.get("name"), str) and isinstance(m.get("keep_ratio"), int | float)
                for m in members):
            raise ValueError("members")
    except (KeyError, ValueError, TypeError) as e:
        raise InbornError(f"{str(source)!r} is not a ticket family file (its member list is missing or "
                          "malformed)") from e
    n_layers = len(masked_layers(model))
    tickets = []
    for i, m in enumerate(members):
        prefix = f"ticket{i}.buffer."
        try:
            packed = [tensors[f"ticket{i}.mask{j}"] for j in range(n_layers)]
        except KeyError as e:
            raise InbornError(f"family {str(source)!r} lacks a mask of ticket {m['name']!r}") from e
        buffers = {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}
        tickets.append(FamilyTicket(m["name"], float(m["keep_ratio"]), packed, buffers))
    return TicketFamily(model, tickets)
