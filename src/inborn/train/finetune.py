"""Starting points for training on a ticket's structure (fine-tuning and equal-size baselines).

weights="inherit": the ticket's own random weights, trained with its mask fixed (RST → PGD-AT).
weights="reinit":  fresh random weights under the ticket's mask (the ticket's structure alone).
weights="dense":   the whole network trained, starting from the masked weights.
mask="random":     a random mask at the ticket's keep ratio and pattern instead of the ticket's
                   (with reinit: PGD-AT of a random sparse network of the same size).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn as nn

from inborn.masks import compute_masks, fix_masks, masked_layers
from inborn.masks.init import random_weight
from inborn.runs import load
from inborn.spec import build_model, plain_spec
from inborn.spec.export import export_plain
from inborn.train.config import FinetuneConfig
from inborn.train.resolve import ticket_run_config


def finetune_start(settings: FinetuneConfig, seed: int) -> tuple[nn.Module, dict[str, Any]]:
    """The model to train and the spec it is saved under."""
    weights, mask = settings.weights, settings.mask
    spec = dict(ticket_run_config(settings.ticket)["model"])
    model = load(settings.ticket)
    gen = torch.Generator().manual_seed(10_007 + seed)
    if mask == "random":
        for layer in masked_layers(model):
            layer.fixed_mask = None
            layer.scores.data = torch.randn(layer.scores.shape, generator=gen).to(layer.scores.device)
        fix_masks(model, compute_masks(model))
    if weights == "dense":
        tensors, _ = export_plain(model, spec)
        spec = plain_spec(spec)
        dense = build_model(spec)
        dense.load_state_dict(tensors)
        return dense, spec
    for module in model.modules():
        if isinstance(module, nn.Conv2d | nn.Linear):
            if weights == "reinit":
                fresh = random_weight(module.weight.shape, "kaiming_normal", gen)
                module.weight.data = fresh.to(module.weight.device)
            module.weight.requires_grad_(True)
    for layer in masked_layers(model):
        layer.scores.requires_grad_(False)
    return model, {**spec, "weights": "stored"}
