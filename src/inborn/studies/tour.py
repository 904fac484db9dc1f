"""The quick tour behind `inborn demo`: existence, transfer and R2S over ONE set of tickets.

The tickets (one random weight tensor, several keep ratios) and the dense PGD-AT baseline are
searched and trained once, then read three ways; each part gets its own report directory and
the top report puts their main tables and figures together.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from inborn.io import atomic_write_text
from inborn.studies.family import prepare_family, r2s_report, transfer_report
from inborn.studies.tickets import run_ticket_study


def run_tour(preset: dict[str, Any], out: Path, *, run: Any, device: str = "auto", progress: bool = True,
             ) -> dict[str, Any]:

    runs = out / "runs"
    existence = run_ticket_study(preset, out / "existence", run=run, runs=runs)
    family = prepare_family(preset, runs, run=run, device=device)  # reuses the runs above
    parts = {"transfer": transfer_report(preset, family, out / "transfer", progress),
             "r2s": r2s_report({**preset, "title": "Random RST Switch"}, family, out / "r2s", progress)}
    atomic_write_text(out / "existence" / "report.md", existence.report)
    for name, part in parts.items():
        atomic_write_text(out / name / "report.md", part["report"])
    base = preset["base"]
    lines = [
        "# inborn quick tour",
        "",
        f"Robust scratch tickets of `{base['arch']}` (width {base.get('width', 1.0):g}) on `{base['data']}` at "
        f"ε = {base['eps']:.4g}, {base['epochs']} epochs per run, keep ratios "
        f"{', '.join(f'{v:g}' for v in preset['values'])} over one random weight tensor, and dense PGD-AT of the "
        "same network. Each section links to its full report.",
        "",
        "## 1. Existence: tickets against dense PGD-AT ([report](existence/report.md))",
        "",
        "![existence](existence/figure.png)",
        "",
        existence.main_table,
        "",
        *[line for line in existence.report.splitlines() if line.startswith("Best ticket")],
        "",
        "## 2. Transferability between tickets ([report](transfer/report.md))",
        "",
        f"Sections 2 and 3 attack the first {preset['evaluate']['n']} test images (section 1: the whole test "
        "split), so their figures of the same model differ from section 1's by sampling.",
        "",
        "![transfer](transfer/figure.png)",
        "",
        parts["transfer"]["main_table"],
        "",
        "## 3. Random RST Switch, non-adaptive and adaptive ([report](r2s/report.md))",
        "",
        "![r2s](r2s/figure.png)",
        "",
        parts["r2s"]["main_table"],
        "",
        *[line for line in parts["r2s"]["report"].splitlines()
          if line.startswith(("**Robust accuracy to cite", "- "))],  # the figure to cite, and the verdicts
        "",
    ]
    report = "\n".join(lines)
    return {"report": report, "main_table": existence.main_table, "rows": existence.rows}
