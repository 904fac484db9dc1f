"""Transferability between the tickets of a family: PGD examples made on each source ticket,
classified by every target ticket (rows: source, columns: target)."""

from __future__ import annotations

from typing import Any

import torch
from tqdm.auto import tqdm

from inborn.attacks import PGD
from inborn.defenses import SingleTicket
from inborn.evaluation.evaluate import predict
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
    attack = PGD(eps, steps=steps, step_size=eps / 4 if step_size is None else step_size, seed=seed,
                 track_best=False)
    for i in tqdm(range(k), desc="source tickets", disable=not progress, leave=False):
        for start in range(0, len(x), batch_size):
            xb, yb = x[start : start + batch_size], y[start : start + batch_size]
            x_adv = attack(members[i], xb, yb)
            for j, member in enumerate(members):
                correct[i, j] += predict(member, x_adv, batch_size).eq(yb).sum()
    matrix = (correct / len(x)).tolist()
    diag = [matrix[i][i] for i in range(k)]
    off = [matrix[i][j] for i in range(k) for j in range(k) if i != j]
    return {
        "keep_ratios": family.keep_ratios, "names": [t.name for t in family.tickets], "n": len(x), "eps": eps,
        "steps": steps, "natural_acc": (natural / len(x)).tolist(), "matrix": matrix,
        "diagonal_mean": sum(diag) / k, "off_diagonal_mean": sum(off) / len(off) if off else None,
    }
