"""`inborn demo`: the quick tour on built-in data, under ten minutes on a laptop CPU.

Searches robust scratch tickets at a few keep ratios over one random weight tensor of conv4 on
mnist5k, trains the dense PGD-AT baseline, then reads them three ways (existence, transfer
between tickets, the Random RST Switch under adaptive attacks) into one report.
"""

from __future__ import annotations

import argparse

from inborn.cli.common import count_arg, real_arg


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="the quick tour: tickets vs dense PGD-AT, transfer and R2S on digits",
                       description="Run the `tour` study at quick scale (see `inborn reproduce tour --print-config`).")
    p.add_argument("--out", default="runs/demo", help="report directory (default runs/demo)")
    p.add_argument("--epochs", type=count_arg, help="epochs per run (default: the preset's, 30)")
    p.add_argument("--n", type=count_arg, help="test images for transfer and R2S (default: the preset's, 200)")
    p.add_argument("--data", help="another data set (default digits)")
    p.add_argument("--arch", help="another model (default fc, LeNet-300-100)")
    p.add_argument("--width", type=real_arg(0, low_open=True), help="width multiplier (default 4)")
    p.add_argument("--device", default="auto")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=cmd_demo)


def cmd_demo(args: argparse.Namespace) -> int:
    from pathlib import Path

    from inborn.errors import InbornError
    from inborn.studies.reproduce import run_study

    overrides = {f"base.{k}": getattr(args, k) for k in ("epochs", "data", "arch", "width")
                 if getattr(args, k) is not None}
    if args.n is not None:
        if args.n < 1:
            raise InbornError(f"--n must be >= 1, got {args.n}")
        overrides["evaluate.n"] = args.n
    if args.data is not None:
        overrides["base.eps"] = None  # the data set's own ε
    print("inborn demo: tickets at keep 0.1, 0.3, 0.5 and dense PGD-AT, then transfer and the Random RST Switch")
    result = run_study("tour", "quick", Path(args.out), device=args.device, progress=not args.quiet,
                       overrides=overrides)
    print()
    print(result["main_table"])
    print(f"\nreport: {Path(result['report']).resolve()}")
    return 0
