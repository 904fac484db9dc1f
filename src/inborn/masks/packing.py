"""Masks as bits: 1 bit per weight, so a ticket (or a family of them) costs a fraction of the
weights it masks."""

from __future__ import annotations

import math

import numpy as np
import torch


def pack_mask(mask: torch.Tensor) -> torch.Tensor:
    """1 bit per weight: a 0/1 tensor as uint8 bytes (numpy's packbits, big-endian bit order)."""
    bits = mask.detach().cpu().flatten().to(torch.bool).numpy()
    return torch.from_numpy(np.packbits(bits))


def unpack_mask(packed: torch.Tensor, shape: torch.Size) -> torch.Tensor:
    n = int(np.prod(shape))
    bits = np.unpackbits(packed.cpu().numpy(), count=n)
    return torch.from_numpy(bits.astype(np.float32)).view(shape)


_BIT_TABLES: dict[torch.device, torch.Tensor] = {}


def unpack_on_device(packed: torch.Tensor, shape: torch.Size) -> torch.Tensor:
    """Bits to a 0/1 float mask on `packed`'s device: one gather from a 256×8 table, which is
    far faster than shifting bytes (a ticket switch happens at every forward of the switch)."""
    table = _BIT_TABLES.get(packed.device)
    if table is None:
        byte = torch.arange(256, device=packed.device).unsqueeze(1)
        table = ((byte >> torch.arange(7, -1, -1, device=packed.device)) & 1).float()
        _BIT_TABLES[packed.device] = table
    n = math.prod(shape)
    return table[packed.long()].flatten()[:n].view(shape)
