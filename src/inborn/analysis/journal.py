"""The journal of an evaluation: every finished batch's per-sample results, written atomically
after the batch, so an evaluation killed mid-attack resumes at the batch it was on.

A journal belongs to one model and one set of settings (its fingerprint); a journal with another
fingerprint, or one that cannot be read, is ignored and overwritten, never trusted.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn

from inborn.io import atomic_write_json


def fingerprint(model: nn.Module, settings: dict[str, Any]) -> str:
    """A hash of the model's parameters and buffers and of the evaluation settings."""
    h = hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode())
    for name, tensor in model.state_dict().items():
        t = tensor.detach().cpu().contiguous().reshape(-1)
        h.update(f"{name}:{t.dtype}:{tuple(tensor.shape)}".encode())
        h.update(t.view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def pack_flags(flags: torch.Tensor) -> str:
    return "".join("1" if v else "0" for v in flags.tolist())


def unpack_flags(text: str) -> torch.Tensor:
    return torch.tensor([c == "1" for c in text], dtype=torch.bool)


class EvalJournal:
    """Finished batches of one evaluation; with `path=None` it only keeps them in memory."""

    def __init__(self, path: str | Path | None, key: str) -> None:
        self.path = Path(path) if path is not None else None
        self.key = key
        self.batches: list[dict[str, Any]] = []
        if self.path is not None and self.path.exists():
            try:
                doc = json.loads(self.path.read_text())
            except (OSError, ValueError):
                doc = None  # a torn or foreign file: start over
            if isinstance(doc, dict) and doc.get("fingerprint") == key and isinstance(doc.get("batches"), list):
                self.batches = doc["batches"]

    def __len__(self) -> int:
        return len(self.batches)

    def record(self, batch: dict[str, Any]) -> None:
        self.batches.append(batch)
        if self.path is not None:
            atomic_write_json(self.path, {"fingerprint": self.key, "batches": self.batches})

    def close(self) -> None:
        """The evaluation is complete: its results live elsewhere now."""
        if self.path is not None:
            self.path.unlink(missing_ok=True)
