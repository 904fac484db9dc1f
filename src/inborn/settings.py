"""One definition per setting: a field of a dataclass, with its help text in the field's metadata.

This module is the only reader of that metadata. The command line builds its flags from
`settings_of(cls)` (inborn.cli.settings), sweep grids type their values with `setting_at`, YAML
configs and presets go through `coerce` and `check_values`; none of them rewrites a setting by hand.

Metadata keys: `help`; `flag` (the flag's name when not `--field-name`); `choices` (the values a
setting takes, checked with its type); `parse` (how
text becomes a value: `eps`, `eps_list`, `names`, `int_list`, `options`, `ratio`); `cli` (False: no
flag); `nested` (the settings dataclass of a mapping setting, e.g. a ticket's); `low` / `high` (the
bounds of a number, inclusive unless `low_open` / `high_open`).
"""

from __future__ import annotations

import copy
import dataclasses
import math
from collections.abc import Callable
from dataclasses import MISSING, Field, dataclass, field, fields
from typing import Any

from inborn.errors import InbornError
from inborn.values import (
    nearest_hint,
    parse_eps,
    parse_eps_list,
    parse_int_list,
    parse_names,
    parse_options,
    parse_ratio,
    parse_real,
    parse_real_list,
)

_KINDS = {"int": "a whole number", "float": "a number", "str": "a name", "bool": "true or false",
          "list": "a list", "dict": "a mapping"}
_PY_TYPES: dict[str, tuple[type, ...]] = {"int": (int,), "float": (int, float), "bool": (bool,), "str": (str,),
                                          "dict": (dict,), "list": (list, tuple)}
# Flag text to value, by the field's `parse` metadata.
_TEXT_PARSERS: dict[str, Callable[[Any], Any]] = {
    "eps": parse_eps, "eps_list": parse_eps_list, "names": parse_names, "int_list": parse_int_list,
    "options": parse_options, "ratio": parse_ratio,
}


def setting(default: Any = MISSING, help: str = "", *, factory: Any = MISSING, **meta: Any) -> Any:
    """A dataclass field that carries its help text (and flag details) in its metadata."""
    if factory is not MISSING:
        return field(default_factory=factory, metadata={"help": help, **meta})
    return field(default=default, metadata={"help": help, **meta})


@dataclass(frozen=True)
class Setting:
    """One field of a settings dataclass, as flags, YAML, sweep grids and presets see it."""

    name: str
    kind: str  # int, float, str, bool, list, dict, or "" (a type this module does not check)
    optional: bool  # None allowed
    default: Any
    help: str
    flag: str
    choices: tuple[str, ...] | None
    parse: str | None
    cli: bool
    nested: type | None  # the settings dataclass of a mapping setting
    bounds: dict[str, Any]

    @property
    def python_types(self) -> tuple[type, ...]:
        """The Python types a value may have (empty: not checked)."""
        if not self.kind:
            return ()
        return _PY_TYPES[self.kind] + ((type(None),) if self.optional else ())

    def from_text(self, text: Any) -> Any:
        """A flag's text as a value (ε as `8/255`, lists, KEY=VALUE options, numbers), checked."""
        if self.parse == "real_list":  # its bounds name the flag in the error
            value = parse_real_list(text, self.flag, **self.bounds)
        else:
            parser = _TEXT_PARSERS.get(self.parse or "")
            value = parser(text) if parser is not None else text
        self.check(value, self.flag)
        return value

    def coerce(self, value: Any) -> Any:
        """A value as written in YAML or Python, in its typed form: an ε or a ratio written as a
        fraction (`8/255`, `3/7`) becomes a number, a mapping of a nested setting its dataclass."""
        if self.nested is not None and isinstance(value, dict):
            return self.nested.from_dict(value)
        return self.parse_written(value)

    def parse_written(self, value: Any) -> Any:
        """`coerce` for text only: numbers written as text parsed, mappings left as mappings."""
        if isinstance(value, str) and self.parse in ("eps", "ratio") and self.kind == "float":
            return _TEXT_PARSERS[self.parse](value)
        if isinstance(value, str) and self.parse == "eps_list":
            return parse_eps_list(value)
        if isinstance(value, list | tuple) and self.parse == "eps_list":
            return [parse_eps(v) if isinstance(v, str) else v for v in value]
        if self.nested is not None and isinstance(value, dict):
            return parsed_mapping(self.nested, value)
        return value

    def check(self, value: Any, what: str | None = None) -> None:
        """The value against the setting's type and bounds; a one-line error."""
        what = what or self.name
        if value is None:
            if self.optional or not self.kind:
                return
            raise InbornError(f"{what} must be {_KINDS[self.kind]}, got null")
        if self.nested is not None and isinstance(value, self.nested):
            check_values(value, f"{self.name}.")
            return
        ok = {"int": isinstance(value, int) and not isinstance(value, bool),
              "float": isinstance(value, int | float) and not isinstance(value, bool),
              "str": isinstance(value, str), "bool": isinstance(value, bool),
              "list": isinstance(value, list | tuple), "dict": isinstance(value, dict)}.get(self.kind, True)
        if not ok:
            raise InbornError(f"{what} must be {_KINDS[self.kind]}, got {value!r}")
        if self.choices is not None and value not in self.choices:
            raise InbornError(f"unknown {what} {value!r}; known: {', '.join(self.choices)}")
        if self.kind in ("int", "float"):  # finite, within the bounds: the flags' own check
            parse_real(value, what, **self.bounds)
        if self.kind == "list" and self.parse in ("eps_list", "int_list"):
            for v in value:
                if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v) or v < 0:
                    raise InbornError(f"{what} must hold finite numbers >= 0, got {v!r}")
        if self.kind == "list" and self.parse == "real_list":
            for v in value:
                if isinstance(v, bool):
                    raise InbornError(f"{what} must hold numbers, got {v!r}")
                parse_real(v, what, **self.bounds)


def _annotation(f: Field) -> tuple[str, bool]:
    """(`int`, `float`, `str`, `bool`, `list`, `dict` or `` when unknown, whether None is allowed)."""
    parts = [p.strip() for p in str(f.type).split("|")]
    base = parts[0].split("[")[0]
    return (base if base in _KINDS else ""), "None" in parts


def _setting(f: Field) -> Setting:
    kind, optional = _annotation(f)
    meta = f.metadata
    nested = meta.get("nested")
    if nested is not None:  # `SupermaskConfig | None`: a mapping of that dataclass's settings
        kind = "dict"
    default = f.default_factory() if f.default_factory is not MISSING else f.default
    flag = meta.get("flag") or ("--no-" if default is True else "--") + f.name.replace("_", "-")
    bounds = {k: meta[k] for k in ("low", "high", "low_open", "high_open") if k in meta}
    choices = tuple(meta["choices"]) if "choices" in meta else None
    return Setting(f.name, kind, optional, default, meta.get("help", ""), flag, choices, meta.get("parse"),
                   meta.get("cli", True) is not False, nested, bounds)


def settings_of(cls: Any) -> list[Setting]:
    """Every setting of a settings dataclass (or instance), in field order."""
    return [_setting(f) for f in fields(cls)]


def setting_names(cls: Any) -> list[str]:
    return [f.name for f in fields(cls)]


def setting_at(cls: type, key: str) -> Setting | None:
    """The setting a dotted key names (`lr`, `ticket.keep_ratio`); None for a key inside an open
    mapping (`model_kwargs.layers`). Unknown keys are a one-line error."""
    head, _, sub = key.partition(".")
    by_name = {s.name: s for s in settings_of(cls)}
    if head not in by_name:
        raise InbornError(f"unknown setting {key!r}")
    top = by_name[head]
    if not sub:
        return top
    if top.kind != "dict":
        raise InbornError(f"setting {key!r}: {head!r} is not a mapping, so it takes no '.'")
    if top.nested is None:
        if "." in sub:
            raise InbornError(f"unknown setting {key!r}")
        return None
    return setting_at(top.nested, sub)


def check_keys(cls: type, d: dict[str, Any], what: str) -> None:
    """A one-line error naming the unknown keys of a config mapping."""
    known = setting_names(cls)
    unknown = sorted(map(str, set(d) - set(known)))
    if unknown:
        raise InbornError(f"unknown {what} keys: {', '.join(unknown)}{nearest_hint(unknown[0], known)}")


def from_mapping(cls: type, d: Any, what: str) -> Any:
    """A settings dataclass from a mapping written in YAML or Python (`what` names it in errors, e.g.
    "ticket"): unknown keys and a missing required setting are one-line errors; ε and ratio
    strings are parsed, nested mappings become their dataclasses. Values are checked by `validate`."""
    if isinstance(d, cls):
        return d
    if not isinstance(d, dict):
        raise InbornError(f"{what} settings must be a mapping, got {type(d).__name__}")
    known = setting_names(cls)
    unknown = sorted(map(str, set(d) - set(known)))
    if unknown:
        raise InbornError(f"unknown {what} settings: {', '.join(unknown)}{nearest_hint(unknown[0], known)}")
    by_name = {s.name: s for s in settings_of(cls)}
    missing = [name for name, s in by_name.items() if s.default is MISSING and name not in d]
    if missing:
        raise InbornError(f"{what} settings need {', '.join(missing)}")
    return cls(**{k: by_name[k].coerce(v) for k, v in d.items()})


def parsed_mapping(cls: type, d: dict[str, Any]) -> dict[str, Any]:
    """A mapping of `cls`'s settings (a YAML preset's, a sweep's) with the numbers written as text
    (`8/255`, `3/7`) parsed, nested mappings too; still a mapping, unknown keys kept for the
    validation that follows to name."""
    by_name = {s.name: s for s in settings_of(cls)}
    return {k: by_name[k].parse_written(v) if k in by_name else v for k, v in d.items()}


def to_mapping(obj: Any) -> dict[str, Any]:
    """A settings dataclass as plain data (nested settings as mappings), as YAML files hold it."""
    return dataclasses.asdict(obj)


def check_values(obj: Any, what: str = "") -> None:
    """Every field of the dataclass instance `obj` against its type and bounds."""
    for s in settings_of(obj):
        s.check(getattr(obj, s.name), f"{what}{s.name}")


def with_dotted(config: dict[str, Any], key: str, value: Any) -> dict[str, Any]:
    """A copy of the mapping `config` with the dotted `key` (e.g. `ticket.keep_ratio`) set to `value`;
    the one dotted-key setter of sweeps, presets and overrides."""
    out = copy.deepcopy(config)
    *parents, leaf = key.split(".")
    node = out
    for part in parents:
        child = node.get(part)
        if child is None:
            child = node[part] = {}
        elif dataclasses.is_dataclass(child):
            child = node[part] = to_mapping(child)
        if not isinstance(child, dict):
            raise InbornError(f"cannot set {key!r}: {part!r} is not a mapping")
        node = child
    node[leaf] = value
    return out
