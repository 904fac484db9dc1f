"""`inborn train`: natural or adversarial training of any zoo model into a run directory.

The flags are TrainConfig's fields (inborn.cli.settings). The settings resolve in the library
(`inborn.train.resolve`): defaults, the data set's recipe, an inherited run, the `--config` YAML,
then the flags given; this module only collects the last two.
"""

from __future__ import annotations

import argparse
from typing import Any

from inborn.cli.common import add_trust_flag, throwaway
from inborn.cli.settings import add_setting_flags, given_settings
from inborn.errors import InbornError
from inborn.io import read_yaml_mapping
from inborn.masks.config import SupermaskConfig
from inborn.train.config import FinetuneConfig, TrainConfig

# Mapping settings and the dataclass of their keys; flags of those keys land under "<setting>.<key>".
NESTED = {"ticket": SupermaskConfig, "finetune": FinetuneConfig}


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train a model naturally or adversarially",
                       description="Train any zoo model on any data set, naturally or adversarially.")
    add_training_arguments(p)
    add_trust_flag(p)
    p.set_defaults(func=cmd_train)


def add_training_arguments(p: argparse.ArgumentParser, *, skip: tuple[str, ...] = ("from_run",)) -> None:
    """The flags shared by `train`, `search` (which trains scores instead of weights) and `finetune`."""
    p.add_argument("--out", required=True, help="run directory to create (or to continue with --resume)")
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its last complete epoch")
    p.add_argument("--config", help="YAML file of training settings (TrainConfig fields); flags given here "
                                    "override it")
    add_setting_flags(p, TrainConfig, skip=skip)
    p.add_argument("--db", help="results database (default runs/inborn.db or $INBORN_DB)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")


def config_layers(args: argparse.Namespace) -> list[dict[str, Any]]:
    """The settings the user wrote, as the resolver's layers: the `--config` YAML (read once), then
    the flags given (a nested setting's under its name, e.g. the ticket's)."""
    flags = given_settings(args, TrainConfig)
    for key, cls in NESTED.items():
        given = given_settings(args, cls, prefix=f"{key}.")
        if given:
            flags[key] = given
    return [read_yaml_mapping(args.config) if args.config else {}, flags]


def resolve_config(args: argparse.Namespace, *, needs: tuple[str, str, str] | None = None) -> TrainConfig:
    """The run's TrainConfig: the library's resolver over the YAML, then the flags. `needs`:
    (mapping setting, its key, the error when the user gave none), e.g. a search's keep ratio."""
    from inborn.train.resolve import given_values
    from inborn.train.resolve import resolve_config as resolve

    layers = config_layers(args)
    if needs is not None and (given_values(*layers).get(needs[0]) or {}).get(needs[1]) in (None, ""):
        raise InbornError(needs[2])
    return resolve(*layers)


def cmd_train(args: argparse.Namespace) -> int:
    return run_training(args, resolve_config(args) if not args.resume else None)


def run_training(args: argparse.Namespace, cfg: TrainConfig | None) -> int:
    """Train (or search) as `cfg` says, or resume the run in --out; print the test figures."""
    from inborn.store import ResultsDB

    if args.resume and getattr(args, "smoke", None):  # a smoke run never touches --out, so it resumes nothing
        raise InbornError("--smoke runs in a throwaway directory and cannot --resume a run; drop one of them")
    from inborn.train import train

    if cfg is not None and cfg.smoke and getattr(args, "smoke", None):
        # `--smoke` typed: a throwaway directory. From a config (a study's cell) the run stays in --out.
        return _smoke(args, cfg)
    db = ResultsDB(args.db)
    db.check()  # a bad --db fails before the run directory exists
    if args.resume:
        summary = train(None, args.out, resume=True, db=db, progress=not args.quiet)
    else:
        assert cfg is not None
        _check_names(cfg)
        summary = train(cfg, args.out, db=db, progress=not args.quiet)
    t = summary.test
    print(f"run: {args.out}")
    print(f"test ({t.n} images): clean {t.clean_acc:.4f} | {t.robust_text(summary.eps)} | HRS {t.hrs:.4f} | "
          f"selected epoch {summary.best_epoch + 1} on {summary.selected_on}")
    if summary.reference_protocol is not None:
        r = summary.reference_protocol
        print(f"reference protocol (selected on TEST, optimistic): {r['robust_acc']:.4f} at epoch {r['epoch'] + 1}")
    if summary.ticket is not None:
        k = summary.ticket
        over = (f"over the {k['weights']} weights" if k.get("weights", "random") != "random"
                else f"init {k['init']}, weight seed {k['weight_seed']}")
        print(f"ticket: {k['kept']:,} of {k['maskable']:,} maskable weights kept ({k['kept'] / k['maskable']:.4f}), "
              f"pattern {k['pattern']}, {over}")
    return 0


def _check_names(cfg: TrainConfig) -> None:
    """Unknown data or model names fail fast, before anything is written."""
    from inborn.data import dataset_entry
    from inborn.models.registry import model_entry

    dataset_entry(cfg.data)
    if not (cfg.from_run and cfg.arch.startswith("imported:")):  # an imported network is its run's
        model_entry(cfg.arch)


def _smoke(args: argparse.Namespace, cfg: TrainConfig) -> int:
    """`--smoke`: the run in a throwaway directory (never --out), then the measured and projected times."""
    from pathlib import Path

    from inborn.store import ResultsDB
    from inborn.train import train
    from inborn.train.smoke import smoke_lines

    _check_names(cfg)
    if getattr(args, "throwaway", False):  # a caller's throwaway directory already (family --smoke)
        where, db = Path(args.out), ResultsDB(Path(args.out).parent / "inborn.db")
    else:
        where, smoke_db = throwaway("run")
        db = ResultsDB(smoke_db)
    summary = train(cfg, where, db=db, progress=not args.quiet)
    t = summary.test
    print(f"smoke run (throwaway): {where}")
    print(f"test ({t.n} images): clean {t.clean_acc:.4f} | {t.robust_text(summary.eps)} (a smoke run's figures "
          "mean nothing)")
    for line in smoke_lines(summary.smoke):
        print(line)
    return 0
