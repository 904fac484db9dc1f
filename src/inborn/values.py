"""Values as people type them: ε in pixel units (`0.3`, `8/255`), numbers, lists and KEY=VALUE
options, in configs and on the command line. Every text-to-value parse of a setting lives here,
and the checks of the same values handed to the Python API (`check_int`, `check_seed`, `eps_value`).

Number syntax is strict: `0.1`, `-3`, `1e-3`, `.5`, `8/255`; never what Python's float() and int()
also take (`0_1`, ` 1e-1 `, `infinity`, Unicode digits), so that a typo is an error, not a value.
"""

from __future__ import annotations

import difflib
import math
import numbers
import operator
import re
from collections.abc import Iterable, Sequence
from fractions import Fraction
from typing import Any

import yaml

from inborn.errors import InbornError

# ε is in pixel units, pixels in [0, 1]: an L-inf ε of 1 already reaches every image.
EPS_MAX = 1.0
# Seeds: [0, 2**32 - 1], numpy's legacy range; torch takes up to 2**64 - 1, and the offsets inborn
# derives from a seed (seed * 1000 + r, seed + 1_000_003 * batch) stay far inside it from here.
SEED_MAX = 2**32 - 1
_DECIMAL = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?\Z")
_FRACTION = re.compile(r"[+-]?[0-9]+/[0-9]+\Z")
_INTEGER = re.compile(r"[+-]?[0-9]+\Z")
_NON_FINITE = ("inf", "+inf", "-inf", "infinity", "+infinity", "-infinity", "nan", "+nan", "-nan")
EPS_HINT = "ε is in pixel units, pixels in [0, 1]: use e.g. 0.3 or 8/255"


def read_number(text: str, what: str = "value") -> float:
    """A plain number as typed: a decimal (`0.1`, `1e-3`) or a fraction of whole numbers (`8/255`).
    Non-finite values are refused here too: nothing inborn takes is infinite."""
    if not isinstance(text, str):
        raise InbornError(f"{what} must be a number, got {text!r}")
    if text.strip().lower() in _NON_FINITE:
        raise InbornError(f"{what} must be a finite number, got {text!r}")
    try:
        if _FRACTION.match(text):
            return float(Fraction(text))
        if _DECIMAL.match(text):
            value = float(text)
            if math.isfinite(value):
                return value
            raise InbornError(f"{what} must be a finite number, got {text!r}")  # 1e999
    except (ZeroDivisionError, OverflowError) as e:
        raise InbornError(f"{what} must be a number, got {text!r}") from e
    raise InbornError(f"{what} must be a plain number such as 0.1, 1e-3 or 1/4, got {text!r}")


def parse_eps(text: str | float, what: str = "ε", *, high: float | None = EPS_MAX) -> float:
    """One ε in pixel units: `0.3`, `8/255` or `2e-2` (or a number), in [0, `high`]; `high=None`
    for a radius with no upper bound (an L2 ball)."""
    if isinstance(text, str):
        try:
            value = read_number(text, what)
        except InbornError as e:
            message = (f"{what} must be a finite number, got {text!r}" if "finite" in str(e)
                       else f"cannot read {what} {text!r}")
            raise InbornError(f"{message} ({EPS_HINT})") from None
    else:
        value = parse_real(text, what)
    if value < 0:
        raise InbornError(f"{what} must be >= 0, got {text}")
    if high is not None and value > high:
        raise InbornError(f"{what} must be in [0, {high:g}], got {text} ({EPS_HINT})")
    return value


def parse_eps_list(text: str | Sequence[str | float], what: str = "ε", *, high: float | None = EPS_MAX,
                   ) -> list[float]:
    """Comma-separated ε values (or a sequence of them), each given once."""
    items = parse_names(text) if isinstance(text, str) else list(text)
    values = [parse_eps(t, what, high=high) for t in items]
    if not values:
        raise InbornError(f"expected comma-separated ε values, e.g. 0.1,0.2 or 8/255, got {text!r}")
    refuse_duplicates(values, what, items)
    return values


def refuse_duplicates(values: Sequence[Any], what: str, texts: Sequence[Any] | None = None) -> None:
    """A one-line error when a value is given twice (naming both as typed): a list where a second
    copy means nothing (attacks, ε, keep ratios)."""
    texts = list(values) if texts is None else list(texts)
    seen: dict[Any, Any] = {}
    for value, text in zip(values, texts, strict=True):
        if value in seen:
            if str(seen[value]) == str(text):
                raise InbornError(f"{what} names {text} twice: give each once")
            raise InbornError(f"{what} names one value twice ({seen[value]} and {text}): give each once")
        seen[value] = text


def parse_real(text: str | float, what: str = "value", *, low: float | None = None, high: float | None = None,
               low_open: bool = False, high_open: bool = False) -> float:
    """A finite real number (fractions such as 3/7 allowed) within the given bounds; a bad one is a
    one-line InbornError that states the range (and never suggests a value it would refuse)."""
    if isinstance(text, str):
        value = read_number(text, what)
    else:
        try:
            if isinstance(text, bool) or not isinstance(text, numbers.Real):  # numpy's numbers too
                raise TypeError
            value = float(text)
        except (TypeError, OverflowError) as e:
            raise InbornError(f"{what} must be a number, got {text!r}") from e
        if not math.isfinite(value):
            raise InbornError(f"{what} must be a finite number, got {text!r}")
    bad_low = low is not None and (value <= low if low_open else value < low)
    bad_high = high is not None and (value >= high if high_open else value > high)
    if bad_low or bad_high:
        raise InbornError(f"{what} must be {range_text(low, high, low_open, high_open)}, got {text}")
    return value


def parse_int(text: str, what: str = "value", *, low: int | None = None, high: int | None = None) -> int:
    """A whole number as typed (`12`, `-3`; never `1_000`, ` 7` or `1e3`), within [low, high]."""
    if not isinstance(text, str) or not _INTEGER.match(text):
        raise InbornError(f"{what} must be a whole number, got {text!r}")
    return check_int(int(text), what, low=low, high=high)


def check_int(value: Any, what: str = "value", *, low: int | None = None, high: int | None = None) -> int:
    """A whole number handed to the API (a Python or numpy integer; never a bool, a float or text)
    within [low, high]."""
    try:
        if isinstance(value, bool):
            raise TypeError
        number = operator.index(value)
    except TypeError:
        raise InbornError(f"{what} must be a whole number, got {value!r}") from None
    if (low is not None and number < low) or (high is not None and number > high):
        raise InbornError(f"{what} must be {range_text(low, high, False, False)}, got {number}")
    return number


def is_whole(value: Any, low: int | None = None) -> bool:
    """A read file's integer field: an int, never a bool (JSON's true is Python's True == 1)."""
    return isinstance(value, int) and not isinstance(value, bool) and (low is None or value >= low)


def is_real(value: Any, low: float | None = None, high: float | None = None) -> bool:
    """A read file's finite number field (int or float, never a bool) within [low, high]."""
    return (isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
            and (low is None or value >= low) and (high is None or value <= high))


def is_share(value: Any) -> bool:
    """A read file's accuracy or fraction: a number in [0, 1]."""
    return is_real(value, 0.0, 1.0)


def check_seed(value: Any, what: str = "seed") -> int:
    """A seed: a whole number in [0, SEED_MAX]."""
    return check_int(value, what, low=0, high=SEED_MAX)


def _num(x: float) -> str:
    """A bound as text: whole numbers in full (4294967295, not 4.29497e+09)."""
    return str(int(x)) if float(x).is_integer() and abs(x) < 1e18 else f"{x:g}"


def range_text(low: float | None, high: float | None, low_open: bool, high_open: bool) -> str:
    if low is not None and high is not None:
        return f"in {'(' if low_open else '['}{_num(low)}, {_num(high)}{')' if high_open else ']'}"
    if low is not None:
        return f"{'>' if low_open else '>='} {_num(low)}"
    if high is not None:
        return f"{'<' if high_open else '<='} {_num(high)}"
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


# Two keep ratios closer than this search the same ticket in all but the largest layers.
RATIO_TOL = 1e-6


def refuse_close_ratios(ratios: Sequence[float], what: str = "keep ratio",
                        texts: Sequence[Any] | None = None) -> None:
    """A one-line error naming both when two ratios are equal, within RATIO_TOL of each other, or
    print alike at 6 significant digits (`{:g}`, the name of a family member's directory)."""
    texts = list(ratios) if texts is None else list(texts)
    for i, a in enumerate(ratios):
        for j in range(i):
            b = ratios[j]
            if a == b:
                refuse_duplicates([b, a], what, [texts[j], texts[i]])
            if abs(a - b) <= RATIO_TOL or f"{a:g}" == f"{b:g}":
                raise InbornError(f"{what}s {texts[j]} and {texts[i]} are too close ({RATIO_TOL:g} or less apart, or "
                                  f"alike at 6 significant digits, one family member's name): give each once")


def parse_names(text: str) -> list[str]:
    """Comma-separated names (`pgd,fgsm`); blanks dropped."""
    return [t.strip() for t in str(text).split(",") if t.strip()]


def parse_int_list(text: str) -> list[int]:
    items = [t.strip() for t in str(text).split(",") if t.strip()]
    if any(not _INTEGER.match(t) for t in items):
        raise InbornError(f"expected comma-separated integers, got {text!r}")
    return [int(t) for t in items]


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


def nearest_hint(key: Any, known: Iterable[str]) -> str:
    """The tail of an unknown-key message: the nearest known key, else the known keys."""
    known = list(known)
    # A close spelling, else a known key the text begins (`keep` for `keep_ratio`) or begins with (`lr_rate`).
    text = str(key)
    close = (difflib.get_close_matches(text, known, n=1) or [k for k in known if k.startswith(text)][:1]
             or sorted((k for k in known if text.startswith(k)), key=len)[-1:])
    return f"; did you mean {close[0]!r}?" if close else f"; known: {', '.join(known)}"
