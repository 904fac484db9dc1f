"""Smoke runs (`--smoke`): every step of a run's real path (data, model, attacks, selection, test,
report) on a sliver of the data, and the measured time projected to the full run.

One epoch of 2 training batches, one validation batch and one test batch. On a CPU the batch is
cut to `CPU_BATCH` images, so that a paper-scale network (WRN-34-10, ResNet-18 with PGD-10) takes
seconds rather than minutes; the projection scales the measured time per image to the full data,
which is an estimate (a larger batch is usually faster per image, and on another device).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

from inborn.data import DataSplits
from inborn.train.config import TrainConfig

BATCHES = 2
CPU_BATCH = 8


def smoke_setup(cfg: TrainConfig, splits: DataSplits, device_type: str) -> tuple[TrainConfig, DataSplits,
                                                                                   dict[str, Any]]:
    """The smoke run's config and splits, and what the projection needs of the full run."""
    batch = cfg.batch_size if device_type == "cuda" else min(cfg.batch_size, CPU_BATCH)
    full = {"epochs": cfg.epochs, "batch_size": cfg.batch_size, "smoke_batch_size": batch,
            "train_images": len(splits.train), "val_images": len(splits.val), "test_images": len(splits.test),
            "batches_per_epoch": max(1, math.ceil(len(splits.train) / cfg.batch_size))}
    small = DataSplits(info=splits.info, train=splits.train.head(BATCHES * batch), val=splits.val.head(batch),
                       test=splits.test.head(batch))
    return dataclasses.replace(cfg, epochs=1, batch_size=batch), small, full


def projection(full: dict[str, Any], small: DataSplits, history: list[dict[str, Any]], total_seconds: float,
               ) -> dict[str, Any]:
    """Measured seconds per batch and image, and the projected seconds of a full epoch and run."""
    train_seconds = history[0]["seconds"]
    times = history[0].get("batch_seconds") or [train_seconds]
    # The last batch: the first pays for warm-up (allocation, kernel selection) once per run.
    per_image = times[-1] / max(1, min(full["smoke_batch_size"], len(small.train)))
    evaluated = len(small.val) + len(small.test)
    eval_per_image = max(0.0, total_seconds - train_seconds) / max(1, evaluated)
    epoch = per_image * full["train_images"] + eval_per_image * full["val_images"]
    run = epoch * full["epochs"] + eval_per_image * full["test_images"]
    return {**full, "measured_batches": len(times), "batch_seconds": times[-1], "first_batch_seconds": times[0],
            "seconds_per_train_image": per_image, "seconds_per_eval_image": eval_per_image,
            "projected_epoch_seconds": epoch, "projected_run_seconds": run}


def smoke_lines(smoke: dict[str, Any]) -> list[str]:
    """What `--smoke` prints."""
    cut = smoke["smoke_batch_size"] != smoke["batch_size"]
    note = f" (batch cut to {smoke['smoke_batch_size']} from {smoke['batch_size']} on this CPU)" if cut else ""
    return [
        f"smoke: {smoke['measured_batches']} batches of {smoke['smoke_batch_size']}{note}: "
        f"{smoke['batch_seconds']:.2f}s per batch, {smoke['seconds_per_train_image'] * 1000:.1f} ms per training "
        f"image, {smoke['seconds_per_eval_image'] * 1000:.1f} ms per evaluated image",
        f"smoke: projected here: {_duration(smoke['projected_epoch_seconds'])} per epoch "
        f"({smoke['batches_per_epoch']} batches of {smoke['batch_size']}), "
        f"{_duration(smoke['projected_run_seconds'])} for the full run ({smoke['epochs']} epochs)",
    ]


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f}s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def projection_line(what: str, seconds: float, done: int, total: int, repeats: int = 1) -> str:
    """A smoke's one line: what it ran, how long, and the time of the whole job projected from it
    (linear in images and repeats; attacks with early stop may end sooner)."""
    whole = seconds * (total / max(1, done)) * repeats
    return (f"smoke: {done} image{'s' if done != 1 else ''} took {_duration(seconds)} here; the whole {what} "
            f"would take about {_duration(whole)} here (nothing was written)")
