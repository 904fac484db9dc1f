"""Attacks with one call, `attack(model, x, y) -> x_adv`, and a factory by name."""

from __future__ import annotations

import re
from typing import Any

from inborn.attacks.autoattack import AutoAttack
from inborn.attacks.base import Attack, AttackReport, check_eps, margin_loss, model_mode
from inborn.attacks.pgd import EOTPGD, PGD, CWLinf
from inborn.attacks.single_step import FGSM, RFGSM, StepLL
from inborn.errors import InbornError

__all__ = [
    "ATTACKS", "PGD", "EOTPGD", "FGSM", "RFGSM", "Attack", "AttackReport", "AutoAttack", "CWLinf", "StepLL",
    "attack_norm", "build_attack", "is_iterative", "margin_loss", "model_mode",
]

# name -> (class, fixed keyword arguments, summary)
ATTACKS: dict[str, tuple[type[Attack], dict[str, Any], str]] = {
    "fgsm": (FGSM, {}, "fast gradient sign method, one step of ε"),
    "rfgsm": (RFGSM, {}, "random sign step of ε/2, then a gradient step of ε/2"),
    "stepll": (StepLL, {}, "one step towards the least-likely class"),
    "pgd": (PGD, {}, "PGD L-inf with random start (--steps, --step-size, --restarts)"),
    "pgd-l2": (PGD, {"norm": "l2"}, "PGD in the L2 ball"),
    "cw": (CWLinf, {}, "PGD L-inf on the CW margin loss"),
    "eot-pgd": (EOTPGD, {}, "PGD with gradients averaged over the model's randomness"),
    "fgsm-rs": (PGD, {"steps": 1, "random_start": True}, "FGSM from a random start, step 1.25 ε (training)"),
    "autoattack": (AutoAttack, {"version": "standard"}, "AutoAttack standard (pyautoattack)"),
    "autoattack-rand": (AutoAttack, {"version": "rand"}, "AutoAttack for randomised defences (APGD + EOT)"),
}


def is_iterative(name: str) -> bool:
    """Whether the attack called `name` takes `steps` (FGSM-RS is PGD with its one step fixed)."""
    cls, fixed, _ = ATTACKS[name]
    return cls.iterative and "steps" not in fixed


def attack_norm(name: str) -> str:
    """The norm of the ball the attack called `name` searches: "linf" (ε at most 1) or "l2"."""
    return ATTACKS[name][1].get("norm", "linf")


def build_attack(
    name: str,
    eps: float,
    *,
    steps: int | None = None,
    step_size: float | None = None,
    restarts: int = 1,
    early_stop: bool = False,
    eot_samples: int | None = None,
    **kw: Any,
) -> Attack:
    """Build an attack by name with ε in pixel units.

    Iterative attacks default to 20 steps of ε/4 (PGD-20 at 8/255 takes steps of 2/255, as in
    the RST paper); FGSM-RS takes its step of 1.25 ε (Wong et al. 2020).
    """
    if not isinstance(name, str) or name not in ATTACKS:
        raise InbornError(f"unknown attack {name!r}; known: {', '.join(ATTACKS)}")
    cls, fixed, _ = ATTACKS[name]
    args: dict[str, Any] = {**fixed, **kw, "restarts": restarts}
    if eot_samples is not None and cls is not AutoAttack:
        args["eot_samples"] = eot_samples
    if is_iterative(name):
        args["steps"] = 20 if steps is None else steps  # ignored by a single-step attack, so one call fits all
        args["step_size"] = step_size  # None: the class's default, ε/4
        args["early_stop"] = early_stop
    elif name == "fgsm-rs":
        args["step_size"] = 1.25 * check_eps(eps, "linf") if step_size is None else step_size
        args["track_best"] = False
    try:
        return cls(eps, **args)
    except TypeError as e:  # a keyword the attack does not take: name it, in one line
        bad = re.search(r"unexpected keyword argument '(\w+)'", str(e))
        if bad is None:
            raise
        raise InbornError(f"attack {name!r} does not take {bad.group(1)!r}") from None
