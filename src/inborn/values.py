"""Values as people type them: ε in pixel units (`0.3`, `8/255`), numbers, lists and KEY=VALUE
options, in configs and on the command line. Every text-to-value parse of a setting lives here."""

from __future__ import annotations

import math
from fractions import Fraction
from typing import Any

import yaml

from inborn.errors import InbornError


def parse_eps(text: str) -> float:
    """One ε in pixel units: `0.3`, `8/255` or `2e-2`."""
    try:
        value = float(Fraction(text.strip())) if "/" in text else float(text)
    except (ValueError, ZeroDivisionError) as e:
        raise InbornError(f"cannot read ε {text!r} (use e.g. 0.3 or 8/255)") from e
    if not math.isfinite(value):
        raise InbornError(f"ε must be a finite number, got {text!r} (use e.g. 0.3 or 8/255)")
    if value < 0:
        raise InbornError(f"ε must be >= 0, got {text}")
    return value


def parse_eps_list(text: str) -> list[float]:
    values = [parse_eps(t) for t in str(text).split(",") if t.strip()]
    if not values:
        raise InbornError(f"expected comma-separated ε values, e.g. 0.1,0.2 or 8/255, got {text!r}")
    return values


def parse_real(text: str | float, what: str = "value", *, low: float | None = None, high: float | None = None,
               low_open: bool = False, high_open: bool = False) -> float:
    """A finite real number (fractions such as 3/7 allowed) within the given bounds; a bad one is a
    one-line InbornError that states the range (and never suggests a value it would refuse)."""
    try:
        if isinstance(text, bool):
            raise ValueError
        if isinstance(text, int | float):
            value = float(text)
        else:
            value = float(Fraction(text.strip())) if "/" in text else float(text)
    except (ValueError, ZeroDivisionError, TypeError, OverflowError) as e:
        raise InbornError(f"{what} must be a number, got {text!r}") from e
    if not math.isfinite(value):
        raise InbornError(f"{what} must be a finite number, got {text!r}")
    bad_low = low is not None and (value <= low if low_open else value < low)
    bad_high = high is not None and (value >= high if high_open else value > high)
    if bad_low or bad_high:
        raise InbornError(f"{what} must be {range_text(low, high, low_open, high_open)}, got {text}")
    return value


def range_text(low: float | None, high: float | None, low_open: bool, high_open: bool) -> str:
    if low is not None and high is not None:
        return f"in {'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"
    if low is not None:
        return f"{'>' if low_open else '>='} {low:g}"
    if high is not None:
        return f"{'<' if high_open else '<='} {high:g}"
    return "a finite number"


def parse_real_list(text: str, what: str = "value", **bounds: Any) -> list[float]:
    """Comma-separated finite numbers (fractions allowed) within `bounds` (see parse_real)."""
    values = [parse_real(t, what, **bounds) for t in parse_names(text)]
    if not values:
        raise InbornError(f"expected comma-separated numbers, got {text!r}")
    return values


def parse_ratio(text: str | float, what: str = "keep ratio") -> float:
    """A ratio in (0, 1], written as a decimal or a fraction (`0.3`, `3/7`)."""
    return parse_real(text, what, low=0, high=1, low_open=True)


def parse_names(text: str) -> list[str]:
    """Comma-separated names (`pgd,fgsm`); blanks dropped."""
    return [t.strip() for t in str(text).split(",") if t.strip()]


def parse_int_list(text: str) -> list[int]:
    try:
        return [int(t) for t in str(text).split(",") if t.strip()]
    except ValueError as e:
        raise InbornError(f"expected comma-separated integers, got {text!r}") from e


def parse_options(items: list[str]) -> dict[str, Any]:
    """`KEY=VALUE` strings as a dict, values typed as YAML scalars (8 -> int, true -> bool)."""
    options: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip() or not value.strip():
            raise InbornError(f"expected KEY=VALUE, got {item!r}")
        try:
            options[key.strip()] = yaml.safe_load(value)
        except yaml.YAMLError:
            options[key.strip()] = value
    return options
