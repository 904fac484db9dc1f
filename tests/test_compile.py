"""`--compile`: torch.compile in place gives eager's figures and eager's checkpoint keys (issue 26)."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn as nn

from inborn.device import compile_model, compiled
from inborn.errors import InbornError
from inborn.masks import masked_layers, to_supermask


def _tiny_ticket() -> nn.Module:
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1, bias=False), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(),
                        nn.Linear(4 * 6 * 6, 3, bias=False))
    return to_supermask(net, 0.5)


@pytest.fixture
def dynamo_reset():
    torch._dynamo.reset()
    yield
    torch._dynamo.reset()


def test_compiled_search_steps_match_eager_and_save_eager_keys(dynamo_reset):
    """Three batches of the training loop's search step (PGD-2 with the scores frozen, then the
    training step; the masks move between batches): the same losses, masks, scores and running
    statistics as eager. About 35 s of compiling on CPU, 5 s with inductor's cache warm."""
    from torch._dynamo.utils import counters

    from inborn.train.config import TrainConfig
    from inborn.train.loop import _pgd_step, _trainer

    eager = _tiny_ticket()
    model = copy.deepcopy(eager)
    assert compile_model(model) is model
    keys = list(eager.state_dict())
    g = torch.Generator().manual_seed(1)
    x, y = torch.rand(5, 1, 6, 6, generator=g), torch.tensor([0, 1, 2, 0, 1])
    cfg = TrainConfig(adv="pgd", adv_steps=2, lr=1.0, eps=0.1, amp=False)
    trainers = [_trainer(cfg, net, 0.1) for net in (eager, model)]
    masks_before = [m.compute_mask() for m in masked_layers(eager)]
    for step in range(3):
        losses = []
        for t in trainers:
            torch.manual_seed(step)  # the attack's random start
            t.model.train()
            losses.append(_pgd_step(t, x, y, 0.1, 1.0)[0].item())
        assert losses[1] == pytest.approx(losses[0], rel=1e-5)
        for a, b in zip(masked_layers(eager), masked_layers(model), strict=True):
            assert torch.equal(a.compute_mask(), b.compute_mask())
            torch.testing.assert_close(b.scores, a.scores, rtol=1e-5, atol=1e-6)
    assert counters["stats"]["unique_graphs"] >= 1  # it did compile
    moved = sum(int((a != m.compute_mask()).sum()) for a, m in zip(masks_before, masked_layers(eager), strict=True))
    assert moved > 0  # the masks changed: a mask baked into the compiled code would have shown
    for a, b in zip(eager.buffers(), model.buffers(), strict=True):  # BatchNorm's running statistics
        torch.testing.assert_close(b, a, rtol=1e-5, atol=1e-6)
    # Checkpoints: the eager keys (no `_orig_mod.`), loading into a fresh eager model.
    assert list(model.state_dict()) == keys
    fresh = _tiny_ticket()
    fresh.load_state_dict(model.state_dict())
    assert all(torch.equal(a, b) for a, b in zip(fresh.state_dict().values(), model.state_dict().values(),
                                                  strict=True))
    # A copy is eager (nn.Module drops the compiled call when pickled or copied).
    assert copy.deepcopy(model)._compiled_call_impl is None


def test_compiled_is_undone_after_the_block():
    model = nn.Linear(2, 2)
    with compiled(model, enabled=False):
        assert model._compiled_call_impl is None
    with compiled(model) as inside:
        assert inside is model and model._compiled_call_impl is not None
    assert model._compiled_call_impl is None  # the caller's model is eager again (nothing was called: no compile)
    compile_model(model)
    kept = model._compiled_call_impl
    with compiled(model):
        pass
    assert model._compiled_call_impl is kept  # compiled before: left compiled


def test_compile_is_one_setting_for_train_search_and_eval():
    import argparse

    from inborn.cli import evaluate as eval_cli
    from inborn.cli import search as search_cli
    from inborn.cli import train as train_cli
    from inborn.settings import settings_of
    from inborn.train.config import TrainConfig

    setting = next(s for s in settings_of(TrainConfig) if s.name == "compile")
    assert setting.default is False and setting.flag == "--compile" and setting.help
    for module in (train_cli, search_cli, eval_cli):
        parser = argparse.ArgumentParser()
        module.add_parser(parser.add_subparsers())
        helps = {a.help for sub in parser._subparsers._group_actions[0].choices.values() for a in sub._actions
                 if "--compile" in a.option_strings}
        assert helps == {setting.help}, module.__name__


def test_a_compiled_evaluation_gives_the_eager_figures(dynamo_reset):
    from torch._dynamo.utils import counters

    from helpers import Linear
    from inborn.evaluation.evaluate import evaluate

    model = Linear(16, 3).eval()
    g = torch.Generator().manual_seed(2)
    data = (torch.rand(12, 1, 4, 4, generator=g), torch.randint(0, 3, (12,), generator=g))
    settings = dict(attacks=["pgd"], eps=[0.5], steps=3, batch_size=6, identify=False)
    eager = evaluate(model, data, **settings)
    fast = evaluate(model, data, compile=True, **settings)
    assert counters["stats"]["unique_graphs"] >= 1  # it did compile
    assert model._compiled_call_impl is None  # the caller's model is left eager
    assert fast.to_dict()["results"] == eager.to_dict()["results"]
    assert eager.clean_acc > 0 and eager.results[0].robust_acc < eager.clean_acc  # the attack did something
    with pytest.raises(InbornError):
        evaluate(model, data, compile="yes", **settings)


def test_compile_keeps_shapes_static(monkeypatch):
    """torch's automatic dynamic shapes recompiled a second batch size (an epoch's last batch, early
    stop's shrinking batch) with symbolic sizes, which inductor 2.13 failed to lower on the CPU
    (benchmarks/compile_speed.py with two models in one process): inborn compiles static graphs."""
    seen = {}
    monkeypatch.setattr(nn.Module, "compile", lambda self, **kw: seen.update(kw))
    compile_model(nn.Linear(2, 2))
    assert seen == {"dynamic": False}
