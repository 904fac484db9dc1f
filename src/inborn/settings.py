"""One definition per setting: a field of a dataclass, with its help text in the field's metadata.

The command line builds its flags from these fields (inborn.cli.settings), YAML configs and sweep
grids name them, presets fill them; none of them rewrites a setting by hand.

Metadata keys: `help`; `flag` (the flag's name when not `--field-name`); `choices`; `parse` (how
the flag's text becomes a value: `eps`, `eps_list`, `names`, `int_list`, `options`); `cli`
(False: no flag); `low` / `high` (the bounds of a number, inclusive unless `low_open` /
`high_open`). `check_values` checks a dataclass's values against their types and bounds: the
flags (cli/settings.py), YAML configs, presets and sweep cells all go through it, so one
definition states what a setting accepts.
"""

from __future__ import annotations

import math
from dataclasses import MISSING, Field, field, fields
from typing import Any

from inborn.errors import InbornError
from inborn.values import parse_real


def setting(default: Any = MISSING, help: str = "", *, factory: Any = MISSING, **meta: Any) -> Any:
    """A dataclass field that carries its help text (and flag details) in its metadata."""
    if factory is not MISSING:
        return field(default_factory=factory, metadata={"help": help, **meta})
    return field(default=default, metadata={"help": help, **meta})


def setting_names(cls: type) -> list[str]:
    return [f.name for f in fields(cls)]


def check_keys(cls: type, d: dict[str, Any], what: str) -> None:
    """A one-line error naming the unknown keys of a config mapping."""
    unknown = sorted(set(d) - set(setting_names(cls)))
    if unknown:
        raise InbornError(f"unknown {what} keys: {', '.join(map(str, unknown))}")


_KINDS = {"int": "a whole number", "float": "a number", "str": "a name", "bool": "true or false",
          "list": "a list", "dict": "a mapping"}


def annotation_base(f: Field) -> tuple[str, bool]:
    """(`int`, `float`, `str`, `bool`, `list`, `dict` or `` when unknown, whether None is allowed)."""
    text = str(f.type)
    parts = [p.strip() for p in text.split("|")]
    base = parts[0].split("[")[0]
    return (base if base in _KINDS else ""), "None" in parts


def check_value(f: Field, value: Any, what: str) -> None:
    """One setting's value against its type and the bounds in its metadata; a one-line error."""
    base, optional = annotation_base(f)
    if value is None:
        if optional or not base:
            return
        raise InbornError(f"{what} must be {_KINDS[base]}, got null")
    ok = {"int": isinstance(value, int) and not isinstance(value, bool),
          "float": isinstance(value, int | float) and not isinstance(value, bool),
          "str": isinstance(value, str), "bool": isinstance(value, bool), "list": isinstance(value, list | tuple),
          "dict": isinstance(value, dict)}.get(base, True)
    if not ok:
        raise InbornError(f"{what} must be {_KINDS[base]}, got {value!r}")
    if base in ("int", "float"):  # finite, within the metadata's bounds: the flags' own check
        parse_real(value, what, low=f.metadata.get("low"), high=f.metadata.get("high"),
                   low_open=f.metadata.get("low_open", False), high_open=f.metadata.get("high_open", False))
    if base == "list" and f.metadata.get("parse") in ("eps_list", "int_list"):
        for v in value:
            if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v) or v < 0:
                raise InbornError(f"{what} must hold finite numbers >= 0, got {v!r}")


def check_values(obj: Any, what: str = "") -> None:
    """Every field of the dataclass instance `obj` against its type and bounds."""
    for f in fields(obj):
        check_value(f, getattr(obj, f.name), f"{what}{f.name}")
