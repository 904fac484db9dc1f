"""Figures a person would rather look at than read."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from inborn.io import save_figure
from inborn.tables import result_column
from inborn.train.curves import plot_training_curves

__all__ = ["plot_r2s", "plot_robustness_curve", "plot_runs_val_robust", "plot_study_curves", "plot_training_curves",
           "plot_transfer_heatmap"]


def plot_robustness_curve(result: dict[str, Any], path: str | Path, title: str = "") -> None:
    """Robust accuracy against ε, one line per attack plus the per-sample worst case."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 4))
    attacks = list(dict.fromkeys(r["attack"] for r in result["results"]))
    for name in attacks:
        pts = sorted((r["eps"], r["robust_acc"]) for r in result["results"] if r["attack"] == name)
        ax.plot(*zip(*pts, strict=True), marker="o", label=name)
    if len(attacks) > 1:
        pts = sorted((w["eps"], w["robust_acc"]) for w in result["worst_case"])
        ax.plot(*zip(*pts, strict=True), marker="s", linestyle="--", color="black", label="worst case")
    ax.axhline(result["clean_acc"], color="gray", linestyle=":", label="clean")
    ax.set_xlabel("ε (pixel units, L-inf)")
    ax.set_ylabel("accuracy")
    ax.set_ylim(0, 1.02)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    save_figure(fig, path, dpi=120)
    plt.close(fig)


def plot_transfer_heatmap(result: dict[str, Any], path: str | Path) -> None:
    """The k×k transfer matrix: rows are source tickets, columns target tickets."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    matrix = result["matrix"]
    labels = [f"{k:g}" for k in result["keep_ratios"]]
    k = len(labels)
    # At least wide enough for the title: a matrix of 3 tickets would clip it.
    fig, ax = plt.subplots(figsize=(max(4.8, 1.0 + 0.75 * k), max(3.6, 0.8 + 0.7 * k)))
    image = ax.imshow(matrix, vmin=0, vmax=1, cmap="viridis")
    for i in range(k):
        for j in range(k):
            ax.text(j, i, f"{100 * matrix[i][j]:.1f}", ha="center", va="center",
                    color="white" if matrix[i][j] < 0.6 else "black", fontsize=8)
    ax.set_xticks(range(k), labels)
    ax.set_yticks(range(k), labels)
    ax.set_xlabel("target ticket (keep ratio)")
    ax.set_ylabel("source ticket (keep ratio)")
    ax.set_title(f"accuracy on PGD-{result['steps']} examples, ε={result['eps']:.4g}")
    fig.colorbar(image, ax=ax, fraction=0.046)
    fig.tight_layout()
    save_figure(fig, path, dpi=120)
    plt.close(fig)


_FAMILY_STYLE = {"hand-crafted": "-", "NAS": "--", "random NAS": ":", "ensemble": "-", "ticket": "-."}


def plot_study_curves(rows: list[dict[str, Any]], attacks: list[str], eps: list[float], path: str | Path) -> None:
    """Robust accuracy against ε, one panel per attack and one line per model (style by family)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(attacks), figsize=(4.2 * len(attacks), 4), sharey=True, squeeze=False)
    for ax, attack in zip(axes[0], attacks, strict=True):
        for r in rows:
            pts = [(e, r.get(result_column(attack, e))) for e in eps]
            pts = [(e, v) for e, v in pts if v is not None]
            if not pts:
                continue
            family = r.get("family", "")
            ax.plot(*zip(*pts, strict=True), marker="o", markersize=3, linestyle=_FAMILY_STYLE.get(family, "-"),
                    linewidth=2.5 if family == "ensemble" else 1.3, color="black" if family == "ensemble" else None,
                    label=f"{r['model']} ({family})")
        ax.set_title(attack.upper())
        ax.set_xlabel("ε (pixel units, L-inf)")
        span = max(eps) - min(eps) or max(eps) or 1.0
        ax.set_xlim(min(eps) - 0.05 * span, max(eps) + 0.05 * span)  # one axis for every panel
        ax.set_ylim(0, 1.02)
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("robust accuracy")
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="center left", bbox_to_anchor=(1.0, 0.5), fontsize=8)
    fig.tight_layout()
    save_figure(fig, path, dpi=110, tight=True)
    plt.close(fig)


def plot_r2s(result: dict[str, Any], path: str | Path, references: list[dict[str, Any]] | None = None) -> None:
    """Robust accuracy of the switch per protocol (mean ± std over repeats) beside reference models.

    The paper's non-adaptive protocol is drawn apart from the adaptive ones, and the figure to cite
    (the minimum over the adaptive protocols) is the darkest bar: the picture says at a glance how
    much the paper's protocol overstates the defence. `references` are single models (the best
    ticket, dense PGD-AT): dicts with name, clean and robust.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    protos = result["protocols"]
    cite = (result.get("cite") or {}).get("protocol")
    steps, eot = result["steps"], result.get("eot_samples")
    # Each bar names its own attack: one axis label cannot (AutoAttack-rand is not PGD-20).
    attack_of = {"paper": f"PGD-{steps} on one drawn ticket", "eot": f"EOT-PGD-{steps} ({eot} samples)",
                 "expectation": f"PGD-{steps} on the expected logits", "autoattack-rand": "AutoAttack-rand"}
    bars = []  # (label, robust, std, clean, colour)
    for name, entry in protos.items():
        if name == "clean":
            continue
        colour = "#d98c2b" if name == "paper" else ("#1f4e99" if name == cite else "#7fa7d9")
        kind = "non-adaptive" if name == "paper" else ("adaptive, cited" if name == cite else "adaptive")
        bars.append((f"R2S, {attack_of.get(name, name)}\n({name}: {kind})", entry["mean"], entry.get("std", 0.0),
                     protos["clean"]["mean"], colour))
    for ref in references or []:
        bars.append((f"{ref['name']}\n(white-box PGD-{steps})", ref["robust"], 0.0, ref["clean"], "#6a9f58"))
    fig, ax = plt.subplots(figsize=(8.5, 0.62 * len(bars) + 1.6))
    ys = list(range(len(bars)))[::-1]
    pct = [(100 * b[1], 100 * b[2], 100 * b[3]) for b in bars]
    ax.barh(ys, [p[0] for p in pct], xerr=[p[1] for p in pct], color=[b[4] for b in bars], capsize=3)
    ax.scatter([p[2] for p in pct], ys, marker="|", s=250, color="black", zorder=3)
    for y_pos, (robust, std, _) in zip(ys, pct, strict=True):
        ax.text(min(robust + std + 1, 96), y_pos, f"{robust:.1f}", va="center", fontsize=8)
    ax.set_yticks(ys, [b[0] for b in bars], fontsize=7.5)
    ax.set_xlim(0, 105)
    ax.set_xlabel(f"robust accuracy (%) at ε = {result['eps']:.4g}, bars: mean ± std over repeats; | clean accuracy")
    ax.set_title(f"Random RST Switch over {len(result['keep_ratios'])} tickets, {result['n']} images, "
                 f"{result['repeats']} repeats", fontsize=9)
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    save_figure(fig, path, dpi=120, tight=True)
    plt.close(fig)


def plot_runs_val_robust(runs: list[tuple[str, list[dict[str, Any]]]], path: str | Path) -> None:
    """Several runs' validation robust accuracy per epoch on one figure (`inborn runs --plot`),
    each run's selected epoch marked with a star."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.5, 4))
    for label, history in runs:
        pts = [(h["epoch"] + 1, h["val_robust_acc"]) for h in history if h.get("val_robust_acc") is not None]
        if not pts:
            continue
        (line,) = ax.plot(*zip(*pts, strict=True), marker="o", markersize=3, label=label)
        best = max(pts, key=lambda p: p[1])
        ax.scatter([best[0]], [best[1]], marker="*", s=120, color=line.get_color(), zorder=3)
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("epoch")
    ax.set_ylabel("validation robust accuracy")
    ax.set_ylim(0, 1.02)
    ax.set_title("validation robust accuracy (★: best epoch)", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    save_figure(fig, path, dpi=110)
    plt.close(fig)
