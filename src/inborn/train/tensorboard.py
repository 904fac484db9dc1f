"""TensorBoard logging of a run (`--log tensorboard`): the scalars of `metrics.jsonl`, per epoch,
as event files in RUN/tensorboard (`tensorboard --logdir RUN`), and the test figures at the end.

metrics.jsonl stays the record inborn reads; the events are for looking. A resumed run appends
to the same directory: TensorBoard shows each epoch once more with the resumed values, which are
those of the uninterrupted run.
"""

from __future__ import annotations

import importlib.util
import numbers
from pathlib import Path
from typing import Any

from inborn.errors import InbornError

LOGS = ("none", "tensorboard")
EVENTS_DIR = "tensorboard"


def check_log(log: str) -> None:
    """A one-line error before any write when the logger's package is missing (the name itself is
    one of LOGS: TrainConfig's choices)."""
    if log == "tensorboard" and importlib.util.find_spec("tensorboard") is None:
        raise InbornError("--log tensorboard needs the tensorboard package: pip install 'inborn[tensorboard]'")


class TensorBoardLog:
    """One SummaryWriter over the run's events directory."""

    def __init__(self, run_path: str | Path) -> None:
        from torch.utils.tensorboard import SummaryWriter

        self.writer = SummaryWriter(log_dir=str(Path(run_path) / EVENTS_DIR))

    def epoch(self, record: dict[str, Any]) -> None:
        """Every number of the epoch's metrics record, at step epoch + 1 (epochs counted from 1)."""
        step = int(record["epoch"]) + 1
        for key, value in record.items():
            if key != "epoch" and isinstance(value, numbers.Real) and not isinstance(value, bool):
                self.writer.add_scalar(f"epoch/{key}", float(value), step)
        self.writer.flush()

    def test(self, figures: dict[str, float], step: int) -> None:
        for key, value in figures.items():
            self.writer.add_scalar(f"test/{key}", float(value), step)
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()


def metrics_log(run_path: str | Path, log: str) -> TensorBoardLog | None:
    return TensorBoardLog(run_path) if log == "tensorboard" else None
