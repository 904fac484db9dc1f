"""`inborn.load(run_dir)`: a run directory as a model, whatever the run's kind (a trained network,
a ticket, a ticket family as its Random RST Switch, an ensemble); and `save_model`, its inverse
for the selected model of a training run."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn

from inborn.defenses import RandomSwitch
from inborn.device import prepare_model, resolve_device
from inborn.errors import InbornError
from inborn.masks.ticket import is_supermask, load_ticket_tensors, ticket_tensors
from inborn.models.ensemble import Ensemble
from inborn.runs.ensemble import KIND as ENSEMBLE
from inborn.runs.ensemble import ensemble_members, ensemble_run, member_docs, write_ensemble_config
from inborn.runs.family import load_family
from inborn.spec import build_model
from inborn.spec.build import missing_fields
from inborn.spec.imported import is_imported
from inborn.spec.trust import consent
from inborn.store.run_dir import RunDir, read_safetensors


def load(run_dir: str | Path, *, device: str | torch.device = "cpu", trust_code: bool = False) -> nn.Module:
    """The selected model of a run, in eval mode: pixels in [0,1] in, logits out.

    An imported run's own code (its model file or module) runs only if this machine's user imported
    it or consented to it before; `trust_code=True` is that consent (as `INBORN_TRUST_CODE=1`), and
    is recorded, so that later loads of the same code pass without it. See inborn.spec.trust.
    """
    # The arguments checked as the CLI checks its flags: one-line InbornErrors naming them.
    if not isinstance(run_dir, str | Path) or not str(run_dir).strip():
        raise InbornError(f"run_dir must be the path of a run directory, got {run_dir!r}")
    if not isinstance(device, str | torch.device):
        raise InbornError(f"device must be a name such as cpu or cuda:0, or a torch.device, got {device!r}")
    if not isinstance(trust_code, bool):
        raise InbornError(f"trust_code must be True or False, got {trust_code!r}")
    if isinstance(device, str):
        device = resolve_device(device)  # a bad name fails before the run is read
    if trust_code:
        with consent():
            return load(run_dir, device=device)
    run = RunDir(run_dir)
    doc = run.read_config()
    if doc.get("kind") == "family":  # a ticket family loads as its Random RST Switch
        device = resolve_device(str(device)) if not isinstance(device, torch.device) else device
        return RandomSwitch(load_family(run.path, device)).eval()
    if doc.get("kind") == ENSEMBLE:  # members load from their own runs
        return load_ensemble(run.path, device)
    spec = doc["model"]
    missing = missing_fields(spec)
    if missing:
        raise InbornError(f"{str(run.file(RunDir.CONFIG))!r} lacks model.{missing[0]}")
    path = run.file(RunDir.MODEL)
    if not path.exists():
        raise InbornError(f"run directory {str(run.path)!r} has no checkpoint ({RunDir.MODEL}); train it first")
    tensors, meta = read_safetensors(path)
    try:
        stored = json.loads(meta.get("inborn_model") or "{}")
    except ValueError as e:
        raise InbornError(f"checkpoint {str(path)!r} has model metadata that is not JSON") from e
    if not isinstance(stored, dict):
        raise InbornError(f"checkpoint {str(path)!r} has model metadata that is not a mapping")
    if stored and stored.get("arch") != spec.get("arch"):
        raise InbornError(
            f"checkpoint {str(path)!r} belongs to model {stored.get('arch')!r}, "
            f"but the run config says {spec.get('arch')!r}"
        )
    if is_imported(spec):  # the code to run is the one the import recorded in both files
        differ = [k for k in ("source", "factory", "kwargs") if stored and stored.get(k) != spec.get(k)]
        if differ:
            raise InbornError(f"{str(run.file(RunDir.CONFIG))!r} names other model code than its checkpoint "
                              f"{str(path)!r} ({', '.join(differ)} differ); refused")
    model = build_model(spec)
    if "supermask" in spec:
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


def save_model(run: RunDir, model: nn.Module, spec: dict[str, Any], extra: dict[str, Any] | None = None) -> None:
    """Write `model` as the run's selected model: a ticket as its scores and bit-packed masks
    (its random weights only when they cannot be redrawn), any other network as its state dict."""
    meta: dict[str, str] = {}
    if is_supermask(model):
        state, meta = ticket_tensors(model, store_weights=spec.get("weights") == "stored")
    else:
        state = model.state_dict()
    run.write_model(state, spec, extra=extra, meta=meta)


def build_ensemble(runs: Sequence[str | Path], out: str | Path, *, combine: str = "logits",
                   data_dir: str | None = None, device: str | torch.device = "cpu") -> Ensemble:
    """Check and load the member runs, then write the ensemble's config.yaml into `out`.

    Nothing is written unless every member loads; weights are never copied.
    """
    docs = member_docs(runs)
    paths = [str(Path(r).resolve()) for r in runs]
    run = ensemble_run(out, paths, combine)
    ensemble = Ensemble([load(p, device=device) for p in paths], combine, names=[str(r) for r in runs])
    write_ensemble_config(run, docs, paths, combine, data_dir)
    return ensemble


def load_ensemble(path: str | Path, device: str | torch.device = "cpu") -> Ensemble:
    """The ensemble of an ensemble run directory, members loaded from their own runs, eval mode."""
    members, combine = ensemble_members(path)
    return Ensemble([load(p, device=device) for p in members], combine, names=members).eval()
