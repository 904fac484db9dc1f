"""The Python entry points: `inborn.load(run_dir)` and `inborn.evaluate(model, dataset, ...)`."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn

from inborn.analysis.evaluate import evaluate as _evaluate
from inborn.data import TensorSplit, load_data
from inborn.device import prepare_model, resolve_device
from inborn.errors import InbornError
from inborn.store.run_dir import RunDir, read_safetensors


def load(run_dir: str | Path, *, device: str | torch.device = "cpu") -> nn.Module:
    """The selected model of a run, in eval mode: pixels in [0,1] in, logits out."""
    from inborn.train.loop import build_model

    run = RunDir(run_dir)
    doc = run.read_config()
    if doc.get("kind") == "family":  # a ticket family loads as its Random RST Switch
        from inborn.defenses import RandomSwitch
        from inborn.masks.family import load_family

        device = resolve_device(str(device)) if not isinstance(device, torch.device) else device
        return RandomSwitch(load_family(run.path, device)).eval()
    if doc.get("kind") == "ensemble":  # members load from their own runs
        from inborn.models.ensemble import load_ensemble

        return load_ensemble(run.path, device)
    spec = doc["model"]
    path = run.file(RunDir.MODEL)
    if not path.exists():
        raise InbornError(f"run directory {str(run.path)!r} has no checkpoint ({RunDir.MODEL}); train it first")
    tensors, meta = read_safetensors(path)
    stored = json.loads(meta.get("inborn_model", "{}"))
    if stored and stored.get("arch") != spec.get("arch"):
        raise InbornError(
            f"checkpoint {str(path)!r} belongs to model {stored.get('arch')!r}, "
            f"but the run config says {spec.get('arch')!r}"
        )
    model = build_model(spec)
    if "supermask" in spec:
        from inborn.masks.ticket import load_ticket_tensors

        load_ticket_tensors(model, tensors, meta, str(path))
    else:
        load_weights(model, tensors, str(path))
    device = resolve_device(str(device)) if not isinstance(device, torch.device) else device
    return prepare_model(model, device).eval()


def load_weights(model: nn.Module, tensors: dict[str, torch.Tensor], source: str) -> None:
    """Strict load with a one-line error when the checkpoint is of another architecture."""
    own = model.state_dict()
    missing = [k for k in own if k not in tensors]
    unexpected = [k for k in tensors if k not in own]
    mismatched = [k for k in own if k in tensors and tuple(own[k].shape) != tuple(tensors[k].shape)]
    if missing or unexpected or mismatched:
        detail = (f"{len(missing)} missing, {len(unexpected)} unexpected, {len(mismatched)} of another shape"
                  + (f" (e.g. {(mismatched or missing or unexpected)[0]})"))
        raise InbornError(f"checkpoint {source!r} does not fit this model: {detail}")
    model.load_state_dict(tensors)


def evaluate(
    model: nn.Module,
    dataset: str | TensorSplit | tuple[torch.Tensor, torch.Tensor],
    *,
    attacks: Sequence[str] = ("pgd",),
    eps: float | Sequence[float] = 8 / 255,
    split: str = "test",
    data_dir: str | Path | None = None,
    **kwargs: Any,
) -> dict[str, Any]:
    """Clean and robust accuracy, the worst case over attacks and the HRS, as `inborn eval` gives.

    `dataset` is a registered name (its `split` is used), a TensorSplit or an (x, y) pair.
    """
    if isinstance(dataset, str):
        splits = load_data(dataset, data_dir)
        dataset = getattr(splits, split)
    eps_list = [eps] if isinstance(eps, int | float) else list(eps)
    return _evaluate(model, dataset, attacks=list(attacks), eps=eps_list, **kwargs)
