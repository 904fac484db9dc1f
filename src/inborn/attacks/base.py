"""The attack base class: one place for the model's mode, the ε-ball, the [0,1] box and restarts.

Every attack is called the same way, `attack(model, x, y) -> x_adv`, with `x` in pixel
units in [0, 1] and ε in the same units (e.g. 8/255 on CIFAR, 0.3 on MNIST).
"""

from __future__ import annotations

import abc
import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import ClassVar, Literal

import torch
import torch.nn as nn
import torch.nn.functional as F

from inborn.device import autocast
from inborn.errors import InbornError
from inborn.values import EPS_HINT, EPS_MAX, check_int, check_seed, parse_real

Norm = Literal["linf", "l2"]
Mode = Literal["eval", "train", "keep"]


@contextlib.contextmanager
def model_mode(model: nn.Module, mode: Mode) -> Iterator[None]:
    """Put the model in eval or train mode for the attack and restore what it was afterwards."""
    was_training = model.training
    if mode == "eval":
        model.eval()
    elif mode == "train":
        model.train()
    try:
        yield
    finally:
        model.train(was_training)


@dataclass(frozen=True)
class AttackReport:
    """What one call of an attack says about its own run, beyond the points it returns: its
    warnings, and per sub-attack the number of the points given that were still robust after it
    (for an attack made of several, e.g. AutoAttack). The evaluator keeps it with the result."""

    warnings: list[str] = field(default_factory=list)
    robust_after: dict[str, int] = field(default_factory=dict)


def check_eps(eps: float, norm: str = "linf") -> float:
    """An attack's ε as a float: finite, >= 0, and at most 1 in pixel units for L-inf (ε = 1 already
    reaches every image); an L2 radius has no upper bound."""
    value = parse_real(eps, "ε", low=0) if not isinstance(eps, str) else None
    if value is None:
        raise InbornError(f"ε must be a number, got {eps!r} (values.parse_eps reads text such as '8/255')")
    if norm == "linf" and value > EPS_MAX:
        raise InbornError(f"ε must be in [0, 1] for an L-inf attack, got {eps} ({EPS_HINT})")
    return value


def check_step_size(step_size: float | None, what: str = "step_size") -> float | None:
    """A step size in pixel units: None (the attack's default) or a finite number >= 0 (0 at ε = 0,
    as FGSM-RS's 1.25 ε gives)."""
    return None if step_size is None else parse_real(step_size, what, low=0)


def margin_loss(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Per-sample CW margin: best other logit minus the true logit (positive = misclassified)."""
    true = logits.gather(1, y[:, None]).squeeze(1)
    other = logits.clone()
    other.scatter_(1, y[:, None], float("-inf"))
    return other.max(1).values - true


LOSSES = ("ce", "margin")


def per_sample_loss(logits: torch.Tensor, y: torch.Tensor, kind: str) -> torch.Tensor:
    logits = logits.float()
    if kind == "ce":
        return F.cross_entropy(logits, y, reduction="none")
    if kind == "margin":
        return margin_loss(logits, y)
    raise InbornError(f"unknown attack loss {kind!r} (use ce or margin)")


class Attack(abc.ABC):
    """Base class. Subclasses implement `perturb(model, x, y) -> x_adv` for one restart.

    `eot_samples > 1` averages every input gradient over that many forwards (EOT), for models
    whose forward is random. `use_autocast` runs the model under bf16 autocast on CUDA; off by
    default, so that an attack computes in float32 unless asked.
    """

    name = "attack"
    iterative: ClassVar[bool] = False  # takes `steps` and `step_size`
    # Whether a call leaves an `AttackReport`: then a result row carries its warnings and counts.
    reports: ClassVar[bool] = False

    def __init__(
        self,
        eps: float,
        *,
        norm: Norm = "linf",
        restarts: int = 1,
        mode: Mode = "eval",
        seed: int | None = None,
        use_autocast: bool = False,
        eot_samples: int = 1,
    ) -> None:
        if norm not in ("linf", "l2"):
            raise InbornError(f"unknown norm {norm!r} (use linf or l2)")
        eps = check_eps(eps, norm)
        restarts = check_int(restarts, "restarts", low=1)
        eot_samples = check_int(eot_samples, "eot_samples", low=1)
        if mode not in ("eval", "train", "keep"):
            raise InbornError(f"unknown attack mode {mode!r} (use eval, train or keep)")
        if seed is not None:
            seed = check_seed(seed)
        if not isinstance(use_autocast, bool):
            raise InbornError(f"use_autocast must be True or False, got {use_autocast!r}")
        self.eps = float(eps)
        self.norm = norm
        self.restarts = restarts
        self.mode = mode
        self.seed = seed
        self.use_autocast = use_autocast
        self.eot_samples = int(eot_samples)
        self._generator: torch.Generator | None = None

    def __repr__(self) -> str:
        return f"{type(self).__name__}(eps={self.eps:.5g}, norm={self.norm})"

    def reseed(self, seed: int) -> None:
        """Restart the attack's noise at `seed` (evaluation does so per batch, so that a batch's
        result does not depend on the batches before it and a resumed evaluation equals a whole one)."""
        self.seed = seed
        self._generator = None

    # -- what an attack may tell its caller (ordinary attacks: nothing) -----
    def set_batch_size(self, batch_size: int) -> bool:
        """Offer the caller's batch size. An attack that batches its input itself (AutoAttack)
        takes it and returns True: give it every point in one call, since it decides per batch
        which points to attack next. Every other attack ignores it and returns False."""
        return False

    def fooled(self) -> torch.Tensor | None:
        """The attack's own verdict on the points of its last call: True where it judged the
        model fooled. A caller counts such a point as not robust whatever a later classification
        says (on a randomised model that is another draw). None: no verdict beyond the points."""
        return None

    def report(self) -> AttackReport | None:
        """What the last call said about itself (see `AttackReport`); None for an attack that says nothing."""
        return None

    # -- the uniform call -------------------------------------------------
    def __call__(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        x, y = x.detach(), y.detach()
        # Seeded once per attack object, so successive batches draw fresh noise.
        if self.seed is not None and (self._generator is None or self._generator.device != x.device):
            self._generator = torch.Generator(device=x.device).manual_seed(self.seed)
        # enable_grad: an attack works even when called under torch.no_grad().
        with model_mode(model, self.mode), torch.enable_grad():
            x_adv = self.perturb(model, x, y)
            # Later restarts only run on the samples that are still classified correctly.
            for _ in range(self.restarts - 1):
                with torch.no_grad():
                    robust = self.predict(model, x_adv).eq(y)
                if not robust.any():
                    break
                idx = robust.nonzero().squeeze(1)
                x_adv = x_adv.clone()
                x_adv[idx] = self.perturb(model, x[idx], y[idx])
        return x_adv.detach()

    @abc.abstractmethod
    def perturb(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """One run of the attack from scratch (the base class handles restarts)."""

    # -- shared helpers ---------------------------------------------------
    def logits(self, model: nn.Module, x: torch.Tensor) -> torch.Tensor:
        with autocast(x.device, self.use_autocast):
            return model(x).float()

    def predict(self, model: nn.Module, x: torch.Tensor) -> torch.Tensor:
        return self.logits(model, x).argmax(1)

    def input_grad(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor,
                   loss: str = "ce") -> tuple[torch.Tensor, torch.Tensor]:
        """Gradient of the summed loss with respect to the input only, and the logits.

        `torch.autograd.grad` on the input alone: no gradient is computed for parameters.
        With `eot_samples > 1` the gradient is averaged over that many forwards (EOT).
        """
        samples = self.eot_samples
        grad = torch.zeros_like(x)
        logits = None
        for _ in range(samples):
            x_req = x.detach().requires_grad_(True)
            logits = self.logits(model, x_req)
            loss_value = per_sample_loss(logits, y, loss).sum()
            grad += torch.autograd.grad(loss_value, x_req)[0]
        return grad / samples, logits.detach()

    def rand_like(self, x: torch.Tensor) -> torch.Tensor:
        return torch.rand(x.shape, generator=self._generator, device=x.device, dtype=x.dtype)

    def randn_like(self, x: torch.Tensor) -> torch.Tensor:
        return torch.randn(x.shape, generator=self._generator, device=x.device, dtype=x.dtype)

    def random_point(self, x: torch.Tensor) -> torch.Tensor:
        """A uniform point in the ε-ball (L-inf) or a random direction at a uniform radius (L2)."""
        if self.norm == "linf":
            delta = (self.rand_like(x) * 2 - 1) * self.eps
        else:
            direction = self.randn_like(x)
            direction = direction / _l2(direction).clamp_min(1e-12)
            radius = self.rand_like(x[:, :1, :1, :1].reshape(-1)).view(-1, *[1] * (x.dim() - 1))
            delta = direction * radius * self.eps
        return (x + delta).clamp(0, 1)

    def step(self, x_adv: torch.Tensor, grad: torch.Tensor, step_size: float) -> torch.Tensor:
        """Steepest ascent for the norm: the sign for L-inf, the normalised gradient for L2."""
        if self.norm == "linf":
            return x_adv + step_size * grad.sign()
        return x_adv + step_size * grad / _l2(grad).clamp_min(1e-12)

    def project(self, x_adv: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """Back into the ε-ball around x, then into the [0,1] box (the box keeps the ball's bound)."""
        delta = x_adv - x
        if self.norm == "linf":
            delta = delta.clamp(-self.eps, self.eps)
        else:
            delta = delta * (self.eps / _l2(delta).clamp_min(1e-12)).clamp(max=1.0)
        return (x + delta).clamp(0, 1)


def _l2(t: torch.Tensor) -> torch.Tensor:
    return t.flatten(1).norm(dim=1).view(-1, *[1] * (t.dim() - 1))
