"""Training: it learns, it selects on validation, and a resumed run equals an uninterrupted one."""

from __future__ import annotations

import json
import warnings

import pytest
import torch
from safetensors.torch import load_file

import inborn
from inborn.errors import InbornError
from inborn.store import ResultsDB, RunDir
from inborn.train import TrainConfig, train
from inborn.train import loop as train_loop
from inborn.train.schedules import learning_rate


def _tiny(**kw) -> TrainConfig:
    base = dict(data="digits", arch="conv2", width=0.25, epochs=2, batch_size=64, lr=0.05,
                schedule="cosine", select_attack_steps=2, test_attack_steps=3, eps=0.1)
    base.update(kw)
    return TrainConfig(**base)


def _history(run_dir):
    return [{k: v for k, v in h.items() if k != "seconds"} for h in RunDir(run_dir).read_metrics()]


@pytest.mark.parametrize("adv", ["none", "pgd", "fgsm-rs", "free"])
def test_training_writes_a_complete_run(tmp_path, adv):
    cfg = _tiny(adv=adv, adv_steps=2, free_replays=2)
    summary = train(cfg, tmp_path / "run", db=ResultsDB(tmp_path / "db.sqlite"), progress=False)
    run = RunDir(tmp_path / "run")
    for name in ("config.yaml", "metrics.jsonl", "model.safetensors", "checkpoint.safetensors", "summary.json"):
        assert run.file(name).exists(), name
    doc = run.read_config()
    assert doc["env"]["torch"] == str(torch.__version__) and doc["env"]["inborn"] == inborn.__version__
    assert len(run.read_metrics()) == 2
    assert summary["test"]["clean_acc"] > 0.5  # digits is easy; two epochs are plenty to learn something
    expected_selection = "val_clean_acc" if adv == "none" else "val_pgd2_acc"
    assert summary["selected_on"] == expected_selection
    rows = ResultsDB(tmp_path / "db.sqlite").runs()
    assert len(rows) == 1 and rows[0]["status"] == "complete"


@pytest.mark.parametrize("ticket", [None, {"keep_ratio": 0.2, "weight_seed": 3}], ids=["train", "search"])
def test_resumed_run_equals_uninterrupted_run(tmp_path, monkeypatch, ticket):
    cfg = _tiny(adv="pgd", adv_steps=2, epochs=3, ticket=ticket)
    db = ResultsDB(tmp_path / "db.sqlite")
    train(cfg, tmp_path / "full", db=db, progress=False)

    # Kill the second run during epoch 2 (after its training, before its checkpoint).
    real_validate = train_loop.validate
    calls = {"n": 0}

    def dying_validate(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt
        return real_validate(*args, **kwargs)

    monkeypatch.setattr(train_loop, "validate", dying_validate)
    with pytest.raises(KeyboardInterrupt):
        train(_tiny(adv="pgd", adv_steps=2, epochs=3, ticket=ticket), tmp_path / "cut", db=db, progress=False)
    assert len(RunDir(tmp_path / "cut").read_metrics()) == 1
    monkeypatch.setattr(train_loop, "validate", real_validate)

    train(None, tmp_path / "cut", resume=True, db=db, progress=False)
    full, cut = load_file(tmp_path / "full/model.safetensors"), load_file(tmp_path / "cut/model.safetensors")
    assert full.keys() == cut.keys()
    for key in full:
        assert torch.equal(full[key], cut[key]), key
    assert _history(tmp_path / "full") == _history(tmp_path / "cut")
    s_full = json.loads((tmp_path / "full/summary.json").read_text())
    s_cut = json.loads((tmp_path / "cut/summary.json").read_text())
    assert s_full["test"] == s_cut["test"]


def test_training_refuses_to_overwrite_a_run(tmp_path):
    db = ResultsDB(tmp_path / "db.sqlite")
    train(_tiny(epochs=1), tmp_path / "run", db=db, progress=False)
    before = (tmp_path / "run/model.safetensors").read_bytes()
    with pytest.raises(InbornError, match="already holds a run"):
        train(_tiny(epochs=1), tmp_path / "run", db=db, progress=False)
    assert (tmp_path / "run/model.safetensors").read_bytes() == before


def test_load_returns_an_eval_mode_model_that_takes_pixels(tmp_path):
    train(_tiny(epochs=1), tmp_path / "run", db=ResultsDB(tmp_path / "db.sqlite"), progress=False)
    model = inborn.load(tmp_path / "run")
    assert not model.training
    out = model(torch.rand(3, 1, 16, 16))
    assert out.shape == (3, 10)


@pytest.mark.parametrize("schedule", ["multistep", "piecewise", "cosine", "constant"])
def test_schedules_start_and_end_where_they_should(schedule):
    start = learning_rate(schedule, 0.1, 0.0, 10)
    end = learning_rate(schedule, 0.1, 10.0, 10)
    if schedule == "piecewise":
        assert start == 0.0 and learning_rate(schedule, 0.1, 4.0, 10) == pytest.approx(0.1)
    else:
        assert start == pytest.approx(0.1)
    expected_end = {"multistep": 0.001, "piecewise": 0.0, "cosine": 0.0, "constant": 0.1}[schedule]
    assert end == pytest.approx(expected_end, abs=1e-12)
    assert learning_rate("multistep", 0.1, 120, 160, milestones=[80, 120]) == pytest.approx(0.001)


def test_eps_warmup_restores_the_full_step_after_starting_from_zero():
    attack = train_loop.training_attack(_tiny(adv="pgd", adv_steps=7), 0.3)
    step_per_eps = attack.step_size / 0.3
    for eps in (0.0, 0.1, 0.3):  # the warm-up starts at ε = 0, which once left the step stuck at 0
        train_loop._set_eps(attack, eps, step_per_eps)
    assert attack.eps == 0.3 and attack.step_size == pytest.approx(0.075)


def test_a_warm_up_longer_than_the_run_is_one_warning_line(tmp_path):
    from inborn.cli import _one_line_warning, main

    args = ["search", "--data", "digits", "--arch", "fc", "--width", "0.25", "--eps", "0.1", "--adv-steps", "1",
            "--test-attack-steps", "1", "--keep", "0.5", "--quiet", "--epochs", "2"]
    with pytest.warns(UserWarning, match="the ε warm-up lasts 3 epochs of 2: the run reaches its full ε = 0.1 never"):
        assert main([*args, "--eps-warmup", "3", "--out", str(tmp_path / "never")]) == 0
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message=".*warm-up")  # none when the warm-up ends in time
        assert main([*args, "--eps-warmup", "1", "--out", str(tmp_path / "fine")]) == 0
    # The command line prints a UserWarning as one line, without Python's source line.
    assert _one_line_warning(UserWarning("x y"), UserWarning, "f.py", 3) == "inborn: warning: x y\n"


def test_tensorboard_events_hold_the_metrics_and_deterministic_is_recorded_and_undone(tmp_path):
    """`--log tensorboard`: every scalar of metrics.jsonl per epoch, read back from the event files;
    `--deterministic` is in the run's config and the process's settings are as before after it."""
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from inborn.cli import main

    run = tmp_path / "run"
    assert main(["train", "--data", "digits", "--arch", "fc", "--width", "0.25", "--epochs", "2", "--adv", "none",
                 "--test-attack-steps", "1", "--quiet", "--log", "tensorboard", "--deterministic",
                 "--out", str(run)]) == 0
    assert not torch.are_deterministic_algorithms_enabled()
    assert RunDir(run).read_config()["config"]["deterministic"] is True
    events = EventAccumulator(str(run / "tensorboard"))
    events.Reload()
    history = RunDir(run).read_metrics()
    for key in ("train_loss", "train_acc", "val_clean_acc", "lr"):
        logged = [(e.step, e.value) for e in events.Scalars(f"epoch/{key}")]
        assert logged == [(h["epoch"] + 1, pytest.approx(h[key], rel=1e-6)) for h in history]
    summary = RunDir(run).read_summary()
    assert events.Scalars("test/robust_acc")[0].value == pytest.approx(summary["test"]["robust_acc"], rel=1e-6)


def test_log_tensorboard_without_the_package_is_one_line_before_any_write(tmp_path, monkeypatch, capsys):
    import importlib.util

    from inborn.cli import main

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "tensorboard" else real(name, *a))
    assert main(["train", "--data", "digits", "--arch", "fc", "--width", "0.25", "--epochs", "1", "--quiet",
                 "--log", "tensorboard", "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err.strip()
    assert err == "inborn: error: --log tensorboard needs the tensorboard package: pip install 'inborn[tensorboard]'"
    assert not (tmp_path / "run").exists()
