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
from collections.abc import Callable
from typing import Any

import torch
import torch.nn as nn
from tqdm.auto import tqdm

from inborn.analysis.r2s_config import ADAPTIVE, R2SSettings, r2s_settings
from inborn.attacks import Attack, build_attack
from inborn.defenses import ExpectedTickets, RandomSwitch, SingleTicket
from inborn.errors import InbornError
from inborn.evaluation.evaluate import attack_batches, classify
from inborn.masks.family import TicketFamily

# The attack of each gradient protocol. Each takes build_attack's default step, ε/4: the step
# `evaluate` takes when EvalSettings.step_size is None.
_ATTACK_OF = {"paper": "pgd", "eot": "eot-pgd", "expectation": "pgd"}


def evaluate_r2s(family: TicketFamily, x: torch.Tensor, y: torch.Tensor, settings: R2SSettings | None = None, *,
                 eps: float, progress: bool = False, **overrides: Any) -> dict[str, Any]:
    """The switch over `family` under every protocol of `settings`, on (x, y) at ε. Settings come
    as one `R2SSettings` and/or as its fields by keyword (`repeats=3, eot_samples=5`)."""
    s = r2s_settings(settings, **overrides)
    family.eval()
    runs: dict[str, list[float]] = {p: [] for p in ("clean", *s.protocols)}
    warnings: set[str] = set()
    # One bar over every (repeat, protocol), naming the one running: its ETA spans the whole evaluation.
    bar = tqdm(total=s.repeats * len(s.protocols), unit="protocol", disable=not progress, leave=False)
    for r in range(s.repeats):
        gen = torch.Generator().manual_seed(s.seed * 1000 + r)
        torch.manual_seed(s.seed * 1000 + r)
        switch = RandomSwitch(family, s.granularity, s.probs, generator=gen).eval()
        runs["clean"].append(_accuracy(switch, x, y, s.batch_size))
        for protocol in s.protocols:
            bar.set_description(f"R2S repeat {r + 1}/{s.repeats}: {protocol} at ε={eps:.4g} on {len(x)} images")
            attack = _attack(protocol, eps, s, seed=r)
            x_adv, fooled = attack_batches(attack, _target(protocol, family, switch, s), x, y, s.batch_size)
            report = attack.report()
            warnings |= set(report.warnings if report is not None else [])
            # The attack's own verdict (AutoAttack's) stands: a fresh draw of the switch cannot undo it.
            runs[protocol].append(_accuracy(switch, x_adv, y, s.batch_size, fooled))
            bar.update(1)
    bar.close()
    summary = {p: {"mean": statistics.fmean(v), "std": statistics.pstdev(v), "runs": v} for p, v in runs.items()}
    adaptive = [p for p in ADAPTIVE if p in s.protocols]
    cite = min(adaptive, key=lambda p: summary[p]["mean"]) if adaptive else None
    return {
        "eps": eps, "n": len(x), "repeats": s.repeats, "steps": s.steps, "eot_samples": s.eot_samples,
        "granularity": s.granularity, "probs": list(switch.probs.tolist()), "keep_ratios": family.keep_ratios,
        "protocols": summary, "cite": {"protocol": cite, **summary[cite]} if cite else None,
        "autoattack_warnings": sorted(warnings),
    }


def _attack(protocol: str, eps: float, s: R2SSettings, seed: int) -> Attack:
    """A protocol's attack. The gradient ones score their last iterate: on a random switch the
    best iterate would be chosen by one lucky draw."""
    if protocol == "autoattack-rand":  # AutoAttack's own APGD with EOT, steps and restarts
        return build_attack(protocol, eps, seed=seed)
    return build_attack(_ATTACK_OF[protocol], eps, steps=s.steps, seed=seed, track_best=False,
                        eot_samples=s.eot_samples if protocol == "eot" else None)


def _target(protocol: str, family: TicketFamily, switch: RandomSwitch,
            s: R2SSettings) -> nn.Module | Callable[[], nn.Module]:
    """What a protocol attacks: for `paper`, per batch one ticket drawn from the switch's
    distribution (white-box, non-adaptive); the exact expectation over the tickets; or the switch."""
    if protocol == "paper":
        return lambda: SingleTicket(family, int(switch.draw(1)))
    if protocol == "expectation":
        return ExpectedTickets(family, s.probs).eval()
    return switch


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
    x_adv, _ = attack_batches(build_attack("pgd", eps, steps=steps, seed=0), model, x, y, batch_size)
    return {"clean": _accuracy(model, x, y, batch_size), "robust": _accuracy(model, x_adv, y, batch_size)}


def _accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int,
              fooled: torch.Tensor | None = None) -> float:
    return classify(model, x, y, batch_size=batch_size, fooled=fooled)[0].float().mean().item()
