"""The results database under concurrent writers, and atomic run-directory files."""

from __future__ import annotations

import multiprocessing as mp

import pytest

from inborn.errors import InbornError
from inborn.io import atomic_write
from inborn.store import ResultsDB


def _writer(path: str, worker: int, rows: int) -> None:
    db = ResultsDB(path)
    for i in range(rows):
        db.add_results([{"run_path": f"/runs/w{worker}", "split": "test", "attack": "pgd", "eps": i / 1000,
                         "steps": 20, "n": 100, "clean_acc": 0.9, "robust_acc": 0.5, "hrs": 0.64}])


def test_concurrent_writers_lose_no_rows(tmp_path):
    path = str(tmp_path / "db.sqlite")
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_writer, args=(path, w, 60)) for w in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    assert len(ResultsDB(path).results()) == 4 * 60


def test_filters_and_unknown_columns(tmp_path):
    db = ResultsDB(tmp_path / "db.sqlite")
    db.upsert_run(tmp_path / "a", kind="train", status="complete", config={"data": "digits", "arch": "fc"})
    db.upsert_run(tmp_path / "b", kind="train", status="running", config={"data": "mnist5k", "arch": "conv4"})
    assert [r["arch"] for r in db.runs(data="digits")] == ["fc"]
    assert len(db.runs(arch="conv*")) == 1
    with pytest.raises(InbornError, match="cannot filter"):
        db.runs(colour="red")


def test_reading_a_missing_database_is_a_clear_error(tmp_path):
    with pytest.raises(InbornError, match="no results database"):
        ResultsDB(tmp_path / "missing.db").runs()


def test_atomic_write_keeps_the_old_file_when_writing_fails(tmp_path):
    target = tmp_path / "file.txt"
    target.write_text("old")

    def broken(path):
        path.write_text("half")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        atomic_write(target, broken)
    assert target.read_text() == "old"
    assert list(tmp_path.iterdir()) == [target]
