"""Run a sweep's cells as `python -m inborn <kind> ...` subprocesses: here, or as Ray tasks.

Both executors skip complete cells, resume interrupted ones, and run every cell through the
same runner, so a cell's files and figures do not depend on where it ran. A failed cell is
reported and the others go on.
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from inborn.errors import InbornError
from inborn.store import ResultsDB, RunDir
from inborn.store.db import ensure as ensure_db
from inborn.sweep import cells as cellmod
from inborn.sweep.cells import Cell

EXECUTORS = ("local", "ray")
TAIL_LINES = 15


@dataclass
class CellResult:
    """`status`: complete (ran now), skipped (complete before), or failed (`log_tail` says why)."""

    cell: Cell
    status: str
    returncode: int | None = None
    seconds: float = 0.0
    log_tail: str = ""
    summary: dict[str, Any] = field(default_factory=dict)


def available_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def default_parallel(gpus_per_run: float = 0) -> int:
    """One run per GPU slot when runs take GPUs; else one run per two cores, since a CPU run
    uses its threads well and more runs at once only share the same cores."""
    if gpus_per_run > 0:
        return len(gpu_slots(gpus_per_run))
    return max(1, available_cpus() // 2)


def gpu_slots(gpus_per_run: float) -> list[list[int]]:
    """The GPU index groups the local executor hands out, one per concurrent run."""
    n = torch.cuda.device_count()
    if n == 0:
        raise InbornError("--gpus-per-run was given but no GPU is visible here")
    if gpus_per_run < 1:  # several runs share a GPU
        share = int(1 / gpus_per_run)
        return [[i] for _ in range(share) for i in range(n)]
    if gpus_per_run != int(gpus_per_run) or gpus_per_run > n:
        raise InbornError(f"--gpus-per-run {gpus_per_run:g} must be a fraction or a whole number up to {n} here")
    g = int(gpus_per_run)
    return [list(range(i, i + g)) for i in range(0, n - g + 1, g)]


def run_cells(
    cells: list[Cell],
    executor: str = "local",
    max_parallel: int | None = None,
    gpus_per_run: float = 0,
    address: str | None = None,
    *,
    db: ResultsDB | str | Path | None = None,
    cpus_per_run: int | None = None,
    progress: bool = True,
) -> list[CellResult]:
    """Run the cells that are not complete yet; one CellResult per cell, in the order given.

    local: at most `max_parallel` subprocesses at once (default `default_parallel`), each with
    `cpus_per_run` threads (default: the cores shared out) and its own GPUs when `gpus_per_run`.
    ray: one Ray task per cell on the cluster at `address`, or on a local instance started on
    demand; at most `max_parallel` in flight (default: all on a cluster, `default_parallel` here).
    """
    if executor not in EXECUTORS:
        raise InbornError(f"unknown executor {executor!r}; use local or ray")
    if max_parallel is not None and max_parallel < 1:
        raise InbornError(f"--max-parallel must be >= 1, got {max_parallel}")
    if gpus_per_run < 0:
        raise InbornError(f"--gpus-per-run must be >= 0, got {gpus_per_run:g}")
    if address and executor != "ray":
        raise InbornError("--address is for --executor ray")
    for cell in cells:  # every cell's settings, in this process, before any worker starts
        cellmod.check_settings(cell.config, cell.name)
    db = db if isinstance(db, ResultsDB) else ResultsDB(db)
    db = ResultsDB(db.path.resolve())  # cells may run in another working directory
    db.check()
    ensure_db(db)  # created here, once, not by the first cells racing to create it
    if executor == "ray":
        require_ray()  # before anything is written
    for cell in cells:
        cellmod.check_cell(cell)
    results: dict[int, CellResult] = {}
    todo = []
    for i, cell in enumerate(cells):
        cellmod.mirror_cell_db(cell, db)  # a Ray cell finished after its driver died is recorded now
        if cellmod.is_complete(cell, db):
            results[i] = CellResult(cell, "skipped", 0, summary=RunDir(cell.out).read_summary())
        else:
            todo.append((i, cell))
    if todo:
        bar = tqdm(total=len(todo), desc="sweep", unit="run", disable=not progress)
        try:
            if executor == "local":
                done = _run_local(todo, db, max_parallel, gpus_per_run, cpus_per_run, bar)
            else:
                done = _run_ray(todo, db, max_parallel, gpus_per_run, cpus_per_run, address, bar)
        finally:
            bar.close()
        results.update(done)
    return [results[i] for i in range(len(cells))]


# -- the runner both executors use ------------------------------------------------
def _die_with_parent() -> Any:
    """A preexec_fn that has the kernel stop the child when the sweep dies (even by SIGKILL), so
    no orphan keeps writing a run that a resumed sweep starts again. Linux only."""
    if not sys.platform.startswith("linux"):
        return None
    prctl = ctypes.CDLL(None, use_errno=True).prctl  # looked up here: the child only calls it
    parent = os.getpid()

    def preexec() -> None:
        prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
        if os.getppid() != parent:  # the parent died before prctl took effect
            os.kill(os.getpid(), signal.SIGTERM)

    return preexec


def _child_env(threads: int | None, gpus: list[int] | None, force_threads: bool) -> dict[str, str]:
    env = dict(os.environ)
    if threads and (force_threads or "OMP_NUM_THREADS" not in os.environ):
        env["OMP_NUM_THREADS"] = str(threads)  # N runs x all cores each would thrash
    if gpus is not None:
        env["CUDA_VISIBLE_DEVICES"] = ",".join(map(str, gpus))
    env["PYTHONUNBUFFERED"] = "1"
    return env


def launch(cell: Cell, db_path: str | Path, env: dict[str, str], cwd: str | None) -> tuple[subprocess.Popen, int]:
    """Start the cell; returns the process and where this attempt's output starts in cell.log."""
    cellmod.write_cell_files(cell)
    cmd = cellmod.cell_command(cell, db_path, resume=cellmod.should_resume(cell))
    with open(cell.out / cellmod.CELL_LOG, "ab") as log:
        log.write(cellmod.start_line(cmd).encode())
        log.flush()
        offset = log.tell()
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=env,
                                cwd=cwd if cwd and os.path.isdir(cwd) else None, preexec_fn=_die_with_parent())
    return proc, offset


def collect(cell: Cell, returncode: int, offset: int, seconds: float) -> CellResult:
    if returncode == 0:
        return CellResult(cell, "complete", 0, seconds, summary=RunDir(cell.out).read_summary())
    with open(cell.out / cellmod.CELL_LOG, "rb") as f:
        f.seek(offset)
        lines = f.read().decode(errors="replace").splitlines()
    tail = "\n".join(lines[-TAIL_LINES:]) or f"(no output; exit status {returncode})"
    return CellResult(cell, "failed", returncode, seconds, log_tail=tail)


def run_cell(cell: Cell, db_path: str | Path, threads: int | None = None, cwd: str | None = None,
             force_threads: bool = False) -> CellResult:
    """Run one cell to its end in a subprocess (what a Ray task does)."""
    start = time.time()
    proc, offset = launch(cell, db_path, _child_env(threads, None, force_threads), cwd)
    try:
        returncode = proc.wait()
    except BaseException:
        _stop([proc])
        raise
    return collect(cell, returncode, offset, time.time() - start)


def _stop(procs: list[subprocess.Popen]) -> None:
    """Stop runs still going when the sweep is interrupted; each keeps its last complete epoch."""
    for proc in procs:
        if proc.poll() is None:
            proc.terminate()
    for proc in procs:
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _report(bar: tqdm, result: CellResult) -> None:
    bar.update(1)
    if result.status == "failed":
        where = result.cell.out / cellmod.CELL_LOG
        tqdm.write(f"sweep: cell {result.cell.name} failed (exit {result.returncode}); see {where}", file=sys.stderr)


# -- local --------------------------------------------------------------------------
def _run_local(todo: list[tuple[int, Cell]], db: ResultsDB, max_parallel: int | None, gpus_per_run: float,
               cpus_per_run: int | None, bar: tqdm) -> dict[int, CellResult]:
    slots: list[list[int]] | None = gpu_slots(gpus_per_run) if gpus_per_run > 0 else None
    limit = max_parallel or default_parallel(gpus_per_run)
    if slots is not None:
        limit = min(limit, len(slots))
    threads = cpus_per_run or max(1, available_cpus() // limit)
    force = cpus_per_run is not None  # an explicit --cpus-per-run beats the user's OMP_NUM_THREADS
    pending, running, results = deque(todo), [], {}
    cwd = os.getcwd()
    try:
        while pending or running:
            while pending and len(running) < limit:
                i, cell = pending.popleft()
                slot = slots.pop(0) if slots is not None else None
                proc, offset = launch(cell, db.path, _child_env(threads, slot, force), cwd)
                running.append((i, cell, proc, offset, time.time(), slot))
            time.sleep(0.1)
            for item in [r for r in running if r[2].poll() is not None]:
                running.remove(item)
                i, cell, proc, offset, start, slot = item
                if slot is not None:
                    slots.append(slot)
                results[i] = collect(cell, proc.returncode, offset, time.time() - start)
                _report(bar, results[i])
    finally:
        _stop([r[2] for r in running])
    return results


# -- Ray ------------------------------------------------------------------------------
def require_ray() -> Any:
    try:
        import ray
    except ImportError as e:
        raise InbornError("the Ray executor needs Ray: pip install 'inborn[ray]'") from e
    return ray


def _ray_task(cell: Cell, threads: int, cwd: str) -> CellResult:
    # Each run writes its own cell.db: SQLite must not be shared between a cluster's nodes.
    return run_cell(cell, cell.out / cellmod.CELL_DB, threads=threads, cwd=cwd, force_threads=True)


def _run_ray(todo: list[tuple[int, Cell]], db: ResultsDB, max_parallel: int | None, gpus_per_run: float,
             cpus_per_run: int | None, address: str | None, bar: tqdm) -> dict[int, CellResult]:
    ray = require_ray()
    started = False
    local = not address and not ray.is_initialized()
    if not ray.is_initialized():
        kwargs: dict[str, Any] = {"log_to_driver": False}
        if address:
            kwargs["address"] = address
        else:  # a local instance, sized to this machine
            kwargs.update(num_cpus=available_cpus(), include_dashboard=False)
        try:
            ray.init(**kwargs)
        except Exception as e:  # ConnectionError, RuntimeError, ...: one line, not a traceback
            where = f"the Ray cluster at {address!r}" if address else "a local Ray instance"
            raise InbornError(f"cannot start or reach {where}: {str(e).splitlines()[0] if str(e) else e!r}") from e
        started = True
    limit = max_parallel or (default_parallel(0) if local else len(todo))
    cpus = cpus_per_run or (max(1, available_cpus() // limit) if local else 1)
    task = ray.remote(_ray_task).options(num_cpus=cpus, num_gpus=gpus_per_run)
    pending, in_flight, results = deque(todo), {}, {}
    cwd = os.getcwd()
    try:
        while pending or in_flight:
            while pending and len(in_flight) < limit:
                i, cell = pending.popleft()
                in_flight[task.remote(cell, int(cpus), cwd)] = (i, cell)
            ready, _ = ray.wait(list(in_flight), num_returns=1)
            for ref in ready:
                i, cell = in_flight.pop(ref)
                try:
                    result = ray.get(ref)
                except Exception as e:  # the task itself died (worker or node lost)
                    result = CellResult(cell, "failed", None, log_tail=f"Ray task failed: {str(e).splitlines()[0]}")
                if result.status == "complete":
                    cellmod.mirror_cell_db(cell, db)
                results[i] = result
                _report(bar, result)
    finally:
        for ref in in_flight:
            ray.cancel(ref, force=True)  # the killed worker takes its run with it (PDEATHSIG)
        if started:
            ray.shutdown()
    return results
