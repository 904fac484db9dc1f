"""What each CPU optimisation buys: the search step and a PGD evaluation with each switched off.

Isolated kernel timings mislead on CPU (a lone op's output buffer is page-faulted in afresh on
every call; inside a loop the allocator reuses it), so every variant here runs the real step,
in rotating order batch by batch in one process, and the figure is the median time per batch.

Search (inborn's optimised step, benchmarks/search_speed.py, conv4 width 0.5, mnist5k, keep
0.05, PGD-5, batch 128), from everything on to nothing on:
  inborn                  channels-last, small-fan-in conv, max-pool before ReLU
  - channels-last         the default layout (then the channels-last max-pool kernel applies)
  - both pool paths       the default layout and ATen's NCHW max-pool
  - small-fan-in conv     oneDNN for the first convolution
  - pool before ReLU      the ReLU before the max-pool, as written in the papers
  stock PyTorch           all of it off
Evaluation (PGD-20, 500 mnist5k test images, batch 250, masks fixed, no early stop): inborn
(BatchNorm folded), - folding, stock PyTorch.

    python benchmarks/ablation.py
    python benchmarks/ablation.py --batches 6 --n 250     # shorter
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import importlib.util
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn as nn

from inborn.attacks import PGD
from inborn.data import load_data
from inborn.device import prepare_model
from inborn.masks import fix_masks, to_supermask
from inborn.models import create_model, kernels
from inborn.models.fold import fold_batch_norm

CPU = torch.device("cpu")


def _search_benchmark():
    spec = importlib.util.spec_from_file_location("search_speed", Path(__file__).with_name("search_speed.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def relu_before_pool(model: nn.Module) -> nn.Module:
    """The same network with every (max-pool, ReLU) pair of a Sequential back in the papers' order."""
    for seq in [m for m in model.modules() if isinstance(m, nn.Sequential)]:
        names = list(seq._modules)
        for a, b in zip(names, names[1:], strict=False):
            if isinstance(seq._modules[a], nn.MaxPool2d) and isinstance(seq._modules[b], nn.ReLU):
                seq._modules[a], seq._modules[b] = seq._modules[b], seq._modules[a]
    return model


def rotate(variants: dict[str, Callable[[int], object]], rounds: int, warmup: int = 1) -> dict[str, float]:
    """Median seconds per call of each variant, called in rotating order `rounds` times."""
    names = list(variants)
    times: dict[str, list[float]] = {n: [] for n in names}
    for i in range(warmup + rounds):
        for name in names[i % len(names):] + names[: i % len(names)]:
            t0 = time.perf_counter()
            variants[name](i)
            if i >= warmup:
                times[name].append(time.perf_counter() - t0)
    return {n: statistics.median(t) for n, t in times.items()}


def search_ablation(base: nn.Module, batches, eps: float, steps: int) -> dict[str, float]:
    bench = _search_benchmark()
    fast = prepare_model(copy.deepcopy(base), CPU)
    setups = {  # name: (model, kernel paths switched off)
        "inborn": (fast, ()),
        "- channels-last": (copy.deepcopy(base), ()),
        "- both pool paths": (copy.deepcopy(base), ("max_pool",)),
        "- small-fan-in conv": (copy.deepcopy(fast), ("conv",)),
        "- pool before ReLU": (relu_before_pool(copy.deepcopy(fast)), ()),
        "stock PyTorch": (relu_before_pool(copy.deepcopy(base)), kernels.PATHS),
    }
    attack = PGD(eps, steps=steps, step_size=eps / 4, mode="train", track_best=False)
    variants = {}
    for name, (model, off) in setups.items():
        model.train()
        opt = bench.search_optimiser(model)

        def run(i, model=model, opt=opt, off=off):
            x, y = batches[i % len(batches)]
            with kernels.stock(*off) if off else contextlib.nullcontext():
                bench.optimised_step(model, opt, x, y, attack)
        variants[name] = run
    return rotate(variants, len(batches))


def eval_ablation(base: nn.Module, x: torch.Tensor, y: torch.Tensor, eps: float, batch: int,
                  repeats: int) -> dict[str, float]:
    ticket = copy.deepcopy(base)
    fix_masks(ticket)
    fast = prepare_model(copy.deepcopy(ticket), CPU).eval()
    setups = {
        "inborn": (fold_batch_norm(fast), ()),
        "- BatchNorm folding": (fast, ()),
        "stock PyTorch": (relu_before_pool(copy.deepcopy(ticket)).eval(), kernels.PATHS),
    }
    variants = {}
    for name, (model, off) in setups.items():
        def run(i, model=model, off=off):
            attack = PGD(eps, steps=20, seed=0)
            with kernels.stock(*off) if off else contextlib.nullcontext():
                for s in range(0, len(x), batch):
                    attack(model, x[s : s + batch], y[s : s + batch])
        variants[name] = run
    return rotate(variants, repeats)


def _table(title: str, medians: dict[str, float], unit: str) -> None:
    best = medians["inborn"]
    print(f"| {title} | {unit} | vs inborn |")
    print("|---|---|---|")
    for name, t in medians.items():
        print(f"| {name} | {t:.3f} | {t / best:.2f}x |")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--batches", type=int, default=12)
    p.add_argument("--n", type=int, default=500)
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args()
    splits = load_data("mnist5k")
    info = splits.info
    gen = torch.Generator().manual_seed(0)
    batches = list(splits.train.batches(128, shuffle=True, generator=gen))[: args.batches]
    torch.manual_seed(0)
    base = to_supermask(create_model("conv4", num_classes=info.num_classes, in_channels=info.in_channels,
                                     image_size=info.image_size, width=0.5, mean=info.mean, std=info.std), 0.05)
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}; conv4 width 0.5, mnist5k, keep 0.05")
    _table(f"search step, PGD-5, batch 128 (median of {args.batches})", search_ablation(base, batches, 0.3, 5),
           "s/batch")
    x, y = splits.test.head(args.n).tensors()
    print()
    _table(f"PGD-20 evaluation of {args.n} images, batch 250 (median of {args.repeats})",
           eval_ablation(base, x, y, 0.3, 250, args.repeats), "s")


if __name__ == "__main__":
    main()
