"""Robustness of an ensemble: white-box on the ensemble and on each member, and transfer from
each member (adversarial examples crafted on one member, classified by the whole ensemble).

As in `inborn eval`, a sample counts as robust only if it is classified correctly both clean
and under attack.
"""

from __future__ import annotations

from typing import Any

import torch
from tqdm.auto import tqdm

from inborn.attacks import ATTACKS, PGD, build_attack, is_iterative
from inborn.evaluation.evaluate import evaluate, predict
from inborn.evaluation.metrics import harmonic_robustness_score
from inborn.models.ensemble import Ensemble


def evaluate_ensemble(
    ensemble: Ensemble, x: torch.Tensor, y: torch.Tensor, *, eps: float, attack: str = "pgd", steps: int = 20,
    step_size: float | None = None, batch_size: int = 256, seed: int = 0, progress: bool = False,
) -> dict[str, Any]:
    """Clean, white-box and transfer robust accuracy of `ensemble` and its members on (x, y).

    `transfer` of member i: the ensemble's robust accuracy on `attack` examples crafted on
    member i alone. `transfer_worst`: the share of samples that survive every member's examples.
    """
    ensemble.eval()
    kw = {"attacks": [attack], "eps": [eps], "steps": steps, "step_size": step_size, "batch_size": batch_size,
          "seed": seed}
    whole = evaluate(ensemble, (x, y), **kw)
    clean_ok = predict(ensemble, x, batch_size).eq(y)
    survived = clean_ok.clone()
    members = []
    for name, member in tqdm(list(zip(ensemble.names, ensemble.members, strict=True)), desc="members",
                             disable=not progress, leave=False):
        own = evaluate(member, (x, y), **kw)
        # The last iterate of the full budget (no early stop, no "first misclassified" iterate):
        # examples just across the member's boundary would transfer poorly.
        crafter = build_attack(attack, eps, steps=steps if is_iterative(attack) else None, step_size=step_size,
                               seed=seed, mode="eval", **_last_iterate(attack))
        fooled = torch.zeros_like(clean_ok)
        for start in range(0, len(x), batch_size):
            xb, yb = x[start : start + batch_size], y[start : start + batch_size]
            x_adv = crafter(member, xb, yb) if eps > 0 else xb
            fooled[start : start + len(xb)] = predict(ensemble, x_adv, batch_size).ne(yb)
        robust = clean_ok & ~fooled
        survived &= robust
        members.append({"name": name, "clean": own["clean_acc"], "robust": own["results"][0]["robust_acc"],
                        "transfer": robust.float().mean().item(), "evaluation": own})
    clean = whole["clean_acc"]
    robust = whole["results"][0]["robust_acc"]
    return {
        "n": len(x), "eps": eps, "attack": attack, "steps": steps if is_iterative(attack) else 0,
        "combine": ensemble.combine,
        "ensemble": {"clean": clean, "robust": robust, "hrs": harmonic_robustness_score(clean, robust),
                     "transfer_worst": survived.float().mean().item(), "evaluation": whole},
        "members": members,
    }


def _last_iterate(attack: str) -> dict[str, Any]:
    return {"track_best": False} if issubclass(ATTACKS[attack][0], PGD) else {}


def render_ensemble(result: dict[str, Any], title: str = "Ensemble") -> str:
    """A Markdown report: one row per member and one for the ensemble (accuracies in %)."""
    def pct(v: float) -> str:
        return f"{100 * v:.2f}"

    attack = f"{result['attack']}-{result['steps']}" if result["steps"] else result["attack"]
    e = result["ensemble"]
    lines = [
        f"# {title}",
        "",
        f"{len(result['members'])} members, combine `{result['combine']}`; {attack} at ε = {result['eps']:.4g} "
        f"(pixel units) on {result['n']} test images.",
        "",
        "| model | clean % | white-box robust % | transfer-from-member robust % |",
        "| --- | --- | --- | --- |",
    ]
    for m in result["members"]:
        lines.append(f"| `{m['name']}` | {pct(m['clean'])} | {pct(m['robust'])} | {pct(m['transfer'])} |")
    lines.append(f"| **ensemble** | {pct(e['clean'])} | {pct(e['robust'])} | {pct(e['transfer_worst'])} |")
    lines += [
        "",
        "White-box: the attack on that model itself (on the ensemble, through every member). Transfer: the "
        "ensemble classifies examples crafted on that member; the ensemble row counts a sample robust only if "
        "it survives every member's examples.",
    ]
    return "\n".join(lines) + "\n"
