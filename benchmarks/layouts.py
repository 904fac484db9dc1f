"""Channels-last against the default memory layout on this device, per zoo model: the measurement
behind `inborn.device.use_channels_last`.

One training step (forward, cross-entropy, backward; tickets with their masks computed once per
step, as the search does) on random CIFAR-shaped data, both layouts alternating in one process;
the medians of the timed steps.

Real measurement (quiet machine, one thread): `OMP_NUM_THREADS=1 python benchmarks/layouts.py --steps 10`
(the default list, conv4 and PreActResNet-18 among them, width 0.25, batch 64); it prints a
Markdown table and writes JSON (--json). Check that it works (< 1 min, figures meaningless):
`python benchmarks/layouts.py --quick` (conv4 and PreActResNet-18 only, 2 steps of batch 16).

    python benchmarks/layouts.py --models conv4,resnet18 --batch 128
"""

from __future__ import annotations

import argparse
import copy
import json
import statistics
import time

import torch
import torch.nn.functional as F

from inborn.device import resolve_device, use_channels_last
from inborn.masks import reuse_masks, to_supermask
from inborn.models import create_model

DEFAULT = "conv4,vgg11_bn,resnet18,preact_resnet18,densenet121,wide_resnet,mobilenet_v2,darts_v2"


def step_seconds(models: dict[str, torch.nn.Module], x: torch.Tensor, y: torch.Tensor, steps: int) -> dict[str, float]:
    times: dict[str, list[float]] = {k: [] for k in models}
    for i in range(steps + 2):
        for name, model in (list(models.items()) if i % 2 == 0 else list(models.items())[::-1]):
            if x.device.type == "cuda":
                torch.cuda.synchronize()
            t0 = time.perf_counter()
            with reuse_masks(model):
                F.cross_entropy(model(x.clone().requires_grad_(True)), y).backward()
            if x.device.type == "cuda":
                torch.cuda.synchronize()
            if i >= 2:  # two warm-up rounds
                times[name].append(time.perf_counter() - t0)
    return {k: statistics.median(v) for k, v in times.items()}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", default=DEFAULT)
    p.add_argument("--width", type=float, default=0.25)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--steps", type=int, default=6)
    p.add_argument("--device", default="cpu")
    p.add_argument("--quick", action="store_true", help="a check that it runs (< 1 min): conv4 and preact_resnet18")
    p.add_argument("--json", help="where to write the results (default layouts.json)")
    args = p.parse_args()
    if args.quick:
        args.models, args.batch, args.steps = "conv4,preact_resnet18", 16, 2
    results = []
    device = resolve_device(args.device)
    torch.manual_seed(0)
    x = torch.rand(args.batch, 3, 32, 32, device=device)
    y = torch.randint(0, 10, (args.batch,), device=device)
    print(f"torch {torch.__version__}, {device}, threads {torch.get_num_threads()}; one train step, batch "
          f"{args.batch}, width {args.width}, 3x32x32; median of {args.steps}")
    print("| model | kind | default layout ms | channels-last ms | channels-last speed-up | inborn uses |")
    print("|---|---|---|---|---|---|")
    for arch in args.models.split(","):
        base = create_model(arch, num_classes=10, in_channels=3, image_size=32, width=args.width,
                            mean=[0.5] * 3, std=[0.25] * 3)
        for kind in ("dense", "ticket"):
            model = to_supermask(copy.deepcopy(base), 0.1) if kind == "ticket" else copy.deepcopy(base)
            model = model.to(device).train()
            pair = {"default": model, "channels_last": copy.deepcopy(model).to(memory_format=torch.channels_last)}
            t = step_seconds(pair, x, y, args.steps)
            chosen = "channels-last" if use_channels_last(model, device) else "default"
            print(f"| {arch} | {kind} | {1e3 * t['default']:.1f} | {1e3 * t['channels_last']:.1f} | "
                  f"{t['default'] / t['channels_last']:.2f}x | {chosen} |")
            results.append({"model": arch, "kind": kind, "seconds": t, "inborn_uses": chosen})
    out = args.json or "layouts.json"
    with open(out, "w") as f:
        json.dump({"args": vars(args), "torch": torch.__version__, "threads": torch.get_num_threads(),
                   "results": results}, f, indent=1)
    print("wrote", out)
    if args.quick:
        print("(--quick: 2 steps of batch 16: the figures mean nothing)")


if __name__ == "__main__":
    main()
