"""The product weight × mask, cached across the forwards that need no gradient to it (issue 26)."""

from __future__ import annotations

import copy
import pickle

import torch
import torch.nn.functional as F

import inborn.masks.layers as layers_mod
from inborn.masks import fix_masks, masked_layers, reuse_masks, scores_frozen, to_supermask
from inborn.masks.family import FamilyTicket, TicketFamily
from inborn.masks.layers import MaskedLayer, uncached
from inborn.masks.packing import pack_mask
from inborn.models import create_model

ATTACK_STEPS = 7


def _model(seed: int = 0):
    torch.manual_seed(seed)
    net = create_model("conv4", num_classes=10, in_channels=3, image_size=16, width=0.25)
    return to_supermask(net, 0.3)


def _batch(seed: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(6, 3, 16, 16, generator=g), torch.randint(0, 10, (6,), generator=g)


def _search_batch(model, opt, x, y) -> list[torch.Tensor]:
    """One search batch as the training loop runs it: masks once, PGD steps with the scores frozen
    (gradients to the input only), then the training forward and step. Returns the input gradients."""
    input_grads = []
    with reuse_masks(model):
        with scores_frozen(model):
            delta = torch.zeros_like(x)
            for _ in range(ATTACK_STEPS):
                xa = (x + delta).requires_grad_(True)
                (grad,) = torch.autograd.grad(F.cross_entropy(model(xa), y), xa)
                input_grads.append(grad)
                delta = (delta + 0.01 * grad.sign()).clamp(-0.03, 0.03)
        loss = F.cross_entropy(model(x + delta), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
    opt.step()
    return input_grads


def _count(monkeypatch, name: str) -> dict[str, int]:
    """Count the calls of `inborn.masks.layers.<name>` (the selection, the unpacking)."""
    calls = {"n": 0}
    original = getattr(layers_mod, name)

    def counting(*args, **kwargs):
        calls["n"] += 1
        return original(*args, **kwargs)

    monkeypatch.setattr(layers_mod, name, counting)
    return calls


def _count_products(monkeypatch) -> dict[str, int]:
    """Count the masks fetched for a product (`current_mask` calls from `effective_weight`)."""
    calls = {"n": 0}
    original = MaskedLayer.current_mask

    def counting(self):
        calls["n"] += 1
        return original(self)

    monkeypatch.setattr(MaskedLayer, "current_mask", counting)
    return calls


def test_search_batches_match_the_uncached_path_bit_for_bit():
    x, y = _batch()
    runs = []
    for cached in (True, False):
        model = _model()
        model.train()
        opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.5, momentum=0.9)
        grads, score_grads = [], []
        with uncached() if not cached else _nothing():
            for _ in range(3):  # three batches: the scores move between them
                grads += _search_batch(model, opt, x, y)
                score_grads += [layer.scores.grad.clone() for layer in masked_layers(model)]
        runs.append((grads, score_grads, [layer.scores.detach().clone() for layer in masked_layers(model)]))
    (g1, s1, final1), (g2, s2, final2) = runs
    assert all(torch.equal(a, b) for a, b in zip(g1, g2, strict=True))  # the attack's input gradients
    assert all(torch.equal(a, b) for a, b in zip(s1, s2, strict=True))  # the gradients into the scores
    assert all(torch.equal(a, b) for a, b in zip(final1, final2, strict=True))
    assert any(float(g.abs().sum()) > 0 for g in s1)


class _nothing:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def test_a_search_batch_selects_once_and_multiplies_twice_per_layer(monkeypatch):
    model = _model()
    model.train()
    opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.5)
    n_layers = len(masked_layers(model))
    x, y = _batch()
    selections = _count(monkeypatch, "layer_mask")
    products = _count_products(monkeypatch)
    for batch in range(1, 3):
        _search_batch(model, opt, x, y)
        assert selections["n"] == batch * n_layers  # reuse_masks: one selection per layer per batch
        # One product for the 7 attack forwards, one in the training forward's graph (was 8).
        assert products["n"] == batch * 2 * n_layers
    with uncached():
        _search_batch(model, opt, x, y)
    assert products["n"] == 4 * n_layers + (ATTACK_STEPS + 1) * n_layers


def test_the_mask_follows_an_optimiser_step(monkeypatch):
    model = _model()
    model.eval()
    x, _ = _batch()
    selections = _count(monkeypatch, "layer_mask")
    n_layers = len(masked_layers(model))
    with scores_frozen(model):  # an evaluation of scores: the mask is selected once for all forwards
        before = model(x)
        assert torch.equal(model(x), before)
        assert selections["n"] == n_layers
    layer = masked_layers(model)[0]
    old_mask = layer.compute_mask()
    opt = torch.optim.SGD([layer.scores], lr=1.0)
    layer.scores.grad = torch.randn_like(layer.scores) * layer.scores.abs().max() * 10
    opt.step()  # in place: bumps the scores' version
    assert not torch.equal(layer.compute_mask(), old_mask)
    with scores_frozen(model):
        after = model(x)
    # The two compute_mask calls above, then the stepped layer alone: the others' scores did not move.
    assert selections["n"] == n_layers + 2 + 1
    assert torch.equal(layer._product[1], layer.weight * layer.compute_mask())
    with uncached(), scores_frozen(model):
        assert torch.equal(model(x), after)


def test_fixed_masks_multiply_once_per_evaluation(monkeypatch):
    model = _model()
    fix_masks(model)
    model.eval()
    x, _ = _batch()
    products = _count_products(monkeypatch)
    with torch.no_grad():
        first = model(x)
    for _ in range(4):  # an attack's forwards: a graph to the input, none to the weights
        xa = x.clone().requires_grad_(True)
        (grad,) = torch.autograd.grad(model(xa).sum(), xa)
        assert float(grad.abs().sum()) > 0
    assert torch.equal(model(x).detach(), first)
    assert products["n"] == len(masked_layers(model))


def test_a_forward_that_trains_the_weights_never_takes_the_cached_product():
    model = _model()
    fix_masks(model)
    for layer in masked_layers(model):
        layer.weight.requires_grad_(True)  # fine-tuning under a fixed mask
    x, y = _batch()
    with torch.no_grad():
        model(x)  # fills the cache
    F.cross_entropy(model(x), y).backward()
    assert all(layer.weight.grad is not None and float(layer.weight.grad.abs().sum()) > 0
               for layer in masked_layers(model))


def test_a_product_made_in_inference_mode_serves_a_later_graph():
    model = _model()
    model.eval()
    x, _ = _batch()
    with scores_frozen(model):
        with torch.inference_mode():
            ref = model(x)
        xa = x.clone().requires_grad_(True)
        out = model(xa)  # would fail on an inference tensor saved for backward
        (grad,) = torch.autograd.grad(out.sum(), xa)
    assert torch.equal(out.detach(), ref) and float(grad.abs().sum()) > 0


def test_a_dtype_change_and_copies_recompute():
    model = _model()
    model.eval()
    x, _ = _batch()
    with torch.no_grad():
        ref = model(x)
        model.double()
        out = model(x.double())
    assert out.dtype == torch.float64 and all(layer._product[1].dtype == torch.float64
                                               for layer in masked_layers(model))
    torch.testing.assert_close(out.float(), ref, rtol=1e-4, atol=1e-5)
    clone = pickle.loads(pickle.dumps(model))  # the cache holds weak references: dropped on copy
    deep = copy.deepcopy(model)
    assert all(layer._product is None for layer in masked_layers(clone) + masked_layers(deep))
    with torch.no_grad():
        assert torch.equal(clone(x.double()), out) and torch.equal(deep(x.double()), out)


def test_a_family_unpacks_once_per_ticket_switch(monkeypatch):
    model = _model()
    layers = masked_layers(model)
    g = torch.Generator().manual_seed(3)
    tickets = [FamilyTicket(f"t{i}", 0.3, [pack_mask((torch.rand(m.weight.shape, generator=g) < 0.3).float())
                                          for m in layers], {}) for i in range(2)]
    family = TicketFamily(model, tickets).eval()
    unpacks = _count(monkeypatch, "unpack_on_device")
    x, _ = _batch()
    outs = []
    for index in (0, 0, 1, 1, 0):
        family.select(index)
        with torch.no_grad():
            outs.append(family(x))
        family(x.clone().requires_grad_(True)).sum().backward()  # an attack's forward and backward
    assert unpacks["n"] == 3 * len(layers)  # switches to 0, to 1, back to 0
    assert torch.equal(outs[0], outs[1]) and torch.equal(outs[0], outs[4]) and not torch.equal(outs[0], outs[2])
