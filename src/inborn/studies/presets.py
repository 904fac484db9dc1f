"""Study presets: readable YAML files that users can print, copy and edit.

A preset names its runner (`tickets`, `family`, `nas`, `tour` or `overparam`) and one section per
scale: `quick` (a CPU) and `paper` (the paper's settings; data from local files).

A study file is checked as strictly as the flags, whole, before anything is written: unknown keys
(the nearest known one suggested), every key's type and bounds, repeated values and values whose
run directories would collide, and every cell the study will run, with the rules between its
settings, the cells made later from finished tickets included. Each problem is one line naming the
file, the scale and the key.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from inborn.analysis.r2s_config import PROTOCOLS, R2SSettings
from inborn.errors import InbornError
from inborn.io import read_yaml_mapping
from inborn.settings import parsed_mapping, setting_names, settings_of, with_dotted
from inborn.studies.family import EVALUATE_ALIASES, study_settings
from inborn.studies.nas import check_study
from inborn.studies.nas_config import NasStudyConfig
from inborn.studies.overparam import width_preset
from inborn.studies.seeds import study_seeds
from inborn.studies.tickets import BASELINES, baseline_cells, finetune_cells, natural_cells, search_cells
from inborn.sweep.cells import check_kind, check_settings
from inborn.sweep.grid import safe_name
from inborn.train.config import WEIGHT_MODES, TrainConfig
from inborn.train.resolve import resolve_config
from inborn.values import nearest_hint

PRESET_DIR = Path(__file__).parent / "presets"

# Every key a study file may hold: what each runner reads (a new key is declared here, once).
# `study`, `runner` and `scales` sit at the top of the file; the others at the top (for every
# scale) or in a scale's section (which wins).
TOP_KEYS = ("study", "runner", "scales")
_TICKET_KEYS = ("title", "base", "vary", "values", "baselines", "finetune", "paper", "order")
STUDY_KEYS: dict[str, tuple[str, ...]] = {
    "tickets": (*_TICKET_KEYS, "seeds"),
    "family": ("title", "base", "vary", "values", "baselines", "paper", "evaluate", "protocols"),
    "nas": ("title", "settings"),
    "tour": (*_TICKET_KEYS, "evaluate", "protocols"),  # a ticket study, then a family of its tickets
    "overparam": (*_TICKET_KEYS, "seeds", "widths", "widen"),
}
REQUIRED: dict[str, tuple[str, ...]] = {
    "tickets": ("base", "vary", "values"), "family": ("base", "vary", "values"), "nas": (),
    "tour": ("base", "vary", "values"), "overparam": ("base", "vary", "values", "widths"),
}
RUNNERS = tuple(STUDY_KEYS)
# The runners that choose the best ticket on validation robust accuracy (tickets.select_best).
SELECTING_RUNNERS = ("tickets", "tour", "overparam")
# The baselines the family runner runs beside its tickets (prepare_family: dense PGD-AT only).
FAMILY_BASELINES = ("dense-at",)


def preset_names() -> list[str]:
    return sorted(p.stem for p in PRESET_DIR.glob("*.yaml"))


def _is_file(name: str) -> bool:
    return Path(name).suffix in (".yaml", ".yml")


def preset_path(name: str) -> Path:
    """A preset by name, or a YAML file of the user's (a copied and edited preset)."""
    path = Path(name)
    if _is_file(name):
        if not path.is_file():
            raise InbornError(f"study file {name!r} does not exist")
        return path
    path = PRESET_DIR / f"{name}.yaml"
    if not path.is_file():
        raise InbornError(f"unknown study {name!r}; known: {', '.join(preset_names())}")
    return path


def _label(name: str) -> str:
    """The study file as errors name it: the user's path as given, or the built-in preset's name."""
    return name if _is_file(name) else f"preset {name!r}"


def _shown(value: Any) -> str:
    text = "null" if value is None else repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _check_keys(keys: Iterable[Any], runner: str, where: str, *, top: bool = False) -> None:
    """Every key known to the runner; else one line with the nearest known key (or the runners that read it)."""
    known = [*(TOP_KEYS if top else ()), *STUDY_KEYS[runner]]
    for key in keys:
        if key in known:
            continue
        if key in TOP_KEYS:
            raise InbornError(f"{key!r} {where} belongs at the top of the file, not in a scale")
        readers = [r for r, names in STUDY_KEYS.items() if key in names]
        if readers:
            verb = "apply" if str(key).endswith("s") else "applies"
            raise InbornError(f"{key} {verb} only to the {' and '.join(readers)} runner"
                              f"{'s' if len(readers) > 1 else ''}, not {runner!r} ({where})")
        raise InbornError(f"unknown key {key!r} {where}{nearest_hint(key, known)}")


def load_preset(name: str) -> dict[str, Any]:
    """The study file as written, its keys and the shape of its scales checked (their values are
    checked by `resolve_preset`, at the scale that runs)."""
    path = preset_path(name)
    label = _label(name)
    doc = read_yaml_mapping(path, "study file")
    runner = doc.get("runner")
    if runner not in RUNNERS:
        raise InbornError(f"{label} needs a runner, one of {', '.join(RUNNERS)}; got {_shown(runner)}")
    scales = doc.get("scales")
    if not isinstance(scales, dict) or not scales:
        raise InbornError(f"{label} needs `scales`: a mapping of scale names (quick, paper) to their settings, "
                          f"got {_shown(scales)}")
    _check_keys(doc, runner, f"in {label}", top=True)
    for scale, section in scales.items():
        if not isinstance(section, dict):
            raise InbornError(f"scale {scale!r} of {label} must be a mapping of settings, got {_shown(section)}")
        _check_keys(section, runner, f"in scale {scale!r} of {label}")
    study = doc.setdefault("study", path.stem)
    if not isinstance(study, str) or not study.strip():
        raise InbornError(f"'study' in {label} must be a name, got {_shown(study)}")
    return doc


# -- the value of each key ----------------------------------------------------------------------------
class _Bad(Exception):
    """What is wrong with a key's value, to follow the key's place in the message."""


def _text(value: Any) -> None:
    if not isinstance(value, str) or not value.strip():
        raise _Bad(f"must be text, got {_shown(value)}")


def _mapping(value: Any) -> None:
    if not isinstance(value, dict):
        raise _Bad(f"must be a mapping, got {_shown(value)}")


def _optional_mapping(value: Any) -> None:
    if value is not None:
        _mapping(value)


def _list(value: Any, what: str = "a list") -> list[Any]:
    if not isinstance(value, list) or not value:
        raise _Bad(f"must be {what}, got {_shown(value)}")
    return value


def _distinct(items: list[Any], dirname: Callable[[Any], str] = safe_name) -> None:
    """No value twice (equal values are one row: a run counted twice shows a false ± 0.000), and no
    two values that make the same run directory name (the second would reuse the first's run)."""
    seen: list[Any] = []
    names: dict[str, Any] = {}
    for item in items:
        twin = [s for s in seen if s == item]
        if twin:
            written = "" if repr(twin[0]) == repr(item) else f" (as {_shown(twin[0])} and {_shown(item)})"
            raise _Bad(f"repeats {_shown(twin[0])}{written}: the same run would count twice (a false ± 0.000)")
        name = dirname(item)
        if name in names:
            raise _Bad(f"holds {_shown(names[name])} and {_shown(item)}, which make the same run directory name "
                       f"{name!r}; write one differently")
        seen.append(item)
        names[name] = item


def _values(value: Any) -> None:
    _list(value, "a non-empty list (one ticket per value)")
    for v in value:  # each is a table row's key and a figure's tick
        if v is not None and not isinstance(v, str | int | float | bool):
            raise _Bad(f"must hold numbers, names or true/false, got {_shown(v)}")
    _distinct(value)


def _widths(value: Any) -> None:
    _list(value, "a non-empty list of widths")
    for w in value:
        if isinstance(w, bool) or not isinstance(w, int | float) or not math.isfinite(w) or w <= 0:
            raise _Bad(f"must hold numbers > 0, got {_shown(w)}")
    _distinct(value)


def _names(choices: tuple[str, ...]) -> Callable[[Any], None]:
    def check(value: Any) -> None:
        if not isinstance(value, list):
            raise _Bad(f"must be a list of {', '.join(choices)}, got {_shown(value)}")
        for v in value:
            if v not in choices:
                raise _Bad(f"names {_shown(v)}{nearest_hint(v, choices)}")
        _distinct(value)
    return check


def _order(value: Any) -> None:
    if not isinstance(value, list):
        raise _Bad(f"must be a list of values, got {_shown(value)}")
    _distinct(value)


def _protocols(value: Any) -> None:
    if value is not None:  # null: the family runner's transfer matrix; the tour's every protocol
        _names(PROTOCOLS)(value)


def _setting_key(value: Any) -> None:
    """A dotted key of a training setting (`lr`, `ticket.keep_ratio`, `model_kwargs.widen_factor`)."""
    _text(value)
    cls, parts = TrainConfig, value.split(".")
    for i, part in enumerate(parts):
        by_name = {s.name: s for s in settings_of(cls)}
        if part not in by_name:
            raise _Bad(f"names no training setting: {value!r}{nearest_hint(part, by_name)}")
        rest = len(parts) - i - 1
        if rest and by_name[part].kind != "dict":
            raise _Bad(f"names no training setting: {value!r} ({part!r} is not a mapping)")
        if rest and by_name[part].nested is None:  # an open mapping (model_kwargs.widen_factor): one key deep
            if rest > 1:
                raise _Bad(f"names no training setting: {value!r}")
            return
        cls = by_name[part].nested or cls


def _keys_of(cls: type, extra: tuple[str, ...] = ()) -> Callable[[Any], None]:
    """A mapping of `cls`'s settings: an unknown key names the nearest known one."""
    def check(value: Any) -> None:
        _mapping(value)
        known = [*setting_names(cls), *extra]
        for key in value:
            if key not in known:
                raise _Bad(f"has an unknown key {key!r}{nearest_hint(key, known)}")
    return check


def _evaluate(value: Any) -> None:
    if value is not None:
        _keys_of(R2SSettings, tuple(EVALUATE_ALIASES))(value)


def _no_check(value: Any) -> None:
    pass


# One check per key; the rules between keys and every cell's settings follow in _check_plan.
_CHECKS: dict[str, Callable[[Any], None]] = {
    "title": _text, "base": _keys_of(TrainConfig), "vary": _setting_key, "values": _values,
    "baselines": _names(BASELINES), "finetune": _names(WEIGHT_MODES), "paper": _optional_mapping,
    "order": _order, "seeds": _no_check,  # seeds: study_seeds, the runners' own reader
    "widths": _widths, "widen": _setting_key, "evaluate": _evaluate, "protocols": _protocols,
    "settings": _keys_of(NasStudyConfig),
}


@dataclass
class _Place:
    """Where a resolved key came from, for its errors: the scale's section, the top of the file, or an override."""

    label: str
    scale: str
    section: dict[str, Any]
    overridden: set[str] = field(default_factory=set)

    def of(self, key: str) -> str:
        if key in self.overridden:
            return f"{key!r} (overridden) for scale {self.scale!r} of {self.label}"
        if key in self.section:
            return f"{key!r} in scale {self.scale!r} of {self.label}"
        return f"{key!r} in {self.label} (scale {self.scale!r})"

    @property
    def study(self) -> str:
        return f"{self.label}, scale {self.scale!r}"


def resolve_preset(name: str, scale: str, *, data_dir: str | None = None, device: str = "auto",
                   overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """The preset's settings at one scale, with ε strings parsed and the data directory and device set.

    `overrides` maps dotted keys of the resolved preset (e.g. `base.epochs`) to new values. Every key
    and every cell the study will run is checked here (see the module's docstring), so a bad edit
    fails before any run starts or any file is written.
    """
    doc = load_preset(name)
    label, runner = _label(name), doc["runner"]
    if scale not in doc["scales"]:
        raise InbornError(f"{label} has no {scale!r} scale; it has {', '.join(map(str, doc['scales']))}")
    section = doc["scales"][scale]
    resolved = {k: copy.deepcopy(v) for k, v in doc.items() if k != "scales"}
    resolved.update(copy.deepcopy(section))
    place = _Place(label, scale, section, {key.split(".")[0] for key in overrides or {}})
    _check_keys(place.overridden, runner, f"overridden for {place.study}")
    for key, value in (overrides or {}).items():
        resolved = with_dotted(resolved, key, value)
    resolved["scale"] = scale
    for key in REQUIRED[runner]:
        if key not in resolved:
            raise InbornError(f"{place.study} needs {key!r}")
    for key in STUDY_KEYS[runner]:
        if key in resolved:
            try:
                _CHECKS[key](resolved[key])
            except _Bad as e:
                raise InbornError(f"{place.of(key)} {e}") from None
    if runner == "nas":
        study = resolved.setdefault("settings", {})
        if data_dir is not None:
            study["data_dir"] = data_dir
        resolved["settings"] = parsed_mapping(NasStudyConfig, study)
        _check_nas(resolved, place)
        return resolved
    resolved["base"] = base = parsed_mapping(TrainConfig, resolved["base"])
    base["device"] = device
    if data_dir is not None:
        base["data_dir"] = data_dir
    if "seeds" in resolved:
        try:
            study_seeds(resolved)
        except InbornError as e:
            raise InbornError(f"{place.of('seeds')}: {e}") from None
    _check_plan(resolved, place)
    return resolved


# -- the whole plan -----------------------------------------------------------------------------------
# The planned cells' run directories: compared, never made, and never an existing run (a fine-tuning
# cell's ticket must not be read from a directory that happens to exist where the check runs).
_NOWHERE = Path("/dev/null/inborn-plan")


def _failing(place: _Place, check: Callable[[], Any]) -> Any:
    """`check()`, its one-line error prefixed with the study file and scale."""
    try:
        return check()
    except InbornError as e:
        raise InbornError(f"{place.study}: {e}") from None


def _check_plan(preset: dict[str, Any], place: _Place) -> None:
    """The rules between the settings, then every cell the runner will make, as it makes them."""
    runner, vary = preset["runner"], preset["vary"]
    if runner == "family" and (extra := [b for b in preset.get("baselines", []) if b not in FAMILY_BASELINES]):
        raise InbornError(f"{place.of('baselines')} names {extra[0]!r}: the family runner runs only "
                          f"{', '.join(FAMILY_BASELINES)} beside its tickets")
    if preset.get("seeds") is not None and vary in ("seed", "ticket.weight_seed"):
        raise InbornError(f"{place.of('vary')} is {vary!r}, which `seeds` sets in every cell; drop one of them")
    if runner in ("family", "tour"):
        settings = _failing(place, lambda: study_settings(preset))
        if settings.probs is not None and len(settings.probs) != len(preset["values"]):
            raise InbornError(f"{place.of('evaluate')} gives {len(settings.probs)} switch probabilities for "
                              f"{len(preset['values'])} tickets (one per value)")
    if runner != "overparam":
        _check_cells(preset, place)
        return
    widen = preset.get("widen", "width")
    if widen == vary:
        raise InbornError(f"{place.of('widen')} is {widen!r}, the setting `vary` varies; widen another")
    for width in preset["widths"]:
        _check_cells(width_preset(preset, width), place)


def _check_cells(preset: dict[str, Any], place: _Place) -> None:
    """Every cell a ticket study runs, checked as a sweep's are, with no two in one directory; then
    the rules a ticket table needs: adversarial searches with a validation split to select on, and
    adversarial dense baselines."""
    runs = _NOWHERE
    tickets = search_cells(preset, runs)
    cells = [*tickets, *baseline_cells(preset, runs)]
    if preset["runner"] != "family":
        # Fine-tuning cells start from the tickets, which do not exist yet: their settings are
        # checked without the ticket's (check_settings). The size-matched and random-mask cells
        # are the dense base at another width and a fine-tuning cell with a random mask: the same checks.
        cells += [*natural_cells(preset, runs), *finetune_cells(preset, tickets, runs)]
    where: dict[Path, str] = {}
    for cell in cells:
        if cell.out in where:
            raise InbornError(f"{place.study}: cells {where[cell.out]!r} and {cell.name!r} would share the run "
                              f"directory {cell.out.name!r}")
        where[cell.out] = cell.name
        _failing(place, lambda cell=cell: (check_kind(cell.kind, cell.config, cell.name),
                                           check_settings(cell.config, cell.name)))
    if preset["runner"] in SELECTING_RUNNERS:
        for cell in tickets:
            cfg = _failing(place, lambda cell=cell: resolve_config(cell.config))
            if cfg.adv == "none":
                raise InbornError(f"{place.study}: cell {cell.name!r} searches with adv none, but the best ticket is "
                                  "chosen on validation robust accuracy, which natural training does not measure; "
                                  "search with pgd, fgsm, fgsm-rs or free")
            if cfg.val_fraction == 0:
                raise InbornError(f"{place.study}: cell {cell.name!r} has val_fraction 0: no validation split to "
                                  "choose the best ticket on")
    if {"dense-at", "size-matched"} & set(preset.get("baselines", [])):
        dense = {k: v for k, v in preset["base"].items() if k != "ticket"}
        if _failing(place, lambda: resolve_config(dense)).adv == "none":
            raise InbornError(f"{place.of('base')}: the dense-at and size-matched baselines are adversarial "
                              "training, but a dense run of `base` trains naturally; set base.adv (e.g. pgd)")


def _check_nas(preset: dict[str, Any], place: _Place) -> None:
    """What run_nas_study checks, here, before `inborn reproduce` writes its study.json."""
    cfg = _failing(place, lambda: NasStudyConfig.from_dict(preset["settings"]))
    _failing(place, lambda: check_study(cfg))


def print_config(name: str, scale: str | None = None) -> str:
    """The preset as YAML text (one scale, or the whole file)."""
    if scale is None:
        return preset_path(name).read_text()
    doc = load_preset(name)
    if scale not in doc["scales"]:
        raise InbornError(f"study {doc['study']!r} has no {scale!r} scale")
    return yaml.safe_dump({**{k: v for k, v in doc.items() if k != "scales"}, "scales": {scale: doc["scales"][scale]}},
                          sort_keys=False)
