"""`inborn import`: a user's own PyTorch model and weights as a run directory (`kind: imported`)
that every command reads like a trained run: eval, search --from-run, ensemble, r2s --baseline, card.

Everything is checked before anything is written: the code imports, the factory builds, the
weights are finite and fit it strictly, and the logits fit the data set. Then the code is recorded
as trusted on this machine (inborn.spec.trust): its user imported it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
import torch.nn as nn
from safetensors import SafetensorError

from inborn.data import DataSplits, load_data
from inborn.errors import InbornError, one_line
from inborn.runs.load import save_model
from inborn.spec.imported import KIND, build_imported, file_sha256, is_imported, locate_code, parse_model_ref
from inborn.spec.trust import TRUST_FILE_ENV, approve, consent, trust_file
from inborn.store import ResultsDB, RunDir
from inborn.store.guard import check_output
from inborn.store.run_dir import read_safetensors

WEIGHT_SUFFIXES = (".safetensors", ".pt", ".pth")


def read_weights(path: str | Path) -> dict[str, torch.Tensor]:
    """A state dict from .safetensors, or from .pt/.pth read with `weights_only=True` (never a pickle
    of code): a state dict itself, or a dict holding one under 'state_dict' or 'model'."""
    path = Path(path)
    if not path.is_file():
        raise InbornError(f"weights file {str(path)!r} does not exist")
    if path.suffix == ".safetensors":
        return read_safetensors(path)[0]
    if path.suffix not in (".pt", ".pth"):
        raise InbornError(f"weights must be .safetensors, .pt or .pth, got {path.name!r}")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # an unpicklable object (weights_only refuses code) or a corrupt file
        raise InbornError(f"cannot read {str(path)!r} with weights_only=True: {one_line(e)}") from e
    if isinstance(obj, dict):
        for key in ("state_dict", "model"):
            if isinstance(obj.get(key), dict):
                obj = obj[key]
                break
    if not isinstance(obj, dict) or not obj or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise InbornError(f"{str(path)!r} holds no state dict (a dict of tensors, or one under 'state_dict' "
                          "or 'model')")
    return {str(k): v for k, v in obj.items()}


def check_finite(tensors: dict[str, torch.Tensor], source: str) -> None:
    """NaN or infinite weights make every figure of the run meaningless: refused, naming the first."""
    for name, t in tensors.items():
        if (t.is_floating_point() or t.is_complex()) and not bool(torch.isfinite(t).all()):
            what = "NaN" if bool(torch.isnan(t).any()) else "infinite"
            raise InbornError(f"weights {source!r}: tensor {name!r} holds {what} values; import finite weights")


def load_strict(body: nn.Module, tensors: dict[str, torch.Tensor], source: str) -> None:
    """Strict load, with a one-line error naming a few of the keys that do not fit."""
    own = body.state_dict()
    missing = [k for k in own if k not in tensors]
    unexpected = [k for k in tensors if k not in own]
    shaped = [f"{k} {tuple(tensors[k].shape)} vs {tuple(own[k].shape)}" for k in own
              if k in tensors and tuple(own[k].shape) != tuple(tensors[k].shape)]
    if missing or unexpected or shaped:
        parts = [f"{label} ({len(keys)}): {', '.join(keys[:3])}{', ...' if len(keys) > 3 else ''}"
                 for label, keys in (("missing", missing), ("unexpected", unexpected), ("other shape", shaped))
                 if keys]
        raise InbornError(f"weights {source!r} do not fit the model: {'; '.join(parts)}")
    body.load_state_dict(tensors)


def _channel_values(values: list[float] | None, channels: int, name: str, default: float) -> list[float]:
    if values is None:
        return [default] * channels
    if len(values) == 1:
        values = values * channels
    if len(values) != channels:
        raise InbornError(f"--{name} needs {channels} values (one per channel) or one, got {len(values)}")
    if name == "std" and any(v <= 0 for v in values):
        raise InbornError(f"--std values must be > 0, got {values}")
    return [float(v) for v in values]


def check_logits(model: nn.Module, splits: DataSplits) -> None:
    """A batch of the data set's shape in, [batch, num_classes] logits out."""
    info = splits.info
    x = torch.rand(2, info.in_channels, info.image_size, info.image_size)
    model.eval()
    try:
        with torch.no_grad():
            out = model(x)
    except SystemExit as e:  # the user's forward may exit: an error, not inborn's exit (Ctrl-C still ends it)
        raise InbornError(f"the model called sys.exit({e.code!r}) on a batch of {info.name} images") from e
    except Exception as e:
        raise InbornError(f"the model fails on a batch of {info.name} images {tuple(x.shape)}: {one_line(e)}") from e
    shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
    if shape != (2, info.num_classes):
        raise InbornError(f"the model's output on a batch of {info.name} images {tuple(x.shape)} is {shape}, "
                          f"not (2, {info.num_classes}) logits")


def import_model(model: str, weights: str | Path, data: str, out: str | Path, *,
                 kwargs: dict[str, Any] | None = None, data_dir: str | None = None,
                 mean: list[float] | None = None, std: list[float] | None = None, eps: float | None = None,
                 val_fraction: float = 0.1, seed: int = 0, db: ResultsDB | None = None) -> dict[str, Any]:
    """Make the run directory `out` from the model `FILE.py:FACTORY` (or `package.module:FACTORY`)
    built with `kwargs` and loaded with `weights`; returns its summary. Nothing is written on error."""
    run = RunDir(out)
    check_output(run.path, KIND)  # new, empty, or inborn's: never a user's files
    if run.file(RunDir.CONFIG).exists() or run.file(RunDir.MODEL).exists():
        raise InbornError(f"{str(run.path)!r} already holds a run; choose another --out")
    db = db or ResultsDB()
    db.check()  # a bad database fails before the run directory exists
    if eps is not None and not eps >= 0:
        raise InbornError(f"ε must be >= 0, got {eps}")
    source, factory = parse_model_ref(model)
    splits = load_data(data, data_dir, val_fraction=val_fraction, seed=seed)
    info = splits.info
    spec = {
        "kind": KIND, "arch": f"imported:{factory}", "source": source, "factory": factory,
        "kwargs": dict(kwargs or {}), "num_classes": info.num_classes, "in_channels": info.in_channels,
        "image_size": info.image_size, "mean": _channel_values(mean, info.in_channels, "mean", 0.0),
        "std": _channel_values(std, info.in_channels, "std", 1.0),
    }
    tensors = read_weights(weights)
    check_finite(tensors, str(weights))
    with consent(record=False):  # the user runs their own code; it is recorded below, once it passed
        wrapped = build_imported(spec)
    load_strict(wrapped.body, tensors, str(weights))
    check_logits(wrapped, splits)
    if eps is None:
        eps = info.default_eps  # recorded, as a trained run's: eval, card and compare read it
    config = {"data": data, "data_dir": str(Path(data_dir).resolve()) if data_dir else None, "eps": eps,
              "val_fraction": val_fraction, "seed": seed, "arch": spec["arch"],
              "weights": str(Path(weights).resolve()), "weights_sha256": file_sha256(weights)}
    params = sum(p.numel() for p in wrapped.parameters())
    summary = {"kind": KIND, "arch": spec["arch"], "data": data, "eps": eps, "source": source,
               "clean_acc_test": clean_accuracy(wrapped, splits.test), "n_test": len(splits.test),
               "factory": factory, "kwargs": spec["kwargs"], "parameters": params, "weights": config["weights"]}
    try:  # this machine's user imported it: later loads of this code need no consent
        approve(locate_code(source, factory), how="import")
    except OSError as e:
        raise InbornError(f"cannot record the model's code as trusted in {str(trust_file())!r} ({one_line(e)}); "
                          f"set {TRUST_FILE_ENV} to a writable file") from e
    _write_run(run, wrapped, spec, config, summary, db.path)
    db.upsert_run(run.path, kind=KIND, status="complete", config=config, summary=summary)
    return summary


def clean_accuracy(model: nn.Module, split: Any, batch_size: int = 256) -> float:
    """The model's accuracy on `split`: printed at import, so a wrong --mean/--std shows at once."""
    model.eval()
    correct = 0
    with torch.no_grad():
        for x, y in split.batches(batch_size):
            correct += int(model(x).argmax(1).eq(y).sum())
    return correct / max(1, len(split))


def _write_run(run: RunDir, wrapped: nn.Module, spec: dict[str, Any], config: dict[str, Any],
               summary: dict[str, Any], results_db: Path) -> None:
    """The model first and the config last, so that a config never names a missing model; a write
    that fails (a full disk) removes what this import wrote, so that it can simply be retried."""
    written: list[Path] = []
    try:
        with run.lock():
            try:
                for name, write in ((RunDir.MODEL, lambda: save_model(run, wrapped, spec,
                                                                      extra={"imported_from": config["weights"]})),
                                    (RunDir.SUMMARY, lambda: run.write_summary(summary)),
                                    (RunDir.CONFIG, lambda: run.write_config(config, spec, kind=KIND,
                                                                             results_db=results_db))):
                    existed = run.file(name).exists()
                    write()
                    if not existed:
                        written.append(run.file(name))
            except BaseException:
                for path in written:
                    path.unlink(missing_ok=True)
                raise
    except SafetensorError as e:  # safetensors' own error (a full disk among them), not an OSError
        raise InbornError(f"cannot write {str(run.file(RunDir.MODEL))!r}: {one_line(e)}") from e


def imported_source(path: str | Path) -> dict[str, Any] | None:
    """The model spec of an imported run (None for any other run)."""
    doc = RunDir(path).read_config()
    return doc["model"] if doc.get("kind") == KIND and is_imported(doc["model"]) else None
