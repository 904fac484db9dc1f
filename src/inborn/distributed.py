"""One run on several processes (torchrun + DistributedDataParallel); every helper is a no-op
in a single process, so the training loop calls them unconditionally.

torchrun sets WORLD_SIZE, RANK and LOCAL_RANK (and the rendezvous address) in each process's
environment; `init_from_env` joins the process group they describe: NCCL on CUDA, gloo on CPU.
"""

from __future__ import annotations

import atexit
import gc
import os
import sys
import warnings
from datetime import timedelta
from typing import Any

import torch
import torch.distributed as dist
import torch.nn as nn

# Rank 0 validates and tests alone while the others wait at a barrier: a long PGD evaluation
# must not trip the collective timeout (NCCL's default is 10 minutes).
TIMEOUT = timedelta(hours=3)


def init_from_env(device: torch.device) -> torch.device:
    """Join torchrun's process group when WORLD_SIZE > 1 and return this rank's device.

    On CUDA each rank takes the GPU `cuda:LOCAL_RANK` (whatever index `device` names). On ranks
    other than 0, stdout goes to /dev/null so that a command prints its results once; errors
    still reach stderr.
    """
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return device
    if device.type == "cuda":
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(device)
    if not is_distributed():
        cuda = device.type == "cuda"
        dist.init_process_group("nccl" if cuda else "gloo", timeout=TIMEOUT, device_id=device if cuda else None)
        atexit.register(cleanup)
        if not is_main():
            sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - kept open for the life of the process
    return device


def is_distributed() -> bool:
    return dist.is_available() and dist.is_initialized()


def rank() -> int:
    return dist.get_rank() if is_distributed() else 0


def world_size() -> int:
    return dist.get_world_size() if is_distributed() else 1


def is_main() -> bool:
    """Rank 0: the one process that writes files and prints."""
    return rank() == 0


def wrap(model: nn.Module, device: torch.device) -> nn.Module:
    """`model` in DistributedDataParallel when distributed (gradients averaged over ranks), else itself.

    Its BatchNorm layers then normalise with the statistics of the whole global batch, as one
    process would, in place: `model` itself (which the attacks call) is synchronised too.
    """
    if not is_distributed():
        return model
    sync_batch_norms(model, device)
    return nn.parallel.DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)


def sync_batch_norms(model: nn.Module, device: torch.device) -> nn.Module:
    """Synchronise every BatchNorm of `model` over the ranks, in place: PyTorch's SyncBatchNorm
    on CUDA with NCCL (its fused kernels: one all-gather per forward and one all-reduce per
    backward, against four all-reduces and two host syncs in Python), the Python sync elsewhere
    (SyncBatchNorm has no CPU kernel). docs/distributed.md counts the collectives of both."""
    if device.type == "cuda" and dist.get_backend() == "nccl":
        return native_sync_batch_norm(model)
    return sync_batch_norm(model)


def native_sync_batch_norm(model: nn.Module) -> nn.Module:
    """Every BatchNorm below `model` replaced by an `nn.SyncBatchNorm` holding the same
    parameters and buffers (the optimiser's), under the same names, so state-dict keys and
    checkpoints are unchanged; affine=False layers (supermasks) stay non-affine. In place: the
    module object is kept, so every reference to it (the attacks' `model`) is synchronised."""
    if isinstance(model, nn.modules.batchnorm._BatchNorm):
        raise TypeError("the root module is a BatchNorm: convert the network that holds it")
    nn.SyncBatchNorm.convert_sync_batchnorm(model)  # swaps the children in place (a BatchNorm root it would copy)
    return model


class _SyncedBatchNorm:
    """Mixed in front of a BatchNorm class: in training mode under torch.distributed, the batch
    mean and variance are summed over all ranks (differentiably, so gradients see them as one
    process would). PyTorch's own SyncBatchNorm has no CPU kernel, so gloo runs use this one;
    NCCL runs use PyTorch's (`sync_batch_norms`)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not (self.training and is_distributed()):
            return super().forward(x)
        return _global_batch_norm(self, x)


_SYNCED: dict[type, type] = {}


def sync_batch_norm(model: nn.Module) -> nn.Module:
    """Make every BatchNorm of `model` synchronised, keeping its parameters and buffers (the
    optimiser already holds them) and its state-dict keys."""
    for module in model.modules():
        cls = type(module)
        if isinstance(module, nn.modules.batchnorm._BatchNorm) and not isinstance(module, _SyncedBatchNorm):
            if cls not in _SYNCED:
                _SYNCED[cls] = type(f"Synced{cls.__name__}", (_SyncedBatchNorm, cls), {})
            module.__class__ = _SYNCED[cls]
    return model


def _global_batch_norm(bn: nn.modules.batchnorm._BatchNorm, x: torch.Tensor) -> torch.Tensor:
    dims = [0, *range(2, x.dim())]
    shape = [1, -1] + [1] * (x.dim() - 2)
    xf = x.float()
    count = torch.tensor([xf.numel() / xf.shape[1]], dtype=xf.dtype, device=xf.device)
    sums = _differentiable_sum(torch.cat([xf.sum(dims), count]))
    n = sums[-1].detach()
    mean = sums[:-1] / n
    centred = xf - mean.view(shape)
    var = _differentiable_sum((centred * centred).sum(dims)) / n  # two passes: stabler than E[x²] - E[x]²
    if bn.track_running_stats and bn.running_mean is not None:
        with torch.no_grad():
            bn.num_batches_tracked.add_(1)
            momentum = bn.momentum if bn.momentum is not None else 1.0 / float(bn.num_batches_tracked)
            bn.running_mean.lerp_(mean.detach().to(bn.running_mean.dtype), momentum)
            unbiased = var.detach() * n / max(float(n) - 1.0, 1.0)
            bn.running_var.lerp_(unbiased.to(bn.running_var.dtype), momentum)
    out = centred * torch.rsqrt(var + bn.eps).view(shape)
    if bn.affine:
        out = out * bn.weight.view(shape) + bn.bias.view(shape)
    return out.to(x.dtype)


def _differentiable_sum(tensor: torch.Tensor) -> torch.Tensor:
    """The sum over ranks, whose backward sums the ranks' gradients in turn."""
    from torch.distributed.nn.functional import all_reduce  # not on every build of torch

    # Deprecated in favour of _functional_collectives, which is private and has no gloo autograd.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        return all_reduce(tensor)


def shard(*tensors: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """This rank's slice `[rank::world_size]` of each tensor of a global batch."""
    r, n = rank(), world_size()
    return tuple(t[r::n] for t in tensors) if n > 1 else tensors


def all_reduce_sum(tensor: torch.Tensor) -> torch.Tensor:
    """Sum `tensor` over all ranks, in place (on NCCL it must live on this rank's GPU)."""
    if is_distributed():
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor


def broadcast_object(obj: Any) -> Any:
    """Rank 0's `obj` (picklable), returned on every rank."""
    if not is_distributed():
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def all_gather_object(obj: Any) -> list[Any]:
    """Every rank's `obj` (picklable), in rank order, on every rank."""
    if not is_distributed():
        return [obj]
    out: list[Any] = [None] * world_size()
    dist.all_gather_object(out, obj)
    return out


def barrier() -> None:
    if is_distributed():
        dist.barrier()


def exit_now(code: int) -> None:
    """In a distributed run, leave the group and end the process at once with `code`.

    Interpreter teardown can still free a gloo/DDP object after its group is gone, which aborts
    the process ("terminate called without an active exception") and fails a run that had
    succeeded; `os._exit` skips that teardown once everything is written and flushed.
    """
    if not is_distributed():
        return
    cleanup()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def cleanup() -> None:
    """Leave the process group (registered to run at exit)."""
    if is_distributed():
        # DDP wrappers sit in reference cycles: one freed after its process group aborts the process.
        gc.collect()
        dist.destroy_process_group()
