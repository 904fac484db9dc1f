"""A run's data set: the splits its config names, with the same validation split it trained on."""

from __future__ import annotations

from typing import Any

import torch

from inborn.data import DataSplits, load_data


def load_run_data(doc: dict[str, Any], data_dir: str | None = None) -> DataSplits:
    """The splits of the run whose config.yaml is `doc` (`data_dir` overrides the stored one);
    the validation split is drawn with the run's seed and fraction, so it is the one it selected on."""
    cfg = doc["config"]
    return load_data(cfg["data"], data_dir or cfg.get("data_dir"), val_fraction=cfg.get("val_fraction", 0.1),
                     seed=cfg.get("seed", 0))


def run_eps(doc: dict[str, Any], splits: DataSplits) -> float:
    """The run's ε, or the data set's usual one when the run has none (natural training, an ensemble
    of members with different ε)."""
    eps = doc["config"].get("eps")
    return float(eps) if eps is not None else splits.info.default_eps


Pair = tuple[torch.Tensor, torch.Tensor]


def eval_heads(splits: DataSplits, n: int, device: torch.device | str) -> tuple[Pair, Pair | None]:
    """The first `n` test images and the first `n` validation images (None without a validation
    split), on `device`: what a family's transfer matrix and R2S evaluation run on."""
    val = splits.val.head(n).tensors(device) if len(splits.val) else None
    return splits.test.head(n).tensors(device), val
