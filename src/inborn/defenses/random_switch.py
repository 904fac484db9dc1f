"""The Random RST Switch (Fu et al. 2021): a ticket drawn at random at every forward.

Also the two views of the family that an adaptive attacker uses: one fixed ticket
(`SingleTicket`, the paper's protocol attacks one drawn ticket) and the exact expectation
over the candidate set (`ExpectedTickets`, log of the probability-weighted mean softmax).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn as nn

from inborn.errors import InbornError
from inborn.masks.family import TicketFamily


def _check_probs(probs: Sequence[float] | None, n: int) -> torch.Tensor:
    if probs is None:
        return torch.full((n,), 1.0 / n)
    p = torch.tensor([float(v) for v in probs])
    if len(p) != n:
        raise InbornError(f"{len(p)} probabilities for {n} tickets")
    if (p < 0).any() or abs(float(p.sum()) - 1.0) > 1e-6:
        raise InbornError(f"switch probabilities must be non-negative and sum to 1, got sum {float(p.sum()):.6g}")
    return p


class RandomSwitch(nn.Module):
    """Draws a ticket per batch or per sample at every forward (eval-mode BatchNorm)."""

    # Declared, so that the evaluator never relies on its probe to see it: a skewed switch can draw
    # the same ticket at every probing forward and pass for a deterministic model.
    randomised = True

    def __init__(self, family: TicketFamily, granularity: str = "batch", probs: Sequence[float] | None = None,
                 generator: torch.Generator | None = None) -> None:
        super().__init__()
        if granularity not in ("batch", "sample"):
            raise InbornError(f"granularity must be batch or sample, got {granularity!r}")
        self.family = family
        self.granularity = granularity
        self.register_buffer("probs", _check_probs(probs, len(family)), persistent=False)
        self.generator = generator
        self.last_choice: torch.Tensor | None = None

    def draw(self, n: int) -> torch.Tensor:
        return torch.multinomial(self.probs.cpu(), n, replacement=True, generator=self.generator)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.granularity == "batch" or len(x) == 1:
            choice = self.draw(1).expand(len(x))
            self.family.select(int(choice[0]))
            self.last_choice = choice
            return self.family(x)
        choice = self.draw(len(x))
        self.last_choice = choice
        out = None
        for i in choice.unique().tolist():
            rows = (choice == i).nonzero().squeeze(1).to(x.device)
            self.family.select(i)
            logits = self.family(x[rows])
            if out is None:
                out = logits.new_empty(len(x), logits.shape[1])
            out[rows] = logits
        return out


class SingleTicket(nn.Module):
    """One member of a family, as an ordinary deterministic model."""

    def __init__(self, family: TicketFamily, index: int) -> None:
        super().__init__()
        self.family = family
        self.index = index

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.family.select(self.index)
        return self.family(x)


class ExpectedTickets(nn.Module):
    """log Σ_i p_i softmax(f_i(x)): cross-entropy on it is −log of the switch's expected
    probability of the true class, the exact objective of an attacker who knows the set."""

    def __init__(self, family: TicketFamily, probs: Sequence[float] | None = None) -> None:
        super().__init__()
        self.family = family
        self.register_buffer("log_probs", _check_probs(probs, len(family)).log(), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        parts = []
        for i in range(len(self.family)):
            self.family.select(i)
            parts.append(torch.log_softmax(self.family(x).float(), 1) + self.log_probs[i].to(x.device))
        return torch.logsumexp(torch.stack(parts), 0)
