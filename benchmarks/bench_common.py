"""What the PGD and memory benchmarks share: the two models every speed figure is given for, the
alternating timer, and the JSON they write.

The two models:

- conv4 width 0.5 on mnist5k, as a user gets it: `inborn.load` on a PGD-AT run (`--run DIR`),
  or one trained here by `inborn.train` into a temporary directory (a short PGD-AT run; with
  `--quick` one natural epoch, enough to check that the benchmark works, not for its figures);
- PreActResNet-18 width 0.25 on synthetic 3x32x32 data (ten noisy class prototypes, so that the
  model learns something and an attack has work to do): built by `create_model`, trained here
  for a few FGSM-RS steps, then put on the device by `inborn.device.prepare_model` as
  `inborn.load` does (channels-last on CPU and CUDA).
"""

from __future__ import annotations

import json
import platform
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F

import inborn
from inborn.attacks import PGD
from inborn.device import prepare_model

MODELS = ("conv4", "preact_resnet18")
CIFAR_EPS = 8 / 255


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def conv4_run(run: str | None, device: torch.device, *, quick: bool, epochs: int = 3) -> tuple[nn.Module, str]:
    """An `inborn.load`ed conv4 width 0.5 mnist5k model, and where it came from."""
    if run:
        return inborn.load(run, device=device), run
    from inborn.store import ResultsDB
    from inborn.train import TrainConfig, train

    out = tempfile.mkdtemp(prefix="inborn-bench-")
    adv = "none" if quick else "pgd"
    epochs = 1 if quick else epochs
    cfg = TrainConfig(data="mnist5k", arch="conv4", width=0.5, epochs=epochs, adv=adv, eps=0.3, batch_size=64,
                      lr=0.1, schedule="piecewise", eps_warmup_epochs=min(2.0, epochs), device=str(device))
    train(cfg, out, db=ResultsDB(f"{out}/bench.db"), progress=False)
    return inborn.load(out, device=device), f"trained here: {epochs} epoch(s), adv {adv}"


def mnist_images(n: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    from inborn.data import load_data

    return load_data("mnist5k").test.head(n).tensors(device)


def synthetic(n: int, device: torch.device, *, seed: int = 0, noise: float = 0.15) -> tuple[torch.Tensor, torch.Tensor]:
    """n CIFAR-shaped images: one smooth random prototype per class plus pixel noise, in [0, 1]."""
    g = torch.Generator().manual_seed(1234)  # the prototypes, the same for every split
    protos = F.interpolate(torch.rand(10, 3, 8, 8, generator=g), size=32, mode="bilinear", align_corners=False)
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 10, (n,), generator=g)
    x = (protos[y] + noise * torch.randn(n, 3, 32, 32, generator=g)).clamp(0, 1)
    return x.to(device), y.to(device)


def resnet_model(device: torch.device, *, quick: bool, steps: int = 150) -> tuple[nn.Module, str]:
    """PreActResNet-18 width 0.25, FGSM-RS-trained on synthetic data, prepared as `inborn.load` prepares."""
    from inborn.models import create_model

    torch.manual_seed(0)
    model = create_model("preact_resnet18", num_classes=10, in_channels=3, image_size=32, width=0.25,
                         mean=[0.5] * 3, std=[0.25] * 3)
    model = prepare_model(model, device)
    steps = 4 if quick else steps
    x, y = synthetic(64 * steps, device, seed=1)
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    attack = PGD(CIFAR_EPS, steps=1, step_size=1.25 * CIFAR_EPS, track_best=False, mode="train", seed=0)
    model.train()
    for i in range(steps):
        xb, yb = x[64 * i: 64 * (i + 1)], y[64 * i: 64 * (i + 1)]
        loss = F.cross_entropy(model(attack(model, xb, yb)), yb)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return model.eval(), f"FGSM-RS-trained here for {steps} steps of 64 synthetic images"


def model_and_data(name: str, args: Any,
                   device: torch.device) -> tuple[nn.Module, torch.Tensor, torch.Tensor, float, str]:
    """(model, images, labels, ε, where the model came from) for one of MODELS."""
    if name == "conv4":
        model, origin = conv4_run(getattr(args, "run", None), device, quick=args.quick)
        x, y = mnist_images(args.n, device)
        return model, x, y, 0.3, origin
    model, origin = resnet_model(device, quick=args.quick)
    x, y = synthetic(args.n, device, seed=2)
    return model, x, y, CIFAR_EPS, origin


def alternate(variants: dict[str, Callable[[], Any]], repeats: int, device: torch.device,
              warmup: int = 1) -> tuple[dict[str, list[float]], dict[str, Any]]:
    """Each variant `warmup` times untimed, then `repeats` timed rounds, the order rotating round
    by round (so a load change on a shared machine hits all). Returns the times and the last results."""
    names = list(variants)
    results: dict[str, Any] = {}
    for _ in range(warmup):
        for name in names:
            sync(device)
            t0 = time.perf_counter()
            results[name] = variants[name]()
            sync(device)
            # Kept for the JSON: a first call pays for allocations and (CPU) oneDNN primitives per new shape.
            results[f"{name}:warm-up s"] = time.perf_counter() - t0
    times: dict[str, list[float]] = {name: [] for name in names}
    for r in range(repeats):
        k = r % len(names)
        for name in names[k:] + names[:k]:
            sync(device)
            t0 = time.perf_counter()
            results[name] = variants[name]()
            sync(device)
            times[name].append(time.perf_counter() - t0)
    return times, results


def ratio(times: dict[str, list[float]], slow: str, fast: str) -> dict[str, float]:
    """slow / fast: the median of the per-round ratios, and the ratio of the medians."""
    per_round = [s / f for s, f in zip(times[slow], times[fast], strict=True)]
    return {"median_of_ratios": statistics.median(per_round), "ratio_of_medians":
            statistics.median(times[slow]) / statistics.median(times[fast]), "per_round": per_round}


def environment(device: torch.device) -> dict[str, Any]:
    return {"device": str(device), "device_name": torch.cuda.get_device_name(device) if device.type == "cuda"
            else platform.processor() or "CPU", "torch": torch.__version__, "threads": torch.get_num_threads(),
            "python": platform.python_version()}


def write_json(path: str | None, default: str, doc: dict[str, Any]) -> str:
    out = Path(path or default)
    out.write_text(json.dumps(doc, indent=1, default=float))
    return str(out)


def finish(args: Any, default: str, doc: dict[str, Any]) -> None:
    """The JSON written (`--json`, else `default`), and a reminder when the sizes were `--quick`'s."""
    print("wrote", write_json(args.json, default, doc))
    if args.quick:
        print("(--quick: sizes too small for the figures to mean anything)")


def table(header: list[str], rows: list[list[Any]]) -> str:
    """A Markdown table (pasteable into docs/performance.md)."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)
