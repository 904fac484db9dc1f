"""`--smoke`: the real path of a run or a study on a sliver of the data, in a throwaway directory,
with the measured batch time projected to the full run; paper-scale presets on test-written
CIFAR files of the official format."""

from __future__ import annotations

import json
import os
import pickle
import re
from pathlib import Path

import numpy as np
import pytest

from inborn.cli import main


def _batch(first: int, n: int, key: bytes, classes: int) -> dict:
    rng = np.random.default_rng(first)
    return {b"batch_label": b"testing", b"data": rng.integers(0, 256, size=(n, 3072), dtype=np.uint8),
            key: [int(v) for v in rng.integers(0, classes, size=n)]}


def write_cifar(root: Path, per_batch: int = 8, test: int = 16) -> Path:
    """Tiny CIFAR-10 and CIFAR-100 files in the official python-pickle format."""
    c10 = root / "cifar-10-batches-py"
    c10.mkdir(parents=True)
    for i in range(1, 6):
        (c10 / f"data_batch_{i}").write_bytes(pickle.dumps(_batch(i * 100, per_batch, b"labels", 10)))
    (c10 / "test_batch").write_bytes(pickle.dumps(_batch(900, test, b"labels", 10)))
    c100 = root / "cifar-100-python"
    c100.mkdir()
    (c100 / "train").write_bytes(pickle.dumps(_batch(1, 5 * per_batch, b"fine_labels", 100)))
    (c100 / "test").write_bytes(pickle.dumps(_batch(2, test, b"fine_labels", 100)))
    return root


def _throwaway(out: str) -> Path:
    return Path(re.search(r"smoke run \(throwaway\): (\S+)", out).group(1))


def test_train_smoke_runs_in_a_throwaway_directory_and_projects_the_time(tmp_path, capsys):
    out = tmp_path / "never"
    assert main(["train", "--data", "digits", "--arch", "fc", "--adv", "pgd", "--adv-steps", "2", "--eps", "0.1",
                 "--epochs", "30", "--smoke", "--out", str(out), "--quiet"]) == 0
    text = capsys.readouterr().out
    assert not out.exists()
    run = _throwaway(text)
    summary = json.loads((run / "summary.json").read_text())
    s = summary["smoke"]
    assert s["measured_batches"] == 2 and s["epochs"] == 30 and summary["epochs"] == 1
    assert s["batches_per_epoch"] == -(-s["train_images"] // s["batch_size"])
    assert s["projected_run_seconds"] > s["projected_epoch_seconds"] > 0
    assert summary["test"]["n"] == s["smoke_batch_size"]  # one evaluation batch
    assert (run / "curves.png").exists() and "projected here" in text and "for the full run (30 epochs)" in text


def test_search_smoke(tmp_path, capsys):
    assert main(["search", "--data", "digits", "--arch", "conv2", "--width", "0.25", "--keep", "0.3",
                 "--adv-steps", "2", "--eps", "0.1", "--smoke", "--out", str(tmp_path / "never"), "--quiet"]) == 0
    text = capsys.readouterr().out
    assert not (tmp_path / "never").exists()
    assert json.loads((_throwaway(text) / "summary.json").read_text())["ticket"]["keep_ratio"] == 0.3


@pytest.fixture(scope="module")
def cifar(tmp_path_factory):
    return write_cifar(tmp_path_factory.mktemp("cifar"))


def _paper_presets() -> list[str]:
    from inborn.studies.presets import load_preset, preset_names

    return [n for n in preset_names() if "paper" in load_preset(n)["scales"]]


# Every preset at paper scale on a CPU: ResNet-18 / WRN-34-10 / DARTS networks for 2 batches of 8
# images per run, about a minute a run on 2 busy cores, so 10-20 minutes a preset. The suite runs
# one, `inits` (30 s on 2 cores: PreActResNet-18 on CIFAR-10's format, a ticket and dense PGD-AT);
# INBORN_PAPER_SMOKE=1 runs them all, or the names it lists, comma-separated.
_PAPER = os.environ.get("INBORN_PAPER_SMOKE", "inits")


@pytest.mark.parametrize("study", _paper_presets())
def test_every_preset_at_paper_scale_smoke(cifar, capsys, study):
    if _PAPER not in ("1", "all") and study not in _PAPER.split(","):
        pytest.skip(f"{study} not in INBORN_PAPER_SMOKE")
    assert main(["reproduce", study, "--scale", "paper", "--data-dir", str(cifar), "--smoke", "--quiet"]) == 0
    text = capsys.readouterr().out
    out = Path(re.search(r"throwaway directory, (\S+)", text).group(1))
    assert (out / "report.md").exists()
    summaries = [json.loads(p.read_text()) for p in out.glob("**/summary.json")]
    assert summaries and all(s["smoke"]["smoke_batch_size"] <= 8 for s in summaries if "smoke" in s)
    assert "projected here for the" in text


def test_a_smoked_ticket_study_runs_one_cell_of_each_kind_and_a_family_study_keeps_its_tickets():
    from inborn.cli.reproduce import smoke_overrides
    from inborn.studies.presets import load_preset

    existence = smoke_overrides(load_preset("existence"), "paper")
    assert existence["base.smoke"] is True and existence["values"] == [0.01]
    overparam = smoke_overrides(load_preset("overparam"), "quick")
    assert overparam["widths"] == [0.25] and overparam["seeds"] == [0] and len(overparam["values"]) == 1
    transfer = smoke_overrides(load_preset("transfer"), "paper")  # a transfer matrix needs its tickets
    assert "values" not in transfer and transfer["base.smoke"] is True
