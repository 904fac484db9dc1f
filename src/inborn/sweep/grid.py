"""Grid specs (`--grid key=v1,v2`), the sweep's base config, and their cartesian product.

Values are typed like YAML scalars (`0.1` float, `3` int, `true` bool, `pgd` str), plus the
forms YAML reads as strings but a sweep means as numbers: `1e-3` and `8/255`. A value may be
a YAML list or mapping (`milestones=[80,120],[100,150]`): commas split only outside brackets.
"""

from __future__ import annotations

import copy
import itertools
import re
from fractions import Fraction
from pathlib import Path
from typing import Any

import yaml

from inborn.errors import InbornError
from inborn.io import read_yaml_mapping
from inborn.settings import Setting, setting_at, setting_names, with_dotted
from inborn.train.config import TRAIN_KINDS, TrainConfig

ALIASES = {"keep": "ticket.keep_ratio"}
_SCI = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)[eE][-+]?\d+")
_FRACTION = re.compile(r"[-+]?\d+(\.\d+)?/\d+(\.\d+)?")


def parse_value(text: str) -> Any:
    text = text.strip()
    if not text:
        raise InbornError("empty grid value (write e.g. --grid lr=0.1,0.05)")
    if _SCI.fullmatch(text):
        return float(text)
    if _FRACTION.fullmatch(text):
        try:
            return float(Fraction(text))
        except ZeroDivisionError as e:
            raise InbornError(f"grid value {text!r} divides by zero") from e
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise InbornError(f"cannot read grid value {text!r} as YAML") from e


def split_values(text: str) -> list[str]:
    """Split on commas outside [] and {} so list and mapping values stay whole."""
    parts, depth, cur = [], 0, []
    for ch in text:
        if ch in "[{":
            depth += 1
        elif ch in "]}":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    parts.append("".join(cur))
    return parts


def canonical_key(key: str) -> str:
    """The config path a grid key sets (`keep` -> `ticket.keep_ratio`), checked against TrainConfig."""
    key = ALIASES.get(key, key)
    _grid_setting(key)
    return key


def _grid_setting(key: str) -> Setting | None:
    """The setting a grid key names (None inside an open mapping such as model_kwargs)."""
    head, _, sub = key.partition(".")
    if sub and head in setting_names(TrainConfig) and setting_at(TrainConfig, head).kind != "dict":
        raise InbornError(f"grid key {key!r}: {head!r} is not a mapping, so it takes no '.'")
    try:
        return setting_at(TrainConfig, key)
    except InbornError:
        raise InbornError(f"unknown grid key {key!r}; keys are TrainConfig fields (see docs/sweeps.md), dotted "
                          "keys into ticket, finetune and model_kwargs, or the alias 'keep'") from None


def typed_value(key: str, text: str) -> Any:
    """`text` typed for the config path `key`: a string field keeps the text as written, so that
    e.g. the pattern `2:4` is not read as YAML 1.1's sexagesimal 124."""
    value = parse_value(text)
    s = _grid_setting(key)
    if s is not None and s.kind == "str" and value is not None and not isinstance(value, str):
        return text.strip()
    return value


def check_type(key: str, value: Any) -> None:
    """A value of the wrong type for its setting is an error here, not in every run of the sweep."""
    s = _grid_setting(key)
    allowed = s.python_types if s is not None else ()
    if not allowed:
        return
    wrong_bool = isinstance(value, bool) and bool not in allowed
    if wrong_bool or not isinstance(value, allowed):
        raise InbornError(f"grid key {key!r} takes {s.kind}{' or null' if s.optional else ''}, got {value!r}")


def parse_grid(specs: list[str]) -> dict[str, list[Any]]:
    """`["lr=0.1,0.05", "keep=0.1"]` -> `{"lr": [0.1, 0.05], "keep": [0.1]}`, in the order given.
    Keys stay as written (they name the run directories); `grid_paths` maps them to config paths."""
    if not specs:
        raise InbornError("a sweep needs at least one --grid key=v1,v2")
    grid: dict[str, list[Any]] = {}
    seen: set[str] = set()
    for spec in specs:
        key, eq, text = spec.partition("=")
        key = key.strip()
        if not eq or not key:
            raise InbornError(f"--grid {spec!r} must read key=v1,v2")
        path = canonical_key(key)
        if path in seen:
            raise InbornError(f"grid key {key!r} is given twice")
        seen.add(path)
        values = [typed_value(path, v) for v in split_values(text)]
        for v in values:
            check_type(path, v)
        grid[key] = values
    return grid


def load_base(path: str | Path) -> tuple[str | None, dict[str, Any]]:
    """The base config: TrainConfig fields, and optionally `kind: train|search|finetune`."""
    path = Path(path)
    doc = read_yaml_mapping(path)
    kind = doc.pop("kind", None)
    if kind is not None and kind not in TRAIN_KINDS:
        raise InbornError(f"config file {str(path)!r}: kind must be one of {', '.join(TRAIN_KINDS)}, got {kind!r}")
    unknown = sorted(set(doc) - set(setting_names(TrainConfig)))
    if unknown:
        raise InbornError(f"config file {str(path)!r}: unknown keys {', '.join(map(str, unknown))}")
    return kind, doc


def expand(base: dict[str, Any], grid: dict[str, list[Any]]) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """The cartesian product: (grid values of the cell, its full config) for every cell, the
    first key varying slowest."""
    keys = list(grid)
    cells = []
    for combo in itertools.product(*(grid[k] for k in keys)):
        values = dict(zip(keys, combo, strict=True))
        config = copy.deepcopy(base)
        for key, value in values.items():
            config = with_dotted(config, canonical_key(key), value)
        cells.append((values, config))
    return cells


_UNSAFE = re.compile(r"[^A-Za-z0-9._+\-=]")


def value_text(value: Any) -> str:
    """A grid value as text: `0.1`, `true`, `[80, 120]`, `pgd`."""
    if isinstance(value, str):
        return value
    return yaml.safe_dump(value, default_flow_style=True).strip().removesuffix("\n...").strip()


def safe_name(value: Any) -> str:
    """A value as a filesystem-safe piece of a directory name (`random:0` -> `random_0`)."""
    return _UNSAFE.sub("_", value_text(value))


def cell_name(values: dict[str, Any]) -> str:
    """A directory name for a cell, `key=value,...` in grid order, filesystem-safe."""
    parts = [f"{key}={safe_name(value)}" for key, value in values.items()]
    name = ",".join(parts)
    return name if name not in ("", ".", "..") else "_"
