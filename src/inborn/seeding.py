"""Seeding helpers. Each epoch reseeds from (seed, epoch) so a resumed run replays exactly."""

from __future__ import annotations

import random

import numpy as np
import torch


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def epoch_seed(seed: int, epoch: int) -> int:
    """A seed for one epoch that depends only on the run seed and the epoch index."""
    return (seed * 1_000_003 + epoch * 7919) % 2**63
