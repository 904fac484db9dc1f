"""Ensembles of trained runs, seen by attacks as ONE model.

`Ensemble` averages its members' logits (`combine="logits"`) or their softmax probabilities
(`combine="softmax"`, returned as log-probabilities so cross-entropy attacks still work).
Gradients flow through every member, so a white-box attack attacks the whole ensemble.

An ensemble run directory (`kind: ensemble`) holds only config.yaml: the members' absolute
run paths and the combine rule. `inborn.load` rebuilds it from the members' own files.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn

from inborn.errors import InbornError

COMBINES = ("logits", "softmax")
KIND = "ensemble"


class Ensemble(nn.Module):
    """Members take pixels in [0, 1] and return logits; so does the ensemble."""

    def __init__(self, members: Sequence[nn.Module], combine: str = "logits",
                 names: Sequence[str] | None = None) -> None:
        super().__init__()
        if not members:
            raise InbornError("an ensemble needs at least one member")
        if combine not in COMBINES:
            raise InbornError(f"unknown combine rule {combine!r}; known: {', '.join(COMBINES)}")
        if names is not None and len(names) != len(members):
            raise InbornError(f"{len(names)} names for {len(members)} ensemble members")
        self.members = nn.ModuleList(members)
        self.combine = combine
        self.names = list(names) if names is not None else [f"member{i}" for i in range(len(members))]

    def __len__(self) -> int:
        return len(self.members)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        outs = [m(x) for m in self.members]
        check_num_classes([o.shape[-1] for o in outs], self.names)
        stacked = torch.stack([o.float() for o in outs])
        if self.combine == "logits":
            return stacked.mean(0)
        # log of the mean probability, computed stably in log space
        return torch.logsumexp(torch.log_softmax(stacked, dim=-1), dim=0) - math.log(len(outs))

    def extra_repr(self) -> str:
        return f"combine={self.combine!r}, members={len(self.members)}"


def check_num_classes(counts: Sequence[int | None], names: Sequence[str]) -> None:
    """One class count for every member, or a one-line error naming them."""
    known = {int(c) for c in counts if c is not None}
    if len(known) > 1:
        detail = ", ".join(f"{n}: {c}" for n, c in zip(names, counts, strict=True))
        raise InbornError(f"ensemble members disagree on the number of classes: {detail}")


def member_docs(runs: Sequence[str | Path]) -> list[dict[str, Any]]:
    """The members' run configs, checked to be one data set and one class count."""
    from inborn.store import RunDir

    if not runs:
        raise InbornError("an ensemble needs at least one member run")
    docs = [RunDir(r).read_config() for r in runs]  # a missing run is a one-line error here
    names = [str(r) for r in runs]
    data = [d["config"].get("data") for d in docs]
    if len(set(data)) > 1:
        detail = ", ".join(f"{n}: {d}" for n, d in zip(names, data, strict=True))
        raise InbornError(f"ensemble members were trained on different data sets: {detail}")
    check_num_classes([d["model"].get("num_classes") for d in docs], names)
    return docs


def build_ensemble(runs: Sequence[str | Path], out: str | Path, *, combine: str = "logits",
                   data_dir: str | None = None, device: str | torch.device = "cpu") -> Ensemble:
    """Check and load the member runs, then write the ensemble's config.yaml into `out`.

    Nothing is written unless every member loads; weights are never copied.
    """
    import inborn
    from inborn.store import RunDir

    if combine not in COMBINES:
        raise InbornError(f"unknown combine rule {combine!r}; known: {', '.join(COMBINES)}")
    docs = member_docs(runs)
    paths = [str(Path(r).resolve()) for r in runs]
    run = RunDir(out)
    if Path(run.path).resolve() in {Path(p) for p in paths}:
        raise InbornError(f"--out {str(run.path)!r} is one of the member runs")
    if run.file(RunDir.CONFIG).exists():
        kind = _kind_of(run)
        if kind != KIND:  # never overwrite another kind of run
            raise InbornError(f"{str(run.path)!r} already holds a {kind} run; choose another --out")
    ensemble = Ensemble([inborn.load(p, device=device) for p in paths], combine, names=[str(r) for r in runs])
    first = docs[0]["config"]
    eps = {d["config"].get("eps") for d in docs}
    config = {
        "data": first["data"], "data_dir": data_dir if data_dir is not None else first.get("data_dir"),
        "eps": eps.pop() if len(eps) == 1 else None,  # members' ε when they agree, else the data set's
        "val_fraction": first.get("val_fraction", 0.1), "seed": first.get("seed", 0),
        "members": paths, "combine": combine,
    }
    spec = {"arch": KIND, "combine": combine, "num_classes": docs[0]["model"].get("num_classes"),
            "members": [d["model"].get("arch") for d in docs]}
    run.write_config(config, spec, kind=KIND)
    return ensemble


def load_ensemble(path: str | Path, device: str | torch.device = "cpu") -> Ensemble:
    """The ensemble of an ensemble run directory, members loaded from their own runs, eval mode."""
    import inborn
    from inborn.store import RunDir

    run = RunDir(path)
    doc = run.read_config()
    if doc.get("kind") != KIND:
        raise InbornError(f"{str(path)!r} is not an ensemble (made by inborn ensemble)")
    members = list(doc["config"].get("members") or [])
    member_docs(members)
    return Ensemble([inborn.load(p, device=device) for p in members], doc["config"].get("combine", "logits"),
                    names=members).eval()


def _kind_of(run) -> str:
    try:
        return str(run.read_config().get("kind"))
    except InbornError:
        return "foreign"
