"""CUDA paths (bf16 autocast, channels_last, the device move of every workflow). Skipped without a GPU.

Run them with `pytest -m cuda` (benchmarks/gpu_check.py does). The workflows run through the CLI
on `digits` (scikit-learn's), the smallest data set that ships with an installed package.
"""

from __future__ import annotations

import json

import pytest
import torch

from inborn.attacks import PGD
from inborn.masks import to_supermask
from inborn.models import create_model

pytestmark = [
    pytest.mark.cuda,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU"),
]

TINY = ["--data", "digits", "--arch", "conv2", "--width", "0.25", "--eps", "0.1", "--epochs", "1",
        "--adv-steps", "2", "--quiet", "--device", "cuda"]


def _cli(args: list[str]) -> int:
    pytest.importorskip("sklearn")
    from inborn.cli import main

    return main(args)


def _ticket(seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    return to_supermask(create_model("preact_resnet18", num_classes=10, in_channels=3, image_size=32, width=0.25),
                        0.1)


def test_train_search_and_evaluate_on_cuda(tmp_path):
    db = str(tmp_path / "db")
    assert _cli(["train", *TINY, "--adv", "pgd", "--out", str(tmp_path / "at"), "--db", db]) == 0
    assert _cli(["search", *TINY, "--keep", "0.2", "--out", str(tmp_path / "rst"), "--db", db]) == 0
    for run in ("at", "rst"):
        summary = json.loads((tmp_path / run / "summary.json").read_text())
        assert 0.0 <= summary["test"]["robust_acc"] <= summary["test"]["clean_acc"] <= 1.0
    assert _cli(["evaluate", str(tmp_path / "rst"), "--n", "64", "--steps", "5", "--db", db,
                 "--device", "cuda"]) == 0


def test_family_and_r2s_on_cuda(tmp_path):
    db = str(tmp_path / "db")
    assert _cli(["family", *TINY, "--keep", "0.1,0.3", "--out", str(tmp_path / "fam"), "--db", db]) == 0
    from inborn.analysis.r2s import evaluate_r2s
    from inborn.data import load_data
    from inborn.runs import load_family

    family = load_family(tmp_path / "fam", device="cuda")
    x, y = load_data("digits").test.head(32).tensors("cuda")
    out = evaluate_r2s(family, x, y, eps=0.1, protocols=("pgd",), repeats=1, steps=3)
    assert out


def test_nas_study_on_cuda(tmp_path):
    args = ["nas", "--data", "digits", "--epochs", "1", "--archs", "conv2,random:0", "--attacks", "pgd",
            "--eps", "0.1", "--steps", "2", "--n", "32", "--width", "0.25", "--nas-opt", "init_channels=4",
            "--nas-opt", "layers=3", "--quiet", "--device", "cuda", "--out", str(tmp_path / "nas")]
    assert _cli(args) == 0
    assert (tmp_path / "nas" / "report.md").stat().st_size > 0


def test_cuda_matches_cpu_in_float32():
    model = _ticket().eval()
    x = torch.rand(16, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        cpu = model(x)
        gpu = model.cuda()(x.cuda()).cpu()
    assert torch.allclose(cpu, gpu, rtol=1e-3, atol=1e-3 * cpu.abs().max().item())


def test_bf16_channels_last_is_close_to_float32():
    from inborn.device import autocast, prepare_model

    device = torch.device("cuda")
    model = prepare_model(_ticket(), device).eval()
    x = torch.rand(64, 3, 32, 32, device=device, generator=torch.Generator(device).manual_seed(0))
    with torch.no_grad():
        full = model(x).float()
        with autocast(device, True):
            half = model(x).float()
    assert (full.argmax(1) == half.argmax(1)).float().mean() >= 0.9
    assert (full - half).abs().max() <= 0.05 * full.abs().max() + 1e-3
    y = full.argmax(1)
    attack = PGD(8 / 255, steps=3, step_size=2 / 255, seed=0)
    for amp in (False, True):
        attack.use_autocast = amp
        x_adv = attack(model, x, y)
        assert (x_adv - x).abs().max() <= 8 / 255 + 1e-6
