"""Repeating a study's cells over seeds, and reading the repeats: mean ± std, and whether an
ordering holds beyond the run-to-run spread.

A seed sets the frozen weights of a ticket run (`ticket.weight_seed`) and the run's own seed
(`seed`: the data order, the split, the attacks' random starts, a dense network's init). A study without
`seeds` runs each cell once, under the directory names it always had.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence
from typing import Any

from inborn.errors import InbornError


def study_seeds(preset: dict[str, Any]) -> list[int | None]:
    """The preset's seeds; [None] (one run per cell, the config's own seeds) when it has none."""
    seeds = preset.get("seeds")
    if seeds is None:
        return [None]
    if not isinstance(seeds, list) or not seeds or not all(isinstance(s, int) and not isinstance(s, bool)
                                                           for s in seeds):
        raise InbornError(f"seeds must be a non-empty list of integers, got {seeds!r}")
    if len(set(seeds)) != len(seeds):
        raise InbornError(f"seeds repeat a value: {seeds!r}")
    return list(seeds)


def seeded(config: dict[str, Any], seed: int | None) -> dict[str, Any]:
    """`config` with every seed set to `seed` (unchanged for None)."""
    if seed is None:
        return config
    config = copy.deepcopy(config)
    config["seed"] = seed
    if config.get("ticket") is not None:
        config["ticket"] = {**config["ticket"], "weight_seed": seed}
    return config


def seed_suffix(seed: int | None) -> str:
    """What a seed adds to a cell's directory name ('' without seeds, so old runs are reused)."""
    return "" if seed is None else f"-s{seed}"


def mean_std(values: Sequence[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (0 for a single value)."""
    if not values:
        raise InbornError("no values to average")
    mean = sum(values) / len(values)
    if len(values) < 2:
        return mean, 0.0
    return mean, math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))


def fmt_spread(values: Sequence[float], digits: int = 3) -> str:
    """'0.642' for one value, '0.642 ± 0.012' (mean ± std) for several."""
    mean, std = mean_std(values)
    return f"{mean:.{digits}f}" if len(values) < 2 else f"{mean:.{digits}f} ± {std:.{digits}f}"


def beyond_spread(a: Sequence[float], b: Sequence[float]) -> bool:
    """Whether mean(a) > mean(b) by more than the spread: the intervals mean ± std do not
    overlap. With one run each there is no spread to go beyond, so it is never claimed."""
    if len(a) < 2 or len(b) < 2:
        return False
    (ma, sa), (mb, sb) = mean_std(a), mean_std(b)
    return ma - sa > mb + sb


def ordering_sentence(first: str, a: Sequence[float], second: str, b: Sequence[float], what: str = "PGD-20") -> str:
    """One line saying which of two is ahead, by how much, and whether beyond the spread."""
    ma, mb = mean_std(a)[0], mean_std(b)[0]
    if ma < mb:
        first, a, second, b, ma, mb = second, b, first, a, mb, ma
    n = min(len(a), len(b))
    if n < 2:
        verdict = "one run each: no spread measured, so this ordering is not established"
    elif beyond_spread(a, b):
        verdict = f"beyond the spread (mean ± std over {n} seeds do not overlap)"
    else:
        verdict = f"within the spread (mean ± std over {n} seeds overlap): not established"
    return (f"{first} > {second} ({what} {fmt_spread(a)} against {fmt_spread(b)}, "
            f"{100 * (ma - mb):+.1f} points): {verdict}.")
