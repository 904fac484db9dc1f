"""The output guard: the one check every command makes before it writes a directory or a file.

inborn writes only into a directory that
  - does not exist yet (its parent must be a directory that can take it),
  - is empty,
  - is an inborn run directory of the kind being written (its config.yaml says so), to resume
    or re-run it, or
  - is an inborn study directory of the same kind and the same study (its `.inborn` marker says so);
and never replaces a file it did not write. A single file (an export, a card, a figure) may not be
a directory, nor a file of a run or study directory other than the run's own file of that kind
(`RUN/card.json`), nor an existing file that is not one inborn wrote of that kind (a safetensors
export, a card's JSON, a PNG inborn drew: `io.save_figure` signs it).
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
from inborn.io import atomic_write_json, is_inborn_figure, read_json

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
    return _marker(path).get("kind") if (Path(path) / MARKER).is_file() else None


def _marker(path: str | Path) -> dict[str, str | None]:
    """The `.inborn` marker's kind and name ({"kind": "foreign"} when unreadable; {} when absent)."""
    marker = Path(path) / MARKER
    if not marker.is_file():
        return {}
    try:
        doc = json.loads(marker.read_text())
        return {"kind": str(doc["kind"]), "name": doc.get("name") if isinstance(doc.get("name"), str) else None}
    except (ValueError, OSError, AttributeError, KeyError, TypeError):
        return {"kind": "foreign"}


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


def claim_study(path: str | Path, kind: str, *, name: str | None = None, what: str = "--out") -> None:
    """Check a study's (or sweep's) output directory, then create it with its `.inborn` marker.

    `name` says which study (`existence (quick)`): a directory holding another study is refused.
    A directory made by an earlier inborn without the marker (or without a name in it) is
    recognised by its contents: run directories and the study's own report files only, its
    `study.json` naming the same study."""
    path = Path(path)
    record = path / "study.json"
    if record.exists():  # a finished study's damaged record is reported, never rewritten
        doc = read_json(record, "study record")
        if not isinstance(doc, dict) or not isinstance(doc.get("study"), str):
            raise InbornError(f"{_q(record)} is not an inborn study record (it names no study)")
    earlier = path.is_dir() and marker_kind(path) is None and run_kind(path) is None and _earlier_study(path)
    if not earlier:  # a study directory from before the marker is taken as it is
        check_output(path, kind, what=what)
    held = _marker(path).get("name") or _study_json_name(path)
    if name is not None and held is not None and held != name:
        raise InbornError(f"{what} {_q(path)} already holds the study {held!r}, not {name!r}; choose another "
                          "directory")
    if not path.exists():
        path.mkdir(parents=True)
    if marker_kind(path) is None or (name is not None and _marker(path).get("name") is None):
        atomic_write_json(path / MARKER, {"kind": kind, **({"name": name} if name is not None else {})})


def study_name(study: str, scale: str | None = None) -> str:
    """A study directory's name in its marker: `existence (quick)`."""
    return study if scale is None else f"{study} ({scale})"


def _study_json_name(path: Path) -> str | None:
    """The study a marker-less (older) study directory's study.json names, if it names one."""
    try:
        doc = json.loads((path / "study.json").read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(doc, dict) or not isinstance(doc.get("study"), str):
        return None
    return study_name(doc["study"], doc.get("scale") if isinstance(doc.get("scale"), str) else None)


def _earlier_study(path: Path) -> bool:
    """A study or sweep directory written before the marker existed: only run (or sweep cell)
    directories and report files, and at least one of the former or of the study's own files."""
    entries = list(path.iterdir())
    owned = {"study.json", "report.md", "sweep.csv", "sweep.md", "runs"}

    def is_run(e: Path) -> bool:
        return e.is_dir() and (run_kind(e) not in (None, "foreign") or (e / "cell.json").exists())

    def has_runs(e: Path) -> bool:  # a study's `runs/` holds run directories; a user's folder may not
        return e.name == "runs" and e.is_dir() and any(is_run(r) for r in e.iterdir())

    # Report files alone do not make a study: a user's folder may hold a report.md or sweep.md.
    return (bool(entries) and all(e.name in owned or e.name.endswith((".csv", ".png", ".md")) or is_run(e)
                                  for e in entries)
            and any(is_run(e) or has_runs(e) or _study_json_name(path) is not None for e in entries))


FILE_KINDS = {"export": ("model.safetensors", "an export"), "card": ("card.json", "a model card"),
              "figure": ("figure.png", "a figure"),
              # kind -> (an example name, what inborn calls it)
              "adversarial": ("adversarial.safetensors", "a file of adversarial examples")}


def check_output_file(path: str | Path, kind: str = "export", *, what: str = "--out", own: Path | None = None) -> None:
    """A single file to write, of `kind` (export, card, figure): not a directory; not inside a run
    or study directory, except `own` (the one file of this kind that directory's run keeps, e.g.
    RUN/card.json); and not an existing file unless inborn wrote it as a file of this kind."""
    path = Path(path)
    example, called = FILE_KINDS[kind]
    check_name(path)
    if path.is_dir():
        raise InbornError(f"{what} {_q(path)} is a directory; name the file to write, e.g. {str(path / example)!r}")
    if not path.exists():
        check_creatable(path)
    inside = ("run" if run_kind(path.parent) is not None or (path.parent / ".lock").exists()
              else "study" if marker_kind(path.parent) else None)
    is_own = own is not None and path.absolute() == Path(own).absolute()
    if inside and not is_own:
        raise InbornError(f"{what} {_q(path)} is inside the {inside} directory {str(path.parent)!r}; write it "
                          "elsewhere")
    if path.exists() and not _written_as(path, kind):
        raise InbornError(f"{what} {_q(path)} exists and is not {called} inborn wrote; choose a new file name")


def _written_as(path: Path, kind: str) -> bool:
    """Whether the file at `path` is one inborn wrote as a file of `kind`."""
    if kind == "figure":
        return is_inborn_figure(path)
    if kind == "card":
        try:
            doc = json.loads(path.read_text())
        except (OSError, ValueError, UnicodeDecodeError):
            return False
        # A card (RobustBench's fields, inborn's under `inborn`), or one of the earlier flat shape.
        ours = isinstance(doc, dict) and isinstance(doc.get("inborn"), dict) and "version" in doc["inborn"]
        return isinstance(doc, dict) and "autoattack_acc" in doc and (ours or "inborn_version" in doc)
    marker = "inborn_adversarial" if kind == "adversarial" else "inborn_export"
    try:
        with safe_open(str(path), framework="pt") as f:
            return marker in (f.metadata() or {})
    except Exception:  # not a safetensors file at all
        return False
