"""Projected gradient descent (Madry et al. 2018) and its relatives: CW-L-inf and EOT-PGD."""

from __future__ import annotations

import torch
import torch.nn as nn

from inborn.attacks.base import LOSSES, Attack, check_step_size, per_sample_loss
from inborn.errors import InbornError
from inborn.values import check_int


class PGD(Attack):
    """PGD with random start, restarts and optional per-sample early stop.

    Each sample returns the best iterate it reached: a misclassified one first, then the
    highest loss. So with the same seed more steps are never weaker, and early stop (which
    stops updating a sample once it is misclassified) gives the same robust accuracy while
    spending no more forwards on samples that are already broken.
    """

    name = "pgd"
    iterative = True

    def __init__(
        self,
        eps: float,
        *,
        steps: int = 20,
        step_size: float | None = None,
        random_start: bool = True,
        early_stop: bool = False,
        loss: str = "ce",
        track_best: bool = True,
        **kw,
    ) -> None:
        super().__init__(eps, **kw)
        self.steps = check_int(steps, "steps", low=1)
        step_size = check_step_size(step_size)
        if loss not in LOSSES:
            raise InbornError(f"unknown attack loss {loss!r} (use {' or '.join(LOSSES)})")
        for flag, value in (("random_start", random_start), ("early_stop", early_stop), ("track_best", track_best)):
            if not isinstance(value, bool):
                raise InbornError(f"{flag} must be True or False, got {value!r}")
        # Default step ε/4 (PGD-20 at 8/255 takes steps of 2/255, as in the RST paper); the same
        # default as build_attack's, so an attack means one thing however it is built.
        self.step_size = float(step_size) if step_size is not None else self.eps / 4
        self.random_start = random_start
        self.early_stop = early_stop
        self.loss = loss
        # Training uses the plain last iterate (track_best=False): one forward fewer per batch.
        self.track_best = track_best or early_stop

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(eps={self.eps:.5g}, norm={self.norm}, steps={self.steps}, "
                f"step_size={self.step_size:.5g}, restarts={self.restarts})")

    def perturb(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        x_adv = self.random_point(x) if self.random_start else x.clone()
        if not self.track_best:
            for _ in range(self.steps):
                grad, _ = self.input_grad(model, x_adv, y, self.loss)
                x_adv = self.project(self.step(x_adv, grad, self.step_size), x)
            return x_adv
        best = x_adv.clone()
        best_fooled = torch.zeros(len(x), dtype=torch.bool, device=x.device)
        best_loss = torch.full((len(x),), float("-inf"), device=x.device)
        active = torch.arange(len(x), device=x.device)

        for step in range(self.steps + 1):
            # The gradient's forward also scores the current iterate, so tracking is free.
            need_grad = step < self.steps
            xa, ya = x_adv[active], y[active]
            if need_grad:
                grad, logits = self.input_grad(model, xa, ya, self.loss)
            else:
                with torch.no_grad():
                    logits = self.logits(model, xa)
            with torch.no_grad():
                loss = per_sample_loss(logits, ya, self.loss)
                fooled = logits.argmax(1).ne(ya)
                better = (fooled & ~best_fooled[active]) | (
                    (fooled == best_fooled[active]) & (loss > best_loss[active])
                )
                upd = active[better]
                best[upd] = xa[better]
                best_loss[upd] = loss[better]
                best_fooled[upd] = fooled[better]
                if not need_grad:
                    break
                if self.early_stop:
                    keep = ~fooled
                    active, xa, grad = active[keep], xa[keep], grad[keep]
                    if len(active) == 0:
                        break
                x_adv[active] = self.project(self.step(xa, grad, self.step_size), x[active])
        return best


class CWLinf(PGD):
    """PGD on the Carlini-Wagner margin loss (the "CW-L∞" of Madry/Rice et al.)."""

    name = "cw"

    def __init__(self, eps: float, **kw) -> None:
        kw.setdefault("loss", "margin")
        super().__init__(eps, **kw)


class EOTPGD(PGD):
    """PGD whose gradient is averaged over `eot_samples` forwards of a randomised model."""

    name = "eot-pgd"

    def __init__(self, eps: float, *, eot_samples: int = 10, **kw) -> None:
        super().__init__(eps, eot_samples=eot_samples, **kw)
