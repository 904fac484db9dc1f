"""One cell of a sweep: a run to make, how to launch it, and whether it is already done.

A cell's directory holds, besides the run's own files:
    cell.json   what the cell is (kind, config, extra args): a re-run with other settings is refused
    cell.yaml   the config passed to `inborn <kind> --config`: the cell's settings, all of them
    cell.log    stdout and stderr of every attempt, each after a `== start` line
"""

from __future__ import annotations

import json
import shlex
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from inborn.data import dataset_entry
from inborn.errors import InbornError
from inborn.io import atomic_write_json, atomic_write_text, read_json
from inborn.models.registry import model_entry
from inborn.store import ResultsDB, RunDir
from inborn.sweep import grid as grid_mod
from inborn.train.config import TRAIN_KINDS, TrainConfig, kind_of
from inborn.train.resolve import resolve_config

CELL_JSON = "cell.json"
CELL_YAML = "cell.yaml"
CELL_LOG = "cell.log"
# A run made under Ray writes its own database here; the driver copies its rows into the
# sweep's database, so that SQLite is never shared between the nodes of a cluster.
CELL_DB = "cell.db"
START_MARK = "== start "



@dataclass
class Cell:
    """A run of `inborn <kind>` with `config` (TrainConfig fields, partial: the resolver fills in
    the rest, e.g. from the data set's recipe) into the run directory `out`. `values` are the grid values
    that name it; `extra_args` are appended to its command line."""

    name: str
    kind: str
    config: dict[str, Any]
    out: Path
    values: dict[str, Any] = field(default_factory=dict)
    extra_args: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        self.out = Path(self.out).resolve()  # absolute: Ray workers need not share our cwd

    def spec(self) -> dict[str, Any]:
        """What the cell is, as plain JSON data (paths become strings, tuples lists)."""
        spec = {"kind": self.kind, "config": self.config, "extra_args": list(self.extra_args)}
        return json.loads(json.dumps(spec, default=str))


def infer_kind(config: dict[str, Any]) -> str:
    return kind_of(config.get("ticket"), config.get("finetune"))


def check_kind(kind: str, config: dict[str, Any], name: str) -> None:
    """The settings `inborn <kind>` can take; a mismatch would otherwise fail every run."""
    where = f"cell {name!r}" if name else "sweep"
    if kind == "search" and not (config.get("ticket") or {}).get("keep_ratio"):
        raise InbornError(f"{where}: a search needs a keep ratio (ticket.keep_ratio, or --grid keep=...)")
    if kind == "finetune" and not (config.get("finetune") or {}).get("ticket"):
        raise InbornError(f"{where}: a finetune needs finetune.ticket (the run directory of a ticket)")
    if kind != "search" and (config.get("ticket") is not None or config.get("from_run")):
        raise InbornError(f"{where}: ticket / from_run settings belong to kind search, not {kind}")
    if kind != "finetune" and config.get("finetune") is not None:
        raise InbornError(f"{where}: finetune settings belong to kind finetune, not {kind}")


def plan_cells(base_config: str | Path, specs: list[str], out: str | Path) -> list[Cell]:
    """The cells of `inborn sweep BASE --grid ... --out OUT`, each checked before anything runs."""

    kind, base = grid_mod.load_base(base_config)
    grid = grid_mod.parse_grid(specs)
    cells, names = [], set()
    for values, config in grid_mod.expand(base, grid):
        name = grid_mod.cell_name(values)
        if name in names:
            raise InbornError(f"two cells map to the directory {name!r}; write the values differently")
        names.add(name)
        cell_kind = kind or infer_kind(config)
        check_kind(cell_kind, config, name)
        check_settings(config, name)
        finetune = config.get("finetune") or {}
        if cell_kind == "finetune" and isinstance(finetune.get("ticket"), str):
            try:  # a sweep's tickets exist before it starts (a study's are made by its earlier cells)
                if "supermask" not in RunDir(finetune["ticket"]).read_config()["model"]:
                    raise InbornError(f"{finetune['ticket']!r} is not a ticket (made by inborn search)")
            except InbornError as e:
                raise InbornError(f"cell {name!r}: {e}") from e
        cells.append(Cell(name=name, kind=cell_kind, config=config, out=Path(out) / name, values=values))
    return cells


def check_settings(config: dict[str, Any], name: str) -> None:
    """Everything about a cell's settings that can be known before it runs: types, ranges, names
    (data set, model, mask pattern, weight init). Unknown names and bad values fail here, once,
    in the parent, before any worker starts or any directory is made."""
    try:
        # A study's fine-tuning cells start from tickets its earlier cells make: those inherit later.
        finetune = config.get("finetune")
        ticket_made = not isinstance(finetune, dict) or RunDir(str(finetune.get("ticket"))).file(RunDir.CONFIG).exists()
        cfg = resolve_config(config) if ticket_made else TrainConfig.from_dict(config).validate()
        dataset_entry(cfg.data)
        model_entry(cfg.arch)
    except (TypeError, InbornError) as e:
        raise InbornError(f"cell {name!r}: {e}") from e


# -- state on disk ---------------------------------------------------------------
def check_cell(cell: Cell) -> None:
    """Refuse, before anything runs, a cell that `inborn <kind>` cannot take, or a directory made
    for another cell (e.g. the base config changed since)."""
    if cell.kind not in TRAIN_KINDS:
        raise InbornError(f"cell {cell.name!r}: kind must be one of {', '.join(TRAIN_KINDS)}, got {cell.kind!r}")
    check_kind(cell.kind, cell.config, cell.name)
    path = cell.out / CELL_JSON
    if path.exists():
        stored = read_json(path, "sweep cell")
        if not isinstance(stored, dict) or not _same_cell(stored, cell.spec()):
            raise InbornError(f"{str(cell.out)!r} was made with other settings than this sweep's; "
                              f"use another --out (or remove that directory)")
    RunDir(cell.out).read_summary()  # a finished cell's damaged summary: reported now, never rewritten


def _same_cell(stored: dict[str, Any], spec: dict[str, Any]) -> bool:
    """The same cell: the same spec, or the same kind and extra arguments and settings that resolve
    to the same run (a cell written before the recipe moved into the resolver held its values)."""
    if stored == spec:
        return True
    if stored.get("kind") != spec["kind"] or stored.get("extra_args") != spec["extra_args"]:
        return False
    try:
        return resolve_config(stored.get("config") or {}) == resolve_config(spec["config"])
    except InbornError:
        return False


def is_complete(cell: Cell, db: ResultsDB | str | Path | None = None) -> bool:
    """Done: its summary.json is written and the results database has it as complete."""
    if not (cell.out / RunDir.SUMMARY).exists():
        return False
    db = db if isinstance(db, ResultsDB) else ResultsDB(db)
    try:
        rows = db.runs(path=str(cell.out))
    except InbornError:  # no database yet
        return False
    return bool(rows) and rows[0]["status"] == "complete"


def should_resume(cell: Cell) -> bool:
    """Continue an interrupted run: once config.yaml is written, `--resume` restarts from the last
    complete epoch (or from epoch 0 when none completed), and a fresh start would be refused."""
    return (cell.out / RunDir.CONFIG).exists()


def write_cell_files(cell: Cell) -> None:
    cell.out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(cell.out / CELL_JSON, cell.spec())
    atomic_write_text(cell.out / CELL_YAML, yaml.safe_dump(cell.spec()["config"], sort_keys=False))


def cell_command(cell: Cell, db: str | Path, resume: bool) -> list[str]:
    """`python -m inborn <kind> --config DIR/cell.yaml --out DIR ...` (see `write_cell_files`): every
    setting, the ticket's and the fine-tuning's included, goes in the YAML."""
    cmd = [sys.executable, "-m", "inborn", cell.kind, "--config", str(cell.out / CELL_YAML), "--out", str(cell.out),
           "--db", str(db), "--quiet"]
    if resume:
        cmd.append("--resume")
    return cmd + list(cell.extra_args)


def start_line(cmd: list[str]) -> str:
    return f"{START_MARK}{time.strftime('%Y-%m-%d %H:%M:%S')}: {shlex.join(cmd)}\n"


def attempts(cell: Cell) -> int:
    """How many times the sweep started this cell (from cell.log)."""
    log = cell.out / CELL_LOG
    if not log.exists():
        return 0
    return sum(line.startswith(START_MARK) for line in log.read_text(errors="replace").splitlines())


def mirror_cell_db(cell: Cell, db: ResultsDB) -> None:
    """Copy a Ray-run cell's rows from its own database (cell.db) into the sweep's."""
    cell_db = ResultsDB(cell.out / CELL_DB)
    try:
        runs, results = cell_db.runs(path=str(cell.out)), cell_db.results(run_path=str(cell.out))
    except InbornError:
        return
    if not runs or runs[0]["status"] != "complete":
        return
    doc = RunDir(cell.out).read_config()
    db.upsert_run(cell.out, kind=runs[0]["kind"], status="complete", config=doc["config"],
                  summary=RunDir(cell.out).read_summary())
    if results:
        db.add_results(results)
