"""`inborn sweep`: grid parsing, a local sweep that skips what is done, and Ray giving the same table."""

from __future__ import annotations

import csv
import importlib.util
import sqlite3

import pytest

from inborn.cli import main
from inborn.errors import InbornError
from inborn.sweep import attempts, expand, parse_grid, plan_cells, run_cells, write_report
from inborn.sweep.grid import canonical_key, cell_name

# A search cell that takes a few seconds: fc at width 0.25 on digits, one epoch, one-step attacks.
BASE = """\
kind: search
data: digits
arch: fc
width: 0.25
epochs: 1
adv_steps: 1
select_attack_steps: 1
test_attack_steps: 1
"""
GRID = ["keep=0.3,0.6"]


def test_grid_values_are_typed_like_yaml_scalars():
    grid = parse_grid(["lr=0.1,1e-3", "epochs=1,2", "adv=pgd,none", "eps=8/255", "augment=true,false",
                       "milestones=[1,2],[3]", "keep=0.1", "ticket.pattern=2:4", "model_kwargs.depth=3"])
    assert grid["lr"] == [0.1, 0.001] and all(type(v) is float for v in grid["lr"])
    assert grid["epochs"] == [1, 2] and all(type(v) is int for v in grid["epochs"])
    assert grid["adv"] == ["pgd", "none"]
    assert grid["eps"] == [pytest.approx(8 / 255)]
    assert grid["augment"] == [True, False]
    assert grid["milestones"] == [[1, 2], [3]]
    assert grid["ticket.pattern"] == ["2:4"]
    assert canonical_key("keep") == "ticket.keep_ratio"


@pytest.mark.parametrize(("spec", "message"), [
    ("colour=red", "unknown grid key 'colour'"),
    ("lr=", "empty grid value"),
    ("lr=0.1,,0.2", "empty grid value"),
    ("lr", "must read key=v1,v2"),
    ("lr.x=1", "not a mapping"),
    ("ticket.colour=1", "unknown grid key 'ticket.colour'"),
    ("epochs=many", "takes int"),
    ("keep=yes", "takes float"),
])
def test_bad_grid_specs_are_one_line_errors(spec, message):
    with pytest.raises(InbornError, match=message):
        parse_grid([spec])


def test_a_key_given_twice_is_refused():
    with pytest.raises(InbornError, match="given twice"):
        parse_grid(["keep=0.1", "ticket.keep_ratio=0.2"])


def test_expansion_is_the_cartesian_product_over_the_base():
    base = {"data": "digits", "ticket": {"keep_ratio": 0.5, "pattern": "element"}}
    cells = expand(base, parse_grid(["lr=0.1,0.05", "keep=0.1,0.2,0.3", "ticket.pattern=2:4"]))
    assert len(cells) == 6
    values, config = cells[1]
    assert values == {"lr": 0.1, "keep": 0.2, "ticket.pattern": "2:4"}
    assert config == {"data": "digits", "lr": 0.1, "ticket": {"keep_ratio": 0.2, "pattern": "2:4"}}
    assert base["ticket"] == {"keep_ratio": 0.5, "pattern": "element"}  # the base is not touched
    assert cell_name(values) == "lr=0.1,keep=0.2,ticket.pattern=2_4"
    assert cell_name({"data_dir": "a/b", "milestones": [1, 2]}) == "data_dir=a_b,milestones=_1__2_"


def test_plan_checks_every_cell_before_anything_runs(tmp_path):
    cfg = tmp_path / "base.yaml"
    cfg.write_text("kind: search\ndata: digits\narch: fc\n")
    with pytest.raises(InbornError, match="needs a keep ratio"):
        plan_cells(cfg, ["lr=0.1"], tmp_path / "out")
    cfg.write_text("data: digits\narch: no-such-model\n")
    with pytest.raises(InbornError, match="no-such-model"):
        plan_cells(cfg, ["lr=0.1"], tmp_path / "out")
    cfg.write_text("data: digits\ncolour: red\n")
    with pytest.raises(InbornError, match="unknown keys colour"):
        plan_cells(cfg, ["lr=0.1"], tmp_path / "out")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(("args", "message"), [
    (["missing.yaml", "--grid", "lr=0.1"], "does not exist"),
    (["BASE", "--grid", "colour=red"], "unknown grid key"),
    (["BASE", "--grid", "lr="], "empty grid value"),
    (["BASE", "--grid", "lr=0.1", "--executor", "slurm"], "unknown executor 'slurm'"),
    (["BASE"], "at least one --grid"),
])
def test_cli_mistakes_are_one_line_and_exit_2(tmp_path, capsys, args, message):
    (tmp_path / "base.yaml").write_text(BASE)
    args = [str(tmp_path / "base.yaml") if a == "BASE" else str(tmp_path / a) if a.endswith(".yaml") else a
            for a in args]
    assert main(["sweep", *args, "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
    assert not (tmp_path / "out").exists()


@pytest.fixture(scope="module")
def local_sweep(tmp_path_factory):
    """One real local sweep of two tiny search cells, shared by the tests below."""
    root = tmp_path_factory.mktemp("sweep")
    (root / "base.yaml").write_text(BASE)
    db = root / "results.db"
    code = main(["sweep", str(root / "base.yaml"), *sum((["--grid", g] for g in GRID), []), "--out", str(root / "out"),
                 "--max-parallel", "2", "--cpus-per-run", "1", "--db", str(db), "--quiet"])
    return root, db, code


def _rows(path):
    with open(path) as f:
        return list(csv.DictReader(f))


def test_local_sweep_runs_every_cell_and_writes_the_tables(local_sweep):
    root, db, code = local_sweep
    assert code == 0
    rows = _rows(root / "out/sweep.csv")
    assert [r["keep"] for r in rows] == ["0.3", "0.6"]
    assert all(r["status"] == "complete" and 0 < float(r["clean_acc"]) <= 1 for r in rows)
    assert "| keep | status | clean_acc | robust_acc |" in (root / "out/sweep.md").read_text()
    with sqlite3.connect(db) as c:
        assert c.execute("SELECT COUNT(*), MIN(status), MAX(status) FROM runs").fetchone() == (2, *["complete"] * 2)
        assert c.execute("SELECT COUNT(*) FROM results").fetchone() == (6,)  # per run: PGD, CW, their worst case


def test_rerunning_a_sweep_skips_its_complete_cells(local_sweep, capsys):
    root, db, _ = local_sweep
    cells = plan_cells(root / "base.yaml", GRID, root / "out")
    before = {c.name: (c.out / "summary.json").stat().st_mtime_ns for c in cells}
    results = run_cells(cells, db=db, progress=False)
    assert [r.status for r in results] == ["skipped", "skipped"]
    assert {c.name: (c.out / "summary.json").stat().st_mtime_ns for c in cells} == before
    assert [attempts(c) for c in cells] == [1, 1]
    assert all(r.summary["test"]["clean_acc"] > 0 for r in results)


def test_a_changed_base_config_is_not_mixed_into_an_old_sweep(local_sweep, tmp_path):
    root, db, _ = local_sweep
    (tmp_path / "base.yaml").write_text(BASE.replace("epochs: 1", "epochs: 2"))
    cells = plan_cells(tmp_path / "base.yaml", GRID, root / "out")
    with pytest.raises(InbornError, match="made with other settings"):
        run_cells(cells, db=db, progress=False)


@pytest.mark.skipif(importlib.util.find_spec("ray") is None, reason="ray is not installed")
def test_ray_executor_gives_the_same_table_as_local(local_sweep, tmp_path):
    root, db, _ = local_sweep
    cells = plan_cells(root / "base.yaml", GRID, tmp_path / "ray")
    ray_db = tmp_path / "ray.db"
    results = run_cells(cells, "ray", max_parallel=2, cpus_per_run=1, db=ray_db, progress=False)
    assert [r.status for r in results] == ["complete", "complete"], [r.log_tail for r in results]
    write_report(tmp_path / "ray", results)
    local_rows, ray_rows = _rows(root / "out/sweep.csv"), _rows(tmp_path / "ray/sweep.csv")
    assert ray_rows == local_rows
    # The runs wrote their own cell.db on the workers; the driver copied the rows into its database.
    with sqlite3.connect(ray_db) as c:
        assert c.execute("SELECT COUNT(*) FROM runs WHERE status = 'complete'").fetchone() == (2,)
        assert c.execute("SELECT COUNT(*) FROM results").fetchone() == (6,)  # per run: PGD, CW, their worst case
    assert [r.status for r in run_cells(cells, "ray", db=ray_db, progress=False)] == ["skipped", "skipped"]


def test_missing_ray_is_a_one_line_error(monkeypatch, tmp_path):
    import builtins

    real_import = builtins.__import__

    def no_ray(name, *args, **kwargs):
        if name == "ray":
            raise ImportError("No module named 'ray'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_ray)
    (tmp_path / "base.yaml").write_text(BASE)
    cells = plan_cells(tmp_path / "base.yaml", GRID, tmp_path / "out")
    with pytest.raises(InbornError, match=r"pip install 'inborn\[ray\]'"):
        run_cells(cells, "ray", db=tmp_path / "db.sqlite", progress=False)
    assert not (tmp_path / "out").exists()


def test_a_failing_cell_is_reported_and_the_others_go_on(tmp_path, capsys):
    # finetune from a ticket whose weights are gone: only a worker can find out (the parent checks
    # the ticket's config), so each cell fails fast, inside its own process.
    from inborn.store import RunDir

    ticket = RunDir(tmp_path / "no-weights")
    ticket.path.mkdir()
    ticket.write_config({"data": "digits", "arch": "fc"}, {"arch": "fc", "supermask": {"keep_ratio": 0.5}},
                        kind="search")
    (tmp_path / "base.yaml").write_text("kind: finetune\ndata: digits\narch: fc\nepochs: 1\n"
                                        f"finetune: {{ticket: {ticket.path}}}\n")
    code = main(["sweep", str(tmp_path / "base.yaml"), "--grid", "finetune.weights=inherit,reinit",
                 "--out", str(tmp_path / "out"), "--max-parallel", "2", "--db", str(tmp_path / "db"), "--quiet"])
    assert code == 1
    err = capsys.readouterr().err
    assert "cell finetune.weights=inherit failed (exit 2)" in err and "no-weights" in err
    assert [r["status"] for r in _rows(tmp_path / "out/sweep.csv")] == ["failed", "failed"]


def test_a_cell_that_cannot_run_is_one_line_before_any_worker_or_directory(tmp_path, capsys):
    (tmp_path / "base.yaml").write_text("kind: finetune\ndata: digits\narch: fc\nepochs: 1\n"
                                        f"finetune: {{ticket: {tmp_path / 'no-ticket'}}}\n")
    code = main(["sweep", str(tmp_path / "base.yaml"), "--grid", "finetune.weights=inherit,reinit",
                 "--out", str(tmp_path / "out"), "--db", str(tmp_path / "db"), "--quiet"])
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1 and "no-ticket" in err, err
    assert not (tmp_path / "out").exists() and not (tmp_path / "db").exists()


def test_local_gpu_slots_give_each_run_its_own_devices(monkeypatch):
    import torch

    from inborn.sweep.executors import default_parallel, gpu_slots

    monkeypatch.setattr(torch.cuda, "device_count", lambda: 4)
    assert gpu_slots(1) == [[0], [1], [2], [3]]
    assert gpu_slots(2) == [[0, 1], [2, 3]]
    assert gpu_slots(0.5) == [[0], [1], [2], [3], [0], [1], [2], [3]]
    assert default_parallel(2) == 2
    with pytest.raises(InbornError, match="whole number up to 4"):
        gpu_slots(8)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 0)
    with pytest.raises(InbornError, match="no GPU"):
        gpu_slots(1)
