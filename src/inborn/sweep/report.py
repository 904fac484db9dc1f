"""The sweep's table: one row per cell, written as OUT/sweep.csv and OUT/sweep.md."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from inborn.io import atomic_write_text
from inborn.sweep.executors import CellResult
from inborn.sweep.grid import value_text
from inborn.tables import csv_text, markdown_table

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


def write_report(out: str | Path, results: list[CellResult]) -> list[dict[str, Any]]:
    rows = result_rows(results)
    atomic_write_text(Path(out) / "sweep.csv", csv_text(rows))
    table = markdown_table(rows, digits=4, missing="-") if rows else "(no cells)"
    atomic_write_text(Path(out) / "sweep.md", table + "\n")
    return rows
