"""`inborn finetune TICKET`: PGD-AT on a ticket's structure, and the equal-size baselines."""

from __future__ import annotations

import argparse

from inborn.cli.common import add_trust_flag
from inborn.cli.settings import add_setting_flags
from inborn.cli.train import add_training_arguments, resolve_config, run_training
from inborn.train.config import FinetuneConfig, TrainConfig


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "finetune", help="adversarially train on a ticket's structure (inherit, reinit, dense, random mask)",
        description="PGD-AT with the ticket's mask fixed: from its own random weights (--weights inherit), "
                    "from fresh ones (reinit), or of the whole network from the masked weights (dense). "
                    "--mask random swaps the ticket's mask for a random one of the same size.")
    p.add_argument("finetune.ticket", nargs="?", metavar="TICKET",
                   help="a run directory made by inborn search (or finetune.ticket in --config)")
    add_setting_flags(p, FinetuneConfig, prefix="finetune.")
    add_training_arguments(p)
    add_trust_flag(p)
    p.set_defaults(func=cmd_finetune)


def cmd_finetune(args: argparse.Namespace) -> int:
    return run_training(args, None if args.resume else finetune_config(args))


def finetune_config(args: argparse.Namespace) -> TrainConfig:
    """The training config of a fine-tuning run: the ticket's data and model, then the YAML and flags."""
    return resolve_config(args, needs=("finetune", "ticket", "name the ticket: inborn finetune TICKET (or "
                                       "finetune.ticket in --config)"))
