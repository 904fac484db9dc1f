"""`inborn compare`: runs side by side, from the database, eval.json and summary.json, without building a model."""

from __future__ import annotations

import csv
import io

import pytest

from inborn.analysis.compare import WORST, Compared, Figure, compare_runs, comparison_rows
from inborn.cli import main
from inborn.io import is_inborn_figure
from inborn.store import ResultsDB

TINY = ["--data", "digits", "--arch", "conv2", "--width", "0.25", "--epochs", "1", "--quiet", "--eps", "0.1",
        "--adv-steps", "1", "--test-attack-steps", "2"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("compare")
    db = str(root / "inborn.db")
    assert main(["train", *TINY, "--out", str(root / "dense"), "--db", db]) == 0
    assert main(["search", *TINY, "--keep", "0.3", "--out", str(root / "ticket"), "--db", db]) == 0
    assert main(["eval", str(root / "dense"), "--attack", "pgd,fgsm", "--eps", "0.05,0.1", "--steps", "2",
                 "--quiet", "--db", db]) == 0
    return root, db


def _csv(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def test_compare_tables_a_dense_run_and_its_ticket_from_every_source(runs, capsys, tmp_path, monkeypatch):
    root, db = runs
    import inborn.spec.build as build

    def no_model(*a, **k):
        raise AssertionError("compare built a model")

    monkeypatch.setattr(build, "build_model", no_model)  # figures are read, never recomputed
    capsys.readouterr()
    out = tmp_path / "cmp.png"
    assert main(["compare", str(root / "dense"), str(root / "ticket"), "--csv", "--out", str(out), "--db", db]) == 0
    rows = {r["run"]: r for r in _csv(capsys.readouterr().out)}
    assert set(rows) == {"dense", "ticket"}
    dense, ticket = rows["dense"], rows["ticket"]
    assert ticket["keep"] == "0.3" and dense["keep"] == ""
    # conv2 width 0.25 on 16×16 digits, its conv and linear weights; the ticket keeps about 30 % of them.
    assert 0.28 < int(ticket["non-zero"]) / int(dense["non-zero"]) < 0.32
    # The eval's two ε and the training's own test attacks (PGD-2 and CW-2 at ε = 0.1) side by side.
    assert dense["fgsm ε=0.05"] and dense["pgd-2 ε=0.05"] and dense["cw-2 ε=0.1"]
    assert ticket["fgsm ε=0.05"] == "" and ticket["cw-2 ε=0.1"]
    # The worst case is the lowest figure at its ε, never above any single attack there.
    for r in rows.values():
        singles = [float(v) for k, v in r.items() if k.endswith("ε=0.1") and v and not k.startswith(("worst", "HRS"))]
        assert float(r["worst ε=0.1"]) <= min(singles)
    assert is_inborn_figure(out)


def test_the_worst_case_takes_the_lowest_figure_among_the_most_images():
    def fig(column, acc, n, created=0.0):
        return Figure(column=column, eps=0.1, robust_acc=acc, hrs=0.5, clean_acc=0.9, n=n, created=created)

    run = Compared(path=None, label="r", kind="train", arch="a", data="d", width=None, keep_ratio=None, nonzero=None,
                   figures=[fig("pgd-20", 0.40, 100), fig(WORST, 0.35, 100), fig("fgsm", 0.10, 8)])
    assert run.worst(0.1).robust_acc == 0.35  # the 8-image FGSM figure is not comparable
    row = comparison_rows([run])[0]
    assert row["worst ε=0.1"] == "0.3500" and row["n"] == "8-100"


def test_compare_finds_the_figures_without_the_database(runs, capsys):
    root, _ = runs
    compared = compare_runs([root / "ticket"], ResultsDB(root / "elsewhere.db"))
    assert compared[0].figures and compared[0].keep_ratio == 0.3  # from summary.json alone
