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
    from inborn.cli import evaluate
    from inborn.cli.train import resolve_config
    from inborn.store import ResultsDB, RunDir
    from inborn.train import train

    out = Path(args.out)
    run = RunDir(out)
    eps = "0.3"
    if run.read_summary().get("epochs") == args.epochs:
        print(f"reusing the complete run in {out}")
    else:
        resume = run.file(RunDir.CHECKPOINT).exists()
        print(f"1/3 PGD-7 adversarial training of conv4 (width 0.5) on mnist5k, ε={eps}, {args.epochs} epochs")
        if resume:
            train(None, out, resume=True, db=ResultsDB(args.db), progress=not args.quiet)  # type: ignore[arg-type]
        else:
            ns = argparse.Namespace(**{k: None for k in (
                "config", "data_dir", "batch_size", "lr", "momentum", "weight_decay", "schedule", "grad_clip",
                "adv_steps", "free_replays", "adv_mode", "eps_warmup", "val_fraction", "seed", "adv_step_size",
                "milestones")})
            ns.__dict__.update(data="mnist5k", arch="conv4", width=0.5, epochs=args.epochs, adv="pgd", eps=eps,
                               device=args.device, no_affine_bn=False, no_augment=False)
            train(resolve_config(ns), out, db=ResultsDB(args.db), progress=not args.quiet)

    results = []
    for step, (attacks, n) in enumerate([("pgd", None), ("pgd,autoattack", args.aa_n)], start=2):
        what = "PGD-20 on the whole test split" if n is None else f"PGD-20 and AutoAttack on {n} test images"
        print(f"{step}/3 {what}")
        ns = argparse.Namespace(run_dir=str(out), attack=attacks, eps=eps, steps=20, step_size=None, restarts=1,
                                eot=None, n=n, split="test", batch_size=256, no_early_stop=False, seed=0,
                                device=args.device, data_dir=None, db=args.db, json=True, quiet=args.quiet)
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
