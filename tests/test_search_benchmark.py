"""The search benchmark's equivalence check tells a bug from rounding.

benchmarks/search_speed.py compares the optimised search loop with the reference loop run on
the same kernels (the twin), and the twin's kernels with stock PyTorch. Here each kind of bug
the check exists for is injected on a tiny model (a wrong mask, a missed gradient, a stale
batch mask into the optimised loop; a wrong kernel into both fast loops); each must fail the
check, and the honest loop must pass it.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from inborn.data import load_data
from inborn.masks import compute_masks, masked_layers, scores_frozen, to_supermask
from inborn.models import create_model, kernels

_PATH = Path(__file__).resolve().parents[1] / "benchmarks" / "search_speed.py"


def _load_benchmark():
    spec = importlib.util.spec_from_file_location("search_speed", _PATH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


bench = _load_benchmark()


@pytest.fixture(scope="module")
def setup():
    splits = load_data("digits", seed=0)
    info = splits.info
    gen = torch.Generator().manual_seed(0)
    batches = list(splits.train.batches(32, shuffle=True, generator=gen))[:4]
    torch.manual_seed(0)
    base = to_supermask(create_model("conv2", num_classes=10, in_channels=1, image_size=info.image_size,
                                     width=0.25, mean=info.mean, std=info.std), 0.05)
    return base, batches


def _compare(setup, **kw):
    base, batches = setup
    return bench.compare_loops(base, batches, eps=0.3, steps=3, **kw)


def test_honest_loop_passes(setup):
    out = _compare(setup)
    assert out["passed"], out["problems"]
    assert out["first_batch"]["masks_equal"]
    assert out["final"]["max_score_drift"] <= bench.MAX_SCORE_DRIFT
    assert len(out["ratios"]) == len(setup[1])
    assert set(out["split"]) == {"total", "loop", "kernels"}
    assert out["kernels"]["logit_diff"] <= bench.KERNEL_MAX_LOGIT_DIFF


def test_wrong_kernel_fails(setup, monkeypatch):
    """The fast convolution loses its last output row: the twin and the optimised loop share the
    bug and still agree with each other, so only the kernel check can see it."""
    import inborn.masks.layers as masked

    real = masked.conv2d

    def broken(x, w, b, *args, **kw):
        y = real(x, w, b, *args, **kw)
        if kernels.fast_enabled("conv"):
            y = y.clone()
            y[..., -1, :] = 0
        return y

    monkeypatch.setattr(masked, "conv2d", broken)
    out = _compare(setup)
    assert out["first_batch"]["masks_equal"] and out["first_batch"]["examples_equal"]
    assert not out["passed"]
    assert out["kernels"]["logit_diff"] > 100 * bench.KERNEL_MAX_LOGIT_DIFF


def test_wrong_mask_fails(setup):
    """Each layer keeps a few more weights than it should (an off-by-a-few top-k)."""

    def wrong_mask(model):
        for layer in masked_layers(model):
            layer.keep_ratio *= 1.02
        return model

    out = _compare(setup, prepare_optimised=wrong_mask)
    assert not out["passed"]
    assert not out["first_batch"]["masks_equal"]


def test_missed_gradient_fails(setup):
    """One layer's scores never receive their gradient."""

    def missed_gradient(model):
        masked_layers(model)[1].scores.requires_grad_(False)
        return model

    out = _compare(setup, prepare_optimised=missed_gradient)
    assert not out["passed"]
    assert out["first_batch"]["score_diff"] > bench.FIRST_BATCH_MAX_SCORE_DIFF


def test_stale_batch_mask_fails(setup):
    """The batch mask is computed once and never refreshed: the first batch is right, later ones
    search with the first batch's mask. Only the after-N part of the check can see it."""
    stale: dict[str, list[torch.Tensor]] = {}

    def stale_step(model, opt, x, y, attack):
        layers = masked_layers(model)
        stale.setdefault("masks", compute_masks(model))
        for layer, mask in zip(layers, stale["masks"], strict=True):
            layer._batch_mask = mask
        with scores_frozen(model):
            x_adv = attack(model, x, y)
        loss = F.cross_entropy(model(x_adv), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        for layer in layers:
            layer._batch_mask = None
        return x_adv

    out = _compare(setup, optimised=stale_step)
    assert out["first_batch"]["masks_equal"] and out["first_batch"]["examples_equal"]  # batch 1 looks right
    assert not out["passed"]
    assert out["final"]["max_score_drift"] > bench.MAX_SCORE_DRIFT


def test_rounding_alone_passes(setup):
    """A perturbation of the size of float32 rounding in the scores after batch 1 is not a bug."""

    def nudged_step(model, opt, x, y, attack):
        x_adv = bench.optimised_step(model, opt, x, y, attack)
        if not getattr(model, "_nudged", False):
            model._nudged = True
            with torch.no_grad():
                for layer in masked_layers(model):
                    layer.scores.mul_(1 + 1e-7)
        return x_adv

    out = _compare(setup, optimised=nudged_step)
    assert not out["first_batch"]["scores_equal"]
    assert out["passed"], out["problems"]
