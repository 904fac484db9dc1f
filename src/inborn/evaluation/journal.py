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


def _encode(record: dict[str, Any]) -> dict[str, Any]:
    """Per-sample flags as strings of 0/1: compact, readable JSON."""
    def pack(flags: torch.Tensor) -> str:
        return "".join("1" if v else "0" for v in flags.tolist())

    return {**record, "clean": pack(record["clean"]), "robust": [pack(f) for f in record["robust"]]}


def _decode(record: dict[str, Any]) -> dict[str, Any]:
    def unpack(text: str) -> torch.Tensor:
        return torch.tensor([c == "1" for c in text], dtype=torch.bool)

    return {**record, "clean": unpack(record["clean"]), "robust": [unpack(f) for f in record["robust"]]}


class EvalJournal:
    """Finished batches of one evaluation (records of boolean tensors); with `path=None` it only
    keeps them in memory."""

    def __init__(self, path: str | Path | None, key: str) -> None:
        self.path = Path(path) if path is not None else None
        self.key = key
        self.batches: list[dict[str, Any]] = []
        self._encoded: list[dict[str, Any]] = []  # what the file holds, so a write encodes one batch
        if self.path is not None and self.path.exists():
            try:
                doc = json.loads(self.path.read_text())
                if isinstance(doc, dict) and doc.get("fingerprint") == key:
                    self.batches = [_decode(r) for r in doc["batches"]]
                    self._encoded = doc["batches"]
            except (OSError, ValueError, KeyError, TypeError):
                self.batches, self._encoded = [], []  # a torn or foreign file: start over

    def __len__(self) -> int:
        return len(self.batches)

    def record(self, batch: dict[str, Any]) -> None:
        self.batches.append(batch)
        if self.path is not None:
            self._encoded.append(_encode(batch))
            atomic_write_json(self.path, {"fingerprint": self.key, "batches": self._encoded})

    def close(self) -> None:
        """The evaluation is complete: its results live elsewhere now."""
        if self.path is not None:
            self.path.unlink(missing_ok=True)
