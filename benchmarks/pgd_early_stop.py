"""PGD with per-sample early stop against without it, and the ways early stop can drop finished samples.

Real measurement (quiet machine, one thread, about 15 minutes; the lead's figures in docs/performance.md):

    inborn train --out /tmp/bench-at --data mnist5k --arch conv4 --width 0.5 --epochs 3 --adv pgd --eps 0.3 \\
        --eps-warmup 2 --batch-size 64 --lr 0.1 --schedule piecewise
    OMP_NUM_THREADS=1 python benchmarks/pgd_early_stop.py --run /tmp/bench-at --n 1000 --steps 40 --repeats 5

and each variant in a fresh process, its first run (paying for every new batch shape, as an
evaluation does) against its second, in CPU seconds:

    OMP_NUM_THREADS=1 python benchmarks/pgd_early_stop.py --run /tmp/bench-at --n 1000 --steps 40 --fresh

Check that it works (< 1 min, figures meaningless): `python benchmarks/pgd_early_stop.py --quick`.

For each model (conv4 width 0.5 on mnist5k through `inborn.load`, PreActResNet-18 width 0.25
on synthetic 3x32x32 data; see bench_common.py), `inborn.attacks.PGD` runs as a user calls it:

- `none`: without early stop;
- `exact`: early stop, compacting at every step to the rows still running (the CPU default);
- `buckets`: early stop, compacting only to a ladder of batch sizes (few distinct shapes);
- `never`: early stop, the batch kept whole and finished samples frozen (the CUDA default: no
  per-step host sync).

All are warmed up once and then run in rotating order; the times are medians. All must reach the
same robust/not-robust decision for every sample (early stop stops a sample once it is fooled,
which is all that decision needs). Prints a table, writes JSON (--json).
"""

from __future__ import annotations

import argparse
import functools
import json
import statistics
import subprocess
import sys
import time

import torch
from bench_common import MODELS, alternate, environment, finish, model_and_data, ratio, sync, table

from inborn.attacks import PGD
from inborn.device import resolve_device
from inborn.evaluation.evaluate import predict

VARIANTS = {"none": (False, None), "exact": (True, "exact"), "buckets": (True, "buckets"), "never": (True, "never")}


def robust_per_sample(model, x, y, eps, steps, batch_size, early_stop, shrink) -> tuple[torch.Tensor, int]:
    """Per sample whether it stays robust, and how many distinct batch sizes the attack handed the model."""
    # Step ε/30: the PGD(0.3, steps=40, step_size=0.01).
    attack = PGD(eps, steps=steps, step_size=eps / 30, seed=0, early_stop=early_stop)
    attack.shrink = shrink
    out, seen = [], set()
    for s in range(0, len(x), batch_size):
        xb, yb = x[s: s + batch_size], y[s: s + batch_size]
        handle = model.register_forward_pre_hook(lambda _m, a: seen.add(len(a[0])))
        try:
            x_adv = attack(model, xb, yb)
        finally:
            handle.remove()
        out.append(predict(model, x_adv).eq(yb))
    return torch.cat(out), len(seen)


def new_shape_cost(model, x: torch.Tensor, sizes: range, device: torch.device) -> dict[str, float]:
    """Why compacting at every step costs: the first input-gradient pass at a batch size the process
    has not seen (CPU: oneDNN builds its kernels for the shape) against a second pass at that size.
    Time per image, the medians over `sizes`; run before any attack, so the sizes are new."""
    def per_image(n: int) -> float:
        xb = x[:n].clone().requires_grad_(True)
        sync(device)
        t0 = time.perf_counter()
        torch.autograd.grad(model(xb).logsumexp(1).sum(), xb)
        sync(device)
        return (time.perf_counter() - t0) / n

    first, second = [], []
    for n in sizes:
        first.append(per_image(n))
        second.append(per_image(n))
    return {"first_ms_per_image": 1e3 * statistics.median(first), "again_ms_per_image": 1e3 * statistics.median(second),
            "sizes": [sizes.start, sizes.stop]}


def fresh(args: argparse.Namespace) -> None:
    """Each variant in a fresh process, run twice: the first run pays for every new batch shape (as
    an evaluation does), the second finds them built. CPU seconds (less sensitive to other jobs)."""
    rows = []
    for name in args.models.split(","):
        for v in VARIANTS:
            cmd = [sys.executable, __file__, "--only", v, "--models", name, "--n", str(args.n), "--steps",
                   str(args.steps), "--batch-size", str(args.batch_size), "--device", args.device]
            cmd += ["--run", args.run] if args.run else []
            cmd += ["--quick"] if args.quick else []
            done = subprocess.run(cmd, capture_output=True, text=True, check=True)
            r = json.loads(done.stdout.strip().splitlines()[-1])
            rows.append([name, v, f"{r['cpu_s'][0]:.2f}", f"{r['cpu_s'][1]:.2f}", r["sizes"], r["robust"]])
    print(f"each variant in a fresh process, run twice; PGD-{args.steps}, {args.n} images, batch {args.batch_size}")
    print(table(["model", "early stop", "first run CPU s", "second run CPU s", "distinct batch sizes", "robust"], rows))


def only(args: argparse.Namespace) -> None:
    device = resolve_device(args.device)
    model, x, y, eps, _ = model_and_data(args.models, args, device)
    es, sh = VARIANTS[args.only]
    cpu = []
    for _ in range(2):
        t0 = time.process_time()
        robust, sizes = robust_per_sample(model, x, y, eps, args.steps, args.batch_size, es, sh)
        cpu.append(time.process_time() - t0)
    print(json.dumps({"cpu_s": cpu, "sizes": sizes, "robust": int(robust.sum())}))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--run", help="a conv4 mnist5k run directory to attack (default: train one)")
    p.add_argument("--models", default=",".join(MODELS))
    p.add_argument("--n", type=int, default=1000)
    p.add_argument("--steps", type=int, default=40)
    p.add_argument("--batch-size", type=int, default=250)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--device", default="auto")
    p.add_argument("--quick", action="store_true", help="a check that it runs (< 1 min): tiny sizes, no real figures")
    p.add_argument("--json", help="where to write the results (default pgd_early_stop.json)")
    p.add_argument("--fresh", action="store_true", help="each variant in a fresh process, first run against second")
    p.add_argument("--only", choices=VARIANTS, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.quick:
        args.n, args.steps, args.batch_size, args.repeats = 64, 5, 32, 1
    if args.only:
        return only(args)
    if args.fresh:
        return fresh(args)
    device = resolve_device(args.device)
    doc = {"environment": environment(device), "args": vars(args), "models": {}}
    rows, failed = [], []
    for name in args.models.split(","):
        model, x, y, eps, origin = model_and_data(name, args, device)
        variants = {v: functools.partial(robust_per_sample, model, x, y, eps, args.steps, args.batch_size, es, sh)
                    for v, (es, sh) in VARIANTS.items()}
        # First, on batch sizes this process has not used yet (just under the batch size).
        top = min(args.batch_size, len(x)) - 1
        shape = new_shape_cost(model, x, range(top - 8, top), device)
        times, robust = alternate(variants, args.repeats, device)
        sizes = {v: robust[v][1] for v in VARIANTS}
        robust = {v: robust[v][0] for v in VARIANTS} | {f"{v}:warm-up s": robust[f"{v}:warm-up s"] for v in VARIANTS}
        same = all(torch.equal(robust["none"], robust[v]) for v in VARIANTS)
        if not same:
            failed.append(name)
        entry = {"origin": origin, "eps": eps,
                 "robust_accuracy": {v: float(robust[v].float().mean()) for v in VARIANTS},
                 "same_decisions": same, "seconds": times,
                 "warm_up_seconds": {v: robust[f"{v}:warm-up s"] for v in VARIANTS},
                 "distinct_batch_sizes": sizes, "new_shape_cost": shape,
                 "speed_up_over_none": {v: ratio(times, "none", v) for v in VARIANTS if v != "none"}}
        doc["models"][name] = entry
        for v in VARIANTS:
            t = statistics.median(times[v])
            speed = "1.00x" if v == "none" else f"{entry['speed_up_over_none'][v]['median_of_ratios']:.2f}x"
            rows.append([name, v, f"{t:.2f}", f"{len(x) / t:.0f}", speed, sizes[v],
                         f"{entry['robust_accuracy'][v]:.4f}", "yes" if same else "NO"])
    env = doc["environment"]
    print(f"{env['device']} ({env['device_name']}), torch {env['torch']}, threads {env['threads']}; PGD-{args.steps}, "
          f"{args.n} images, batch {args.batch_size}, median of {args.repeats} rotating rounds after a warm-up")
    print(table(["model", "early stop", "s", "images/s", "speed-up over none", "distinct batch sizes", "robust acc",
                 "same decisions"], rows))
    for name, entry in doc["models"].items():
        c = entry["new_shape_cost"]
        print(f"{name}: an input-gradient pass at a batch size not seen before {c['first_ms_per_image']:.3f} ms/image, "
              f"at that size again {c['again_ms_per_image']:.3f} ms/image "
              f"({c['first_ms_per_image'] / c['again_ms_per_image']:.2f}x; sizes {c['sizes'][0]}-{c['sizes'][1] - 1})")
    finish(args, "pgd_early_stop.json", doc)
    if failed:
        raise SystemExit(f"early stop changed a robust/not-robust decision on {', '.join(failed)}: a bug")


if __name__ == "__main__":
    main()
