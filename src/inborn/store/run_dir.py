"""A run directory: everything needed to reproduce and reload one run.

    config.yaml          the resolved configuration, the model spec and the environment
    metrics.jsonl        one line per epoch (a mirror of the checkpoint's history)
    checkpoint.safetensors  the last complete epoch: weights, optimiser state, history
    model.safetensors    the selected model (best on validation), what `inborn.load` reads
    summary.json         the final figures
    eval.json            the latest `inborn eval` result
    .lock                held (flock) by the one process writing the run; holds its pid
Every file is written atomically; tensors go through safetensors, never pickle.
"""

from __future__ import annotations

import errno
import json
import os
import platform
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch
import yaml
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file

from inborn import __version__
from inborn.errors import InbornError, one_line
from inborn.io import atomic_write, atomic_write_json, atomic_write_text, read_json, read_text, strict_json
from inborn.store.guard import run_kind
from inborn.values import is_share, is_whole


def environment() -> dict[str, str]:
    return {
        "inborn": __version__,
        "torch": str(torch.__version__),
        "python": platform.python_version(),
        "cuda": str(torch.version.cuda),
    }


class RunDir:
    CONFIG = "config.yaml"
    METRICS = "metrics.jsonl"
    CHECKPOINT = "checkpoint.safetensors"
    MODEL = "model.safetensors"
    SUMMARY = "summary.json"
    LOCK = ".lock"

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def file(self, name: str) -> Path:
        return self.path / name

    # -- lock ----------------------------------------------------------------
    @contextmanager
    def lock(self) -> Iterator[None]:
        """Hold the run for this process: a second writer gets a one-line InbornError at once.

        flock, not a pid file: the kernel drops it when the holder dies, even by SIGKILL, so a
        killed run can be resumed without cleaning anything up. The file itself stays (removing
        it would let two processes each lock a different file of the same name).
        """
        try:
            import fcntl
        except ImportError:  # not POSIX: no lock, as before
            yield
            return
        created = not self.path.exists()
        fd = self._open_lock()
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as e:  # BlockingIOError when held; anything else is as fatal
            pid = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise InbornError(f"run directory {str(self.path)!r} is in use by another process (pid {pid})") from e
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
            yield
        except BaseException:
            # A run that failed before writing anything (a bad keep ratio, say) leaves no trace.
            if created and [p.name for p in self.path.iterdir()] == [self.LOCK]:
                self.file(self.LOCK).unlink()
                self.path.rmdir()
            raise
        finally:
            os.close(fd)  # releases the lock

    def _open_lock(self) -> int:
        """The lock file, never through a symbolic link (whose target would be overwritten) and
        only a regular file; a run directory that cannot be written is one line saying so."""
        path = self.file(self.LOCK)
        try:
            self.path.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o666)
        except OSError as e:
            if e.errno == errno.ELOOP or path.is_symlink():
                raise InbornError(f"{str(path)!r} is a symbolic link; inborn's lock must be a plain file "
                                  "(remove it)") from e
            if e.errno == errno.EISDIR:
                raise InbornError(f"{str(path)!r} is a directory; inborn's lock must be a plain file "
                                  "(remove it)") from e
            if e.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
                raise InbornError(f"run directory {str(self.path)!r} cannot be written ({os.strerror(e.errno)}); "
                                  "inborn writes its lock and results there: copy the run to a writable "
                                  "place and use that copy") from e
            raise InbornError(f"cannot open the lock {str(path)!r}: {one_line(e)}") from e
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            os.close(fd)
            raise InbornError(f"{str(path)!r} is not a regular file; inborn's lock must be a plain file (remove it)")
        return fd

    # -- config --------------------------------------------------------------
    def write_config(self, config: dict[str, Any], model_spec: dict[str, Any], kind: str,
                     results_db: str | Path | None = None) -> None:
        """Write config.yaml, never over one inborn did not write or one of another kind of run
        (the output guard's last line, for every command that writes a run directory).
        `results_db`: the database the run's results go to, recorded (absolute) so that later
        commands find it from any working directory."""
        existing = run_kind(self.path)
        if existing == "foreign":
            raise InbornError(f"{str(self.path)!r} holds a config.yaml inborn did not write; choose a new directory")
        if existing is not None and existing != kind:
            raise InbornError(f"{str(self.path)!r} already holds a {existing} run; choose another directory")
        doc = {"kind": kind, "config": config, "model": model_spec, "env": environment()}
        if results_db is not None:
            doc["results_db"] = str(Path(results_db).resolve())
        atomic_write_text(self.file(self.CONFIG), yaml.safe_dump(doc, sort_keys=False))

    def read_config(self) -> dict[str, Any]:
        path = self.file(self.CONFIG)
        if not self.path.is_dir():
            raise InbornError(f"run directory {str(self.path)!r} does not exist")
        if not path.exists():
            raise InbornError(f"{str(self.path)!r} is not a run directory (no {self.CONFIG})")
        try:
            doc = yaml.safe_load(path.read_text())
        except yaml.YAMLError as e:
            raise InbornError(f"{str(path)!r} is not valid YAML: {str(e).splitlines()[0]}") from e
        if not isinstance(doc, dict) or "model" not in doc or "config" not in doc:
            raise InbornError(f"{str(path)!r} is not an inborn run config (needs 'config' and 'model')")
        check_config_doc(doc, path)
        return doc

    # -- metrics ---------------------------------------------------------------
    def write_metrics(self, history: list[dict[str, Any]]) -> None:
        text = "".join(strict_json(h, sort_keys=True) + "\n" for h in history)
        atomic_write_text(self.file(self.METRICS), text)

    def read_metrics(self) -> list[dict[str, Any]]:
        """The per-epoch records, checked: one JSON object per line, epochs 0, 1, 2, ... in order.
        A truncated, hand-edited or foreign file is a one-line error naming the line."""
        path = self.file(self.METRICS)
        if not path.exists():
            return []
        history = []
        for number, line in enumerate(read_text(path).splitlines(), 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except ValueError as e:
                raise InbornError(f"{str(path)!r} line {number} is not JSON (truncated or edited?): {e}") from e
            if not isinstance(record, dict) or not is_whole(record.get("epoch")):
                raise InbornError(f"{str(path)!r} line {number} is not an epoch record (an object with an integer "
                                  "'epoch')")
            if record["epoch"] != len(history):
                raise InbornError(f"{str(path)!r} line {number} holds epoch {record['epoch']} where epoch "
                                  f"{len(history)} belongs: an epoch is missing or repeated")
            history.append(record)
        return history

    def write_summary(self, summary: dict[str, Any]) -> None:
        atomic_write_json(self.file(self.SUMMARY), summary)

    def read_summary(self) -> dict[str, Any]:
        """The finished run's summary ({} when it has none yet), checked: a truncated or edited
        summary is a one-line error, never taken for an unfinished run (a resume would rewrite it)."""
        path = self.file(self.SUMMARY)
        if not path.exists():
            return {}
        doc = read_json(path, "summary")
        check_summary_doc(doc, path)
        return doc

    # -- tensors ---------------------------------------------------------------
    def write_model(self, state: dict[str, torch.Tensor], model_spec: dict[str, Any],
                    extra: dict[str, Any] | None = None, meta: dict[str, str] | None = None) -> None:
        """The selected model's tensors, with its spec (and `meta`, e.g. a ticket's) in the header."""
        header = {"inborn_model": strict_json(model_spec, sort_keys=True), "inborn_extra": strict_json(extra or {}),
                  **(meta or {})}
        tensors = {k: v.detach().cpu().contiguous() for k, v in state.items()}
        atomic_write(self.file(self.MODEL), lambda p: save_file(tensors, str(p), metadata=header))

    def save_checkpoint(self, tensors: dict[str, torch.Tensor], state: dict[str, Any]) -> None:
        tensors = {k: v.detach().cpu().contiguous() for k, v in tensors.items()}
        meta = {"inborn_state": strict_json(state, sort_keys=True)}
        atomic_write(self.file(self.CHECKPOINT), lambda p: save_file(tensors, str(p), metadata=meta))

    def load_checkpoint(self) -> tuple[dict[str, torch.Tensor], dict[str, Any]] | None:
        path = self.file(self.CHECKPOINT)
        if not path.exists():
            return None
        tensors, meta = read_safetensors(path)
        return tensors, _training_state(meta, path)

    def checkpoint_shapes(self) -> tuple[dict[str, tuple[int, ...]], dict[str, Any]] | None:
        """The checkpoint's tensor shapes and training state, read from its header only (no
        tensor is loaded): what a resume checks before it takes the lock."""
        path = self.file(self.CHECKPOINT)
        if not path.exists():
            return None
        try:
            with safe_open(str(path), framework="pt") as f:
                meta = f.metadata() or {}
                shapes = {k: tuple(f.get_slice(k).get_shape()) for k in f.keys()}  # noqa: SIM118
        except (SafetensorError, OSError, ValueError) as e:
            raise InbornError(f"{str(path)!r} is not a readable safetensors file ({str(e).splitlines()[0]})") from e
        return shapes, _training_state(meta, path)


def _training_state(meta: dict[str, str], path: Path) -> dict[str, Any]:
    """The training state in a checkpoint's metadata, checked: a one-line error if foreign."""
    try:
        state = json.loads(meta["inborn_state"])
    except (KeyError, ValueError, TypeError) as e:
        raise InbornError(f"{str(path)!r} is not an inborn checkpoint (its training state metadata is missing "
                          "or not JSON)") from e
    if (not isinstance(state, dict) or not isinstance(state.get("epoch"), int)
            or not isinstance(state.get("history"), list) or not isinstance(state.get("best"), dict)):
        raise InbornError(f"{str(path)!r} is not an inborn checkpoint (its training state lacks epoch, "
                          "history or best)")
    return state


def check_summary_doc(doc: Any, path: str | Path) -> None:
    """The shape of a run's summary.json: an object; its `best_epoch` an integer; its `test` an
    object with `n` and accuracies in [0, 1]. One line naming the file and the field."""
    where = repr(str(path))
    if not isinstance(doc, dict):
        raise InbornError(f"{where} is not a run summary (an object)")
    if "best_epoch" in doc and not is_whole(doc["best_epoch"]):
        raise InbornError(f"{where}: best_epoch must be an integer, got {doc['best_epoch']!r}")
    if "test" in doc:
        test = doc["test"]
        if not isinstance(test, dict):
            raise InbornError(f"{where}: test must be an object, got {test!r}")
        for key in ("clean_acc", "robust_acc"):
            if key not in test or not is_share(test[key]):
                raise InbornError(f"{where}: test.{key} must be an accuracy in [0, 1], got {test.get(key)!r}")
        if "n" in test and not (is_whole(test["n"]) and test["n"] > 0):
            raise InbornError(f"{where}: test.n must be a positive integer, got {test['n']!r}")
        per_attack = test.get("per_attack")
        if per_attack is not None and not (isinstance(per_attack, dict)
                                           and all(is_share(v) for v in per_attack.values())):
            raise InbornError(f"{where}: test.per_attack must map attacks to accuracies in [0, 1]")


def check_config_doc(doc: dict[str, Any], path: str | Path) -> None:
    """The shape every inborn config.yaml has: a kind, a config mapping naming its data set, a
    model mapping naming its architecture; anything else is a one-line error on read."""
    where = str(path)
    if not isinstance(doc.get("config"), dict) or not isinstance(doc.get("model"), dict):
        raise InbornError(f"{where!r} is not an inborn run config ('config' and 'model' must be mappings)")
    if "kind" in doc and not isinstance(doc["kind"], str):
        raise InbornError(f"{where!r}: 'kind' must be a name, got {doc['kind']!r}")
    if not isinstance(doc["config"].get("data"), str):
        raise InbornError(f"{where!r}: config.data must name a data set, got {doc['config'].get('data')!r}")
    if not isinstance(doc["model"].get("arch"), str):
        raise InbornError(f"{where!r}: model.arch must name a model, got {doc['model'].get('arch')!r}")
    # The settings every command reads from a run without building its TrainConfig (eval, transfer, card).
    config = doc["config"]
    checks = {"eps": (lambda v: v is None or is_share(v), "an ε in [0, 1] (pixel units) or null"),
              "seed": (is_whole, "an integer"),
              "val_fraction": (lambda v: is_share(v) and v < 1, "a share in [0, 1)"),
              "data_dir": (lambda v: v is None or isinstance(v, str), "a directory or null")}
    for key, (ok, what) in checks.items():
        if key in config and not ok(config[key]):
            raise InbornError(f"{where!r}: config.{key} must be {what}, got {config[key]!r}")


def read_safetensors(path: str | Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """Read tensors and metadata; a corrupt or foreign file is a one-line InbornError."""
    path = Path(path)
    if not path.exists():
        raise InbornError(f"no checkpoint at {str(path)!r}")
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
        return load_file(str(path)), meta
    except (SafetensorError, OSError, ValueError) as e:
        raise InbornError(f"{str(path)!r} is not a readable safetensors file ({str(e).splitlines()[0]})") from e
