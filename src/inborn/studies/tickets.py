"""The ticket studies (existence, patterns, inits, search attacks, fine-tuning, tickets in NAS
cells): one mask search per value of one setting (and per seed), the dense PGD-AT baseline, the
size-matched baselines, optional PGD-AT fine-tuning of each ticket's structure, then a table, a
figure and the paper's numbers beside ours.

Baselines (the preset's `baselines`; natural training is always run):
    natural       natural training of the same network, same epochs: the robustness it gets for free
                  (the floor a ticket's robustness is measured above)
    dense-at      dense PGD-AT of the same network, same epochs
    size-matched  dense PGD-AT of the same architecture scaled (width, or a DARTS network's initial
                  channels) to the ticket's number of non-zero weights
    random-mask   PGD-AT of fresh weights under a random mask at the ticket's keep ratio and pattern

Selection never uses the test split: every run's checkpoint is chosen on validation robust
accuracy, and the best ticket of a study is the value with the best validation robust accuracy
(averaged over seeds); its test figure is the one reported.

Test robust accuracy is the worst case per point over the runs' test attacks (PGD-20 and CW-20,
the margin loss, by default): cross-entropy PGD alone overstates sparse tickets. The tables give
cross-entropy PGD-20 beside it, so what the stronger attack moves shows.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from inborn.errors import InbornError
from inborn.evaluation.results import ResultView
from inborn.io import save_figure
from inborn.settings import with_dotted
from inborn.store import RunDir
from inborn.studies.seeds import fmt_spread, mean_std, ordering_sentence, seed_suffix, seeded, study_seeds
from inborn.studies.sizes import config_with_size, run_nonzero, size_matched
from inborn.sweep import Cell
from inborn.sweep.grid import safe_name
from inborn.tables import markdown_table, write_csv

BASELINES = ("natural", "dense-at", "size-matched", "random-mask")
DENSE = "dense PGD-AT"
NATURAL = "natural training"
MATCHED = "size-matched dense"
RANDOM = "random mask"


def _dense(base: dict[str, Any]) -> dict[str, Any]:
    config = copy.deepcopy(base)
    config.pop("ticket", None)
    return config


def _named(name: str, seed: int | None) -> str:
    return name if seed is None else f"{name} seed={seed}"


def baseline_names(preset: dict[str, Any]) -> list[str]:
    """The preset's baselines, natural training always among them (the floor of every table)."""
    names = list(preset.get("baselines", []))
    for name in names:
        if name not in BASELINES:
            raise InbornError(f"unknown baseline {name!r}; known: {', '.join(BASELINES)}")
    return list(dict.fromkeys(["natural", *names]))


def search_cells(preset: dict[str, Any], runs: Path) -> list[Any]:
    vary = preset["vary"]
    return [Cell(name=_named(f"RST {vary}={v}", s), kind="search",
                 config=seeded(with_dotted(preset["base"], vary, v), s),
                 out=runs / f"rst-{safe_name(v)}{seed_suffix(s)}", values={vary: v, "seed": s})
            for v in preset["values"] for s in study_seeds(preset)]


def baseline_cells(preset: dict[str, Any], runs: Path) -> list[Any]:
    """Dense PGD-AT of the same network, once per seed (the other baselines follow the tickets)."""
    if "dense-at" not in baseline_names(preset):
        return []
    return [Cell(name=_named(DENSE, s), kind="train",
                 config=seeded(_dense(preset["base"]), s), out=runs / f"dense-at{seed_suffix(s)}",
                 values={"seed": s}) for s in study_seeds(preset)]


def natural_cells(preset: dict[str, Any], runs: Path) -> list[Any]:
    """Natural training of the same network, same epochs, tested at the same ε, once per seed."""
    return [Cell(name=_named(NATURAL, s), kind="train",
                 config=seeded({**_dense(preset["base"]), "adv": "none"}, s), out=runs / f"natural{seed_suffix(s)}",
                 values={"seed": s}) for s in study_seeds(preset)]


def finetune_cells(preset: dict[str, Any], tickets: list[Any], runs: Path) -> list[Any]:
    cells = []
    for weights in preset.get("finetune", []):
        for ticket in tickets:
            value, seed = ticket.values[preset["vary"]], ticket.values["seed"]
            config = {**seeded(_dense(preset["base"]), seed),
                      "finetune": {"ticket": str(ticket.out), "weights": weights}}
            out = runs / f"ft-{weights}-{safe_name(value)}{seed_suffix(seed)}"
            cells.append(Cell(name=_named(f"ft-{weights} {preset['vary']}={value}", seed), kind="finetune",
                              config=config, out=out, values={**ticket.values, "series": f"ft-{weights}"}))
    return cells


def matched_cells(preset: dict[str, Any], tickets: list[Any], runs: Path) -> tuple[list[Any], list[tuple[Any, Any]]]:
    """Size-matched dense and random-mask baselines of finished tickets. Tickets with the same
    structure (keep ratio, pattern, scope; e.g. an inits study's) share one cell per seed. Returns
    the cells and (ticket cell, baseline cell) pairs. Both are PGD-AT whatever searched the ticket."""
    names = baseline_names(preset)
    cells: dict[Path, Any] = {}
    per_ticket: list[tuple[Any, Any]] = []  # (ticket cell, baseline cell)
    for ticket in tickets:
        seed = ticket.values["seed"]
        if "size-matched" in names:
            spec = RunDir(ticket.out).read_config()["model"]
            key, size, _ = size_matched(spec, run_nonzero(ticket.out))
            config = seeded(config_with_size(_dense(preset["base"]), key, size), seed)
            out = runs / f"matched-dense-{key.rsplit('.', 1)[-1]}-{safe_name(size)}{seed_suffix(seed)}"
            cell = cells.setdefault(out, Cell(name=_named(f"{MATCHED} {key}={size:g}", seed), kind="train",
                                              config=config, out=out, values={"seed": seed, "series": MATCHED}))
            per_ticket.append((ticket, cell))
        if "random-mask" in names:
            shape = {k: v for k, v in ticket.config["ticket"].items() if k not in ("init", "weight_seed")}
            tag = "-".join(safe_name(shape[k]) for k in sorted(shape))
            out = runs / f"random-mask-{tag}{seed_suffix(seed)}"
            config = {**seeded(_dense(preset["base"]), seed),
                      "finetune": {"ticket": str(ticket.out), "weights": "reinit", "mask": "random"}}
            cell = cells.setdefault(out, Cell(name=_named(f"{RANDOM} {tag}", seed), kind="finetune",
                                              config=config, out=out, values={"seed": seed, "series": RANDOM}))
            per_ticket.append((ticket, cell))
    return list(cells.values()), per_ticket


@dataclass
class Measured:
    """One finished run's figures: test clean, robust (the worst case over its test attacks, which
    `attack` names) and cross-entropy PGD alone (`pgd`), the validation robust accuracy at the
    selected checkpoint, and its non-zero conv and linear weights."""

    clean: float
    robust: float
    val: float | None
    nonzero: int
    pgd: float | None = None
    attack: str = "pgd-20"


def measured(run: Path) -> Measured:
    rd = RunDir(run)
    summary = rd.read_summary()
    if "test" not in summary:
        raise InbornError(f"run {str(run)!r} is not complete")
    selected = [m for m in rd.read_metrics() if m.get("epoch") == summary.get("best_epoch")]
    val = selected[0].get("val_robust_acc") if selected else None
    test = summary["test"]
    # A summary written before the worst case was reported tested cross-entropy PGD alone.
    attack = test.get("attack", "pgd-20")
    each = test.get("per_attack") or {attack: test["robust_acc"]}
    pgd = next((v for k, v in each.items() if k.startswith("pgd-")), None)
    return Measured(test["clean_acc"], test["robust_acc"], val, run_nonzero(run), pgd, attack)


def attack_label(attack: str) -> str:
    """A summary's test attack for a table: `pgd-20+cw-20` -> `worst of PGD-20, CW-20`."""
    parts = [a.upper() if a == "autoattack" else a.replace("pgd", "PGD").replace("cw", "CW").replace("eot-", "EOT-")
             for a in attack.split("+")]
    return parts[0] if len(parts) == 1 else "worst of " + ", ".join(parts)


def study_attack(table: dict[Any, dict[str, Series]], *baselines: Series) -> str:
    """The test attack every run of a study reports (named once), or each one found."""
    found = {m.attack for series in [*(s for row in table.values() for s in row.values()), *baselines]
             for m in series.runs}
    return " / ".join(attack_label(a) for a in sorted(found)) or "PGD-20"


@dataclass
class Series:
    """The repeats (one per seed) of one model in one row."""

    runs: list[Measured] = field(default_factory=list)

    def values(self, what: str) -> list[float]:
        return [getattr(m, what) for m in self.runs if getattr(m, what) is not None]

    def mean(self, what: str) -> float | None:
        vals = self.values(what)
        return mean_std(vals)[0] if vals else None


def _columns(name: str, series: Series) -> dict[str, Any]:
    """A series as CSV columns: non-zero weights, mean and std of clean, robust (the worst case)
    and cross-entropy PGD alone, mean val."""
    row: dict[str, Any] = {f"{name} non-zero": round(series.mean("nonzero"))}
    for what, label in (("clean", "clean"), ("robust", "robust"), ("pgd", "pgd"), ("val", "val robust")):
        vals = series.values(what)
        if vals:
            row[f"{name} {label}"], std = mean_std(vals)
            if len(series.runs) > 1 and what != "val":
                row[f"{name} {label} std"] = std
    return row


def run_ticket_study(preset: dict[str, Any], out: Path, *, run: Any, runs: Path | None = None) -> TicketStudy:
    """Run the cells through `run` (the sweep machinery) into `runs` (default out/runs) and write
    the tables and figure into `out`; returns the report text, its main table and rows."""
    runs = runs or out / "runs"
    vary = preset["vary"]
    tickets = search_cells(preset, runs)
    baselines = baseline_cells(preset, runs)
    naturals = natural_cells(preset, runs)
    run([*naturals, *baselines, *tickets])
    finetunes = finetune_cells(preset, tickets, runs)
    matched, per_ticket = matched_cells(preset, tickets, runs)
    if finetunes or matched:
        run([*finetunes, *matched])  # after the searches: each starts from a finished ticket

    table: dict[Any, dict[str, Series]] = {v: {} for v in preset["values"]}
    for cell in tickets:
        table[cell.values[vary]].setdefault("RST", Series()).runs.append(measured(cell.out))
    for cell in finetunes:
        table[cell.values[vary]].setdefault(cell.values["series"], Series()).runs.append(measured(cell.out))
    for ticket, cell in per_ticket:
        table[ticket.values[vary]].setdefault(cell.values["series"], Series()).runs.append(measured(cell.out))
    dense = Series([measured(c.out) for c in baselines])
    natural = Series([measured(c.out) for c in naturals])

    paper = {str(k): v for k, v in (preset.get("paper") or {}).items()}
    rows = []
    for value, series in table.items():
        row: dict[str, Any] = {vary: value, "seeds": len(series["RST"].runs)}
        for name, s in series.items():
            row.update(_columns(name, s))
        if str(value) in paper:  # the paper's figure is cross-entropy PGD-20: compared with ours alike
            row["paper robust %"] = paper[str(value)]
            row["ours - paper"] = 100 * (row.get("RST pgd") or row["RST robust"]) - paper[str(value)]
        rows.append(row)
    base_rows = [{"model": name, **{k.removeprefix(name + " "): v for k, v in _columns(name, series).items()}}
                 for name, series in ((NATURAL, natural), (DENSE, dense)) if series.runs]
    columns = list(dict.fromkeys(k for r in rows for k in r))
    out.mkdir(parents=True, exist_ok=True)
    write_csv(out / "table.csv", rows, columns)
    if base_rows:
        write_csv(out / "baselines.csv", base_rows, list(dict.fromkeys(k for r in base_rows for k in r)))
    attack = study_attack(table, dense, natural)
    plot_ticket_study(table, dense, vary, out / "figure.png", preset.get("title", ""), natural, attack)
    main_rows, main_columns = _display(table, vary, paper, attack)
    main_table = markdown_table(main_rows, main_columns)
    report = _report(preset, table, dense, natural, main_table, attack)
    return TicketStudy(rows, base_rows, report, main_table, select_best(table, dense, natural), table, dense,
                       natural)


def _robust_cells(s: Series, attack: str) -> dict[str, Any]:
    """Cross-entropy PGD-20 alone and the reported robust accuracy (the worst case), mean ± std."""
    cells = {"PGD-20": fmt_spread(s.values("pgd")) if s.values("pgd") else "-"}
    if attack != "PGD-20":
        cells[attack] = fmt_spread(s.values("robust"))
    return cells


def _display(table: dict[Any, dict[str, Series]], vary: str, paper: dict[str, Any],
             attack: str) -> tuple[list[dict], list[str]]:
    """The report's table: a row per value and model, with its non-zero weights, mean ± std of
    clean, PGD-20 and the worst case (test), and the validation robust accuracy the selection reads."""
    rows = []
    for value, series in table.items():
        for name, s in series.items():
            row: dict[str, Any] = {vary: value, "model": name, "non-zero": round(s.mean("nonzero")),
                                   "clean": fmt_spread(s.values("clean")), **_robust_cells(s, attack),
                                   "val PGD-10": s.mean("val")}
            if name == "RST" and str(value) in paper:
                row["paper PGD-20 %"] = paper[str(value)]
            rows.append(row)
    return rows, list(dict.fromkeys(k for r in rows for k in r))


@dataclass(frozen=True, eq=False)  # equality is the view's: the same dict, the same selection
class Selection(ResultView):
    """The best ticket chosen on validation robust accuracy (mean over seeds): its value of the
    varied setting, validation and test robust accuracy, its ratio to dense PGD-AT, and the share
    of what PGD-AT adds above natural training that it recovers,
    (ticket − natural) / (dense − natural); the one chosen on test beside it, for the record only
    (optimistic)."""

    value: Any
    val: float
    robust: float
    test_value: Any
    test_robust: float
    dense: float | None
    ratio: float | None = None
    test_ratio: float | None = None
    natural: float | None = None
    gain: float | None = None


@dataclass(eq=False)
class TicketStudy(ResultView):
    """A ticket study's results: the table's rows (and the dense baseline's), the report and its main
    table, the selection, and the measured series per value and model."""

    rows: list[dict[str, Any]]
    baselines: list[dict[str, Any]]
    report: str
    main_table: str
    selection: Selection
    table: dict[Any, dict[str, Series]]
    dense: Series
    natural: Series = field(default_factory=Series)


def gain_over_floor(ticket: float, dense: float | None, natural: float | None) -> float | None:
    """(ticket − natural) / (dense − natural): the share of PGD-AT's gain over natural training
    that the ticket recovers; None without both baselines or when PGD-AT gains nothing."""
    if dense is None or natural is None or dense - natural <= 1e-9:
        return None
    return (ticket - natural) / (dense - natural)


def select_best(table: dict[Any, dict[str, Series]], dense: Series, natural: Series | None = None) -> Selection:
    """The best ticket chosen on validation robust accuracy (see Selection)."""
    rst = {v: s["RST"] for v, s in table.items()}
    if any(s.mean("val") is None for s in rst.values()):
        raise InbornError("a ticket run has no validation robust accuracy to select on (validation split empty?)")
    by_val = max(rst, key=lambda v: rst[v].mean("val"))
    by_test = max(rst, key=lambda v: rst[v].mean("robust"))
    d = dense.mean("robust") if dense.runs else None
    floor = natural.mean("robust") if natural is not None and natural.runs else None
    robust, test_robust = rst[by_val].mean("robust"), rst[by_test].mean("robust")
    return Selection(by_val, rst[by_val].mean("val"), robust, by_test, test_robust, d,
                     robust / d if d else None, test_robust / d if d else None, floor,
                     gain_over_floor(robust, d, floor))


def _report(preset: dict[str, Any], table: dict[Any, dict[str, Series]], dense: Series, natural: Series,
            main_table: str, attack: str) -> str:
    base = preset["base"]
    vary = preset["vary"]
    seeds = study_seeds(preset)
    search_attack = "varied" if vary == "adv" else f"`{base.get('adv', 'pgd')}`"
    seed_text = (f"each cell run with seeds {', '.join(map(str, seeds))} (the frozen weights, the split, the data "
                 "order and the dense networks' init), figures mean ± std over the seeds"
                 if seeds != [None] else "one run per cell (no seeds: orderings cannot be told from noise)")
    parts = [
        f"# {preset.get('title', preset['study'])}",
        "",
        f"Study `{preset['study']}` at `{preset['scale']}` scale: `{base['arch']}` (width "
        f"{base.get('width', 1.0):g}) on `{base['data']}`, ε = {base.get('eps', 'the data set default'):.4g} "
        f"(pixel units), {base['epochs']} epochs per run, search attack {search_attack}; {seed_text}. "
        f"Test figures are on the test split at the checkpoint selected on validation robust accuracy "
        f"(PGD-10): robust accuracy is {attack} per point (the figure every comparison below uses), with "
        "cross-entropy PGD-20 alone beside it (the paper's protocol; it overstates sparse tickets). `non-zero` "
        "counts the conv and linear weights a model computes with.",
        "",
        "![figure](figure.png)",
        "",
        main_table,
    ]
    base_rows = [{"model": name, "non-zero": round(series.mean("nonzero")), "clean": fmt_spread(series.values("clean")),
                  **_robust_cells(series, attack)} for name, series in ((NATURAL, natural), (DENSE, dense))
                 if series.runs]
    if base_rows:
        parts += ["", "Baselines (same network, same epochs):", "",
                  markdown_table(base_rows, list(dict.fromkeys(k for r in base_rows for k in r)))]
    parts += ["", *_selection_lines(table, dense, natural, vary, attack)]
    orderings = _orderings(preset, table, dense, natural, attack)
    if orderings:
        parts += ["", f"Orderings ({attack} on test; beyond the spread: the intervals mean ± std do not overlap):",
                  "", *[f"- {line}" for line in orderings]]
    if preset.get("paper") and not any(str(v) in {str(k) for k in preset["paper"]} for v in table):
        parts += ["", "The paper's figures (not comparable at this scale): "
                  + ", ".join(f"{k}: {v}" for k, v in preset["paper"].items())]
    parts += ["", "Files: `table.csv`" + (", `baselines.csv`" if base_rows else "") + ", `figure.png`.", ""]
    return "\n".join(parts)


def _selection_lines(table: dict[Any, dict[str, Series]], dense: Series, natural: Series, vary: str,
                     attack: str) -> list[str]:
    sel = select_best(table, dense, natural)
    test = fmt_spread(table[sel.value]["RST"].values("robust"))
    lines = [f"Best ticket, chosen on validation robust accuracy: {vary} = {sel.value} "
             f"(validation PGD-10 {sel.val:.3f}); its test {attack} {test}."]
    if sel.dense:
        lines += ["", f"Best ticket / dense PGD-AT (robust, test; ticket chosen on validation): "
                      f"{sel.robust:.3f} / {sel.dense:.3f} = {sel.ratio:.2f}."]
    if sel.gain is not None:
        lines += ["", f"Above the natural-training floor ({NATURAL} keeps {sel.natural:.3f} for free): "
                      f"({sel.robust:.3f} − {sel.natural:.3f}) / ({sel.dense:.3f} − {sel.natural:.3f}) = "
                      f"{sel.gain:.2f} of what PGD-AT adds."]
    elif sel.natural is not None and sel.dense is not None:
        lines += ["", f"Dense PGD-AT ({sel.dense:.3f}) is no more robust than {NATURAL} ({sel.natural:.3f}): "
                      "there is no gain above the floor to measure the ticket against."]
    if sel.dense and sel.test_value != sel.value:
        lines += ["", f"Selected on test (optimistic): {vary} = {sel.test_value}, "
                      f"{sel.test_robust:.3f} / {sel.dense:.3f} = {sel.test_ratio:.2f}."]
    return lines


def _orderings(preset: dict[str, Any], table: dict[Any, dict[str, Series]], dense: Series, natural: Series,
               attack: str) -> list[str]:
    """The orderings the report states, each with whether it holds beyond the spread: the values
    in the paper's order where the preset gives one (`order`) else ranked by our means, then the
    best ticket against each baseline, and fine-tuning from inherited against fresh weights."""
    vary = preset["vary"]
    rst = {v: s["RST"].values("robust") for v, s in table.items()}
    lines = []
    if not all(isinstance(v, int | float) for v in rst):  # a categorical setting: its ranking is the claim
        order = [v for v in preset.get("order", []) if v in rst] or sorted(rst, key=lambda v: -mean_std(rst[v])[0])
        for a, b in zip(order, order[1:], strict=False):
            lines.append(ordering_sentence(f"RST {vary}={a}", rst[a], f"RST {vary}={b}", rst[b], attack))
    best = select_best(table, dense).value
    for name in (MATCHED, RANDOM):
        if name in table[best]:
            other = table[best][name].values("robust")
            lines.append(ordering_sentence(f"the best ticket ({vary}={best})", rst[best], name, other, attack))
    for name, series in ((DENSE, dense), (NATURAL, natural)):
        if series.runs:
            lines.append(ordering_sentence(f"the best ticket ({vary}={best})", rst[best], name,
                                           series.values("robust"), attack))
    for value, series in table.items():
        if "ft-inherit" in series and "ft-reinit" in series:
            lines.append(ordering_sentence(f"ft-inherit at {vary}={value}", series["ft-inherit"].values("robust"),
                                           "ft-reinit", series["ft-reinit"].values("robust"), attack))
    return lines


def plot_ticket_study(table: dict[Any, dict[str, Series]], dense: Series, vary: str, path: Path, title: str,
                      natural: Series | None = None, attack: str = "PGD-20") -> None:
    """Robust and natural accuracy against the varied setting (error bars: std over seeds), the
    dense baseline dashed with its spread shaded, natural training's robust accuracy (the floor)
    dotted."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    values = list(table)
    numeric = all(isinstance(v, int | float) for v in values)
    xs = values if numeric else list(range(len(values)))
    fig, ax = plt.subplots(figsize=(7.8, 4.2))
    names = list(dict.fromkeys(n for s in table.values() for n in s))
    for i, name in enumerate(names):
        color = f"C{i}"
        points = [(x, table[v][name]) for x, v in zip(xs, values, strict=True) if name in table[v]]
        px = [x for x, _ in points]
        for what, marker, style, label in (("robust", "o", "-", f"robust ({attack})"), ("clean", "s", ":", "clean")):
            stats = [mean_std(s.values(what)) for _, s in points]
            ax.errorbar(px, [m for m, _ in stats], yerr=[sd for _, sd in stats], marker=marker, linestyle=style,
                        color=color, capsize=3, label=f"{name} {label}")
    lines = [(dense, "robust", "black", "--", f"{DENSE} robust"), (dense, "clean", "gray", "--", f"{DENSE} clean")]
    lines += [(natural, "robust", "tab:brown", "-.", f"{NATURAL} robust (the floor)")] if natural is not None else []
    for series, what, color, style, label in lines:
        if series.runs:
            m, sd = mean_std(series.values(what))
            ax.axhline(m, color=color, linestyle=style, linewidth=1, label=label)
            if sd > 0:
                ax.axhspan(m - sd, m + sd, color=color, alpha=0.12, linewidth=0)
    if numeric and max(values) / max(min(values), 1e-9) >= 10:
        ax.set_xscale("log")
        ax.minorticks_off()  # a log axis's own minor labels collide (2x10^-1 3x10^-1 ...)
    ax.set_xticks(xs, [f"{v:g}" if numeric else str(v) for v in values])  # the measured points only
    ax.set_xlabel(vary)
    ax.set_ylabel("test accuracy")
    ax.set_ylim(0, 1.02)
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.02, 0.5))  # outside: never over a point
    fig.tight_layout()
    save_figure(fig, path, dpi=120, tight=True)
    plt.close(fig)

