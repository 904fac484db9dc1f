"""A training run's resumable state: weights, buffers and SGD momentum, keyed by parameter name
(safetensors, no pickle), and the check that a checkpoint fits the run before anything is locked."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.nn as nn

from inborn.errors import InbornError
from inborn.store import RunDir


def training_state(model: nn.Module, opt: torch.optim.Optimizer) -> dict[str, torch.Tensor]:
    """Weights and buffers plus SGD momentum, keyed by parameter name."""
    tensors = {f"model.{k}": v for k, v in model.state_dict().items()}
    names = {id(p): n for n, p in model.named_parameters()}
    for group in opt.param_groups:
        for p in group["params"]:
            buf = opt.state.get(p, {}).get("momentum_buffer")
            if buf is not None:
                tensors[f"momentum.{names[id(p)]}"] = buf
    return tensors


def restore_training_state(model: nn.Module, opt: torch.optim.Optimizer, tensors: dict[str, torch.Tensor]) -> None:
    device = next(model.parameters()).device
    model.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model.")})
    params = dict(model.named_parameters())
    for key, buf in tensors.items():
        if key.startswith("momentum."):
            opt.state[params[key[9:]]]["momentum_buffer"] = buf.to(device)


def check_resumable(run: RunDir, build: Callable[[], tuple[nn.Module, dict[str, Any]]]) -> None:
    """A checkpoint to resume from must be inborn's and fit the run's model (`build()` makes it):
    checked from its header before the lock is taken, so a foreign or mismatched one changes no file."""
    found = run.checkpoint_shapes()
    if found is None:
        return
    shapes, _ = found
    model, spec = build()
    own = {f"model.{k}": tuple(v.shape) for k, v in model.state_dict().items()}
    stored = {k: v for k, v in shapes.items() if k.startswith("model.")}
    if own != stored:
        bad = sorted(set(own) ^ set(stored)) or sorted(k for k in own if own[k] != stored[k])
        raise InbornError(f"the checkpoint in {str(run.path)!r} does not fit the run's model ({spec.get('arch')}, "
                          f"width {spec.get('width')}): e.g. {bad[0]}")
