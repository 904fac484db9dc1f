"""The output guard: the one check every command makes before it writes a directory or a file.

inborn writes only into a directory that
  - does not exist yet (its parent must be a directory that can take it),
  - is empty,
  - is an inborn run directory of the kind being written (its config.yaml says so), to resume
    or re-run it, or
  - is an inborn study directory of the same kind (its `.inborn` marker says so);
and never replaces a file it did not write. A single file (`inborn export --out`) may not be a
directory, nor a file of a run directory, nor an existing file that is not an inborn export.
Everything is a one-line InbornError, raised before the first byte is written.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path

import yaml
from safetensors import safe_open

from inborn.errors import InbornError
from inborn.io import atomic_write_json

MARKER = ".inborn"  # a study or sweep directory's kind, written when inborn creates it
NAME_MAX = 255  # bytes in one path component on every common file system
# Files a directory may hold before inborn has written its config: the lock of a run that failed
# early, and what a sweep writes into a cell before the cell's run starts.
_PRE_RUN = {".lock", "cell.json", "cell.yaml", "cell.log", "cell.db", "cell.db-wal", "cell.db-shm"}


def _q(path: Path) -> str:
    return repr(str(path))


def check_name(path: str | Path) -> None:
    """Every component of `path` fits the file-name limit."""
    for part in Path(path).parts:
        if len(os.fsencode(part)) > NAME_MAX:
            raise InbornError(f"path component {part[:40]!r}... is {len(os.fsencode(part))} bytes long; "
                              f"file names are limited to {NAME_MAX} bytes")


def check_creatable(path: str | Path) -> None:
    """`path` does not exist; its nearest existing ancestor must be a writable directory."""
    path = Path(path)
    check_name(path)
    parent = path.absolute().parent
    while not parent.exists():
        if parent.is_symlink():
            raise InbornError(f"{_q(parent)} is a dangling symbolic link")
        parent = parent.parent
    if not parent.is_dir():
        raise InbornError(f"cannot create {_q(path)}: {_q(parent)} is a file, not a directory")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise InbornError(f"cannot create {_q(path)}: {_q(parent)} is not writable")


def run_kind(path: str | Path) -> str | None:
    """The kind in an inborn run's config.yaml (`train`, `search`, `family`, ...); None when the
    directory has no config.yaml; "foreign" when it has one that inborn did not write."""
    config = Path(path) / "config.yaml"
    if not config.exists():
        return None
    try:
        doc = yaml.safe_load(config.read_text())
    except (yaml.YAMLError, OSError, UnicodeDecodeError):
        return "foreign"
    if (not isinstance(doc, dict) or not isinstance(doc.get("kind"), str) or not isinstance(doc.get("config"), dict)
            or not isinstance(doc.get("model"), dict)):
        return "foreign"
    return doc["kind"]


def marker_kind(path: str | Path) -> str | None:
    marker = Path(path) / MARKER
    if not marker.is_file():
        return None
    try:
        return str(json.loads(marker.read_text()).get("kind"))
    except (ValueError, OSError, AttributeError):
        return "foreign"


def check_output(path: str | Path, kinds: str | Iterable[str], *, what: str = "--out",
                 allow: Iterable[str] = ()) -> None:
    """Refuse `path` as the output directory of a run (or study) of one of `kinds` unless it is
    new, empty, or an inborn directory of that kind. `allow`: entries a directory of this kind
    holds before its own config exists (a family's `tickets/`)."""
    kinds = (kinds,) if isinstance(kinds, str) else tuple(kinds)
    path = Path(path)
    check_name(path)
    if not path.exists() and not path.is_symlink():
        check_creatable(path)
        return
    if not path.is_dir():
        raise InbornError(f"{what} {_q(path)} is a file, not a directory; choose a new directory")
    entries = sorted(p.name for p in path.iterdir())
    if not entries:
        return
    kind = run_kind(path) or marker_kind(path)
    if kind == "foreign":
        raise InbornError(f"{what} {_q(path)} holds a config.yaml inborn did not write; choose a new or empty "
                          "directory")
    if kind is not None:
        if kind not in kinds:
            raise InbornError(f"{what} {_q(path)} already holds a {kind} run; choose another directory")
        return
    foreign = [e for e in entries if e not in _PRE_RUN and e not in set(allow)]
    if foreign:
        raise InbornError(f"{what} {_q(path)} holds files inborn did not write (e.g. {foreign[0]!r}); choose a "
                          "new or empty directory")


def claim_study(path: str | Path, kind: str, *, what: str = "--out") -> None:
    """Check a study's (or sweep's) output directory, then create it with its `.inborn` marker.

    A directory made by an earlier inborn without the marker is recognised by its contents: run
    directories and the study's own report files only."""
    path = Path(path)
    earlier = path.is_dir() and marker_kind(path) is None and run_kind(path) is None and _earlier_study(path)
    if not earlier:  # a study directory from before the marker is taken as it is
        check_output(path, kind, what=what)
    if not path.exists():
        path.mkdir(parents=True)
    if marker_kind(path) is None:
        atomic_write_json(path / MARKER, {"kind": kind})


def _earlier_study(path: Path) -> bool:
    """A study or sweep directory written before the marker existed: only run (or sweep cell)
    directories and report files, and at least one of the former or of the study's own files."""
    entries = list(path.iterdir())
    owned = {"study.json", "report.md", "sweep.csv", "sweep.md", "runs"}

    def is_run(e: Path) -> bool:
        return e.is_dir() and (run_kind(e) not in (None, "foreign") or (e / "cell.json").exists())

    return (bool(entries) and all(e.name in owned or e.name.endswith((".csv", ".png", ".md")) or is_run(e)
                                  for e in entries)
            and any(e.name in owned or is_run(e) for e in entries))


def check_output_file(path: str | Path, *, what: str = "--out", export_key: str = "inborn_export") -> None:
    """A single file to write (an export): not a directory, not a file of a run directory, and
    not an existing file that inborn did not write (a safetensors file with `export_key`)."""
    path = Path(path)
    check_name(path)
    if path.is_dir():
        raise InbornError(f"{what} {_q(path)} is a directory; name the file to write, e.g. "
                          f"{str(path / 'model.safetensors')!r}")
    if not path.exists():
        check_creatable(path)
    if run_kind(path.parent) is not None or (path.parent / ".lock").exists():
        raise InbornError(f"{what} {_q(path)} is inside the run directory {str(path.parent)!r}; write it elsewhere")
    if path.exists() and not _is_export(path, export_key):
        raise InbornError(f"{what} {_q(path)} exists and is not a file inborn exported; choose a new file name")


def _is_export(path: Path, key: str) -> bool:
    try:
        with safe_open(str(path), framework="pt") as f:
            return key in (f.metadata() or {})
    except Exception:  # not a safetensors file at all
        return False
