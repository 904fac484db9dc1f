"""A user's own PyTorch model as a model spec (`inborn import`): where its code comes from, and
how it is rebuilt from there, with its normalisation inside.

The spec of an imported model (config.yaml's `model`, the checkpoint's `inborn_model`):

    kind: imported
    arch: imported:FACTORY
    source: {file: /abs/path/model.py, sha256: ...}  or  {module: pkg.mod, version: 1.2.3}
    factory: FACTORY            the function or class that builds the network
    kwargs: {...}               its keyword arguments
    num_classes, in_channels, image_size, mean, std

Rebuilding runs the user's code again; it is refused when the file is not the one imported
(its SHA-256 differs) or the package is at another version.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.metadata
import importlib.util
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch.nn as nn

from inborn.errors import InbornError, one_line
from inborn.models.layers import Classifier

KIND = "imported"


def is_imported(spec: dict[str, Any]) -> bool:
    return spec.get("kind") == KIND


def file_sha256(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def parse_model_ref(ref: str) -> tuple[dict[str, Any], str]:
    """`FILE.py:FACTORY` or `package.module:FACTORY` as (source, factory name); nothing imported yet."""
    where, sep, factory = ref.rpartition(":")
    if not sep or not where or not factory.isidentifier():
        raise InbornError(f"--model must be FILE.py:FACTORY or package.module:FACTORY, got {ref!r}")
    if where.endswith(".py") or "/" in where or Path(where).is_file():
        path = Path(where).expanduser().resolve()
        if not path.is_file():
            raise InbornError(f"model file {where!r} does not exist")
        return {"file": str(path), "sha256": file_sha256(path)}, factory
    if not all(part.isidentifier() for part in where.split(".")):
        raise InbornError(f"{where!r} is neither a .py file nor a module name")
    return {"module": where, "version": _package_version(where)}, factory


def _package_version(module: str) -> str | None:
    top = module.split(".")[0]
    try:
        return importlib.metadata.version(top)
    except importlib.metadata.PackageNotFoundError:
        packages = importlib.metadata.packages_distributions().get(top) or []
        for dist in packages:
            try:
                return importlib.metadata.version(dist)
            except importlib.metadata.PackageNotFoundError:
                continue
        return None


def load_factory(source: dict[str, Any], factory: str) -> Callable[..., Any]:
    """The factory named in the spec, from the very code that was imported."""
    if "file" in source:
        path = Path(source["file"])
        if not path.is_file():
            raise InbornError(f"the imported model's file {str(path)!r} no longer exists")
        digest = file_sha256(path)
        if source.get("sha256") and digest != source["sha256"]:
            raise InbornError(f"the imported model's file {str(path)!r} has changed since it was imported "
                              f"(sha256 {digest[:12]}, recorded {str(source['sha256'])[:12]}); import it again")
        name = f"inborn_imported_{digest[:16]}"
        module = sys.modules.get(name)
        if module is None:
            spec = importlib.util.spec_from_file_location(name, path)
            if spec is None or spec.loader is None:
                raise InbornError(f"cannot import {str(path)!r} as Python code")
            module = importlib.util.module_from_spec(spec)
            try:
                spec.loader.exec_module(module)
            except Exception as e:  # the user's code: any error is theirs, told in one line
                raise InbornError(f"importing {str(path)!r} failed: {one_line(e)}") from e
            sys.modules[name] = module
        where = str(path)
    else:
        where = source["module"]
        try:
            module = importlib.import_module(where)
        except Exception as e:
            raise InbornError(f"cannot import module {where!r}: {one_line(e)}") from e
        version = _package_version(where)
        if source.get("version") is not None and version != source["version"]:
            raise InbornError(f"module {where!r} is at version {version}, but version {source['version']} was "
                              "imported; import it again")
    fn = getattr(module, factory, None)
    if fn is None or not callable(fn):
        raise InbornError(f"{where!r} has no callable {factory!r}")
    return fn


def build_imported(spec: dict[str, Any]) -> Classifier:
    """The imported network (its weights as the factory makes them), normalisation first."""
    fn = load_factory(spec["source"], spec["factory"])
    try:
        body = fn(**spec.get("kwargs", {}))
    except Exception as e:
        raise InbornError(f"model factory {spec['factory']!r} raised {one_line(e)}") from e
    if not isinstance(body, nn.Module):
        raise InbornError(f"model factory {spec['factory']!r} returned a {type(body).__name__}, not a torch "
                          "nn.Module")
    return Classifier(body, spec["mean"], spec["std"])
