"""Network sizes for size-matched baselines: non-zero weights of a run, and the width at which a
dense network of the same architecture has as many weights as a ticket keeps.

"Non-zero weights" counts the weights of the convolutions and linear layers, the layers a
ticket masks (BatchNorm and biases are left out: tickets have neither learnable).
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import torch.nn as nn

from inborn.errors import InbornError
from inborn.spec.build import build_model
from inborn.store import RunDir

# How a network's size is scaled: the width multiplier, or DARTS networks' initial channels.
WIDTH = "width"
INIT_CHANNELS = "kwargs.init_channels"


def plain_spec(spec: dict[str, Any]) -> dict[str, Any]:
    return {k: copy.deepcopy(v) for k, v in spec.items() if k not in ("supermask", "weights")}


def weight_count(spec: dict[str, Any]) -> int:
    """Conv and linear weights of the dense network of `spec`."""
    model = build_model(plain_spec(spec))
    return sum(m.weight.numel() for m in model.modules() if isinstance(m, nn.Conv2d | nn.Linear))


def run_nonzero(run: str | Path) -> int:
    """Non-zero conv and linear weights of a finished run (a ticket's kept weights plus any layer
    it left dense; a dense run's every weight)."""
    rd = RunDir(run)
    total = weight_count(rd.read_config()["model"])
    ticket = rd.read_summary().get("ticket")
    return total if ticket is None else total - ticket["maskable"] + ticket["kept"]


def scaled_by(spec: dict[str, Any]) -> str:
    """DARTS-space networks grow by their initial channels, the others by the width multiplier."""
    return INIT_CHANNELS if "init_channels" in spec.get("kwargs", {}) else WIDTH


def _with_size(spec: dict[str, Any], key: str, value: float) -> dict[str, Any]:
    spec = plain_spec(spec)
    if key == WIDTH:
        spec["width"] = value
    else:
        spec["kwargs"] = {**spec.get("kwargs", {}), "init_channels": int(value)}
    return spec


def size_matched(spec: dict[str, Any], target: int) -> tuple[str, float, int]:
    """(what is scaled, its value, the resulting weight count) of the dense network of `spec`'s
    architecture whose conv and linear weights come closest to `target`. Channel counts are
    integers, so the count moves in steps: bisect to the crossing, then take the nearest of a
    fine scan around it."""
    key = scaled_by(spec)
    if key == INIT_CHANNELS:
        top = int(spec["kwargs"]["init_channels"])
        counts = {c: weight_count(_with_size(spec, key, c)) for c in range(1, top + 1)}
        best = min(counts, key=lambda c: abs(counts[c] - target))
        return key, float(best), counts[best]
    lo, hi = 1e-3, float(spec.get("width", 1.0))
    if weight_count(_with_size(spec, key, hi)) < target:
        raise InbornError(f"no width up to {hi:g} reaches {target:,} weights")
    for _ in range(30):
        mid = (lo + hi) / 2
        if weight_count(_with_size(spec, key, mid)) < target:
            lo = mid
        else:
            hi = mid
    candidates = sorted({round(hi * (1 + f / 200), 4) for f in range(-20, 21)})  # ±10% around the crossing
    counts = {w: weight_count(_with_size(spec, key, w)) for w in candidates}
    best = min(counts, key=lambda w: (abs(counts[w] - target), w))
    return key, best, counts[best]


def config_with_size(config: dict[str, Any], key: str, value: float) -> dict[str, Any]:
    """A training config (TrainConfig fields) with its network scaled as `size_matched` chose."""
    config = copy.deepcopy(config)
    if key == WIDTH:
        config["width"] = value
    else:
        config["model_kwargs"] = {**config.get("model_kwargs", {}), "init_channels": int(value)}
    return config
