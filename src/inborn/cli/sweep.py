"""`inborn sweep`: a grid of runs over a base config, here or on a Ray cluster, resumable."""

from __future__ import annotations

import argparse
import sys

from inborn.cli.common import add_trust_flag, count_arg, real_arg
from inborn.errors import InbornError
from inborn.tables import text_table


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "sweep", help="run a grid of train / search / finetune runs (locally or on Ray)",
        description="Run every combination of the --grid values over a base config, one run directory per cell "
                    "under --out. Complete cells are skipped and interrupted ones resumed, so the same command "
                    "continues a sweep. Writes OUT/sweep.csv and OUT/sweep.md. See docs/sweeps.md.")
    p.add_argument("config", help="base YAML config: TrainConfig fields, and optionally kind: train|search|finetune")
    p.add_argument("--grid", action="append", default=[], metavar="KEY=V1,V2",
                   help="a config key and its values, e.g. lr=0.1,0.05 or keep=0.1,0.3 or ticket.pattern=element,2:4 "
                        "(repeat for more keys; the sweep runs every combination)")
    p.add_argument("--out", required=True, help="sweep directory: one run directory per cell, and the tables")
    p.add_argument("--executor", default="local", metavar="local|ray", help="local (subprocesses here, default) or ray")
    p.add_argument("--address", help="Ray cluster address (e.g. ray://head:10001 or auto); default: a local instance")
    p.add_argument("--max-parallel", type=count_arg, metavar="N",
                   help="runs at once (local default: one per GPU slot, else one per 2 cores; Ray cluster: all)")
    p.add_argument("--gpus-per-run", type=real_arg(0), default=0, metavar="G",
                   help="GPUs per run, may be a fraction (default 0)")
    p.add_argument("--cpus-per-run", type=count_arg, metavar="N",
                   help="CPU threads per run (default: the cores shared out)")
    p.add_argument("--db", help="results database (default runs/inborn.db or $INBORN_DB)")
    p.add_argument("--dry-run", action="store_true", help="list the cells and what would run; run nothing")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    add_trust_flag(p)
    p.set_defaults(func=cmd_sweep)


def cmd_sweep(args: argparse.Namespace) -> int:
    from inborn.store import ResultsDB
    from inborn.sweep import cells as cells_mod
    from inborn.sweep.executors import EXECUTORS, require_ray, run_cells
    from inborn.sweep.grid import value_text
    from inborn.sweep.report import result_rows, write_report

    if args.executor not in EXECUTORS:
        raise InbornError(f"unknown executor {args.executor!r}; use local or ray")
    if args.address and args.executor != "ray":
        raise InbornError("--address is for --executor ray")
    from inborn.store.guard import check_output, claim_study

    cells = cells_mod.plan_cells(args.config, args.grid, args.out)
    db = ResultsDB(args.db)
    db.check()
    for cell in cells:
        cells_mod.check_cell(cell)
        check_output(cell.out, cell.kind)  # a cell's directory: new, or a run of the cell's kind
    if args.dry_run:
        if args.executor == "ray":
            require_ray()
        rows = []
        for cell in cells:
            cells_mod.check_cell(cell)
            state = ("complete" if cells_mod.is_complete(cell, db)
                     else "resume" if cells_mod.should_resume(cell) else "new")
            values = {k: value_text(v) for k, v in cell.values.items()}
            rows.append({**values, "kind": cell.kind, "would": "skip" if state == "complete" else "run",
                         "state": state, "run": str(cell.out)})
        print(text_table(rows))
        print(f"{sum(r['would'] == 'run' for r in rows)} of {len(rows)} cells would run")
        return 0
    claim_study(args.out, "sweep")
    results = run_cells(cells, args.executor, max_parallel=args.max_parallel, gpus_per_run=args.gpus_per_run,
                        address=args.address, db=db, cpus_per_run=args.cpus_per_run, progress=not args.quiet)
    write_report(args.out, results)
    print(text_table(result_rows(results)))
    failed = [r for r in results if r.status == "failed"]
    for r in failed:
        tail = "\n".join("    " + line for line in r.log_tail.splitlines())
        print(f"cell {r.cell.name} failed (exit {r.returncode}); last lines of {r.cell.out}/cell.log:\n{tail}",
              file=sys.stderr)
    print(f"{len(results) - len(failed)} of {len(results)} cells complete; tables in {args.out}/sweep.csv and "
          f"{args.out}/sweep.md" + (f"; {len(failed)} failed" if failed else ""))
    return 1 if failed else 0
