"""The settings of a ticket: one dataclass, whose fields are the keys of a run's `ticket` config, of
the sweep's `ticket.*` grid keys and `inborn search`'s flags; `to_supermask(model, config)` takes
it. No torch here (the command line builds its flags from it), so the names it accepts, and their
checks, live here too."""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from typing import Any

from inborn.errors import InbornError
from inborn.settings import check_values, from_mapping, setting
from inborn.values import SEED_MAX

SCOPES = ("layer", "global")
PATTERNS = ("element", "row", "kernel", "filter")
INITS = ("signed_constant", "kaiming_normal", "kaiming_uniform", "xavier_normal")
KEEP_COUNTS = ("round", "reference")
_NM = re.compile(r"^(\d+):(\d+)$")


@dataclass(frozen=True)
class SupermaskConfig:
    keep_ratio: float = setting(help="keep ratio: the fraction of weights KEPT, in (0, 1] (a fraction such as 3/7 "
                                     "allowed)", flag="--keep", parse="ratio", low=0, low_open=True, high=1)
    pattern: str = setting("element", "element, row, kernel, filter, or N:M such as 2:4")
    init: str = setting("signed_constant", "frozen weights: signed_constant, kaiming_normal, kaiming_uniform, "
                                           "xavier_normal")
    scope: str = setting("layer", "top-k per layer or over all", choices=SCOPES)
    # Defaults to inborn's old rule, so a run config written before this setting loads unchanged.
    keep_count: str = setting("round", "how many of a layer's n weights (or groups) keep ratio k keeps: round "
                                       "(default) = round(k·n); reference = n − int((1−k)·n), as the authors' "
                                       "GetSubnet. Both keep at least one; global scope applies the rule to "
                                       "the total; N:M patterns ignore it", choices=KEEP_COUNTS)
    dense_first: bool = setting(False, "keep the first layer dense (random, frozen)")
    dense_last: bool = setting(False, "keep the last layer dense (random, frozen)")
    scale_fan: bool = setting(False, "multiply the init's fan by the keep ratio k (std × 1/√k), as Ramanujan et al. "
                                     "describe; the authors' code multiplies by 1 − prune_rate, prune_rate being "
                                     "the KEPT share there: see docs/tickets.md")
    weight_seed: int = setting(0, "seed of the frozen random weights", low=0, high=SEED_MAX)
    score_seed: int = setting(0, "seed of the initial scores", low=0, high=SEED_MAX)

    def validate(self) -> SupermaskConfig:
        """Types and bounds, then the names and the rules between settings; one-line errors."""
        check_keep_ratio(self.keep_ratio)  # first: its message says what the ratio means
        check_values(self, "ticket.")
        check_pattern(self.pattern, self.keep_ratio)
        if self.init not in INITS:
            raise InbornError(f"unknown weight init {self.init!r}; known: {', '.join(INITS)}")
        return self

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any] | SupermaskConfig) -> SupermaskConfig:
        """A ticket config from its keys (a keep ratio may be written as a fraction, e.g. 3/7);
        an unknown key or a missing keep ratio is a one-line error."""
        if isinstance(d, dict) and d.get("keep_ratio") is None:
            raise InbornError("a ticket needs keep_ratio: the fraction of weights to keep, e.g. 0.05")
        return from_mapping(cls, d, "ticket")


def parse_nm(pattern: str) -> tuple[int, int] | None:
    """(N, M) for an N:M pattern such as "2:4", else None."""
    hit = _NM.match(pattern)
    if not hit:
        return None
    n, m = int(hit.group(1)), int(hit.group(2))
    if not 0 < n <= m:
        raise InbornError(f"N:M pattern needs 0 < N <= M, got {pattern!r}")
    return n, m


def check_pattern(pattern: str, keep_ratio: float) -> None:
    if pattern in PATTERNS:
        return
    nm = parse_nm(pattern)
    if nm is None:
        raise InbornError(f"unknown mask pattern {pattern!r}; known: {', '.join(PATTERNS)} or N:M such as 2:4")
    if abs(keep_ratio - nm[0] / nm[1]) > 1e-9:
        raise InbornError(f"pattern {pattern} keeps {nm[0]}/{nm[1]} of the weights; pass keep_ratio={nm[0] / nm[1]:g}")


def check_keep_ratio(keep_ratio: float) -> None:
    number = isinstance(keep_ratio, int | float) and not isinstance(keep_ratio, bool)
    if not number or not 0.0 < keep_ratio <= 1.0:
        raise InbornError(f"keep ratio must be in (0, 1] (the fraction of weights KEPT), got {keep_ratio}")
