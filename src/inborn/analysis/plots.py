"""Figures a person would rather look at than read."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from inborn.io import atomic_write


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
    atomic_write(path, lambda p: fig.savefig(p, format="png", dpi=120))
    plt.close(fig)
