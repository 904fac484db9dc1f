"""One run on two processes (torchrun, gloo on CPU) equals the same run on one process, and resumes."""

from __future__ import annotations

import json
import os
import signal
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
    # Its own session, so that a hang kills the workers too, not only the launcher.
    with subprocess.Popen([sys.executable, *launcher, *program], env=env, cwd=tmp_path, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True, start_new_session=True) as popen:
        try:
            stdout, stderr = popen.communicate(timeout=120)
        except subprocess.TimeoutExpired:
            os.killpg(popen.pid, signal.SIGKILL)
            stdout, stderr = popen.communicate()
            pytest.fail(f"{nproc} process(es) timed out:\n{stdout}\n{stderr}")
    proc = subprocess.CompletedProcess(popen.args, popen.returncode, stdout, stderr)
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


def test_synced_batch_norm_in_one_process_group_is_plain_batch_norm(tmp_path):
    import copy

    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'rendezvous'}", rank=0, world_size=1)
    try:
        torch.manual_seed(0)
        plain = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4), torch.nn.ReLU(),
                                    torch.nn.Flatten(), torch.nn.BatchNorm1d(4 * 6 * 6, affine=False))
        synced = distributed.sync_batch_norm(copy.deepcopy(plain))
        assert type(synced[1]).__name__ == "SyncedBatchNorm2d" and isinstance(synced[1], torch.nn.BatchNorm2d)
        assert synced.state_dict().keys() == plain.state_dict().keys()
        x = torch.randn(10, 3, 8, 8)
        weights = torch.randn(10, 4 * 6 * 6)  # a loss whose gradient does not vanish through the norm
        for _ in range(2):
            out_p, out_s = plain(x * 3 + 1), synced(x * 3 + 1)
            torch.testing.assert_close(out_s, out_p, atol=1e-5, rtol=1e-4)
            (out_p * weights).sum().backward()
            (out_s * weights).sum().backward()
        for (name, a), b in zip(plain.named_parameters(), synced.parameters(), strict=True):
            torch.testing.assert_close(b.grad, a.grad, atol=1e-4, rtol=1e-3, msg=name)
        for (name, a), b in zip(plain.named_buffers(), synced.buffers(), strict=True):
            torch.testing.assert_close(b, a, atol=1e-5, rtol=1e-4, msg=name)
    finally:
        dist.destroy_process_group()


def test_two_processes_train_a_batch_norm_network_as_one_does(tmp_path):
    from safetensors.torch import load_file

    # A small learning rate: at 0.1 this tiny network's training is chaotic (float rounding grows
    # about 2x a step), and then two runs that differ only in rounding end 0.004 to 0.07 apart.
    args = ["train", "--data", "digits", "--arch", "conv2", "--width", "0.25", "--epochs", "1", "--batch-size", "64",
            "--lr", "0.01", "--quiet"]
    _inborn(tmp_path, 2, [*args, "--out", "A"])
    _inborn(tmp_path, 1, [*args, "--out", "B"])
    a, b = load_file(tmp_path / "A/model.safetensors"), load_file(tmp_path / "B/model.safetensors")
    assert any("running_mean" in k for k in a)
    # Measured (21 steps): synchronised, at most 1.3e-4 apart; with per-rank statistics (the sync
    # taken out) the first BatchNorm's running statistics end 0.004-0.008 apart.
    for key in a:
        torch.testing.assert_close(a[key], b[key], atol=1e-3, rtol=0, msg=key)


def test_two_processes_split_an_evaluation_and_get_the_one_process_figures(tmp_path):
    _inborn(tmp_path, 1, ["train", "--data", "digits", "--arch", "conv2", "--width", "0.25", "--epochs", "1",
                          "--quiet", "--out", "R"])
    # 300 images in batches of 64: 5 batches, so the last round has one batch for two ranks.
    # (`--num-examples`, not `--n`, which torchrun's own parser takes for one of its options.)
    evaluation = ["eval", "R", "--attack", "pgd,fgsm", "--eps", "0.05,0.1", "--steps", "3", "--batch-size", "64",
                  "--num-examples", "300", "--quiet", "--json"]
    one = json.loads(_inborn(tmp_path, 1, evaluation).stdout)
    two = _inborn(tmp_path, 2, evaluation)
    assert two.stdout.count('"clean_acc"') == 1  # rank 0 alone prints
    two = json.loads(two.stdout)
    for key in ("n", "clean_acc", "results", "worst_case"):
        assert two[key] == one[key], key
