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
from inborn.masks.family import TicketFamily


def model_fingerprint(model: nn.Module) -> str:
    """A SHA-256 of the model's parameters and buffers (for a ticket family: of every ticket's
    masks and statistics too, which live outside the state dict)."""
    h = hashlib.sha256()
    for m in model.modules():
        if isinstance(m, TicketFamily):
            for t in m.tickets:
                h.update(f"ticket:{t.name}:{t.keep_ratio}".encode())
                for tensor in [*t.packed_masks, *(t.buffers[k] for k in sorted(t.buffers))]:
                    h.update(_bytes(tensor))
            m.select(0)  # the state dict holds the active ticket's statistics: make it the same one
    for name, tensor in model.state_dict().items():
        h.update(f"{name}:{tensor.dtype}:{tuple(tensor.shape)}".encode())
        h.update(_bytes(tensor))
    return h.hexdigest()


def fingerprint(model: nn.Module | str, settings: dict[str, Any]) -> str:
    """A hash of the model (or its `model_fingerprint`) and of the evaluation settings."""
    model_hash = model if isinstance(model, str) else model_fingerprint(model)
    text = json.dumps(settings, sort_keys=True, default=str) + model_hash
    return hashlib.sha256(text.encode()).hexdigest()


def _bytes(tensor: torch.Tensor) -> bytes:
    return tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes()


def pack_flags(flags: torch.Tensor) -> str | list[str]:
    """Per-sample flags as strings of 0/1 (one per repeat for a 2-D tensor): compact, readable JSON."""
    if flags.dim() == 2:
        return [pack_flags(row) for row in flags]  # type: ignore[misc]
    return "".join("1" if v else "0" for v in flags.tolist())


def unpack_flags(packed: str | list[str]) -> torch.Tensor:
    if isinstance(packed, list):
        return torch.stack([unpack_flags(row) for row in packed])
    return torch.tensor([c == "1" for c in packed], dtype=torch.bool)


def _encode(record: dict[str, Any]) -> dict[str, Any]:
    return {**record, "clean": pack_flags(record["clean"]), "robust": [pack_flags(f) for f in record["robust"]]}


def _decode(record: dict[str, Any]) -> dict[str, Any]:
    return {**record, "clean": unpack_flags(record["clean"]), "robust": [unpack_flags(f) for f in record["robust"]]}


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
            except (OSError, ValueError, KeyError, TypeError, AttributeError, IndexError):
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
