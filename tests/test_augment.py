"""Batched augmentations: each image gets its own draw, and the draws are what they claim."""

from __future__ import annotations

import torch

from inborn.data import cutout, random_crop_flip


def test_cutout_zeroes_one_square_per_image_clipped_at_the_border():
    x = torch.ones(64, 1, 12, 12)
    out = cutout(x, 4, generator=torch.Generator().manual_seed(0))
    zeros = (out == 0).sum(dim=(1, 2, 3))
    assert zeros.max() == 16  # a full 4x4 square inside the image
    assert zeros.min() >= 4  # the centre is always inside, so at least a 2x2 corner survives clipping
    assert zeros.float().std() > 0  # centres differ between images
    # The hole is one axis-aligned rectangle: its rows times its columns.
    for img in out[:, 0]:
        hole = img == 0
        rows, cols = hole.any(1).sum(), hole.any(0).sum()
        assert hole.sum() == rows * cols


def test_cutout_is_seeded_and_zero_length_is_identity():
    x = torch.rand(8, 3, 10, 10)
    a = cutout(x, 5, generator=torch.Generator().manual_seed(1))
    b = cutout(x, 5, generator=torch.Generator().manual_seed(1))
    assert torch.equal(a, b)
    assert torch.equal(cutout(x, 0), x)


def test_random_crop_keeps_the_image_content_shifted():
    x = torch.arange(36.0).view(1, 1, 6, 6).repeat(32, 1, 1, 1)
    out = random_crop_flip(x, padding=2, generator=torch.Generator().manual_seed(0))
    assert out.shape == x.shape
    # Every crop is a shift of the original by at most 2 pixels, so the centre pixel value
    # comes from the original's central 5x5 window... or is padding.
    centre = out[:, 0, 3, 3]
    assert set(centre.tolist()) <= set(x[0, 0, 1:6, 1:6].flatten().tolist())
