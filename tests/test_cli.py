"""The command line: a working round trip, and one-line errors that leave everything as it was."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys

import pytest
from safetensors.torch import save_file

from inborn.cli import main

TRAIN = ["train", "--data", "digits", "--arch", "conv2", "--width", "0.25", "--epochs", "1", "--quiet"]


def _snapshot(*paths):
    """Hash every file under the given paths, to prove that nothing changed."""
    out = {}
    for root in paths:
        if root.is_file():
            out[str(root)] = hashlib.sha256(root.read_bytes()).hexdigest()
        elif root.is_dir():
            for f in sorted(root.rglob("*")):
                if f.is_file():
                    out[str(f)] = hashlib.sha256(f.read_bytes()).hexdigest()
    return out


@pytest.fixture
def trained_run(tmp_path):
    run = tmp_path / "run"
    db = tmp_path / "db.sqlite"
    assert main([*TRAIN, "--adv", "pgd", "--eps", "0.1", "--adv-steps", "2", "--out", str(run), "--db", str(db)]) == 0
    return run, db


def test_train_eval_runs_round_trip(trained_run, capsys):
    run, db = trained_run
    capsys.readouterr()
    assert main(["eval", str(run), "--attack", "pgd,fgsm", "--eps", "0,0.05,0.1", "--steps", "3", "--n", "64",
                 "--db", str(db), "--json", "--quiet"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["n"] == 64
    assert len(result["results"]) == 6
    for w in result["worst_case"]:
        per_attack = [r["robust_acc"] for r in result["results"] if r["eps"] == w["eps"]]
        assert w["robust_acc"] <= min(per_attack) + 1e-9
        if w["eps"] == 0:
            assert w["robust_acc"] == pytest.approx(result["clean_acc"])
    assert (run / "eval.json").exists() and (run / "eval_robust_vs_eps.png").exists()
    assert main(["runs", "--results", "--db", str(db), "--csv"]) == 0
    csv_lines = capsys.readouterr().out.strip().splitlines()
    # The header, the training test's 3 rows (PGD, CW and their worst case), 6 (attack, ε) rows and 3
    # worst-case rows.
    assert len(csv_lines) == 1 + 3 + 6 + 3
    assert main(["runs", "--db", str(db)]) == 0
    assert "complete" in capsys.readouterr().out


def _fails_cleanly(args, capsys, expect):
    code = main(args)
    err = capsys.readouterr().err
    assert code != 0
    assert len(err.strip().splitlines()) == 1, err
    assert err.startswith("inborn: error:") and expect in err, err


@pytest.mark.parametrize("args, expect", [
    (["--arch", "nope"], "unknown model"),
    (["--data", "nope"], "unknown data set"),
    (["--data", "cifar10", "--data-dir", "/does/not/exist"], "does not exist"),
    (["--data", "cifar10"], "--data-dir"),
    (["--eps", "-0.1"], "ε must be >= 0"),
    (["--adv", "magic"], "unknown adversarial method"),
    (["--epochs", "0"], "epochs must be >= 1"),
])
def test_train_bad_input_is_one_line_and_writes_nothing(tmp_path, capsys, args, expect):
    out, db = tmp_path / "run", tmp_path / "db.sqlite"
    _fails_cleanly([*TRAIN, *args, "--out", str(out), "--db", str(db)], capsys, expect)
    assert not out.exists() and not db.exists()


@pytest.mark.parametrize("args, expect", [
    (["--attack", "nope"], "unknown attack"),
    (["--eps", "-0.3"], "ε must be >= 0"),
    (["--eps", "abc"], "cannot read ε"),
    (["--steps", "0"], "--steps: must be >= 1"),
])
def test_eval_bad_input_leaves_run_and_db_as_they_were(trained_run, capsys, args, expect):
    run, db = trained_run
    before = _snapshot(run, db)
    _fails_cleanly(["eval", str(run), *args, "--db", str(db)], capsys, expect)
    assert _snapshot(run, db) == before


def test_eval_of_a_missing_or_empty_run_dir(tmp_path, capsys):
    _fails_cleanly(["eval", str(tmp_path / "nowhere")], capsys, "does not exist")
    assert not (tmp_path / "nowhere").exists()
    (tmp_path / "empty").mkdir()
    _fails_cleanly(["eval", str(tmp_path / "empty")], capsys, "not a run directory")
    assert list((tmp_path / "empty").iterdir()) == []


def test_eval_of_a_run_without_checkpoint(trained_run, capsys):
    run, db = trained_run
    (run / "model.safetensors").unlink()
    before = _snapshot(run, db)
    _fails_cleanly(["eval", str(run), "--db", str(db)], capsys, "no checkpoint")
    assert _snapshot(run, db) == before


def test_eval_of_a_checkpoint_from_another_architecture(trained_run, tmp_path, capsys):
    import torch

    from inborn.models import create_model

    run, db = trained_run
    other = create_model("fc", num_classes=10, in_channels=1, image_size=16, width=0.25)
    save_file({k: v.contiguous() for k, v in other.state_dict().items()}, str(run / "model.safetensors"))
    before = _snapshot(run, db)
    _fails_cleanly(["eval", str(run), "--db", str(db)], capsys, "does not fit this model")
    assert _snapshot(run, db) == before
    (run / "model.safetensors").write_bytes(b"\x00garbage" * 10)
    _fails_cleanly(["eval", str(run), "--db", str(db)], capsys, "not a readable safetensors file")
    assert torch.__version__  # torch imported for create_model


def test_the_console_script_prints_one_line_and_exits_nonzero(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "inborn", "eval", str(tmp_path / "missing")],
                          capture_output=True, text=True)
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0 and "Traceback" not in proc.stderr
    proc = subprocess.run([sys.executable, "-m", "inborn", "train", "--bogus-flag"], capture_output=True, text=True)
    assert proc.returncode == 2 and proc.stderr.strip().count("\n") == 0


def test_listing_commands(capsys):
    for cmd, name in (("models", "preact_resnet18"), ("data", "mnist5k"), ("attacks", "autoattack")):
        assert main([cmd]) == 0
        assert name in capsys.readouterr().out
