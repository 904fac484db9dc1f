"""`inborn reproduce STUDY`: run a named study from its preset, at quick or paper scale."""

from __future__ import annotations

import argparse

from inborn.cli.common import count_arg


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "reproduce", help="run a paper's study from a preset (quick on a CPU, or at the paper's scale)",
        description="Run a named study (see --list) at quick scale (mnist5k on a CPU) or at the paper's scale "
                    "(local CIFAR files via --data-dir), picking up complete and interrupted runs, and write "
                    "a report directory: report.md with its figures and the CSV behind every table.")
    p.add_argument("study", nargs="?", help="a study name (see --list) or a YAML file copied from a preset")
    p.add_argument("--list", action="store_true", help="list the studies")
    p.add_argument("--print-config", action="store_true",
                   help="print the study's preset (YAML, both scales) to copy and edit, and exit")
    p.add_argument("--scale", default="quick", choices=["quick", "paper"])
    p.add_argument("--out", help="report directory (default runs/reproduce/STUDY-SCALE)")
    p.add_argument("--data-dir", help="directory holding the data set's files (paper scale)")
    p.add_argument("--device", default="auto")
    p.add_argument("--executor", default="local", choices=["local", "ray"])
    p.add_argument("--address", help="Ray cluster address (with --executor ray)")
    p.add_argument("--max-parallel", type=count_arg, default=1, help="runs at once (default 1)")
    p.add_argument("--seeds", help="repeat every run of the study over these seeds, e.g. 0,1,2 (reports give "
                                   "mean ± std); overrides the preset's seeds")
    p.add_argument("--db", help="results database (default runs/inborn.db or $INBORN_DB)")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=cmd_reproduce)


def cmd_reproduce(args: argparse.Namespace) -> int:
    from pathlib import Path

    from inborn.errors import InbornError
    from inborn.studies.presets import load_preset, preset_names, print_config

    if args.list:
        for name in preset_names():
            doc = load_preset(name)
            print(f"{name:15s} {doc.get('title', '')}  [{', '.join(doc['scales'])}]")
        return 0
    if not args.study:
        raise InbornError("name a study (see `inborn reproduce --list`)")
    if args.print_config:
        print(print_config(args.study), end="")
        return 0
    from inborn.studies.reproduce import run_study

    overrides = {}
    if args.seeds is not None:
        try:
            overrides["seeds"] = [int(s) for s in args.seeds.split(",")]
        except ValueError:
            raise InbornError(f"--seeds takes integers separated by commas, e.g. 0,1,2; got {args.seeds!r}") from None
    name = Path(args.study).stem
    out = Path(args.out or f"runs/reproduce/{name}-{args.scale}")
    result = run_study(args.study, args.scale, out, data_dir=args.data_dir, device=args.device,
                       executor=args.executor, max_parallel=args.max_parallel, address=args.address,
                       progress=not args.quiet, overrides=overrides, db=args.db)
    print(result["main_table"])
    print(f"report: {result['report']}")
    return 0
