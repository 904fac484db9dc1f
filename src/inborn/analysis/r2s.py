"""The Random RST Switch under every protocol, side by side.

paper:           examples made on one randomly drawn ticket, classified by the switch (non-adaptive);
eot:             EOT-PGD through the switch's own randomness, T samples a step;
expectation:     PGD on the exact expectation over the candidate set (ExpectedTickets);
autoattack-rand: AutoAttack's version for randomised defences (APGD-CE/DLR with EOT); a point
                 counts as robust only if AutoAttack did not fool it AND the switch classifies
                 the returned point correctly, so the figure is never above AutoAttack's own.
A randomised model's accuracy is itself random: every protocol is repeated and reported as
mean ± std, and the figure to cite is the minimum over the adaptive protocols.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn as nn
from tqdm.auto import tqdm

from inborn.attacks import EOTPGD, PGD, AutoAttack
from inborn.defenses import ExpectedTickets, RandomSwitch, SingleTicket
from inborn.errors import InbornError
from inborn.evaluation.evaluate import predict
from inborn.masks.family import TicketFamily

PROTOCOLS = ("paper", "eot", "expectation", "autoattack-rand")
ADAPTIVE = ("eot", "expectation", "autoattack-rand")


def evaluate_r2s(
    family: TicketFamily, x: torch.Tensor, y: torch.Tensor, *, eps: float,
    protocols: Sequence[str] = PROTOCOLS, repeats: int = 5, steps: int = 20, eot_samples: int = 10,
    granularity: str = "batch", probs: Sequence[float] | None = None, batch_size: int = 256, seed: int = 0,
    progress: bool = False,
) -> dict[str, Any]:
    unknown = [p for p in protocols if p not in PROTOCOLS]
    if unknown:
        raise InbornError(f"unknown protocol {unknown[0]!r}; known: {', '.join(PROTOCOLS)}")
    if repeats < 1:
        raise InbornError(f"repeats must be >= 1, got {repeats}")
    family.eval()
    step = eps / 4
    runs: dict[str, list[float]] = {p: [] for p in ("clean", *protocols)}
    warnings: set[str] = set()
    for r in tqdm(range(repeats), desc="repeats", disable=not progress, leave=False):
        gen = torch.Generator().manual_seed(seed * 1000 + r)
        torch.manual_seed(seed * 1000 + r)
        switch = RandomSwitch(family, granularity, probs, generator=gen).eval()
        runs["clean"].append(_accuracy(switch, x, y, batch_size))
        for protocol in protocols:
            if protocol == "paper":
                x_adv = _paper_examples(family, switch, x, y, eps, steps, step, batch_size, r)
            elif protocol == "eot":
                attack = EOTPGD(eps, steps=steps, step_size=step, eot_samples=eot_samples, seed=r, track_best=False)
                x_adv = _batched(attack, switch, x, y, batch_size)
            elif protocol == "expectation":
                attack = PGD(eps, steps=steps, step_size=step, seed=r, track_best=False)
                x_adv = _batched(attack, ExpectedTickets(family, probs).eval(), x, y, batch_size)
            else:
                attack = AutoAttack(eps, version="rand", seed=r, batch_size=batch_size)
                x_adv = attack(switch, x, y)
                warnings |= set(attack.last_report.get("warnings", []))
                runs[protocol].append(_accuracy(switch, x_adv, y, batch_size, fooled=attack.last_fooled))
                continue
            runs[protocol].append(_accuracy(switch, x_adv, y, batch_size))
    summary = {p: {"mean": statistics.fmean(v), "std": statistics.pstdev(v), "runs": v} for p, v in runs.items()}
    adaptive = [p for p in ADAPTIVE if p in protocols]
    cite = min(adaptive, key=lambda p: summary[p]["mean"]) if adaptive else None
    return {
        "eps": eps, "n": len(x), "repeats": repeats, "steps": steps, "eot_samples": eot_samples,
        "granularity": granularity, "probs": list(switch.probs.tolist()), "keep_ratios": family.keep_ratios,
        "protocols": summary, "cite": {"protocol": cite, **summary[cite]} if cite else None,
        "autoattack_warnings": sorted(warnings),
    }


def single_ticket_robustness(family: TicketFamily, x: torch.Tensor, y: torch.Tensor, *, eps: float,
                             steps: int = 20, batch_size: int = 256,
                             val: tuple[torch.Tensor, torch.Tensor] | None = None) -> list[dict[str, float]]:
    """White-box PGD accuracy of every ticket on its own, on (x, y) (the test images) and, with
    `val`, on validation images too: the best single ticket is chosen on those (`best_ticket`)."""
    out = []
    for i, t in enumerate(family.tickets):
        member = SingleTicket(family, i)
        entry = {"keep_ratio": t.keep_ratio, **_white_box(member, x, y, eps, steps, batch_size)}
        if val is not None:
            entry.update({f"val_{k}": v for k, v in _white_box(member, *val, eps, steps, batch_size).items()})
        out.append(entry)
    return out


def best_ticket(tickets: list[dict[str, float]]) -> dict[str, Any]:
    """The single ticket with the best validation robust accuracy, and its test figures. Never
    chosen on test: the test-best one comes beside it, labelled as optimistic, when it differs."""
    if any("val_robust" not in t for t in tickets):
        raise InbornError("choosing the best single ticket needs its validation robust accuracy")
    best = max(tickets, key=lambda t: t["val_robust"])
    on_test = max(tickets, key=lambda t: t["robust"])
    return {**best, "test_selected": None if on_test is best else on_test}


def _white_box(model: nn.Module, x: torch.Tensor, y: torch.Tensor, eps: float, steps: int,
               batch_size: int) -> dict[str, float]:
    x_adv = _batched(PGD(eps, steps=steps, step_size=eps / 4, seed=0), model, x, y, batch_size)
    return {"clean": _accuracy(model, x, y, batch_size), "robust": _accuracy(model, x_adv, y, batch_size)}


def _paper_examples(family, switch, x, y, eps, steps, step, batch_size, r):
    """Per batch, one ticket drawn from the switch's distribution is attacked white-box."""
    attack = PGD(eps, steps=steps, step_size=step, seed=r, track_best=False)
    parts = []
    for start in range(0, len(x), batch_size):
        xb, yb = x[start : start + batch_size], y[start : start + batch_size]
        source = int(switch.draw(1))
        parts.append(attack(SingleTicket(family, source), xb, yb))
    return torch.cat(parts)


def _batched(attack, model, x, y, batch_size):
    chunks = range(0, len(x), batch_size)
    return torch.cat([attack(model, x[s : s + batch_size], y[s : s + batch_size]) for s in chunks])


def _accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int,
              fooled: torch.Tensor | None = None) -> float:
    correct = predict(model, x, batch_size).eq(y)
    if fooled is not None:
        correct &= ~fooled  # AutoAttack's verdict stands: a fresh draw of the switch cannot undo it
    return correct.float().mean().item()
