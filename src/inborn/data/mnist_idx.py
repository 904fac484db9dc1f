"""MNIST from the four official IDX files, plain or gzipped (as downloaded)."""

from __future__ import annotations

import gzip
import zlib
from pathlib import Path

import numpy as np
import torch

from inborn.data.base import DatasetInfo, TensorSplit, register_dataset, require_dir
from inborn.errors import InbornError, one_line

_IMAGES_MAGIC = 2051  # 0x00000803: unsigned bytes, 3 dimensions
_LABELS_MAGIC = 2049  # 0x00000801: unsigned bytes, 1 dimension
_FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}
_EXPECTED = (
    "train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte and t10k-labels-idx1-ubyte"
    " (each plain or .gz)"
)


def _candidates(folder: Path, name: str) -> list[Path]:
    # Some mirrors spell the files with a dot before "idx" (train-images.idx3-ubyte).
    dotted = name.replace("-idx", ".idx")
    return [folder / f for f in (name, name + ".gz", dotted, dotted + ".gz")]


def _first_file(paths: list[Path]) -> Path | None:
    return next((p for p in paths if p.is_file()), None)


def _locate(root: Path) -> dict[str, Path]:
    # torchvision keeps the raw files under MNIST/raw; accept that tree as well as a flat folder.
    for folder in (root, root / "MNIST" / "raw"):
        found = {k: _first_file(_candidates(folder, name)) for k, name in _FILES.items()}
        if any(found.values()):
            missing = [_FILES[k] for k, p in found.items() if p is None]
            if missing:
                names = ", ".join(missing)
                raise InbornError(f"missing {names} (or .gz) in {str(folder)!r} (expected {_EXPECTED})")
            return {k: p for k, p in found.items() if p is not None}
    raise InbornError(f"no MNIST files in {str(root)!r} or its MNIST/raw (expected {_EXPECTED})")


def _read_bytes(path: Path) -> bytes:
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rb") as fh:
                return fh.read()
        return path.read_bytes()
    except (OSError, EOFError, zlib.error) as exc:  # gzip.BadGzipFile is an OSError
        raise InbornError(f"{path} cannot be read (corrupt or truncated): {one_line(exc)}") from None


def read_idx(path: Path, magic: int, ndim: int) -> np.ndarray:
    """Parse an IDX file of unsigned bytes, checking the header against the payload size."""
    data = _read_bytes(path)
    header = 4 + 4 * ndim
    if len(data) < header:
        raise InbornError(f"{path} is too short for an IDX header ({len(data)} bytes; truncated?)")
    found = int.from_bytes(data[:4], "big")
    if found != magic:
        kind = "images" if magic == _IMAGES_MAGIC else "labels"
        raise InbornError(f"{path} has IDX magic number {found}, expected {magic} ({kind} file)")
    dims = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    expected = int(np.prod(dims, dtype=np.int64))
    if len(data) - header != expected:
        found_bytes = len(data) - header
        raise InbornError(f"{path} should hold {expected} data bytes for shape {dims}, found {found_bytes}")
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(dims)


def _split(images_path: Path, labels_path: Path) -> TensorSplit:
    images = read_idx(images_path, _IMAGES_MAGIC, 3)
    labels = read_idx(labels_path, _LABELS_MAGIC, 1)
    if images.shape[1:] != (28, 28):
        raise InbornError(f"{images_path} holds {images.shape[1]}x{images.shape[2]} images, expected 28x28")
    if labels.shape[0] != images.shape[0]:
        counts = f"{labels.shape[0]} labels but {images_path} has {images.shape[0]} images"
        raise InbornError(f"{labels_path} has {counts}")
    if labels.size and labels.max() > 9:
        raise InbornError(f"{labels_path} has label {labels.max()}, expected digits 0..9")
    x = torch.from_numpy(images.copy()).unsqueeze(1)
    y = torch.from_numpy(labels.astype(np.int64))
    return TensorSplit(x, y)


@register_dataset("mnist", needs_root=True, summary="MNIST from the four IDX files (28x28, 1 channel)")
def load_mnist(root: Path | None) -> tuple[DatasetInfo, TensorSplit, TensorSplit]:
    """The full 60,000 / 10,000 MNIST, unlike the built-in 5,000-image mnist5k."""
    root = require_dir(root, "mnist", _EXPECTED)
    paths = _locate(root)
    train = _split(paths["train_images"], paths["train_labels"])
    test = _split(paths["test_images"], paths["test_labels"])
    info = DatasetInfo(
        "mnist", 10, 1, 28, mean=(0.1307,), std=(0.3081,), default_eps=0.3,
        description=f"MNIST from {paths['train_images'].parent}; {len(train):,} train / {len(test):,} test",
    )
    return info, train, test
