"""Memory of a ticket family at inference against one dense model and 8 separate models,
and the size on disk of the family file against 8 separate checkpoints.

The family keeps one weight tensor, and per ticket 1 bit per weight plus its BatchNorm
statistics; the active ticket's mask is unpacked inside each layer's forward only.

    python benchmarks/family_memory.py                          # preact_resnet18, CIFAR-shaped
    python benchmarks/family_memory.py --arch conv4 --width 0.5 --in-channels 1 --image-size 28
"""

from __future__ import annotations

import argparse
import os
import tempfile

import torch
from safetensors.torch import save_file

from inborn.masks import compute_masks, masked_layers, to_supermask
from inborn.masks.family import FamilyTicket, TicketFamily, family_tensors
from inborn.masks.packing import pack_mask
from inborn.models import create_model


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
    yield from module.parameters()
    yield from (b for b in module.buffers() if b is not None)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--arch", default="preact_resnet18")
    p.add_argument("--width", type=float, default=1.0)
    p.add_argument("--in-channels", type=int, default=3)
    p.add_argument("--image-size", type=int, default=32)
    p.add_argument("--tickets", type=int, default=8)
    args = p.parse_args()
    kw = dict(num_classes=10, in_channels=args.in_channels, image_size=args.image_size, width=args.width)

    dense = create_model(args.arch, **kw).eval()
    dense_bytes = held_bytes(module_tensors(dense))

    model = to_supermask(create_model(args.arch, **kw), 0.5).eval()
    keeps = [round(0.02 + i * 0.9 / max(args.tickets - 1, 1), 3) for i in range(args.tickets)]
    tickets = []
    for i, keep in enumerate(keeps):
        for layer in masked_layers(model):
            layer.keep_ratio = keep
            layer.scores.data.normal_(generator=torch.Generator().manual_seed(i))
        masks = compute_masks(model)
        buffers = {n: b.clone() for n, b in model.named_buffers() if "running_" in n or "num_batches" in n}
        tickets.append(FamilyTicket(f"keep-{keep}", keep, [pack_mask(m) for m in masks], buffers))
    family = TicketFamily(model, tickets).eval()
    x = torch.rand(4, args.in_channels, args.image_size, args.image_size)
    with torch.no_grad():
        for i in range(len(family)):
            family.select(i)
            family(x)
    held = list(module_tensors(family.model))
    for t in family.tickets:
        held += t.packed_masks + list(t.buffers.values())
    family_bytes = held_bytes(held)

    with tempfile.TemporaryDirectory() as tmp:
        tensors, meta = family_tensors(family)
        save_file(tensors, f"{tmp}/family.safetensors", metadata=meta)
        save_file({k: v.contiguous() for k, v in dense.state_dict().items()}, f"{tmp}/dense.safetensors")
        family_file = os.path.getsize(f"{tmp}/family.safetensors")
        dense_file = os.path.getsize(f"{tmp}/dense.safetensors")

    k = len(family)
    print(f"{args.arch} (width {args.width}, {args.in_channels}x{args.image_size}x{args.image_size}), "
          f"{k} tickets at keep ratios {', '.join(map(str, keeps))}")
    print(f"  memory at inference: one dense model {dense_bytes / 1e6:8.2f} MB")
    print(f"                       {k} separate models {k * dense_bytes / 1e6:8.2f} MB ({k:.0f}.00x)")
    print(f"                       the family        {family_bytes / 1e6:8.2f} MB ({family_bytes / dense_bytes:.2f}x)")
    print(f"  on disk: family file {family_file / 1e6:.2f} MB (weights redrawn from their seed) against "
          f"{k} dense checkpoints {k * dense_file / 1e6:.2f} MB ({k * dense_file / family_file:.1f}x larger)")
    if family_bytes >= 1.5 * dense_bytes:
        raise SystemExit("the family takes 1.5x a dense model or more: this is a regression")


if __name__ == "__main__":
    main()
