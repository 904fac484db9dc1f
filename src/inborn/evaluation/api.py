"""`inborn.evaluate(model, dataset, ...)`: `evaluate` for a data set named as in `inborn data`."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn

from inborn.data import TensorSplit, load_data
from inborn.evaluation.evaluate import evaluate as _evaluate
from inborn.evaluation.results import Evaluation


def evaluate(
    model: nn.Module,
    dataset: str | TensorSplit | tuple[torch.Tensor, torch.Tensor],
    *,
    attacks: Sequence[str] = ("pgd",),
    eps: float | Sequence[float] = 8 / 255,
    split: str = "test",
    data_dir: str | Path | None = None,
    **kwargs: Any,
) -> Evaluation:
    """Clean and robust accuracy, the worst case over attacks and the HRS, as `inborn eval` gives.

    `dataset` is a registered name (its `split` is used), a TensorSplit or an (x, y) pair.
    """
    if isinstance(dataset, str):
        splits = load_data(dataset, data_dir)
        dataset = getattr(splits, split)
    eps_list = [eps] if isinstance(eps, int | float) else list(eps)
    return _evaluate(model, dataset, attacks=list(attacks), eps=eps_list, **kwargs)
