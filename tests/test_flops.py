"""Model cost: MACs of one forward pass and parameter counts, checked against hand counts."""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn

from inborn.analysis.flops import count_flops, count_parameters
from inborn.errors import InbornError
from inborn.masks import masked_layers, to_supermask
from inborn.models import create_model


def _small() -> nn.Module:
    return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(),
                         nn.Linear(4 * 8 * 8, 10))


def test_macs_of_a_small_network_equal_the_hand_count():
    # conv: one MAC per output element per kernel entry; linear: in × out.
    conv = 8 * 8 * 4 * (1 * 3 * 3)
    linear = 4 * 8 * 8 * 10
    assert count_flops(_small(), (1, 8, 8)) == conv + linear
    assert count_flops(_small(), (1, 1, 8, 8)) == conv + linear


def test_counting_runs_in_eval_mode_and_restores_the_mode():
    model = _small().train()
    bn = model[1]
    before = bn.running_mean.clone()
    count_flops(model, (1, 8, 8))
    assert model.training and torch.equal(bn.running_mean, before)
    model.eval()
    count_flops(model, (1, 8, 8))
    assert not model.training


def test_one_image_only():
    with pytest.raises(InbornError, match="one image"):
        count_flops(_small(), (2, 1, 8, 8))


def test_fc_network_macs_and_parameters():
    model = create_model("fc", num_classes=10, in_channels=1, image_size=16, width=0.25)
    h1, h2 = 75, 25  # LeNet-300-100 at width 0.25
    assert count_flops(model, (1, 16, 16)) == 256 * h1 + h1 * h2 + h2 * 10
    assert count_parameters(model) == (256 + 1) * h1 + (h1 + 1) * h2 + (h2 + 1) * 10


def test_parameters_of_a_known_model():
    model = _small()
    assert count_parameters(model) == (9 * 4 + 4) + (4 + 4) + (256 * 10 + 10)
    shared = nn.Linear(3, 3)
    assert count_parameters(nn.Sequential(shared, shared)) == 12  # a shared tensor counts once


def test_kept_only_counts_the_kept_weights_of_masked_layers():
    dense = create_model("fc", num_classes=10, in_channels=1, image_size=16, width=0.25)
    model = to_supermask(dense, 0.1)
    layers = masked_layers(model)
    masked = sum(m.weight.numel() for m in layers)
    kept = sum(round(0.1 * m.weight.numel()) for m in layers)
    others = sum(p.numel() for n, p in model.named_parameters() if not n.endswith((".weight", ".scores")))
    assert count_parameters(model) == masked + others  # scores are not counted
    assert count_parameters(model, kept_only=True) == kept + others
    plain = create_model("fc", num_classes=10, in_channels=1, image_size=16, width=0.25)
    assert count_parameters(plain, kept_only=True) == count_parameters(plain)
