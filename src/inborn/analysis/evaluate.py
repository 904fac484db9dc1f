"""Robustness evaluation: clean accuracy, robust accuracy per attack and ε, the per-sample
worst case over all attacks, and the harmonic robustness score. Always in eval() mode.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn as nn
from tqdm.auto import tqdm

from inborn.analysis.metrics import harmonic_robustness_score
from inborn.attacks import AutoAttack, build_attack, model_mode
from inborn.data.base import TensorSplit
from inborn.device import autocast
from inborn.errors import InbornError

_ITERATIVE = {"pgd", "pgd-l2", "cw", "eot-pgd"}


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
) -> dict[str, Any]:
    """Evaluate `model` (pixels in [0,1] in, logits out) on the first `n` examples of `data`.

    A sample counts as robust to an attack only if it is classified correctly both clean and
    under attack. `worst_case` marks a sample robust at ε only if it survives every attack run.
    """
    if any(e < 0 for e in eps):
        raise InbornError(f"ε must be >= 0, got {min(eps)}")
    if n is not None and n < 1:
        raise InbornError(f"--n must be >= 1, got {n}")
    if device is None:
        device = next(model.parameters()).device
    # Attacks are built once, so a seeded attack draws fresh noise batch after batch.
    grid = [(e, name, build_attack(name, e, steps=steps if name in _ITERATIVE else None, step_size=step_size,
                                   restarts=restarts, early_stop=early_stop, seed=seed, mode="eval",
                                   eot_samples=eot_samples if name == "eot-pgd" else None))
            for e in eps for name in attacks]
    clean_parts: list[torch.Tensor] = []
    robust_parts: dict[int, list[torch.Tensor]] = {i: [] for i in range(len(grid))}
    warnings: dict[int, set[str]] = {i: set() for i in range(len(grid))}
    after: dict[int, dict[str, float]] = {}
    batches, total = _batches(data, n, batch_size, device)
    for x, y in tqdm(batches, total=total, desc="evaluating", disable=not progress, leave=False):
        clean_correct = predict(model, x, batch_size).eq(y)
        clean_parts.append(clean_correct.cpu())
        for i, (_, _, attack) in enumerate(grid):
            robust_parts[i].append(_robust_flags(model, attack, x, y, clean_correct, batch_size).cpu())
            # Only a batch that AutoAttack actually ran on has a fresh report to read.
            if isinstance(attack, AutoAttack) and clean_correct.any() and attack.eps > 0:
                warnings[i] |= set(attack.last_report.get("warnings", []))
                # AutoAttack reports shares of the images it was given (the clean-correct ones):
                # turn them into counts so they add up over batches and divide by all n.
                given = int(clean_correct.sum())
                for sub, share in attack.last_report.get("robust_accuracy_after", {}).items():
                    after.setdefault(i, {})[sub] = after.get(i, {}).get(sub, 0) + round(share * given)
    if not clean_parts:
        raise InbornError("nothing to evaluate: the split is empty")
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
                row["robust_acc_after"] = {sub: count / len(clean) for sub, count in after.get(i, {}).items()}
            rows.append(row)
        robust = survived.float().mean().item()
        worst.append({"eps": e, "attacks": list(attacks), "robust_acc": robust,
                      "hrs": harmonic_robustness_score(clean_acc, robust)})
    return {"n": len(clean), "clean_acc": clean_acc, "results": rows, "worst_case": worst}


def _batches(data: TensorSplit | tuple[torch.Tensor, torch.Tensor], n: int | None, batch_size: int,
             device: torch.device | str) -> tuple[Any, int]:
    """Batches of the first n examples and their count; splits too large for memory are streamed."""
    if isinstance(data, tuple):
        x, y = data
        if n is not None:
            x, y = x[:n], y[:n]
        chunks = [(x[s : s + batch_size].to(device), y[s : s + batch_size].to(device))
                  for s in range(0, len(x), batch_size)]
        return chunks, len(chunks)
    data = data.head(n)
    return data.batches(batch_size, device=device), -(-len(data) // batch_size)


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
