"""`inborn demo`: the quick tour on built-in data, minutes on a laptop CPU.

Adversarially trains conv4 on mnist5k, then evaluates it with PGD-20 on the whole test
split and with AutoAttack (standard) on its first images, and prints where the run lies.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="the quick tour: PGD-AT of conv4 on mnist5k, PGD-20 and AutoAttack")
    p.add_argument("--out", default="runs/demo", help="run directory (default runs/demo)")
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--aa-n", type=int, default=100, help="test images for AutoAttack (default 100)")
    p.add_argument("--device", default="auto")
    p.add_argument("--db", help="results database (default runs/inborn.db or $INBORN_DB)")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=cmd_demo)


def cmd_demo(args: argparse.Namespace) -> int:
    from inborn.cli import build_parser, evaluate
    from inborn.cli.train import resolve_config
    from inborn.store import ResultsDB, RunDir
    from inborn.train import train

    out = Path(args.out)
    run = RunDir(out)
    eps = "0.3"
    common = ["--device", args.device] + (["--db", args.db] if args.db else []) + (["--quiet"] if args.quiet else [])
    if run.read_summary().get("epochs") == args.epochs:
        print(f"reusing the complete run in {out}")
    else:
        print(f"1/3 PGD-7 adversarial training of conv4 (width 0.5) on mnist5k, ε={eps}, {args.epochs} epochs")
        if run.file(RunDir.CHECKPOINT).exists():
            train(None, out, resume=True, db=ResultsDB(args.db), progress=not args.quiet)  # type: ignore[arg-type]
        else:
            ns = build_parser().parse_args(["train", "--data", "mnist5k", "--arch", "conv4", "--width", "0.5",
                                            "--adv", "pgd", "--eps", eps, "--epochs", str(args.epochs),
                                            "--out", str(out), *common])
            train(resolve_config(ns), out, db=ResultsDB(args.db), progress=not args.quiet)

    results = []
    for step, (attacks, n) in enumerate([("pgd", None), ("pgd,autoattack", args.aa_n)], start=2):
        what = "PGD-20 on the whole test split" if n is None else f"PGD-20 and AutoAttack on {n} test images"
        print(f"{step}/3 {what}")
        ns = build_parser().parse_args(["eval", str(out), "--attack", attacks, "--eps", eps, "--steps", "20",
                                        "--json", *common, *(["--n", str(n)] if n else [])])
        results.append(_run_quietly(evaluate.cmd_eval, ns, out))
    print()
    for result in results:
        print(evaluate.render(result))
        print()
    print(f"run directory: {out.resolve()}")
    print(f"next: `inborn eval {out} --attack pgd,fgsm --eps 0.1,0.2,0.3` draws robust accuracy against ε")
    return 0


def _run_quietly(cmd, ns: argparse.Namespace, out: Path) -> dict:
    """Run an eval command with its JSON printout swallowed, and return the JSON it saved."""
    import contextlib
    import io

    with contextlib.redirect_stdout(io.StringIO()):
        cmd(ns)
    return json.loads((out / "eval.json").read_text())
