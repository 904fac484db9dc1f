"""`curves.png` of a training run, redrawn after every epoch from its history (metrics.jsonl):
loss and accuracy on train, clean and robust accuracy on validation, the selected epoch marked.

Here rather than in `analysis/` because the training loop draws it, and `train/` sits below
`analysis/` (docs/architecture.md); `analysis.plots` re-exports it.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

from inborn.interrupts import raise_if_stop_requested
from inborn.io import save_figure

CURVES = "curves.png"


def plot_training_curves(history: list[dict[str, Any]], path: str | Path, *, selected: int | None = None,
                         title: str = "") -> None:
    """Two panels over epochs (1-based): training loss, and accuracies (train, val clean, val robust,
    test robust when recorded); `selected` (0-based epoch) is marked on both."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = [h["epoch"] + 1 for h in history]
    fig, (loss_ax, acc_ax) = plt.subplots(1, 2, figsize=(10, 3.8))
    loss_ax.plot(epochs, [h["train_loss"] for h in history], marker="o", markersize=3, label="train loss")
    loss_ax.set_ylabel("loss (cross-entropy)")
    series = [("train_acc", "train (on its training examples)", "-"), ("val_clean_acc", "val clean", "-"),
              ("val_robust_acc", "val robust", "-"), ("test_robust_acc", "test robust (reference only)", ":")]
    for key, label, style in series:
        pts = [(h["epoch"] + 1, h[key]) for h in history if h.get(key) is not None]
        if pts:
            acc_ax.plot(*zip(*pts, strict=True), marker="o", markersize=3, linestyle=style, label=label)
    acc_ax.set_ylabel("accuracy")
    acc_ax.set_ylim(0, 1.02)
    if selected is not None and selected >= 0:
        for ax in (loss_ax, acc_ax):
            ax.axvline(selected + 1, color="black", linestyle="--", linewidth=1,
                       label=f"selected (epoch {selected + 1})")
    for ax in (loss_ax, acc_ax):
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
        if len(epochs) <= 12:
            ax.set_xticks(epochs)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    save_figure(fig, path, dpi=110)
    plt.close(fig)


def write_curves(run_path: str | Path, history: list[dict[str, Any]], selected: int | None, title: str) -> None:
    """Redraw the run's curves.png; a figure that cannot be drawn never stops training (a warning)."""
    try:
        plot_training_curves(history, Path(run_path) / CURVES, selected=selected, title=title)
    except Exception as e:  # matplotlib missing or broken: the run goes on, the metrics are in metrics.jsonl
        raise_if_stop_requested()  # unless a termination arrived while drawing (say, inside an import)
        warnings.warn(f"curves.png not drawn: {type(e).__name__}: {e}", stacklevel=2)
    raise_if_stop_requested()  # a termination the drawing code swallowed whole
