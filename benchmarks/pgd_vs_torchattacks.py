"""inborn's PGD against torchattacks' PGD: time and robust accuracy, side by side in one process.

torchattacks is not a dependency of inborn: install it for this benchmark only, without its
dependencies (it imports without torchvision), e.g. `pip install --no-deps torchattacks==3.5.1`.
Without it the benchmark says so and exits 0.

Both attack the same model on the same images with the same ε, step and number of steps, in
alternating order; the times are medians over the repeats. inborn's PGD runs as evaluation runs
it (per-sample early stop, best iterate kept, on the BatchNorm-folded copy of the model), so its
robust accuracy may only be lower; both attacks' examples are judged by the model itself.

    python benchmarks/pgd_vs_torchattacks.py              # trains a small PGD-AT conv4 on mnist5k first
    python benchmarks/pgd_vs_torchattacks.py --run runs/at --steps 40 --n 1000
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import time
from pathlib import Path

import torch

from inborn.attacks import PGD
from inborn.data import load_data
from inborn.device import resolve_device
from inborn.evaluation.evaluate import predict
from inborn.models.fold import fold_batch_norm


def _early_stop_benchmark():
    spec = importlib.util.spec_from_file_location("pgd_early_stop", Path(__file__).with_name("pgd_early_stop.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--run", help="a run directory to attack (default: train one)")
    p.add_argument("--adv", default="pgd")
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--eps", type=float, default=0.3)
    p.add_argument("--steps", type=int, default=40)
    p.add_argument("--n", type=int, default=500)
    p.add_argument("--batch-size", type=int, default=250)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--device", default="auto")
    args = p.parse_args()
    try:
        import torchattacks
    except ImportError:
        print("torchattacks is not installed (pip install --no-deps torchattacks): nothing to compare, skipped")
        return
    device = resolve_device(args.device)
    torch.manual_seed(0)
    model = _early_stop_benchmark()._model(args, device).eval()
    x, y = load_data("mnist5k").test.head(args.n).tensors(device)
    step = args.eps / 4

    surrogate = fold_batch_norm(model)  # as inborn's evaluation attacks it; `predict(model, ...)` judges both

    def ours(xb, yb, seed):
        return PGD(args.eps, steps=args.steps, step_size=step, seed=seed, early_stop=True)(surrogate, xb, yb)

    def theirs(xb, yb, seed):
        torch.manual_seed(seed)
        return torchattacks.PGD(model, eps=args.eps, alpha=step, steps=args.steps, random_start=True)(xb, yb)

    def run(attack) -> tuple[float, float]:
        correct = 0
        if device.type == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        for s in range(0, len(x), args.batch_size):
            xb, yb = x[s : s + args.batch_size], y[s : s + args.batch_size]
            correct += predict(model, attack(xb, yb, s)).eq(yb).sum().item()
        if device.type == "cuda":
            torch.cuda.synchronize()
        return time.perf_counter() - t0, correct / len(x)

    run(ours)  # warm-up
    times: dict[str, list[float]] = {"inborn": [], "torchattacks": []}
    robust: dict[str, float] = {}
    for r in range(args.repeats):
        order = (("inborn", ours), ("torchattacks", theirs))
        for name, attack in order if r % 2 == 0 else order[::-1]:
            seconds, acc = run(attack)
            times[name].append(seconds)
            robust[name] = acc
    t_ours, t_theirs = statistics.median(times["inborn"]), statistics.median(times["torchattacks"])
    ratios = [t / o for o, t in zip(times["inborn"], times["torchattacks"], strict=True)]
    print(f"device: {device}, torch {torch.__version__}, threads {torch.get_num_threads()}, "
          f"torchattacks {torchattacks.__version__}")
    print(f"PGD-{args.steps} at ε={args.eps}, step ε/4, on {len(x)} mnist5k test images, batch {args.batch_size}, "
          f"median of {args.repeats} alternating runs")
    print(f"  inborn:       {t_ours:7.2f} s   robust acc {robust['inborn']:.4f}")
    print(f"  torchattacks: {t_theirs:7.2f} s   robust acc {robust['torchattacks']:.4f}")
    print(f"  inborn is {t_theirs / t_ours:.2f}x faster (per-run ratios {', '.join(f'{r:.2f}' for r in ratios)})")
    if robust["inborn"] > robust["torchattacks"] + 0.02:
        raise SystemExit("inborn's PGD is weaker than torchattacks' by more than 2 points: look into it")


if __name__ == "__main__":
    main()
