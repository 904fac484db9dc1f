"""`inborn.evaluate(model, dataset, ...)`: `evaluate` for a data set named as in `inborn data`."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn

from inborn.data import TensorSplit, load_data
from inborn.errors import InbornError
from inborn.evaluation.evaluate import _check_device, check_model_output, check_module
from inborn.evaluation.evaluate import evaluate as _evaluate
from inborn.evaluation.results import Evaluation
from inborn.values import parse_names

SPLITS = ("train", "val", "test")


def evaluate(
    model: nn.Module,
    dataset: str | TensorSplit | tuple[torch.Tensor, torch.Tensor],
    *,
    attacks: str | Sequence[str] = ("pgd",),
    eps: float | str | Sequence[float | str] = 8 / 255,
    split: str = "test",
    data_dir: str | Path | None = None,
    **kwargs: Any,
) -> Evaluation:
    """Clean and robust accuracy, the worst case over attacks and the HRS, as `inborn eval` gives.

    `dataset` is a registered name (its `split` is used), a TensorSplit or an (x, y) pair. `attacks`
    may be written as on the command line (`"pgd,cw"`), ε as a number or as text (`"8/255"`).
    Bad arguments are one-line InbornErrors naming them, as the command line's flags are.
    """
    check_module(model)
    if isinstance(attacks, str):  # as on the command line: "pgd,cw", never none
        attacks = parse_names(attacks)
        if not attacks:
            raise InbornError("attacks names no attack; give e.g. 'pgd' or ['pgd', 'cw']")
    eps_list = list(eps) if isinstance(eps, list | tuple) else [eps]
    if isinstance(dataset, str):
        if split not in SPLITS:
            raise InbornError(f"unknown split {split!r}; known: {', '.join(SPLITS)}")
        if data_dir is not None and not isinstance(data_dir, str | Path):
            raise InbornError(f"data_dir must be a path, got {type(data_dir).__name__}")
        splits = load_data(dataset, data_dir)
        dataset = getattr(splits, split)
        # The data set's own number of classes: a model with another count is refused, not scored.
        if len(dataset):
            device = _check_device(model, kwargs.get("device"))
            check_model_output(model, dataset.head(1).tensors(device)[0], num_classes=splits.info.num_classes)
    return _evaluate(model, dataset, attacks=list(attacks) if isinstance(attacks, list | tuple) else attacks,
                     eps=eps_list, **kwargs)
