"""What every data set provides: uint8 image tensors, labels, and facts about them.

Images are kept as uint8 (N, C, H, W) and turned into float pixels in [0, 1] on the
device, batch by batch. Normalisation is not applied here: it lives inside the model.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import torch

from inborn.errors import InbornError


def batch_indices(n: int, batch_size: int, *, shuffle: bool = False, generator: torch.Generator | None = None,
                  drop_last: bool = False) -> list[torch.Tensor]:
    """The sample indices of each batch of an epoch over `n` samples (one shared order, so every
    kind of split draws the same batches from the same generator)."""
    order = torch.randperm(n, generator=generator) if shuffle else torch.arange(n)
    stop = n - n % batch_size if drop_last and n >= batch_size else n
    return [order[start : start + batch_size] for start in range(0, stop, batch_size)]


@dataclass(frozen=True)
class DatasetInfo:
    name: str
    num_classes: int
    in_channels: int
    image_size: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    # Training augmentation that suits the data: pad-and-crop padding (0 = none) and flips.
    crop_padding: int = 0
    flip: bool = False
    # The ε that the literature uses for L-inf on this data, in pixel units.
    default_eps: float = 8 / 255
    description: str = ""


@dataclass
class TensorSplit:
    """One split held in memory as uint8 images and int64 labels."""

    images: torch.Tensor
    labels: torch.Tensor

    def __post_init__(self) -> None:
        if self.images.dtype != torch.uint8 or self.images.dim() != 4:
            raise ValueError("images must be a uint8 tensor of shape (N, C, H, W)")
        if self.labels.shape != (self.images.shape[0],):
            raise ValueError("labels must have one entry per image")
        self.labels = self.labels.long()

    def __len__(self) -> int:
        return self.images.shape[0]

    def subset(self, index: torch.Tensor) -> TensorSplit:
        return TensorSplit(self.images[index], self.labels[index])

    def head(self, n: int | None) -> TensorSplit:
        return self if n is None or n >= len(self) else self.subset(torch.arange(n))

    def batches(
        self,
        batch_size: int,
        *,
        shuffle: bool = False,
        generator: torch.Generator | None = None,
        device: torch.device | str = "cpu",
        drop_last: bool = False,
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Yield (x in [0,1] float32 on `device`, y) batches."""
        for idx in batch_indices(len(self), batch_size, shuffle=shuffle, generator=generator, drop_last=drop_last):
            x = self.images[idx].to(device, non_blocking=True).float().div_(255.0)
            y = self.labels[idx].to(device, non_blocking=True)
            yield x, y

    def tensors(self, device: torch.device | str = "cpu") -> tuple[torch.Tensor, torch.Tensor]:
        return self.images.to(device).float().div_(255.0), self.labels.to(device)


@dataclass
class DataSplits:
    info: DatasetInfo
    train: TensorSplit
    val: TensorSplit
    test: TensorSplit
    notes: dict[str, str] = field(default_factory=dict)


def split_train_val(split: TensorSplit, val_fraction: float, seed: int) -> tuple[TensorSplit, TensorSplit]:
    """A seeded hold-out from the training split, for model selection (never the test split)."""
    if not 0.0 <= val_fraction < 1.0:
        raise InbornError(f"validation fraction must be in [0, 1), got {val_fraction}")
    n = len(split)
    n_val = int(round(n * val_fraction))
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    return split.subset(order[n_val:]), split.subset(order[:n_val])


# A loader reads the official files under `root` and returns (info, train, test).
Loader = Callable[[Path | None], tuple[DatasetInfo, TensorSplit, TensorSplit]]


@dataclass(frozen=True)
class DatasetEntry:
    name: str
    loader: Loader
    needs_root: bool
    summary: str


_REGISTRY: dict[str, DatasetEntry] = {}


def register_dataset(name: str, *, needs_root: bool, summary: str) -> Callable[[Loader], Loader]:
    def wrap(fn: Loader) -> Loader:
        _REGISTRY[name] = DatasetEntry(name, fn, needs_root, summary)
        return fn

    return wrap


def dataset_names() -> list[str]:
    return sorted(_REGISTRY)


def dataset_entry(name: str) -> DatasetEntry:
    if name not in _REGISTRY:
        raise InbornError(f"unknown data set {name!r}; known: {', '.join(dataset_names())}")
    return _REGISTRY[name]


def require_dir(root: Path | None, dataset: str, expected: str) -> Path:
    """Check that the data directory exists; the message says what belongs where."""
    if root is None:
        raise InbornError(f"data set {dataset!r} reads local files: pass --data-dir PATH holding {expected}")
    root = Path(root).expanduser()
    if not root.is_dir():
        raise InbornError(f"data directory {str(root)!r} does not exist (expected {expected} there)")
    return root
