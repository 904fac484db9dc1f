"""Flags made from settings dataclasses: one flag per field, named, typed and explained by the field.

Every flag defaults to None, so a command knows which flags were given: only those override the
YAML config (`--config`), which overrides the defaults. Flag text is turned into values (ε as
`8/255`, lists, KEY=VALUE options) after parsing, so a bad value is a one-line InbornError.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Iterable
from dataclasses import MISSING, Field, fields
from typing import Any

from inborn.cli.common import int_arg, parse_int_list, parse_names, parse_options
from inborn.errors import InbornError
from inborn.settings import check_value
from inborn.values import parse_eps, parse_eps_list, parse_ratio, parse_real

_PARSERS: dict[str, Callable[[Any], Any]] = {
    "eps": parse_eps, "eps_list": parse_eps_list, "names": parse_names, "int_list": parse_int_list,
    "options": parse_options, "ratio": parse_ratio,
}


def _number_type(f: Field, base: str) -> Callable[[str], Any]:
    """The argparse type of a number flag: parsed, finite, and within the field's bounds."""
    def parse(text: str) -> Any:
        try:
            value = int_arg(text) if base == "int" else parse_real(text, f.name)
            check_value(f, value, f.name)
        except InbornError as e:
            raise argparse.ArgumentTypeError(str(e)) from None
        return value
    parse.__name__ = "number"
    return parse


def flag_name(f: Field) -> str:
    if "flag" in f.metadata:
        return f.metadata["flag"]
    prefix = "--no-" if f.default is True else "--"
    return prefix + f.name.replace("_", "-")


def add_setting_flags(p: argparse.ArgumentParser, cls: type, *, prefix: str = "", skip: Iterable[str] = (),
                      show_defaults: bool = False, help: dict[str, str] | None = None) -> None:
    """A flag for every field of `cls` that has one (not in `skip`, no `cli: False`), whose value
    lands in `args` under `prefix + field name`."""
    skip, help = set(skip), help or {}
    for f in fields(cls):
        if f.name in skip or f.metadata.get("cli", True) is False:
            continue
        text = help.get(f.name, f.metadata.get("help", ""))
        kwargs: dict[str, Any] = {"dest": prefix + f.name, "default": None, "help": text}
        annotation = str(f.type)
        if annotation == "bool":
            kwargs.update(action="store_const", const=not f.default)
        else:
            base = annotation.split("|")[0].strip()
            if "parse" in f.metadata:
                if f.metadata["parse"] == "options":
                    kwargs.update(action="append", metavar="KEY=VALUE")
            elif base in ("int", "float"):
                kwargs["type"] = _number_type(f, base)
            if "choices" in f.metadata:
                kwargs["choices"] = list(f.metadata["choices"])
            kwargs.setdefault("metavar", None if "choices" in kwargs else f.name.upper())
            default = f.default_factory() if f.default_factory is not MISSING else f.default
            if show_defaults and default not in (None, MISSING, {}):
                kwargs["help"] = f"{text} (default {_default_text(default)})"
        p.add_argument(flag_name(f), **kwargs)


def given_settings(args: argparse.Namespace, cls: type, *, prefix: str = "") -> dict[str, Any]:
    """The fields of `cls` whose flags were given, as values (ε and lists parsed)."""
    values: dict[str, Any] = {}
    for f in fields(cls):
        raw = getattr(args, prefix + f.name, None)
        if raw is None:
            continue
        parse = _PARSERS.get(f.metadata.get("parse", ""))
        value = parse(raw) if parse is not None else raw
        if f.metadata.get("parse") in ("eps", "ratio"):
            check_value(f, value, flag_name(f))
        values[f.name] = value
    return values


def _default_text(value: Any) -> str:
    if isinstance(value, list | tuple):
        return ",".join(map(str, value)) or "none"
    return str(value)
