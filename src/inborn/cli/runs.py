"""`inborn runs`: the results database as a table, with filters and CSV export."""

from __future__ import annotations

import argparse
import csv
import sys
import time
from pathlib import Path

from inborn.errors import InbornError
from inborn.tables import text_table


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("runs", help="list runs or results from the results database")
    p.add_argument("--results", action="store_true", help="list evaluation results instead of runs")
    p.add_argument("--kind", help="filter runs by kind (train, ...)")
    p.add_argument("--data", help="filter runs by data set")
    p.add_argument("--arch", help="filter runs by model")
    p.add_argument("--status", help="filter runs by status (running, complete, failed, interrupted)")
    p.add_argument("--attack", help="filter results by attack")
    p.add_argument("--run", help="filter by run path (glob patterns allowed)")
    p.add_argument("--settings", action="store_true",
                   help="with --results: also every setting that identifies a result (step size, restarts, EOT "
                        "samples, repeats, seed, precision, model fingerprint, randomised)")
    p.add_argument("--plot", nargs="+", metavar="RUN", help="draw these runs' validation robust accuracy per epoch "
                   "on one figure (from their metrics.jsonl) into --out")
    p.add_argument("--out", help="with --plot: the figure's file (default val_robust.png)")
    p.add_argument("--csv", action="store_true", help="write CSV to stdout")
    p.add_argument("--db", help="results database (default runs/inborn.db or $INBORN_DB)")
    p.set_defaults(func=cmd_runs)


def cmd_runs(args: argparse.Namespace) -> int:
    from inborn.store import ResultsDB
    from inborn.store.status import repair_stale_runs

    if args.plot:
        return plot_runs(args.plot, args.out or "val_robust.png")
    if args.out:
        raise InbornError("--out names the figure of --plot: give --plot RUN... too")
    run_filter = _run_pattern(args.run) if args.run is not None else None
    plain = run_filter is not None and not any(ch in args.run for ch in "*?[")
    db = ResultsDB.for_runs(args.db, [args.run] if plain else [])
    db.check(write=False)
    stale = set(repair_stale_runs(db))  # a run whose process died (SIGKILL) is interrupted, never running
    if args.results:
        from inborn.store.db import SETTING_COLUMNS

        rows = db.results(attack=args.attack, run_path=run_filter)
        if any(v is not None for v in (args.arch, args.data, args.kind, args.status)):
            # Results carry no model or data set: those filters select the runs they belong to.
            kept = {Path(r["path"]).resolve() for r in db.runs(kind=args.kind, data=args.data, arch=args.arch,
                                                              status=args.status)}
            rows = [r for r in rows if Path(r["run_path"]).resolve() in kept]
        if not args.settings:
            rows = [{k: v for k, v in r.items() if k not in SETTING_COLUMNS} for r in rows]
        elif not args.csv:
            for r in rows:
                r["fingerprint"] = r["fingerprint"][:12]  # enough to tell models apart on screen
    else:
        rows = db.runs(kind=args.kind, data=args.data, arch=args.arch, status=args.status, path=run_filter)
        for r in rows:
            if r["path"] in stale and r["status"] == "running":
                r["status"] = "interrupted"
        if args.status == "running":
            rows = [r for r in rows if r["status"] == "running"]
    for r in rows:
        for key in ("created", "updated"):
            if key in r:  # ISO 8601 in CSV, minutes on screen
                stamp = time.localtime(r[key])
                r[key] = time.strftime("%Y-%m-%dT%H:%M:%S%z" if args.csv else "%Y-%m-%d %H:%M", stamp)
        for key in ACCURACY_COLUMNS:
            if isinstance(r.get(key), float):  # float32 figures: 0.9700000286102295 is 0.97
                r[key] = round(r[key], 6)
    if args.csv:
        if rows:
            writer = csv.DictWriter(sys.stdout, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
        return 0
    print(text_table(rows))
    return 0


# Accuracies come from float32 tensors: six decimals hold every figure of up to a million images.
ACCURACY_COLUMNS = ("clean_acc", "robust_acc", "hrs")


def _run_pattern(text: str) -> str:
    """`--run` as typed, as the database stores paths: absolute, without a trailing slash; a glob
    pattern relative to here is made absolute the same way."""
    if any(ch in text for ch in "*?["):
        return text if Path(text).is_absolute() else str(Path.cwd() / text.rstrip("/"))
    return str(Path(text).resolve())


def plot_runs(paths: list[str], out: str) -> int:
    """`--plot RUN...`: every run's validation robust accuracy on one figure; checked before drawing."""
    from inborn.analysis.plots import plot_runs_val_robust
    from inborn.store import RunDir
    from inborn.store.guard import check_output_file

    if Path(out).suffix.lower() != ".png":
        raise InbornError(f"--out {out!r}: the figure is a PNG, name it .png")
    check_output_file(out, "figure")  # never a run's curves.png, nor a PNG inborn did not draw
    runs = []
    unique = len({Path(p).name for p in paths}) == len(paths)  # label by name when names tell them apart
    for path in paths:
        run = RunDir(path)
        run.read_config()  # a missing or foreign directory is a one-line error
        history = run.read_metrics()
        if not any(h.get("val_robust_acc") is not None for h in history):
            raise InbornError(f"{path!r} has no validation robust accuracy in {RunDir.METRICS} (a natural run, "
                              "or one without a validation split, or not started)")
        runs.append((Path(path).name if unique else path, history))
    plot_runs_val_robust(runs, out)
    print(f"plot: {out}")
    return 0
