"""Ensembles of trained runs, seen by attacks as ONE model.

`Ensemble` averages its members' logits (`combine="logits"`) or their softmax probabilities
(`combine="softmax"`, returned as log-probabilities so cross-entropy attacks still work).
Gradients flow through every member, so a white-box attack attacks the whole ensemble.
(Its run directory: inborn.runs.ensemble.)
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn as nn

from inborn.errors import InbornError

COMBINES = ("logits", "softmax")


class Ensemble(nn.Module):
    """Members take pixels in [0, 1] and return logits; so does the ensemble."""

    def __init__(self, members: Sequence[nn.Module], combine: str = "logits",
                 names: Sequence[str] | None = None) -> None:
        super().__init__()
        if not members:
            raise InbornError("an ensemble needs at least one member")
        if combine not in COMBINES:
            raise InbornError(f"unknown combine rule {combine!r}; known: {', '.join(COMBINES)}")
        if names is not None and len(names) != len(members):
            raise InbornError(f"{len(names)} names for {len(members)} ensemble members")
        self.members = nn.ModuleList(members)
        self.combine = combine
        self.names = list(names) if names is not None else [f"member{i}" for i in range(len(members))]

    def __len__(self) -> int:
        return len(self.members)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        outs = [m(x) for m in self.members]
        check_num_classes([o.shape[-1] for o in outs], self.names)
        stacked = torch.stack([o.float() for o in outs])
        if self.combine == "logits":
            return stacked.mean(0)
        # log of the mean probability, computed stably in log space
        return torch.logsumexp(torch.log_softmax(stacked, dim=-1), dim=0) - math.log(len(outs))

    def extra_repr(self) -> str:
        return f"combine={self.combine!r}, members={len(self.members)}"


def check_num_classes(counts: Sequence[int | None], names: Sequence[str]) -> None:
    """One class count for every member, or a one-line error naming them."""
    known = {int(c) for c in counts if c is not None}
    if len(known) > 1:
        detail = ", ".join(f"{n}: {c}" for n, c in zip(names, counts, strict=True))
        raise InbornError(f"ensemble members disagree on the number of classes: {detail}")
