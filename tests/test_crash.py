"""Crash safety: SIGKILL a search or a whole sweep and resume it; many processes writing the DB at once.

Imports at the top stay light: the spawned DB writers import this module.
"""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
# One thread per run: the tests start two at once on a 2-core machine.
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
SEARCH = ["--data", "digits", "--arch", "conv2", "--width", "0.25", "--keep", "0.3", "--epochs", "3",
          "--adv-steps", "2", "--seed", "1", "--quiet"]
FEW_ATTACK_STEPS = "select_attack_steps: 2\ntest_attack_steps: 2\n"  # the selection and test attacks


def _inborn(*args: str) -> list[str]:
    return [sys.executable, "-m", "inborn", *args]


def _wait_for_epochs(run: Path, n: int, proc: subprocess.Popen, timeout: float = 600, stderr: Path | None = None,
                     ) -> None:
    """Wait for epoch `n` of `run`; a slow, loaded machine gets minutes, not seconds."""
    deadline = time.time() + timeout
    metrics = run / "metrics.jsonl"
    while time.time() < deadline:
        if metrics.exists() and len(metrics.read_text().splitlines()) >= n:
            return
        if proc.poll() is not None:
            raise AssertionError(f"the process ended (exit {proc.returncode}) before epoch {n} of {run} was "
                                 f"recorded:\n{_what_it_said(run, stderr)}")
        time.sleep(0.01)
    raise AssertionError(f"no epoch {n} in {metrics} after {timeout}s:\n{_what_it_said(run, stderr)}")


def _what_it_said(run: Path, stderr: Path | None) -> str:
    """The process's stderr and every cell log beside `run`, for a failure message."""
    parts = [f"stderr: {stderr.read_text(errors='replace')}"] if stderr is not None and stderr.exists() else []
    for log in sorted(run.parent.glob("*/cell.log")):
        parts.append(f"{log}: {log.read_text(errors='replace')[-3000:]}")
    return "\n".join(parts)


def _history(run: Path) -> list[dict]:
    lines = (run / "metrics.jsonl").read_text().splitlines()
    return [{k: v for k, v in json.loads(line).items() if k != "seconds"} for line in lines]


def _integrity(db: Path) -> str:
    with sqlite3.connect(db) as c:
        return c.execute("PRAGMA integrity_check").fetchone()[0]


def test_a_killed_search_resumes_to_the_uninterrupted_result(tmp_path):
    import torch
    from safetensors.torch import load_file

    db = str(tmp_path / "db.sqlite")
    (tmp_path / "steps.yaml").write_text(FEW_ATTACK_STEPS)
    search = [*SEARCH, "--config", str(tmp_path / "steps.yaml"), "--db", db]
    # The uninterrupted run and the one to kill, side by side.
    full = subprocess.Popen(_inborn("search", *search, "--out", str(tmp_path / "full")), env=ENV,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    cut = subprocess.Popen(_inborn("search", *search, "--out", str(tmp_path / "cut")), env=ENV,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _wait_for_epochs(tmp_path / "cut", 1, cut)
    cut.kill()  # SIGKILL: no handler runs, no file is closed cleanly
    assert cut.wait() == -signal.SIGKILL
    assert not (tmp_path / "cut/summary.json").exists()
    assert full.wait() == 0, full.stderr.read()

    resumed = subprocess.run(_inborn("search", "--out", str(tmp_path / "cut"), "--resume", "--db", db, "--quiet"),
                             env=ENV, capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr
    a, b = load_file(tmp_path / "full/model.safetensors"), load_file(tmp_path / "cut/model.safetensors")
    assert a.keys() == b.keys() and any("mask" in k or "score" in k for k in a)
    for key in a:
        assert torch.equal(a[key], b[key]), key
    assert _history(tmp_path / "full") == _history(tmp_path / "cut")
    summaries = [json.loads((tmp_path / r / "summary.json").read_text()) for r in ("full", "cut")]
    assert summaries[0]["test"] == summaries[1]["test"]
    assert _integrity(tmp_path / "db.sqlite") == "ok"


def _sweep_processes(marker: str) -> list[int]:
    """Processes whose command line names `marker` (Linux /proc)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if marker in (entry / "cmdline").read_bytes().decode(errors="replace"):
                    pids.append(int(entry.name))
            except OSError:
                continue
    return [p for p in pids if p != os.getpid()]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_a_killed_sweep_resumes_without_losing_or_repeating_a_cell(tmp_path):
    base = tmp_path / "base.yaml"
    base.write_text("kind: search\ndata: digits\narch: fc\nwidth: 0.25\nepochs: 3\nadv_steps: 2\n" + FEW_ATTACK_STEPS)
    out, db = tmp_path / "sweep", tmp_path / "db.sqlite"
    cmd = _inborn("sweep", str(base), "--grid", "keep=0.2,0.4,0.6", "--out", str(out), "--max-parallel", "2",
                  "--cpus-per-run", "1", "--db", str(db), "--quiet")
    stderr = tmp_path / "sweep.stderr"
    with open(stderr, "w") as err:
        sweep = subprocess.Popen(cmd, env=ENV, stdout=subprocess.DEVNULL, stderr=err)
    first = out / "keep=0.2"
    _wait_for_epochs(first, 1, sweep, stderr=stderr)
    sweep.kill()
    assert sweep.wait() == -signal.SIGKILL
    # Its runs die with it (PDEATHSIG), so none goes on writing beside the resumed sweep.
    deadline = time.time() + 120
    while _sweep_processes(str(out)) and time.time() < deadline:
        time.sleep(0.1)
    assert _sweep_processes(str(out)) == [], "a run outlived its killed sweep"
    assert not (first / "summary.json").exists()
    from inborn.sweep import attempts, plan_cells

    cells = plan_cells(base, ["keep=0.2,0.4,0.6"], out)
    # What each cell was at the kill: not started, complete (on a busy machine keep=0.4 can finish
    # before keep=0.2 records an epoch), or in flight, to be started again and resumed.
    # A cell counts as started from its first start line, not from its directory: the sweep writes
    # a cell's files just before starting it, and the kill can fall in between.
    state = ["new" if attempts(c) == 0 else "complete" if (c.out / "summary.json").exists() else "in flight"
             for c in cells]
    assert state[0] == "in flight"

    resumed = subprocess.run([*cmd, "--max-parallel", "3"], env=ENV, capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr + _what_it_said(first, None)

    for cell in cells:  # every cell has each epoch exactly once
        assert [h["epoch"] for h in _history(cell.out)] == [0, 1, 2], (cell.name, resumed.stderr)
        assert (cell.out / "summary.json").exists()
    logs = {c.name: (c.out / "cell.log").read_text() for c in cells}
    assert [attempts(c) for c in cells] == [2 if s == "in flight" else 1 for s in state], logs
    starts = [line for line in (first / "cell.log").read_text().splitlines() if line.startswith("== start")]
    assert not starts[0].endswith("--resume") and starts[1].endswith("--resume")
    with sqlite3.connect(db) as c:
        runs = c.execute("SELECT path, status FROM runs ORDER BY path").fetchall()
        results = c.execute("SELECT run_path, COUNT(*) FROM results GROUP BY run_path ORDER BY run_path").fetchall()
    assert runs == [(str(c.out), "complete") for c in sorted(cells, key=lambda c: str(c.out))]
    # one test evaluation per run: PGD, CW and their worst case
    assert results == [(str(c.out), 3) for c in sorted(cells, key=lambda c: str(c.out))]
    assert _integrity(db) == "ok"
    rows = (out / "sweep.csv").read_text().splitlines()[1:]
    assert [r.split(",")[1] for r in rows] == ["skipped" if s == "complete" else "complete" for s in state], rows


def _writer(src: str, path: str, worker: int, rows: int, start: mp.Event) -> None:
    # Load inborn.store.db without inborn/__init__ (which imports torch): 8 spawned torch imports
    # would take longer on 2 cores than the test itself. db.py needs only inborn.errors.
    import types

    for name in ("inborn", "inborn.store"):
        package = types.ModuleType(name)
        package.__path__ = [str(Path(src, *name.split(".")))]
        sys.modules[name] = package
    from inborn.store.db import ResultsDB

    db = ResultsDB(path)
    batch = [{"run_path": f"/runs/w{worker}", "split": "test", "attack": "pgd", "eps": i / 1000, "steps": 20,
              "n": 100, "clean_acc": 0.9, "robust_acc": 0.5, "hrs": 0.64} for i in range(rows)]
    start.wait(60)  # all writers start together, on a database none has created yet
    db.add_results(batch)
    db.upsert_run(f"/runs/w{worker}", kind="train", status="complete", config={"data": "digits"})


def test_eight_processes_writing_at_once_lose_no_row(tmp_path):
    path = tmp_path / "db.sqlite"
    ctx = mp.get_context("spawn")
    start = ctx.Event()
    procs = [ctx.Process(target=_writer, args=(str(SRC), str(path), w, 500, start)) for w in range(8)]
    for p in procs:
        p.start()
    start.set()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    with sqlite3.connect(path) as c:
        assert c.execute("SELECT COUNT(*) FROM results").fetchone() == (4000,)
        assert c.execute("SELECT run_path, COUNT(*) FROM results GROUP BY run_path").fetchall() == [
            (f"/runs/w{w}", 500) for w in range(8)]
        assert c.execute("SELECT COUNT(*) FROM runs").fetchone() == (8,)
    assert _integrity(path) == "ok"


def test_the_run_directory_lock_refuses_a_second_writer_and_dies_with_its_holder(tmp_path):
    from inborn.errors import InbornError
    from inborn.store import RunDir

    run = RunDir(tmp_path / "run")
    with run.lock(), pytest.raises(InbornError, match=rf"is in use by another process \(pid {os.getpid()}\)"), \
            run.lock():
        pass
    with run.lock():  # released on exit, also after an error
        pass

    # Another process holds it (flock on the same file), then is killed with SIGKILL.
    holder = subprocess.Popen([sys.executable, "-c", (
        "import fcntl, os, sys, time\n"
        f"fd = os.open({str(run.file(RunDir.LOCK))!r}, os.O_RDWR | os.O_CREAT)\n"
        "fcntl.flock(fd, fcntl.LOCK_EX)\n"
        "os.ftruncate(fd, 0); os.write(fd, str(os.getpid()).encode())\n"
        "print('held', flush=True); time.sleep(60)\n")], stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "held"
    with pytest.raises(InbornError, match=rf"in use by another process \(pid {holder.pid}\)"), run.lock():
        pass
    holder.kill()
    holder.wait()
    with run.lock():  # the kernel released it: a killed run can be resumed
        assert run.file(RunDir.LOCK).read_text().strip() == str(os.getpid())


def test_an_evaluation_killed_mid_attack_resumes_at_the_batch(tmp_path):
    import shutil

    run = tmp_path / "run"
    trained = subprocess.run(_inborn("train", "--data", "digits", "--arch", "fc", "--width", "0.25", "--epochs", "1",
                                     "--quiet", "--out", str(run)), env=ENV, capture_output=True, text=True)
    assert trained.returncode == 0, trained.stderr
    shutil.copytree(run, tmp_path / "copy")
    # Slow enough batches (many PGD steps on 8 images) to be killed between two of them.
    evaluation = ["--attack", "pgd", "--eps", "0.1", "--steps", "300", "--no-early-stop", "--batch-size", "8",
                  "--n", "160", "--quiet"]
    journal = run / "eval-test.journal.json"
    cut = subprocess.Popen(_inborn("eval", str(run), *evaluation), env=ENV,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while not journal.exists():
        assert cut.poll() is None and time.time() < deadline, "ended before a batch was journaled"
        time.sleep(0.005)
    cut.kill()
    assert cut.wait() == -signal.SIGKILL
    done = len(json.loads(journal.read_text())["batches"])
    assert 1 <= done < 20, done
    assert not (run / "eval.json").exists()

    full = subprocess.run(_inborn("eval", str(tmp_path / "copy"), *evaluation), env=ENV, capture_output=True, text=True)
    resumed = subprocess.run(_inborn("eval", str(run), *evaluation), env=ENV, capture_output=True, text=True)
    assert full.returncode == 0 and resumed.returncode == 0, full.stderr + resumed.stderr
    a, b = (json.loads((d / "eval.json").read_text()) for d in (tmp_path / "copy", run))
    for key in ("n", "clean_acc", "results", "worst_case"):
        assert a[key] == b[key], key
    assert not journal.exists()
