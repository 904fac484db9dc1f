"""The network a run trains and the spec it is saved under: the configured zoo model, a supermask
over random (or, with `from_run`, trained) weights, an imported network under a ticket's mask, or
a ticket's structure when fine-tuning."""

from __future__ import annotations

from typing import Any

import torch.nn as nn

from inborn.data import DataSplits
from inborn.errors import InbornError
from inborn.runs import load
from inborn.runs.imported import imported_source
from inborn.spec import build_model
from inborn.store import RunDir
from inborn.train.config import TrainConfig
from inborn.train.finetune import finetune_start


def initial_model(cfg: TrainConfig, splits: DataSplits) -> tuple[nn.Module, dict[str, Any]]:
    """The network to train and the spec it is saved under."""
    if cfg.finetune is not None:
        return finetune_start(cfg.finetune, cfg.seed)
    spec = imported_ticket_spec(cfg) or model_spec_for(cfg, splits)
    return build_model(spec, dense_weights=trained_weights(cfg, spec)), spec


def model_spec_for(cfg: TrainConfig, splits: DataSplits) -> dict[str, Any]:
    """Everything needed to rebuild this network, stored with every checkpoint."""
    info = splits.info
    spec = {
        "arch": cfg.arch, "num_classes": info.num_classes, "in_channels": info.in_channels,
        "image_size": info.image_size, "width": cfg.width, "affine_bn": cfg.affine_bn,
        "mean": list(info.mean), "std": list(info.std), "kwargs": dict(cfg.model_kwargs),
    }
    if cfg.aux_weight > 0:
        spec["kwargs"]["auxiliary"] = True
    if cfg.ticket is not None:
        spec["supermask"] = cfg.ticket.to_dict()
        # Random weights are redrawn from their seed; trained ones must be stored.
        spec["weights"] = "stored" if cfg.from_run else "seed"
    return spec


def imported_ticket_spec(cfg: TrainConfig) -> dict[str, Any] | None:
    """A robust trained ticket on an imported model: the import's network under the ticket's mask."""
    source = imported_source(cfg.from_run) if cfg.from_run and cfg.ticket is not None else None
    if source is None:
        return None
    return {**source, "supermask": cfg.ticket.to_dict(), "weights": "stored"}


def trained_weights(cfg: TrainConfig, spec: dict[str, Any]) -> nn.Module | None:
    """For a robust trained ticket: the trained run's model, which must be the same network."""
    if not cfg.from_run:
        return None
    doc = RunDir(cfg.from_run).read_config()
    if doc.get("kind") not in ("train", "imported") or "supermask" in doc["model"]:
        raise InbornError(f"from_run {cfg.from_run!r} is a {doc.get('kind')} run; it must be a trained dense network")
    source = doc["model"]
    keys = ("arch", "num_classes", "in_channels", "image_size", "width", "kwargs")
    if any(source.get(k) != spec.get(k) for k in keys):
        raise InbornError(f"from_run {cfg.from_run!r} holds {source.get('arch')!r} (width {source.get('width')}), "
                          f"not {spec['arch']!r} (width {spec.get('width')}) on this data: use the same architecture")
    return load(cfg.from_run)
