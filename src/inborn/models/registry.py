"""The model registry: every family registers its constructors by name (timm's habit).

A family may also register a parametrised name `prefix:PLACEHOLDER` (DARTS's `random:SEED`):
`model_entry("prefix:value")` asks the family's factory for the builder of that value.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn as nn

from inborn.errors import InbornError
from inborn.values import check_int, parse_real

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


def check_model_args(name: Any, *, num_classes: Any, in_channels: Any, width: Any, image_size: Any,
                     affine_bn: Any, mean: Any, std: Any) -> tuple[tuple[float, ...] | None, tuple[float, ...] | None]:
    """`create_model`'s arguments, checked as the CLI checks its flags (one-line InbornErrors naming
    them); returns mean and std as tuples (None where not given)."""
    if not isinstance(name, str):
        raise InbornError(f"model name must be text, got {name!r}; run `inborn models` to list them")
    check_int(num_classes, "num_classes", low=2)  # one class leaves nothing to classify
    check_int(in_channels, "in_channels", low=1)
    check_int(image_size, "image_size", low=1)
    _number(width, "width", low=0, low_open=True)
    if not isinstance(affine_bn, bool):
        raise InbornError(f"affine_bn must be True or False, got {affine_bn!r}")
    out = []
    for key, values, low_open in (("mean", mean, False), ("std", std, True)):
        if values is None:
            out.append(None)
            continue
        try:
            if isinstance(values, str):
                raise TypeError
            items = [float(v) if isinstance(v, torch.Tensor) else v for v in values]
        except (TypeError, ValueError, RuntimeError):
            raise InbornError(f"{key} must be {in_channels} numbers, one per input channel, got {values!r}") from None
        out.append(tuple(_number(v, key, **({"low": 0, "low_open": True} if low_open else {})) for v in items))
    return out[0], out[1]


def _number(value: Any, what: str, **bounds: Any) -> float:
    """A number handed to the API: text is the command line's to read (values.parse_real), not the API's."""
    if isinstance(value, str):
        raise InbornError(f"{what} must be a number, got {value!r}")
    return parse_real(value, what, **bounds)


def _channels(model: nn.Module) -> dict[str, int]:
    """Every layer's output channels (Conv2d, Linear, BatchNorm), by name."""
    counts = {}
    for name, m in model.named_modules():
        for attr in ("out_channels", "out_features", "num_features"):
            if isinstance(getattr(m, attr, None), int):
                counts[name] = getattr(m, attr)
                break
    return counts


def check_width(build: Callable[[float], nn.Module], body: nn.Module, width: float, name: str) -> None:
    """Refuse a width so small that a layer's channels round to 0 (the zoo then silently keeps 1
    channel: a network that is no longer the one named). `build(w)` builds the model at width w;
    the reference at width 1 is built on the meta device (no memory, no draws from the global RNG)."""
    channels = _channels(body)
    if width >= 1 or 1 not in channels.values():
        return  # no layer kept at the zoo's minimum of 1 channel: nothing was starved
    try:
        with torch.random.fork_rng(devices=[]), torch.device("meta"):
            full = _channels(build(1.0))
    except Exception:  # a model that cannot be built on the meta device: nothing to compare with
        return
    starved = [(layer, c) for layer, c in channels.items()
               if c == 1 and full.get(layer, 1) > 1 and round(full[layer] * width) < 1]
    if starved:
        layer, _ = starved[0]
        smallest = min(full[lay] for lay, _ in starved)
        # round(c · w) >= 1 needs c · w > 0.5 (Python rounds 0.5 to even, i.e. to 0).
        raise InbornError(f"width {width:g} leaves layer {layer!r} of {name} (and {len(starved) - 1} more) no "
                          f"channel ({full[layer]} × {width:g} rounds to 0): use width > {0.5 / smallest:.3g}")
