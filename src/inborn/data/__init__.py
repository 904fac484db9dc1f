"""Data sets: built-in offline ones and loaders for local files in their official formats."""

from __future__ import annotations

from pathlib import Path

# Importing the loader modules registers them.
from inborn.data import builtin, cifar, imagefolder, mnist_idx, svhn  # noqa: F401
from inborn.data.augment import cutout, random_crop_flip
from inborn.data.base import (
    DatasetInfo,
    DataSplits,
    TensorSplit,
    dataset_entry,
    dataset_names,
    split_train_val,
)
from inborn.errors import InbornError
from inborn.values import check_seed, parse_real

__all__ = [
    "DataSplits", "DatasetInfo", "TensorSplit", "dataset_names", "list_datasets", "load_data",
    "cutout", "random_crop_flip", "split_train_val",
]


def load_data(
    name: str, root: str | Path | None = None, *, val_fraction: float = 0.1, seed: int = 0
) -> DataSplits:
    """Load a data set as train / validation / test splits.

    The validation split is a seeded hold-out from train, used for model selection;
    the test split is the data set's own and is never used to choose anything.
    """
    if not isinstance(name, str):
        raise InbornError(f"dataset must be a data set's name, got {name!r}")
    if root is not None and not isinstance(root, (str, Path)):
        raise InbornError(f"root must be a path, got {root!r}")
    val_fraction = parse_real(val_fraction, "validation fraction", low=0.0, high=1.0, high_open=True)
    seed = check_seed(seed)
    entry = dataset_entry(name)  # checked before the loader reads anything
    info, train, test = entry.loader(Path(root) if root is not None else None)
    train, val = split_train_val(train, val_fraction, seed)
    return DataSplits(info=info, train=train, val=val, test=test)


def list_datasets() -> list[tuple[str, str, bool]]:
    """(name, summary, needs a local directory) for every registered data set."""
    return [(n, dataset_entry(n).summary, dataset_entry(n).needs_root) for n in dataset_names()]
