"""`inborn finetune TICKET`: PGD-AT on a ticket's structure, and the equal-size baselines."""

from __future__ import annotations

import argparse

from inborn.cli.train import add_training_arguments, resolve_config, run_training

# Settings a fine-tuning run takes from its ticket unless a flag says otherwise.
_INHERITED = ("data", "data_dir", "arch", "width", "affine_bn", "model_kwargs", "eps", "val_fraction")


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "finetune", help="adversarially train on a ticket's structure (inherit, reinit, dense, random mask)",
        description="PGD-AT with the ticket's mask fixed: from its own random weights (--weights inherit), "
                    "from fresh ones (reinit), or of the whole network from the masked weights (dense). "
                    "--mask random swaps the ticket's mask for a random one of the same size.")
    p.add_argument("ticket", help="a run directory made by inborn search")
    p.add_argument("--weights", default="inherit", choices=["inherit", "reinit", "dense"])
    p.add_argument("--mask", default="ticket", choices=["ticket", "random"])
    add_training_arguments(p)
    p.set_defaults(func=cmd_finetune)


def cmd_finetune(args: argparse.Namespace) -> int:
    from inborn.train.finetune import ticket_run_config

    if args.resume:
        return run_training(args, None)
    ticket_cfg = ticket_run_config(args.ticket)["config"]
    if args.adv is None:
        args.adv = "pgd"
    cfg = resolve_config(args, {k: ticket_cfg[k] for k in _INHERITED if k in ticket_cfg})
    cfg.finetune = {"ticket": args.ticket, "weights": args.weights, "mask": args.mask}
    return run_training(args, cfg)
