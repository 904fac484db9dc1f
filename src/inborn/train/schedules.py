"""Learning-rate schedules as pure functions of training progress (in epochs, fractional).

A pure function of progress means a resumed run gets exactly the rates it would have had.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from inborn.errors import InbornError

SCHEDULES = ("multistep", "piecewise", "cosine", "constant")


def learning_rate(
    schedule: str, base_lr: float, progress: float, epochs: int,
    milestones: Sequence[int] | None = None, gamma: float = 0.1,
) -> float:
    """The learning rate after `progress` epochs.

    multistep: ×gamma at each milestone epoch (default: half and three quarters of the run,
               the PGD-AT recipe of Rice et al.; the RST paper uses 80 and 120 of 160).
    piecewise: linear up from 0 to base_lr over the first 40%, then linearly down to 0
               (the cyclic schedule of Wong et al.'s fast adversarial training).
    cosine:    cosine annealing from base_lr to 0 (the Frankle Conv-n and DARTS recipes).
    """
    t = min(max(progress / max(epochs, 1), 0.0), 1.0)
    if schedule == "constant":
        return base_lr
    if schedule == "multistep":
        marks = list(milestones) if milestones else [epochs // 2, (3 * epochs) // 4]
        return base_lr * gamma ** sum(progress >= m for m in marks)
    if schedule == "piecewise":
        peak = 0.4
        return base_lr * (t / peak if t < peak else (1 - t) / (1 - peak))
    if schedule == "cosine":
        return base_lr * 0.5 * (1 + math.cos(math.pi * t))
    raise InbornError(f"unknown schedule {schedule!r}; known: {', '.join(SCHEDULES)}")
