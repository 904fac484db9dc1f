"""One-command GPU check: the CUDA tests and the paper-shape throughput, in a few minutes.

    PYTHONPATH=src python benchmarks/gpu_check.py --out gpu-check            # on a GPU machine
    PYTHONPATH=src python benchmarks/gpu_check.py --device cpu --tiny --out /tmp/gc   # CI: never rots

It runs from the source tree, reaches no network and installs nothing: the data are synthetic
CIFAR-shaped tensors (3x32x32, 10 classes), so no data set, mlxtend or pyautoattack is needed.
It does:

1. `pytest -m cuda` (tests/test_cuda.py: train, search, eval, family and R2S, NAS on tiny data,
   float32 against bf16, CPU against CUDA); skipped without a GPU;
2. images/s of one RST search step at paper shape (PreActResNet-18 and ResNet-18, batch 256,
   PGD-7 at 8/255, step 2/255, keep 0.1): the reference loop against inborn's, inborn's in
   float32 and in bf16 autocast with channels_last; and of PGD-20 evaluation (early stop off,
   the worst case);
3. the projected time of a 160-epoch CIFAR-10 search (45,000 training images) from the fastest
   search figure.

It writes DIR/gpu_check.json and DIR/gpu_check.md. `--tiny` shrinks the models and batches so
that the whole check takes seconds on a CPU.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import torch

ROOT = Path(__file__).resolve().parents[1]
PAPER_EPOCHS, CIFAR_TRAIN = 160, 45_000


def _search_benchmark():
    spec = importlib.util.spec_from_file_location("search_speed", ROOT / "benchmarks" / "search_speed.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def run_cuda_tests(timeout: int) -> dict[str, Any]:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src") + os.pathsep + os.environ.get("PYTHONPATH", "")}
    t0 = time.perf_counter()
    try:
        proc = subprocess.run([sys.executable, "-m", "pytest", "-m", "cuda", "-rs", "-p", "no:cacheprovider",
                               str(ROOT / "tests" / "test_cuda.py")], capture_output=True, text=True, env=env,
                              timeout=timeout, cwd=ROOT)
    except subprocess.TimeoutExpired:
        return {"exit_code": None, "summary": f"timed out after {timeout} s", "seconds": timeout}
    counts = re.compile(r"\d+ (passed|failed|skipped|error|deselected)")
    lines = [line for line in proc.stdout.splitlines() if counts.search(line)]
    return {"exit_code": proc.returncode, "summary": lines[-1].strip("= ") if lines else proc.stderr.strip()[-300:],
            "seconds": round(time.perf_counter() - t0, 1), "tail": proc.stdout[-2000:]}


def search_throughput(arch: str, device: torch.device, *, batch: int, width: float, steps: int, iters: int,
                      loop: str, amp: bool, channels_last: bool) -> float:
    from inborn.attacks import PGD
    from inborn.masks import to_supermask
    from inborn.models import create_model

    bench = _search_benchmark()
    torch.manual_seed(0)
    model = to_supermask(create_model(arch, num_classes=10, in_channels=3, image_size=32, width=width), 0.1)
    model = model.to(device)
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
    from inborn.device import autocast

    def once() -> None:
        with autocast(device, amp):
            step_fn(model, opt, x, y, attack)

    once()  # warm-up (cuDNN autotuning, allocations)
    _sync(device)
    t0 = time.perf_counter()
    for _ in range(iters):
        once()
    _sync(device)
    return batch * iters / (time.perf_counter() - t0)


def eval_throughput(arch: str, device: torch.device, *, batch: int, width: float, steps: int, iters: int,
                    amp: bool) -> float:
    from inborn.attacks import PGD
    from inborn.device import prepare_model
    from inborn.masks import fix_masks, to_supermask
    from inborn.models import create_model

    torch.manual_seed(0)
    model = to_supermask(create_model(arch, num_classes=10, in_channels=3, image_size=32, width=width), 0.1)
    fix_masks(model)
    model = prepare_model(model, device).eval()
    gen = torch.Generator(device).manual_seed(0)
    x = torch.rand(batch, 3, 32, 32, device=device, generator=gen)
    y = torch.randint(0, 10, (batch,), device=device, generator=gen)
    attack = PGD(8 / 255, steps=steps, step_size=2 / 255, seed=0, early_stop=False, use_autocast=amp)
    attack(model, x, y)
    _sync(device)
    t0 = time.perf_counter()
    for _ in range(iters):
        attack(model, x, y)
    _sync(device)
    return batch * iters / (time.perf_counter() - t0)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", required=True, help="directory for gpu_check.json and gpu_check.md")
    p.add_argument("--device", default="cuda")
    p.add_argument("--tiny", action="store_true", help="tiny models and batches (CI on a CPU)")
    p.add_argument("--iters", type=int, default=None, help="timed iterations per figure (default 5; tiny 1)")
    p.add_argument("--test-timeout", type=int, default=240)
    args = p.parse_args()
    sys.path.insert(0, str(ROOT / "src"))
    from inborn.device import resolve_device
    from inborn.errors import InbornError

    try:
        device = resolve_device(args.device)
    except InbornError as e:
        print(f"gpu_check: {e}", file=sys.stderr)
        return 2
    out = Path(args.out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        print(f"gpu_check: cannot create {str(out)!r}: {e.strerror}", file=sys.stderr)
        return 2
    # Only where they are used: importing inborn must not pull in either (the GPU machine lacks them).
    import inborn.cli  # noqa: F401

    leaked = sorted(m for m in sys.modules if m.split(".")[0] in ("mlxtend", "autoattack", "pyautoattack"))
    t_start = time.perf_counter()
    batch, width, steps, iters = (8, 0.125, 2, 1) if args.tiny else (256, 1.0, 7, 5)
    if args.iters:
        iters = args.iters
    report: dict[str, Any] = {
        "device": str(device), "name": torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU",
        "torch": torch.__version__, "cuda": torch.version.cuda, "tiny": args.tiny, "batch": batch, "width": width,
        "pgd_search_steps": steps, "heavy_imports_at_startup": leaked,
    }
    report["cuda_tests"] = run_cuda_tests(args.test_timeout)
    rows = []
    bf16 = device.type == "cuda"
    for arch in ("preact_resnet18", "resnet18"):
        row: dict[str, Any] = {"arch": arch}
        kw = {"batch": batch, "width": width, "steps": steps, "iters": iters}
        row["search_reference_fp32"] = search_throughput(arch, device, loop="reference", amp=False,
                                                         channels_last=False, **kw)
        row["search_ours_fp32"] = search_throughput(arch, device, loop="optimised", amp=False, channels_last=False,
                                                    **kw)
        if bf16:
            row["search_ours_bf16_cl"] = search_throughput(arch, device, loop="optimised", amp=True,
                                                           channels_last=True, **kw)
        row["eval_pgd20_fp32"] = eval_throughput(arch, device, batch=batch, width=width, steps=20 if not args.tiny
                                                 else 2, iters=iters, amp=False)
        if bf16:
            row["eval_pgd20_bf16"] = eval_throughput(arch, device, batch=batch, width=width,
                                                     steps=20 if not args.tiny else 2, iters=iters, amp=True)
        best = max(v for k, v in row.items() if k.startswith("search_ours"))
        row["speedup_vs_reference"] = row["search_ours_fp32"] / row["search_reference_fp32"]
        row["projected_160_epoch_search_hours"] = PAPER_EPOCHS * CIFAR_TRAIN / best / 3600
        rows.append(row)
    report["throughput_images_per_s"] = rows
    report["seconds"] = round(time.perf_counter() - t_start, 1)
    (out / "gpu_check.json").write_text(json.dumps(report, indent=1))
    (out / "gpu_check.md").write_text(_markdown(report))
    print(_markdown(report))
    failed = report["cuda_tests"]["exit_code"] not in (0, 5) or leaked  # 5: every test skipped or deselected
    return 1 if failed else 0


def _markdown(r: dict[str, Any]) -> str:
    lines = [
        f"# GPU check: {r['name']} ({r['device']}), torch {r['torch']}, CUDA {r['cuda']}"
        + (" (tiny: CI shapes, not a measurement)" if r["tiny"] else ""),
        "",
        f"CUDA tests: {r['cuda_tests']['summary']} (exit {r['cuda_tests']['exit_code']}, "
        f"{r['cuda_tests']['seconds']} s). mlxtend/pyautoattack imported at startup: "
        f"{r['heavy_imports_at_startup'] or 'none'}.",
        "",
        f"Images/s at 3x32x32, batch {r['batch']}, width {r['width']}, search PGD-{r['pgd_search_steps']} "
        "(keep 0.1, synthetic data):",
        "",
        "| model | search: reference fp32 | search: ours fp32 | search: ours bf16+channels_last | ours / reference | "
        "PGD-20 eval fp32 | PGD-20 eval bf16 | 160-epoch search (h) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in r["throughput_images_per_s"]:
        def f(key, row=row):
            return f"{row[key]:.1f}" if key in row else "n/a"

        lines.append(f"| {row['arch']} | {f('search_reference_fp32')} | {f('search_ours_fp32')} | "
                     f"{f('search_ours_bf16_cl')} | {row['speedup_vs_reference']:.2f}x | {f('eval_pgd20_fp32')} | "
                     f"{f('eval_pgd20_bf16')} | {row['projected_160_epoch_search_hours']:.1f} |")
    lines += ["", f"Whole check: {r['seconds']} s.", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
