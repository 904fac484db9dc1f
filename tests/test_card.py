"""Model cards (`inborn card`) and `inborn.benchmark`, RobustBench's habits."""

from __future__ import annotations

import json

import pytest

import inborn
from inborn.cli import main

FAST = ["--epochs", "1", "--quiet"]  # natural training: AutoAttack breaks it fast


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("card")
    db = root / "db.sqlite"
    runs = []
    for seed in (0, 1):
        out = root / f"dense{seed}"
        assert main(["train", "--data", "digits", "--arch", "fc", "--width", "0.25", "--adv", "none", "--eps", "0.3",
                     "--seed", str(seed), "--out", str(out), "--db", str(db), *FAST]) == 0
        runs.append(out)
    return runs, db


def _error(args, capsys, expect):
    capsys.readouterr()
    assert main(args) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and expect in err, err


def test_card_refused_without_autoattack_then_partial_then_full(trained, capsys, tmp_path):
    (run, _), db = trained
    card = tmp_path / "card.json"
    _error(["card", str(run), "--db", str(db), "--out", str(card)], capsys, "no AutoAttack evaluation")
    assert not card.exists()
    assert main(["eval", str(run), "--attack", "autoattack", "--n", "24", "--db", str(db), "--quiet"]) == 0
    _error(["card", str(run), "--db", str(db), "--out", str(card)], capsys, "only of 24")
    assert main(["card", str(run), "--db", str(db), "--out", str(card), "--partial", "--reported", "0.5"]) == 0
    c = json.loads(card.read_text())
    assert c["partial"] is True and c["n"] == 24 and c["reported"] == 0.5 and c["eps"] == pytest.approx(0.3)
    assert c["architecture"] == "fc" and c["number_forward_passes"] == 1 and c["additional_data"] is False
    assert set(c) >= {"name", "dataset", "threat_model", "clean_acc", "autoattack_acc", "evaluation",
                      "fingerprint", "inborn_version"}
    # The same figures as RobustBench's benchmark call returns on the same images.
    clean, robust = inborn.benchmark(inborn.load(run), n_examples=24, dataset="digits", eps=0.3, batch_size=256,
                                     data_dir=None, device="cpu")
    assert (clean, robust) == (pytest.approx(c["clean_acc"]), pytest.approx(c["autoattack_acc"]))


def test_card_of_an_ensemble_counts_its_members(trained, capsys, tmp_path):
    (a, b), db = trained
    ens = tmp_path / "ens"
    assert main(["ensemble", str(a), str(b), "--out", str(ens), "--db", str(db), "--attack", "autoattack",
                 "--n", "24", "--quiet"]) == 0
    assert main(["card", str(ens), "--db", str(db), "--partial"]) == 0
    c = json.loads((ens / "card.json").read_text())
    assert c["number_forward_passes"] == 2 and c["ensemble_members"] == 2 and c["partial"] is True


@pytest.mark.parametrize("kwargs, expect", [({"threat_model": "L2"}, "not supported"),
                                            ({"n_examples": 0}, "must be >= 1"),
                                            ({"to_disk": True}, "to_disk is not supported")])
def test_benchmark_bad_arguments(digits_model, kwargs, expect):
    model, _, _ = digits_model
    with pytest.raises(inborn.errors.InbornError, match=expect):
        inborn.benchmark(model, **{"dataset": "digits", **kwargs})
