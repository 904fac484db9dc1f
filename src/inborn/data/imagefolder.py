"""ImageNet and Tiny-ImageNet from class-per-folder image trees, decoded lazily.

Full ImageNet as uint8 tensors would need well over 100 GB, so a split here keeps only
file paths and labels and decodes each batch on demand, in a thread pool (PIL releases
the GIL while decoding and resizing), while the previous batch is being used.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch

from inborn.data.base import DatasetInfo, TensorSplit, batch_indices, register_dataset, require_dir
from inborn.errors import InbornError, one_line

# Side of the square images handed to the model. 64 suits Tiny-ImageNet as shipped; for
# ImageNet set this (or pass image_size=) to e.g. 224. Read at load time, not import time.
DEFAULT_IMAGE_SIZE = 64

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".ppm", ".pgm", ".tif", ".tiff", ".webp"})

_EXPECTED = (
    "train/<class>/<images> and val/<class>/<images>"
    " (or Tiny-ImageNet's val/images/ with val/val_annotations.txt)"
)


def decode_image(path: str | Path, size: int) -> np.ndarray:
    """Decode to RGB, scale the shorter side to `size` and centre-crop: (size, size, 3) uint8.

    Keeping the whole centre at one scale (rather than stretching) leaves object shapes intact.
    """
    from PIL import Image

    try:
        with Image.open(path) as img:
            # For JPEG, let the decoder skip detail that the resize would discard anyway;
            # the shorter side stays at least `size`.
            img.draft("RGB", (size, size))
            rgb = img.convert("RGB")
        w, h = rgb.size
        if min(w, h) != size:
            scale = size / min(w, h)
            new = (max(size, round(w * scale)), max(size, round(h * scale)))
            rgb = rgb.resize(new, Image.Resampling.BILINEAR)
            w, h = new
        left, top = (w - size) // 2, (h - size) // 2
        if (w, h) != (size, size):
            rgb = rgb.crop((left, top, left + size, top + size))
        return np.asarray(rgb, dtype=np.uint8)
    except Exception as exc:  # PIL raises many types for unreadable files; report the file
        raise InbornError(f"cannot decode image {str(path)!r}: {one_line(exc)}") from None


class FolderSplit:
    """A split kept as file paths and labels; same interface as TensorSplit, decoded on demand."""

    def __init__(
        self,
        paths: Sequence[str] | np.ndarray,
        labels: torch.Tensor | Sequence[int],
        image_size: int,
        *,
        workers: int | None = None,
        classes: Sequence[str] = (),
    ) -> None:
        self.paths = np.asarray(list(paths) if not isinstance(paths, np.ndarray) else paths, dtype=object)
        self.paths = self.paths.reshape(-1)
        self.labels = torch.as_tensor(labels, dtype=torch.long).reshape(-1)
        if self.labels.shape[0] != self.paths.shape[0]:
            raise ValueError("labels must have one entry per image path")
        if image_size < 1:
            raise ValueError("image_size must be positive")
        self.image_size = int(image_size)
        self.workers = workers
        self.classes = tuple(classes)

    def __len__(self) -> int:
        return int(self.paths.shape[0])

    def __repr__(self) -> str:
        return f"FolderSplit({len(self)} images, {self.image_size}x{self.image_size})"

    def subset(self, index: torch.Tensor | Sequence[int] | np.ndarray) -> FolderSplit:
        """Select by index or mask without decoding, so hold-outs of ImageNet stay cheap."""
        idx = torch.as_tensor(index)
        if idx.dtype == torch.bool:
            idx = idx.nonzero().reshape(-1)
        idx = idx.long().reshape(-1).cpu()
        paths, labels = self.paths[idx.numpy()], self.labels[idx]
        return FolderSplit(paths, labels, self.image_size, workers=self.workers, classes=self.classes)

    def head(self, n: int | None) -> FolderSplit:
        return self if n is None or n >= len(self) else self.subset(torch.arange(n))

    def _submit(self, pool: ThreadPoolExecutor, idx: torch.Tensor) -> list[Future[np.ndarray]]:
        return [pool.submit(decode_image, self.paths[i], self.image_size) for i in idx.tolist()]

    def _collect(self, futures: list[Future[np.ndarray]]) -> torch.Tensor:
        out = np.empty((len(futures), self.image_size, self.image_size, 3), dtype=np.uint8)
        for k, fut in enumerate(futures):
            out[k] = fut.result()
        return torch.from_numpy(out).permute(0, 3, 1, 2).contiguous()

    def batches(
        self,
        batch_size: int,
        *,
        shuffle: bool = False,
        generator: torch.Generator | None = None,
        device: torch.device | str = "cpu",
        drop_last: bool = False,
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Yield (x in [0,1] float32 on `device`, y), decoding the next batch while this one is used."""
        chunks = batch_indices(len(self), batch_size, shuffle=shuffle, generator=generator, drop_last=drop_last)
        if not chunks:
            return
        pin = torch.device(device).type == "cuda"
        pool = ThreadPoolExecutor(self.workers, thread_name_prefix="inborn-decode")
        try:
            pending = self._submit(pool, chunks[0])
            for i, idx in enumerate(chunks):
                current = pending
                if i + 1 < len(chunks):
                    pending = self._submit(pool, chunks[i + 1])
                images = self._collect(current)
                if pin:
                    images = images.pin_memory()
                x = images.to(device, non_blocking=True).float().div_(255.0)
                yield x, self.labels[idx].to(device, non_blocking=True)
        finally:
            # Also runs when the consumer stops early: drop queued decodes, do not leak threads.
            pool.shutdown(wait=True, cancel_futures=True)

    def materialize(self) -> TensorSplit:
        """Decode everything into memory: worth it for Tiny-ImageNet, never for full ImageNet."""
        with ThreadPoolExecutor(self.workers, thread_name_prefix="inborn-decode") as pool:
            images = self._collect(self._submit(pool, torch.arange(len(self))))
        return TensorSplit(images, self.labels.clone())

    def tensors(self, device: torch.device | str = "cpu") -> tuple[torch.Tensor, torch.Tensor]:
        """All images at once, as TensorSplit gives them; take head(n) first on large splits."""
        return self.materialize().tensors(device)


def _list_images(folder: Path) -> list[str]:
    # Recursive, so Tiny-ImageNet's train/<wnid>/images/ works as well as ImageNet's train/<wnid>/.
    found: list[str] = []
    for dirpath, dirnames, filenames in os.walk(folder, followlinks=True):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        found.extend(
            os.path.join(dirpath, f)
            for f in sorted(filenames)
            if not f.startswith(".") and os.path.splitext(f)[1].lower() in IMAGE_EXTENSIONS
        )
    return found


def _class_dirs(folder: Path) -> list[str]:
    try:
        return sorted(d.name for d in folder.iterdir() if d.is_dir() and not d.name.startswith("."))
    except OSError as exc:
        raise InbornError(f"cannot list {str(folder)!r}: {one_line(exc)}") from None


def _scan_train(train_dir: Path) -> tuple[list[str], list[str], list[int]]:
    classes = _class_dirs(train_dir)
    if not classes:
        raise InbornError(f"no class folders in {str(train_dir)!r} (expected {_EXPECTED})")
    paths: list[str] = []
    labels: list[int] = []
    for label, name in enumerate(classes):
        files = _list_images(train_dir / name)
        if not files:
            kinds = ", ".join(sorted(IMAGE_EXTENSIONS))
            raise InbornError(f"class folder {str(train_dir / name)!r} holds no images ({kinds})")
        paths.extend(files)
        labels.extend([label] * len(files))
    return classes, paths, labels


def _scan_tiny_val(val_dir: Path, class_index: dict[str, int]) -> tuple[list[str], list[int]]:
    # Tiny-ImageNet ships val as one images/ folder; val_annotations.txt lines are
    # "<file>\t<wnid>\t<x>\t<y>\t<w>\t<h>".
    notes = val_dir / "val_annotations.txt"
    try:
        lines = notes.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise InbornError(f"cannot read {str(notes)!r}: {one_line(exc)}") from None
    paths: list[str] = []
    labels: list[int] = []
    missing: list[str] = []
    for number, line in enumerate(lines, start=1):
        fields = line.split()
        if not fields:
            continue
        if len(fields) < 2:
            raise InbornError(f"{notes}:{number}: expected '<file> <wnid> ...', found {line.strip()!r}")
        name, wnid = fields[0], fields[1]
        if wnid not in class_index:
            raise InbornError(f"{notes}:{number}: class {wnid!r} has no folder in train/")
        path = val_dir / "images" / name
        if not path.is_file():
            missing.append(name)
            continue
        paths.append(str(path))
        labels.append(class_index[wnid])
    if missing:
        more = f" and {len(missing) - 1} more" if len(missing) > 1 else ""
        raise InbornError(f"{notes} lists {missing[0]!r}{more}, missing from {str(val_dir / 'images')!r}")
    return paths, labels


def _scan_folder_val(val_dir: Path, class_index: dict[str, int]) -> tuple[list[str], list[int]]:
    paths: list[str] = []
    labels: list[int] = []
    classes = _class_dirs(val_dir)
    unknown = [c for c in classes if c not in class_index]
    if unknown:
        raise InbornError(f"val class folder {unknown[0]!r} in {str(val_dir)!r} has no folder in train/")
    for name in classes:
        files = _list_images(val_dir / name)
        paths.extend(files)
        labels.extend([class_index[name]] * len(files))
    return paths, labels


@register_dataset(
    "imagefolder", needs_root=True,
    summary="ImageNet / Tiny-ImageNet folders train/<class>/, val/<class>/ (RGB, decoded lazily)",
)
def load_imagefolder(
    root: Path | None, image_size: int | None = None
) -> tuple[DatasetInfo, FolderSplit, FolderSplit]:
    """Train from train/, test from val/ (ImageNet's test labels are not public)."""
    size = DEFAULT_IMAGE_SIZE if image_size is None else image_size
    if not isinstance(size, int) or size < 1:
        raise InbornError(f"image size must be a positive integer, got {size!r}")
    root = require_dir(root, "imagefolder", _EXPECTED)
    train_dir, val_dir = root / "train", root / "val"
    for folder in (train_dir, val_dir):
        if not folder.is_dir():
            raise InbornError(f"no {folder.name}/ folder in {str(root)!r} (expected {_EXPECTED})")
    classes, train_paths, train_labels = _scan_train(train_dir)
    class_index = {name: i for i, name in enumerate(classes)}
    tiny_val = (val_dir / "val_annotations.txt").is_file() and (val_dir / "images").is_dir()
    if tiny_val:
        val_paths, val_labels = _scan_tiny_val(val_dir, class_index)
    else:
        val_paths, val_labels = _scan_folder_val(val_dir, class_index)
    if not val_paths:
        raise InbornError(f"no labelled images in {str(val_dir)!r} (expected {_EXPECTED})")
    train = FolderSplit(train_paths, train_labels, size, classes=classes)
    test = FolderSplit(val_paths, val_labels, size, classes=classes)
    layout = "Tiny-ImageNet val layout" if tiny_val else "class folders"
    info = DatasetInfo(
        "imagefolder", len(classes), 3, size, mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225),
        crop_padding=0, flip=True, default_eps=4 / 255,
        description=(
            f"image folders from {root} ({layout}); {len(classes)} classes, "
            f"{len(train):,} train / {len(test):,} test, {size}x{size}"
        ),
    )
    return info, train, test
