"""One-command GPU check: the device tests, the mask selection, a DDP-shaped step, the paper-shape
throughput and an honest projection of a paper-scale search, each part within a time budget.

    PYTHONPATH=src python benchmarks/gpu_check.py --out gpu-check                     # on a GPU machine
    PYTHONPATH=src python benchmarks/gpu_check.py --device cpu --tiny --out /tmp/gc    # CI: never rots

It runs from the source tree, reaches no network and installs nothing: the data are synthetic
CIFAR-shaped tensors (3x32x32, 10 classes), so no data set, mlxtend or pyautoattack is needed.
The parts, each with its budget in seconds (BUDGETS; on a GPU they add up to under 5 minutes):

- imports: `import inborn.cli` pulls in none of mlxtend, pyautoattack, scikit-learn, scipy, ray;
- tests: tests/test_devices.py in pytest, its cases for the device checked (`-m cuda` on a GPU,
  `-m "not cuda"` on the CPU): train, search, eval, family and R2S, a NAS study, the prepared
  model against the plain CPU one in float32, bf16 autocast and channels-last;
- masks: the mask selection alone (`inborn.masks.compute_masks`, every layer's top-k) over a
  PreActResNet-18 supermask's scores, with each layer's kept count checked (and on a GPU the
  masks compared with the CPU's);
- throughput: images/s of one RST search step at paper shape (PreActResNet-18 and ResNet-18,
  batch 256, PGD-7 at 8/255, step 2/255, keep 0.1): the authors' loop against inborn's, inborn's
  in float32 and in bf16 autocast with channels-last; and of PGD-20 evaluation (early stop off);
- projection: the time of the R2S paper preset's search (160 epochs over 45,000 CIFAR-10 images,
  batch 256, PGD-7; PGD-10 validation on 5,000 images every epoch; a PGD-20 + CW-20 test of
  10,000) from inborn's own training epoch (`inborn.train.loop._train_epoch`: data to the
  device, random crop and flip, the search step as a run takes it, bf16 on CUDA as a run does)
  and its own validation and test evaluation with early stop off (an upper bound: a run's early
  stop skips images already misclassified). Checkpoints and curves written each epoch are not timed;
- ddp: the same training epoch in a one-process torch.distributed group (NCCL on CUDA, gloo on
  the CPU), the network wrapped as a torchrun run wraps it (DistributedDataParallel, synchronised
  BatchNorm), against the plain one: what the wrapping costs, not how several GPUs scale.

Each part is `ok`, `failed` (a real failure: the exit status is then 1) or `not run` with the
reason (no pytest, no GPU, a module this machine lacks). It writes DIR/gpu_check.json and
DIR/gpu_check.md and prints the table. `--tiny` shrinks models, batches and counts so that the
whole check takes about a minute on a CPU; its figures are not measurements.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
import warnings
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import torch

ROOT = Path(__file__).resolve().parents[1]
TEST_FILE = ROOT / "tests" / "test_devices.py"
# The R2S paper preset (src/inborn/studies/presets/r2s.yaml, scale `paper`): CIFAR-10's 50,000
# training images less the 10% validation split, its 10,000 test images.
PAPER = {"epochs": 160, "train_images": 45_000, "val_images": 5_000, "test_images": 10_000, "batch": 256,
         "adv_steps": 7, "keep": 0.1}
ARCHS = ("preact_resnet18", "resnet18")
# Seconds each part may take (a part's timing loops stop at its budget; past twice the budget and
# 30 s it is stopped and counts as failed). On a GPU the whole check fits in about 5 minutes.
BUDGETS = {"imports": 30, "tests": 150, "masks": 15, "throughput": 50, "projection": 50, "ddp": 30}
PART_NAMES = {"imports": "startup imports", "tests": "device tests", "masks": "mask selection",
              "throughput": "search and PGD throughput", "projection": "paper-run projection",
              "ddp": "DDP-wrapped step (1 process)"}
# inborn must import these only where they are used: one missing is a failure, not a reason to skip.
OPTIONAL = ("mlxtend", "pyautoattack", "autoattack", "sklearn", "scipy", "ray")


class NotRun(Exception):
    """A part this machine cannot run; the message says why."""


class OverLimit(Exception):
    pass


@contextlib.contextmanager
def hard_limit(seconds: float) -> Iterator[None]:
    """Stop a part that hangs (SIGALRM; the timing loops stop themselves at their budget)."""
    if not hasattr(signal, "setitimer"):
        yield
        return

    def stop(signum, frame):
        raise OverLimit(f"still running after its hard limit of {seconds:.0f} s")

    previous = signal.signal(signal.SIGALRM, stop)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def run_part(name: str, fn: Callable[..., dict[str, Any]], budget: float, *args: Any) -> dict[str, Any]:
    """Run one part; never raises. A part returns its figures, with "problem" set on a real failure."""
    t0 = time.perf_counter()
    out: dict[str, Any] = {"part": name, "budget_s": budget}
    try:
        with hard_limit(2 * budget + 30):
            data = fn(budget, *args)
        out.update(data)
        out["status"] = "failed" if data.get("problem") else "ok"
    except NotRun as e:
        out.update(status="not run", why=str(e))
    except ModuleNotFoundError as e:
        if (e.name or "").split(".")[0] in OPTIONAL:  # inborn must not need it here
            out.update(status="failed", problem=f"imported the optional module {e.name!r}, missing here", trace=_tb())
        else:
            out.update(status="not run", why=f"needs the module {e.name!r}, which is not installed")
    except Exception as e:  # any other error is the check's finding
        first = str(e).strip().splitlines()[0][:300] if str(e).strip() else ""
        out.update(status="failed", problem=f"{type(e).__name__}: {first}", trace=_tb())
    out["seconds"] = round(time.perf_counter() - t0, 1)
    line = out.get("problem") or out.get("why") or out.get("summary") or ""
    print(f"gpu_check: {PART_NAMES.get(name, name)}: {out['status']} ({out['seconds']} s) {line}", flush=True)
    return out


def _tb() -> str:
    return traceback.format_exc()[-3000:]


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _supermask(arch: str, width: float, keep: float = PAPER["keep"]) -> torch.nn.Module:
    from inborn.masks import to_supermask
    from inborn.models import create_model

    torch.manual_seed(0)
    return to_supermask(create_model(arch, num_classes=10, in_channels=3, image_size=32, width=width), keep)


# -- imports -------------------------------------------------------------------------
def part_imports(budget: float) -> dict[str, Any]:
    import inborn.cli  # noqa: F401

    leaked = sorted({m.split(".")[0] for m in sys.modules} & set(OPTIONAL))
    out: dict[str, Any] = {"optional_imported_at_startup": leaked, "summary": f"optional modules imported: "
                                                                              f"{', '.join(leaked) or 'none'}"}
    if leaked:
        out["problem"] = f"`import inborn.cli` imported {', '.join(leaked)} (they must load only where used)"
    return out


# -- tests -----------------------------------------------------------------------------
def part_tests(budget: float, device: torch.device) -> dict[str, Any]:
    if importlib.util.find_spec("pytest") is None:
        raise NotRun("pytest is not installed")
    if not TEST_FILE.is_file():
        raise NotRun(f"{TEST_FILE.relative_to(ROOT)} is not in this tree")
    marker = "cuda" if device.type == "cuda" else "not cuda"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (str(ROOT / "src"), os.environ.get("PYTHONPATH"))
                                                       if p)}
    if device.type == "cuda" and device.index is not None:  # the tests' "cuda" is the GPU asked for
        env["CUDA_VISIBLE_DEVICES"] = str(device.index)
    cmd = [sys.executable, "-m", "pytest", "-m", marker, "-rfEs", "-p", "no:cacheprovider", str(TEST_FILE)]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=budget, cwd=ROOT)
    except subprocess.TimeoutExpired:
        return {"problem": f"pytest still running after its budget of {budget:.0f} s"}
    text = proc.stdout + proc.stderr
    counts = re.compile(r"\d+ (passed|failed|skipped|error|errors|deselected)\b|no tests ran")
    lines = [line.strip("= ") for line in proc.stdout.splitlines() if counts.search(line)]
    out = {"command": " ".join(["pytest", "-m", repr(marker), str(TEST_FILE.relative_to(ROOT))]),
           "exit_code": proc.returncode, "summary": lines[-1] if lines else text.strip()[-300:], "tail": text[-3000:]}
    if proc.returncode == 0:
        return out
    if proc.returncode == 5:
        raise NotRun(f"pytest selected no test with -m {marker!r}")
    missing = re.findall(r"ModuleNotFoundError: No module named '([\w.]+)'", text)
    if missing and all(m.split(".")[0] not in OPTIONAL for m in missing):
        raise NotRun(f"the tests need the module {missing[0]!r}, which is not installed")
    out["problem"] = f"pytest: {out['summary']}"
    return out


# -- masks ------------------------------------------------------------------------------
def part_masks(budget: float, device: torch.device, width: float) -> dict[str, Any]:
    from inborn.device import prepare_model
    from inborn.masks import compute_masks, masked_layers
    from inborn.masks.patterns import kept_groups

    arch, deadline = "preact_resnet18", time.perf_counter() + budget * 0.8
    model = _supermask(arch, width)
    cpu_masks = compute_masks(model) if device.type != "cpu" else None
    model = prepare_model(model, device)
    layers = masked_layers(model)
    masks = compute_masks(model)  # warm-up (allocations, kernel choice)
    _sync(device)
    times: list[float] = []
    while len(times) < 30 and (len(times) < 3 or time.perf_counter() < deadline):
        t0 = time.perf_counter()
        compute_masks(model)
        _sync(device)
        times.append(time.perf_counter() - t0)
    wrong = [layer.layer_name for layer, mask in zip(layers, masks, strict=True)
             if int(mask.sum()) != kept_groups(mask.numel(), layer.keep_ratio, layer.keep_count)]
    scores = sum(m.numel() for m in masks)
    out: dict[str, Any] = {
        "arch": arch, "width": width, "keep": PAPER["keep"], "layers": len(layers), "scores": scores,
        "calls": len(times), "median_ms": statistics.median(times) * 1e3, "min_ms": min(times) * 1e3,
        "summary": f"{arch}: {scores / 1e6:.2f}M scores in {len(layers)} layers, median "
                   f"{statistics.median(times) * 1e3:.2f} ms a selection ({len(times)} calls)",
    }
    if cpu_masks is not None:
        # Equal |score| values at a layer's threshold may be broken differently: counted, not failed.
        out["entries_differing_from_cpu"] = sum(int(a.ne(b.cpu()).sum()) for a, b in zip(cpu_masks, masks,
                                                                                           strict=True))
    if wrong:
        out["problem"] = f"layers keeping the wrong number of weights: {', '.join(wrong[:5])}"
    return out


# -- throughput -------------------------------------------------------------------------
def _search_benchmark():
    spec = importlib.util.spec_from_file_location("search_speed", ROOT / "benchmarks" / "search_speed.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _timed_rate(fn: Callable[[], Any], device: torch.device, images: int, iters: int, seconds: float) -> float:
    """Images/s of `fn` after one warm-up call, over `iters` calls or `seconds`, whichever ends first."""
    fn()  # warm-up (cuDNN autotuning, allocations)
    _sync(device)
    t0, done = time.perf_counter(), 0
    while done < iters and (done == 0 or time.perf_counter() - t0 < seconds):
        fn()
        done += 1
        _sync(device)
    return images * done / (time.perf_counter() - t0)


def search_throughput(arch: str, device: torch.device, *, batch: int, width: float, steps: int, iters: int,
                      loop: str, amp: bool, channels_last: bool, seconds: float) -> float:
    from inborn.attacks import PGD
    from inborn.device import autocast

    bench = _search_benchmark()
    model = _supermask(arch, width).to(device)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    if loop == "reference":
        model = bench.as_reference(model)
    model.train()
    opt = bench.search_optimiser(model)
    step_fn = bench.reference_step if loop == "reference" else bench.optimised_step
    attack = PGD(8 / 255, steps=steps, step_size=2 / 255, mode="train", track_best=False, use_autocast=amp)
    gen = torch.Generator(device).manual_seed(0)
    x = torch.rand(batch, 3, 32, 32, device=device, generator=gen)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, 10, (batch,), device=device, generator=gen)

    def once() -> None:
        with autocast(device, amp):
            step_fn(model, opt, x, y, attack)

    return _timed_rate(once, device, batch, iters, seconds)


def eval_throughput(arch: str, device: torch.device, *, batch: int, width: float, steps: int, iters: int,
                    amp: bool, seconds: float) -> float:
    from inborn.attacks import PGD
    from inborn.device import prepare_model
    from inborn.masks import fix_masks

    model = _supermask(arch, width)
    fix_masks(model)
    model = prepare_model(model, device).eval()
    gen = torch.Generator(device).manual_seed(0)
    x = torch.rand(batch, 3, 32, 32, device=device, generator=gen)
    y = torch.randint(0, 10, (batch,), device=device, generator=gen)
    attack = PGD(8 / 255, steps=steps, step_size=2 / 255, seed=0, early_stop=False, use_autocast=amp)
    return _timed_rate(lambda: attack(model, x, y), device, batch, iters, seconds)


def part_throughput(budget: float, device: torch.device, shape: dict[str, Any]) -> dict[str, Any]:
    cuda = device.type == "cuda"
    figures = 5 if cuda else 3
    seconds = budget * 0.8 / len(ARCHS) / figures  # each figure's timing share; warm-ups take the rest
    kw = {"batch": shape["batch"], "width": shape["width"], "iters": shape["iters"], "seconds": seconds}
    rows = []
    for arch in ARCHS:
        row: dict[str, Any] = {"arch": arch}
        search = {**kw, "steps": shape["adv_steps"]}
        row["search_reference_fp32"] = search_throughput(arch, device, loop="reference", amp=False,
                                                         channels_last=False, **search)
        row["search_ours_fp32"] = search_throughput(arch, device, loop="optimised", amp=False, channels_last=False,
                                                    **search)
        if cuda:
            row["search_ours_bf16_cl"] = search_throughput(arch, device, loop="optimised", amp=True,
                                                           channels_last=True, **search)
        row["eval_pgd20_fp32"] = eval_throughput(arch, device, steps=shape["eval_steps"], amp=False, **kw)
        if cuda:
            row["eval_pgd20_bf16"] = eval_throughput(arch, device, steps=shape["eval_steps"], amp=True, **kw)
        row["speedup_vs_reference"] = row["search_ours_fp32"] / row["search_reference_fp32"]
        rows.append(row)
    best = ", ".join(f"{r['arch']} {r['speedup_vs_reference']:.2f}x" for r in rows)
    return {"rows": rows, "summary": f"inborn's search loop against the authors' (fp32): {best}"}


# -- projection -------------------------------------------------------------------------
def synthetic_splits(n_train: int, n_val: int, n_test: int):
    """CIFAR-10-shaped splits of random uint8 images, with CIFAR-10's augmentation (crop 4, flip)."""
    from inborn.data.base import DatasetInfo, DataSplits, TensorSplit

    gen = torch.Generator().manual_seed(0)

    def split(n: int) -> TensorSplit:
        return TensorSplit(torch.randint(0, 256, (n, 3, 32, 32), dtype=torch.uint8, generator=gen),
                           torch.randint(0, 10, (n,), generator=gen))

    info = DatasetInfo("cifar10", 10, 3, 32, mean=(0.4914, 0.4822, 0.4465), std=(0.2471, 0.2435, 0.2616),
                       crop_padding=4, flip=True, default_eps=8 / 255, description="synthetic, CIFAR-10-shaped")
    return DataSplits(info=info, train=split(n_train), val=split(n_val), test=split(n_test))


def paper_config(arch: str, device: torch.device, shape: dict[str, Any]):
    """The R2S paper preset's search settings (batch, steps and width as `shape` says)."""
    from inborn.train.resolve import resolve_config

    return resolve_config({
        "data": "cifar10", "arch": arch, "width": shape["width"], "eps": 8 / 255, "adv_step_size": 2 / 255,
        "adv_steps": shape["adv_steps"], "adv": "pgd", "epochs": PAPER["epochs"], "batch_size": shape["batch"],
        "lr": 0.1, "schedule": "multistep", "milestones": [80, 120],
        "ticket": {"keep_ratio": PAPER["keep"], "pattern": "element", "init": "signed_constant", "weight_seed": 0},
        "device": str(device), "smoke": True,  # smoke: the epoch reports each batch's time
    })


def train_slice(arch: str, device: torch.device, shape: dict[str, Any], splits, *, ddp: bool = False,
                ) -> tuple[float, Any, torch.nn.Module, torch.nn.Module]:
    """Seconds per training image of inborn's own epoch loop over `splits.train` (the first batch, a
    warm-up, left out); the config, the model, and the network trained (with `ddp`, wrapped as
    under torchrun)."""
    from inborn import distributed
    from inborn.device import prepare_model
    from inborn.seeding import seed_everything
    from inborn.train.loop import _train_epoch, _trainer
    from inborn.train.setup import initial_model

    cfg = paper_config(arch, device, shape)
    seed_everything(0)
    model, _ = initial_model(cfg, splits)
    model = prepare_model(model, device)
    trainer = _trainer(cfg, model, cfg.eps)
    if ddp:
        trainer.net = distributed.wrap(model, device)
    record = _train_epoch(trainer, splits, 0, cfg.eps, device, progress=False)
    _sync(device)
    # The epoch's whole time (loading, augmentation, the step, the loss read-back) less the first batch's step.
    per_image = (record["seconds"] - record["batch_seconds"][0]) / max(1, len(splits.train) - shape["batch"])
    return per_image, cfg, model, trainer.net


def eval_seconds_per_image(model: torch.nn.Module, data, cfg, *, attacks: list[str], steps: int,
                           device: torch.device) -> float:
    """inborn's evaluation as a run's validation calls it, but with early stop off (every image attacked
    for every step: an upper bound), after a one-batch warm-up."""
    from inborn.evaluation.evaluate import evaluate
    from inborn.masks import reuse_masks

    def run(split) -> None:
        with reuse_masks(model):
            evaluate(model, split, attacks=attacks, eps=[cfg.eps], steps=steps, seed=0, identify=False,
                     early_stop=False)

    run(data.head(min(len(data), 64)))
    _sync(device)
    t0 = time.perf_counter()
    run(data)
    _sync(device)
    return (time.perf_counter() - t0) / len(data)


def part_projection(budget: float, device: torch.device, shape: dict[str, Any]) -> dict[str, Any]:
    rows = []
    for arch in ARCHS:
        splits = synthetic_splits(shape["batch"] * shape["train_batches"], shape["val_images"],
                                  shape["test_images"])
        train_s, cfg, model, _ = train_slice(arch, device, shape, splits)
        val_s = eval_seconds_per_image(model, splits.val, cfg, attacks=["pgd"], steps=cfg.select_attack_steps,
                                       device=device)
        test_s = eval_seconds_per_image(model, splits.test, cfg, attacks=list(cfg.test_attacks),
                                        steps=cfg.test_attack_steps, device=device)
        epoch = train_s * PAPER["train_images"] + val_s * PAPER["val_images"]
        total = epoch * PAPER["epochs"] + test_s * PAPER["test_images"]
        rows.append({
            "arch": arch, "amp": cfg.amp and device.type == "cuda", "batch": cfg.batch_size,
            "adv_steps": cfg.adv_steps, "validation_steps": cfg.select_attack_steps,
            "test": f"{'+'.join(cfg.test_attacks)}-{cfg.test_attack_steps}",
            "train_ms_per_image": train_s * 1e3, "val_ms_per_image": val_s * 1e3, "test_ms_per_image": test_s * 1e3,
            "epoch_minutes": epoch / 60, "validation_share": val_s * PAPER["val_images"] / epoch,
            "run_hours": total / 3600,
        })
    text = ", ".join(f"{r['arch']} {r['run_hours']:.1f} h ({r['epoch_minutes']:.1f} min an epoch, "
                     f"{r['validation_share']:.0%} of it validation)" for r in rows)
    return {"rows": rows, "paper": PAPER, "summary": f"{PAPER['epochs']}-epoch search: {text}"}


# -- ddp ---------------------------------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def part_ddp(budget: float, device: torch.device, shape: dict[str, Any]) -> dict[str, Any]:
    import torch.distributed as dist

    from inborn import distributed

    cuda = device.type == "cuda"
    if not dist.is_available():
        raise NotRun("this build of torch has no torch.distributed")
    if cuda and not dist.is_nccl_available():
        raise NotRun("this build of torch has no NCCL")
    if distributed.is_distributed():
        raise NotRun("this process is already in a process group")
    arch = "preact_resnet18"
    small = {**shape, "train_batches": shape["ddp_batches"]}
    splits = synthetic_splits(small["batch"] * small["train_batches"], 8, 8)
    plain, *_ = train_slice(arch, device, small, splits)
    backend = "nccl" if cuda else "gloo"
    kwargs: dict[str, Any] = {"device_id": device} if cuda else {}
    if cuda:
        torch.cuda.set_device(device)
    dist.init_process_group(backend, init_method=f"tcp://127.0.0.1:{_free_port()}", rank=0, world_size=1,
                            timeout=timedelta(seconds=60), **kwargs)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            wrapped, _, model, net = train_slice(arch, device, small, splits, ddp=True)
    finally:
        distributed.cleanup()
    # DDP's own warnings (e.g. gradient strides that do not match its buckets: a slower reduction).
    said = sorted({str(w.message).strip().splitlines()[0][:200] for w in caught})
    out = {"arch": arch, "backend": backend, "world_size": 1, "batches": small["train_batches"],
           "plain_ms_per_image": plain * 1e3, "ddp_ms_per_image": wrapped * 1e3, "ddp_over_plain": wrapped / plain,
           "warnings": said,
           "summary": f"{arch} on {backend}, world size 1: the wrapped step takes {wrapped / plain:.2f}x the plain one"
                      + (f"; torch warned: {said[0].split('. ')[0]}" if said else "")}
    synced = [type(m).__name__ for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    if type(net).__name__ != "DistributedDataParallel" or not synced or not all(s.startswith("Synced") for s in synced):
        out["problem"] = f"the network was not wrapped as under torchrun ({type(net).__name__}, BatchNorm {synced[:2]})"
    return out


# -- main --------------------------------------------------------------------------------
def shapes(tiny: bool, iters: int | None) -> dict[str, Any]:
    if tiny:
        shape = {"batch": 8, "width": 0.125, "adv_steps": 2, "eval_steps": 2, "iters": 1, "train_batches": 3,
                 "val_images": 16, "test_images": 8, "ddp_batches": 2}
    else:
        shape = {"batch": PAPER["batch"], "width": 1.0, "adv_steps": PAPER["adv_steps"], "eval_steps": 20, "iters": 5,
                 "train_batches": 9, "val_images": 1024, "test_images": 512, "ddp_batches": 5}
    if iters:
        shape["iters"] = iters
    return shape


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", help="directory for gpu_check.json and gpu_check.md (default: a new temporary one)")
    p.add_argument("--device", default="cuda", help="cuda (default), cuda:N or cpu")
    p.add_argument("--tiny", action="store_true",
                   help="tiny models, batches and counts (CI on a CPU): not a measurement")
    p.add_argument("--iters", type=int, default=None, help="timed iterations per throughput figure (default 5; tiny 1)")
    p.add_argument("--parts", default=",".join(BUDGETS), help=f"comma-separated parts to run (default all: "
                                                              f"{','.join(BUDGETS)})")
    args = p.parse_args()
    sys.path.insert(0, str(ROOT / "src"))
    parts = [x.strip() for x in args.parts.split(",") if x.strip()]
    if unknown := [x for x in parts if x not in BUDGETS]:
        print(f"gpu_check: unknown part {unknown[0]!r}; known: {', '.join(BUDGETS)}", file=sys.stderr)
        return 2
    out = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="gpu_check-"))
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        print(f"gpu_check: cannot create {str(out)!r}: {e.strerror}", file=sys.stderr)
        return 2
    try:
        device = torch.device(args.device)
    except RuntimeError:
        print(f"gpu_check: unknown device {args.device!r} (use cuda, cuda:N or cpu)", file=sys.stderr)
        return 2
    no_gpu = None
    if device.type == "cuda" and not torch.cuda.is_available():
        no_gpu = "no CUDA GPU here (torch.cuda.is_available() is False; --device cpu checks the CPU)"
    elif device.type == "cuda" and (device.index or 0) >= torch.cuda.device_count():
        no_gpu = f"no {device} here: {torch.cuda.device_count()} GPU(s)"
    elif device.type == "cuda" and device.index is None:  # DDP and set_device need the index
        device = torch.device("cuda", torch.cuda.current_device())
    shape = shapes(args.tiny, args.iters)
    t_start = time.perf_counter()
    report: dict[str, Any] = {
        "device": str(device), "name": torch.cuda.get_device_name(device) if device.type == "cuda" and not no_gpu
        else "CPU", "torch": torch.__version__, "cuda": torch.version.cuda, "python": sys.version.split()[0],
        "tiny": args.tiny, "shape": shape, "parts": [],
    }
    runs = {"imports": (part_imports,), "tests": (part_tests, device), "masks": (part_masks, device, shape["width"]),
            "throughput": (part_throughput, device, shape), "projection": (part_projection, device, shape),
            "ddp": (part_ddp, device, shape)}
    for name in parts:
        if no_gpu and name != "imports":
            report["parts"].append({"part": name, "status": "not run", "why": no_gpu, "seconds": 0.0,
                                    "budget_s": BUDGETS[name]})
            continue
        fn, *fn_args = runs[name]
        report["parts"].append(run_part(name, fn, BUDGETS[name], *fn_args))
    report["seconds"] = round(time.perf_counter() - t_start, 1)
    report["failed"] = [r["part"] for r in report["parts"] if r["status"] == "failed"]
    (out / "gpu_check.json").write_text(json.dumps(report, indent=1))
    text = markdown(report)
    (out / "gpu_check.md").write_text(text)
    print(text)
    print(f"gpu_check: wrote {out / 'gpu_check.json'} and {out / 'gpu_check.md'}")
    return 1 if report["failed"] else 0


def markdown(r: dict[str, Any]) -> str:
    lines = [
        f"# GPU check: {r['name']} ({r['device']}), torch {r['torch']}, CUDA {r['cuda']}, Python {r['python']}"
        + (" (tiny: CI shapes, not a measurement)" if r["tiny"] else ""),
        "",
        "| part | status | seconds (budget) | result |",
        "|---|---|---|---|",
    ]
    for part in r["parts"]:
        result = part.get("problem") or part.get("why") or part.get("summary") or ""
        lines.append(f"| {PART_NAMES[part['part']]} | {part['status']} | {part['seconds']} ({part['budget_s']}) | "
                     f"{result.replace('|', '/')} |")
    by_name = {p["part"]: p for p in r["parts"]}
    shape = r["shape"]
    if by_name.get("throughput", {}).get("rows"):
        lines += ["", f"Images/s at 3x32x32, batch {shape['batch']}, width {shape['width']}, search "
                      f"PGD-{shape['adv_steps']} (keep {PAPER['keep']}, synthetic data), PGD-{shape['eval_steps']} "
                      "evaluation with early stop off:", "",
                  "| model | search: reference fp32 | search: ours fp32 | search: ours bf16+channels_last | "
                  "ours / reference | PGD eval fp32 | PGD eval bf16 |",
                  "|---|---|---|---|---|---|---|"]
        for row in by_name["throughput"]["rows"]:
            def f(key, row=row):
                return f"{row[key]:.1f}" if key in row else "n/a"

            lines.append(f"| {row['arch']} | {f('search_reference_fp32')} | {f('search_ours_fp32')} | "
                         f"{f('search_ours_bf16_cl')} | {row['speedup_vs_reference']:.2f}x | {f('eval_pgd20_fp32')} | "
                         f"{f('eval_pgd20_bf16')} |")
    if by_name.get("projection", {}).get("rows"):
        lines += ["", f"Projected R2S paper search ({PAPER['epochs']} epochs over {PAPER['train_images']:,} images "
                      f"with crop and flip, validation of {PAPER['val_images']:,} every epoch, a test of "
                      f"{PAPER['test_images']:,}; evaluation timed with early stop off):", "",
                  "| model | bf16 | batch | train ms/image | validation ms/image | test ms/image | epoch (min) | "
                  "run (h) |", "|---|---|---|---|---|---|---|---|"]
        for row in by_name["projection"]["rows"]:
            lines.append(f"| {row['arch']} | {'yes' if row['amp'] else 'no'} | {row['batch']} | "
                         f"{row['train_ms_per_image']:.3f} | {row['val_ms_per_image']:.3f} | "
                         f"{row['test_ms_per_image']:.3f} | {row['epoch_minutes']:.1f} | {row['run_hours']:.1f} |")
    failed = ", ".join(r["failed"]) or "none"
    lines += ["", f"Whole check: {r['seconds']} s. Failed: {failed}.", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
