"""Consent before an imported run's own code runs, as Hugging Face's `trust_remote_code`.

An imported run (`inborn import`) names a Python file or module and a factory in its config.yaml;
loading the run imports that code and calls the factory. A run received from someone else (or a
config.yaml edited by hand) must not run anything without this machine's user agreeing, so the code
is located and hashed from the config's fields alone, nothing imported, and runs only when

  - this machine's user imported it (`inborn import` records the SHA-256 of the file, or of the
    module's source file, with the factory's name, in the approvals file), or
  - the caller consents: `inborn.load(run, trust_code=True)`, or `INBORN_TRUST_CODE=1` in the
    environment (every command); the code is then recorded, so later loads pass without it.

The approvals file is `$INBORN_TRUST_FILE`, else `$XDG_CONFIG_HOME/inborn/trusted.json`, else
`~/.config/inborn/trusted.json`. Code of another content (the hash differs) is not trusted.
"""

from __future__ import annotations

import contextlib
import datetime
import hashlib
import json
import os
import site
import sys
import sysconfig
import warnings
from collections.abc import Iterator
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from inborn.errors import InbornError, one_line
from inborn.io import atomic_write_json

TRUST_FILE_ENV = "INBORN_TRUST_FILE"
TRUST_CODE_ENV = "INBORN_TRUST_CODE"
_YES = {"1", "true", "yes", "on"}

# The consent of `inborn.load(..., trust_code=True)` (or of `inborn import` itself) for the code
# loaded inside it: "record" (remember it), "quiet" (import records it only once the run is written).
_CONSENT: ContextVar[str | None] = ContextVar("inborn_trust_consent", default=None)


@dataclass(frozen=True)
class Code:
    """The code an imported spec names, read but not run."""

    where: str  # the file's path or the module's name, for messages
    path: Path  # the source file whose SHA-256 is trusted
    data: bytes  # its content as hashed: a file is run from these very bytes
    sha256: str
    factory: str

    def describe(self) -> str:
        return f"{self.where} (factory {self.factory!r}, sha256 {self.sha256[:12]})"


def trust_file() -> Path:
    """The approvals file: `$INBORN_TRUST_FILE`, else the user's config directory."""
    if os.environ.get(TRUST_FILE_ENV):
        return Path(os.environ[TRUST_FILE_ENV]).expanduser()
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "inborn" / "trusted.json"


def consent_in_env() -> bool:
    return os.environ.get(TRUST_CODE_ENV, "").strip().lower() in _YES


@contextlib.contextmanager
def consent(record: bool = True) -> Iterator[None]:
    """Inside: imported code is trusted (and recorded, unless `record` is False)."""
    token = _CONSENT.set("record" if record else "quiet")
    try:
        yield
    finally:
        _CONSENT.reset(token)


def _entries(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise InbornError(f"the approvals file {str(path)!r} cannot be read ({one_line(e)}); fix or remove it") from e
    entries = doc.get("trusted") if isinstance(doc, dict) else None
    if not isinstance(entries, list):
        raise InbornError(f"the approvals file {str(path)!r} is not inborn's (no 'trusted' list); fix or remove it")
    return [e for e in entries if isinstance(e, dict)]


def is_trusted(code: Code) -> bool:
    return any(e.get("sha256") == code.sha256 and e.get("factory") == code.factory
               for e in _entries(trust_file()))


def approve(code: Code, how: str) -> None:
    """Record `code` in the approvals file (held under a lock: two commands may record at once)."""
    path = trust_file()
    entry = {"sha256": code.sha256, "factory": code.factory, "code": code.where, "how": how,
             "at": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")}
    path.parent.mkdir(parents=True, exist_ok=True)
    with _locked(path.with_name(f".{path.name}.lock")):
        entries = _entries(path)
        if any(e.get("sha256") == code.sha256 and e.get("factory") == code.factory for e in entries):
            return
        atomic_write_json(path, {"about": "model code this user trusts inborn to run (see inborn.spec.trust)",
                                 "trusted": [*entries, entry]})


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    try:
        import fcntl
    except ImportError:  # not POSIX: unlocked
        yield
        return
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def require_trust(code: Code) -> None:
    """Return if `code` may run; else a one-line InbornError saying how to consent. Runs nothing."""
    if is_trusted(code):
        return
    given = _CONSENT.get()
    if given is None and consent_in_env():
        given = "record"
    if given is None:
        raise InbornError(
            f"the model code {code.describe()} was not imported on this machine: inborn runs it only with "
            f"consent; read it, then set {TRUST_CODE_ENV}=1 (Python: inborn.load(run, trust_code=True)) "
            f"to trust it from now on (recorded in {str(trust_file())!r})")
    if given == "record":
        try:
            approve(code, how="consent")
        except (InbornError, OSError) as e:  # consent was given: this load goes on, later ones will ask again
            warnings.warn(f"inborn could not record the trusted code in {str(trust_file())!r}: {one_line(e)}",
                          stacklevel=2)


# -- locating the code, from the spec's fields only ------------------------------------------------
def _under(path: Path, roots: set[Path]) -> bool:
    return any(path == r or r in path.parents for r in roots)


def _python_own(path: Path) -> bool:
    """Part of Python's standard library (not an installed package): never a model's code."""
    paths = sysconfig.get_paths()
    stdlib = {Path(paths[k]).resolve() for k in ("stdlib", "platstdlib") if paths.get(k)}
    sites = {Path(paths[k]).resolve() for k in ("purelib", "platlib") if paths.get(k)}
    with contextlib.suppress(AttributeError):  # an old virtualenv's site module lacks these
        sites |= {Path(p).resolve() for p in [*site.getsitepackages(), site.getusersitepackages()]}
    return _under(path, stdlib) and not _under(path, sites)


def _read(path: Path, where: str, factory: str) -> Code:
    if path.suffix != ".py":
        raise InbornError(f"the model code {where!r} is not a .py source file ({str(path)!r}); inborn runs only "
                          "Python source it can hash")
    if _python_own(path):
        raise InbornError(f"{where!r} is part of Python's standard library, not a model's code; refused")
    try:
        data = path.read_bytes()
    except OSError as e:
        raise InbornError(f"cannot read the model code {str(path)!r}: {one_line(e)}") from e
    return Code(where, path, data, hashlib.sha256(data).hexdigest(), factory)


def file_code(path: Path, factory: str) -> Code:
    """The model file's code, hashed."""
    path = path.resolve()
    if not path.is_file():
        raise InbornError(f"the imported model's file {str(path)!r} no longer exists")
    return _read(path, str(path), factory)


def module_code(name: str, factory: str) -> Code:
    """The source file of module `name`, found the way `import` finds it but without running
    anything: not even its parent packages' `__init__` (importlib.util.find_spec would)."""
    if name.split(".")[0] in sys.stdlib_module_names or name.split(".")[0] in sys.builtin_module_names:
        raise InbornError(f"module {name!r} is part of Python's standard library, not a model's code; refused")
    parts = name.split(".")
    search: list[str] | None = None
    spec: Any = None
    for i in range(len(parts)):
        full = ".".join(parts[: i + 1])
        loaded = sys.modules.get(full)
        spec = getattr(loaded, "__spec__", None) if loaded is not None else None
        if spec is None:
            spec = _find_spec(full, search)
        if spec is None:
            raise InbornError(f"cannot find module {full!r} (is its package installed?)")
        if i < len(parts) - 1:
            search = list(spec.submodule_search_locations or [])
            if not search:
                raise InbornError(f"{full!r} is not a package, so it has no module {name!r}")
    origin = getattr(spec, "origin", None)
    if not spec.has_location or not origin:
        raise InbornError(f"module {name!r} has no Python source file inborn can hash ({origin}); refused")
    return _read(Path(origin).resolve(), name, factory)


def _find_spec(name: str, search: list[str] | None) -> Any:
    for finder in sys.meta_path:  # finders only locate: none runs a module
        find = getattr(finder, "find_spec", None)
        if find is None:
            continue
        try:
            spec = find(name, search)
        except (ImportError, OSError, ValueError):
            continue
        if spec is not None:
            return spec
    return None
