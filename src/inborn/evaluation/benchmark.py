"""`inborn.benchmark(model, ...)`: RobustBench's `benchmark` habit on inborn's evaluation engine.

Clean accuracy and AutoAttack (standard, or `rand` for a randomised model) accuracy on the first
`n_examples` test images, returned as RobustBench returns them: `(clean_acc, robust_acc)`.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch
import torch.nn as nn

from inborn.data import load_data
from inborn.device import prepare_model, resolve_device
from inborn.errors import InbornError
from inborn.evaluation.evaluate import evaluate, is_randomised
from inborn.models.ensemble import Ensemble

THREAT_MODELS = ("Linf",)


def benchmark(model: nn.Module | Sequence[nn.Module], n_examples: int = 10_000, dataset: str = "cifar10",
              threat_model: str = "Linf", to_disk: bool = False, model_name: str | None = None,
              data_dir: str | Path | None = "./data", device: str | torch.device | None = None,
              batch_size: int = 32, eps: float | None = None, version: str | None = None,
              ) -> tuple[float, float]:
    """`(clean_acc, robust_acc)` of `model` (pixels in [0,1] in, logits out) against AutoAttack at
    `eps` (default: the data set's usual ε, 8/255 on CIFAR) on the first `n_examples` test images.

    As RobustBench's: a sequence of models is evaluated as their ensemble (logits averaged);
    `data_dir` is where the data set's files are (ignored for built-in data sets). `version` is
    AutoAttack's: standard, or rand for a randomised model (default: rand when the model's output
    changes between two forwards). `to_disk=True` is not supported (use `inborn card` on a run).
    """
    if threat_model not in THREAT_MODELS:
        raise InbornError(f"threat model {threat_model!r} is not supported; inborn evaluates {THREAT_MODELS}")
    if to_disk:
        raise InbornError("to_disk is not supported: import the model (`inborn import`) and write its card "
                          "with `inborn card`")
    if n_examples < 1 or batch_size < 1:
        raise InbornError(f"n_examples and batch_size must be >= 1, got {n_examples} and {batch_size}")
    if version not in (None, "standard", "rand"):
        raise InbornError(f"unknown AutoAttack version {version!r} (use standard or rand)")
    if not isinstance(model, nn.Module):
        model = Ensemble(list(model), "logits")
    splits = load_data(dataset, data_dir if data_dir is not None and Path(data_dir).exists() else None)
    eps = splits.info.default_eps if eps is None else float(eps)
    dev = resolve_device(str(device or "auto")) if not isinstance(device, torch.device) else device
    model = prepare_model(model, dev).eval()
    test = splits.test.head(n_examples)
    randomised = is_randomised(model, test.head(batch_size).tensors(dev)[0], eps=eps)
    attack = "autoattack-rand" if (version == "rand" or (version is None and randomised)) else "autoattack"
    result = evaluate(model, test, attacks=[attack], eps=[eps], batch_size=batch_size, device=dev,
                      identify=False, randomised=True if randomised else None)
    if result.randomised and attack == "autoattack" and version is None:  # found during the evaluation
        result = evaluate(model, test, attacks=["autoattack-rand"], eps=[eps], batch_size=batch_size, device=dev,
                          identify=False, randomised=True)
    return result.clean_acc, result.results[0].robust_acc
