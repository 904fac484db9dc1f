"""`--compile`: torch.compile in place gives eager's figures and eager's checkpoint keys (issue 26)."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from inborn.device import compile_model, compiled
from inborn.errors import InbornError
from inborn.masks import masked_layers, reuse_masks, to_supermask


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


def test_a_compiled_search_step_matches_eager_and_saves_eager_keys(dynamo_reset):
    """One supermask training forward and backward (masks set once for the batch, as the loop
    does): the same logits, loss and score gradients as eager; about 20 s of compiling on CPU."""
    from torch._dynamo.utils import counters

    eager = _tiny_ticket()
    model = copy.deepcopy(eager)
    assert compile_model(model) is model
    keys = list(eager.state_dict())
    x = torch.rand(5, 1, 6, 6, generator=torch.Generator().manual_seed(1))
    y = torch.tensor([0, 1, 2, 0, 1])
    out = {}
    for name, net in (("eager", eager), ("compiled", model)):
        net.train()
        with reuse_masks(net):
            logits = net(x)
            loss = F.cross_entropy(logits, y)
            loss.backward()
        out[name] = (logits.detach(), loss.detach(), [m.scores.grad for m in masked_layers(net)])
    assert counters["stats"]["unique_graphs"] >= 1  # it did compile
    (l1, loss1, g1), (l2, loss2, g2) = out["eager"], out["compiled"]
    torch.testing.assert_close(l2, l1, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(loss2, loss1, rtol=1e-5, atol=1e-6)
    for a, b in zip(g1, g2, strict=True):
        assert a is not None and float(a.abs().sum()) > 0
        torch.testing.assert_close(b, a, rtol=1e-4, atol=1e-6)
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
