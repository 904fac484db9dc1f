"""`inborn train`: natural or adversarial training of any zoo model into a run directory."""

from __future__ import annotations

import argparse
from typing import Any

from inborn.cli.common import parse_int_list, parse_options
from inborn.io import read_yaml_mapping
from inborn.values import parse_eps

# CLI flag -> TrainConfig field, for the flags that map one to one.
_FIELDS = {
    "data": "data", "data_dir": "data_dir", "arch": "arch", "width": "width", "epochs": "epochs",
    "batch_size": "batch_size", "lr": "lr", "momentum": "momentum", "weight_decay": "weight_decay",
    "schedule": "schedule", "grad_clip": "grad_clip", "adv": "adv", "adv_steps": "adv_steps",
    "free_replays": "free_replays", "adv_mode": "adv_mode", "eps_warmup": "eps_warmup_epochs",
    "val_fraction": "val_fraction", "seed": "seed", "device": "device", "cutout": "cutout",
    "aux_weight": "aux_weight", "drop_path": "drop_path",
}


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train a model naturally or adversarially",
                       description="Train any zoo model on any data set, naturally or adversarially.")
    add_training_arguments(p)
    p.set_defaults(func=cmd_train)


def add_training_arguments(p: argparse.ArgumentParser) -> None:
    """The flags shared by `train` and `search` (which trains scores instead of weights)."""
    p.add_argument("--out", required=True, help="run directory to create (or to continue with --resume)")
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its last complete epoch")
    p.add_argument("--config", help="YAML file of training settings; flags given here override it")
    p.add_argument("--data", help="data set name (see `inborn data`), default mnist5k")
    p.add_argument("--data-dir", help="directory holding the data set's files (local data sets)")
    p.add_argument("--arch", help="model name (see `inborn models`), default conv4")
    p.add_argument("--width", type=float, help="channel width multiplier, default 1.0")
    p.add_argument("--no-affine-bn", action="store_true", help="non-affine BatchNorm (no learnable scale/shift)")
    p.add_argument("--model-opt", action="append", metavar="KEY=VALUE",
                   help="a model option, e.g. init_channels=8 or layers=5 for DARTS networks (repeatable)")
    p.add_argument("--epochs", type=int)
    p.add_argument("--batch-size", type=int)
    p.add_argument("--lr", type=float)
    p.add_argument("--momentum", type=float)
    p.add_argument("--weight-decay", type=float)
    p.add_argument("--schedule", choices=["multistep", "piecewise", "cosine", "constant"])
    p.add_argument("--milestones", help="epochs at which multistep divides the lr by 10, e.g. 80,120")
    p.add_argument("--grad-clip", type=float)
    p.add_argument("--no-augment", action="store_true", help="no random crop / flip")
    p.add_argument("--cutout", type=int, help="cutout patch side in pixels (NAS recipe; 0: off)")
    p.add_argument("--aux-weight", type=float, help="auxiliary head loss weight (NAS recipe, e.g. 0.4; 0: no head)")
    p.add_argument("--drop-path", type=float, help="final drop-path probability, reached linearly (NAS recipe)")
    p.add_argument("--adv", help="adversarial training: none, pgd, fgsm, fgsm-rs, free (default none)")
    p.add_argument("--eps", help="ε in pixel units, e.g. 0.3 or 8/255 (default: the data set's usual ε)")
    p.add_argument("--adv-steps", type=int, help="PGD steps for --adv pgd (default 7)")
    p.add_argument("--adv-step-size", help="attack step in pixel units (default ε/4; 1.25ε for fgsm-rs)")
    p.add_argument("--free-replays", type=int, help="minibatch replays for --adv free (default 4)")
    p.add_argument("--adv-mode", choices=["train", "eval"], help="model mode while making training attacks")
    p.add_argument("--eps-warmup", type=float, help="epochs over which ε ramps up linearly from 0")
    p.add_argument("--val-fraction", type=float, help="share of train held out for model selection (0.1)")
    p.add_argument("--test-every-epoch", action="store_true",
                   help="also report the best test robust accuracy over epochs (the RST reference's "
                        "protocol, labelled as such; never used for selection)")
    p.add_argument("--seed", type=int)
    p.add_argument("--device", help="auto, cpu, cuda or cuda:N")
    p.add_argument("--db", help="results database (default runs/inborn.db or $INBORN_DB)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")


def resolve_config(args: argparse.Namespace, inherited: dict[str, Any] | None = None) -> Any:
    """Defaults, then the data set's recipe, then `inherited` settings (e.g. a ticket's data and
    model), then the YAML file, then the flags given."""
    from inborn.train import TrainConfig
    from inborn.train.recipes import recipe_defaults

    values: dict[str, Any] = dict(inherited or {})
    if args.config:
        values.update(read_yaml_mapping(args.config))
    for flag, field in _FIELDS.items():
        if getattr(args, flag) is not None:
            values[field] = getattr(args, flag)
    if args.eps is not None:
        values["eps"] = parse_eps(args.eps)
    if args.adv_step_size is not None:
        values["adv_step_size"] = parse_eps(args.adv_step_size)
    if args.milestones:
        values["milestones"] = parse_int_list(args.milestones)
    if args.no_affine_bn:
        values["affine_bn"] = False
    if args.model_opt:
        values["model_kwargs"] = {**values.get("model_kwargs", {}), **parse_options(args.model_opt)}
    if args.no_augment:
        values["augment"] = False
    if getattr(args, "test_every_epoch", False):
        values["test_every_epoch"] = True
    base = TrainConfig().to_dict()
    data, adv = values.get("data", base["data"]), values.get("adv", base["adv"])
    merged = {**base, **recipe_defaults(data, adv), **values}
    return TrainConfig.from_dict(merged).validate()


def cmd_train(args: argparse.Namespace) -> int:
    return run_training(args, resolve_config(args) if not args.resume else None)


def run_training(args: argparse.Namespace, cfg: Any) -> int:
    """Train (or search) as `cfg` says, or resume the run in --out; print the test figures."""
    from inborn.data import dataset_entry
    from inborn.models.registry import model_entry
    from inborn.store import ResultsDB
    from inborn.train import train

    if args.resume:
        summary = train(None, args.out, resume=True, db=ResultsDB(args.db), progress=not args.quiet)  # type: ignore[arg-type]
    else:
        dataset_entry(cfg.data)  # fail fast on unknown names, before anything is written
        model_entry(cfg.arch)
        summary = train(cfg, args.out, db=ResultsDB(args.db), progress=not args.quiet)
    t = summary["test"]
    print(f"run: {args.out}")
    print(f"test ({t['n']} images): clean {t['clean_acc']:.4f} | {t['attack']} at ε={summary['eps']:.4g}: "
          f"{t['robust_acc']:.4f} | HRS {t['hrs']:.4f} | selected epoch {summary['best_epoch'] + 1} "
          f"on {summary['selected_on']}")
    if "reference_protocol" in summary:
        r = summary["reference_protocol"]
        print(f"reference protocol (selected on TEST, optimistic): {r['robust_acc']:.4f} at epoch {r['epoch'] + 1}")
    if "ticket" in summary:
        k = summary["ticket"]
        print(f"ticket: {k['kept']:,} of {k['maskable']:,} maskable weights kept ({k['kept'] / k['maskable']:.4f}), "
              f"pattern {k['pattern']}, init {k['init']}, weight seed {k['weight_seed']}")
    return 0
