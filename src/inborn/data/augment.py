"""Batched augmentation on the device: random crop with zero padding, horizontal flip, cutout.

The random numbers are drawn where the generator lives: give a generator on the images' device
(`augment_generator`) and nothing crosses between host and device (a CPU draw copied to CUDA
makes the host wait for the device at every batch). Without a generator, the device's default one.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def augment_generator(seed: int, device: torch.device | str) -> torch.Generator:
    """A generator on `device` for augmentation, seeded from `seed` but not with it: a CPU run's
    data order is drawn from a generator seeded with `seed`, and the two streams must differ."""
    mixed = (seed * 6364136223846793005 + 1442695040888963407) % 2**63  # one LCG step (Knuth's MMIX)
    return torch.Generator(device=device).manual_seed(mixed)


def _draw_device(x: torch.Tensor, generator: torch.Generator | None) -> torch.device:
    return x.device if generator is None else generator.device


def random_crop_flip(
    x: torch.Tensor, padding: int = 0, flip: bool = False, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Crop each image at its own random offset inside a zero-padded copy, then flip half.

    One gather for the whole batch: no per-image Python loop.
    """
    n, _, h, w = x.shape
    on = _draw_device(x, generator)
    if padding > 0:
        padded = F.pad(x, (padding, padding, padding, padding))
        dy = torch.randint(0, 2 * padding + 1, (n,), generator=generator, device=on).to(x.device)
        dx = torch.randint(0, 2 * padding + 1, (n,), generator=generator, device=on).to(x.device)
        rows = (dy[:, None] + torch.arange(h, device=x.device)[None, :])  # (n, h)
        cols = (dx[:, None] + torch.arange(w, device=x.device)[None, :])  # (n, w)
        x = padded[
            torch.arange(n, device=x.device)[:, None, None, None],
            torch.arange(x.shape[1], device=x.device)[None, :, None, None],
            rows[:, None, :, None],
            cols[:, None, None, :],
        ]
    if flip:
        do_flip = torch.rand(n, generator=generator, device=on).to(x.device) < 0.5
        x = torch.where(do_flip[:, None, None, None], x.flip(3), x)
    return x


def cutout(x: torch.Tensor, length: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """Zero one `length`-sided square per image at a random centre, clipped at the borders
    (DeVries & Taylor, 2017; part of the DARTS training recipe)."""
    if length <= 0:
        return x
    n, _, h, w = x.shape
    on = _draw_device(x, generator)
    cy = torch.randint(0, h, (n,), generator=generator, device=on).to(x.device)
    cx = torch.randint(0, w, (n,), generator=generator, device=on).to(x.device)
    half = length // 2
    rows = torch.arange(h, device=x.device)[None, :]
    cols = torch.arange(w, device=x.device)[None, :]
    in_rows = (rows >= (cy - half)[:, None]) & (rows < (cy - half + length)[:, None])  # (n, h)
    in_cols = (cols >= (cx - half)[:, None]) & (cols < (cx - half + length)[:, None])  # (n, w)
    hole = in_rows[:, :, None] & in_cols[:, None, :]
    return x * (~hole)[:, None].to(x.dtype)
