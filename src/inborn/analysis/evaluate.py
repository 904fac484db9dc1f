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
    x, y = _tensors(data, n, device)
    if len(x) == 0:
        raise InbornError("nothing to evaluate: the split is empty")
    clean_correct = predict(model, x, batch_size).eq(y)
    clean_acc = clean_correct.float().mean().item()
    rows: list[dict[str, Any]] = []
    worst: list[dict[str, Any]] = []
    for e in eps:
        survived = clean_correct.clone()
        for name in attacks:
            attack = build_attack(
                name, e, steps=steps if name in _ITERATIVE else None, step_size=step_size,
                restarts=restarts, early_stop=early_stop, seed=seed, mode="eval",
            )
            correct = _robust_flags(model, attack, x, y, clean_correct, batch_size, progress)
            survived &= correct
            robust = correct.float().mean().item()
            row = {
                "attack": name, "eps": e, "steps": steps if name in _ITERATIVE else 0,
                "robust_acc": robust, "hrs": harmonic_robustness_score(clean_acc, robust),
                "attack_repr": repr(attack),
            }
            if isinstance(attack, AutoAttack):
                row["warnings"] = attack.last_report.get("warnings", [])
                row["robust_acc_after"] = attack.last_report.get("robust_accuracy_after", {})
            rows.append(row)
        robust = survived.float().mean().item()
        worst.append({"eps": e, "attacks": list(attacks), "robust_acc": robust,
                      "hrs": harmonic_robustness_score(clean_acc, robust)})
    return {"n": len(x), "clean_acc": clean_acc, "results": rows, "worst_case": worst}


def _tensors(data: TensorSplit | tuple[torch.Tensor, torch.Tensor], n: int | None,
             device: torch.device | str) -> tuple[torch.Tensor, torch.Tensor]:
    if isinstance(data, tuple):
        x, y = data
        if n is not None:
            x, y = x[:n], y[:n]
        return x.to(device), y.to(device)
    return data.head(n).tensors(device)


def _robust_flags(model: nn.Module, attack, x: torch.Tensor, y: torch.Tensor, clean_correct: torch.Tensor,
                  batch_size: int, progress: bool) -> torch.Tensor:
    """Per-sample correctness under attack. Only clean-correct samples are attacked."""
    correct = torch.zeros_like(clean_correct)
    idx = clean_correct.nonzero().squeeze(1)
    if len(idx) == 0:
        return correct
    if attack.eps == 0:
        return clean_correct.clone()
    if isinstance(attack, AutoAttack):
        # AutoAttack batches internally and needs the whole set for its own checks.
        attack.batch_size = batch_size
        x_adv = attack(model, x[idx], y[idx])
        correct[idx] = predict(model, x_adv, batch_size).eq(y[idx])
        return correct
    chunks = range(0, len(idx), batch_size)
    for start in tqdm(chunks, desc=repr(attack), disable=not progress, leave=False):
        b = idx[start : start + batch_size]
        x_adv = attack(model, x[b], y[b])
        correct[b] = predict(model, x_adv, batch_size).eq(y[b])
    return correct
