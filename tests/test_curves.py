"""Training curves: curves.png redrawn every epoch of train/search/finetune, and `inborn runs --plot`;
and `inborn runs --results` filtered by the runs' model and data set."""

from __future__ import annotations

import pytest

import inborn.train.loop as loop
from inborn.cli import main

FAST = ["--epochs", "2", "--adv-steps", "2", "--eps", "0.1", "--quiet"]
PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("curves")
    db = root / "db.sqlite"
    dense, ticket, natural = root / "dense", root / "ticket", root / "natural"
    assert main(["train", "--data", "digits", "--arch", "fc", "--width", "0.25", "--adv", "pgd", "--out", str(dense),
                 "--db", str(db), *FAST]) == 0
    assert main(["search", "--data", "digits", "--arch", "conv2", "--width", "0.25", "--keep", "0.3",
                 "--out", str(ticket), "--db", str(db), *FAST]) == 0
    assert main(["train", "--data", "digits", "--arch", "fc", "--width", "0.25", "--epochs", "1",
                 "--out", str(natural), "--db", str(db), "--quiet"]) == 0
    return dense, ticket, natural, db


def test_every_run_writes_curves_png(runs):
    for run in runs[:3]:
        assert (run / "curves.png").read_bytes()[:8] == PNG


def test_curves_are_redrawn_after_every_epoch(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(loop, "write_curves", lambda path, history, selected, title: calls.append(
        (len(history), selected, title)))
    assert main(["train", "--data", "digits", "--arch", "fc", "--width", "0.25", "--epochs", "3", "--out",
                 str(tmp_path / "r"), "--quiet"]) == 0
    assert [c[0] for c in calls] == [1, 2, 3]  # once per epoch, with the history so far
    assert all(0 <= c[1] < c[0] for c in calls) and "fc width 0.25 on digits (natural)" in calls[0][2]


def test_runs_plot_draws_several_runs(runs, tmp_path, capsys):
    dense, ticket, natural, _ = runs
    out = tmp_path / "both.png"
    assert main(["runs", "--plot", str(dense), str(ticket), "--out", str(out)]) == 0
    assert out.read_bytes()[:8] == PNG and f"plot: {out}" in capsys.readouterr().out


@pytest.mark.parametrize("which, extra, expect", [
    ("natural", [], "has no validation robust accuracy"),
    ("missing", [], "does not exist"),
    ("dense", ["--out", "x.pdf"], "name it .png"),
    (None, ["--out", "x.png"], "--out names the figure of --plot"),
])
def test_runs_plot_bad_input(runs, tmp_path, capsys, which, extra, expect):
    dense, _, natural, db = runs
    path = {"natural": natural, "missing": tmp_path / "nope", "dense": dense}.get(which)
    args = ["runs", *(["--plot", str(path)] if path else []), *extra, "--db", str(db)]
    assert main([a.replace("x.", str(tmp_path / "x.")) for a in args]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and expect in err, err
    assert not list(tmp_path.glob("x.*"))


def test_runs_results_arch_filter(runs, capsys):
    dense, ticket, _, db = runs
    capsys.readouterr()
    assert main(["runs", "--results", "--arch", "conv2", "--db", str(db), "--csv"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    # the header and the ticket's test rows: PGD-20, CW-20 and their worst case
    assert len(lines) == 4 and all(str(ticket.resolve()) in line for line in lines[1:])
    assert main(["runs", "--results", "--arch", "fc", "--data", "digits", "--db", str(db), "--csv"]) == 0
    paths = capsys.readouterr().out
    assert str(dense.resolve()) in paths and str(ticket.resolve()) not in paths
