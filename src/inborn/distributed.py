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
    """`model` in DistributedDataParallel when distributed (gradients averaged over ranks), else itself."""
    if not is_distributed():
        return model
    return nn.parallel.DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)


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
