"""The ticket studies (existence, patterns, inits, search attacks, fine-tuning, tickets in NAS
cells): one mask search per value of one setting, the dense PGD-AT baseline, optional PGD-AT
fine-tuning of each ticket's structure, then a table, a figure and the paper's numbers beside ours.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

from inborn.errors import InbornError
from inborn.io import atomic_write
from inborn.store import RunDir
from inborn.studies.presets import with_value
from inborn.sweep import Cell
from inborn.sweep.grid import safe_name
from inborn.tables import markdown_table, write_csv


def _dense(base: dict[str, Any]) -> dict[str, Any]:
    config = copy.deepcopy(base)
    config.pop("ticket", None)
    return config


def search_cells(preset: dict[str, Any], runs: Path) -> list[Any]:
    return [Cell(name=f"RST {preset['vary']}={v}", kind="search", config=with_value(preset["base"], preset["vary"], v),
                 out=runs / f"rst-{safe_name(v)}", values={preset["vary"]: v}) for v in preset["values"]]


def baseline_cells(preset: dict[str, Any], runs: Path) -> list[Any]:
    cells = []
    for name in preset.get("baselines", []):
        if name != "dense-at":
            raise InbornError(f"unknown baseline {name!r}; known: dense-at")
        cells.append(Cell(name="dense PGD-AT", kind="train", config=_dense(preset["base"]), out=runs / "dense-at"))
    return cells


def finetune_cells(preset: dict[str, Any], tickets: list[Any], runs: Path) -> list[Any]:
    cells = []
    for weights in preset.get("finetune", []):
        for ticket in tickets:
            value = ticket.values[preset["vary"]]
            config = {**_dense(preset["base"]), "finetune": {"ticket": str(ticket.out), "weights": weights}}
            cells.append(Cell(name=f"ft-{weights} {preset['vary']}={value}", kind="finetune", config=config,
                              out=runs / f"ft-{weights}-{safe_name(value)}", values={preset["vary"]: value}))
    return cells


def test_figures(run: Path) -> tuple[float, float]:
    summary = RunDir(run).read_summary()
    if "test" not in summary:
        raise InbornError(f"run {str(run)!r} is not complete")
    return summary["test"]["clean_acc"], summary["test"]["robust_acc"]


def run_ticket_study(preset: dict[str, Any], out: Path, *, run: Any, runs: Path | None = None) -> dict[str, Any]:
    """Run the cells through `run` (the sweep machinery) into `runs` (default out/runs) and write
    the tables and figure into `out`; returns the report text, its main table and rows."""
    runs = runs or out / "runs"
    tickets = search_cells(preset, runs)
    baselines = baseline_cells(preset, runs)
    run([*baselines, *tickets])
    finetunes = finetune_cells(preset, tickets, runs)
    if finetunes:
        run(finetunes)  # after the searches: each fine-tunes a finished ticket

    vary = preset["vary"]
    paper = {str(k): v for k, v in (preset.get("paper") or {}).items()}
    rows = []
    for cell in tickets:
        value = cell.values[vary]
        clean, robust = test_figures(cell.out)
        row: dict[str, Any] = {vary: value, "RST clean": clean, "RST robust": robust}
        for ft in finetunes:
            if ft.values[vary] == value:
                weights = ft.config["finetune"]["weights"]
                row[f"ft-{weights} clean"], row[f"ft-{weights} robust"] = test_figures(ft.out)
        if str(value) in paper:
            row["paper robust %"] = paper[str(value)]
            row["ours - paper"] = 100 * robust - paper[str(value)]
        rows.append(row)
    base_rows = []
    for c in baselines:
        clean, robust = test_figures(c.out)
        base_rows.append({"model": c.name, "clean": clean, "robust": robust})
    columns = list(dict.fromkeys(k for r in rows for k in r))
    write_csv(out / "table.csv", rows, columns)
    if base_rows:
        write_csv(out / "baselines.csv", base_rows, ["model", "clean", "robust"])
    out.mkdir(parents=True, exist_ok=True)
    plot_ticket_study(rows, base_rows, vary, out / "figure.png", preset.get("title", ""))
    report = _report(preset, rows, columns, base_rows)
    return {"rows": rows, "baselines": base_rows, "report": report, "main_table": markdown_table(rows, columns)}


def _report(preset: dict[str, Any], rows: list[dict[str, Any]], columns: list[str],
            base_rows: list[dict[str, Any]]) -> str:
    base = preset["base"]
    search_attack = "varied" if preset["vary"] == "adv" else f"`{base.get('adv', 'pgd')}`"
    parts = [
        f"# {preset.get('title', preset['study'])}",
        "",
        f"Study `{preset['study']}` at `{preset['scale']}` scale: `{base['arch']}` on `{base['data']}`, "
        f"ε = {base.get('eps', 'the data set default'):.4g} (pixel units), {base['epochs']} epochs per run, "
        f"search attack {search_attack}; "
        "test figures are PGD-20 on the test split at the checkpoint "
        "selected on validation robust accuracy.",
        "",
        "![figure](figure.png)",
        "",
        markdown_table(rows, columns),
    ]
    if base_rows:
        parts += ["", "Baselines (same network, same epochs):", "",
                  markdown_table(base_rows, ["model", "clean", "robust"])]
        best = max(r["RST robust"] for r in rows)
        dense = next((r["robust"] for r in base_rows if r["model"] == "dense PGD-AT"), None)
        if dense:
            parts += ["", f"Best ticket / dense PGD-AT (robust): {best:.3f} / {dense:.3f} = {best / dense:.2f}."]
    if preset.get("paper") and "paper robust %" not in columns:
        parts += ["", "The paper's figures (not comparable at this scale): "
                  + ", ".join(f"{k}: {v}" for k, v in preset["paper"].items())]
    parts += ["", "Files: `table.csv`, `baselines.csv`, `figure.png`.", ""]
    return "\n".join(parts)


def plot_ticket_study(rows: list[dict[str, Any]], base_rows: list[dict[str, Any]], vary: str, path: Path,
                      title: str) -> None:
    """Robust and natural accuracy against the varied setting, the dense baseline dashed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt


    values = [r[vary] for r in rows]
    numeric = all(isinstance(v, int | float) for v in values)
    xs = values if numeric else list(range(len(values)))
    fig, ax = plt.subplots(figsize=(7.8, 4.2))
    series = [k[: -len(" robust")] for k in rows[0] if k.endswith(" robust")]
    for i, name in enumerate(series):
        color = f"C{i}"
        ax.plot(xs, [r[f"{name} robust"] for r in rows], marker="o", color=color, label=f"{name} robust (PGD-20)")
        ax.plot(xs, [r[f"{name} clean"] for r in rows], marker="s", linestyle=":", color=color, label=f"{name} natural")
    for r in base_rows:
        ax.axhline(r["robust"], color="black", linestyle="--", linewidth=1, label=f"{r['model']} robust")
        ax.axhline(r["clean"], color="gray", linestyle="--", linewidth=1, label=f"{r['model']} natural")
    if numeric and max(values) / max(min(values), 1e-9) >= 10:
        ax.set_xscale("log")
    if not numeric:
        ax.set_xticks(xs, [str(v) for v in values])
    ax.set_xlabel(vary)
    ax.set_ylabel("test accuracy")
    ax.set_ylim(0, 1.02)
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.02, 0.5))  # outside: never over a point
    fig.tight_layout()
    atomic_write(path, lambda p: fig.savefig(p, format="png", dpi=120, bbox_inches="tight"))
    plt.close(fig)
