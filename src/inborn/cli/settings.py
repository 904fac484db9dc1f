"""Flags made from settings dataclasses: one flag per setting, named, typed and explained by it.

Every flag defaults to None, so a command knows which flags were given: only those override the
YAML config (`--config`), which overrides the defaults. What a setting accepts and how its text
becomes a value is `inborn.settings`' (`Setting.from_text`); this module only speaks argparse.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Iterable
from typing import Any

from inborn.cli.common import int_arg
from inborn.errors import InbornError
from inborn.settings import Setting, settings_of
from inborn.values import parse_real


def _number_type(s: Setting) -> Callable[[str], Any]:
    """The argparse type of a number flag: parsed, finite, and within the setting's bounds."""
    def parse(text: str) -> Any:
        try:
            value = int_arg(text) if s.kind == "int" else parse_real(text, s.name)
            s.check(value, s.name)
        except InbornError as e:
            raise argparse.ArgumentTypeError(str(e)) from None
        return value
    parse.__name__ = "number"
    return parse


def add_setting_flags(p: argparse.ArgumentParser, cls: type, *, prefix: str = "", skip: Iterable[str] = (),
                      show_defaults: bool = False, help: dict[str, str] | None = None) -> None:
    """A flag for every setting of `cls` that has one (not in `skip`, no `cli: False`), whose value
    lands in `args` under `prefix + setting name`."""
    skip, help = set(skip), help or {}
    for s in settings_of(cls):
        if s.name in skip or not s.cli:
            continue
        text = help.get(s.name, s.help)
        kwargs: dict[str, Any] = {"dest": prefix + s.name, "default": None, "help": text}
        if s.kind == "bool" and not s.optional:
            kwargs.update(action="store_const", const=not s.default)
        else:
            if s.parse == "options":
                kwargs.update(action="append", metavar="KEY=VALUE")
            elif s.parse is None and s.kind in ("int", "float"):
                kwargs["type"] = _number_type(s)
            if s.choices is not None:
                kwargs["choices"] = list(s.choices)
            kwargs.setdefault("metavar", None if s.choices is not None else s.name.upper())
            if show_defaults and s.default not in (None, {}):
                kwargs["help"] = f"{text} (default {_default_text(s.default)})"
        p.add_argument(s.flag, **kwargs)


def given_settings(args: argparse.Namespace, cls: type, *, prefix: str = "") -> dict[str, Any]:
    """The settings of `cls` whose flags were given, as values (ε and lists parsed)."""
    values: dict[str, Any] = {}
    for s in settings_of(cls):
        raw = getattr(args, prefix + s.name, None)
        if raw is not None:
            values[s.name] = s.from_text(raw) if s.parse is not None else raw
    return values


def _default_text(value: Any) -> str:
    if isinstance(value, list | tuple):
        return ",".join(map(str, value)) or "none"
    return str(value)
