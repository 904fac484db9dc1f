"""The DARTS search space: published genotypes, random cells, the text form, and the networks."""

from __future__ import annotations

import copy
import random

import pytest
import torch
import torch.nn as nn

from inborn.errors import InbornError
from inborn.masks import masked_layers, to_supermask
from inborn.models import create_model, list_models, model_names
from inborn.models.darts import (
    GENOTYPES,
    PRIMITIVES,
    Cell,
    Genotype,
    NetworkCIFAR,
    drop_path,
    genotype_of,
    genotype_to_text,
    get_genotype,
    parse_genotype,
    sample_genotype,
)
from inborn.models.darts import network as network_module
from inborn.models.registry import model_entry

TINY = {"init_channels": 6, "layers": 4}
B = 3  # odd on purpose


def _train_step(model: nn.Module, x: torch.Tensor, num_classes: int) -> torch.Tensor:
    model.train()
    logits = model(x)
    assert isinstance(logits, torch.Tensor) and logits.shape == (x.shape[0], num_classes)
    assert torch.isfinite(logits).all()
    nn.functional.cross_entropy(logits, torch.arange(x.shape[0]) % num_classes).backward()
    return logits


def _n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize("name", list(GENOTYPES))
def test_published_genotypes_train(name: str) -> None:
    model = create_model(name, num_classes=5, in_channels=1, image_size=16, **TINY)
    _train_step(model, torch.rand(B, 1, 16, 16), 5)
    for pname, p in model.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), f"{name}: no gradient in {pname}"


@pytest.mark.parametrize(("in_channels", "size"), [(1, 28), (3, 32), (3, 16)])
def test_cifar_network_sizes(in_channels: int, size: int) -> None:
    model = create_model("darts_v2", num_classes=4, in_channels=in_channels, image_size=size, init_channels=4,
                         layers=3, auxiliary=True)
    _train_step(model, torch.rand(B, in_channels, size, size), 4)
    assert model.body.aux_logits.shape == (B, 4)


@pytest.mark.parametrize("size", [64, 224])
def test_imagenet_network(size: int) -> None:
    model = create_model("pcdarts", num_classes=7, image_size=size, network="imagenet", init_channels=8, layers=3,
                         auxiliary=True)
    assert model.body.stem0[0].out_channels == 4  # the first stem conv has half the channels
    _train_step(model, torch.rand(B, 3, size, size), 7)
    assert model.body.aux_logits.shape == (B, 7)
    with torch.no_grad():
        assert model.eval()(torch.rand(1, 3, size, size)).shape == (1, 7)


def test_default_sizes_match_published_parameter_counts() -> None:
    """DARTS (V2) on CIFAR-10: 3.3M parameters at 36 channels and 20 cells; on ImageNet 4.7M (48, 14)."""
    cifar = _n_params(create_model("darts_v2", num_classes=10))
    assert abs(cifar - 3.3e6) / 3.3e6 < 0.03, cifar
    imagenet = _n_params(create_model("darts_v2", num_classes=1000, network="imagenet", image_size=224))
    assert abs(imagenet - 4.7e6) / 4.7e6 < 0.03, imagenet


def test_aux_logits_only_in_train_mode_with_the_head() -> None:
    x = torch.rand(B, 3, 16, 16)
    with_head = create_model("darts_v1", num_classes=3, auxiliary=True, **TINY).body
    without = create_model("darts_v1", num_classes=3, **TINY).body
    with_head.train()(x)
    assert with_head.aux_logits is not None and with_head.aux_logits.shape == (B, 3)
    copy.deepcopy(with_head)  # the kept aux logits (part of a graph) must not break a copy
    with torch.no_grad():
        out = with_head.eval()(x)
    assert isinstance(out, torch.Tensor) and with_head.aux_logits is None
    without.train()(x)
    assert without.aux_logits is None and without.auxiliary_head is None


def test_drop_path_drops_whole_samples() -> None:
    torch.manual_seed(0)
    x = torch.ones(2000, 2, 2, 2, dtype=torch.float64)
    y = drop_path(x, 0.25)
    assert y.dtype == torch.float64 and y.device == x.device
    per_sample = y.flatten(1)
    kept = (per_sample != 0).all(1)
    assert ((per_sample == 0).all(1) | kept).all()  # a sample is dropped whole or not at all
    assert torch.allclose(per_sample[kept], torch.full_like(per_sample[kept], 1 / 0.75))
    assert 0.2 < 1 - kept.double().mean() < 0.3
    assert drop_path(x, 0.0) is x


def test_drop_path_on_non_identity_ops_in_train_mode_only(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[float] = []

    def spy(x: torch.Tensor, p: float) -> torch.Tensor:
        calls.append(p)
        return torch.zeros_like(x)

    monkeypatch.setattr(network_module, "drop_path", spy)
    # Normal cell: 3 of 8 edges are identities (skip_connect at stride 1), never dropped.
    g = parse_genotype("Genotype(normal=[('skip_connect', 0), ('sep_conv_3x3', 1), ('skip_connect', 1), "
                       "('max_pool_3x3', 2), ('avg_pool_3x3', 0), ('dil_conv_3x3', 3), ('skip_connect', 4), "
                       "('sep_conv_5x5', 2)], normal_concat=[2, 3, 4, 5], reduce=[('max_pool_3x3', 0), "
                       "('skip_connect', 1)], reduce_concat=[2])")
    cell = Cell(g, 4, 4, 4, reduction=False, reduction_prev=False)
    s = torch.rand(B, 4, 8, 8)
    cell.train()(s, s, 0.3)
    assert calls == [0.3] * 5
    calls.clear()
    cell.eval()(s, s, 0.3)
    cell.train()(s, s, 0.0)
    assert calls == []


def test_network_drop_path_prob_is_read_each_forward() -> None:
    torch.manual_seed(0)
    model = create_model("darts_v2", num_classes=3, drop_path_prob=0.5, **TINY).body
    assert model.drop_path_prob == 0.5
    x = torch.rand(B, 3, 16, 16)
    with torch.no_grad():
        a, b = model.train()(x), model(x)
        assert not torch.allclose(a, b)  # different paths dropped
        e1 = model.eval()(x)
        model.drop_path_prob = 0.0
        assert torch.equal(e1, model(x))  # eval: drop-path is the identity


def test_sample_genotype_is_seeded_and_uniform_over_non_none_ops() -> None:
    state = random.getstate()
    assert sample_genotype(3) == sample_genotype(3)
    assert len({sample_genotype(s) for s in range(5)}) == 5
    assert random.getstate() == state  # the global RNG is untouched
    seen_ops: set[str] = set()
    for seed in range(200):
        g = sample_genotype(seed)
        assert g.normal_concat == g.reduce_concat == (2, 3, 4, 5)
        for edges in (g.normal, g.reduce):
            assert len(edges) == 8
            for i in range(4):
                (_, a), (_, b) = edges[2 * i], edges[2 * i + 1]
                assert a != b and 0 <= a < 2 + i and 0 <= b < 2 + i
            seen_ops |= {op for op, _ in edges}
    assert "none" not in seen_ops
    assert seen_ops == set(PRIMITIVES) - {"none"}


@pytest.mark.parametrize("g", [*GENOTYPES.values(), *(sample_genotype(s) for s in range(5))])
def test_text_round_trip(g: Genotype) -> None:
    text = genotype_to_text(g)
    assert text.startswith("Genotype(normal=[(") and "\n" not in text
    assert parse_genotype(text) == g


def test_parse_accepts_range_positional_and_multiline_forms() -> None:
    pdarts = get_genotype("pdarts")
    range_form = genotype_to_text(pdarts).replace("[2, 3, 4, 5]", "range(2, 6)")
    assert "range(2, 6)" in range_form and parse_genotype(range_form) == pdarts
    g = get_genotype("darts_v2")
    positional = (f"genotypes.Genotype(\n  {list(g.normal)},\n  [2, 3, 4, 5],\n  {list(g.reduce)},\n"
                  f"  reduce_concat=[2, 3, 4, 5],\n)")
    assert parse_genotype(positional) == g
    as_lists = (f"Genotype(normal={[list(e) for e in g.normal]}, normal_concat=(2, 3, 4, 5), "
                f"reduce={[list(e) for e in g.reduce]}, reduce_concat=(2, 3, 4, 5))")
    assert parse_genotype(as_lists) == g


_NORMAL = "[('sep_conv_3x3', 0), ('sep_conv_3x3', 1)]"


@pytest.mark.parametrize("text", [
    "", "   ", "Genotype(", "Genotype", "Foo(normal=[])", "[1, 2]", "Genotype(1, 2, 3, 4, 5)",
    f"Genotype(normal={_NORMAL}, normal_concat=[2], reduce={_NORMAL})",  # missing field
    f"Genotype(normal={_NORMAL}, normal_concat=[2], reduce={_NORMAL}, reduce_concat=[2], extra=1)",
    f"Genotype({_NORMAL}, [2], {_NORMAL}, [2], normal=[])",  # given twice
    f"Genotype(normal=[('sep_conv_3x3', 0)], normal_concat=[2], reduce={_NORMAL}, reduce_concat=[2])",  # odd
    f"Genotype(normal=[('conv_9x9', 0), ('sep_conv_3x3', 1)], normal_concat=[2], reduce={_NORMAL}, reduce_concat=[2])",
    f"Genotype(normal=[('sep_conv_3x3', 2), ('sep_conv_3x3', 1)], normal_concat=[2], reduce={_NORMAL}, "
    "reduce_concat=[2])",  # node 2 reads itself
    f"Genotype(normal=[('sep_conv_3x3', -1), ('sep_conv_3x3', 1)], normal_concat=[2], reduce={_NORMAL}, "
    "reduce_concat=[2])",
    f"Genotype(normal=[('sep_conv_3x3', True), ('sep_conv_3x3', 1)], normal_concat=[2], reduce={_NORMAL}, "
    "reduce_concat=[2])",
    f"Genotype(normal={_NORMAL}, normal_concat=[2, 3], reduce={_NORMAL}, reduce_concat=[2])",  # no node 3
    f"Genotype(normal={_NORMAL}, normal_concat=[0, 2], reduce={_NORMAL}, reduce_concat=[2])",  # an input
    f"Genotype(normal={_NORMAL}, normal_concat=[], reduce={_NORMAL}, reduce_concat=[2])",
    f"Genotype(normal={_NORMAL}, normal_concat=range(10**100), reduce={_NORMAL}, reduce_concat=[2])",
    f"Genotype(normal={_NORMAL}, normal_concat=list(range(2, 3)), reduce={_NORMAL}, reduce_concat=[2])",
    f"Genotype(normal=__import__('os').getcwd(), normal_concat=[2], reduce={_NORMAL}, reduce_concat=[2])",
    "__import__('os').system('echo unsafe')",
    "Genotype(normal=[" * 200,
])
def test_malformed_genotypes_raise_one_line_errors(text: str) -> None:
    with pytest.raises(InbornError) as e:
        parse_genotype(text)
    assert "\n" not in str(e.value)


def test_unknown_names() -> None:
    with pytest.raises(InbornError, match="darts_v2") as e:
        get_genotype("darts_v3")
    assert all(name in str(e.value) for name in GENOTYPES)
    for bad in ("nope", "random:x", "random:", "genotype:Genotype(", "resnet18"):
        with pytest.raises(InbornError):
            genotype_of(bad)
    for bad in ("random:x", "random:1.5", "genotype:not a genotype", "nosuchprefix:3"):
        with pytest.raises(InbornError) as e:
            model_entry(bad)
        assert "\n" not in str(e.value)
    with pytest.raises(InbornError):
        create_model("random:x")


def test_parametrised_names_are_listed_and_resolve() -> None:
    assert {"random:SEED", "genotype:TEXT"} <= set(model_names(patterns=True))
    assert not {"random:SEED", "genotype:TEXT"} & set(model_names())  # model_names() lists buildable names
    listed = {name: family for name, family, _ in list_models()}
    assert listed["random:SEED"] == listed["genotype:TEXT"] == listed["darts_v2"] == "darts"
    assert genotype_of("random:7") == sample_genotype(7)
    assert genotype_of("darts_v2") == get_genotype("darts_v2")
    text = genotype_to_text(sample_genotype(7))
    assert genotype_of(f"genotype:{text}") == sample_genotype(7)
    a = create_model("random:7", num_classes=3, **TINY)
    b = create_model(f"genotype:{text}", num_classes=3, **TINY)
    assert a.body.genotype == b.body.genotype and _n_params(a) == _n_params(b)


def test_options() -> None:
    model = create_model("enas", num_classes=3, width=0.5, init_channels=8, layers=3)
    assert isinstance(model.body, NetworkCIFAR)
    assert model.body.stem_conv[0].out_channels == 3 * 4  # init_channels scaled by width, times 3
    for bad in ({"depth": 3}, {"network": "mobile"}, {"layers": 0}, {"init_channels": 0}, {"drop_path_prob": 1.0}):
        with pytest.raises(InbornError):
            create_model("enas", **bad)
    plain = create_model("enas", num_classes=3, affine_bn=False, auxiliary=True, **TINY)
    bns = [m for m in plain.modules() if isinstance(m, nn.BatchNorm2d)]
    assert bns and not any(bn.affine for bn in bns)


@pytest.mark.parametrize("name", ["darts_v2", "random:3"])
def test_supermask_over_a_darts_network(name: str) -> None:
    model = create_model(name, num_classes=4, image_size=16, **TINY)
    convs = [n for n, m in model.named_modules() if type(m) in (nn.Conv2d, nn.Linear)]
    assert convs[0] == "body.stem_conv.0" and convs[-1] == "body.classifier"  # dense_first / dense_last
    to_supermask(model, 0.3)
    assert not any(p.requires_grad for n, p in model.named_parameters() if not n.endswith("scores"))
    assert not any(m.affine for m in model.modules() if isinstance(m, nn.BatchNorm2d))
    _train_step(model, torch.rand(B, 3, 16, 16), 4)
    layers = masked_layers(model)
    assert len(layers) == len(convs)
    assert all(m.scores.grad is not None for m in layers)
    assert sum(m.scores.grad.abs().sum() > 0 for m in layers) > len(layers) // 2
