"""Mask search speed: the optimised loop against a faithful reference loop, and a check that
they compute the same search.

The reference does what the authors' code does: every forward recomputes each mask by a
full sort, and every attack step calls `loss.backward()`, which also fills the scores'
gradients. The optimised loop (inborn's) computes each mask once per batch with `kthvalue`,
reuses it across the PGD steps, and takes gradients with respect to the input only.

Both loops start from copies of one model and see the same batches and random starts. They
run batch by batch in alternating order (reference first on even batches, optimised first on
odd ones), so a load change on a shared machine hits both; the speed-up is the median of the
per-batch ratios.

Why the check has two parts. Both loops compute the same function, but not with the same
operations: the reference's backward also computes weight and score gradients, which can
change the input gradient's last bits, flip the sign of a near-zero entry and, batches later,
move a mask entry. Such rounding grows slowly; a bug (a wrong mask, a missed gradient, a stale
batch mask) changes the search at once. So:

1. after the first batch the adversarial examples, the masks and the scores must be equal
   (the masks exactly; the examples and scores up to float32 rounding, see FIRST_BATCH_*);
2. after all batches, per masked layer, the share of equal mask entries must be at least
   MIN_MASK_AGREEMENT and the score drift (|s_opt - s_ref| over how far the reference's
   scores moved, |s_ref - s_0|) at most MAX_SCORE_DRIFT.

`tests/test_search_benchmark.py` injects each kind of bug into the optimised loop and shows
that it fails this check while the honest loop passes.

    python benchmarks/search_speed.py                   # conv4 width 0.5, mnist5k, PGD-5, 12 batches
    python benchmarks/search_speed.py --device cuda --batches 50
"""

from __future__ import annotations

import argparse
import copy
import json
import statistics
import time
from collections.abc import Callable, Sequence
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F

from inborn.attacks import PGD
from inborn.device import autocast, resolve_device
from inborn.masks import compute_masks, masked_layers, reuse_masks, scores_frozen, to_supermask
from inborn.masks.patterns import kept_groups

# Thresholds of the check (see the module docstring; tests/test_search_benchmark.py proves them).
FIRST_BATCH_MAX_EXAMPLE_CHANGE = 1e-3  # share of adversarial-example entries allowed to differ after batch 1
FIRST_BATCH_MAX_SCORE_DIFF = 1e-5  # max |s_opt - s_ref| after batch 1 over max |s_ref| (float32 ulp: 6e-8)
MIN_MASK_AGREEMENT = 0.995  # per layer, after all batches
MAX_SCORE_DRIFT = 0.05  # per layer, after all batches: |s_opt - s_ref| / |s_ref - s_0|

StepFn = Callable[[nn.Module, torch.optim.Optimizer, torch.Tensor, torch.Tensor, PGD], torch.Tensor]


def sort_mask(layer) -> torch.Tensor:
    """The reference's mask: sort every |score|, keep the top share (recomputed at every forward)."""
    s = layer.scores.abs().flatten()
    k = kept_groups(s.numel(), layer.keep_ratio)
    idx = s.sort(descending=True).indices[:k]
    mask = torch.zeros_like(s)
    mask[idx] = 1.0
    return mask.view_as(layer.scores)


def as_reference(model: nn.Module) -> nn.Module:
    """A copy of `model` whose layers compute their mask the reference's way, at every forward."""
    model = copy.deepcopy(model)
    for layer in masked_layers(model):
        layer.compute_mask = lambda layer=layer: sort_mask(layer)
    return model


def optimised_step(model: nn.Module, opt: torch.optim.Optimizer, x: torch.Tensor, y: torch.Tensor,
                   attack: PGD) -> torch.Tensor:
    """inborn's search step (as in train/loop.py): masks once per batch, no score gradient in the attack."""
    with reuse_masks(model):
        with scores_frozen(model):
            x_adv = attack(model, x, y)
        loss = F.cross_entropy(model(x_adv).float(), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
    opt.step()
    return x_adv


def reference_step(model: nn.Module, opt: torch.optim.Optimizer, x: torch.Tensor, y: torch.Tensor,
                   attack: PGD) -> torch.Tensor:
    """The authors' search step: full backward at every attack step, masks by sort at every forward."""
    eps, step_size = attack.eps, attack.step_size
    x_adv = (x + (torch.rand(x.shape, device=x.device, dtype=x.dtype) * 2 - 1) * eps).clamp(0, 1)
    for _ in range(attack.steps):
        x_adv = x_adv.detach().requires_grad_(True)
        loss = F.cross_entropy(model(x_adv).float(), y, reduction="none").sum()
        loss.backward()  # also computes (and accumulates) the scores' gradients
        x_adv = x_adv + step_size * x_adv.grad.sign()
        x_adv = (x + (x_adv - x).clamp(-eps, eps)).clamp(0, 1)
    x_adv = x_adv.detach()
    loss = F.cross_entropy(model(x_adv).float(), y)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    return x_adv


def search_optimiser(model: nn.Module) -> torch.optim.Optimizer:
    return torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.1, momentum=0.9,
                           weight_decay=5e-4)


def _scores(model: nn.Module) -> list[torch.Tensor]:
    return [layer.scores.detach().clone() for layer in masked_layers(model)]


def _timed(device: torch.device, fn: Callable[[], torch.Tensor]) -> tuple[float, torch.Tensor]:
    if device.type == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    out = fn()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - t0, out


def compare_loops(
    base: nn.Module,
    batches: Sequence[tuple[torch.Tensor, torch.Tensor]],
    *,
    eps: float,
    steps: int,
    amp: bool = False,
    optimised: StepFn = optimised_step,
    prepare_optimised: Callable[[nn.Module], nn.Module] | None = None,
) -> dict[str, Any]:
    """Run both loops from copies of `base` over `batches`, alternating, and check that they agree.

    `optimised` and `prepare_optimised` exist so that a test can inject a bug into the optimised
    loop (its step, or its model) and show that the check catches it.
    Returns the per-batch times, the first-batch and final comparisons and the verdict.
    """
    device = next(base.parameters()).device
    reference = as_reference(base)
    fast = copy.deepcopy(base)
    if prepare_optimised is not None:
        fast = prepare_optimised(fast)
    opts = {"reference": search_optimiser(reference), "optimised": search_optimiser(fast)}
    models = {"reference": reference, "optimised": fast}
    steps_of = {"reference": reference_step, "optimised": optimised}
    attack = PGD(eps, steps=steps, step_size=eps / 4, mode="train", track_best=False)
    scores0 = _scores(base)
    times: dict[str, list[float]] = {"reference": [], "optimised": []}
    first: dict[str, Any] = {}
    for model in models.values():
        model.train()
    for i, (x, y) in enumerate(batches):
        order = ("reference", "optimised") if i % 2 == 0 else ("optimised", "reference")
        x_adv = {}
        for kind in order:
            torch.manual_seed(1000 + i)  # the same random starts in both loops

            def step(kind=kind, x=x, y=y):
                with autocast(device, amp):
                    return steps_of[kind](models[kind], opts[kind], x, y, attack)

            seconds, x_adv[kind] = _timed(device, step)
            times[kind].append(seconds)
        if i == 0:
            first = _first_batch(reference, fast, x_adv["reference"], x_adv["optimised"], scores0)
    final = _final(reference, fast, scores0)
    problems = _problems(first, final)
    ratios = [r / o for r, o in zip(times["reference"], times["optimised"], strict=True)]
    return {"times": times, "ratios": ratios, "first_batch": first, "final": final, "problems": problems,
            "passed": not problems}


def _first_batch(reference: nn.Module, fast: nn.Module, adv_ref: torch.Tensor, adv_opt: torch.Tensor,
                 scores0: list[torch.Tensor]) -> dict[str, Any]:
    masks_equal = all(torch.equal(a, b) for a, b in zip(compute_masks(reference), compute_masks(fast), strict=True))
    s_ref, s_opt = _scores(reference), _scores(fast)
    scale = max(float(r.abs().max()) for r in s_ref)
    diff = max(float((r - o).abs().max()) for r, o in zip(s_ref, s_opt, strict=True))
    return {
        "examples_equal": bool(torch.equal(adv_ref, adv_opt)),
        "examples_changed_share": float(adv_ref.ne(adv_opt).float().mean()),
        "masks_equal": masks_equal,
        "scores_equal": all(torch.equal(r, o) for r, o in zip(s_ref, s_opt, strict=True)),
        "score_diff": diff / max(scale, 1e-30),
    }


def _final(reference: nn.Module, fast: nn.Module, scores0: list[torch.Tensor]) -> dict[str, Any]:
    layers = []
    for layer, m_ref, m_opt, s_ref, s_opt, s0 in zip(
        masked_layers(reference), compute_masks(reference), compute_masks(fast), _scores(reference), _scores(fast),
        scores0, strict=True,
    ):
        moved = float((s_ref - s0).norm())
        layers.append({
            "layer": getattr(layer, "layer_name", "layer"),
            "mask_agreement": float(m_ref.eq(m_opt).float().mean()),
            "mask_entries_differing": int(m_ref.ne(m_opt).sum()),
            "score_drift": float((s_opt - s_ref).norm()) / max(moved, 1e-30),
        })
    return {
        "masks_equal": all(x["mask_entries_differing"] == 0 for x in layers),
        "min_mask_agreement": min(x["mask_agreement"] for x in layers),
        "max_score_drift": max(x["score_drift"] for x in layers),
        "layers": layers,
    }


def _problems(first: dict[str, Any], final: dict[str, Any]) -> list[str]:
    out = []
    if not first["masks_equal"]:
        out.append("after the first batch the masks differ")
    if first["examples_changed_share"] > FIRST_BATCH_MAX_EXAMPLE_CHANGE:
        out.append(f"after the first batch {first['examples_changed_share']:.2%} of the adversarial examples' "
                   f"entries differ (allowed: {FIRST_BATCH_MAX_EXAMPLE_CHANGE:.2%})")
    if first["score_diff"] > FIRST_BATCH_MAX_SCORE_DIFF:
        out.append(f"after the first batch the scores differ by {first['score_diff']:.2e} of their size "
                   f"(allowed: {FIRST_BATCH_MAX_SCORE_DIFF:.0e})")
    for layer in final["layers"]:
        if layer["mask_agreement"] < MIN_MASK_AGREEMENT:
            out.append(f"layer {layer['layer']}: mask agreement {layer['mask_agreement']:.4f} "
                       f"< {MIN_MASK_AGREEMENT}")
        if layer["score_drift"] > MAX_SCORE_DRIFT:
            out.append(f"layer {layer['layer']}: score drift {layer['score_drift']:.3f} > {MAX_SCORE_DRIFT}")
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--arch", default="conv4")
    p.add_argument("--width", type=float, default=0.5)
    p.add_argument("--keep", type=float, default=0.05)
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--eps", type=float, default=0.3)
    p.add_argument("--data", default="mnist5k")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--batches", type=int, default=12)
    p.add_argument("--device", default="auto")
    p.add_argument("--amp", action="store_true", help="bf16 autocast on CUDA")
    p.add_argument("--json", help="also write the full comparison to this file")
    args = p.parse_args()
    from inborn.data import load_data
    from inborn.models import create_model

    device = resolve_device(args.device)
    splits = load_data(args.data)
    info = splits.info
    gen = torch.Generator().manual_seed(0)
    batches = list(splits.train.batches(args.batch_size, shuffle=True, generator=gen, device=device))
    batches = batches[: args.batches + 1]
    torch.manual_seed(0)
    base = to_supermask(create_model(args.arch, num_classes=info.num_classes, in_channels=info.in_channels,
                                     image_size=info.image_size, width=args.width, mean=info.mean, std=info.std),
                        args.keep).to(device)
    # Warm-up on throwaway copies, so neither loop pays for first-call allocations.
    compare_loops(base, batches[-1:], eps=args.eps, steps=args.steps, amp=args.amp)
    out = compare_loops(base, batches[:-1], eps=args.eps, steps=args.steps, amp=args.amp)
    t_ref, t_opt = sum(out["times"]["reference"]), sum(out["times"]["optimised"])
    n = sum(len(x) for x, _ in batches[:-1])
    first, final = out["first_batch"], out["final"]
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    print(f"device: {device} ({name}), torch {torch.__version__}, threads {torch.get_num_threads()}")
    print(f"{args.arch} width {args.width}, keep {args.keep}, PGD-{args.steps}, {len(batches) - 1} batches of "
          f"{args.batch_size} from {args.data}, run alternately batch by batch")
    print(f"  reference loop: {t_ref:7.2f} s  ({n / t_ref:7.1f} images/s)")
    print(f"  optimised loop: {t_opt:7.2f} s  ({n / t_opt:7.1f} images/s)")
    ratios = sorted(out["ratios"])
    print(f"  speed-up: median {statistics.median(ratios):.2f}x of {len(ratios)} per-batch ratios "
          f"(range {ratios[0]:.2f}-{ratios[-1]:.2f}; total time {t_ref / t_opt:.2f}x)")
    print(f"  after batch 1: masks equal {first['masks_equal']}, adversarial examples equal {first['examples_equal']} "
          f"({first['examples_changed_share']:.2e} of entries differ), scores equal {first['scores_equal']} "
          f"(max diff {first['score_diff']:.1e} of their size)")
    print(f"  after batch {len(ratios)}: masks equal {final['masks_equal']}, lowest per-layer mask agreement "
          f"{final['min_mask_agreement']:.5f} (>= {MIN_MASK_AGREEMENT}), highest score drift "
          f"{final['max_score_drift']:.2e} (<= {MAX_SCORE_DRIFT})")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"args": vars(args), **out}, f, indent=1)
    if out["problems"]:
        raise SystemExit("the loops disagree beyond rounding, a bug:\n  " + "\n  ".join(out["problems"]))
    print("  same search: yes (within rounding)")


if __name__ == "__main__":
    main()
