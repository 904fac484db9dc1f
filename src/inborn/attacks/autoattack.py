"""AutoAttack (Croce & Hein 2020) through the `pyautoattack` package, with its warnings kept.

AutoAttack checks its own evaluation: it warns about randomised models, zero gradients and
Square beating the gradient attacks (a sign of gradient masking). Those warnings are part of
the result, so they are captured and exposed in `last_report` rather than lost in a log.

AutoAttack also decides, per point, whether it fooled the model (`fooled()`, `last_fooled`).
They reach the evaluator through the `Attack` base's hooks (`set_batch_size`, `fooled`,
`report`), which every attack has, so the evaluator needs no case of its own for AutoAttack. On a
randomised model that decision and a later classification of the returned point are two
different draws: a point counts as robust only if AutoAttack did not fool it AND the model
classifies the returned point correctly, so a figure is never above AutoAttack's own.
"""

from __future__ import annotations

import logging
import re
import warnings
from typing import Any

import torch
import torch.nn as nn

from inborn.attacks.base import Attack, AttackReport
from inborn.device import autocast
from inborn.errors import InbornError
from inborn.values import check_int


class _Capture(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


class _Autocast(nn.Module):
    """The model under bf16 autocast, returning float32 logits (AutoAttack calls it directly)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        with autocast(x.device):
            return self.model(x).float()


class AutoAttack(Attack):
    """`version="standard"` (APGD-CE, APGD-T, FAB-T, Square) or `"rand"` (APGD with EOT).

    AutoAttack runs its own sub-attacks and restarts, so `restarts` must stay 1.
    """

    name = "autoattack"
    reports = True

    def __init__(self, eps: float, *, version: str = "standard", batch_size: int = 500, **kw) -> None:
        super().__init__(eps, **kw)
        if version not in ("standard", "rand", "plus"):
            raise InbornError(f"unknown AutoAttack version {version!r} (use standard, rand or plus)")
        if self.restarts != 1:
            raise InbornError("AutoAttack runs its own restarts: restarts must be 1")
        self.version = version
        self.batch_size = check_int(batch_size, "batch_size", low=1)
        self.last_report: dict[str, Any] = {}
        self.last_fooled: torch.Tensor | None = None  # per point of the last call
        self._given = 0  # points given to the last call: the report's shares become counts of them

    def __repr__(self) -> str:
        return f"AutoAttack(eps={self.eps:.5g}, norm={self.norm}, version={self.version})"

    def set_batch_size(self, batch_size: int) -> bool:
        self.batch_size = check_int(batch_size, "batch_size", low=1)
        return True

    def fooled(self) -> torch.Tensor | None:
        return self.last_fooled

    def report(self) -> AttackReport | None:
        # AutoAttack logs shares of the points it was given; counts add up over batches.
        shares = self.last_report.get("robust_accuracy_after", {})
        return AttackReport(warnings=sorted(self.last_report.get("warnings", [])),
                            robust_after={sub: round(share * self._given) for sub, share in shares.items()})

    def perturb(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        from pyautoattack import AutoAttack as _AA  # heavy, and absent on some machines

        self._given = len(x)
        if len(x) == 0 or self.eps == 0:
            self.last_fooled = torch.zeros(len(x), dtype=torch.bool, device=x.device)
            self.last_report = {"version": self.version, "warnings": [], "robust_accuracy_after": {}}
            return x.clone()
        logger = logging.getLogger("auto-attack")
        handler = _Capture()
        old_level, old_propagate = logger.level, logger.propagate
        logger.addHandler(handler)
        logger.setLevel(logging.DEBUG)
        logger.propagate = False
        seed = 0 if self.seed is None else self.seed
        target = _Autocast(model) if self.use_autocast and x.device.type == "cuda" else model
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                adversary = _AA(target, norm="Linf" if self.norm == "linf" else "L2", eps=self.eps,
                                version=self.version, device=x.device, seed=seed)
                x_adv, y_adv = adversary.run_standard_evaluation(x, y, batch_size=self.batch_size)
        finally:
            logger.removeHandler(handler)
            logger.setLevel(old_level)
            logger.propagate = old_propagate
        messages = [r.getMessage() for r in handler.records]
        warned = [r.getMessage() for r in handler.records if r.levelno >= logging.WARNING]
        warned += [str(w.message) for w in caught]
        # AutoAttack's label for each point: its prediction on the point it returned (the clean
        # prediction where no sub-attack succeeded). A point is robust to it iff that label is y.
        self.last_fooled = y_adv.to(y.device).ne(y)
        self.last_report = {
            "version": self.version,
            "warnings": sorted(set(warned)),
            "robust_accuracy_after": _robust_after(messages),
        }
        return x_adv


def _robust_after(messages: list[str]) -> dict[str, float]:
    """The running robust accuracy after each sub-attack, read from AutoAttack's own log."""
    out: dict[str, float] = {}
    for m in messages:
        hit = re.match(r"robust accuracy after ([\w-]+): ([\d.]+)%", m)
        if hit:
            out[hit.group(1).lower()] = float(hit.group(2)) / 100
    return out
