"""Which BatchNorm synchronisation torchrun gets: PyTorch's SyncBatchNorm on CUDA/NCCL, the Python
one on gloo; what each costs in collectives (docs/distributed.md)."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.distributed as dist
import torch.nn as nn

from inborn import distributed
from inborn.masks import to_supermask
from inborn.models import create_model

pytestmark = pytest.mark.skipif(not dist.is_available(), reason="torch built without torch.distributed")

BN = nn.modules.batchnorm._BatchNorm


def _ticket(arch: str = "preact_resnet18", **kw) -> nn.Module:
    torch.manual_seed(0)
    return to_supermask(create_model(arch, num_classes=10, in_channels=3, **kw), 0.3)  # non-affine BatchNorm


@pytest.fixture
def one_process_group(tmp_path):
    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'rendezvous'}", rank=0, world_size=1)
    try:
        yield
    finally:
        dist.destroy_process_group()


@pytest.mark.parametrize("arch", ["preact_resnet18", "darts_v2"])
def test_native_sync_batch_norm_keeps_the_network_its_tensors_and_keys(arch):
    kw = {"image_size": 16, "width": 0.25} if arch == "preact_resnet18" else \
        {"image_size": 16, "init_channels": 6, "layers": 4}
    model = _ticket(arch, **kw)
    plain = copy.deepcopy(model).eval()
    norms = [m for m in model.modules() if isinstance(m, BN)]
    params, buffers = dict(model.named_parameters()), dict(model.named_buffers())
    assert norms and not any(m.affine for m in norms)  # supermasks: non-affine BatchNorm
    out = distributed.native_sync_batch_norm(model)
    assert out is model  # in place: the attacks' reference to the network is synchronised too
    synced = [m for m in model.modules() if isinstance(m, BN)]
    assert len(synced) == len(norms) and all(type(m) is nn.SyncBatchNorm and not m.affine for m in synced)
    assert model.state_dict().keys() == plain.state_dict().keys()
    # The very tensors the optimiser and the checkpoint code hold, not copies.
    assert all(p is params[name] for name, p in model.named_parameters())
    assert all(b is buffers[name] for name, b in model.named_buffers())
    model.eval()  # eval mode never syncs, so it runs on CPU: the same function as before
    x = torch.rand(3, 3, 16, 16)
    with torch.no_grad():
        torch.testing.assert_close(model(x), plain(x), rtol=0, atol=0)
    with pytest.raises(TypeError):
        distributed.native_sync_batch_norm(nn.BatchNorm2d(3))


def test_nccl_gets_sync_batch_norm_and_gloo_the_python_sync(one_process_group, monkeypatch):
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4, affine=False))
    distributed.sync_batch_norms(model, torch.device("cpu"))  # gloo
    assert type(model[1]).__name__ == "SyncedBatchNorm2d"
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4, affine=False))
    monkeypatch.setattr(dist, "get_backend", lambda *a, **k: "nccl")
    distributed.sync_batch_norms(model, torch.device("cuda", 0))
    assert type(model[1]) is nn.SyncBatchNorm


def test_python_sync_costs_four_all_reduces_per_batch_norm_per_forward_and_backward(one_process_group, monkeypatch):
    """The count docs/distributed.md quotes for a PGD-7 search batch of PreActResNet-18."""
    from inborn.train.config import TrainConfig
    from inborn.train.loop import _pgd_step, _trainer

    model = _ticket(image_size=8, width=0.125)
    n_bn = sum(isinstance(m, BN) for m in model.modules())
    cfg = TrainConfig(arch="preact_resnet18", adv="pgd", adv_steps=7, lr=0.1, eps=8 / 255, amp=False)
    t = _trainer(cfg, model, 8 / 255)
    t.net = distributed.wrap(model, torch.device("cpu"))
    calls = {"n": 0}
    real = dist.all_reduce

    def counting(*args, **kwargs):
        calls["n"] += 1
        return real(*args, **kwargs)

    monkeypatch.setattr(dist, "all_reduce", counting)
    model.train()
    _pgd_step(t, torch.rand(4, 3, 8, 8), torch.randint(0, 10, (4,)), 8 / 255, 1.0)
    passes = cfg.adv_steps + 1  # 7 attack forwards and backwards (to the input), 1 training step
    assert n_bn == 17
    # 2 all-reduces in the forward (sums and count, then the squared deviations), 2 in the backward.
    assert calls["n"] == 4 * n_bn * passes == 544
