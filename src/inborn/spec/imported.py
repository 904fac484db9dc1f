"""A user's own PyTorch model as a model spec (`inborn import`): where its code comes from, and
how it is rebuilt from there, with its normalisation inside.

The spec of an imported model (config.yaml's `model`, the checkpoint's `inborn_model`):

    kind: imported
    arch: imported:FACTORY
    source: {file: /abs/path/model.py, sha256: ...}  or  {module: pkg.mod, version: 1.2.3}
    factory: FACTORY            the function or class that builds the network
    kwargs: {...}               its keyword arguments
    num_classes, in_channels, image_size, mean, std

Rebuilding runs the user's code again: only code this machine's user imported or consented to
(inborn.spec.trust), checked from the spec's fields before anything is imported; it is refused
when the file is not the one imported (its SHA-256 differs) or the package is at another version.
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
from inborn.spec.trust import Code, file_code, module_code, require_trust

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


def check_spec(spec: dict[str, Any]) -> None:
    """The fields an imported spec must have, of the types `inborn import` writes: checked before
    any of them is used, so that a hand-made config cannot smuggle in another kind of call."""
    source, factory, kwargs = spec.get("source"), spec.get("factory"), spec.get("kwargs", {})
    if not isinstance(factory, str) or not factory.isidentifier() or factory.startswith("__"):
        raise InbornError(f"an imported model's factory must be a Python name, got {factory!r}")
    if not isinstance(kwargs, dict) or not all(isinstance(k, str) and k.isidentifier() for k in kwargs):
        raise InbornError(f"an imported model's kwargs must map names to values, got {kwargs!r}")
    if not isinstance(source, dict) or ("file" in source) == ("module" in source):
        raise InbornError(f"an imported model's source must be {{file, sha256}} or {{module, version}}, got {source!r}")
    if "file" in source:
        digest = source.get("sha256")
        if not isinstance(source["file"], str) or not Path(source["file"]).is_absolute():
            raise InbornError(f"an imported model's file must be an absolute path, got {source['file']!r}")
        if not isinstance(digest, str) or len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
            raise InbornError(f"an imported model's sha256 must be 64 hex digits, got {digest!r}")
    else:
        module, version = source["module"], source.get("version")
        if not isinstance(module, str) or not all(part.isidentifier() for part in module.split(".")):
            raise InbornError(f"an imported model's module must be a dotted name, got {module!r}")
        if version is not None and not isinstance(version, str):
            raise InbornError(f"an imported model's version must be text, got {version!r}")
    for key in ("mean", "std"):
        if not isinstance(spec.get(key), list) or not all(isinstance(v, (int, float)) for v in spec[key]):
            raise InbornError(f"an imported model's {key} must be a list of numbers, got {spec.get(key)!r}")


def locate_code(source: dict[str, Any], factory: str) -> Code:
    """The code the spec names, read and hashed, nothing imported: the file must be the one imported."""
    if "file" in source:
        code = file_code(Path(source["file"]), factory)
        if code.sha256 != source["sha256"]:
            raise InbornError(f"the imported model's file {code.where!r} has changed since it was imported "
                              f"(sha256 {code.sha256[:12]}, recorded {str(source['sha256'])[:12]}); import it again")
        return code
    return module_code(source["module"], factory)


def load_factory(source: dict[str, Any], factory: str) -> Callable[..., Any]:
    """The factory named in the spec, from the very code that was imported, once that code is
    trusted (see inborn.spec.trust): nothing is imported before."""
    code = locate_code(source, factory)
    require_trust(code)
    if "file" in source:
        name = f"inborn_imported_{code.sha256[:16]}"
        module = sys.modules.get(name)
        if module is None:
            spec = importlib.util.spec_from_file_location(name, code.path)
            if spec is None:
                raise InbornError(f"cannot import {code.where!r} as Python code")
            module = importlib.util.module_from_spec(spec)
            sys.modules[name] = module  # as `import` does: dataclasses and pickle look the module up
            try:
                # The bytes that were hashed, not the file read again (it may change in between).
                exec(compile(code.data, str(code.path), "exec", dont_inherit=True), module.__dict__)
            except BaseException as e:
                del sys.modules[name]  # no half-run module left for the next load
                if isinstance(e, (Exception, SystemExit)):  # the user's error or exit, in one line
                    raise InbornError(f"importing {code.where!r} failed: {_told(e)}") from e
                raise  # KeyboardInterrupt: the user stops the command
    else:
        try:
            module = importlib.import_module(code.where)
        except (Exception, SystemExit) as e:
            raise InbornError(f"cannot import module {code.where!r}: {_told(e)}") from e
        loaded = getattr(module, "__file__", None)
        if loaded is None or Path(loaded).resolve() != code.path:  # imported from elsewhere than hashed
            raise InbornError(f"module {code.where!r} was imported from {loaded!r}, not {str(code.path)!r}")
        version = _package_version(code.where)
        if source.get("version") is not None and version != source["version"]:
            raise InbornError(f"module {code.where!r} is at version {version}, but version {source['version']} "
                              "was imported; import it again")
    fn = getattr(module, factory, None)
    if fn is None or not callable(fn):
        raise InbornError(f"{code.where!r} has no callable {factory!r}")
    return fn


def _told(e: BaseException) -> str:
    """An error of the user's code in one line; sys.exit() there is an error too, not inborn's exit."""
    if isinstance(e, SystemExit):
        return f"it called sys.exit({e.code!r}), and a model's code must not exit"
    return one_line(e)


def build_imported(spec: dict[str, Any]) -> Classifier:
    """The imported network (its weights as the factory makes them), normalisation first."""
    check_spec(spec)
    fn = load_factory(spec["source"], spec["factory"])
    try:
        body = fn(**spec.get("kwargs", {}))
    except SystemExit as e:  # KeyboardInterrupt still ends the command
        raise InbornError(f"model factory {spec['factory']!r} failed: {_told(e)}") from e
    except Exception as e:
        raise InbornError(f"model factory {spec['factory']!r} raised {one_line(e)}") from e
    if not isinstance(body, nn.Module):
        raise InbornError(f"model factory {spec['factory']!r} returned a {type(body).__name__}, not a torch "
                          "nn.Module")
    return Classifier(body, spec["mean"], spec["std"])
