"""Memory of a ticket family, stored and under a PGD attack, against one dense model, 8 separate
models and 8 boolean masks over one weight tensor; and the family file on disk against 8 checkpoints.

Real measurement (any machine; memory, not time, so a busy one will do; a few minutes):

    python benchmarks/family_memory.py --json family_memory.json

Check that it works (< 1 min): `python benchmarks/family_memory.py --quick`.

Per holder of 8 tickets' worth of networks (each measured in its own subprocess):

- `one dense model`: the reference, 1 network;
- `8 separate models`: 8 dense networks, one of them attacked;
- `8 bool masks`: one weight tensor and 8 `torch.bool` masks over it (1 byte per weight per
  ticket), ticket 0's in place;
- `family`: inborn's `TicketFamily`, one weight tensor and 8 bit-packed masks (1 bit per weight
  per ticket) plus each ticket's BatchNorm statistics, ticket 0 selected.

Columns: `stored` is the bytes of the distinct tensors held (shared storage once). Under an
attack a masked network is not its stored bytes: each forward makes every layer's effective
weight (weight x mask; the family also unpacks the mask) and autograd keeps them until the
backward. `autograd keeps` is the bytes of the distinct tensors autograd saves in one forward of
the attack (counted by `torch.autograd.graph.saved_tensors_hooks`, parameters held anyway not
counted again); `attack peak` is the peak memory during a PGD attack above the memory held
before it: on CUDA `torch.cuda.max_memory_allocated`, on CPU the process's peak resident set
(VmHWM, reset through /proc/self/clear_refs before the attack; glibc told to return large
blocks at once, MALLOC_MMAP_THRESHOLD_, so that the resident set follows allocations).
`total` = stored + attack peak. Ratios are against one dense model.

Both models of the speed benchmarks: conv4 width 0.5 (1x28x28) and PreActResNet-18 width 0.25
(3x32x32), and PreActResNet-18 at full width with --widths.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import json
import os
import re
import subprocess
import sys
import tempfile
from typing import Any

import torch
from safetensors.torch import save_file

from inborn.attacks import PGD
from inborn.masks import compute_masks, masked_layers, to_supermask
from inborn.masks.family import FamilyTicket, TicketFamily, family_tensors
from inborn.masks.packing import pack_mask
from inborn.models import create_model

HOLDERS = ("one dense model", "8 separate models", "8 bool masks", "family")
SHAPES = {"conv4": (1, 28), "preact_resnet18": (3, 32)}


def held_bytes(tensors) -> int:
    """Bytes of the distinct storages behind these tensors (shared storage counted once)."""
    seen, total = set(), 0
    for t in tensors:
        storage = t.untyped_storage()
        if storage.data_ptr() not in seen:
            seen.add(storage.data_ptr())
            total += storage.nbytes()
    return total


def module_tensors(module: torch.nn.Module):
    yield from (p for p in module.parameters() if p is not None)
    yield from (b for b in module.buffers() if b is not None)


def _status_kb(key: str) -> int:
    with open("/proc/self/status") as f:
        return int(re.search(rf"{key}:\s+(\d+)", f.read()).group(1))


def build(holder: str, arch: str, width: float,
          tickets: int) -> tuple[torch.nn.Module, list[torch.Tensor], list[float]]:
    """The network to attack, every tensor the holder keeps, and the tickets' keep ratios."""
    channels, size = SHAPES[arch]
    kw = dict(num_classes=10, in_channels=channels, image_size=size, width=width)
    keeps = [round(0.02 + i * 0.9 / max(tickets - 1, 1), 3) for i in range(tickets)]
    if holder == "one dense model":
        model = create_model(arch, **kw).eval()
        return model, list(module_tensors(model)), keeps
    if holder == "8 separate models":
        models = [create_model(arch, **kw).eval() for _ in range(tickets)]
        return models[0], [t for m in models for t in module_tensors(m)], keeps
    model = to_supermask(create_model(arch, **kw), 0.5).eval()
    masks, buffers = [], []
    for i, keep in enumerate(keeps):
        for layer in masked_layers(model):
            layer.keep_ratio = keep
            layer.scores.data.normal_(generator=torch.Generator().manual_seed(i))
        masks.append([m.bool() for m in compute_masks(model)])
        buffers.append({n: b.clone() for n, b in model.named_buffers() if "running_" in n or "num_batches" in n})
    if holder == "8 bool masks":
        for layer, mask in zip(masked_layers(model), masks[0], strict=True):
            layer.scores = None
            layer.fixed_mask = mask  # weight * bool mask at each forward
        held = list(module_tensors(model)) + [m for ms in masks for m in ms]
        held += [b for bs in buffers for b in bs.values()]
        return model, held, keeps
    family = TicketFamily(model, [FamilyTicket(f"keep-{k}", k, [pack_mask(m.float()) for m in ms], bs)
                                  for k, ms, bs in zip(keeps, masks, buffers, strict=True)]).eval()
    family.select(0)
    held = list(module_tensors(family.model))
    for t in family.tickets:
        held += t.packed_masks + list(t.buffers.values())
    return family, held, keeps


def child(holder: str, arch: str, width: float, tickets: int, batch: int, steps: int, device: str) -> dict[str, Any]:
    """One holder's measurement, in this (fresh) process."""
    dev = torch.device(device)
    model, held, _ = build(holder, arch, width, tickets)
    model = model.to(dev)
    held = [t.to(dev) for t in held] if dev.type == "cuda" else held
    channels, size = SHAPES[arch]
    g = torch.Generator().manual_seed(0)
    x = torch.rand(batch, channels, size, size, generator=g).to(dev)
    y = torch.randint(0, 10, (batch,), generator=g).to(dev)
    attack = PGD(8 / 255, steps=steps, seed=0)
    attack(model, x[:2], y[:2])  # first-call allocations out of the way

    # What autograd keeps in one forward (distinct storages; parameters, held anyway, not counted).
    params = {t.untyped_storage().data_ptr() for t in held}
    saved: dict[int, int] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        ptr = t.untyped_storage().data_ptr()
        if ptr not in params:
            saved[ptr] = t.untyped_storage().nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        x_req = x.clone().requires_grad_(True)
        out = model(x_req)
    del out, x_req
    out: dict[str, Any] = {"stored": held_bytes(held), "autograd_keeps": sum(saved.values())}
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)
        torch.cuda.reset_peak_memory_stats(dev)
        before = torch.cuda.memory_allocated(dev)
        attack(model, x, y)
        torch.cuda.synchronize(dev)
        out["attack_peak"] = torch.cuda.max_memory_allocated(dev) - before
        out["peak_by"] = "torch.cuda.max_memory_allocated"
    else:
        with contextlib.suppress(OSError, AttributeError):  # malloc_trim is glibc's
            ctypes.CDLL("libc.so.6").malloc_trim(0)
        before = _status_kb("VmRSS")
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # resets VmHWM to the current resident set
        attack(model, x, y)
        out["attack_peak"] = max(0, _status_kb("VmHWM") - before) * 1024
        out["peak_by"] = "peak resident set (VmHWM) above the resident set before"
    return out


def measure(holder: str, args: argparse.Namespace, arch: str, width: float) -> dict[str, Any]:
    env = {**os.environ, "MALLOC_MMAP_THRESHOLD_": "65536", "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
    cmd = [sys.executable, __file__, "--child", holder, "--arch", arch, "--width", str(width), "--tickets",
           str(args.tickets), "--batch", str(args.batch), "--steps", str(args.steps), "--device", args.device]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{holder} on {arch}: the measurement failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def disk(arch: str, width: float, tickets: int) -> tuple[int, int]:
    family, _, _ = build("family", arch, width, tickets)
    dense, _, _ = build("one dense model", arch, width, tickets)
    with tempfile.TemporaryDirectory() as tmp:
        tensors, meta = family_tensors(family)
        save_file(tensors, f"{tmp}/family.safetensors", metadata=meta)
        save_file({k: v.contiguous() for k, v in dense.state_dict().items()}, f"{tmp}/dense.safetensors")
        return os.path.getsize(f"{tmp}/family.safetensors"), tickets * os.path.getsize(f"{tmp}/dense.safetensors")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", default="conv4:0.5,preact_resnet18:0.25", help="arch:width, comma-separated")
    p.add_argument("--widths", action="store_true", help="also PreActResNet-18 at width 1")
    p.add_argument("--tickets", type=int, default=8)
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--steps", type=int, default=3, help="PGD steps (the peak is one step's)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--quick", action="store_true", help="a check that it runs (< 1 min): batch 16, one step")
    p.add_argument("--json", help="where to write the results (default family_memory.json)")
    p.add_argument("--child", help=argparse.SUPPRESS)
    p.add_argument("--arch", help=argparse.SUPPRESS)
    p.add_argument("--width", type=float, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.arch, args.width, args.tickets, args.batch, args.steps, args.device)))
        return
    if args.quick:
        args.batch, args.steps = 16, 1
    models = [(a, float(w)) for a, w in (m.split(":") for m in args.models.split(","))]
    if args.widths:
        models.append(("preact_resnet18", 1.0))
    doc: dict[str, Any] = {"args": vars(args), "torch": torch.__version__, "models": {}}
    print(f"torch {torch.__version__}, {args.device}; {args.tickets} tickets; PGD-{args.steps} on a batch of "
          f"{args.batch}, ε 8/255; MB = 1e6 bytes; x = against one dense model")
    print("| model | holder | stored MB | x | autograd keeps MB | attack peak MB | stored + peak MB | x |")
    print("|---|---|---|---|---|---|---|---|")
    for arch, width in models:
        results = {h: measure(h, args, arch, width) for h in HOLDERS}
        family_file, dense_files = disk(arch, width, args.tickets)
        doc["models"][f"{arch}:{width}"] = {"holders": results, "family_file": family_file,
                                            "dense_checkpoints": dense_files}
        ref = results["one dense model"]
        for h, r in results.items():
            total, ref_total = r["stored"] + r["attack_peak"], ref["stored"] + ref["attack_peak"]
            print(f"| {arch} {width} | {h} | {r['stored'] / 1e6:.2f} | {r['stored'] / ref['stored']:.2f}x | "
                  f"{r['autograd_keeps'] / 1e6:.2f} | {r['attack_peak'] / 1e6:.2f} | {total / 1e6:.2f} | "
                  f"{total / ref_total:.2f}x |")
        print(f"  on disk: family file {family_file / 1e6:.2f} MB (weights redrawn from their seed) against "
              f"{args.tickets} dense checkpoints {dense_files / 1e6:.2f} MB ({dense_files / family_file:.1f}x larger)")
    out = args.json or "family_memory.json"
    with open(out, "w") as f:
        json.dump(doc, f, indent=1)
    print("wrote", out)
    if args.quick:
        print("(--quick: batch 16, one step: the peaks are small-batch ones)")
    bad = [m for m, d in doc["models"].items()
           if d["holders"]["family"]["stored"] >= 1.5 * d["holders"]["one dense model"]["stored"]]
    if bad:
        raise SystemExit(f"the family stores 1.5x a dense model or more on {', '.join(bad)}: a regression")


if __name__ == "__main__":
    main()
