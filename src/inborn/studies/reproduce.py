"""`inborn reproduce STUDY`: a preset resolved at one scale, its runs, and its report directory."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

from inborn.data import load_data
from inborn.errors import InbornError
from inborn.io import atomic_write_json, atomic_write_text
from inborn.store import ResultsDB, RunDir
from inborn.store.guard import claim_study, study_name
from inborn.studies.execute import run_or_fail
from inborn.studies.family import run_family_study
from inborn.studies.nas import run_nas_study
from inborn.studies.nas_config import NasStudyConfig
from inborn.studies.overparam import run_overparam_study
from inborn.studies.presets import resolve_preset
from inborn.studies.tickets import run_ticket_study
from inborn.studies.tour import run_tour

# Where each official data set's files go (said when paper scale finds them missing).
_DATA_HINTS = {
    "cifar10": "cifar-10-batches-py/ (the python version of CIFAR-10)",
    "cifar100": "cifar-100-python/ (the python version of CIFAR-100)",
    "svhn": "train_32x32.mat and test_32x32.mat",
    "mnist": "the four MNIST idx files",
}


def check_data(preset: dict[str, Any]) -> Any:
    """Load the study's data set once, so a missing one fails before anything is written;
    returns its DatasetInfo."""

    settings = preset["settings"] if preset["runner"] == "nas" else preset["base"]
    name, root = settings.get("data", "mnist5k"), settings.get("data_dir")
    try:
        return load_data(name, root).info
    except InbornError as e:
        hint = _DATA_HINTS.get(name)
        where = f"put {hint} in a directory and pass it as --data-dir" if hint else "pass --data-dir"
        raise InbornError(f"study {preset['study']!r} at {preset['scale']} scale needs {name}: {e}; {where}") from e


def run_study(name: str, scale: str, out: str | Path, *, data_dir: str | None = None, device: str = "auto",
              executor: str = "local", max_parallel: int | None = 1, address: str | None = None,
              progress: bool = True, overrides: dict[str, Any] | None = None,
              db: str | Path | None = None) -> dict[str, Any]:
    """Run (or pick up) a study and write its report; returns {report, main_table, rows}."""
    preset = resolve_preset(name, scale, data_dir=data_dir, device=device, overrides=overrides)
    info = check_data(preset)
    if preset["runner"] != "nas" and preset["base"].get("eps") is None:
        preset["base"]["eps"] = info.default_eps
    out = Path(out)
    if db is not None:
        ResultsDB(db).check()
    for summary in sorted(out.glob("**/summary.json")) if out.is_dir() else []:
        RunDir(summary.parent).read_summary()  # a finished run's damaged summary: reported before any write
    # New, empty or this very study's directory: never a run, another study or a user's files.
    claim_study(out, "study", name=study_name(preset["study"], scale))
    atomic_write_json(out / "study.json", {"study": preset["study"], "scale": scale, "preset": preset})

    run = functools.partial(run_or_fail, executor=executor, max_parallel=max_parallel, address=address, db=db,
                            progress=progress)

    if preset["runner"] == "nas":
        result = run_nas_study(NasStudyConfig.from_dict(preset["settings"]), out, executor=executor,
                               max_parallel=max_parallel or 1, address=address, device=device, progress=progress,
                               db=db, study=study_name(preset["study"], scale))
        return {"report": out / "report.md", "main_table": result["main_table"], "rows": result["rows"]}
    if preset["runner"] == "tickets":
        study = run_ticket_study(preset, out, run=run)
        result = {"report": study.report, "main_table": study.main_table, "rows": study.rows}
    elif preset["runner"] == "overparam":
        result = run_overparam_study(preset, out, run=run)
    elif preset["runner"] == "tour":
        result = run_tour(preset, out, run=run, device=device, progress=progress)
    else:
        result = run_family_study(preset, out, run=run, device=device, progress=progress)
    atomic_write_text(out / "report.md", result["report"])
    return {"report": out / "report.md", "main_table": result["main_table"], "rows": result["rows"]}
