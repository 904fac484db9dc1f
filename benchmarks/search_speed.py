"""Mask search speed: the optimised loop against a faithful reference loop.

The reference does what the authors' code does: every forward recomputes each mask by a
full sort, and every attack step calls `loss.backward()`, which also fills the scores'
gradients. The optimised loop (inborn's) computes each mask once per batch with `kthvalue`,
reuses it across the PGD steps, and takes gradients with respect to the input only.

Both run the same number of search steps from the same model, data and seed, one after the
other in this process; the script checks that they end with the same masks and prints the
speed ratio.

    python benchmarks/search_speed.py                   # conv4 width 0.5, mnist5k, PGD-5
    python benchmarks/search_speed.py --device cuda --batches 50
"""

from __future__ import annotations

import argparse
import copy
import time

import torch
import torch.nn.functional as F

from inborn.attacks import PGD
from inborn.data import load_data
from inborn.device import autocast, resolve_device
from inborn.masks import compute_masks, masked_layers, reuse_masks, scores_frozen, to_supermask
from inborn.masks.patterns import kept_groups
from inborn.models import create_model


def sort_mask(layer) -> torch.Tensor:
    """The reference's mask: sort every |score|, keep the top share (recomputed at every forward)."""
    s = layer.scores.abs().flatten()
    k = kept_groups(s.numel(), layer.keep_ratio)
    idx = s.sort(descending=True).indices[:k]
    mask = torch.zeros_like(s)
    mask[idx] = 1.0
    return mask.view_as(layer.scores)


def optimised_step(model, opt, x, y, attack: PGD) -> None:
    with reuse_masks(model):
        with scores_frozen(model):
            x_adv = attack(model, x, y)
        loss = F.cross_entropy(model(x_adv), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
    opt.step()


def reference_step(model, opt, x, y, eps: float, steps: int, step_size: float) -> None:
    x_adv = (x + (torch.rand(x.shape, device=x.device, dtype=x.dtype) * 2 - 1) * eps).clamp(0, 1)
    for _ in range(steps):
        x_adv = x_adv.detach().requires_grad_(True)
        loss = F.cross_entropy(model(x_adv), y, reduction="none").sum()
        loss.backward()  # also computes (and accumulates) the scores' gradients
        x_adv = x_adv + step_size * x_adv.grad.sign()
        x_adv = (x + (x_adv - x).clamp(-eps, eps)).clamp(0, 1)
    loss = F.cross_entropy(model(x_adv.detach()), y)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()


def run(kind: str, model, batches, args, device) -> float:
    opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.1, momentum=0.9,
                          weight_decay=5e-4)
    attack = PGD(args.eps, steps=args.steps, step_size=args.eps / 4, mode="train", track_best=False)
    model.train()
    if device.type == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    for i, (x, y) in enumerate(batches):
        torch.manual_seed(1000 + i)  # the same random starts in both loops
        with autocast(device, args.amp):
            if kind == "optimised":
                optimised_step(model, opt, x, y, attack)
            else:
                reference_step(model, opt, x, y, args.eps, args.steps, args.eps / 4)
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - t0


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--arch", default="conv4")
    p.add_argument("--width", type=float, default=0.5)
    p.add_argument("--keep", type=float, default=0.05)
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--eps", type=float, default=0.3)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--batches", type=int, default=12)
    p.add_argument("--device", default="auto")
    p.add_argument("--amp", action="store_true", help="bf16 autocast on CUDA")
    args = p.parse_args()
    device = resolve_device(args.device)
    splits = load_data("mnist5k")
    info = splits.info
    gen = torch.Generator().manual_seed(0)
    batches = list(splits.train.batches(args.batch_size, shuffle=True, generator=gen, device=device))[: args.batches]

    torch.manual_seed(0)
    base = to_supermask(create_model(args.arch, num_classes=10, in_channels=1, image_size=info.image_size,
                                     width=args.width, mean=info.mean, std=info.std), args.keep).to(device)

    def as_reference(model):
        model = copy.deepcopy(model)
        for layer in masked_layers(model):
            layer.compute_mask = lambda layer=layer: sort_mask(layer)
        return model

    # Warm-up on throwaway copies, so neither loop pays for first-call allocations.
    run("reference", as_reference(base), batches[:2], args, device)
    run("optimised", copy.deepcopy(base), batches[:2], args, device)
    reference, optimised = as_reference(base), copy.deepcopy(base)
    t_ref = run("reference", reference, batches, args, device)
    t_opt = run("optimised", optimised, batches, args, device)
    same = all(torch.equal(a, b) for a, b in zip(compute_masks(reference), compute_masks(optimised), strict=True))
    n = sum(len(x) for x, _ in batches)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    print(f"device: {device} ({name}), torch {torch.__version__}, threads {torch.get_num_threads()}")
    print(f"{args.arch} width {args.width}, keep {args.keep}, PGD-{args.steps}, {len(batches)} batches of "
          f"{args.batch_size} from mnist5k")
    print(f"  reference loop: {t_ref:7.2f} s  ({n / t_ref:7.1f} images/s)")
    print(f"  optimised loop: {t_opt:7.2f} s  ({n / t_opt:7.1f} images/s)")
    print(f"  speed-up: {t_ref / t_opt:.2f}x   same final masks: {same}")
    if not same:
        raise SystemExit("the two loops ended with different masks: this is a bug")


if __name__ == "__main__":
    main()
