"""Study presets: readable YAML files that users can print, copy and edit.

A preset names its runner (`tickets`, `family` or `nas`) and one section per scale: `quick`
(mnist5k on a CPU) and `paper` (the paper's settings; data from local files).
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

from inborn.errors import InbornError
from inborn.io import read_yaml_mapping
from inborn.settings import parsed_mapping, with_dotted
from inborn.studies.nas_config import NasStudyConfig
from inborn.studies.seeds import study_seeds
from inborn.sweep.cells import check_settings
from inborn.train.config import TrainConfig

PRESET_DIR = Path(__file__).parent / "presets"
RUNNERS = ("tickets", "family", "nas", "tour", "overparam")
SEEDED_RUNNERS = ("tickets", "overparam")  # the runners that repeat their cells over `seeds`


def preset_names() -> list[str]:
    return sorted(p.stem for p in PRESET_DIR.glob("*.yaml"))


def preset_path(name: str) -> Path:
    """A preset by name, or a YAML file of the user's (a copied and edited preset)."""
    path = Path(name)
    if path.suffix in (".yaml", ".yml"):
        if not path.is_file():
            raise InbornError(f"study file {name!r} does not exist")
        return path
    path = PRESET_DIR / f"{name}.yaml"
    if not path.is_file():
        raise InbornError(f"unknown study {name!r}; known: {', '.join(preset_names())}")
    return path


def load_preset(name: str) -> dict[str, Any]:
    path = preset_path(name)
    doc = read_yaml_mapping(path, "study file")
    if doc.get("runner") not in RUNNERS or not isinstance(doc.get("scales"), dict):
        raise InbornError(f"study file {str(path)!r} needs a runner ({', '.join(RUNNERS)}) and scales")
    doc.setdefault("study", path.stem)
    return doc


def resolve_preset(name: str, scale: str, *, data_dir: str | None = None, device: str = "auto",
                   overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """The preset's settings at one scale, with ε strings parsed and the data directory and device set.

    `overrides` maps dotted keys of the resolved preset (e.g. `base.epochs`) to new values. Every
    training config is validated, so a bad edit fails here, before any run starts.
    """
    doc = load_preset(name)
    if scale not in doc["scales"]:
        raise InbornError(f"study {doc['study']!r} has no {scale!r} scale; it has {', '.join(doc['scales'])}")
    resolved = {k: copy.deepcopy(v) for k, v in doc.items() if k != "scales"}
    resolved.update(copy.deepcopy(doc["scales"][scale]))
    resolved["scale"] = scale
    for key, value in (overrides or {}).items():
        resolved = with_dotted(resolved, key, value)
    if doc["runner"] == "nas":
        study = resolved.setdefault("settings", {})
        if data_dir is not None:
            study["data_dir"] = data_dir
        resolved["settings"] = study = parsed_mapping(NasStudyConfig, study)
        NasStudyConfig.from_dict(study)
        return resolved
    base = resolved.get("base")
    if not isinstance(base, dict) or not resolved.get("values"):
        raise InbornError(f"study {doc['study']!r} ({scale}) needs `base` settings and a list of `values`")
    resolved["base"] = base = parsed_mapping(TrainConfig, base)
    base["device"] = device
    if data_dir is not None:
        base["data_dir"] = data_dir
    if "seeds" in resolved:
        if doc["runner"] not in SEEDED_RUNNERS:
            raise InbornError(f"study {doc['study']!r}: seeds apply to the {' and '.join(SEEDED_RUNNERS)} runners, "
                              f"not {doc['runner']!r}")
        study_seeds(resolved)
    sizes = [None]
    if doc["runner"] == "overparam":
        if not isinstance(resolved.get("widths"), list) or not resolved["widths"]:
            raise InbornError(f"study {doc['study']!r} ({scale}) needs a list of `widths`")
        sizes = resolved["widths"]
    for size in sizes:
        sized = base if size is None else with_dotted(base, resolved.get("widen", "width"), size)
        for value in resolved["values"]:
            config = with_dotted(sized, resolved["vary"], value)
            check_settings(config, f"{doc['study']} {resolved['vary']}={value}")
    return resolved


def print_config(name: str, scale: str | None = None) -> str:
    """The preset as YAML text (one scale, or the whole file)."""
    if scale is None:
        return preset_path(name).read_text()
    doc = load_preset(name)
    if scale not in doc["scales"]:
        raise InbornError(f"study {doc['study']!r} has no {scale!r} scale")
    return yaml.safe_dump({**{k: v for k, v in doc.items() if k != "scales"}, "scales": {scale: doc["scales"][scale]}},
                          sort_keys=False)
