"""`inborn nas`: the architecture robustness study in one command."""

from __future__ import annotations

import argparse
from typing import Any

from inborn.cli.common import parse_options
from inborn.errors import InbornError
from inborn.values import parse_eps


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "nas", help="architecture robustness study: train, attack over an ε grid, ensemble, report",
        description="Train each architecture naturally (reusing complete runs), attack it with each attack over "
                    "an ε grid, ensemble the random DARTS architectures, and write one report directory.")
    p.add_argument("--out", required=True, help="study directory (re-running it reuses what is done)")
    p.add_argument("--data", default="mnist5k")
    p.add_argument("--data-dir")
    p.add_argument("--archs", default="resnet18,vgg16_bn,darts_v2,pdarts,random:0-2",
                   help="comma-separated models; random:A-B stands for random:A ... random:B")
    p.add_argument("--ensemble", default="random:0-2", help="architectures to ensemble ('' for none)")
    p.add_argument("--combine", default="logits", choices=["logits", "softmax"])
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--attacks", default="fgsm,rfgsm,stepll,pgd,autoattack")
    p.add_argument("--eps", help="comma-separated ε grid in pixel units, e.g. 1/255,2/255,4/255,8/255 "
                                 "(default: the data set's ε times 1/8, 1/4, 1/2, 1)")
    p.add_argument("--steps", type=int, default=20, help="PGD steps")
    p.add_argument("--n", type=int, default=500, help="test images per attack")
    p.add_argument("--aa-n", type=int, default=100, help="test images for AutoAttack (the slow one)")
    p.add_argument("--aa-eps", help="comma-separated ε at which AutoAttack runs (default: the whole grid)")
    p.add_argument("--tickets", type=float, help="add a robust scratch ticket column at this keep ratio")
    p.add_argument("--width", type=float, default=1.0, help="width multiplier of the hand-crafted networks")
    p.add_argument("--nas-opt", action="append", metavar="KEY=VALUE",
                   help="DARTS network option, e.g. init_channels=8, layers=5 (repeatable)")
    p.add_argument("--train-opt", action="append", metavar="KEY=VALUE",
                   help="training setting for every run, e.g. lr=0.05, cutout=8 (repeatable)")
    p.add_argument("--nas-train-opt", action="append", metavar="KEY=VALUE",
                   help="training setting for the DARTS networks only, e.g. aux_weight=0.4, drop_path=0.2")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--executor", default="local", choices=["local", "ray"])
    p.add_argument("--address", help="Ray cluster address (with --executor ray)")
    p.add_argument("--max-parallel", type=int, default=1, help="runs trained at once")
    p.add_argument("--device", default="auto")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=cmd_nas)


def study_config(args: argparse.Namespace) -> Any:
    from inborn.studies.nas import NasStudyConfig

    if args.epochs < 1:
        raise InbornError(f"--epochs must be >= 1, got {args.epochs}")
    if args.n < 1 or args.aa_n < 1:
        raise InbornError("--n and --aa-n must be >= 1")
    if args.tickets is not None and not 0 < args.tickets <= 1:
        raise InbornError(f"keep ratio must be in (0, 1], got {args.tickets}")
    attacks = [a.strip() for a in args.attacks.split(",") if a.strip()]
    from inborn.attacks import ATTACKS

    if unknown := [a for a in attacks if a not in ATTACKS]:
        raise InbornError(f"unknown attack {unknown[0]!r}; run `inborn attacks` to list them")
    return NasStudyConfig(
        data=args.data, data_dir=args.data_dir, archs=args.archs.split(","),
        ensemble=[a for a in args.ensemble.split(",") if a.strip()], combine=args.combine, epochs=args.epochs,
        attacks=attacks, eps=[parse_eps(e) for e in args.eps.split(",")] if args.eps else None, steps=args.steps,
        n=args.n, aa_n=args.aa_n, aa_eps=[parse_eps(e) for e in args.aa_eps.split(",")] if args.aa_eps else None,
        tickets=args.tickets, width=args.width,
        nas_options=parse_options(args.nas_opt or []), train=parse_options(args.train_opt or []),
        nas_train=parse_options(args.nas_train_opt or []), seed=args.seed,
    )


def cmd_nas(args: argparse.Namespace) -> int:
    from pathlib import Path

    from inborn.studies.nas import run_nas_study

    result = run_nas_study(study_config(args), args.out, executor=args.executor, max_parallel=args.max_parallel,
                           address=args.address, device=args.device, progress=not args.quiet)
    print(result["main_table"])
    for line in result["findings"]:
        print(line)
    print(f"report: {Path(args.out) / 'report.md'}")
    return 0
