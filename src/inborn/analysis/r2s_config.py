"""The settings of an R2S evaluation (`inborn r2s`'s flags, the studies' `evaluate` sections): one
dataclass with one default each. No torch here: the command line builds its flags from it."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from inborn.errors import InbornError
from inborn.settings import check_keys, check_values, setting
from inborn.values import SEED_MAX

PROTOCOLS = ("paper", "eot", "expectation", "autoattack-rand")
ADAPTIVE = ("eot", "expectation", "autoattack-rand")


@dataclass(frozen=True)
class R2SSettings:
    """Every setting of an R2S evaluation, with one default each (the command line's flags and the
    studies' presets derive from these fields). `n` is for the caller, which takes that many test
    images; `evaluate_r2s` scores the points it is given."""

    protocols: list[str] = setting(factory=lambda: list(PROTOCOLS), flag="--protocol", parse="names",
                                   help="comma-separated: " + ", ".join(PROTOCOLS))
    repeats: int = setting(5, "repeats of every protocol, each with a fresh switch (mean ± std)", low=1)
    eot_samples: int = setting(10, "samples per step for the eot protocol", flag="--eot", low=1)
    granularity: str = setting("batch", "how often the switch draws a ticket: per batch or per sample",
                               choices=("batch", "sample"))
    probs: list[float] | None = setting(None, "comma-separated switch probabilities, one per ticket (default "
                                              "uniform)", parse="real_list", low=0, high=1)
    steps: int = setting(20, "attack steps", low=1)
    n: int = setting(500, "test images to use", low=1)
    batch_size: int = setting(256, "batch size of the attacks and classifications", low=1)
    seed: int = setting(0, "seed of the switches and attacks", low=0, high=SEED_MAX)


def r2s_settings(settings: R2SSettings | None = None, **overrides: Any) -> R2SSettings:
    """`settings` (default: R2SSettings()) with `overrides` by field name, checked: one-line errors."""
    check_keys(R2SSettings, overrides, "r2s setting")
    s = dataclasses.replace(settings or R2SSettings(), **overrides)
    check_values(s)
    unknown = [p for p in s.protocols if p not in PROTOCOLS]
    if unknown:
        raise InbornError(f"unknown protocol {unknown[0]!r}; known: {', '.join(PROTOCOLS)}")
    if s.probs is not None and sum(s.probs) <= 0:
        raise InbornError(f"the switch probabilities must not all be 0, got {s.probs}")
    return s
