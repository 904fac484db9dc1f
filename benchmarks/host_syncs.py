"""Host-synchronising calls of one search epoch and of the Random RST Switch's forward.

A `torch.overrides.TorchFunctionMode` tallies the calls that make the host wait for the device
(on CUDA; on the CPU they cost nothing, but the same Python path runs, so the count is the
same): `item`, `tolist`, `cpu`, `numpy`, `nonzero` and friends, a Python number or truth value
taken from a tensor (`int(t)`, `float(t)`, `bool(t)`, `if t:`, an index, a format), and
indexing with a boolean mask. (`.to("cpu")` is not counted: on a CPU run every tensor is there
already, so it cannot be told from a no-op; `.cpu()` is.) The per-batch figure is the difference between two batch sizes
over the difference in batch counts (issue 26), so per-epoch costs cancel out.

    python benchmarks/host_syncs.py                       # digits, conv4 width 0.25, PGD-7, batches 32 and 96
    python benchmarks/host_syncs.py --arch conv2 --steps 2 --n 256
    python benchmarks/host_syncs.py --device cuda
"""

from __future__ import annotations

import argparse
import math
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

import torch
from torch.overrides import TorchFunctionMode

# Calls that read a tensor's value on the host (the name torch's override machinery reports).
SYNCING = {
    "item", "tolist", "cpu", "numpy", "nonzero", "argwhere", "masked_select", "unique", "unique_consecutive",
    "equal", "allclose", "is_nonzero", "__int__", "__float__", "__bool__", "__index__", "__format__",
    "__complex__",
}


def _bool_index(index: Any) -> bool:
    items = index if isinstance(index, tuple) else (index,)
    return any(isinstance(i, torch.Tensor) and i.dtype == torch.bool for i in items)


class SyncCounter(TorchFunctionMode):
    """Counts host-synchronising calls by name (`counts`) while active."""

    def __init__(self) -> None:
        super().__init__()
        self.counts: Counter[str] = Counter()

    def __torch_function__(self, func, types, args=(), kwargs=None):  # noqa: ANN001, ANN204
        name = getattr(func, "__name__", "")
        if name in SYNCING:
            self.counts[name] += 1
        elif name in ("__getitem__", "__setitem__", "index_put_", "index_put") and len(args) > 1 \
                and _bool_index(args[1]):
            self.counts[f"{name}[bool mask]"] += 1
        return func(*args, **(kwargs or {}))

    @property
    def total(self) -> int:
        return sum(self.counts.values())


def count_search_epoch(batch_size: int, *, arch: str = "conv4", width: float = 0.25, steps: int = 7,
                       n: int | None = None, keep: float = 0.05, device: str = "cpu") -> tuple[int, int, Counter[str]]:
    """(batches, host syncs, by name) of one search epoch's training pass on digits."""
    from inborn.masks.config import SupermaskConfig
    from inborn.store import ResultsDB
    from inborn.train import TrainConfig, loop, train

    counter = SyncCounter()
    real = loop._train_epoch
    batches = {}

    def counted(t, splits, *args, **kwargs):  # noqa: ANN001, ANN202
        if n is not None:
            splits.train = splits.train.head(n)
        batches["n"] = math.ceil(len(splits.train) / batch_size)
        with counter:
            return real(t, splits, *args, **kwargs)

    cfg = TrainConfig(data="digits", arch=arch, width=width, epochs=1, batch_size=batch_size, adv="pgd",
                      adv_steps=steps, val_fraction=0.0, ticket=SupermaskConfig(keep_ratio=keep),
                      test_attack_steps=1, test_attacks=["pgd"], device=device)
    loop._train_epoch = counted
    try:
        with tempfile.TemporaryDirectory() as tmp:
            import warnings

            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                train(cfg, Path(tmp) / "run", db=ResultsDB(Path(tmp) / "db.sqlite"), progress=False)
    finally:
        loop._train_epoch = real
    return batches["n"], counter.total, counter.counts


def count_switch(granularity: str, forwards: int = 5, device: str = "cpu") -> tuple[int, Counter[str]]:
    """Host syncs of `forwards` forwards of a switch over three random conv2 tickets."""
    from inborn.defenses import RandomSwitch
    from inborn.masks import compute_masks, masked_layers, to_supermask
    from inborn.masks.family import TicketFamily, ticket_from_state
    from inborn.masks.packing import pack_mask
    from inborn.masks.ticket import MASK_PREFIX
    from inborn.models import create_model

    torch.manual_seed(0)
    model = to_supermask(create_model("conv2", num_classes=10, in_channels=1, image_size=16, width=0.25), 0.3)
    tickets = []
    names = {id(m): name for name, m in model.named_modules()}
    for i in range(3):
        for layer in masked_layers(model):
            layer.scores.data.normal_()
        tensors = {MASK_PREFIX + names[id(layer)]: pack_mask(m) for layer, m in
                   zip(masked_layers(model), compute_masks(model), strict=True)}
        tensors = {**{k: v for k, v in model.state_dict().items() if "running_" in k}, **tensors}
        tickets.append(ticket_from_state(f"t{i}", 0.3, model, tensors))
    family = TicketFamily(model, tickets).to(device)
    switch = RandomSwitch(family, granularity, generator=torch.Generator().manual_seed(0)).eval()
    x = torch.rand(16, 1, 16, 16, device=device)
    switch(x)  # first forward: per-device set-up
    counter = SyncCounter()
    with counter, torch.no_grad():
        for _ in range(forwards):
            switch(x)
    return counter.total, counter.counts


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--arch", default="conv4")
    p.add_argument("--width", type=float, default=0.25)
    p.add_argument("--steps", type=int, default=7)
    p.add_argument("--batch-sizes", default="32,96")
    p.add_argument("--n", type=int, default=None, help="training images (default: all of digits' train split)")
    p.add_argument("--device", default="cpu")
    args = p.parse_args()
    sizes = [int(b) for b in args.batch_sizes.split(",")]
    runs = [count_search_epoch(b, arch=args.arch, width=args.width, steps=args.steps, n=args.n, device=args.device)
            for b in sizes]
    for b, (batches, total, counts) in zip(sizes, runs, strict=True):
        print(f"search epoch, batch {b}: {batches} batches, {total} host syncs {dict(counts.most_common())}")
    (b1, t1, _), (b2, t2, _) = runs[0], runs[-1]
    if b1 != b2:
        print(f"per batch: ({t1} - {t2}) / ({b1} - {b2}) = {(t1 - t2) / (b1 - b2):.2f}")
    for granularity in ("batch", "sample"):
        total, counts = count_switch(granularity, device=args.device)
        print(f"RandomSwitch {granularity}-wise: {total / 5:.1f} host syncs per forward {dict(counts.most_common())}")


if __name__ == "__main__":
    main()
