"""Every workflow on every device here: the CPU always (so CI runs these), CUDA where there is a GPU.

Each test takes the device as a parameter. The CUDA cases exist only where `torch.cuda.is_available()`
and carry the `cuda` marker, so `pytest -m cuda` selects just them (benchmarks/gpu_check.py runs
them on a GPU). What only CUDA does (bf16 autocast, channels-last for every model) is asserted on
CUDA; on the CPU the same test asserts what inborn does there instead (autocast a no-op,
channels-last for ungrouped convolutions only).

The data are a tiny synthetic CIFAR-10 in the official file format, written per test: no data set
to download and no optional package (scikit-learn, mlxtend) needed, so the tests run on a bare GPU
machine too; and CIFAR's recipe brings random crop and flip into the training path.
"""

from __future__ import annotations

import copy
import json
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

from inborn.attacks import PGD
from inborn.device import autocast, exact_float32, prepare_model
from inborn.masks import to_supermask
from inborn.models import create_model

DEVICES = ["cpu"] + ([pytest.param("cuda", marks=pytest.mark.cuda)] if torch.cuda.is_available() else [])

# Per CIFAR batch file: 5 train files make 120 images (108 train, 12 validation), the test file 32.
TRAIN_PER_FILE, TEST_IMAGES = 24, 32


def tiny_cifar10(root: Path) -> Path:
    """A CIFAR-10 in the official python-batch format, 152 images: each class a colour cast over
    noise, so that a network can learn something in one epoch. Returns the --data-dir to give."""
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    cast = rng.integers(0, 256, size=(10, 3, 1, 1))

    def batch(n: int) -> dict[bytes, object]:
        labels = rng.integers(0, 10, size=n)
        noise = rng.integers(0, 256, size=(n, 3, 32, 32))
        images = ((noise + 3 * cast[labels]) // 4).astype(np.uint8)
        return {b"data": images.reshape(n, -1), b"labels": labels.tolist()}

    for i in range(1, 6):
        (folder / f"data_batch_{i}").write_bytes(pickle.dumps(batch(TRAIN_PER_FILE)))
    (folder / "test_batch").write_bytes(pickle.dumps(batch(TEST_IMAGES)))
    return root


def tiny(device: str, data_dir: Path) -> list[str]:
    """The training flags of every tiny run: conv2 at width 0.25, one epoch of 4 batches, PGD-2."""
    return ["--data", "cifar10", "--data-dir", str(data_dir), "--arch", "conv2", "--width", "0.25",
            "--eps", "8/255", "--epochs", "1", "--batch-size", "32", "--adv-steps", "2",
            "--select-attack-steps", "2", "--test-attack-steps", "3", "--quiet", "--device", device]


def cli(args: list[str]) -> int:
    from inborn.cli import main

    return main(args)


def ticket(seed: int = 0) -> torch.nn.Module:
    """A PreActResNet-18 supermask at width 0.25 (ungrouped convolutions, BatchNorm, shortcuts)."""
    torch.manual_seed(seed)
    return to_supermask(create_model("preact_resnet18", num_classes=10, in_channels=3, image_size=32, width=0.25),
                        0.1)


def check_figures(test: dict) -> None:
    assert test["n"] == TEST_IMAGES
    assert 0.0 <= test["robust_acc"] <= test["clean_acc"] <= 1.0


@pytest.mark.parametrize("device", DEVICES)
def test_train_search_and_eval(device, tmp_path, capsys):
    data, db = tiny_cifar10(tmp_path / "data"), str(tmp_path / "db")
    assert cli(["train", *tiny(device, data), "--adv", "pgd", "--out", str(tmp_path / "at"), "--db", db]) == 0
    assert cli(["search", *tiny(device, data), "--keep", "0.2", "--out", str(tmp_path / "rst"), "--db", db]) == 0
    for run in ("at", "rst"):
        assert f"device: {device}" in (tmp_path / run / "config.yaml").read_text()
        summary = json.loads((tmp_path / run / "summary.json").read_text())
        assert summary["epochs"] == 1 and summary["selected_on"] == "val_pgd2_acc"
        check_figures(summary["test"])
        assert set(summary["test"]["per_attack"]) == {"pgd-3", "cw-3"}
    rst = json.loads((tmp_path / "rst" / "summary.json").read_text())
    assert rst["ticket"]["kept"] == pytest.approx(0.2 * rst["ticket"]["maskable"], rel=0.01)
    args = ["eval", str(tmp_path / "rst"), "--n", "16", "--steps", "3", "--amp", "--db", db, "--device", device,
            "--quiet", "--json"]
    capsys.readouterr()
    assert cli(args) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["n"] == 16
    [pgd] = result["results"]
    assert pgd["attack"] == "pgd" and pgd["steps"] == 3
    assert 0.0 <= pgd["robust_acc"] <= result["clean_acc"] <= 1.0


@pytest.mark.parametrize("device", DEVICES)
def test_family_and_r2s(device, tmp_path):
    from inborn.analysis.r2s import evaluate_r2s
    from inborn.analysis.r2s_config import ADAPTIVE
    from inborn.data import load_data
    from inborn.runs import load_family

    data, db = tiny_cifar10(tmp_path / "data"), str(tmp_path / "db")
    assert cli(["family", *tiny(device, data), "--keep", "0.1,0.3", "--out", str(tmp_path / "fam"), "--db", db]) == 0
    family = load_family(tmp_path / "fam", device=device)
    assert family.keep_ratios == [0.1, 0.3]
    assert {p.device.type for p in family.parameters()} == {device}
    x, y = load_data("cifar10", data).test.head(16).tensors(device)
    # autoattack-rand needs pyautoattack, which a bare GPU machine lacks; the others are inborn's own.
    protocols = ["paper", "eot", "expectation"]
    out = evaluate_r2s(family, x, y, eps=8 / 255, protocols=protocols, repeats=1, steps=3, eot_samples=2)
    assert out["n"] == 16 and set(out["protocols"]) == {"clean", *protocols}
    for protocol in protocols:
        assert 0.0 <= out["protocols"][protocol]["mean"] <= 1.0
    assert out["cite"]["protocol"] in ADAPTIVE
    assert out["cite"]["mean"] == min(out["protocols"][p]["mean"] for p in ("eot", "expectation"))


@pytest.mark.parametrize("device", DEVICES)
def test_nas_study(device, tmp_path):
    data = tiny_cifar10(tmp_path / "data")
    # Two random DARTS networks and their ensemble: each run is a process of its own, so every
    # architecture costs seconds of start-up; the other tests cover the hand-crafted conv2. (The
    # default ensemble, random:0-2, would need a third network in --archs.) `--device` places the
    # study's attacks; the training runs take theirs from the training settings.
    args = ["nas", "--data", "cifar10", "--data-dir", str(data), "--epochs", "1", "--archs", "random:0-1",
            "--ensemble", "random:0-1", "--attacks", "pgd", "--eps", "4/255,8/255", "--steps", "2", "--n", "16",
            "--width", "0.25", "--nas-opt", "init_channels=4", "--nas-opt", "layers=3", "--train-opt",
            "batch_size=64", "--train-opt", "test_attacks=[pgd]", "--train-opt", "test_attack_steps=2", "--train-opt",
            f"device={device}", "--quiet", "--device", device,
            "--out", str(tmp_path / "nas"), "--db", str(tmp_path / "db")]
    assert cli(args) == 0
    for run in ("random_0", "random_1"):
        assert f"device: {device}" in (tmp_path / "nas" / "runs" / run / "config.yaml").read_text()
    assert (tmp_path / "nas" / "report.md").stat().st_size > 0
    rows = {row["model"]: row for row in json.loads((tmp_path / "nas" / "study.json").read_text())["rows"]}
    assert set(rows) == {"random:0", "random:1", "ensemble of 2 (logits)"}
    for row in rows.values():
        assert 0.0 <= row["pgd@0.03137"] <= row["clean"] <= 1.0
    assert rows["ensemble of 2 (logits)"]["params"] == rows["random:0"]["params"] + rows["random:1"]["params"]


@pytest.mark.parametrize("device", DEVICES)
def test_prepared_model_matches_plain_cpu_float32(device):
    """The model as inborn runs it on `device` (its layout; on the CPU inborn's kernels) computes
    what the plain model computes on the CPU, in float32."""
    model = ticket().eval()
    x = torch.rand(8, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    with torch.no_grad(), exact_float32(torch.device("cuda")):  # float32 as written on any device
        plain = model(x)
        fast = prepare_model(copy.deepcopy(model), torch.device(device))(x.to(device)).float().cpu()
    assert torch.allclose(plain, fast, rtol=1e-3, atol=1e-3 * plain.abs().max().item())


@pytest.mark.parametrize("device", DEVICES)
def test_autocast_and_channels_last(device):
    dev = torch.device(device)
    model = prepare_model(ticket(), dev).eval()
    convs = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
    # Channels-last on CUDA, and on the CPU too for this model: all its convolutions are ungrouped.
    assert convs and all(m.weight.is_contiguous(memory_format=torch.channels_last) for m in convs)
    seen: list[torch.dtype] = []
    hook = convs[0].register_forward_hook(lambda m, i, o: seen.append(o.dtype))
    x = torch.rand(32, 3, 32, 32, generator=torch.Generator().manual_seed(0)).to(dev)
    try:
        with torch.no_grad():
            full = model(x).float()
            with autocast(dev, True):
                half = model(x).float()
    finally:
        hook.remove()
    if dev.type == "cuda":  # the convolutions in bf16, the logits close to float32's
        assert seen == [torch.float32, torch.bfloat16]
        assert (full.argmax(1) == half.argmax(1)).float().mean() >= 0.9
        assert (full - half).abs().max() <= 0.05 * full.abs().max() + 1e-3
    else:  # a no-op: CPU bf16 is slower than float32 on most CPUs
        assert seen == [torch.float32, torch.float32] and torch.equal(full, half)
    y = full.argmax(1)
    attack = PGD(8 / 255, steps=3, step_size=2 / 255, seed=0)
    adv = {}
    for amp in (False, True):
        attack.use_autocast = amp
        attack.reseed(0)  # the same random start both ways
        adv[amp] = attack(model, x, y)
        assert adv[amp].dtype == torch.float32
        assert (adv[amp] - x).abs().max() <= 8 / 255 + 1e-6 and adv[amp].min() >= 0 and adv[amp].max() <= 1
    if dev.type == "cpu":
        assert torch.equal(adv[False], adv[True])


def test_a_float32_evaluation_turns_tf32_off_on_cuda_and_restores_it():
    """What `evaluate` records as float32 is float32: TF32 off inside, as before after (CPU: untouched)."""
    from inborn.device import exact_float32

    before = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = True
    try:
        with exact_float32(torch.device("cuda")):
            assert not torch.backends.cudnn.allow_tf32 and not torch.backends.cuda.matmul.allow_tf32
        assert torch.backends.cudnn.allow_tf32
        with exact_float32(torch.device("cuda"), enabled=False), exact_float32(torch.device("cpu")):
            assert torch.backends.cudnn.allow_tf32
    finally:
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = before
