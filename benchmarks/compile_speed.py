"""`--compile` against eager: the training loop's own search step (PGD-k with the scores frozen,
then the step on the scores) on a compiled copy of a supermask model and on an eager one.

Real measurement (quiet machine, one thread; compiling takes minutes on a CPU):

    OMP_NUM_THREADS=1 python benchmarks/compile_speed.py --json compile_speed.json

Check that it works (< 2 min with a warm inductor cache): `python benchmarks/compile_speed.py --quick`.

Both copies start from one model and see the same batches and random starts, batch by batch in
alternating order; the time to compile (the first compiled batches, until no new graph is made)
is reported apart, and the speed-up is the median of the per-batch ratios after it. Models:
conv4 width 0.5 on 1x28x28 and PreActResNet-18 width 0.25 on 3x32x32 (synthetic data, as the
other speed benchmarks).
"""

from __future__ import annotations

import argparse
import copy
import json
import statistics
import time

import torch

from inborn.device import compile_model, prepare_model
from inborn.masks import to_supermask
from inborn.models import create_model
from inborn.train.config import TrainConfig
from inborn.train.loop import _pgd_step, _trainer

MODELS = {"conv4": (1, 28, 0.5, 0.3), "preact_resnet18": (3, 32, 0.25, 8 / 255)}  # channels, size, width, ε


def measure(arch: str, batches: int, batch_size: int, steps: int, warmup: int) -> dict:
    channels, size, width, eps = MODELS[arch]
    torch.manual_seed(0)
    base = to_supermask(create_model(arch, num_classes=10, in_channels=channels, image_size=size, width=width), 0.05)
    device = torch.device("cpu")
    eager = prepare_model(copy.deepcopy(base), device)
    fast = compile_model(prepare_model(copy.deepcopy(base), device))
    cfg = TrainConfig(adv="pgd", adv_steps=steps, adv_step_size=eps / 4, lr=0.1, eps=eps, amp=False)
    trainers = {"eager": _trainer(cfg, eager, eps), "compiled": _trainer(cfg, fast, eps)}
    g = torch.Generator().manual_seed(1)
    data = [(torch.rand(batch_size, channels, size, size, generator=g),
             torch.randint(0, 10, (batch_size,), generator=g)) for _ in range(warmup + batches)]
    times: dict[str, list[float]] = {"eager": [], "compiled": []}
    compile_seconds = 0.0
    for i, (x, y) in enumerate(data):
        order = ("eager", "compiled") if i % 2 == 0 else ("compiled", "eager")
        for name in order:
            t = trainers[name]
            t.model.train()
            torch.manual_seed(i)  # the same random start for both
            start = time.perf_counter()
            _pgd_step(t, x, y, eps, 1.0)
            seconds = time.perf_counter() - start
            if i < warmup:
                compile_seconds += seconds if name == "compiled" else 0.0
            else:
                times[name].append(seconds)
    ratios = [e / c for e, c in zip(times["eager"], times["compiled"], strict=True)]
    return {"arch": arch, "width": width, "batch_size": batch_size, "pgd_steps": steps, "batches": batches,
            "eager_median_s": statistics.median(times["eager"]),
            "compiled_median_s": statistics.median(times["compiled"]),
            "speedup_median": statistics.median(ratios), "warmup_batches": warmup,
            "compile_and_warmup_s": compile_seconds}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--models", default=",".join(MODELS))
    p.add_argument("--batches", type=int, default=10)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--steps", type=int, default=7)
    p.add_argument("--warmup", type=int, default=3, help="compiled batches counted as compiling (train-mode graphs)")
    p.add_argument("--quick", action="store_true")
    p.add_argument("--json")
    args = p.parse_args()
    if args.quick:
        args.models, args.batches, args.batch_size, args.steps = "conv4", 2, 8, 2
    rows = [measure(a, args.batches, args.batch_size, args.steps, args.warmup) for a in args.models.split(",")]
    print("| model | batch | PGD steps | eager s/batch | compiled s/batch | speed-up (median) | compiling s |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['arch']} w{r['width']} | {r['batch_size']} | {r['pgd_steps']} | {r['eager_median_s']:.3f} | "
              f"{r['compiled_median_s']:.3f} | {r['speedup_median']:.2f}x | {r['compile_and_warmup_s']:.0f} |")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"torch": torch.__version__, "threads": torch.get_num_threads(), "rows": rows}, f, indent=2)


if __name__ == "__main__":
    main()
