"""One resolver for a run's settings, used by the command line, sweep cells, presets, the studies
and Python callers alike, so that the same settings make the same run wherever they come from.

Order, later wins:
    1. the defaults (TrainConfig's fields);
    2. the data set's recipe (batch size, lr, schedule, ε warm-up: `train/recipes.py`) and the
       kind's adversarial default (pgd for search and finetune, none for train);
    3. an inherited run: a fine-tuned ticket's data and network, or an imported network searched
       on with `from_run`;
    4. the layers given, in order (e.g. a YAML file, then explicit values): a mapping sets the
       keys it holds, a TrainConfig the fields that differ from the defaults; a mapping setting
       (ticket, finetune, model_kwargs) merges key by key.
ε and ratios written as text (`8/255`, `3/7`) are parsed here, and the result is validated.
The data set's default ε is the one thing left: it needs the data, and `train` fills it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from inborn.errors import InbornError
from inborn.settings import check_keys, to_mapping
from inborn.store import RunDir
from inborn.train.config import TrainConfig
from inborn.train.recipes import recipe_defaults

Layer = TrainConfig | Mapping[str, Any] | None

# Settings a fine-tuning run takes from its ticket unless a layer says otherwise.
FINETUNE_INHERITS = ("data", "data_dir", "arch", "width", "affine_bn", "model_kwargs", "eps", "val_fraction")
# Of those, the ones the ticket fixes: its network and the data it was found on.
FINETUNE_FIXES = ("data", "arch", "width", "affine_bn", "model_kwargs")
# Settings a robust trained ticket on an imported model takes from it: its network is the import's.
IMPORT_INHERITS = ("data", "data_dir", "arch", "eps", "val_fraction")
_MERGED = ("ticket", "finetune", "model_kwargs")  # mapping settings merged key by key


def given_values(*layers: Layer) -> dict[str, Any]:
    """The settings the layers set, merged in order (see the module's docstring)."""
    defaults = TrainConfig().to_dict()
    merged: dict[str, Any] = {}
    for layer in layers:
        if layer is None:
            continue
        if isinstance(layer, TrainConfig):
            values = {k: v for k, v in layer.to_dict().items() if v != defaults[k]}
        else:
            if not isinstance(layer, Mapping):
                raise InbornError(f"a training config must be a mapping of settings, got {type(layer).__name__}")
            values = {k: to_mapping(v) if dataclasses.is_dataclass(v) else v for k, v in layer.items()}
            check_keys(TrainConfig, values, "training config")
        for key, value in values.items():
            if key in _MERGED and isinstance(value, dict) and isinstance(merged.get(key), dict):
                merged[key] = {**merged[key], **value}
            else:
                merged[key] = value
    return merged


def inherited_values(given: Mapping[str, Any]) -> dict[str, Any]:
    """What the run inherits: a fine-tuning run its ticket's data and network (a given value that
    contradicts the ticket's network is refused: it would be recorded falsely), a search with
    `from_run` on an imported network that network and its data."""
    finetune = given.get("finetune")
    if isinstance(finetune, Mapping) and finetune.get("ticket"):
        ticket = ticket_run_config(str(finetune["ticket"]))["config"]
        inherited = {k: ticket[k] for k in FINETUNE_INHERITS if k in ticket}
        for key in FINETUNE_FIXES:
            if key in given and key in inherited and given[key] != inherited[key]:
                flag = "--" + key.replace("_", "-")
                raise InbornError(f"the ticket {finetune['ticket']!r} fixes {key} ({inherited[key]!r}); a fine-tuning "
                                  f"run trains the ticket's own network, so drop {flag} (got {given[key]!r})")
        return inherited
    from_run = given.get("from_run")
    if from_run and given.get("ticket") is not None:
        run = RunDir(from_run)
        if not run.file(RunDir.CONFIG).is_file():
            return {}  # a missing run is reported where it is read, as for any from_run
        doc = run.read_config()
        if doc.get("kind") == "imported":
            return {k: doc["config"][k] for k in IMPORT_INHERITS if doc["config"].get(k) is not None}
    return {}


def ticket_run_config(path: str) -> dict[str, Any]:
    """The config.yaml of a ticket (a search run); anything else is a one-line error."""
    doc = RunDir(path).read_config()
    if "supermask" not in doc["model"] or doc.get("kind") != "search":
        what = f"a {doc.get('kind')} run" if doc.get("kind") else "no ticket"
        raise InbornError(f"{path!r} is {what}, not a ticket (made by inborn search); fine-tune one of its tickets")
    return doc


def resolve_config(*layers: Layer) -> TrainConfig:
    """The run's TrainConfig from the layers given, in order (see the module's docstring)."""
    given = given_values(*layers)
    cfg = TrainConfig.from_dict({**inherited_values(given), **given})
    adv = cfg.adv if cfg.adv is not None else ("none" if cfg.kind == "train" else "pgd")
    recipe = recipe_defaults(cfg.data, adv)
    filled = {k: v for k, v in recipe.items() if getattr(cfg, k) is None}
    return dataclasses.replace(cfg, adv=adv, **filled).validate()
