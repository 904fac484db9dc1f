"""The one table writer: rows (dicts) as an aligned text table (the terminal), a markdown table
(reports) or CSV (the data behind a table), with one way of writing a cell."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from inborn.io import atomic_write_text

COLUMN_DIGITS = 4  # significant digits of ε in a table's column name: `pgd@0.03137`
SAMPLE_DIGITS = 6  # in a key of per-sample flags (`evaluate(per_sample=True)`), which must tell ε apart


def result_column(attack: str, eps: float, *, metric: str = "", digits: int = COLUMN_DIGITS) -> str:
    """The one name of a result at ε: `pgd@0.05` (robust accuracy), `hrs pgd@0.05` with
    `metric="hrs"`, `worst@0.05` for the worst case over attacks (`attack="worst"`), and with
    `digits=SAMPLE_DIGITS` the key of an attack's per-sample flags."""
    name = f"{attack}@{eps:.{digits}g}"
    return f"{metric} {name}" if metric else name


def fmt(value: Any, digits: int = 3, missing: str = "–") -> str:
    """A table cell: floats rounded, large integers with thousands separators, missing values as a dash."""
    if value is None:
        return missing
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 10_000:
        return f"{value:,}"
    return str(value)


def text_table(rows: Sequence[dict[str, Any]], columns: Sequence[str] | None = None, digits: int = 4) -> str:
    """Columns padded to their widest cell, for the terminal."""
    if not rows:
        return "(no rows)"
    columns = list(columns or rows[0].keys())
    cells = [[_plain(r.get(c), digits) for c in columns] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(columns)]
    line = "  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)).rstrip()
    sep = "  ".join("-" * w for w in widths)
    body = ["  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip() for row in cells]
    return "\n".join([line, sep, *body])


def markdown_table(rows: Sequence[dict[str, Any]], columns: Sequence[str] | None = None, digits: int = 3,
                   missing: str = "–") -> str:
    columns = list(columns or (rows[0].keys() if rows else []))
    head = "| " + " | ".join(columns) + " |"
    rule = "| " + " | ".join("---" for _ in columns) + " |"
    body = ["| " + " | ".join(fmt(r.get(c), digits, missing).replace("|", "\\|") for c in columns) + " |"
            for r in rows]
    return "\n".join([head, rule, *body])


def csv_text(rows: Sequence[dict[str, Any]], columns: Sequence[str] | None = None) -> str:
    """CSV with a header; values as they are (missing ones empty), columns not named are left out."""
    columns = list(columns or (rows[0].keys() if rows else []))
    buf = io.StringIO()
    if columns:
        writer = csv.DictWriter(buf, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
        writer.writeheader()
        for r in rows:
            writer.writerow({c: "" if r.get(c) is None else r.get(c) for c in columns})
    return buf.getvalue()


def write_csv(path: str | Path, rows: Sequence[dict[str, Any]], columns: Sequence[str] | None = None) -> None:
    atomic_write_text(path, csv_text(rows, columns))


def _plain(value: Any, digits: int) -> str:
    # The terminal table keeps integers as they are (run ids, counts are read, not compared).
    return "-" if value is None else f"{value:.{digits}f}" if isinstance(value, float) else str(value)
