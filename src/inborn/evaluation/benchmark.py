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
from inborn.evaluation.evaluate import check_model_output, check_module, evaluate, is_randomised
from inborn.models.ensemble import Ensemble
from inborn.values import check_int, parse_eps

THREAT_MODELS = ("Linf",)


def benchmark(model: nn.Module | Sequence[nn.Module], n_examples: int = 10_000, dataset: str = "cifar10",
              threat_model: str = "Linf", to_disk: bool = False, model_name: str | None = None,
              data_dir: str | Path | None = "./data", device: str | torch.device | None = None,
              batch_size: int = 32, eps: float | str | None = None, version: str | None = None,
              ) -> tuple[float, float]:
    """`(clean_acc, robust_acc)` of `model` (pixels in [0,1] in, logits out) against AutoAttack at
    `eps` (default: the data set's usual ε, 8/255 on CIFAR; a number or text such as "8/255", in
    [0, 1] in pixel units) on the first `n_examples` test images.

    As RobustBench's: a sequence of models is evaluated as their ensemble (logits averaged);
    `data_dir` is where the data set's files are (ignored for built-in data sets). `version` is
    AutoAttack's: standard, or rand for a randomised model (default: rand when the model's output
    changes between two forwards). `to_disk=True` is not supported (use `inborn card` on a run).
    """
    # The arguments checked as the CLI checks its flags: one-line InbornErrors naming them.
    if threat_model not in THREAT_MODELS:
        raise InbornError(f"threat model {threat_model!r} is not supported; inborn evaluates {THREAT_MODELS}")
    if to_disk:
        raise InbornError("to_disk is not supported: import the model (`inborn import`) and write its card "
                          "with `inborn card`")
    n_examples = check_int(n_examples, "n_examples", low=1)
    batch_size = check_int(batch_size, "batch_size", low=1)
    if version not in (None, "standard", "rand"):
        raise InbornError(f"unknown AutoAttack version {version!r} (use standard or rand)")
    if not isinstance(dataset, str):
        raise InbornError(f"dataset must be a data set's name (see `inborn data`), got {type(dataset).__name__}")
    eps = None if eps is None else parse_eps(eps, "eps")  # "8/255" read as the CLI reads it
    if data_dir is not None and not isinstance(data_dir, str | Path):
        raise InbornError(f"data_dir must be a path, got {type(data_dir).__name__}")
    if device is not None and not isinstance(device, str | torch.device):
        raise InbornError(f"device must be a name such as cpu or cuda:0, or a torch.device, got {device!r}")
    if model is None or isinstance(model, str) or not isinstance(model, nn.Module | Sequence):
        raise InbornError(f"model must be a torch.nn.Module or a sequence of them (an ensemble), "
                          f"got {type(model).__name__}")
    if not isinstance(model, nn.Module):
        members = list(model)
        if not members:
            raise InbornError("model is an empty sequence: give a model or the members of an ensemble")
        for i, member in enumerate(members):
            check_module(member, f"model[{i}]")
        model = Ensemble(members, "logits")
    splits = load_data(dataset, data_dir if data_dir is not None and Path(data_dir).exists() else None)
    eps = splits.info.default_eps if eps is None else eps
    dev = resolve_device(str(device or "auto")) if not isinstance(device, torch.device) else device
    model = prepare_model(model, dev).eval()
    test = splits.test.head(n_examples)
    # One forward of one image first: a model that does not fit the data set is refused in one line.
    check_model_output(model, test.head(1).tensors(dev)[0], num_classes=splits.info.num_classes)
    randomised = is_randomised(model, test.head(batch_size).tensors(dev)[0], eps=eps)
    attack = "autoattack-rand" if (version == "rand" or (version is None and randomised)) else "autoattack"
    result = evaluate(model, test, attacks=[attack], eps=[eps], batch_size=batch_size, device=dev,
                      identify=False, randomised=True if randomised else None)
    if result.randomised and attack == "autoattack" and version is None:  # found during the evaluation
        result = evaluate(model, test, attacks=["autoattack-rand"], eps=[eps], batch_size=batch_size, device=dev,
                          identify=False, randomised=True)
    return result.clean_acc, result.results[0].robust_acc
