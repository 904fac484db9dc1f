"""AutoAttack (Croce & Hein 2020) through the `pyautoattack` package, with its warnings kept.

AutoAttack checks its own evaluation: it warns about randomised models, zero gradients and
Square beating the gradient attacks (a sign of gradient masking). Those warnings are part of
the result, so they are captured and exposed in `last_report` rather than lost in a log.
"""

from __future__ import annotations

import logging
import re
import warnings
from typing import Any

import torch
import torch.nn as nn

from inborn.attacks.base import Attack, model_mode
from inborn.errors import InbornError


class _Capture(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


class AutoAttack(Attack):
    """`version="standard"` (APGD-CE, APGD-T, FAB-T, Square) or `"rand"` (APGD with EOT)."""

    name = "autoattack"

    def __init__(self, eps: float, *, version: str = "standard", batch_size: int = 500, **kw) -> None:
        super().__init__(eps, **kw)
        if version not in ("standard", "rand", "plus"):
            raise InbornError(f"unknown AutoAttack version {version!r} (use standard, rand or plus)")
        self.version = version
        self.batch_size = batch_size
        self.last_report: dict[str, Any] = {}

    def __repr__(self) -> str:
        return f"AutoAttack(eps={self.eps:.5g}, norm={self.norm}, version={self.version})"

    def __call__(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        from pyautoattack import AutoAttack as _AA

        if len(x) == 0 or self.eps == 0:
            return x.detach().clone()
        logger = logging.getLogger("auto-attack")
        handler = _Capture()
        old_level, old_propagate = logger.level, logger.propagate
        logger.addHandler(handler)
        logger.setLevel(logging.DEBUG)
        logger.propagate = False
        seed = 0 if self.seed is None else self.seed
        try:
            with model_mode(model, self.mode), warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                adversary = _AA(model, norm="Linf" if self.norm == "linf" else "L2", eps=self.eps,
                                version=self.version, device=x.device, seed=seed)
                x_adv, _ = adversary.run_standard_evaluation(x.detach(), y.detach(), batch_size=self.batch_size)
        finally:
            logger.removeHandler(handler)
            logger.setLevel(old_level)
            logger.propagate = old_propagate
        messages = [r.getMessage() for r in handler.records]
        warned = [r.getMessage() for r in handler.records if r.levelno >= logging.WARNING]
        warned += [str(w.message) for w in caught]
        self.last_report = {
            "version": self.version,
            "warnings": sorted(set(warned)),
            "robust_accuracy_after": _robust_after(messages),
        }
        return x_adv.detach()

    def perturb(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self(model, x, y)


def _robust_after(messages: list[str]) -> dict[str, float]:
    """The running robust accuracy after each sub-attack, read from AutoAttack's own log."""
    out: dict[str, float] = {}
    for m in messages:
        hit = re.match(r"robust accuracy after ([\w-]+): ([\d.]+)%", m)
        if hit:
            out[hit.group(1).lower()] = float(hit.group(2)) / 100
    return out
