"""`inborn nas`: the architecture robustness study in one command."""

from __future__ import annotations

import argparse
from typing import Any

from inborn.cli.common import count_arg, throwaway
from inborn.cli.settings import add_setting_flags, given_settings
from inborn.errors import InbornError
from inborn.io import read_yaml_mapping
from inborn.studies.nas_config import NasStudyConfig


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "nas", help="architecture robustness study: train, attack over an ε grid, ensemble, report",
        description="Train each architecture naturally (reusing complete runs), attack it with each attack over "
                    "an ε grid, ensemble the random DARTS architectures, and write one report directory.")
    p.add_argument("--out", required=True, help="study directory (re-running it reuses what is done)")
    p.add_argument("--config", help="YAML file of study settings (NasStudyConfig fields); flags given here override it")
    add_setting_flags(p, NasStudyConfig, show_defaults=True)
    p.add_argument("--executor", default="local", choices=["local", "ray"])
    p.add_argument("--address", help="Ray cluster address (with --executor ray)")
    p.add_argument("--max-parallel", type=count_arg, default=1, help="runs trained at once")
    p.add_argument("--device", default="auto")
    p.add_argument("--db", help="results database (default runs/inborn.db or $INBORN_DB)")
    p.add_argument("--smoke", action="store_true",
                   help="every run for 1 epoch of 2 batches, 8 images per attack, into a throwaway directory; "
                        "prints the projected time of the full study")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=cmd_nas)


def study_config(args: argparse.Namespace) -> NasStudyConfig:
    """The study's settings: defaults, then the `--config` YAML, then the flags given."""
    from inborn.attacks import ATTACKS

    values: dict[str, Any] = read_yaml_mapping(args.config) if args.config else {}
    # Types, bounds and ε written as 8/255 are the settings' own (NasStudyConfig.from_dict).
    cfg = NasStudyConfig.from_dict({**values, **given_settings(args, NasStudyConfig)})
    if unknown := [a for a in cfg.attacks if a not in ATTACKS]:
        raise InbornError(f"unknown attack {unknown[0]!r}; run `inborn attacks` to list them")
    return cfg


def cmd_nas(args: argparse.Namespace) -> int:
    from pathlib import Path

    from inborn.studies.nas import run_nas_study

    cfg, out, db = study_config(args), Path(args.out), args.db
    if args.smoke:
        import dataclasses

        from inborn.cli.reproduce import SMOKE_EVAL

        cfg = dataclasses.replace(cfg, train={**cfg.train, "smoke": True}, n=SMOKE_EVAL, aa_n=SMOKE_EVAL)
        out, smoke_db = throwaway("nas")
        db = str(smoke_db)
        print(f"smoke: the study in a throwaway directory, {out}")
    result = run_nas_study(cfg, out, executor=args.executor, max_parallel=args.max_parallel,
                           address=args.address, device=args.device, progress=not args.quiet, db=db)
    print(result["main_table"])
    for line in result["findings"]:
        print(line)
    print(f"report: {out / 'report.md'}")
    if args.smoke:
        from inborn.cli.reproduce import smoke_report

        print(smoke_report(out))
    return 0
