"""Single-step attacks: FGSM, R-FGSM (Tramèr et al. 2018) and Step-LL (Kurakin et al. 2017)."""

from __future__ import annotations

import torch
import torch.nn as nn

from inborn.attacks.base import Attack
from inborn.values import parse_real


class FGSM(Attack):
    """One step of size ε along the gradient's sign (L-inf) or direction (L2)."""

    name = "fgsm"

    def perturb(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        grad, _ = self.input_grad(model, x, y)
        return self.project(self.step(x, grad, self.eps), x)


class RFGSM(Attack):
    """A random sign step of size α, then a gradient step of size ε − α from there."""

    name = "rfgsm"

    def __init__(self, eps: float, *, alpha: float | None = None, **kw) -> None:
        super().__init__(eps, **kw)
        # The random step α and the gradient step ε − α together stay within ε.
        self.alpha = self.eps / 2 if alpha is None else parse_real(alpha, "alpha", low=0, high=self.eps)

    def perturb(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        x_start = self.project(x + self.alpha * self.randn_like(x).sign(), x)
        grad, _ = self.input_grad(model, x_start, y)
        return self.project(self.step(x_start, grad, self.eps - self.alpha), x)


class StepLL(Attack):
    """One step that descends the loss of the least-likely class, pulling the input towards it."""

    name = "stepll"

    def perturb(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            target = self.logits(model, x).argmin(1)
        grad, _ = self.input_grad(model, x, target)
        return self.project(self.step(x, -grad, self.eps), x)
