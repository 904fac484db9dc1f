"""inborn's PGD against torchattacks' PGD on the same model, with early stop and BatchNorm folding
shown as separate factors.

Real measurement (quiet machine, one thread, about 30 minutes; the lead's figures in docs/performance.md):

    pip install --no-deps torchattacks==3.5.1
    inborn train --out /tmp/bench-at --data mnist5k --arch conv4 --width 0.5 --epochs 3 --adv pgd --eps 0.3 \\
        --eps-warmup 2 --batch-size 64 --lr 0.1 --schedule piecewise
    OMP_NUM_THREADS=1 python benchmarks/pgd_vs_torchattacks.py --run /tmp/bench-at --n 1000 --steps 40 --repeats 5

Check that it works (< 1 min, figures meaningless): `python benchmarks/pgd_vs_torchattacks.py --quick`.

torchattacks is not a dependency of inborn (nor of its dev extra): install it for this benchmark
only, without its dependencies (it imports without torchvision). Without it the benchmark says
so and exits 0.

For each model (conv4 width 0.5 on mnist5k through `inborn.load`, PreActResNet-18 width 0.25
on synthetic 3x32x32 data; see bench_common.py) the variants are, all on that one model as the
user has it (channels-last on CPU, as `inborn.load` prepares it):

- `torchattacks`: `torchattacks.PGD(model, eps, alpha, steps, random_start=True)`;
- `inborn`: `inborn.attacks.PGD(eps, steps=..., step_size=...)` (best iterate kept, no early stop);
- `inborn +early stop`: the same with `early_stop=True`;
- `inborn +folding`: without early stop, on `inborn.models.fold.fold_batch_norm(model)`, the copy
  that `inborn evaluate` attacks (BatchNorm folded into the convolution before it, for pairs
  inside an `nn.Sequential` only: all 4 of conv4's, none of PreActResNet-18's 17, whose blocks
  wire conv and BatchNorm in their own forward; there the folded copy is the same network, and
  the table says how many were folded);
- `inborn both`: early stop on the folded copy (what `inborn evaluate` runs).

Same ε, step and number of steps; every variant warmed up once, then all in rotating order; the
times are medians and the speed-ups the medians of the per-round ratios. The examples of every
variant are judged by the model itself; inborn keeps each sample's best iterate, so its robust
accuracy can only be lower than torchattacks' last-iterate one, up to the random start.
Prints a table, writes JSON (--json).
"""

from __future__ import annotations

import argparse
import statistics
from collections.abc import Callable
from typing import Any

import torch
from bench_common import MODELS, alternate, environment, finish, model_and_data, ratio, table

from inborn.attacks import PGD
from inborn.device import resolve_device
from inborn.evaluation.evaluate import predict
from inborn.models.fold import fold_batch_norm

VARIANTS = ("torchattacks", "inborn", "inborn +early stop", "inborn +folding", "inborn both")


def run_model(name: str, args: argparse.Namespace, device: torch.device, torchattacks: Any) -> dict[str, Any]:
    """The five variants on one model, alternating; their times, robust accuracies and factors."""
    model, x, y, eps, origin = model_and_data(name, args, device)
    folded = fold_batch_norm(model)
    bns = sum(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules())
    folded_bns = bns - sum(isinstance(m, torch.nn.BatchNorm2d) for m in folded.modules())
    step = eps / 30  # the PGD(0.3, steps=40, step_size=0.01)

    def attack_all(make: Callable[[int], Callable[[torch.Tensor, torch.Tensor], torch.Tensor]]) -> float:
        correct = 0
        for s in range(0, len(x), args.batch_size):
            xb, yb = x[s: s + args.batch_size], y[s: s + args.batch_size]
            correct += int(predict(model, make(s)(xb, yb)).eq(yb).sum())
        return correct / len(x)

    def ours(early_stop: bool, surrogate: torch.nn.Module) -> Callable[[], float]:
        return lambda: attack_all(lambda s: (lambda xb, yb: PGD(eps, steps=args.steps, step_size=step, seed=s,
                                                                early_stop=early_stop)(surrogate, xb, yb)))

    def theirs(s: int) -> Any:
        torch.manual_seed(s)
        return torchattacks.PGD(model, eps=eps, alpha=step, steps=args.steps, random_start=True)

    variants = {"torchattacks": lambda: attack_all(theirs), "inborn": ours(False, model),
                "inborn +early stop": ours(True, model), "inborn +folding": ours(False, folded),
                "inborn both": ours(True, folded)}
    times, robust = alternate(variants, args.repeats, device)
    return {"origin": origin, "eps": eps, "step_size": step, "batchnorms_folded": f"{folded_bns} of {bns}",
            "robust_accuracy": {v: robust[v] for v in VARIANTS}, "seconds": times,
            "warm_up_seconds": {v: robust[f"{v}:warm-up s"] for v in VARIANTS},
            "speed_up_over_torchattacks": {v: ratio(times, "torchattacks", v) for v in VARIANTS[1:]},
            "early_stop_factor": ratio(times, "inborn", "inborn +early stop"),
            "folding_factor": ratio(times, "inborn", "inborn +folding")}


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
    p.add_argument("--json", help="where to write the results (default pgd_vs_torchattacks.json)")
    args = p.parse_args()
    try:
        import torchattacks
    except ImportError:
        print("torchattacks is not installed (pip install --no-deps torchattacks==3.5.1): nothing to compare, skipped")
        return
    if args.quick:
        args.n, args.steps, args.batch_size, args.repeats = 64, 5, 32, 1
    device = resolve_device(args.device)
    doc = {"environment": {**environment(device), "torchattacks": torchattacks.__version__}, "args": vars(args),
           "models": {}}
    rows, weaker = [], []
    for name in args.models.split(","):
        entry = doc["models"][name] = run_model(name, args, device, torchattacks)
        times, robust = entry["seconds"], entry["robust_accuracy"]
        for v in VARIANTS:
            speed = "1.00x" if v == "torchattacks" else \
                f"{entry['speed_up_over_torchattacks'][v]['median_of_ratios']:.2f}x"
            rows.append([name, v, f"{statistics.median(times[v]):.2f}", speed, f"{robust[v]:.4f}"])
        if robust["inborn both"] > robust["torchattacks"] + 0.02:
            weaker.append(name)
    env = doc["environment"]
    print(f"{env['device']} ({env['device_name']}), torch {env['torch']}, threads {env['threads']}, torchattacks "
          f"{env['torchattacks']}; PGD-{args.steps}, step ε/30, {args.n} images, batch {args.batch_size}, median of "
          f"{args.repeats} rotating rounds after a warm-up of each")
    print(table(["model", "attack", "s", "speed-up over torchattacks", "robust acc"], rows))
    for name, entry in doc["models"].items():
        print(f"{name}: early stop alone {entry['early_stop_factor']['median_of_ratios']:.2f}x, folding alone "
              f"{entry['folding_factor']['median_of_ratios']:.2f}x (over inborn plain; "
              f"{entry['batchnorms_folded']} BatchNorms folded)")
    finish(args, "pgd_vs_torchattacks.json", doc)
    if weaker:
        raise SystemExit(f"inborn's PGD is weaker than torchattacks' by more than 2 points on {', '.join(weaker)}")


if __name__ == "__main__":
    main()
