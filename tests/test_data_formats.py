"""Loaders for local files in their official formats: tiny files are written here, in those formats."""

from __future__ import annotations

import gzip
import os
import pickle
import struct
from pathlib import Path

import numpy as np
import pytest
import scipy.io
import torch
from PIL import Image

import inborn.data.imagefolder as imagefolder_mod
from inborn.data import load_data
from inborn.data.cifar import load_cifar10, load_cifar100
from inborn.data.imagefolder import FolderSplit, load_imagefolder
from inborn.data.mnist_idx import load_mnist
from inborn.data.svhn import load_svhn
from inborn.errors import InbornError


def _raises_one_line(fn, *args, match: str | None = None, **kwargs) -> str:
    """The error must be ours, and printable by the CLI as one line."""
    with pytest.raises(InbornError, match=match) as info:
        fn(*args, **kwargs)
    msg = str(info.value)
    assert msg and "\n" not in msg
    return msg


# ----------------------------------------------------------------------------- CIFAR


def _cifar_batch(first_id: int, n: int, label_key: bytes, num_classes: int) -> dict:
    rng = np.random.default_rng(first_id)
    data = rng.integers(0, 256, size=(n, 3072), dtype=np.uint8)
    data[:, 0] = np.arange(first_id, first_id + n)  # an id in the first red pixel
    labels = [int(v) for v in rng.integers(0, num_classes, size=n)]
    return {b"batch_label": b"testing", b"data": data, label_key: labels}


def _write_pickle(path: Path, obj: object, protocol: int = pickle.DEFAULT_PROTOCOL) -> None:
    with open(path, "wb") as fh:
        pickle.dump(obj, fh, protocol=protocol)


def _write_cifar10(root: Path, n: int = 4, protocol: int = pickle.DEFAULT_PROTOCOL) -> Path:
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    for i in range(1, 6):
        _write_pickle(folder / f"data_batch_{i}", _cifar_batch((i - 1) * n, n, b"labels", 10), protocol)
    _write_pickle(folder / "test_batch", _cifar_batch(200, n, b"labels", 10), protocol)
    return folder


@pytest.mark.parametrize("protocol", [2, pickle.DEFAULT_PROTOCOL, 5])
def test_cifar10_shapes_labels_and_pixels(tmp_path: Path, protocol: int) -> None:
    folder = _write_cifar10(tmp_path, protocol=protocol)
    info, train, test = load_cifar10(tmp_path)
    assert (info.num_classes, info.in_channels, info.image_size) == (10, 3, 32)
    assert info.crop_padding == 4 and info.flip and info.default_eps == pytest.approx(8 / 255)
    assert train.images.shape == (20, 3, 32, 32) and test.images.shape == (4, 3, 32, 32)
    assert train.images.dtype == torch.uint8 and train.labels.dtype == torch.int64
    first = _cifar_batch(0, 4, b"labels", 10)
    assert train.labels[:4].tolist() == first[b"labels"]
    assert torch.equal(train.images[:4].reshape(4, -1), torch.from_numpy(first[b"data"]))
    assert test.images[:, 0, 0, 0].tolist() == [200, 201, 202, 203]
    assert folder.is_dir()


def test_cifar_rows_are_red_then_green_then_blue_planes(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    r, g, b = (rng.integers(0, 256, size=(32, 32), dtype=np.uint8) for _ in range(3))
    row = np.concatenate([r.ravel(), g.ravel(), b.ravel()])  # as the CIFAR page documents
    batch = {b"data": np.stack([row] * 2), b"labels": [3, 7]}
    for i in range(1, 6):
        _write_pickle(tmp_path / f"data_batch_{i}", batch)
    _write_pickle(tmp_path / "test_batch", batch)
    # The root itself may be the batches folder.
    _, train, test = load_cifar10(tmp_path)
    img = train.images[0]
    assert torch.equal(img[0], torch.from_numpy(r))
    assert torch.equal(img[1], torch.from_numpy(g))
    assert torch.equal(img[2], torch.from_numpy(b))
    assert test.labels.tolist() == [3, 7]


def test_cifar_accepts_str_keys(tmp_path: Path) -> None:
    folder = _write_cifar10(tmp_path)
    batch = _cifar_batch(0, 4, b"labels", 10)
    _write_pickle(folder / "data_batch_1", {k.decode(): v for k, v in batch.items()})
    _, train, _ = load_cifar10(tmp_path)
    assert train.labels[:4].tolist() == batch[b"labels"]


def test_cifar100_fine_labels(tmp_path: Path) -> None:
    folder = tmp_path / "cifar-100-python"
    folder.mkdir()
    train = _cifar_batch(0, 6, b"fine_labels", 100)
    train[b"fine_labels"][0] = 99
    train[b"coarse_labels"] = [0] * 6
    _write_pickle(folder / "train", train)
    _write_pickle(folder / "test", _cifar_batch(50, 3, b"fine_labels", 100))
    info, tr, te = load_cifar100(tmp_path)
    assert info.num_classes == 100 and info.mean == (0.5071, 0.4865, 0.4409)
    assert tr.images.shape == (6, 3, 32, 32) and te.images.shape == (3, 3, 32, 32)
    assert tr.labels.tolist() == train[b"fine_labels"] and tr.labels[0] == 99
    assert torch.equal(tr.images.reshape(6, -1), torch.from_numpy(train[b"data"]))


def test_cifar_missing_directory_and_file(tmp_path: Path) -> None:
    _raises_one_line(load_cifar10, None, match="--data-dir")
    _raises_one_line(load_cifar10, tmp_path / "nowhere", match="does not exist")
    _raises_one_line(load_cifar10, tmp_path, match="cifar-10-batches-py")
    folder = _write_cifar10(tmp_path)
    (folder / "test_batch").unlink()
    _raises_one_line(load_cifar10, tmp_path, match="test_batch")
    _raises_one_line(load_cifar100, tmp_path, match="cifar-100-python")


def test_cifar_corrupt_truncated_and_wrong_shape(tmp_path: Path) -> None:
    folder = _write_cifar10(tmp_path)
    good = (folder / "data_batch_1").read_bytes()
    (folder / "data_batch_1").write_bytes(np.random.default_rng(1).bytes(5000))
    _raises_one_line(load_cifar10, tmp_path, match="data_batch_1")
    (folder / "data_batch_1").write_bytes(good[: len(good) // 2])
    _raises_one_line(load_cifar10, tmp_path, match="corrupt or truncated")
    (folder / "data_batch_1").write_bytes(b"")
    _raises_one_line(load_cifar10, tmp_path, match="data_batch_1")
    _write_pickle(folder / "data_batch_1", {b"data": np.zeros((2, 100), np.uint8), b"labels": [0, 1]})
    _raises_one_line(load_cifar10, tmp_path, match="shape")
    _write_pickle(folder / "data_batch_1", {b"data": np.zeros((2, 3072), np.uint8), b"labels": [0]})
    _raises_one_line(load_cifar10, tmp_path, match="1 'labels'")
    _write_pickle(folder / "data_batch_1", {b"data": np.zeros((2, 3072), np.uint8), b"labels": [0, 10]})
    _raises_one_line(load_cifar10, tmp_path, match="0..9")
    _write_pickle(folder / "data_batch_1", {b"data": np.zeros((2, 3072), np.uint8)})
    _raises_one_line(load_cifar10, tmp_path, match="'labels'")
    _write_pickle(folder / "data_batch_1", [1, 2, 3])
    _raises_one_line(load_cifar10, tmp_path, match="dict")


class _Exploit:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_cifar_refuses_disallowed_globals(tmp_path: Path) -> None:
    folder = _write_cifar10(tmp_path)
    marker = tmp_path / "pwned"
    batch = _cifar_batch(0, 4, b"labels", 10)
    batch[b"extra"] = _Exploit(marker)
    _write_pickle(folder / "data_batch_1", batch)
    msg = _raises_one_line(load_cifar10, tmp_path, match="refusing to unpickle")
    assert "system" in msg
    assert not marker.exists()
    # Protocol-2 pickles may use _codecs.encode, but only with the latin1 codec.
    evil = b"\x80\x02c_codecs\nencode\nX\x03\x00\x00\x00abcX\x05\x00\x00\x00rot13\x86R."
    (folder / "data_batch_1").write_bytes(evil)
    _raises_one_line(load_cifar10, tmp_path, match="latin1")
    (folder / "data_batch_1").write_bytes(b"\x80\x02cbuiltins\neval\nX\x03\x00\x00\x001+1\x85R.")
    _raises_one_line(load_cifar10, tmp_path, match="builtins.eval")


def test_load_data_cifar10_validation_split(tmp_path: Path) -> None:
    _write_cifar10(tmp_path)
    splits = load_data("cifar10", tmp_path, val_fraction=0.2, seed=1)
    ids = lambda split: set(split.images[:, 0, 0, 0].tolist())  # noqa: E731
    assert len(splits.train) == 16 and len(splits.val) == 4 and len(splits.test) == 4
    assert ids(splits.train).isdisjoint(ids(splits.val))
    assert ids(splits.train) | ids(splits.val) == set(range(20))
    again = load_data("cifar10", tmp_path, val_fraction=0.2, seed=1)
    assert torch.equal(again.val.images, splits.val.images)
    assert torch.equal(again.val.labels, splits.val.labels)
    others = [ids(load_data("cifar10", tmp_path, val_fraction=0.2, seed=s).val) for s in range(2, 6)]
    assert any(o != ids(splits.val) for o in others)


# ------------------------------------------------------------------------------ SVHN


def _svhn_arrays(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 256, size=(32, 32, 3, n), dtype=np.uint8)
    y = rng.integers(1, 11, size=(n, 1)).astype(np.float64)  # 1..10, as in the official files
    y[0, 0] = 10
    return x, y


def test_svhn_round_trip_and_label_ten_is_zero(tmp_path: Path) -> None:
    x, y = _svhn_arrays(5, 0)
    scipy.io.savemat(tmp_path / "train_32x32.mat", {"X": x, "y": y})
    xt, yt = _svhn_arrays(3, 1)
    scipy.io.savemat(tmp_path / "test_32x32.mat", {"X": xt, "y": yt.astype(np.uint8)})
    info, train, test = load_svhn(tmp_path)
    assert (info.num_classes, info.crop_padding, info.flip) == (10, 0, False)
    assert train.images.shape == (5, 3, 32, 32) and train.images.dtype == torch.uint8
    assert test.images.shape == (3, 3, 32, 32)
    assert train.labels.dtype == torch.int64 and train.labels[0] == 0
    assert train.labels.tolist() == [int(v) % 10 for v in y[:, 0]]
    # tensor[n, c, h, w] is X[h, w, c, n]
    assert torch.equal(train.images, torch.from_numpy(x).permute(3, 2, 0, 1))
    assert train.images[2, 1, 5, 7].item() == x[5, 7, 1, 2]


def test_svhn_bad_input(tmp_path: Path) -> None:
    _raises_one_line(load_svhn, tmp_path / "missing", match="does not exist")
    x, y = _svhn_arrays(2, 0)
    scipy.io.savemat(tmp_path / "train_32x32.mat", {"X": x, "y": y})
    _raises_one_line(load_svhn, tmp_path, match="test_32x32.mat")
    (tmp_path / "test_32x32.mat").write_bytes(np.random.default_rng(0).bytes(3000))
    _raises_one_line(load_svhn, tmp_path, match="test_32x32.mat")
    scipy.io.savemat(tmp_path / "test_32x32.mat", {"X": x[:, :, :2], "y": y})
    _raises_one_line(load_svhn, tmp_path, match="shape")
    scipy.io.savemat(tmp_path / "test_32x32.mat", {"X": x, "y": y[:1]})
    _raises_one_line(load_svhn, tmp_path, match="labels")
    scipy.io.savemat(tmp_path / "test_32x32.mat", {"X": x})
    _raises_one_line(load_svhn, tmp_path, match="'y'")
    scipy.io.savemat(tmp_path / "test_32x32.mat", {"X": x, "y": y + 20})
    _raises_one_line(load_svhn, tmp_path, match="1..10")


# ----------------------------------------------------------------------------- MNIST


def _idx_images(images: np.ndarray, magic: int = 2051) -> bytes:
    return struct.pack(">IIII", magic, *images.shape) + images.tobytes()


def _idx_labels(labels: np.ndarray, magic: int = 2049) -> bytes:
    return struct.pack(">II", magic, labels.shape[0]) + labels.tobytes()


def _write_mnist(folder: Path, gz: bool, n_train: int = 6, n_test: int = 3) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    arrays = {
        "train-images-idx3-ubyte": rng.integers(0, 256, size=(n_train, 28, 28), dtype=np.uint8),
        "train-labels-idx1-ubyte": rng.integers(0, 10, size=n_train, dtype=np.uint8),
        "t10k-images-idx3-ubyte": rng.integers(0, 256, size=(n_test, 28, 28), dtype=np.uint8),
        "t10k-labels-idx1-ubyte": rng.integers(0, 10, size=n_test, dtype=np.uint8),
    }
    folder.mkdir(parents=True, exist_ok=True)
    for name, arr in arrays.items():
        payload = _idx_images(arr) if arr.ndim == 3 else _idx_labels(arr)
        if gz:
            with gzip.open(folder / (name + ".gz"), "wb") as fh:
                fh.write(payload)
        else:
            (folder / name).write_bytes(payload)
    return arrays


@pytest.mark.parametrize(("gz", "sub"), [(False, ""), (True, ""), (True, "MNIST/raw")])
def test_mnist_idx_round_trip(tmp_path: Path, gz: bool, sub: str) -> None:
    arrays = _write_mnist(tmp_path / sub if sub else tmp_path, gz)
    info, train, test = load_mnist(tmp_path)
    assert (info.num_classes, info.in_channels, info.image_size, info.default_eps) == (10, 1, 28, 0.3)
    assert train.images.shape == (6, 1, 28, 28) and test.images.shape == (3, 1, 28, 28)
    assert train.images.dtype == torch.uint8 and train.labels.dtype == torch.int64
    assert torch.equal(train.images[:, 0], torch.from_numpy(arrays["train-images-idx3-ubyte"]))
    assert torch.equal(test.images[:, 0], torch.from_numpy(arrays["t10k-images-idx3-ubyte"]))
    assert train.labels.tolist() == arrays["train-labels-idx1-ubyte"].tolist()
    assert test.labels.tolist() == arrays["t10k-labels-idx1-ubyte"].tolist()


def test_mnist_bad_input(tmp_path: Path) -> None:
    _raises_one_line(load_mnist, tmp_path, match="no MNIST files")
    arrays = _write_mnist(tmp_path, gz=False)
    images = arrays["train-images-idx3-ubyte"]
    path = tmp_path / "train-images-idx3-ubyte"
    path.write_bytes(_idx_images(images, magic=2049))
    _raises_one_line(load_mnist, tmp_path, match="magic number 2049, expected 2051")
    path.write_bytes(_idx_images(images)[:-10])
    _raises_one_line(load_mnist, tmp_path, match="data bytes")
    path.write_bytes(b"\x00\x00")
    _raises_one_line(load_mnist, tmp_path, match="too short")
    path.write_bytes(_idx_images(images[:, :20, :20].copy()))
    _raises_one_line(load_mnist, tmp_path, match="28x28")
    path.write_bytes(_idx_images(images[:4]))
    _raises_one_line(load_mnist, tmp_path, match="labels but")
    path.unlink()
    _raises_one_line(load_mnist, tmp_path, match="missing train-images-idx3-ubyte")
    # A truncated download: the gzip stream stops part-way.
    blob = gzip.compress(_idx_images(images))
    (tmp_path / "train-images-idx3-ubyte.gz").write_bytes(blob[: len(blob) // 2])
    _raises_one_line(load_mnist, tmp_path, match="corrupt or truncated")
    (tmp_path / "train-images-idx3-ubyte.gz").write_bytes(b"not gzip at all" * 10)
    _raises_one_line(load_mnist, tmp_path, match="corrupt or truncated")


# ----------------------------------------------------------------------- ImageFolder


def _rgb(seed: int, h: int = 8, w: int = 8) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=(h, w, 3), dtype=np.uint8)


def _write_folder_tree(root: Path, per_class: int = 3) -> dict[str, np.ndarray]:
    """ImageFolder layout; class folders deliberately created out of order."""
    written: dict[str, np.ndarray] = {}
    seed = 0
    for split in ("train", "val"):
        for cls in ("zebra", "ant"):
            folder = root / split / cls
            folder.mkdir(parents=True)
            for i in range(per_class if split == "train" else 1):
                arr = _rgb(seed)
                seed += 1
                path = folder / f"img_{i}.png"
                Image.fromarray(arr).save(path)
                written[str(path)] = arr
    (root / "train" / "ant" / "notes.txt").write_text("not an image")
    return written


def test_imagefolder_round_trip(tmp_path: Path) -> None:
    written = _write_folder_tree(tmp_path)
    info, train, test = load_imagefolder(tmp_path, image_size=8)
    assert isinstance(train, FolderSplit) and isinstance(test, FolderSplit)
    assert (info.num_classes, info.in_channels, info.image_size) == (2, 3, 8)
    assert info.mean == (0.485, 0.456, 0.406) and info.flip and info.crop_padding == 0
    assert info.default_eps == pytest.approx(4 / 255)
    assert len(train) == 6 and len(test) == 2 and train.labels.dtype == torch.int64
    assert train.classes == ("ant", "zebra")  # sorted by name, not by creation
    assert train.labels.tolist() == [0, 0, 0, 1, 1, 1] and test.labels.tolist() == [0, 1]
    x, y = train.tensors()
    assert x.shape == (6, 3, 8, 8) and x.dtype == torch.float32 and torch.equal(y, train.labels)
    for k, path in enumerate(train.paths):
        expected = torch.from_numpy(written[path]).permute(2, 0, 1)
        assert torch.equal((x[k] * 255).round().to(torch.uint8), expected)
    held = train.materialize()
    assert held.images.dtype == torch.uint8 and held.images.shape == (6, 3, 8, 8)
    assert torch.equal(held.images[3], torch.from_numpy(written[train.paths[3]]).permute(2, 0, 1))


def test_folder_split_batches_subset_head(tmp_path: Path) -> None:
    _write_folder_tree(tmp_path, per_class=5)
    _, train, _ = load_imagefolder(tmp_path, image_size=8)
    full, _ = train.tensors()
    got = list(train.batches(4))
    assert [b[0].shape[0] for b in got] == [4, 4, 2]
    assert torch.equal(torch.cat([b[0] for b in got]), full)
    gen = torch.Generator().manual_seed(0)
    shuffled = list(train.batches(3, shuffle=True, generator=gen, drop_last=True))
    assert [b[0].shape[0] for b in shuffled] == [3, 3, 3]
    order = torch.randperm(10, generator=torch.Generator().manual_seed(0))[:9]
    assert torch.equal(torch.cat([b[0] for b in shuffled]), full[order])
    assert torch.equal(torch.cat([b[1] for b in shuffled]), train.labels[order])
    sub = train.subset(torch.tensor([7, 1]))
    assert len(sub) == 2 and sub.labels.tolist() == [train.labels[7].item(), train.labels[1].item()]
    assert torch.equal(sub.tensors()[0], full[[7, 1]])
    assert len(train.head(3)) == 3 and train.head(None) is train and train.head(99) is train
    it = train.batches(2)
    next(it)
    it.close()  # stopping early must not hang on queued decodes


def test_imagefolder_resize_crop_and_modes(tmp_path: Path) -> None:
    for split in ("train", "val"):
        (tmp_path / split / "a").mkdir(parents=True)
    Image.fromarray(_rgb(0, h=20, w=40)).save(tmp_path / "train" / "a" / "wide.png")
    Image.fromarray(np.full((16, 16), 77, np.uint8), mode="L").save(tmp_path / "train" / "a" / "gray.png")
    rgba = np.zeros((16, 16, 4), np.uint8)
    rgba[..., 0] = 200
    rgba[..., 3] = 255
    Image.fromarray(rgba, mode="RGBA").save(tmp_path / "val" / "a" / "alpha.png")
    Image.fromarray(_rgb(1, h=40, w=30)).save(tmp_path / "val" / "a" / "tall.jpeg", format="JPEG")
    _, train, test = load_imagefolder(tmp_path, image_size=8)
    imgs = train.materialize().images
    assert imgs.shape == (2, 3, 8, 8)
    assert (imgs[0] == 77).all()  # gray.png sorts first; grey becomes three equal channels
    timgs = test.materialize().images
    assert timgs.shape == (2, 3, 8, 8)
    assert (timgs[0, 0] == 200).all() and (timgs[0, 1:] == 0).all()


def test_tiny_imagenet_layout(tmp_path: Path) -> None:
    wnids = ["n02", "n01", "n03"]
    colours = {"n01": (250, 0, 0), "n02": (0, 250, 0), "n03": (0, 0, 250)}
    for wnid in wnids:
        folder = tmp_path / "train" / wnid / "images"
        folder.mkdir(parents=True)
        (tmp_path / "train" / wnid / f"{wnid}_boxes.txt").write_text(f"{wnid}_0.JPEG\t0\t0\t10\t10\n")
        for i in range(2):
            img = Image.new("RGB", (16, 16), colours[wnid])
            img.save(folder / f"{wnid}_{i}.JPEG", format="JPEG")
    (tmp_path / "val" / "images").mkdir(parents=True)
    notes = []
    for i, wnid in enumerate(["n03", "n01", "n02", "n03"]):
        Image.new("RGB", (16, 16), colours[wnid]).save(tmp_path / "val" / "images" / f"val_{i}.JPEG", "JPEG")
        notes.append(f"val_{i}.JPEG\t{wnid}\t0\t0\t15\t15")
    (tmp_path / "val" / "val_annotations.txt").write_text("\n".join(notes) + "\n")
    (tmp_path / "test" / "images").mkdir(parents=True)  # Tiny's unlabelled test set is ignored

    info, train, test = load_imagefolder(tmp_path, image_size=16)
    assert info.num_classes == 3 and "Tiny" in info.description
    assert train.classes == ("n01", "n02", "n03")
    assert train.labels.tolist() == [0, 0, 1, 1, 2, 2]
    assert test.labels.tolist() == [2, 0, 1, 2]
    x = test.materialize().images.float()
    for k, label in enumerate(test.labels.tolist()):
        mean_rgb = x[k].mean(dim=(1, 2))
        assert mean_rgb.argmax().item() == label  # colour matches the annotated class
    assert x.shape == (4, 3, 16, 16)

    # Loaded through the registry the module default size applies.
    imagefolder_mod.DEFAULT_IMAGE_SIZE, saved = 12, imagefolder_mod.DEFAULT_IMAGE_SIZE
    try:
        splits = load_data("imagefolder", tmp_path, val_fraction=0.5, seed=3)
    finally:
        imagefolder_mod.DEFAULT_IMAGE_SIZE = saved
    assert splits.info.image_size == 12 and len(splits.train) == 3 and len(splits.val) == 3
    assert set(splits.train.paths).isdisjoint(set(splits.val.paths))
    xb, yb = next(splits.val.batches(8))
    assert xb.shape == (3, 3, 12, 12) and yb.dtype == torch.int64

    with open(tmp_path / "val" / "val_annotations.txt", "a") as fh:
        fh.write("val_9.JPEG\tn01\t0\t0\t1\t1\n")
    _raises_one_line(load_imagefolder, tmp_path, match="val_9.JPEG")
    with open(tmp_path / "val" / "val_annotations.txt", "a") as fh:
        fh.write("val_0.JPEG\tn99\t0\t0\t1\t1\n")
    _raises_one_line(load_imagefolder, tmp_path, match="n99")


def test_imagefolder_bad_input(tmp_path: Path) -> None:
    _raises_one_line(load_imagefolder, tmp_path / "missing", match="does not exist")
    _raises_one_line(load_imagefolder, tmp_path, match="no train/")
    _write_folder_tree(tmp_path)
    _raises_one_line(load_imagefolder, tmp_path, image_size=0, match="positive")
    (tmp_path / "val" / "cat").mkdir()
    _raises_one_line(load_imagefolder, tmp_path, match="'cat'")
    (tmp_path / "train" / "cat").mkdir()
    _raises_one_line(load_imagefolder, tmp_path, match="holds no images")
    (tmp_path / "train" / "cat" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"garbage" * 20)
    _, train, _ = load_imagefolder(tmp_path, image_size=8)  # listing works; decoding reports the file
    _raises_one_line(lambda: list(train.batches(4)), match="broken.png")
    _raises_one_line(train.tensors, match="cannot decode image")
    import shutil

    shutil.rmtree(tmp_path / "val")
    _raises_one_line(load_imagefolder, tmp_path, match="no val/")
