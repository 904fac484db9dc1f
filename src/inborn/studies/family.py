"""The family studies: tickets at several keep ratios over ONE random weight tensor, gathered
into a family, then the transfer matrix between them (`transfer`) or the Random RST Switch under
every protocol beside dense PGD-AT (`r2s`). The evaluation is `inborn transfer` / `inborn r2s`'s
own (analysis.family_report), with the preset's `evaluate` section as its settings."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from inborn.analysis.family_report import r2s_evaluation, write_r2s_report, write_transfer_report
from inborn.analysis.r2s_config import R2SSettings, r2s_settings
from inborn.analysis.transfer import transfer_matrix
from inborn.device import resolve_device
from inborn.errors import InbornError
from inborn.masks.family import TicketFamily
from inborn.runs import build_family, load, load_family, load_run_data
from inborn.runs.data import eval_heads
from inborn.studies.tickets import baseline_cells, search_cells

# A preset's `evaluate` keys as R2SSettings names (`eot`, as the flag, is the name presets used first).
EVALUATE_ALIASES = {"eot": "eot_samples"}


@dataclass
class PreparedFamily:
    """A study's family, the images it is evaluated on, and the baseline runs beside it."""

    family: TicketFamily
    test: tuple[torch.Tensor, torch.Tensor]
    val: tuple[torch.Tensor, torch.Tensor] | None
    eps: float
    settings: R2SSettings
    baselines: list[Any]


def study_settings(preset: dict[str, Any]) -> R2SSettings:
    """The preset's `evaluate` section (and its `protocols`) as R2SSettings: one set of defaults
    with `inborn r2s`."""
    if not isinstance(preset.get("evaluate") or {}, dict):
        raise InbornError("a study's `evaluate` must be a mapping, e.g. {n: 200, steps: 20}")
    evaluate = {EVALUATE_ALIASES.get(k, k): v for k, v in (preset.get("evaluate") or {}).items()}
    if preset.get("protocols") is not None:
        evaluate["protocols"] = list(preset["protocols"])
    return r2s_settings(**evaluate)


def prepare_family(preset: dict[str, Any], runs: Path, *, run: Any, device: str = "auto") -> PreparedFamily:
    """Search the tickets (and baselines), gather the family, and load the test and validation images."""
    tickets = search_cells(preset, runs)
    baselines = baseline_cells(preset, runs)
    run([*baselines, *tickets])
    build_family([str(c.out) for c in tickets], runs / "family")
    dev = resolve_device(device)
    settings = study_settings(preset)
    test, val = eval_heads(load_run_data({"config": preset["base"]}), settings.n, dev)
    return PreparedFamily(load_family(runs / "family", dev), test, val, preset["base"]["eps"], settings, baselines)


def run_family_study(preset: dict[str, Any], out: Path, *, run: Any, device: str = "auto",
                     progress: bool = True) -> dict[str, Any]:
    f = prepare_family(preset, out / "runs", run=run, device=device)
    if preset.get("protocols") is None:
        return transfer_report(preset, f, out, progress)
    return r2s_report(preset, f, out, progress)


def transfer_report(preset: dict[str, Any], f: PreparedFamily, out: Path, progress: bool) -> dict[str, Any]:
    result = transfer_matrix(f.family, *f.test, eps=f.eps, steps=f.settings.steps, batch_size=f.settings.batch_size,
                             seed=f.settings.seed, progress=progress)
    context = (f"Study `transfer` at `{preset['scale']}` scale: {len(f.family)} tickets of "
               f"`{preset['base']['arch']}` on `{preset['base']['data']}` over one random weight tensor. ")
    return write_transfer_report(result, out, figure="figure.png", context=context, paper=preset.get("paper"),
                                 title=preset.get("title", "Transferability between tickets"))


def r2s_report(preset: dict[str, Any], f: PreparedFamily, out: Path, progress: bool) -> dict[str, Any]:
    references = [(cell.name, load(cell.out, device=f.test[0].device)) for cell in f.baselines]
    result, rows = r2s_evaluation(f.family, f.test, f.val, eps=f.eps, settings=f.settings, references=references,
                                  progress=progress)
    context = f"Study `r2s` at `{preset['scale']}` scale: `{preset['base']['arch']}` on `{preset['base']['data']}`. "
    return write_r2s_report(result, out, references=rows, figure="figure.png", context=context,
                            paper=preset.get("paper"), title=preset.get("title", "Random RST Switch"))
