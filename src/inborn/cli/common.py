"""Helpers shared by the commands: value parsing and the parser that fails in one line."""

from __future__ import annotations

import argparse
from typing import Any

from inborn.errors import InbornError


def parse_names(text: str) -> list[str]:
    return [t.strip() for t in text.split(",") if t.strip()]


def parse_int_list(text: str) -> list[int]:
    try:
        return [int(t) for t in text.split(",") if t.strip()]
    except ValueError as e:
        raise InbornError(f"expected comma-separated integers, got {text!r}") from e


class OneLineParser(argparse.ArgumentParser):
    """argparse, but a usage mistake is one line on stderr and exit status 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"inborn: error: {message} (see `{self.prog} --help`)\n")


def parse_options(items: list[str]) -> dict[str, Any]:
    """`KEY=VALUE` strings as a dict, values typed as YAML scalars (8 -> int, true -> bool)."""
    import yaml

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
