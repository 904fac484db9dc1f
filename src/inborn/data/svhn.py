"""SVHN (cropped digits) from the official train_32x32.mat and test_32x32.mat."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from inborn.data.base import DatasetInfo, TensorSplit, register_dataset, require_dir
from inborn.errors import InbornError, one_line

_FILES = ("train_32x32.mat", "test_32x32.mat")
_EXPECTED = "train_32x32.mat and test_32x32.mat from ufldl.stanford.edu/housenumbers"


def _read_mat(path: Path) -> TensorSplit:
    from scipy.io import loadmat

    try:
        mat = loadmat(path, variable_names=["X", "y"])
    except Exception as exc:  # scipy raises many types for a bad file; all mean "not a usable .mat"
        reason = one_line(exc)
        raise InbornError(f"{path} is not a readable MATLAB file (corrupt or truncated): {reason}") from None
    for key in ("X", "y"):
        if key not in mat:
            raise InbornError(f"{path} has no {key!r} variable (expected the SVHN cropped-digits format)")
    x, y = mat["X"], mat["y"]
    if not isinstance(x, np.ndarray) or x.dtype != np.uint8 or x.ndim != 4 or x.shape[:3] != (32, 32, 3):
        found = f"{getattr(x, 'dtype', type(x).__name__)} {getattr(x, 'shape', '')}".strip()
        raise InbornError(f"{path}: 'X' should be a uint8 array of shape (32, 32, 3, N), found {found}")
    n = x.shape[3]
    if not isinstance(y, np.ndarray) or y.size != n or not np.issubdtype(y.dtype, np.number):
        found = f"{getattr(y, 'dtype', type(y).__name__)} {getattr(y, 'shape', '')}".strip()
        raise InbornError(f"{path}: 'y' should hold {n} labels (one per image in 'X'), found {found}")
    labels = y.reshape(-1).astype(np.int64)
    if n and (labels.min() < 0 or labels.max() > 10 or not np.array_equal(labels, y.reshape(-1))):
        raise InbornError(f"{path}: 'y' should hold digit labels 1..10 (10 means 0)")
    # The official files label the digit 0 as 10.
    labels[labels == 10] = 0
    # MATLAB stores (height, width, channel, index); tensors want (index, channel, height, width).
    images = np.ascontiguousarray(x.transpose(3, 2, 0, 1))
    return TensorSplit(torch.from_numpy(images), torch.from_numpy(labels))


@register_dataset("svhn", needs_root=True, summary="SVHN cropped digits from train_32x32.mat, test_32x32.mat")
def load_svhn(root: Path | None) -> tuple[DatasetInfo, TensorSplit, TensorSplit]:
    """73,257 / 26,032 digits; the optional extra_32x32.mat is not used."""
    root = require_dir(root, "svhn", _EXPECTED)
    folder = root
    if not (root / _FILES[0]).is_file() and (root / "svhn" / _FILES[0]).is_file():
        folder = root / "svhn"
    missing = [name for name in _FILES if not (folder / name).is_file()]
    if missing:
        raise InbornError(f"missing {', '.join(missing)} in {str(folder)!r} (expected {_EXPECTED})")
    train = _read_mat(folder / _FILES[0])
    test = _read_mat(folder / _FILES[1])
    info = DatasetInfo(
        "svhn", 10, 3, 32, mean=(0.4377, 0.4438, 0.4728), std=(0.1980, 0.2010, 0.1970),
        crop_padding=0, flip=False, default_eps=8 / 255,
        description=f"SVHN from {folder}; {len(train):,} train / {len(test):,} test",
    )
    return info, train, test
