"""Supermasks: exact keep counts, the straight-through gradient, frozen weights, ticket files."""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn
from safetensors.torch import load_file

import inborn
from inborn.errors import InbornError
from inborn.masks import (
    compute_masks,
    mask_stats,
    masked_layers,
    reuse_masks,
    scores_frozen,
    to_supermask,
)
from inborn.masks.packing import pack_mask, unpack_mask
from inborn.masks.patterns import group_scores, kept_groups, top_k_mask
from inborn.masks.ticket import frozen_weight_names
from inborn.models import create_model
from inborn.store import ResultsDB
from inborn.train import TrainConfig, train


def _net(arch="conv4", width=0.25, channels=4):
    return create_model(arch, num_classes=10, in_channels=channels, image_size=16, width=width)


@pytest.mark.parametrize("pattern", ["element", "row", "kernel", "filter"])
@pytest.mark.parametrize("keep", [0.01, 0.1, 0.37, 1.0])
def test_each_layer_keeps_exactly_the_requested_share(pattern, keep):
    model = to_supermask(_net(), keep, pattern=pattern)
    for layer, mask in zip(masked_layers(model), compute_masks(model), strict=True):
        groups = group_scores(layer.scores, layer.pattern).numel()
        group_size = layer.weight.numel() // groups
        assert int(mask.sum()) == kept_groups(groups, keep) * group_size
        assert set(mask.unique().tolist()) <= {0.0, 1.0}


def test_filter_masks_never_drop_a_class():
    model = to_supermask(_net(), 0.3, pattern="filter")
    *hidden, classifier = masked_layers(model)
    assert classifier.pattern == "element" and all(layer.pattern == "filter" for layer in hidden)
    masks = compute_masks(model)
    assert all(int(m.flatten(1).any(1).sum()) < len(m) for m in masks[:-1])  # hidden filters are dropped whole
    assert masks[-1].any(1).all()  # but every class keeps some weights


def test_global_scope_keeps_exactly_the_share_in_total():
    model = to_supermask(_net(), 0.05, scope="global")
    masks = compute_masks(model)
    total = sum(m.numel() for m in masks)
    assert int(sum(m.sum() for m in masks)) == round(0.05 * total)
    per_layer = [float(m.mean()) for m in masks]
    assert max(per_layer) - min(per_layer) > 0.001  # a global ranking spreads unevenly over layers


def test_n_of_m_keeps_n_in_every_group_of_m_inputs():
    model = to_supermask(_net(channels=4), 0.5, pattern="2:4")
    for layer, mask in zip(masked_layers(model), compute_masks(model), strict=True):
        m = mask.permute(0, 2, 3, 1) if mask.dim() == 4 else mask
        assert torch.all(m.reshape(-1, 4).sum(1) == 2), layer.layer_name


def test_ties_are_broken_by_index():
    values = torch.tensor([1.0, 3.0, 3.0, 3.0, 0.5, 3.0])
    assert top_k_mask(values, 2).tolist() == [0, 1, 1, 0, 0, 0]
    assert top_k_mask(torch.ones(10), 3).tolist() == [1, 1, 1] + [0] * 7


def test_straight_through_gradient_reaches_the_scores():
    torch.manual_seed(0)
    layer = masked_layers(to_supermask(_net(), 0.3))[1]
    x = torch.rand(5, layer.in_channels, 8, 8)
    grad_out = torch.randn(5, layer.out_channels, 8, 8)
    # The gradient of the effective weight W ⊙ M, computed on a plain conv.
    w_eff = (layer.weight * layer.compute_mask()).detach().requires_grad_(True)
    out = nn.functional.conv2d(x, w_eff, None, layer.stride, layer.padding)
    g_w = torch.autograd.grad((out * grad_out).sum(), w_eff)[0]
    (layer(x) * grad_out).sum().backward()
    # Straight through the mask to |scores|: dL/ds = dL/dW_eff · W · sign(s), for kept and dropped weights alike.
    torch.testing.assert_close(layer.scores.grad, g_w * layer.weight * layer.scores.sign())
    assert layer.weight.grad is None


def test_attack_steps_take_no_gradient_to_scores_and_reuse_one_mask():
    model = to_supermask(_net(), 0.2)
    x = torch.rand(3, 4, 16, 16)
    calls = {"n": 0}
    for layer in masked_layers(model):
        original = layer.compute_mask

        def counting(original=original):
            calls["n"] += 1
            return original()

        layer.compute_mask = counting
    with reuse_masks(model):
        per_batch = calls["n"]
        with scores_frozen(model):
            for _ in range(5):
                model(x.requires_grad_(True)).sum().backward()
        assert calls["n"] == per_batch  # no mask recomputed during the five "attack steps"
    assert all(layer.scores.grad is None for layer in masked_layers(model))
    assert all(layer.scores.requires_grad for layer in masked_layers(model))


def test_bit_packing_round_trips():
    mask = (torch.rand(7, 5, 3, 3) < 0.3).float()
    packed = pack_mask(mask)
    assert packed.dtype == torch.uint8 and packed.numel() == -(-mask.numel() // 8)
    assert torch.equal(unpack_mask(packed, mask.shape), mask)


def test_non_affine_batchnorm_and_frozen_random_weights():
    model = to_supermask(_net(), 0.1, init="signed_constant")
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            assert m.weight is None and m.bias is None
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable and all(n.endswith("scores") for n in trainable)
    for layer in masked_layers(model):
        values = layer.weight.abs().unique()
        assert len(values) == 1  # signed constant: one magnitude per layer


def test_dense_first_and_last_stay_dense_and_frozen():
    model = to_supermask(_net(), 0.1, dense_first=True, dense_last=True)
    first, last = model.body[0], model.body[-1]
    assert type(first) is nn.Conv2d and type(last) is nn.Linear
    assert not first.weight.requires_grad and not last.weight.requires_grad


@pytest.mark.parametrize("kwargs, message", [
    ({"keep_ratio": 0.0}, "keep ratio must be in"),
    ({"keep_ratio": 1.5}, "keep ratio must be in"),
    ({"keep_ratio": 0.1, "pattern": "diagonal"}, "unknown mask pattern"),
    ({"keep_ratio": 0.1, "pattern": "2:4"}, "pass keep_ratio=0.5"),
    ({"keep_ratio": 0.1, "init": "zeros"}, "unknown weight init"),
    ({"keep_ratio": 0.1, "scope": "global", "pattern": "filter"}, "global scope"),
])
def test_bad_supermask_arguments(kwargs, message):
    with pytest.raises(InbornError, match=message):
        to_supermask(_net(), **kwargs)


def test_n_of_m_on_a_layer_whose_input_does_not_divide():
    with pytest.raises(InbornError, match="divisible by 4"):
        to_supermask(_net(channels=3), 0.5, pattern="2:4")


def test_search_keeps_weights_bit_identical_and_the_ticket_reloads(tmp_path):
    cfg = TrainConfig(data="digits", arch="conv2", width=0.25, epochs=2, batch_size=64, lr=0.1, adv="pgd",
                      eps=0.1, adv_steps=2, select_attack_steps=2, test_attack_steps=2,
                      ticket={"keep_ratio": 0.2, "weight_seed": 11})
    summary = train(cfg, tmp_path / "ticket", db=ResultsDB(tmp_path / "db"), progress=False)
    assert summary["ticket"]["kept"] == pytest.approx(0.2 * summary["ticket"]["maskable"], rel=0.01)

    model = inborn.load(tmp_path / "ticket")
    fresh = to_supermask(create_model("conv2", num_classes=10, in_channels=1, image_size=16, width=0.25), 0.2,
                         weight_seed=11)
    state, fresh_state = model.state_dict(), fresh.state_dict()
    for name in frozen_weight_names(fresh):
        assert torch.equal(state[name], fresh_state[name]), name
    # The scores did move, so the search learned a mask.
    assert any(not torch.equal(state[n], fresh_state[n]) for n in state if n.endswith("scores"))
    # The ticket file holds no weights, only scores, BN statistics and 1-bit masks.
    stored = load_file(tmp_path / "ticket/model.safetensors")
    assert not any(name in stored for name in frozen_weight_names(fresh))
    assert any(k.startswith("packed_mask::") for k in stored)
    stats = mask_stats(model)
    assert stats["kept"] == summary["ticket"]["kept"]
    # Masks are fixed in the loaded ticket: predictions do not depend on the scores any more.
    x = torch.rand(4, 1, 16, 16)
    before = model(x)
    for layer in masked_layers(model):
        layer.scores.data.normal_()
    torch.testing.assert_close(model(x), before)
