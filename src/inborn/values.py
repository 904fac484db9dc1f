"""Values as people type them: ε in pixel units (`0.3`, `8/255`), in configs and on the command line."""

from __future__ import annotations

from fractions import Fraction

from inborn.errors import InbornError


def parse_eps(text: str) -> float:
    """One ε in pixel units: `0.3`, `8/255` or `2e-2`."""
    try:
        value = float(Fraction(text.strip())) if "/" in text else float(text)
    except (ValueError, ZeroDivisionError) as e:
        raise InbornError(f"cannot read ε {text!r} (use e.g. 0.3 or 8/255)") from e
    if value < 0:
        raise InbornError(f"ε must be >= 0, got {text}")
    return value


def parse_eps_list(text: str) -> list[float]:
    return [parse_eps(t) for t in text.split(",") if t.strip()]
