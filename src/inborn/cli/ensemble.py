"""`inborn ensemble RUN [RUN ...] --out DIR`: combine trained runs into one model and measure it
white-box and against examples transferred from each member."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from inborn.cli.common import add_trust_flag, count_arg, seed_arg
from inborn.errors import InbornError


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("ensemble", help="combine runs into an ensemble and evaluate it",
                       description="Write an ensemble run directory (member paths and combine rule, no weights), "
                                   "then evaluate it: clean, white-box robust, and transfer from each member.")
    p.add_argument("runs", nargs="+", metavar="RUN", help="run directories of the members (one data set)")
    p.add_argument("--combine", choices=["logits", "softmax"], default="logits",
                   help="mean of the logits, or log of the mean softmax probabilities (default logits)")
    p.add_argument("--out", required=True, help="the ensemble's run directory")
    p.add_argument("--n", type=count_arg, default=500, help="test images to use (default 500)")
    p.add_argument("--eps", help="ε in pixel units (default: the members' ε, else the data set's)")
    p.add_argument("--attack", default="pgd", help="the attack (see `inborn attacks`), default pgd")
    p.add_argument("--steps", type=count_arg, default=20, help="iterations of iterative attacks (default 20)")
    p.add_argument("--batch-size", type=count_arg, default=256)
    p.add_argument("--seed", type=seed_arg, default=0, help="seed of the attacks")
    p.add_argument("--device", default="auto")
    p.add_argument("--data-dir", help="override the data directory stored in the members' runs")
    p.add_argument("--db", help="results database (default runs/inborn.db or $INBORN_DB)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    add_trust_flag(p)
    p.set_defaults(func=cmd_ensemble)


def cmd_ensemble(args: argparse.Namespace) -> int:
    from inborn.analysis.ensemble import evaluate_ensemble, render_ensemble
    from inborn.attacks import ATTACKS
    from inborn.device import resolve_device
    from inborn.io import atomic_write_json, atomic_write_text
    from inborn.runs import build_ensemble, load_run_data, run_eps
    from inborn.runs.ensemble import member_docs
    from inborn.store import ResultsDB, RunDir
    from inborn.tables import text_table
    from inborn.values import parse_eps

    # Check what the user typed, the members and the data before anything is written.
    if args.attack not in ATTACKS:
        raise InbornError(f"unknown attack {args.attack!r}; known: {', '.join(ATTACKS)}")
    eps = parse_eps(args.eps) if args.eps else None
    ResultsDB(args.db).check()
    device = resolve_device(args.device)
    splits = load_run_data(member_docs(args.runs)[0], args.data_dir)
    out = Path(args.out)
    ensemble = build_ensemble(args.runs, out, combine=args.combine, data_dir=args.data_dir, device=device)
    doc = RunDir(out).read_config()
    cfg = doc["config"]
    if eps is None:
        eps = run_eps(doc, splits)
    x, y = splits.test.head(args.n).tensors(device)

    t0 = time.time()
    result = evaluate_ensemble(ensemble, x, y, eps=eps, attack=args.attack, steps=args.steps,
                               batch_size=args.batch_size, seed=args.seed, progress=not args.quiet)
    result.update({"run": str(out.resolve()), "data": cfg["data"], "split": "test", "seconds": time.time() - t0,
                   "member_runs": cfg["members"]})
    atomic_write_json(out / "ensemble.json", result)
    report = render_ensemble(result, title=f"Ensemble on {cfg['data']}")
    atomic_write_text(out / "ensemble.md", report)
    _record(args.db, out, cfg, result)

    rows = [{"model": m["name"], "clean": m["clean"], "white-box": m["robust"], "transfer": m["transfer"]}
            for m in result["members"]]
    e = result["ensemble"]
    rows.append({"model": "ensemble", "clean": e["clean"], "white-box": e["robust"], "transfer": e["transfer_worst"]})
    print(f"ensemble of {len(rows) - 1} ({args.combine}) on {cfg['data']} (test, {result['n']} images, "
          f"{result['attack']} at ε={eps:.4g}, {result['seconds']:.0f}s)")
    print(text_table(rows))
    print(f"saved: {out / 'ensemble.json'}, {out / 'ensemble.md'}")
    return 0


def _record(db_path: str | None, out: Path, cfg: dict, result: dict) -> None:
    """The ensemble as a run, its white-box and transfer results, and each member's white-box result."""
    from inborn.evaluation.metrics import harmonic_robustness_score
    from inborn.evaluation.results import evaluation_rows, result_row
    from inborn.store import ResultsDB

    db = ResultsDB(db_path)
    e = result["ensemble"]
    db.upsert_run(out, kind="ensemble", status="complete",
                  config={"data": cfg["data"], "arch": "ensemble", "eps": cfg.get("eps"), "seed": cfg.get("seed")},
                  summary={"clean": e["clean"], "robust": e["robust"], "combine": result["combine"],
                           "members": cfg["members"]})
    whole = e["evaluation"]
    rows = evaluation_rows(whole, out, "test")
    identity = {**{k: rows[0][k] for k in ("steps", "step_size", "restarts", "eot_samples", "seed", "precision")},
                "fingerprint": whole["fingerprint"]}

    def transfer(source: str, robust: float) -> dict:
        return result_row(out, "test", f"transfer-{result['attack']}:{source}", result["eps"], n=result["n"],
                          clean_acc=e["clean"], robust_acc=robust, hrs=harmonic_robustness_score(e["clean"], robust),
                          settings=identity, extra={"combine": result["combine"]})

    rows.append(transfer("worst", e["transfer_worst"]))
    for m, path in zip(result["members"], cfg["members"], strict=True):
        rows.append(transfer(path, m["transfer"]))
        rows += evaluation_rows(m["evaluation"], path, "test")
    db.add_results(rows)
