"""Model cards (`inborn card`) and `inborn.benchmark`, RobustBench's habits."""

from __future__ import annotations

import json

import pytest

import inborn
from inborn.cli import main
from inborn.store import RunDir

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
    card_doc = json.loads(card.read_text())
    c = card_doc["inborn"]
    assert c["partial"] is True and c["n"] == 24 and c["reported"] == 0.5 and c["eps"] == pytest.approx(0.3)
    assert card_doc["architecture"] == "fc" and card_doc["number_forward_passes"] == 1
    assert card_doc["additional_data"] is False and card_doc["unreliable"] is True  # partial: not a full evaluation
    assert set(c) >= {"threat_model", "clean_acc", "autoattack_acc", "evaluation", "fingerprint", "version"}
    assert c["kind"] == "train" and c["width"] == RunDir(run).read_config()["model"]["width"]
    # The same figures as RobustBench's benchmark call returns on the same images.
    clean, robust = inborn.benchmark(inborn.load(run), n_examples=24, dataset="digits", eps=0.3, batch_size=256,
                                     data_dir=None, device="cpu")
    assert (clean, robust) == (pytest.approx(c["clean_acc"]), pytest.approx(c["autoattack_acc"]))
    # RobustBench's own shape: percent strings with two decimals, ε as text.
    assert card_doc["clean_acc"] == f"{100 * clean:.2f}" and card_doc["autoattack_acc"] == f"{100 * robust:.2f}"
    assert card_doc["eps"] == "0.3" and card_doc["reported"] == "50.00" and "24 of the" in card_doc["footnote"]


def test_card_of_an_ensemble_counts_its_members(trained, capsys, tmp_path):
    (a, b), db = trained
    ens = tmp_path / "ens"
    assert main(["ensemble", str(a), str(b), "--out", str(ens), "--db", str(db), "--attack", "autoattack",
                 "--n", "24", "--quiet"]) == 0
    assert main(["card", str(ens), "--db", str(db), "--partial"]) == 0
    c = json.loads((ens / "card.json").read_text())
    assert c["number_forward_passes"] == 2 and c["inborn"]["ensemble_members"] == 2 and c["inborn"]["partial"] is True


@pytest.mark.parametrize("kwargs, expect", [({"threat_model": "L2"}, "not supported"),
                                            ({"n_examples": 0}, "must be >= 1"),
                                            ({"to_disk": True}, "to_disk is not supported")])
def test_benchmark_bad_arguments(digits_model, kwargs, expect):
    model, _, _ = digits_model
    with pytest.raises(inborn.errors.InbornError, match=expect):
        inborn.benchmark(model, **{"dataset": "digits", **kwargs})


# RobustBench's model_info fields (robustbench/model_info/cifar10/Linf/*.json, e.g. Sehwag2020Hydra.json
# and Xiao2020Enhancing.json in RobustBench/robustbench): every entry has the first set, some the second.
ROBUSTBENCH_FIELDS = {"link": str, "name": str, "authors": str, "additional_data": bool, "number_forward_passes": int,
                      "dataset": str, "venue": str, "architecture": str, "eps": str, "clean_acc": str,
                      "reported": str, "autoattack_acc": str}
ROBUSTBENCH_OPTIONAL = {"footnote": str, "external": str, "unreliable": bool}


def test_a_card_is_a_robustbench_model_info_entry(trained, capsys, tmp_path):
    (run, _), db = trained
    assert main(["eval", str(run), "--attack", "autoattack", "--db", str(db), "--quiet"]) == 0
    card = tmp_path / "entry.json"
    assert main(["card", str(run), "--db", str(db), "--out", str(card), "--name", "My scratch ticket",
                 "--authors", "A. B, C. D", "--venue", "NeurIPS 2021", "--link", "https://example.org/paper"]) == 0
    entry = json.loads(card.read_text())
    for field, kind in ROBUSTBENCH_FIELDS.items():
        assert isinstance(entry[field], kind), field
    extra = set(entry) - set(ROBUSTBENCH_FIELDS) - set(ROBUSTBENCH_OPTIONAL)
    assert extra == {"inborn"}  # inborn's own figures and provenance under one key
    for field, kind in ROBUSTBENCH_OPTIONAL.items():
        assert field not in entry or isinstance(entry[field], kind)
    assert entry["unreliable"] is False and entry["venue"] == "NeurIPS 2021" and entry["reported"] == ""
    for field in ("clean_acc", "autoattack_acc"):  # "88.98": a percentage with two decimals
        whole, _, decimals = entry[field].partition(".")
        assert whole.isdigit() and len(decimals) == 2 and 0 <= float(entry[field]) <= 100


def test_eps_is_written_as_robustbench_does():
    from inborn.analysis.card import eps_text

    assert [eps_text(e) for e in (8 / 255, 2 / 255, 0.3, 0.1, 0.031, 0.5)] == \
        ["8/255", "2/255", "0.3", "0.1", "0.031", "0.5"]
