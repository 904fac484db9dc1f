"""Selection time of every mask of a supermask network: the old top-k (kthvalue, then the tie
count read back with int()) against the current one (the tie count kept on the device; the
threshold from kthvalue on the CPU, from topk on a GPU). Both give the same masks; this checks
that too.

    python benchmarks/mask_selection.py                    # PreActResNet-18 width 1 (11M scores), CPU
    python benchmarks/mask_selection.py --keep 0.5 --repeats 5
    python benchmarks/mask_selection.py --device cuda
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from inborn.masks import masked_layers, to_supermask
from inborn.masks.patterns import expand_groups, group_scores, kept_groups, layer_mask
from inborn.models import create_model


def old_top_k(values: torch.Tensor, k: int) -> torch.Tensor:
    """inborn's top-k before issue 26 (kept here as the baseline)."""
    n = values.numel()
    if k >= n:
        return torch.ones_like(values)
    if k <= 0:
        return torch.zeros_like(values)
    threshold = values.kthvalue(n - k + 1).values
    above = values > threshold
    missing = k - int(above.sum())
    at = values == threshold
    keep = above | (at & (at.cumsum(0) <= missing))
    return keep.to(values.dtype)


def old_layer_mask(scores: torch.Tensor, keep_ratio: float, pattern: str, count: str) -> torch.Tensor:
    with torch.no_grad():
        g = group_scores(scores, pattern)
        return expand_groups(old_top_k(g, kept_groups(g.numel(), keep_ratio, count)), scores.shape,
                             pattern).contiguous()


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--keep", type=float, default=0.1)
    p.add_argument("--pattern", default="element")
    p.add_argument("--count", default="round")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--device", default="cpu")
    args = p.parse_args()
    device = torch.device(args.device)
    torch.manual_seed(0)
    model = to_supermask(create_model("preact_resnet18", num_classes=10, in_channels=3, image_size=32), args.keep,
                         pattern=args.pattern).to(device)
    scores = [layer.scores.detach() for layer in masked_layers(model)]
    print(f"preact_resnet18: {len(scores)} masked layers, {sum(s.numel() for s in scores):,} scores, "
          f"keep {args.keep}, {args.pattern}, {device}, {torch.get_num_threads()} threads")
    ways = {"before (kthvalue + int)": lambda s: old_layer_mask(s, args.keep, args.pattern, args.count),
            "after (no sync)": lambda s: layer_mask(s, args.keep, args.pattern, count=args.count)}
    masks = {name: [fn(s) for s in scores] for name, fn in ways.items()}  # warm-up, and the masks to compare
    times: dict[str, list[float]] = {name: [] for name in ways}
    for _ in range(args.repeats):  # interleaved, so that a busy spell of the machine hits both
        for name, fn in ways.items():
            _sync(device)
            t0 = time.perf_counter()
            for s in scores:
                fn(s)
            _sync(device)
            times[name].append(time.perf_counter() - t0)
    for name, ts in times.items():
        print(f"{name}: median {statistics.median(ts) * 1000:.0f} ms over {args.repeats} "
              f"(min {min(ts) * 1000:.0f}, max {max(ts) * 1000:.0f})")
    a, b = masks.values()
    same = all(torch.equal(x, y) for x, y in zip(a, b, strict=True))
    print(f"same masks: {same}")
    if not same:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
