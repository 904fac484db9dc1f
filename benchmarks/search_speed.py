"""Mask search speed: the optimised loop against a faithful reference loop, and a check that
they compute the same search.

The reference does what the authors' code does, on stock PyTorch: every forward recomputes
each mask by a full sort, every attack step calls `loss.backward()` (which also fills the
scores' gradients), and the model runs in PyTorch's default layout with PyTorch's kernels.
(Its layers are inborn's, max-pool before ReLU: the papers' function, and a little faster
than their order, so the reference is, if anything, flattered.) The optimised loop is
inborn's: each mask once per batch by `kthvalue`, reused across the PGD steps, gradients with
respect to the input only, on the model as inborn prepares it for the device
(`inborn.device.prepare_model`: channels-last where that is faster) with inborn's CPU kernels
(`inborn.models.kernels`).

A third loop, the twin, is the reference loop on inborn's model and kernels. It splits the
speed-up in two (the loop; the layout and kernels) and it is what the equivalence check
compares the optimised loop with: the two run the same kernels, so they must agree to the
last bit where the loops compute the same thing. Against the stock reference they cannot: a
different layout sums in a different order, and in a max-pool window of exactly tied values
(MNIST's flat background makes many) a last-bit difference picks another winner, so PGD's
sign steps part after one batch. That the kernels compute the same function is checked
separately, on the first batch's logits (KERNEL_MAX_LOGIT_DIFF), and by tests/test_kernels.py.

All three start from copies of one model and see the same batches and random starts, batch by
batch in rotating order, so a load change on a shared machine hits all; the speed-ups are the
medians of the per-batch ratios.

Why the check has two parts. The optimised and the twin loop compute the same function, but
not with the same operations: the twin's backward also computes weight and score gradients,
which can change the input gradient's last bits, flip the sign of a near-zero entry and,
batches later, move a mask entry. Such rounding grows slowly; a bug (a wrong mask, a missed
gradient, a stale batch mask) changes the search at once. So:

1. after the first batch the adversarial examples, the masks and the scores must be equal
   (the masks exactly; the examples and scores up to float32 rounding, see FIRST_BATCH_*);
2. after all batches, per masked layer, the share of equal mask entries must be at least
   MIN_MASK_AGREEMENT and the score drift (|s_opt - s_twin| over how far the twin's scores
   moved, |s_twin - s_0|) at most MAX_SCORE_DRIFT.

`tests/test_search_benchmark.py` injects each kind of bug into the optimised loop (and a wrong
kernel into both fast loops) and shows that it fails this check while the honest loop passes.

Real measurement (quiet machine, one thread; the lead's figures in docs/performance.md):

    OMP_NUM_THREADS=1 python benchmarks/search_speed.py --batches 24

It runs conv4 width 0.5 on mnist5k (ε 0.3) and PreActResNet-18 width 0.25 on synthetic 3x32x32
data (ε 8/255), PGD-5 at keep 0.05, and prints a table of the speed-ups beside the issue's goals
(>= 2x on conv4, >= 1.4x on PreActResNet-18), and writes JSON (--json). Check that it works
(< 1 min, figures meaningless): `python benchmarks/search_speed.py --quick`.

    python benchmarks/search_speed.py --models conv4:0.5:mnist5k --device cuda --batches 50
"""

from __future__ import annotations

import argparse
import contextlib
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
from inborn.device import autocast, prepare_model, resolve_device, use_channels_last
from inborn.masks import compute_masks, masked_layers, reuse_masks, scores_frozen, to_supermask
from inborn.masks.patterns import kept_groups
from inborn.models import kernels

# Thresholds of the check (see the module docstring; tests/test_search_benchmark.py proves them).
FIRST_BATCH_MAX_EXAMPLE_CHANGE = 1e-3  # share of adversarial-example entries allowed to differ after batch 1
FIRST_BATCH_MAX_SCORE_DIFF = 1e-5  # max |s_opt - s_ref| after batch 1 over max |s_ref| (float32 ulp: 6e-8)
MIN_MASK_AGREEMENT = 0.995  # per layer, after all batches
MAX_SCORE_DRIFT = 0.05  # per layer, after all batches: |s_opt - s_twin| / |s_twin - s_0|
KERNEL_MAX_LOGIT_DIFF = 1e-9  # stock against inborn's kernels and layout, float64, over max |logit|

StepFn = Callable[[nn.Module, torch.optim.Optimizer, torch.Tensor, torch.Tensor, PGD], torch.Tensor]


def sort_mask(layer, stable: bool = False) -> torch.Tensor:
    """The reference's mask: sort every |score|, keep the top share (recomputed at every forward).

    The authors sort unstably, so a tie at the threshold goes either way. In float32 such ties
    are not rare: a layer of 10^5 scores has many equal pairs, and at batch 11 of a PreActResNet-18
    search one of them sat at the threshold and parted the twin from inborn's loop (which keeps
    the lower index) for good. The twin, which the equivalence check compares, sorts stably:
    ties to the lower index, inborn's rule."""
    s = layer.scores.abs().flatten()
    k = kept_groups(s.numel(), layer.keep_ratio, layer.keep_count)
    idx = s.sort(descending=True, stable=stable).indices[:k]
    mask = torch.zeros_like(s)
    mask[idx] = 1.0
    return mask.view_as(layer.scores)


def as_reference(model: nn.Module, stable: bool = False) -> nn.Module:
    """A copy of `model` whose layers compute their mask the reference's way, at every forward
    (`stable`: ties at the threshold to the lower index, see `sort_mask`)."""
    model = copy.deepcopy(model)
    for layer in masked_layers(model):
        layer.compute_mask = lambda layer=layer: sort_mask(layer, stable)
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


LOOPS = ("reference", "twin", "optimised")
STEP_OF = {"reference": reference_step, "twin": reference_step, "optimised": optimised_step}
# The reference runs on PyTorch's stock kernels; the twin and the optimised loop on inborn's.
KERNELS_OF = {"reference": kernels.stock, "twin": contextlib.nullcontext, "optimised": contextlib.nullcontext}


def loop_model(kind: str, base: nn.Module) -> nn.Module:
    """The model a loop runs: the reference on `base` as built, the others as inborn prepares it."""
    if kind == "reference":
        return as_reference(base)
    fast = prepare_model(copy.deepcopy(base), next(base.parameters()).device)
    return as_reference(fast, stable=True) if kind == "twin" else fast


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
    """Run the three loops from copies of `base` over `batches`, rotating, and check that they agree.

    `base` is the model as built (PyTorch's default layout, on its device). `optimised` and
    `prepare_optimised` exist so that a test can inject a bug into the optimised loop (its step,
    or its model) and show that the check catches it.
    Returns the per-batch times and ratios, the comparisons and the verdict.
    """
    device = next(base.parameters()).device
    models = {kind: loop_model(kind, base) for kind in LOOPS}
    if prepare_optimised is not None:
        models["optimised"] = prepare_optimised(models["optimised"])
    reference, twin, fast = (models[kind] for kind in LOOPS)
    opts = {kind: search_optimiser(model) for kind, model in models.items()}
    steps_of = {**STEP_OF, "optimised": optimised}
    attack = PGD(eps, steps=steps, step_size=eps / 4, mode="train", track_best=False)
    scores0 = _scores(base)
    kernel_check = _same_function(reference, twin, batches[0][0])
    times: dict[str, list[float]] = {kind: [] for kind in LOOPS}
    first: dict[str, Any] = {}
    for model in models.values():
        model.train()
    for i, (x, y) in enumerate(batches):
        order = LOOPS[i % 3:] + LOOPS[: i % 3]
        x_adv = {}
        for kind in order:
            torch.manual_seed(1000 + i)  # the same random starts in every loop

            def step(kind=kind, x=x, y=y):
                with autocast(device, amp), KERNELS_OF[kind]():
                    return steps_of[kind](models[kind], opts[kind], x, y, attack)

            seconds, x_adv[kind] = _timed(device, step)
            times[kind].append(seconds)
        if i == 0:
            first = _first_batch(twin, fast, x_adv["twin"], x_adv["optimised"], scores0)
    final = _final(twin, fast, scores0)
    problems = _problems(first, final, kernel_check)
    ratios = {
        "total": [r / o for r, o in zip(times["reference"], times["optimised"], strict=True)],
        "loop": [t / o for t, o in zip(times["twin"], times["optimised"], strict=True)],
        "kernels": [r / t for r, t in zip(times["reference"], times["twin"], strict=True)],
    }
    return {"times": times, "ratios": ratios["total"], "split": ratios, "kernels": kernel_check,
            "first_batch": first, "final": final, "problems": problems, "passed": not problems}


def _same_function(reference: nn.Module, twin: nn.Module, x: torch.Tensor) -> dict[str, float]:
    """The stock and the fast model on one batch before any step, in float64 (so that rounding,
    which BatchNorm over near-constant channels amplifies to 1e-4 in float32, is out of the
    way): the logits must agree. Input gradients are reported, not checked: tied max-pool
    windows route them to different, equally valid, winners."""
    out = {}
    models = {"reference": copy.deepcopy(reference).double().train(), "twin": copy.deepcopy(twin).double().train()}
    logits, grads = {}, {}
    for kind, model in models.items():
        x_req = x.detach().double().requires_grad_(True)
        with contextlib.ExitStack() as stack:
            if kind == "reference":
                stack.enter_context(kernels.stock())
            logits[kind] = model(x_req)
            grads[kind] = torch.autograd.grad(logits[kind].logsumexp(1).sum(), x_req)[0].flatten()
    scale = float(logits["reference"].detach().abs().max())
    out["logit_diff"] = float((logits["reference"] - logits["twin"]).detach().abs().max()) / max(scale, 1e-300)
    out["grad_cosine"] = float(F.cosine_similarity(grads["reference"], grads["twin"], dim=0))
    return out


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


def _problems(first: dict[str, Any], final: dict[str, Any], kernel_check: dict[str, float]) -> list[str]:
    out = []
    if kernel_check["logit_diff"] > KERNEL_MAX_LOGIT_DIFF:
        out.append(f"inborn's kernels and layout change the model's logits by {kernel_check['logit_diff']:.2e} "
                   f"of their size (allowed: {KERNEL_MAX_LOGIT_DIFF:.0e})")
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


def solo(kind: str, base: nn.Module, batches: Sequence[tuple[torch.Tensor, torch.Tensor]], *, eps: float,
         steps: int, amp: bool) -> None:
    """One loop alone, so that a reader can see the rotating order biases none of them."""
    device = next(base.parameters()).device
    model = loop_model(kind, base).train()
    opt = search_optimiser(model)
    attack = PGD(eps, steps=steps, step_size=eps / 4, mode="train", track_best=False)
    times = []
    for i, (x, y) in enumerate(batches):
        torch.manual_seed(1000 + i)

        def step(x=x, y=y):
            with autocast(device, amp), KERNELS_OF[kind]():
                return STEP_OF[kind](model, opt, x, y, attack)
        times.append(_timed(device, step)[0])
    print(f"{kind} loop alone: median {statistics.median(times[1:]):.4f} s/batch over {len(times) - 1} batches "
          f"(after one warm-up)")


def _median_range(ratios: list[float]) -> str:
    r = sorted(ratios)
    return f"{statistics.median(r):.2f}x of {len(r)} (range {r[0]:.2f}-{r[-1]:.2f})"


def _batches(data: str, args: argparse.Namespace, device: torch.device):
    """(batches, (num_classes, in_channels, image_size, mean, std), ε) for a data set name or "synthetic"."""
    count = args.batches + 1
    if data == "synthetic":
        from bench_common import CIFAR_EPS, synthetic

        x, y = synthetic(count * args.batch_size, device, seed=3)
        batches = [(x[i: i + args.batch_size], y[i: i + args.batch_size]) for i in range(0, len(x), args.batch_size)]
        return batches, (10, 3, 32, [0.5] * 3, [0.25] * 3), CIFAR_EPS
    from inborn.data import load_data

    splits = load_data(data)
    info = splits.info
    gen = torch.Generator().manual_seed(0)
    batches = list(splits.train.batches(args.batch_size, shuffle=True, generator=gen, device=device))[:count]
    return batches, (info.num_classes, info.in_channels, info.image_size, info.mean, info.std), 0.3


def run_model(arch: str, width: float, data: str, args: argparse.Namespace, device: torch.device) -> dict[str, Any]:
    """The comparison on one model: warm-up on throwaway copies, then the three loops rotating."""
    from inborn.models import create_model

    batches, (classes, channels, size, mean, std), eps = _batches(data, args, device)
    eps = args.eps if args.eps is not None else eps
    torch.manual_seed(0)
    base = to_supermask(create_model(arch, num_classes=classes, in_channels=channels, image_size=size, width=width,
                                     mean=mean, std=std), args.keep).to(device)
    if args.solo:
        solo(args.solo, base, batches, eps=eps, steps=args.steps, amp=args.amp)
        return {}
    # Warm-up on throwaway copies, so neither loop pays for first-call allocations.
    compare_loops(base, batches[-1:], eps=eps, steps=args.steps, amp=args.amp)
    out = compare_loops(base, batches[:-1], eps=eps, steps=args.steps, amp=args.amp)
    n = sum(len(x) for x, _ in batches[:-1])
    first, final, split = out["first_batch"], out["final"], out["split"]
    layout = "channels-last" if use_channels_last(base, device) else "default layout"
    print(f"{arch} width {width}, keep {args.keep}, PGD-{args.steps} at ε={eps:.4g}, {len(batches) - 1} batches of "
          f"{args.batch_size} from {data}, the three loops in rotating order batch by batch")
    labels = {"reference": "reference loop (stock PyTorch, default layout)",
              "twin": f"twin (reference loop, inborn's kernels, {layout})",
              "optimised": f"optimised loop (inborn's, {layout})"}
    for kind in LOOPS:
        t = sum(out["times"][kind])
        print(f"  {labels[kind]:58s} {t:7.2f} s  ({n / t:7.1f} images/s)")
    print(f"  speed-up over the reference: median {_median_range(split['total'])} per-batch ratios; "
          f"of it, the loop {_median_range(split['loop'])}, kernels and layout {_median_range(split['kernels'])}")
    kc = out["kernels"]
    print(f"  kernels and layout, first batch before any step, float64: logits differ by {kc['logit_diff']:.1e} "
          f"of their size (<= {KERNEL_MAX_LOGIT_DIFF:.0e}); input-gradient cosine {kc['grad_cosine']:.4f}")
    print(f"  optimised against twin after batch 1: masks equal {first['masks_equal']}, adversarial examples "
          f"equal {first['examples_equal']} ({first['examples_changed_share']:.2e} of entries differ), scores "
          f"equal {first['scores_equal']} (max diff {first['score_diff']:.1e} of their size)")
    print(f"  optimised against twin after batch {len(split['total'])}: masks equal {final['masks_equal']}, lowest "
          f"per-layer mask agreement {final['min_mask_agreement']:.5f} (>= {MIN_MASK_AGREEMENT}), highest score "
          f"drift {final['max_score_drift']:.2e} (<= {MAX_SCORE_DRIFT})")
    print("  same search: " + ("yes (within rounding)" if out["passed"] else "NO: " + "; ".join(out["problems"])))
    return {"arch": arch, "width": width, "data": data, "eps": eps, **out}


# The models every figure is given for, and the goals the issue set for them (CPU, quiet machine).
MODELS = "conv4:0.5:mnist5k,preact_resnet18:0.25:synthetic"
GOALS = {"conv4": 2.0, "preact_resnet18": 1.4}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", default=MODELS, help="arch:width:data, comma-separated (data: a data set or synthetic)")
    p.add_argument("--keep", type=float, default=0.05)
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--eps", type=float, default=None, help="default 0.3 on MNIST, 8/255 on synthetic data")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--batches", type=int, default=12)
    p.add_argument("--device", default="auto")
    p.add_argument("--amp", action="store_true", help="bf16 autocast on CUDA")
    p.add_argument("--quick", action="store_true", help="a check that it runs (< 1 min): 2 batches of 32, PGD-2")
    p.add_argument("--json", help="where to write the full comparison (default search_speed.json)")
    p.add_argument("--solo", choices=LOOPS, help="time one loop alone in this process (no interleaving, no check)")
    args = p.parse_args()
    if args.quick:
        args.batches, args.batch_size, args.steps = 2, 32, 2
    device = resolve_device(args.device)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    print(f"device: {device} ({name}), torch {torch.__version__}, threads {torch.get_num_threads()}")
    results = []
    for spec in args.models.split(","):
        arch, width, data = spec.split(":")
        results.append(run_model(arch, float(width), data, args, device))
    if args.solo:
        return
    rows = []
    for r in results:
        split = r["split"]
        goal = GOALS.get(r["arch"])
        rows.append(f"| {r['arch']} {r['width']} | {r['data']} | {statistics.median(split['total']):.2f}x | "
                    f"{statistics.median(split['loop']):.2f}x | {statistics.median(split['kernels']):.2f}x | "
                    f"{f'{goal}x' if goal else '-'} | {'yes' if r['passed'] else 'NO'} |")
    print("| model | data | optimised over reference | the loop | kernels and layout | goal (CPU) | same search |")
    print("|---|---|---|---|---|---|---|")
    print("\n".join(rows))
    out = args.json or "search_speed.json"
    with open(out, "w") as f:
        json.dump({"args": vars(args), "models": results}, f, indent=1)
    print("wrote", out)
    if args.quick:
        print("(--quick: 2 batches of 32: the figures mean nothing, the check little)")
    failed = [r["arch"] for r in results if r["problems"]]
    if failed:
        raise SystemExit(f"the loops disagree beyond rounding on {', '.join(failed)}, a bug")


if __name__ == "__main__":
    main()
