"""BatchNorm folding for evaluation: the same function, the model's own verdicts, never a changing mask frozen."""

from __future__ import annotations

import copy

import torch
import torch.nn as nn

from inborn.device import prepare_model
from inborn.evaluation.evaluate import evaluate
from inborn.masks import fix_masks, to_supermask
from inborn.models import create_model, kernels
from inborn.models.fold import EvalFolded, fold_batch_norm

CPU = torch.device("cpu")


def _conv4(**kw):
    torch.manual_seed(0)
    return create_model("conv4", num_classes=10, in_channels=1, image_size=16, width=0.25, mean=[0.3], std=[0.3], **kw)


def _with_statistics(model):
    """Running statistics that are not the identity, as after training."""
    model.train()
    with torch.no_grad():
        for _ in range(3):
            model(torch.rand(32, 1, 16, 16))
    return model.eval()


def test_folded_ticket_computes_the_same_logits():
    model = _with_statistics(prepare_model(to_supermask(_conv4(), 0.3), CPU))
    fix_masks(model)
    model.train()
    folded = fold_batch_norm(model)
    assert model.training  # folding copies: the model keeps its mode
    model.eval()
    assert isinstance(folded, EvalFolded)
    assert sum(isinstance(m, nn.BatchNorm2d) for m in folded.folded.modules()) == 0
    assert sum(isinstance(m, nn.BatchNorm2d) for m in model.modules()) == 4  # the model itself is untouched
    x = torch.rand(16, 1, 16, 16)
    with torch.no_grad():
        torch.testing.assert_close(folded(x), model(x), rtol=1e-4, atol=1e-5)
    assert not model.training
    folded.train()  # an attack asking for train mode gets the original network, in train mode
    assert not model.training  # the wrapper's mode never switches the caller's model
    with torch.no_grad():
        got = folded(x)
        assert not model.training
        model.train()
        assert torch.equal(got, model(x))


def test_nothing_to_fold_or_masks_that_may_change_leave_the_model_alone():
    assert fold_batch_norm(create_model("fc", num_classes=10, in_channels=1, image_size=8, width=0.25,
                                        mean=[0.3], std=[0.3])).__class__.__name__ != "EvalFolded"
    model = _with_statistics(_conv4())
    with kernels.stock():
        assert fold_batch_norm(model) is model
    ticket = to_supermask(_conv4(), 0.3, scope="global")  # a forward hook ranks all layers at once
    assert fold_batch_norm(ticket) is ticket
    holder = nn.Module()
    holder.family = copy.deepcopy(model)
    holder.family.select = lambda index: None  # anything that swaps tickets in
    assert fold_batch_norm(holder) is holder


def test_evaluation_with_folding_gives_the_unfolded_figures(digits_model):
    model, x, y = digits_model
    model = prepare_model(copy.deepcopy(model), CPU).eval()
    settings = dict(attacks=["pgd"], eps=[0.1], steps=10, n=len(x), batch_size=64, identify=False)
    folded_run = evaluate(model, (x, y), **settings)
    with kernels.stock():
        stock_run = evaluate(model, (x, y), **settings)
    assert folded_run["clean_acc"] == stock_run["clean_acc"]
    robust = [r["robust_acc"] for r in folded_run["results"]], [r["robust_acc"] for r in stock_run["results"]]
    assert abs(robust[0][0] - robust[1][0]) <= 2 / len(x)  # rounding may move a sample at a near-tie
