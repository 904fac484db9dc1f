"""The model registry: every family registers its constructors by name (timm's habit)."""

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


_MODELS: dict[str, ModelEntry] = {}


def register_model(name: str, *, family: str, summary: str = "") -> Callable[[ModelFn], ModelFn]:
    def wrap(fn: ModelFn) -> ModelFn:
        if name in _MODELS:
            raise ValueError(f"model {name!r} registered twice")
        _MODELS[name] = ModelEntry(name, fn, family, summary)
        return fn

    return wrap


def model_names() -> list[str]:
    return sorted(_MODELS)


def model_entry(name: str) -> ModelEntry:
    if name not in _MODELS:
        raise InbornError(f"unknown model {name!r}; run `inborn models` to list them")
    return _MODELS[name]
