"""`inborn compare RUN...`: several runs' figures side by side, and their robust accuracy against ε.

A run's figures come from every place inborn keeps them: the results database, the run's
`eval.json` (its latest `inborn eval`) and its `summary.json` (the test figures at the end of
training or search). Only figures of the model as it is now count: the rows of the newest model
fingerprint, and the summary's (which describe the run's saved model). For each attack, its
step count and ε, the evaluation on the most images is taken, then the newest.

Nothing here builds or runs a model: an imported run's code is never imported to be compared.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from inborn.errors import InbornError
from inborn.evaluation.metrics import harmonic_robustness_score
from inborn.evaluation.results import check_evaluation_doc, evaluation_rows
from inborn.io import read_json, save_figure
from inborn.store import ResultsDB, RunDir
from inborn.store.run_dir import read_safetensors
from inborn.values import is_whole

WORST = "worst"


@dataclass
class Figure:
    """One figure of a run: an attack (or the worst case) at one ε."""

    column: str  # e.g. "pgd-20", "autoattack", "worst"
    eps: float
    robust_acc: float
    hrs: float
    clean_acc: float
    n: int
    created: float


@dataclass
class Compared:
    """A run as `inborn compare` shows it."""

    path: Path
    label: str
    kind: str
    arch: str
    data: str
    width: float | None
    keep_ratio: float | None
    nonzero: int | None
    figures: list[Figure] = field(default_factory=list)

    @property
    def clean_acc(self) -> float | None:
        best = max(self.figures, key=lambda f: (f.n, f.created), default=None)
        return None if best is None else best.clean_acc

    def eps_values(self) -> list[float]:
        return sorted({f.eps for f in self.figures})

    def worst(self, eps: float) -> Figure | None:
        """The lowest figure at `eps` among the evaluations on the most images there: a per-sample
        worst case where one evaluation ran the attacks that reach that low, else the lowest single
        attack (an upper bound of the worst case)."""
        at = [f for f in self.figures if f.eps == eps]
        most = max((f.n for f in at), default=0)
        return min((f for f in at if f.n == most), key=lambda f: (f.robust_acc, f.column != WORST), default=None)


def _column(attack: str, steps: int) -> str:
    if attack.startswith("worst:"):
        return WORST
    if "autoattack" in attack:  # its own iterations, not the step count recorded beside it
        return attack
    return f"{attack}-{steps}" if steps > 0 and not re.search(r"-\d+$", attack) else attack


def _rows(run: RunDir, db: ResultsDB | None) -> list[dict[str, Any]]:
    """The run's test-split rows from the database and its eval.json, each with a created time."""
    rows: list[dict[str, Any]] = []
    if db is not None and db.path.exists():
        rows += [dict(r) for r in db.results(run_path=str(run.path.resolve()), split="test")]
        if str(run.path) != str(run.path.resolve()):
            rows += [dict(r) for r in db.results(run_path=str(run.path), split="test")]
    eval_json = run.file("eval.json")
    if eval_json.exists():
        result = read_json(eval_json, "evaluation")
        check_evaluation_doc(result, eval_json)
        if result.get("split", "test") == "test":
            rows += [{**r, "created": eval_json.stat().st_mtime} for r in evaluation_rows(result, run.path, "test")]
    return rows


def _summary_figures(run: RunDir) -> list[Figure]:
    """The test figures a training or search left in summary.json (the worst case and each attack)."""
    if not run.file(RunDir.SUMMARY).exists():
        return []
    summary = run.read_summary()
    test, eps = summary.get("test"), summary.get("eps")
    if not isinstance(test, dict) or not isinstance(eps, int | float) or "robust_acc" not in test:
        return []
    created = run.file(RunDir.SUMMARY).stat().st_mtime
    common = {"eps": float(eps), "clean_acc": float(test["clean_acc"]), "n": int(test.get("n") or 0),
              "created": created}
    per_attack = test.get("per_attack") or {}
    hrs = harmonic_robustness_score
    figures = [Figure(column=name, robust_acc=float(acc), hrs=hrs(common["clean_acc"], float(acc)), **common)
               for name, acc in per_attack.items()]
    if len(per_attack) != 1:  # the worst case over several attacks, per sample (one attack: that attack's figure)
        column = WORST if per_attack else _column(str(test.get("attack", "pgd")), 0)
        figures.append(Figure(column=column, robust_acc=float(test["robust_acc"]), hrs=float(test["hrs"]), **common))
    return figures


def _figures(run: RunDir, db: ResultsDB | None) -> list[Figure]:
    # A family's transfer matrix measures its tickets against each other, not the run: left out.
    rows = [r for r in _rows(run, db) if not str(r["attack"]).startswith("transfer:")]
    fingerprints = [r for r in rows if r.get("fingerprint")]
    if fingerprints:  # only the model as it is now
        current = max(fingerprints, key=lambda r: float(r["created"]))["fingerprint"]
        rows = [r for r in rows if r.get("fingerprint") in ("", None, current)]
    figures = [Figure(column=_column(str(r["attack"]), int(r.get("steps") or 0)), eps=float(r["eps"]),
                      robust_acc=float(r["robust_acc"]), hrs=float(r["hrs"]), clean_acc=float(r["clean_acc"]),
                      n=int(r["n"]), created=float(r["created"])) for r in rows]
    figures += _summary_figures(run)
    chosen: dict[tuple[str, float], Figure] = {}
    for f in figures:  # per attack and ε: the most images, then the newest; per ε the lowest worst case
        key = (f.column, round(f.eps, 9))
        old = chosen.get(key)
        better = (f.n, -f.robust_acc) > (old.n, -old.robust_acc) if f.column == WORST and old else None
        if old is None or (better if better is not None else (f.n, f.created) > (old.n, old.created)):
            chosen[key] = f
    return sorted(chosen.values(), key=lambda f: (f.eps, f.column == WORST, f.column))


def _nonzero(run: RunDir, summary: dict[str, Any]) -> int | None:
    """Non-zero conv and linear weights, read from the model file (never by building the model):
    the weight matrices and kernels (tensors of 2 or more dimensions named `weight`, or a
    ticket's `scores`), less what a ticket's masks drop."""
    path = run.file(RunDir.MODEL)
    if not path.exists():
        return None
    tensors, _ = read_safetensors(path)
    matrices = {name: t for name, t in tensors.items() if t.dim() >= 2}
    ticket = summary.get("ticket")
    if isinstance(ticket, dict) and is_whole(ticket.get("kept")) and is_whole(ticket.get("maskable")):
        total = sum(t.numel() for name, t in matrices.items() if name.rsplit(".", 1)[-1] in ("weight", "scores"))
        return total - ticket["maskable"] + ticket["kept"]
    return sum(int(t.count_nonzero()) for name, t in matrices.items() if name.rsplit(".", 1)[-1] == "weight")


def compare_runs(paths: list[str | Path], db: ResultsDB | None = None) -> list[Compared]:
    """Every run's figures (see the module's docstring); a directory that is not a run, or a run
    with no test figure anywhere, is a one-line error naming it."""
    out = []
    unique = len({Path(p).resolve().name for p in paths}) == len(paths)
    if len({Path(p).resolve() for p in paths}) != len(paths):
        raise InbornError("a run is named twice: give each once")
    for p in paths:
        run = RunDir(p)
        doc = run.read_config()
        summary = run.read_summary() if run.file(RunDir.SUMMARY).exists() else {}
        cfg, spec = doc.get("config") or {}, doc.get("model") or {}
        figures = _figures(run, db)
        if not figures:
            raise InbornError(f"{str(p)!r} has no test figures (no evaluation in the results database or eval.json, "
                              f"and no test in summary.json): run `inborn eval {p}` first")
        ticket = summary.get("ticket") if isinstance(summary.get("ticket"), dict) else None
        kind = str(doc.get("kind") or "run")
        if ticket is not None and cfg.get("from_run"):
            kind += " (over trained weights)"
        out.append(Compared(path=run.path, label=run.path.resolve().name if unique else str(p), kind=kind,
                            arch=str(spec.get("arch", cfg.get("arch", "?"))), data=str(cfg.get("data", "?")),
                            width=spec.get("width"), keep_ratio=ticket.get("keep_ratio") if ticket else None,
                            nonzero=_nonzero(run, summary), figures=figures))
    return out


def _acc(x: float | None) -> str:
    return "" if x is None else f"{x:.4f}"


def comparison_rows(runs: list[Compared], csv: bool = False) -> list[dict[str, Any]]:
    """The table: a row per run; clean accuracy, n, keep ratio, non-zero weights, then every attack
    at every ε any run has, the worst case and its HRS. Blank where a run has no such figure."""
    columns = sorted({(f.eps, f.column) for r in runs for f in r.figures if f.column != WORST},
                     key=lambda c: (c[0], c[1]))
    eps_values = sorted({f.eps for r in runs for f in r.figures})
    rows = []
    for r in runs:
        by = {(f.eps, f.column): f for f in r.figures}
        ns = sorted({f.n for f in r.figures})
        row: dict[str, Any] = {
            "run": r.label, "kind": r.kind, "arch": r.arch, "data": r.data,
            "keep": "" if r.keep_ratio is None else f"{r.keep_ratio:g}",
            "non-zero": "" if r.nonzero is None else (r.nonzero if csv else f"{r.nonzero:,}"),
            "n": ns[0] if len(ns) == 1 else f"{ns[0]}-{ns[-1]}",
            "clean": _acc(r.clean_acc),
        }
        for eps, column in columns:
            f = by.get((eps, column))
            row[f"{column} ε={eps:.4g}"] = _acc(f.robust_acc if f else None)
        for eps in eps_values:
            w = r.worst(eps)
            row[f"worst ε={eps:.4g}"] = _acc(w.robust_acc if w else None)
            row[f"HRS ε={eps:.4g}"] = _acc(w.hrs if w else None)
        rows.append(row)
    return rows


def plot_comparison(runs: list[Compared], path: str | Path) -> None:
    """The runs' worst-case robust accuracy against ε on one figure, each run's clean accuracy dotted
    in its colour; a run measured at one ε is one marker."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for r in runs:
        pts = [(eps, r.worst(eps).robust_acc) for eps in r.eps_values()]
        label = f"{r.label} ({r.kind}" + (f", keep {r.keep_ratio:g})" if r.keep_ratio is not None else ")")
        (line,) = ax.plot(*zip(*pts, strict=True), marker="o", label=label)
        if r.clean_acc is not None:
            ax.axhline(r.clean_acc, color=line.get_color(), linestyle=":", linewidth=1)
    data = sorted({r.data for r in runs})
    ax.set_xlabel("ε (pixel units)")
    ax.set_ylabel("robust accuracy, worst case over the attacks run")
    ax.set_ylim(0, 1.02)
    ax.set_title(f"robust accuracy against ε on {', '.join(data)} (dotted: clean)", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    save_figure(fig, path, dpi=120)
    plt.close(fig)
