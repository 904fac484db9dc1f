"""One run on two processes (torchrun, gloo on CPU) equals the same run on one process, and resumes."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch
import torch.distributed as dist

from inborn import distributed
from inborn.store import RunDir

pytestmark = pytest.mark.skipif(not dist.is_available(), reason="torch built without torch.distributed")

ARGS = ["train", "--data", "digits", "--arch", "fc", "--epochs", "2", "--batch-size", "64", "--quiet"]


# Dies in the second epoch's validation (after epoch 1's checkpoint), like test_training's resume test.
CRASH = """
import sys
from inborn.cli import main
from inborn.train import loop
real, calls = loop.validate, []
def dying_validate(*args, **kwargs):
    calls.append(1)
    if len(calls) == 2:
        raise KeyboardInterrupt
    return real(*args, **kwargs)
loop.validate = dying_validate
sys.exit(main())
"""


def _inborn(tmp_path, nproc: int, args: list[str], ok: bool = True) -> subprocess.CompletedProcess:
    launcher = ["-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}"] if nproc > 1 else []
    program = args if args[0].endswith(".py") else ["-m", "inborn", *args]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "INBORN_DB": str(tmp_path / "db.sqlite")}
    for key in ("WORLD_SIZE", "RANK", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(key, None)  # never join an outer process group
    try:
        proc = subprocess.run([sys.executable, *launcher, *program], env=env, cwd=tmp_path, capture_output=True,
                              text=True, timeout=120)
    except subprocess.TimeoutExpired as e:
        pytest.fail(f"{nproc} process(es) timed out:\n{e.stdout}\n{e.stderr}")
    assert (proc.returncode == 0) == ok, f"{nproc} process(es), exit {proc.returncode}:\n{proc.stdout}\n{proc.stderr}"
    return proc


def test_two_processes_train_the_same_run_as_one_and_resume_it(tmp_path):
    two = _inborn(tmp_path, 2, [*ARGS, "--out", "A"])
    one = _inborn(tmp_path, 1, [*ARGS, "--out", "B"])
    a, b = RunDir(tmp_path / "A"), RunDir(tmp_path / "B")
    # Rank 0 alone wrote the run: one line per epoch, one summary, one line of results printed.
    assert len(a.read_metrics()) == 2
    assert sorted(p.name for p in a.path.iterdir()) == sorted(p.name for p in b.path.iterdir())
    assert two.stdout.count("run: ") == 1 and one.stdout.count("run: ") == 1
    # The same global batches and averaged gradients: the same training up to float error.
    assert a.read_metrics()[0]["train_loss"] == pytest.approx(b.read_metrics()[0]["train_loss"], abs=1e-3)
    acc_a, acc_b = (json.loads(r.file(RunDir.SUMMARY).read_text())["test"]["clean_acc"] for r in (a, b))
    assert abs(acc_a - acc_b) <= 0.02

    # Killed during epoch 2, then resumed on two processes: the same run as the uninterrupted one.
    (tmp_path / "crash.py").write_text(CRASH)
    _inborn(tmp_path, 2, ["crash.py", *ARGS, "--out", "C"], ok=False)
    assert len(RunDir(tmp_path / "C").read_metrics()) == 1
    _inborn(tmp_path, 2, ["train", "--resume", "--out", "C", "--quiet"])
    strip = [{k: v for k, v in h.items() if k != "seconds"} for h in RunDir(tmp_path / "C").read_metrics()]
    assert strip == [{k: v for k, v in h.items() if k != "seconds"} for h in a.read_metrics()]


def test_helpers_are_no_ops_in_one_process(monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    assert (distributed.rank(), distributed.world_size(), distributed.is_main()) == (0, 1, True)
    x = torch.arange(6)
    assert distributed.shard(x)[0] is x and distributed.all_reduce_sum(x) is x
    assert distributed.broadcast_object({"a": 1}) == {"a": 1}
    model = torch.nn.Linear(2, 2)
    assert distributed.wrap(model, torch.device("cpu")) is model
    assert distributed.init_from_env(torch.device("cpu")) == torch.device("cpu")
    distributed.barrier()
    distributed.cleanup()
