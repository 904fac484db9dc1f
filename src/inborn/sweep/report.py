"""The sweep's table: one row per cell, written as OUT/sweep.csv and OUT/sweep.md."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

from inborn.io import atomic_write_text
from inborn.sweep.executors import CellResult
from inborn.sweep.grid import value_text

FIGURES = ("clean_acc", "robust_acc", "hrs")


def result_rows(results: list[CellResult]) -> list[dict[str, Any]]:
    """Grid values, status and the test figures from each cell's summary.json (None if absent)."""
    keys: list[str] = []
    for r in results:
        keys += [k for k in r.cell.values if k not in keys]
    rows = []
    for r in results:
        test = r.summary.get("test", {})
        row: dict[str, Any] = {k: value_text(r.cell.values[k]) if k in r.cell.values else None for k in keys}
        row["status"] = r.status
        row.update({f: test.get(f) for f in FIGURES})
        row["run"] = r.cell.name
        rows.append(row)
    return rows


def to_csv(rows: list[dict[str, Any]]) -> str:
    buf = io.StringIO()
    if rows:
        writer = csv.DictWriter(buf, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows({k: "" if v is None else v for k, v in row.items()} for row in rows)
    return buf.getvalue()


def to_markdown(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return "(no cells)\n"

    def cell(v: Any) -> str:
        text = "-" if v is None else f"{v:.4f}" if isinstance(v, float) else str(v)
        return text.replace("|", "\\|")

    columns = list(rows[0])
    lines = ["| " + " | ".join(columns) + " |", "|" + "|".join("---" for _ in columns) + "|"]
    lines += ["| " + " | ".join(cell(row[c]) for c in columns) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def write_report(out: str | Path, results: list[CellResult]) -> list[dict[str, Any]]:
    rows = result_rows(results)
    atomic_write_text(Path(out) / "sweep.csv", to_csv(rows))
    atomic_write_text(Path(out) / "sweep.md", to_markdown(rows))
    return rows
