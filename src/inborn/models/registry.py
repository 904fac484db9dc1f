"""The model registry: every family registers its constructors by name (timm's habit).

A family may also register a parametrised name `prefix:PLACEHOLDER` (DARTS's `random:SEED`):
`model_entry("prefix:value")` asks the family's factory for the builder of that value.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch.nn as nn

from inborn.errors import InbornError

ModelFn = Callable[..., nn.Module]


@dataclass(frozen=True)
class ModelEntry:
    name: str
    fn: ModelFn
    family: str
    summary: str


@dataclass(frozen=True)
class ModelPattern:
    prefix: str
    placeholder: str
    factory: Callable[[str], ModelFn]  # the suffix after "prefix:" -> builder; InbornError on a bad suffix
    family: str
    summary: str

    @property
    def name(self) -> str:
        return f"{self.prefix}:{self.placeholder}"


_MODELS: dict[str, ModelEntry] = {}
_PATTERNS: dict[str, ModelPattern] = {}


def register_model(name: str, *, family: str, summary: str = "") -> Callable[[ModelFn], ModelFn]:
    def wrap(fn: ModelFn) -> ModelFn:
        if name in _MODELS:
            raise ValueError(f"model {name!r} registered twice")
        _MODELS[name] = ModelEntry(name, fn, family, summary)
        return fn

    return wrap


def register_model_pattern(
    prefix: str, placeholder: str, *, family: str, summary: str = ""
) -> Callable[[Callable[[str], ModelFn]], Callable[[str], ModelFn]]:
    def wrap(factory: Callable[[str], ModelFn]) -> Callable[[str], ModelFn]:
        if prefix in _PATTERNS or ":" in prefix:
            raise ValueError(f"model pattern {prefix!r} registered twice or contains ':'")
        _PATTERNS[prefix] = ModelPattern(prefix, placeholder, factory, family, summary)
        return factory

    return wrap


def model_names(*, patterns: bool = False) -> list[str]:
    """The buildable names; `patterns=True` adds the parametrised ones as `prefix:PLACEHOLDER`."""
    return sorted(_MODELS) + ([p.name for p in model_patterns()] if patterns else [])


def model_patterns() -> list[ModelPattern]:
    return [_PATTERNS[p] for p in sorted(_PATTERNS)]


def model_entry(name: str) -> ModelEntry:
    if name in _MODELS:
        return _MODELS[name]
    prefix, sep, suffix = name.partition(":")
    if sep and prefix in _PATTERNS:
        pattern = _PATTERNS[prefix]
        return ModelEntry(name, pattern.factory(suffix), pattern.family, pattern.summary)
    raise InbornError(f"unknown model {name!r}; run `inborn models` to list them")
