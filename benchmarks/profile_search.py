"""Where the time goes: torch.profiler over one search epoch and one PGD-20 evaluation, grouped
by kind of work, with the achieved FLOP/s against this machine's matmul FLOP/s measured in the
same process (docs/performance.md quotes its output).

The model runs as inborn runs it (`prepare_model`: channels-last on CPU; inborn's kernels;
the evaluation's BatchNorm-folded copy); `--stock` profiles the same loops on stock PyTorch
(default layout, no inborn kernels, no folding), for the before-and-after.

    python benchmarks/profile_search.py                 # conv4 width 0.5, mnist5k, PGD-5 search, keep 0.05
    python benchmarks/profile_search.py --stock
    python benchmarks/profile_search.py --batches 8 --n 250   # shorter
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import time
from collections import defaultdict
from pathlib import Path

import torch
from torch.profiler import ProfilerActivity, profile

from inborn.attacks import PGD
from inborn.data import load_data
from inborn.device import prepare_model
from inborn.masks import fix_masks, to_supermask
from inborn.models import create_model, kernels
from inborn.models.fold import fold_batch_norm

# Operator name -> kind of work. The order matters: the first matching rule wins.
GROUPS = [
    ("conv backward", ("convolution_backward",)),
    ("conv forward", ("mkldnn_convolution", "_convolution", "aten::convolution", "conv2d", "thnn_conv")),
    ("first conv as unfold + matmul (im2col, col2im)", ("im2col", "col2im")),
    ("matmuls: linear layers, first conv", ("aten::mm", "aten::addmm", "aten::bmm", "aten::linear", "aten::matmul")),
    ("BatchNorm fwd+bwd", ("batch_norm",)),
    ("ReLU / max-pool fwd+bwd", ("threshold", "clamp_min", "relu", "max_pool")),
    ("masks (top-k, STE)", ("kthvalue", "sort", "cumsum", "aten::abs", "aten::gt", "aten::__or__", "aten::bitwise")),
    ("loss (softmax / CE)", ("log_softmax", "nll_loss", "cross_entropy")),
    ("optimiser (SGD)", ("_foreach", "sgd", "Optimizer")),
]


def _sibling(name: str):
    spec = importlib.util.spec_from_file_location(name, Path(__file__).with_name(f"{name}.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def matmul_flops(seconds: float = 3.0, n: int = 1024) -> float:
    """Float32 FLOP/s of a square matmul on all threads: the machine's practical peak."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b
    done, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        a @ b
        done += 1
    return 2 * n**3 * done / (time.perf_counter() - t0)


def forward_flops(model: torch.nn.Module, x: torch.Tensor) -> float:
    """FLOPs of one forward of the convolutions and matmuls (the profiler's count)."""
    with torch.no_grad(), profile(activities=[ProfilerActivity.CPU], with_flops=True) as prof:
        model(x)
    return float(sum(e.flops for e in prof.key_averages() if e.flops))


def grouped(prof) -> tuple[list[tuple[str, float]], float]:
    """Self CPU seconds per kind of work; what no rule matches is elementwise / attack / Python work."""
    out: dict[str, float] = defaultdict(float)
    total = 0.0
    for e in prof.key_averages():
        if e.key.startswith(("ProfilerStep", "search", "evaluation")):
            continue
        seconds = e.self_cpu_time_total / 1e6
        total += seconds
        for name, keys in GROUPS:
            if any(k in e.key for k in keys):
                out[name] += seconds
                break
        else:
            out["elementwise: attack steps, mask multiply, copies"] += seconds
    return sorted(out.items(), key=lambda kv: -kv[1]), total


def report(title: str, prof, wall: float, flops: float, peak: float) -> None:
    rows, total = grouped(prof)
    print(f"\n{title}: {wall:.2f} s wall, {total:.2f} s in operators; "
          f"{flops / wall / 1e9:.1f} GFLOP/s = {flops / wall / peak:.1%} of the matmul peak")
    print("| work | self CPU s | share |")
    print("|---|---|---|")
    for name, seconds in rows:
        print(f"| {name} | {seconds:.2f} | {seconds / wall:.1%} |")
    print(f"| Python and dispatch overhead (wall minus operators) | {max(wall - total, 0):.2f} | "
          f"{max(wall - total, 0) / wall:.1%} |")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--batches", type=int, default=None, help="search batches (default: one epoch)")
    p.add_argument("--n", type=int, default=500, help="test images for the PGD-20 evaluation")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--eval-batch-size", type=int, default=250)
    p.add_argument("--stock", action="store_true", help="stock PyTorch: default layout, no inborn kernels")
    args = p.parse_args()
    with kernels.stock() if args.stock else contextlib.nullcontext():
        run(args)


def run(args: argparse.Namespace) -> None:
    bench = _sibling("search_speed")
    splits = load_data("mnist5k")
    info = splits.info
    gen = torch.Generator().manual_seed(0)
    batches = list(splits.train.batches(args.batch_size, shuffle=True, generator=gen))
    batches = batches[: args.batches] if args.batches else batches
    torch.manual_seed(0)
    model = to_supermask(create_model("conv4", num_classes=10, in_channels=1, image_size=28, width=0.5,
                                      mean=info.mean, std=info.std), 0.05)
    peak = matmul_flops()
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}; "
          f"float32 matmul 1024x1024: {peak / 1e9:.1f} GFLOP/s")
    fwd = forward_flops(model.eval(), batches[0][0][:1])
    # Stock: the papers' layer order too (inborn's conv nets pool before the ReLU, the same function).
    model = _sibling("ablation").relu_before_pool(model) if args.stock else prepare_model(model, torch.device("cpu"))
    print("stock PyTorch, default layout" if args.stock else "inborn: prepare_model (channels-last), its kernels")
    print(f"one forward of one image: {fwd / 1e6:.1f} MFLOP (convolutions and matmuls)")

    steps = 5
    attack = PGD(0.3, steps=steps, step_size=0.3 / 4, mode="train", track_best=False)
    opt = bench.search_optimiser(model)
    model.train()
    bench.optimised_step(model, opt, *batches[0], attack)  # warm-up
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        t0 = time.perf_counter()
        for x, y in batches:
            bench.optimised_step(model, opt, x, y, attack)
        wall = time.perf_counter() - t0
    images = sum(len(y) for _, y in batches)
    # Forward-equivalents per image: steps+1 forwards, steps input-only backwards (~1 forward
    # each), one full backward (input and weight gradients, ~2 forwards).
    report(f"search, {len(batches)} batches of {args.batch_size} ({images} images), PGD-{steps}", prof, wall,
           images * fwd * (2 * steps + 3), peak)

    fix_masks(model)
    model.eval()
    model = model if args.stock else fold_batch_norm(model)  # as inborn's evaluation attacks it
    x, y = splits.test.head(args.n).tensors()
    attack = PGD(0.3, steps=20, step_size=0.3 / 4, seed=0, early_stop=False)
    attack(model, x[:16], y[:16])
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        t0 = time.perf_counter()
        for s in range(0, len(x), args.eval_batch_size):
            attack(model, x[s : s + args.eval_batch_size], y[s : s + args.eval_batch_size])
        wall = time.perf_counter() - t0
    # 20 gradient steps (forward + input backward) and the final scoring forward.
    report(f"PGD-20 evaluation of {len(x)} images, batch {args.eval_batch_size}, no early stop", prof, wall,
           len(x) * fwd * 41, peak)


if __name__ == "__main__":
    main()
