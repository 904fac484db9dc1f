"""Lazy package exports (PEP 562): a package names its public objects without importing the
modules that define them until first use, so that what needs only a light part of a package
(the command line's parsers need the config dataclasses) does not import torch."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any


def lazy_exports(
    package: dict[str, Any], exports: dict[str, str]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """`__getattr__` and `__dir__` for the package whose globals are `package`; `exports` maps a
    public name to the module defining it."""

    def __getattr__(name: str) -> Any:
        if name not in exports:
            raise AttributeError(f"module {package['__name__']!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(exports[name]), name)
        package[name] = value  # once imported, an ordinary attribute
        return value

    def __dir__() -> list[str]:
        return sorted({*package, *exports})

    return __getattr__, __dir__
