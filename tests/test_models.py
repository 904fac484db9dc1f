"""The model zoo: every registered model builds, runs forward and backward, and has the standard size."""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn

from inborn.errors import InbornError
from inborn.models import create_model, list_models, model_names

ALL = model_names()
NEW_FAMILIES = {"resnet", "preact_resnet", "wide_resnet", "vgg", "mobilenet", "densenet"}
FAMILY = {name: family for name, family, _ in list_models()}
ZOO = [n for n in ALL if FAMILY[n] in NEW_FAMILIES]


def _size(name: str, in_channels: int) -> int:
    """Small inputs keep the suite fast; ImageNet stems downsample 32x so they get 64x64."""
    if name.endswith("_imagenet"):
        return 64
    return 28 if in_channels == 1 else 16


def _n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def test_every_family_is_registered() -> None:
    expected = {
        "preact_resnet18", "resnet18", "resnet34", "resnet50", "resnet18_imagenet", "resnet34_imagenet",
        "resnet50_imagenet", "resnet101_imagenet", "wide_resnet", "wrn34_10", "wrn28_10", "vgg11_bn",
        "vgg16_bn", "mobilenet_v2", "densenet121", "densenet169",
    }
    assert expected <= set(ALL)
    for name, family, summary in list_models():
        assert family and summary, name


@pytest.mark.parametrize("in_channels", [1, 3])
@pytest.mark.parametrize("name", ALL)
def test_forward_backward(name: str, in_channels: int) -> None:
    torch.manual_seed(0)
    size = _size(name, in_channels)
    model = create_model(name, num_classes=7, in_channels=in_channels, width=0.25, image_size=size)
    model.train()
    x = torch.rand(3, in_channels, size, size)
    logits = model(x)
    assert logits.shape == (3, 7)
    assert torch.isfinite(logits).all()
    nn.functional.cross_entropy(logits, torch.tensor([0, 3, 6])).backward()
    params = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    assert params
    for pname, p in params:
        assert p.grad is not None, f"{name}: no gradient reached {pname}"
        assert torch.isfinite(p.grad).all(), f"{name}: non-finite gradient in {pname}"
    assert any(p.grad.abs().sum() > 0 for _, p in params)


@pytest.mark.parametrize("name", ZOO)
def test_eval_single_image(name: str) -> None:
    """Eval mode uses running BN statistics, so a batch of one must work."""
    size = 64 if name.endswith("_imagenet") else 32
    model = create_model(name, num_classes=5, width=0.25, image_size=size).eval()
    with torch.no_grad():
        out = model(torch.rand(1, 3, size, size))
    assert out.shape == (1, 5)
    assert torch.isfinite(out).all()


@pytest.mark.parametrize("name", ALL)
def test_non_affine_batch_norm(name: str) -> None:
    model = create_model(name, num_classes=7, width=0.25, image_size=16, affine_bn=False)
    bns = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if name in ZOO:
        assert bns, f"{name} should contain BatchNorm layers"
    for bn in bns:
        assert not bn.affine
        assert bn.weight is None and bn.bias is None
        assert list(bn.parameters()) == []
    affine = create_model(name, num_classes=7, width=0.25, image_size=16, affine_bn=True)
    for bn in (m for m in affine.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)):
        assert bn.affine and bn.weight is not None and bn.bias is not None


# Published / reference-implementation figures at width 1, 3 input channels.
PARAM_COUNTS = [
    ("resnet18", 10, 11_173_962),
    ("resnet34", 10, 21_282_122),
    ("resnet50", 10, 23_520_842),
    ("resnet18_imagenet", 1000, 11_689_512),
    ("resnet34_imagenet", 1000, 21_797_672),
    ("resnet50_imagenet", 1000, 25_557_032),
    ("resnet101_imagenet", 1000, 44_549_160),
    # 11,171,146 without the final BN (kuangliu's layout) + 1,024 for the final BN of He et al.
    ("preact_resnet18", 10, 11_172_170),
    ("wrn34_10", 10, 46_160_474),
    ("wrn28_10", 10, 36_479_194),
    ("vgg16_bn", 10, 14_728_266),
    ("vgg11_bn", 10, 9_231_114),
    ("mobilenet_v2", 1000, 3_504_872),
    ("densenet121", 10, 6_956_298),
]


@pytest.mark.parametrize(("name", "num_classes", "expected"), PARAM_COUNTS)
def test_parameter_counts(name: str, num_classes: int, expected: int) -> None:
    model = create_model(name, num_classes=num_classes, in_channels=3, width=1.0, image_size=32)
    assert _n_params(model) == expected


def test_wide_resnet_defaults_match_wrn34_10() -> None:
    a = create_model("wide_resnet", width=0.25)
    b = create_model("wrn34_10", width=0.25)
    assert _n_params(a) == _n_params(b)
    assert _n_params(create_model("wide_resnet", depth=28, widen_factor=10, width=0.25)) == _n_params(
        create_model("wrn28_10", width=0.25)
    )


def test_wide_resnet_options() -> None:
    model = create_model("wide_resnet", num_classes=4, depth=10, widen_factor=2, dropout=0.3, image_size=16)
    assert any(isinstance(m, nn.Dropout) and m.p == 0.3 for m in model.modules())
    assert model(torch.rand(3, 3, 16, 16)).shape == (3, 4)
    assert not any(isinstance(m, nn.Dropout) for m in create_model("wrn28_10", width=0.25).modules())
    for bad in ({"depth": 30}, {"depth": 4}, {"widen_factor": 0}, {"dropout": 1.0}):
        with pytest.raises(InbornError):
            create_model("wide_resnet", **bad)
    with pytest.raises(InbornError):
        create_model("wrn34_10", depth=16)


@pytest.mark.parametrize("name", ["resnet18", "vgg16_bn", "mobilenet_v2", "densenet121", "preact_resnet18"])
def test_unknown_option_rejected(name: str) -> None:
    with pytest.raises(InbornError):
        create_model(name, depth=10)


def test_unknown_model_name() -> None:
    with pytest.raises(InbornError):
        create_model("resnet19")


def test_cifar_and_imagenet_stems() -> None:
    """The CIFAR stem keeps 32x32 at full resolution into the first stage; the ImageNet stem divides by 4."""
    x = torch.rand(2, 3, 32, 32)
    cifar = create_model("resnet18", width=0.25).body.eval()
    imagenet = create_model("resnet18_imagenet", width=0.25).body.eval()
    with torch.no_grad():
        assert cifar.stem(x).shape[-2:] == (32, 32)
        assert imagenet.stem(x).shape[-2:] == (8, 8)
        mobile = create_model("mobilenet_v2", width=0.25).body.eval()
        assert mobile.features(x).shape[-2:] == (4, 4)


@pytest.mark.parametrize("size", [8, 16, 28])
@pytest.mark.parametrize("name", ["vgg11_bn", "vgg16_bn", "densenet121"])
def test_small_images_skip_pools(name: str, size: int) -> None:
    model = create_model(name, num_classes=7, width=0.25, image_size=size, in_channels=1)
    assert model(torch.rand(3, 1, size, size)).shape == (3, 7)


def test_width_scales_channels() -> None:
    for name in ("resnet18", "wrn28_10", "vgg16_bn", "mobilenet_v2", "densenet121"):
        full = _n_params(create_model(name, width=1.0))
        half = _n_params(create_model(name, width=0.5))
        assert 0.15 * full < half < 0.4 * full, name
