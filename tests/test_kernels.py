"""inborn's CPU kernels compute what PyTorch's stock ones do, and the layout choice is the measured one."""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from inborn.device import prepare_model, use_channels_last
from inborn.models import create_model, kernels
from inborn.models.layers import append_max_pool

CPU = torch.device("cpu")


def _tied(shape, seed=0):
    """ReLU'd values rounded to one decimal: many exact ties, zeros included (as after ReLU on MNIST)."""
    g = torch.Generator().manual_seed(seed)
    return torch.relu(torch.randn(shape, generator=g)).mul(10).round().div(10)


@pytest.mark.parametrize("kernel,stride,padding", [(2, 2, 0), (3, 2, 1), (3, 1, 1), (2, 1, 0)])
@pytest.mark.parametrize("shape", [(8, 16, 12, 12), (3, 5, 7, 9)])
def test_max_pool_is_stock_bit_for_bit(kernel, stride, padding, shape):
    x = _tied(shape)
    a, b = x.clone().requires_grad_(True), x.clone().requires_grad_(True)
    stock = F.max_pool2d(a, kernel, stride, padding)
    ours = kernels.max_pool2d(b, kernel, stride, padding)
    grad = torch.randn_like(stock)
    stock.backward(grad)
    ours.backward(grad)
    assert ours.is_contiguous()
    assert torch.equal(stock, ours)
    assert torch.equal(a.grad, b.grad)  # the same winner in every tied window


def test_max_pool_module_and_fallbacks():
    x = _tied((4, 6, 8, 8))
    assert torch.equal(kernels.MaxPool2d(2)(x), nn.MaxPool2d(2)(x))
    out, idx = kernels.MaxPool2d(2, return_indices=True)(x)
    ref_out, ref_idx = nn.MaxPool2d(2, return_indices=True)(x)
    assert torch.equal(out, ref_out) and torch.equal(idx, ref_idx)
    cl = x.contiguous(memory_format=torch.channels_last)  # channels-last input: the stock kernel is fast
    assert torch.equal(kernels.max_pool2d(cl, 2), F.max_pool2d(x, 2))


@pytest.mark.parametrize("cin,stride,padding,dilation", [(1, 1, 1, 1), (3, 2, 1, 1), (3, 1, 0, 1), (1, 1, 2, 2)])
def test_small_fan_in_conv_matches_stock(cin, stride, padding, dilation):
    g = torch.Generator().manual_seed(1)
    x = torch.randn(6, cin, 11, 13, generator=g, requires_grad=True)
    w = torch.randn(5, cin, 3, 3, generator=g, requires_grad=True)
    bias = torch.randn(5, generator=g, requires_grad=True)
    stock = F.conv2d(x, w, bias, stride, padding, dilation)
    ours = kernels.conv2d(x, w, bias, stride, padding, dilation, 1)
    assert ours.shape == stock.shape
    torch.testing.assert_close(ours, stock, rtol=1e-5, atol=1e-5)
    grad = torch.randn_like(stock)
    for a, b in zip(torch.autograd.grad(stock, (x, w, bias), grad), torch.autograd.grad(ours, (x, w, bias), grad),
                    strict=True):
        torch.testing.assert_close(b, a, rtol=1e-4, atol=1e-4)


def test_conv_keeps_the_models_layout_and_stock_turns_it_off():
    x = torch.randn(4, 1, 10, 10)
    w = torch.randn(8, 1, 3, 3)
    w_cl = w.to(memory_format=torch.channels_last)
    assert kernels.is_channels_last(w_cl) and not kernels.is_channels_last(w)
    y = kernels.conv2d(x, w_cl, None, 1, 1, 1, 1)
    assert y.is_contiguous(memory_format=torch.channels_last) and not y.is_contiguous()
    assert kernels.conv2d(x, w, None, 1, 1, 1, 1).is_contiguous()
    torch.testing.assert_close(y, F.conv2d(x, w, None, 1, 1), rtol=1e-5, atol=1e-5)
    with kernels.stock():
        assert not any(kernels.fast_enabled(p) for p in kernels.PATHS)
        assert torch.equal(kernels.conv2d(x, w, None, 1, 1, 1, 1), F.conv2d(x, w, None, 1, 1))
    assert all(kernels.fast_enabled(p) for p in kernels.PATHS)
    with kernels.stock("max_pool"):  # one path off, the others on
        assert not kernels.fast_enabled("max_pool") and kernels.fast_enabled("conv")
    with pytest.raises(ValueError, match="unknown kernel paths"), kernels.stock("winograd"):
        pass
    wide = torch.randn(8, 16, 3, 3)  # 144 inputs per output: oneDNN's job
    x16 = torch.randn(2, 16, 6, 6)
    assert torch.equal(kernels.conv2d(x16, wide, None, 1, 1, 1, 1), F.conv2d(x16, wide, None, 1, 1))


def test_pool_before_relu_is_the_same_network():
    """append_max_pool puts the pool before the last ReLU: the same values and gradients."""
    torch.manual_seed(0)
    conv, bn = nn.Conv2d(2, 4, 3, padding=1), nn.BatchNorm2d(4)
    relu_first = nn.Sequential(conv, bn, nn.ReLU(), nn.MaxPool2d(2))
    layers: list[nn.Module] = [conv, bn, nn.ReLU()]
    append_max_pool(layers, kernels.MaxPool2d(2))
    assert isinstance(layers[2], nn.MaxPool2d) and isinstance(layers[3], nn.ReLU)
    pool_first = nn.Sequential(*layers)
    x = torch.rand(8, 2, 8, 8).round(decimals=1)  # ties
    a, b = x.clone().requires_grad_(True), x.clone().requires_grad_(True)
    ya, yb = relu_first(a), pool_first(b)
    assert torch.equal(ya, yb)
    g = torch.randn_like(ya)
    assert torch.equal(torch.autograd.grad(ya, a, g)[0], torch.autograd.grad(yb, b, g)[0])


def test_channels_last_on_cpu_only_without_grouped_convs():
    kw = dict(num_classes=10, in_channels=3, image_size=32, width=0.25, mean=[0.5] * 3, std=[0.25] * 3)
    assert use_channels_last(create_model("conv4", **kw), CPU)
    assert not use_channels_last(create_model("mobilenet_v2", **kw), CPU)  # depthwise convolutions
    assert not use_channels_last(create_model("fc", **{**kw, "mean": [0.5], "std": [0.25], "in_channels": 1}), CPU)
    model = prepare_model(create_model("conv4", **kw), CPU)
    assert model.body[0].weight.is_contiguous(memory_format=torch.channels_last)
    x = torch.rand(2, 3, 32, 32)
    reference = create_model("conv4", **kw)
    reference.load_state_dict(model.state_dict())
    with torch.no_grad():
        torch.testing.assert_close(model.eval()(x), reference.eval()(x), rtol=1e-4, atol=1e-5)
