"""Atomic file writes: a reader sees the old file or the new one, never half of one."""

from __future__ import annotations

import hashlib
import json
import math
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from inborn.errors import InbornError


def atomic_write(path: str | Path, write: Callable[[Path], None]) -> None:
    """Call `write(tmp_path)` on a temporary file beside `path`, then rename it over `path`."""
    path = Path(path)
    made = _missing_parents(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=_temp_prefix(path.name), suffix=".tmp", dir=path.parent)
    except BaseException:
        _remove_empty(made)
        raise
    os.close(fd)
    os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give the file ordinary permissions
    tmp_path = Path(tmp)
    try:
        write(tmp_path)
        with open(tmp_path, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp_path, path)
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        _remove_empty(made)  # nothing partial: not even the directories made for it
        raise


def _missing_parents(path: Path) -> list[Path]:
    """The ancestors of `path` that do not exist yet, deepest first."""
    missing = []
    parent = path.parent
    while not parent.exists() and parent != parent.parent:
        missing.append(parent)
        parent = parent.parent
    return missing


def _remove_empty(dirs: list[Path]) -> None:
    for d in dirs:
        try:
            d.rmdir()
        except OSError:  # not empty (someone else wrote there) or never made
            return


def _temp_prefix(name: str) -> str:
    """`.NAME.` for the temporary file, or a hash of NAME when that would pass the 255-byte
    file-name limit (mkstemp adds 8 characters and the suffix 4)."""
    if len(os.fsencode(name)) <= 200:
        return f".{name}."
    return f".{hashlib.sha256(os.fsencode(name)).hexdigest()[:32]}."


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


FIGURE_SOFTWARE = "inborn"  # the PNG `Software` text every figure inborn draws carries: its signature
_PNG = b"\x89PNG\r\n\x1a\n"


def save_figure(fig: Any, path: str | Path, *, dpi: int = 120, tight: bool = False) -> None:
    """A matplotlib figure as a PNG at `path`, written atomically and signed as inborn's (so the
    output guard knows it may replace it)."""
    atomic_write(path, lambda p: fig.savefig(p, format="png", dpi=dpi, metadata={"Software": FIGURE_SOFTWARE},
                                             **({"bbox_inches": "tight"} if tight else {})))


def is_inborn_figure(path: str | Path) -> bool:
    """Whether `path` is a PNG whose `Software` text says inborn drew it (`save_figure`)."""
    try:
        with open(path, "rb") as f:
            if f.read(8) != _PNG:
                return False
            while True:
                head = f.read(8)
                if len(head) < 8:
                    return False
                size, kind = int.from_bytes(head[:4], "big"), head[4:]
                if kind in (b"IDAT", b"IEND") or size > 1 << 20:  # text chunks come before the image data
                    return False
                data = f.read(size)
                f.read(4)  # CRC
                if kind == b"tEXt" and data.split(b"\0", 1) == [b"Software", FIGURE_SOFTWARE.encode()]:
                    return True
    except OSError:
        return False


def read_text(path: str | Path) -> str:
    """A text file inborn wrote; a binary or foreign one is a one-line error naming it."""
    try:
        return Path(path).read_text()
    except UnicodeDecodeError as e:
        raise InbornError(f"{str(path)!r} is not text (a binary or foreign file)") from e


def read_json(path: str | Path, what: str) -> Any:
    """A JSON file inborn wrote; one line naming it when it is truncated, binary or not JSON."""
    try:
        return json.loads(read_text(path))
    except ValueError as e:
        raise InbornError(f"{str(path)!r} is not a readable {what} (truncated or edited? {e})") from e


def atomic_write_text(path: str | Path, text: str) -> None:
    atomic_write(path, lambda p: p.write_text(text))


def finite_json(obj: Any) -> Any:
    """`obj` with every NaN and infinity replaced by None (JSON null): inborn never writes the
    bare `NaN` / `Infinity` tokens that strict JSON parsers reject. A figure that is not a number
    (e.g. the spread of a single repeat) is written as null, explicitly."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: finite_json(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [finite_json(v) for v in obj]
    return obj


def strict_json(obj: Any, **kwargs: Any) -> str:
    """json.dumps that writes only strict JSON (non-finite floats as null, see `finite_json`)."""
    return json.dumps(finite_json(obj), allow_nan=False, **kwargs)


def atomic_write_json(path: str | Path, obj: Any) -> None:
    atomic_write_text(path, strict_json(obj, indent=2, sort_keys=True) + "\n")


def read_yaml_mapping(path: str | Path, what: str = "config file") -> dict[str, Any]:
    """A YAML file that must hold a mapping; every problem is a one-line InbornError."""

    path = Path(path)
    if not path.is_file():
        raise InbornError(f"{what} {str(path)!r} does not exist")
    try:
        doc = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as e:
        raise InbornError(f"{what} {str(path)!r} is not valid YAML") from e
    if not isinstance(doc, dict):
        raise InbornError(f"{what} {str(path)!r} must hold a mapping of settings")
    return doc
