"""`inborn search`: a robust scratch ticket, a mask learned over frozen random weights."""

from __future__ import annotations

import argparse

from inborn.cli.common import add_trust_flag
from inborn.cli.settings import add_setting_flags
from inborn.cli.train import add_training_arguments, resolve_config, run_training
from inborn.masks.config import SupermaskConfig
from inborn.train.config import TrainConfig


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("search", help="search a robust scratch ticket (a mask over frozen random weights)",
                       description="Learn only a mask, on adversarial examples, over frozen random weights "
                                   "(or a trained run's weights with --from-run). --adv defaults to pgd.")
    add_search_arguments(p)
    add_trust_flag(p)
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
    return resolve_config(args, needs=("ticket", "keep_ratio", "--keep is required: the fraction of weights to "
                                       "keep, e.g. --keep 0.05 (or ticket.keep_ratio in --config)"))


def cmd_search(args: argparse.Namespace) -> int:
    return run_training(args, None if args.resume else search_config(args))
