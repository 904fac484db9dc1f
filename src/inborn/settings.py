"""One definition per setting: a field of a dataclass, with its help text in the field's metadata.

The command line builds its flags from these fields (inborn.cli.settings), YAML configs and sweep
grids name them, presets fill them; none of them rewrites a setting by hand.

Metadata keys: `help`; `flag` (the flag's name when not `--field-name`); `choices`; `parse` (how
the flag's text becomes a value: `eps`, `eps_list`, `names`, `int_list`, `options`); `cli`
(False: no flag).
"""

from __future__ import annotations

from dataclasses import MISSING, field, fields
from typing import Any

from inborn.errors import InbornError


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
