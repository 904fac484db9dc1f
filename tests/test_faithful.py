"""Faithful details: the kept count against the authors' rule, the scaled-fan init, and the export's
non-zero count."""

from __future__ import annotations

import contextlib
import io
import math
from pathlib import Path

import pytest
import torch
import torch.nn as nn
import yaml

from inborn.cli import build_parser, main
from inborn.cli.search import search_config
from inborn.errors import InbornError
from inborn.masks import compute_masks, masked_layers, to_supermask
from inborn.masks.config import SupermaskConfig
from inborn.masks.init import random_weight
from inborn.masks.patterns import group_scores, kept_groups, layer_mask
from inborn.models import create_model
from inborn.spec.build import build_model, plain_spec
from inborn.spec.export import export_plain

KEEPS = (0.01, 0.05, 0.1, 0.3, 0.5, 0.7, 0.9)
# conv4 at width 0.5 on 28x28 grey images: its seven layers' weight counts.
CONV4_SIZES = (288, 9216, 18432, 36864, 401408, 16384, 1280)
FIXTURE = Path(__file__).parent / "fixtures" / "search-run-v0.1.0" / "config.yaml"


def authors_mask(scores: list[float], k: float) -> list[int]:
    """The authors' GetSubnet, re-typed from its description: sort the scores ascending, zero the
    lowest int((1 - k) * n), keep the rest."""
    n = len(scores)
    order = sorted(range(n), key=lambda i: scores[i])
    j = int((1 - k) * n)
    mask = [1] * n
    for i in order[:j]:
        mask[i] = 0
    return mask


def authors_count(n: int, k: float) -> int:
    return n - int((1 - k) * n)


def _net(arch: str = "conv4", width: float = 0.25) -> nn.Module:
    return create_model(arch, num_classes=10, in_channels=4, image_size=16, width=width)


def test_reference_count_is_the_authors_rule_over_many_layer_sizes():
    differ = 0
    for k in KEEPS:
        for n in (*range(1, 5001), *CONV4_SIZES):
            assert kept_groups(n, k, "reference") == authors_count(n, k), (n, k)
            assert kept_groups(n, k) == kept_groups(n, k, "round") == max(1, round(k * n)), (n, k)
            differ += kept_groups(n, k, "round") != kept_groups(n, k, "reference")
    assert differ > 1000  # the two rules do differ (by one, in about half the sizes), so this can fail
    assert kept_groups(288, 0.05, "round") == 14 and kept_groups(288, 0.05, "reference") == 15


@pytest.mark.parametrize("n", [1, 7, 21, 101, 288, 1280, 4999])
@pytest.mark.parametrize("k", KEEPS)
def test_reference_mask_is_the_authors_mask_when_scores_do_not_tie(n, k):
    scores = torch.randperm(n, generator=torch.Generator().manual_seed(n)).float() - n / 2  # distinct |scores|
    scores = scores + 0.25  # no zero, no ±x pair
    mask = layer_mask(scores, k, "element", count="reference")
    expected = authors_mask(scores.abs().tolist(), k)
    assert mask.tolist() == expected
    assert int(mask.sum()) == authors_count(n, k)


@pytest.mark.parametrize("pattern", ["element", "kernel", "filter"])
def test_keep_count_flows_from_the_config_to_every_layer(pattern):
    differ = 0
    for k in (0.05, 0.3, 0.7):
        ref = to_supermask(_net(), SupermaskConfig(keep_ratio=k, pattern=pattern, keep_count="reference"))
        rnd = to_supermask(_net(), SupermaskConfig(keep_ratio=k, pattern=pattern))
        for layer, mask, other in zip(masked_layers(ref), compute_masks(ref), compute_masks(rnd), strict=True):
            groups = group_scores(layer.scores, layer.pattern).numel()
            size = layer.weight.numel() // groups
            assert layer.keep_count == "reference"
            assert int(mask.sum()) == authors_count(groups, k) * size
            assert int(other.sum()) == max(1, round(k * groups)) * size
            differ += int(mask.sum()) != int(other.sum())
    assert differ > 0


def test_global_scope_applies_the_rule_to_the_total():
    total = sum(m.weight.numel() for m in masked_layers(to_supermask(_net(), 0.5)))
    differ = 0
    for k in KEEPS:
        kept = {}
        for count in ("round", "reference"):
            model = to_supermask(_net(), k, scope="global", keep_count=count)
            kept[count] = sum(int(m.sum()) for m in compute_masks(model))
        assert kept["reference"] == authors_count(total, k)
        assert kept["round"] == max(1, round(k * total))
        differ += kept["round"] != kept["reference"]
    assert differ > 0


def test_nm_patterns_ignore_the_keep_count():
    a = to_supermask(_net(), 0.5, pattern="2:4", keep_count="reference", dense_first=True)
    b = to_supermask(_net(), 0.5, pattern="2:4", dense_first=True)
    for ma, mb in zip(compute_masks(a), compute_masks(b), strict=True):
        assert torch.equal(ma, mb)
        assert int(ma.sum()) * 2 == ma.numel()


def test_a_config_written_before_the_setting_loads_with_round_and_bad_names_are_one_line_errors():
    written = yaml.safe_load(FIXTURE.read_text())["model"]["supermask"]
    assert "keep_count" not in written
    assert SupermaskConfig.from_dict(written).validate().keep_count == "round"
    cfg = SupermaskConfig(keep_ratio=0.2, keep_count="reference")
    assert SupermaskConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(InbornError, match="keep_count") as err:
        SupermaskConfig.from_dict({"keep_ratio": 0.2, "keep_count": "ceil"}).validate()
    assert "\n" not in str(err.value)
    with pytest.raises(InbornError, match="unknown keep count"):
        kept_groups(10, 0.1, "ceil")


def test_search_help_shows_the_flag_and_the_flag_sets_the_ticket():
    text = io.StringIO()
    with contextlib.redirect_stdout(text):
        assert main(["search", "--help"]) == 0
    shown = " ".join(text.getvalue().split())  # argparse wraps the help text
    assert "--keep-count {round,reference}" in shown
    assert "n − int((1−k)·n), as the authors' GetSubnet" in shown and "round (default)" in shown
    args = build_parser().parse_args(["search", "--keep", "0.1", "--keep-count", "reference", "--out", "x"])
    assert search_config(args).ticket.keep_count == "reference"
    args = build_parser().parse_args(["search", "--keep", "0.1", "--out", "x"])
    assert search_config(args).ticket.keep_count == "round"


def test_scale_fan_multiplies_the_fan_by_the_keep_ratio():
    shape = torch.Size((64, 32, 3, 3))  # fan_in 288
    gen = lambda: torch.Generator().manual_seed(0)  # noqa: E731
    plain = random_weight(shape, "signed_constant", gen())
    scaled = random_weight(shape, "signed_constant", gen(), keep_ratio=0.25, scale_fan=True)
    torch.testing.assert_close(plain.abs(), torch.full(shape, math.sqrt(2 / 288)))  # 1/12
    torch.testing.assert_close(scaled.abs(), torch.full(shape, math.sqrt(2 / (288 * 0.25))))  # 1/6: fan × keep
    assert torch.equal(plain.sign(), scaled.sign())
    normal = random_weight(shape, "kaiming_normal", gen(), keep_ratio=0.25, scale_fan=True)
    assert float(normal.std()) == pytest.approx(1 / 6, rel=0.03)  # 18,432 draws: the std's own error is ~0.5 %
    # The same through to_supermask: every masked layer's weights are ±√2/√(fan_in × keep).
    model = to_supermask(_net(), 0.3, scale_fan=True)
    for layer in masked_layers(model):
        fan_in = layer.weight[0].numel()
        torch.testing.assert_close(layer.weight.abs(), torch.full_like(layer.weight, math.sqrt(2 / (fan_in * 0.3))))


def test_export_counts_the_weights_the_network_computes_with():
    # conv2: BatchNorm (affine in the plain network: scales 1, shifts 0) and Linear biases (all zero),
    # a dense first layer (non-maskable, non-zero), the other layers masked.
    spec = {"arch": "conv2", "num_classes": 10, "in_channels": 1, "image_size": 8, "width": 0.25,
            "affine_bn": True, "mean": [0.0], "std": [1.0], "kwargs": {},
            "supermask": {"keep_ratio": 0.2, "dense_first": True}, "weights": "seed"}
    ticket = build_model(spec)
    tensors, report = export_plain(ticket, spec)
    plain = build_model(plain_spec(spec))
    names = [n for n, _ in plain.named_parameters()]
    masked = {f"{n}.weight" for n, m in ticket.named_modules() if m in set(masked_layers(ticket))}
    biases = [n for n in names if n.endswith(".bias")]
    assert biases and all(not tensors[n].any() for n in biases)  # the exported biases are all zero
    kept = sum(int(m.current_mask().sum()) for m in masked_layers(ticket))
    others = sum(int(tensors[n].count_nonzero()) for n in names if n not in masked)
    assert report["kept"] == kept
    assert report["nonzero"] == kept + others
    assert report["nonzero"] == sum(int(tensors[n].count_nonzero()) for n in names)
    # The former count (parameters − maskable + kept) counted every zero bias as a weight.
    assert report["parameters"] - report["maskable"] + kept - report["nonzero"] == sum(tensors[n].numel()
                                                                                     for n in biases)
    map_bits = sum(tensors[n].numel() for n in masked)  # every masked weight mixes zeros and non-zeros
    assert report["sparse_bytes"] == 4 * report["nonzero"] + math.ceil(map_bits / 8)
    assert report["compression"] == report["dense_bytes"] / report["sparse_bytes"]
