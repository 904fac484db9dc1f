"""The settings of a ticket: one dataclass, whose fields are `to_supermask`'s keywords, the keys of
a run's `ticket` config and of the sweep's `ticket.*` grid keys, and `inborn search`'s flags.
No torch here: the command line builds its flags from it."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any

from inborn.errors import InbornError

SCOPES = ("layer", "global")


def _setting(default: Any, help: str, **meta: Any) -> Any:
    return field(default=default, metadata={"help": help, **meta})


@dataclass(frozen=True)
class SupermaskConfig:
    keep_ratio: float = field(metadata={"help": "keep ratio: the fraction of weights KEPT, in (0, 1] (a fraction "
                                                "such as 3/7 allowed)", "flag": "--keep", "parse": "ratio",
                                        "low": 0, "low_open": True, "high": 1})
    pattern: str = _setting("element", "element, row, kernel, filter, or N:M such as 2:4")
    init: str = _setting("signed_constant",
                         "frozen weights: signed_constant, kaiming_normal, kaiming_uniform, xavier_normal")
    scope: str = _setting("layer", "top-k per layer or over all", choices=SCOPES)
    dense_first: bool = _setting(False, "keep the first layer dense (random, frozen)")
    dense_last: bool = _setting(False, "keep the last layer dense (random, frozen)")
    scale_fan: bool = _setting(False, "scale the init's fan by the keep ratio")
    weight_seed: int = _setting(0, "seed of the frozen random weights")
    score_seed: int = _setting(0, "seed of the initial scores")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SupermaskConfig:
        """A ticket config from its keys; an unknown key or a missing keep ratio is a one-line error."""
        known = [f.name for f in fields(cls)]
        unknown = sorted(set(d) - set(known))
        if unknown:
            raise InbornError(f"unknown ticket settings: {', '.join(unknown)}; known: {', '.join(known)}")
        if d.get("keep_ratio") is None:
            raise InbornError("a ticket needs keep_ratio: the fraction of weights to keep, e.g. 0.05")
        if isinstance(d["keep_ratio"], str):  # written as a fraction, e.g. 3/7
            from inborn.values import parse_ratio

            d = {**d, "keep_ratio": parse_ratio(d["keep_ratio"])}
        return cls(**d)
