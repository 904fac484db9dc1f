"""Robustness evaluation: clean accuracy, robust accuracy per attack and ε, the per-sample
worst case over all attacks, and the harmonic robustness score. Always in eval() mode.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn
from tqdm.auto import tqdm

from inborn import distributed
from inborn.attacks import AutoAttack, build_attack, model_mode
from inborn.data.base import TensorSplit
from inborn.device import autocast
from inborn.errors import InbornError
from inborn.evaluation.journal import EvalJournal, fingerprint
from inborn.evaluation.metrics import harmonic_robustness_score

_ITERATIVE = {"pgd", "pgd-l2", "cw", "eot-pgd"}
_BATCH_SEED = 1_000_003  # batch b's attacks draw their noise from seed + b * this


@torch.no_grad()
def predict(model: nn.Module, x: torch.Tensor, batch_size: int = 512) -> torch.Tensor:
    with model_mode(model, "eval"):
        out = []
        for start in range(0, len(x), batch_size):
            xb = x[start : start + batch_size]
            with autocast(xb.device):
                out.append(model(xb).argmax(1))
        return torch.cat(out) if out else torch.empty(0, dtype=torch.long, device=x.device)


def evaluate(
    model: nn.Module,
    data: TensorSplit | tuple[torch.Tensor, torch.Tensor],
    *,
    attacks: Sequence[str] = ("pgd",),
    eps: Sequence[float] = (8 / 255,),
    steps: int = 20,
    step_size: float | None = None,
    restarts: int = 1,
    n: int | None = None,
    batch_size: int = 256,
    device: torch.device | str | None = None,
    seed: int = 0,
    early_stop: bool = True,
    eot_samples: int | None = None,
    progress: bool = False,
    journal: str | Path | None = None,
    split_over_ranks: bool = False,
) -> dict[str, Any]:
    """Evaluate `model` (pixels in [0,1] in, logits out) on the first `n` examples of `data`.

    A sample counts as robust to an attack only if it is classified correctly both clean and
    under attack. `worst_case` marks a sample robust at ε only if it survives every attack run.
    With `journal` (a file path) every finished batch is recorded there, and a later call with
    the same model and settings skips the batches it holds; the file is removed at the end.
    With `split_over_ranks`, every torchrun rank must call this, and each attacks its share of
    the batches (without it, under torchrun, the calling rank evaluates everything alone).
    """
    if any(e < 0 for e in eps):
        raise InbornError(f"ε must be >= 0, got {min(eps)}")
    if n is not None and n < 1:
        raise InbornError(f"--n must be >= 1, got {n}")
    if device is None:
        device = next(model.parameters()).device
    grid = [(e, name, build_attack(name, e, steps=steps if name in _ITERATIVE else None, step_size=step_size,
                                   restarts=restarts, early_stop=early_stop, seed=seed, mode="eval",
                                   eot_samples=eot_samples if name == "eot-pgd" else None))
            for e in eps for name in attacks]
    data = data.head(n) if not isinstance(data, tuple) else (data[0][:n], data[1][:n])
    size = len(data[0]) if isinstance(data, tuple) else len(data)
    total = -(-size // batch_size)
    settings = {"attacks": list(attacks), "eps": list(eps), "steps": steps, "step_size": step_size,
                "restarts": restarts, "n": n, "batch_size": batch_size, "seed": seed, "early_stop": early_stop,
                "eot_samples": eot_samples, "examples": size}
    world, rank = (distributed.world_size(), distributed.rank()) if split_over_ranks else (1, 0)
    # Rank 0 alone reads and writes the journal; the others receive what it holds.
    own_journal = journal is not None and rank == 0
    log = EvalJournal(journal if own_journal else None, fingerprint(model, settings) if own_journal else "")
    if world > 1:
        log.batches = distributed.broadcast_object(log.batches)
    resumed = len(log)
    # Under torchrun the ranks take turns: in each round of `world` batches, rank r attacks the
    # r-th, and every rank gathers the round's records in batch order.
    # Batches are seeded by their index, so the result is the single-process one.
    ours = [b for b in range(resumed, total) if b % world == rank]  # journaled batches are never read
    loaded = _batches(data, ours, batch_size, device)
    bar = tqdm(range(total), initial=resumed, desc="evaluating", disable=not progress or rank != 0, leave=False)
    mine: dict[str, Any] | None = None
    for b in range(resumed, total):
        bar.update()
        if b % world == rank:
            x, y = next(loaded)
            mine = _evaluate_batch(model, grid, x, y, batch_size, None if seed is None else seed + _BATCH_SEED * b)
        if b % world == world - 1 or b == total - 1:
            for record in distributed.all_gather_object(mine) if world > 1 else [mine]:
                if record is not None:
                    log.record(record)
            mine = None
    bar.close()
    if not log.batches:
        raise InbornError("nothing to evaluate: the split is empty")
    clean_parts = [rec["clean"] for rec in log.batches]
    robust_parts = {i: [rec["robust"][i] for rec in log.batches] for i in range(len(grid))}
    warnings = {i: {w for rec in log.batches for w in rec["warnings"][i]} for i in range(len(grid))}
    after = {i: Counter() for i in range(len(grid))}  # AutoAttack's per-sub-attack survivor counts
    for rec in log.batches:
        for i, counts in enumerate(rec["after"]):
            after[i].update(counts)
    clean = torch.cat(clean_parts)
    clean_acc = clean.float().mean().item()
    rows: list[dict[str, Any]] = []
    worst: list[dict[str, Any]] = []
    for e in eps:
        survived = clean.clone()
        for i, (ge, name, attack) in enumerate(grid):
            if ge != e:
                continue
            correct = torch.cat(robust_parts[i])
            survived &= correct
            robust = correct.float().mean().item()
            row = {
                "attack": name, "eps": e, "steps": steps if name in _ITERATIVE else 0,
                "robust_acc": robust, "hrs": harmonic_robustness_score(clean_acc, robust),
                "attack_repr": repr(attack),
            }
            if isinstance(attack, AutoAttack):
                row["warnings"] = sorted(warnings[i])
                row["robust_acc_after"] = {sub: count / len(clean) for sub, count in after[i].items()}
            rows.append(row)
        robust = survived.float().mean().item()
        worst.append({"eps": e, "attacks": list(attacks), "robust_acc": robust,
                      "hrs": harmonic_robustness_score(clean_acc, robust)})
    log.close()
    return {"n": len(clean), "clean_acc": clean_acc, "results": rows, "worst_case": worst}


def _evaluate_batch(model: nn.Module, grid: list, x: torch.Tensor, y: torch.Tensor, batch_size: int,
                    seed: int | None) -> dict[str, Any]:
    """One batch under every (ε, attack) of the grid, as a journal record."""
    clean_correct = predict(model, x, batch_size).eq(y)
    record: dict[str, Any] = {"clean": clean_correct.cpu(), "robust": [], "warnings": [], "after": []}
    for _, _, attack in grid:
        if seed is not None:
            attack.reseed(seed)  # a batch's noise does not depend on the batches before it
        record["robust"].append(_robust_flags(model, attack, x, y, clean_correct, batch_size).cpu())
        warned, after = [], {}
        # Only a batch that AutoAttack actually ran on has a fresh report to read.
        if isinstance(attack, AutoAttack) and clean_correct.any() and attack.eps > 0:
            warned = sorted(attack.last_report.get("warnings", []))
            # AutoAttack reports shares of the images it was given (the clean-correct ones):
            # turn them into counts so they add up over batches and divide by all n.
            given = int(clean_correct.sum())
            shares = attack.last_report.get("robust_accuracy_after", {})
            after = {sub: round(share * given) for sub, share in shares.items()}
        record["warnings"].append(warned)
        record["after"].append(after)
    return record


def _batches(data: TensorSplit | tuple[torch.Tensor, torch.Tensor], wanted: list[int], batch_size: int,
              device: torch.device | str) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Batches number `wanted` (ascending), loaded on the device one at a time; the others are
    never read. Splits too large for memory are streamed (decoding ahead as usual)."""
    if isinstance(data, tuple):
        for b in wanted:
            rows = slice(b * batch_size, (b + 1) * batch_size)
            yield data[0][rows].to(device), data[1][rows].to(device)
        return
    if wanted:
        index = torch.cat([torch.arange(b * batch_size, min((b + 1) * batch_size, len(data))) for b in wanted])
        yield from data.subset(index).batches(batch_size, device=device)


def _robust_flags(model: nn.Module, attack, x: torch.Tensor, y: torch.Tensor, clean_correct: torch.Tensor,
                  batch_size: int) -> torch.Tensor:
    """Per-sample correctness under attack. Only clean-correct samples are attacked."""
    correct = torch.zeros_like(clean_correct)
    idx = clean_correct.nonzero().squeeze(1)
    if len(idx) == 0:
        return correct
    if attack.eps == 0:
        return clean_correct.clone()
    if isinstance(attack, AutoAttack):
        attack.batch_size = batch_size
    x_adv = attack(model, x[idx], y[idx])
    correct[idx] = predict(model, x_adv, batch_size).eq(y[idx])
    return correct
