"""Transferability between the tickets of a family: PGD examples made on each source ticket,
classified by every target ticket (rows: source, columns: target)."""

from __future__ import annotations

from typing import Any

import torch
from tqdm.auto import tqdm

from inborn.attacks import build_attack
from inborn.defenses import SingleTicket
from inborn.evaluation.evaluate import attack_batches, predict
from inborn.masks.family import TicketFamily


def transfer_matrix(
    family: TicketFamily, x: torch.Tensor, y: torch.Tensor, *, eps: float, steps: int = 20,
    step_size: float | None = None, batch_size: int = 256, seed: int = 0, progress: bool = False,
) -> dict[str, Any]:
    """Accuracy of target j on PGD examples made against source i, and each ticket's natural
    accuracy. The diagonal is each ticket's white-box robust accuracy."""
    k = len(family)
    family.eval()
    members = [SingleTicket(family, i) for i in range(k)]
    correct = torch.zeros(k, k)
    natural = torch.zeros(k)
    for j, member in enumerate(members):
        natural[j] = predict(member, x, batch_size).eq(y).sum()
    # One attack object for every source: its noise runs on from batch to batch and source to source.
    # Its step: build_attack's default (ε/4) unless given, as `evaluate` takes it.
    attack = build_attack("pgd", eps, steps=steps, step_size=step_size, seed=seed, track_best=False)
    for i in tqdm(range(k), desc=f"transfer: PGD-{steps} at ε={eps:.4g} on each source ticket", unit="ticket",
                  disable=not progress, leave=False):
        x_adv, _ = attack_batches(attack, members[i], x, y, batch_size)
        for j, member in enumerate(members):
            correct[i, j] = predict(member, x_adv, batch_size).eq(y).sum()
    matrix = (correct / len(x)).tolist()
    diag = [matrix[i][i] for i in range(k)]
    off = [matrix[i][j] for i in range(k) for j in range(k) if i != j]
    return {
        "keep_ratios": family.keep_ratios, "names": [t.name for t in family.tickets], "n": len(x), "eps": eps,
        "steps": steps, "natural_acc": (natural / len(x)).tolist(), "matrix": matrix,
        "diagonal_mean": sum(diag) / k, "off_diagonal_mean": sum(off) / len(off) if off else None,
    }
