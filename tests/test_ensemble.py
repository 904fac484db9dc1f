"""Ensembles: the combine rules, attacks through every member, and `inborn ensemble`."""

from __future__ import annotations

import json
import shutil

import pytest
import torch
import torch.nn as nn
import yaml

import inborn
from helpers import Linear
from inborn.analysis.ensemble import evaluate_ensemble
from inborn.cli import main
from inborn.data import load_data
from inborn.errors import InbornError
from inborn.models.ensemble import Ensemble
from inborn.store import ResultsDB, RunDir

TRAIN = ["train", "--data", "digits", "--arch", "fc", "--width", "0.25", "--epochs", "1", "--quiet"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Two tiny runs on digits (different seeds) and 64 test images."""
    root = tmp_path_factory.mktemp("ens")
    db = str(root / "db")
    for seed in (0, 1):
        assert main([*TRAIN, "--seed", str(seed), "--out", str(root / f"m{seed}"), "--db", db]) == 0
    x, y = load_data("digits").test.head(64).tensors()
    return root, [root / "m0", root / "m1"], x, y


def _members(k=3, classes=5):
    return [Linear(12, classes, seed=i).eval() for i in range(k)]


def test_logits_combine_is_the_mean_of_member_logits():
    members = _members()
    x = torch.rand(4, 12)
    expected = torch.stack([m(x) for m in members]).mean(0)
    torch.testing.assert_close(Ensemble(members)(x), expected)


def test_softmax_combine_is_the_log_of_the_mean_probability():
    members = _members()
    x = torch.rand(4, 12)
    expected = torch.log(torch.stack([m(x).softmax(1) for m in members]).mean(0))
    out = Ensemble(members, "softmax")(x)
    torch.testing.assert_close(out, expected)
    torch.testing.assert_close(out.exp().sum(1), torch.ones(4))


def test_gradients_flow_through_every_member():
    members = _members()
    x = torch.rand(4, 12, requires_grad=True)
    Ensemble(members)(x).sum().backward()
    expected = torch.stack([m.fc.weight.sum(0) for m in members]).mean(0).expand(4, -1)
    torch.testing.assert_close(x.grad, expected)


def test_members_must_agree_on_the_class_count():
    ens = Ensemble([Linear(12, 5), Linear(12, 3)], names=["a", "b"])
    with pytest.raises(InbornError, match="disagree on the number of classes: a: 5, b: 3"):
        ens(torch.rand(2, 12))
    with pytest.raises(InbornError, match="unknown combine"):
        Ensemble(_members(), "median")


def test_pgd_on_the_ensemble_lowers_its_accuracy(runs):
    _, paths, x, y = runs
    ens = Ensemble([inborn.load(p) for p in paths]).eval()
    res = inborn.evaluate(ens, (x, y), eps=0.1, steps=5)
    assert res["results"][0]["robust_acc"] < res["clean_acc"]
    out = evaluate_ensemble(ens, x, y, eps=0.1, steps=5)
    assert out["ensemble"]["robust"] == res["results"][0]["robust_acc"]
    assert len(out["members"]) == 2
    for m in out["members"]:
        assert m["robust"] <= m["clean"] and out["ensemble"]["transfer_worst"] <= m["transfer"]
        assert m["transfer"] <= out["ensemble"]["clean"]


def test_ensemble_command_writes_its_files_and_eval_works_on_it(runs, tmp_path, capsys):
    _, paths, _, _ = runs
    out = tmp_path / "ens"
    db = str(tmp_path / "db")
    args = ["ensemble", *map(str, paths), "--combine", "softmax", "--out", str(out), "--n", "32", "--steps", "3",
            "--eps", "0.1", "--quiet", "--db", db]
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "ensemble" in printed and "transfer" in printed
    doc = RunDir(out).read_config()
    assert doc["kind"] == "ensemble" and doc["config"]["combine"] == "softmax"
    assert doc["config"]["members"] == [str(p.resolve()) for p in paths]
    assert not (out / RunDir.MODEL).exists()  # no weights copied
    result = json.loads((out / "ensemble.json").read_text())
    assert result["n"] == 32 and len(result["members"]) == 2
    assert "transfer-from-member" in (out / "ensemble.md").read_text()
    assert {r["attack"] for r in ResultsDB(db).results(run_path=str(out.resolve()))} >= {"pgd", "transfer-pgd:worst"}
    assert isinstance(inborn.load(out), Ensemble)
    assert main(["eval", str(out), "--n", "32", "--steps", "3", "--quiet", "--db", db]) == 0
    assert (out / "eval.json").exists()


def _one_line_error(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    return err


def test_members_with_other_class_counts_or_data_sets_are_refused(runs, tmp_path, capsys):
    from inborn.runs import save_model
    from inborn.spec import build_model

    _, paths, _, _ = runs
    doc = RunDir(paths[1]).read_config()
    spec = {**doc["model"], "num_classes": 5}
    five = RunDir(tmp_path / "five")
    five.write_config(doc["config"], spec, kind="train")
    save_model(five, build_model(spec), spec)
    out = tmp_path / "ens"
    assert main(["ensemble", str(paths[0]), str(five.path), "--out", str(out), "--quiet"]) == 2
    assert "disagree on the number of classes" in _one_line_error(capsys)
    assert not out.exists()

    other = tmp_path / "other"
    shutil.copytree(paths[1], other)
    cfg = yaml.safe_load((other / "config.yaml").read_text())
    cfg["config"]["data"] = "mnist5k"
    (other / "config.yaml").write_text(yaml.safe_dump(cfg))
    assert main(["ensemble", str(paths[0]), str(other), "--out", str(out), "--quiet"]) == 2
    assert "different data sets" in _one_line_error(capsys)
    assert not out.exists()


def test_a_missing_run_is_refused(runs, tmp_path, capsys):
    _, paths, _, _ = runs
    out = tmp_path / "ens"
    assert main(["ensemble", str(paths[0]), str(tmp_path / "nope"), "--out", str(out), "--quiet"]) == 2
    assert "does not exist" in _one_line_error(capsys)
    assert not out.exists()
    # nor may the ensemble overwrite another run
    assert main(["ensemble", str(paths[0]), "--out", str(paths[1]), "--quiet"]) == 2
    assert "already holds a train run" in _one_line_error(capsys)


def test_an_ensemble_counts_as_one_model_for_flops_and_parameters():
    from inborn.analysis.flops import count_flops, count_parameters

    members = [nn.Sequential(nn.Flatten(), nn.Linear(12, 5)) for _ in range(2)]
    ens = Ensemble(members)
    assert count_parameters(ens) == 2 * (12 * 5 + 5)
    assert count_flops(ens, (1, 3, 4)) == 2 * 12 * 5
