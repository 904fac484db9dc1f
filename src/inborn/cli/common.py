"""Helpers shared by the commands: value parsing and the parser that fails in one line."""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path
from typing import Any

from inborn.errors import InbornError
from inborn.values import SEED_MAX, parse_int, parse_names, parse_ratio, parse_real, refuse_close_ratios


# -- argparse types: a bad number is one line naming the flag (OneLineParser), never a traceback --
def add_trust_flag(p: argparse.ArgumentParser) -> None:
    """`--trust-code`: consent to run the model code an imported run names (`INBORN_TRUST_CODE=1` for the
    process: its sweep cells inherit it); see docs/import.md."""
    p.add_argument("--trust-code", action="store_true",
                   help="run the model code of an imported run that was not imported on this machine (the "
                        "file's hash is then recorded as trusted); never without reading that code first")


def count_arg(text: str) -> int:
    """A count that makes no sense at 0: an integer >= 1, typed plainly (`12`, never `1_2` or `1e1`)."""
    return _int_flag(text, low=1)


def int_arg(text: str) -> int:
    """A whole number, typed plainly."""
    return _int_flag(text)


def seed_arg(text: str) -> int:
    """A seed: a whole number in [0, 2**32 - 1] (values.SEED_MAX), the range every generator takes."""
    return _int_flag(text, low=0, high=SEED_MAX)


def _int_flag(text: str, *, low: int | None = None, high: int | None = None) -> int:
    try:
        return parse_int(text, "value", low=low, high=high)
    except InbornError as e:
        raise argparse.ArgumentTypeError(str(e).removeprefix("value ")) from None


def real_arg(low: float | None = None, high: float | None = None, *, low_open: bool = False,
             high_open: bool = False) -> Any:
    """An argparse type: a finite real number in the given range."""
    def parse(text: str) -> float:
        try:
            return parse_real(text, "value", low=low, high=high, low_open=low_open, high_open=high_open)
        except InbornError as e:
            raise argparse.ArgumentTypeError(str(e)) from None
    parse.__name__ = "number"
    return parse


def parse_ratio_list(text: str, what: str = "keep ratio") -> list[float]:
    """Comma-separated ratios in (0, 1] (`0.05,0.1,3/7`)."""
    values = [parse_ratio(t, what) for t in parse_names(text)]
    if not values:
        raise InbornError(f"expected comma-separated {what}s, e.g. 0.05,0.1, got {text!r}")
    refuse_close_ratios(values, what, parse_names(text))  # a second copy would never be searched
    return values


def throwaway(name: str) -> tuple[Path, Path]:
    """A `--smoke` run's directory `name` and its results database, in a new temporary directory
    (never --out, never the user's database)."""
    base = Path(tempfile.mkdtemp(prefix="inborn-smoke-"))
    return base / name, base / "inborn.db"


class OneLineParser(argparse.ArgumentParser):
    """argparse, but a usage mistake is one line on stderr and exit status 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"inborn: error: {message} (see `{self.prog} --help`)\n")
