"""CIFAR-10 and CIFAR-100 from the official "python version" archives, extracted.

The batches are pickles. A pickle can run any callable it names, so they are read with
an unpickler that only resolves the few numpy names an array needs and refuses the rest.
"""

from __future__ import annotations

import importlib
import pickle
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from inborn.data.base import DatasetInfo, TensorSplit, register_dataset, require_dir
from inborn.errors import InbornError, one_line

_PIXELS = 3 * 32 * 32


def _latin1_encode(obj: object, encoding: str = "utf-8", errors: str = "strict") -> bytes:
    # Protocol-2 pickles written by Python 3 store raw bytes as `_codecs.encode(text, "latin1")`.
    # Only that exact use is served: other codecs could do arbitrary work.
    if not isinstance(obj, str) or encoding.lower().replace("-", "").replace("_", "") != "latin1":
        raise pickle.UnpicklingError("_codecs.encode is only allowed with the latin1 codec")
    return obj.encode("latin1", errors="strict")


def _numpy_attr(name: str) -> Callable[..., Any] | type:
    # numpy 2 moved `numpy.core` to `numpy._core`; pickles may name either, so resolve
    # whichever this numpy has rather than importing the deprecated alias.
    module, _, attr = name.rpartition(".")
    candidates = (module.replace("numpy.core", "numpy._core"), module.replace("numpy._core", "numpy.core"))
    for candidate in candidates:
        try:
            return getattr(importlib.import_module(candidate), attr)
        except (ImportError, AttributeError):
            continue
    raise pickle.UnpicklingError(f"numpy has no {name}")


_ALLOWED_GLOBALS = frozenset({
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.numeric", "_frombuffer"),
    ("numpy._core.numeric", "_frombuffer"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
})


class _ArrayOnlyUnpickler(pickle.Unpickler):
    """Resolves numpy's array-rebuilding names only, so a crafted file cannot run code."""

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) == ("_codecs", "encode"):
            return _latin1_encode
        if (module, name) not in _ALLOWED_GLOBALS:
            raise InbornError(f"refusing to unpickle {module}.{name}: only numpy arrays are allowed")
        return getattr(np, name) if module == "numpy" else _numpy_attr(f"{module}.{name}")

    def persistent_load(self, pid: Any) -> Any:
        raise InbornError("refusing to unpickle a persistent reference: only numpy arrays are allowed")


def safe_unpickle(path: Path) -> Any:
    """Read a pickle that may only hold plain containers and numpy arrays."""
    try:
        with open(path, "rb") as fh:
            return _ArrayOnlyUnpickler(fh, encoding="bytes").load()
    except InbornError as exc:
        raise InbornError(f"{path}: {exc}") from None
    except FileNotFoundError:
        raise InbornError(f"missing file {str(path)!r}") from None
    except Exception as exc:  # any failure here means the file is not a valid batch
        reason = one_line(exc)
        raise InbornError(f"{path} is not a readable CIFAR batch (corrupt or truncated): {reason}") from None


def _get(batch: dict[Any, Any], key: str, path: Path) -> Any:
    # Python-2 pickles give bytes keys under encoding="bytes"; re-pickled copies may have str.
    for k in (key.encode(), key):
        if k in batch:
            return batch[k]
    raise InbornError(f"{path} has no {key!r} entry (is it a CIFAR batch of the right data set?)")


def _read_batch(path: Path, label_key: str, num_classes: int) -> tuple[np.ndarray, np.ndarray]:
    batch = safe_unpickle(path)
    if not isinstance(batch, dict):
        raise InbornError(f"{path} should hold a dict, found {type(batch).__name__}")
    data = _get(batch, "data", path)
    labels_raw = _get(batch, label_key, path)
    ok = isinstance(data, np.ndarray) and data.dtype == np.uint8 and data.ndim == 2
    if not ok or data.shape[1] != _PIXELS:
        found = f"{getattr(data, 'dtype', type(data).__name__)} {getattr(data, 'shape', '')}".strip()
        raise InbornError(f"{path}: 'data' should be a uint8 array of shape (N, {_PIXELS}), found {found}")
    try:
        labels = np.asarray(labels_raw, dtype=np.int64).reshape(-1)
    except (TypeError, ValueError, OverflowError):
        raise InbornError(f"{path}: {label_key!r} should be a list of integers") from None
    if labels.shape[0] != data.shape[0]:
        raise InbornError(f"{path}: {data.shape[0]} images but {labels.shape[0]} {label_key!r}")
    if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
        found = f"{labels.min()}..{labels.max()}"
        raise InbornError(f"{path}: {label_key!r} should lie in 0..{num_classes - 1}, found {found}")
    # Each row is the red plane, then green, then blue, each 32x32 row-major: exactly (3, 32, 32).
    return data.reshape(-1, 3, 32, 32), labels


def _split(paths: list[Path], label_key: str, num_classes: int) -> TensorSplit:
    parts = [_read_batch(p, label_key, num_classes) for p in paths]
    images = np.concatenate([x for x, _ in parts]) if len(parts) > 1 else parts[0][0]
    labels = np.concatenate([y for _, y in parts]) if len(parts) > 1 else parts[0][1]
    return TensorSplit(torch.from_numpy(np.ascontiguousarray(images)), torch.from_numpy(labels))


def _find_dir(root: Path | None, dataset: str, folder: str, marker: str, expected: str) -> Path:
    root = require_dir(root, dataset, expected)
    if (root / folder).is_dir():
        return root / folder
    if (root / marker).is_file():
        return root
    raise InbornError(f"no {folder}/ directory in {str(root)!r} (expected {expected} there)")


def _require_files(folder: Path, names: list[str], expected: str) -> list[Path]:
    paths = [folder / n for n in names]
    missing = [p.name for p in paths if not p.is_file()]
    if missing:
        raise InbornError(f"missing {', '.join(missing)} in {str(folder)!r} (expected {expected})")
    return paths


_CIFAR10_EXPECTED = "cifar-10-batches-py/ with data_batch_1..5 and test_batch"
_CIFAR100_EXPECTED = "cifar-100-python/ with train and test"


@register_dataset(
    "cifar10", needs_root=True, summary="CIFAR-10 from cifar-10-batches-py/ (32x32 RGB, 10 classes)"
)
def load_cifar10(root: Path | None) -> tuple[DatasetInfo, TensorSplit, TensorSplit]:
    """50,000 / 10,000 images from the official python batches; the test split is the official one."""
    folder = _find_dir(root, "cifar10", "cifar-10-batches-py", "data_batch_1", _CIFAR10_EXPECTED)
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    paths = _require_files(folder, names, "data_batch_1..5 and test_batch from cifar-10-python.tar.gz")
    train = _split(paths[:5], "labels", 10)
    test = _split(paths[5:], "labels", 10)
    info = DatasetInfo(
        "cifar10", 10, 3, 32, mean=(0.4914, 0.4822, 0.4465), std=(0.2471, 0.2435, 0.2616),
        crop_padding=4, flip=True, default_eps=8 / 255,
        description=f"CIFAR-10 from {folder}; {len(train):,} train / {len(test):,} test",
    )
    return info, train, test


@register_dataset(
    "cifar100", needs_root=True, summary="CIFAR-100 from cifar-100-python/ (32x32 RGB, 100 classes)"
)
def load_cifar100(root: Path | None) -> tuple[DatasetInfo, TensorSplit, TensorSplit]:
    """CIFAR-100 with its 100 fine labels; the 20 coarse super-classes are not used."""
    folder = _find_dir(root, "cifar100", "cifar-100-python", "train", _CIFAR100_EXPECTED)
    expected = "train and test from cifar-100-python.tar.gz"
    train_path, test_path = _require_files(folder, ["train", "test"], expected)
    train = _split([train_path], "fine_labels", 100)
    test = _split([test_path], "fine_labels", 100)
    info = DatasetInfo(
        "cifar100", 100, 3, 32, mean=(0.5071, 0.4865, 0.4409), std=(0.2673, 0.2564, 0.2762),
        crop_padding=4, flip=True, default_eps=8 / 255,
        description=f"CIFAR-100 (fine labels) from {folder}; {len(train):,} train / {len(test):,} test",
    )
    return info, train, test
