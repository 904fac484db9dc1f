"""`inborn search`: a robust scratch ticket, a mask learned over frozen random weights."""

from __future__ import annotations

import argparse
from typing import Any

from inborn.cli.train import add_training_arguments, resolve_config, run_training
from inborn.errors import InbornError


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("search", help="search a robust scratch ticket (a mask over frozen random weights)",
                       description="Learn only a mask, on adversarial examples, over frozen random weights "
                                   "(or a trained run's weights with --from-run). --adv defaults to pgd.")
    add_search_arguments(p, keep_help="keep ratio: the fraction of weights KEPT, in (0, 1]")
    p.add_argument("--from-run", help="search on this trained run's weights (a robust trained ticket)")
    p.set_defaults(func=cmd_search)


def add_search_arguments(p: argparse.ArgumentParser, keep_help: str) -> None:
    p.add_argument("--keep", help=keep_help)
    p.add_argument("--pattern", default="element", help="element, row, kernel, filter, or N:M such as 2:4")
    p.add_argument("--init", default="signed_constant",
                   help="frozen weights: signed_constant, kaiming_normal, kaiming_uniform, xavier_normal")
    p.add_argument("--scope", default="layer", choices=["layer", "global"], help="top-k per layer or over all")
    p.add_argument("--dense-first", action="store_true", help="keep the first layer dense (random, frozen)")
    p.add_argument("--dense-last", action="store_true", help="keep the last layer dense (random, frozen)")
    p.add_argument("--scale-fan", action="store_true", help="scale the init's fan by the keep ratio")
    p.add_argument("--weight-seed", type=int, default=0, help="seed of the frozen random weights")
    add_training_arguments(p)


def search_config(args: argparse.Namespace) -> Any:
    """The training config of a search: the flags, plus the ticket's own settings."""
    if args.keep is None:
        raise InbornError("--keep is required: the fraction of weights to keep, e.g. --keep 0.05")
    try:
        keep = float(args.keep)
    except ValueError as e:
        raise InbornError(f"--keep must be a number in (0, 1], got {args.keep!r}") from e
    if args.adv is None:
        args.adv = "pgd"
    cfg = resolve_config(args)
    cfg.ticket = {
        "keep_ratio": keep, "pattern": args.pattern, "init": args.init, "scope": args.scope,
        "dense_first": args.dense_first, "dense_last": args.dense_last, "scale_fan": args.scale_fan,
        "weight_seed": args.weight_seed,
    }
    cfg.from_run = getattr(args, "from_run", None)
    return cfg


def cmd_search(args: argparse.Namespace) -> int:
    return run_training(args, None if args.resume else search_config(args))
