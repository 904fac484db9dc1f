"""`inborn search`: a robust scratch ticket, a mask learned over frozen random weights."""

from __future__ import annotations

import argparse

from inborn.cli.settings import add_setting_flags
from inborn.cli.train import add_training_arguments, config_values, resolve_config, run_training
from inborn.errors import InbornError
from inborn.masks.config import SupermaskConfig
from inborn.train.config import TrainConfig


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("search", help="search a robust scratch ticket (a mask over frozen random weights)",
                       description="Learn only a mask, on adversarial examples, over frozen random weights "
                                   "(or a trained run's weights with --from-run). --adv defaults to pgd.")
    add_search_arguments(p)
    p.set_defaults(func=cmd_search)


def add_search_arguments(p: argparse.ArgumentParser, keep_help: str | None = None) -> None:
    """The ticket's flags (SupermaskConfig's fields) and the training flags. `keep_help` (for
    `inborn family`, which takes several) makes --keep a text the command reads itself."""
    if keep_help is not None:
        p.add_argument("--keep", help=keep_help)
    add_setting_flags(p, SupermaskConfig, prefix="ticket.", skip=("keep_ratio",) if keep_help is not None else ())
    add_training_arguments(p, skip=() if keep_help is None else ("from_run",))


def search_config(args: argparse.Namespace) -> TrainConfig:
    """The training config of a search: the ticket's settings from the YAML and the flags given."""
    if (config_values(args).get("ticket") or {}).get("keep_ratio") is None:
        raise InbornError("--keep is required: the fraction of weights to keep, e.g. --keep 0.05 "
                          "(or ticket.keep_ratio in --config)")
    return resolve_config(args, imported_settings(config_values(args).get("from_run")), defaults={"adv": "pgd"})


# Settings a robust trained ticket on an imported model takes from it: its network is the import's.
_FROM_IMPORT = ("data", "data_dir", "arch", "eps", "val_fraction")


def imported_settings(from_run: str | None) -> dict:
    """The data and model of an imported run to search on (nothing for any other run)."""
    if not from_run:
        return {}
    from inborn.store.run_dir import RunDir

    run = RunDir(from_run)
    if not run.file(RunDir.CONFIG).is_file():
        return {}  # a missing run is reported where it is read, as for any from_run
    doc = run.read_config()
    if doc.get("kind") != "imported":
        return {}
    return {k: doc["config"][k] for k in _FROM_IMPORT if doc["config"].get(k) is not None}


def cmd_search(args: argparse.Namespace) -> int:
    return run_training(args, None if args.resume else search_config(args))
