"""`inborn compare RUN...`: runs side by side (a table, `--csv`) and robust accuracy against ε (`--out FIG`)."""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

from inborn.errors import InbornError
from inborn.tables import text_table


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("compare", help="compare runs: one table of their test figures, and robust accuracy "
                                       "against ε on one figure")
    p.add_argument("runs", nargs="+", metavar="RUN", help="run directories (trained, searched, imported, ...)")
    p.add_argument("--csv", action="store_true", help="write the table as CSV to stdout")
    p.add_argument("--out", help="also draw the runs' worst-case robust accuracy against ε into this PNG")
    p.add_argument("--db", help="results database (default runs/inborn.db or $INBORN_DB)")
    p.set_defaults(func=cmd_compare)


def cmd_compare(args: argparse.Namespace) -> int:
    from inborn.analysis.compare import compare_runs, comparison_rows, plot_comparison
    from inborn.store import ResultsDB
    from inborn.store.guard import check_output_file

    if args.out is not None:
        if Path(args.out).suffix.lower() != ".png":
            raise InbornError(f"--out {args.out!r}: the figure is a PNG, name it .png")
        check_output_file(args.out, "figure")  # never a run's own figure, nor a PNG inborn did not draw
    db = ResultsDB.for_runs(args.db, args.runs)
    db.check(write=False)
    runs = compare_runs(args.runs, db)
    rows = comparison_rows(runs, csv=args.csv)
    if args.csv:
        writer = csv.DictWriter(sys.stdout, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    else:
        print(text_table(rows))
        print("worst: the lowest figure at that ε; a per-sample worst case where one evaluation ran those attacks")
    if args.out is not None:
        plot_comparison(runs, args.out)
        if not args.csv:
            print(f"plot: {args.out}")
    return 0
