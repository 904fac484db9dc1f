"""An ensemble's run directory (`kind: ensemble`): only config.yaml, holding the members'
absolute run paths and the combine rule; weights are never copied. Loading it (the members from
their own runs) is `inborn.runs.load`'s."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from inborn.errors import InbornError
from inborn.models.ensemble import COMBINES, check_num_classes
from inborn.store import RunDir
from inborn.store.guard import check_output

KIND = "ensemble"


def member_docs(runs: Sequence[str | Path]) -> list[dict[str, Any]]:
    """The members' run configs, checked to be one data set and one class count."""
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


def ensemble_run(out: str | Path, paths: Sequence[str], combine: str) -> RunDir:
    """The run directory to write the ensemble into, refused if it is a member or another kind of run."""
    if combine not in COMBINES:
        raise InbornError(f"unknown combine rule {combine!r}; known: {', '.join(COMBINES)}")
    run = RunDir(out)
    if Path(run.path).resolve() in {Path(p) for p in paths}:
        raise InbornError(f"--out {str(run.path)!r} is one of the member runs")
    check_output(run.path, KIND)  # new, empty or an ensemble: never another run or a user's files
    return run


def write_ensemble_config(run: RunDir, docs: Sequence[dict[str, Any]], paths: Sequence[str], combine: str,
                          data_dir: str | None) -> None:
    first = docs[0]["config"]
    eps = {d["config"].get("eps") for d in docs}
    config = {
        "data": first["data"], "data_dir": data_dir if data_dir is not None else first.get("data_dir"),
        "eps": eps.pop() if len(eps) == 1 else None,  # members' ε when they agree, else the data set's
        "val_fraction": first.get("val_fraction", 0.1), "seed": first.get("seed", 0),
        "members": list(paths), "combine": combine,
    }
    spec = {"arch": KIND, "combine": combine, "num_classes": docs[0]["model"].get("num_classes"),
            "members": [d["model"].get("arch") for d in docs]}
    run.write_config(config, spec, kind=KIND)


def ensemble_members(path: str | Path) -> tuple[list[str], str]:
    """(member run paths, combine rule) of an ensemble run directory, the members checked."""
    doc = RunDir(path).read_config()
    if doc.get("kind") != KIND:
        raise InbornError(f"{str(path)!r} is not an ensemble (made by inborn ensemble)")
    members = list(doc["config"].get("members") or [])
    member_docs(members)
    return members, doc["config"].get("combine", "logits")

