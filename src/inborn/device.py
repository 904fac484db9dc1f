"""Device choice and the fast paths (bf16 autocast on CUDA, channels-last memory layout,
cuDNN's autotuner, torch.compile)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch

from inborn.errors import InbornError


def resolve_device(name: str = "auto") -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError as e:
        raise InbornError(f"unknown device {name!r} (use auto, cpu, cuda or cuda:N)") from e
    if device.type == "cuda" and not torch.cuda.is_available():
        raise InbornError(f"device {name!r} was asked for but CUDA is not available here")
    return device


def autocast(device: torch.device, enabled: bool = True) -> contextlib.AbstractContextManager:
    """bf16 autocast on CUDA; a no-op elsewhere (CPU bf16 is slower than fp32 on most CPUs)."""
    if enabled and device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


@contextlib.contextmanager
def exact_float32(device: torch.device | str, enabled: bool = True) -> Iterator[None]:
    """float32 that is float32 inside: on CUDA, PyTorch runs float32 convolutions in TF32 by
    default (10-bit mantissa), so an evaluation recorded as float32 turns TF32 off for its span."""
    if not enabled or torch.device(device).type != "cuda":
        yield
        return
    conv, matmul = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = conv, matmul


def prepare_model(model: torch.nn.Module, device: torch.device) -> torch.nn.Module:
    """The model on `device`, in the memory layout that is faster there (`use_channels_last`).
    On CUDA it also turns on cuDNN's autotuner: a run's shapes repeat batch after batch, so the
    fastest convolution algorithm is timed once per shape and kept."""
    if device.type == "cuda" and not torch.are_deterministic_algorithms_enabled():  # --deterministic: no autotuning
        torch.backends.cudnn.benchmark = True
    model = model.to(device)
    if use_channels_last(model, device):
        model = model.to(memory_format=torch.channels_last)
    return model


def use_channels_last(model: torch.nn.Module, device: torch.device) -> bool:
    """Channels-last on CUDA (tensor cores); on CPU when the model has convolutions and none is
    grouped: there oneDNN's channels-last kernels train 1.1x to 1.3x faster, while depthwise
    ones (MobileNet, the DARTS cells) are as fast or slower (`python benchmarks/layouts.py`)."""
    if device.type == "cuda":
        return True
    convs = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
    return device.type == "cpu" and bool(convs) and all(m.groups == 1 for m in convs)


def compile_model(model: torch.nn.Module, enabled: bool = True) -> torch.nn.Module:
    """`model` with its calls compiled by torch.compile, in place (`nn.Module.compile`), when
    `enabled`; returned for convenience. The module object stays the same, so its state dict has
    the eager keys (no `_orig_mod.` prefix: checkpoints load into eager models), every reference
    to it (the attacks', DistributedDataParallel's) runs compiled, and a `copy.deepcopy` of it is
    eager. Compiling happens at the first call, and again for each new kind of call (train or
    eval mode, with or without gradients, each batch size).

    Shapes stay static (`dynamic=False`): with torch's automatic dynamic shapes a second batch size
    (an epoch's last batch, early stop's shrinking batch, a second model in the process) recompiled
    the graph with symbolic sizes, and inductor 2.13 failed on it on the CPU ("cannot determine
    truth value of Relational"); a static graph per size is recompiled instead, and past torch's
    recompile limit the new sizes run eagerly."""
    if enabled and getattr(model, "_compiled_call_impl", None) is None:
        model.compile(dynamic=False)
    return model


@contextlib.contextmanager
def compiled(model: torch.nn.Module, enabled: bool = True) -> Iterator[torch.nn.Module]:
    """`model` compiled (`compile_model`) inside the block and as it was after it: an evaluation
    compiles the caller's model for its own span only. A model compiled already stays so."""
    if not enabled or getattr(model, "_compiled_call_impl", None) is not None:
        yield model
        return
    compile_model(model)
    try:
        yield model
    finally:
        model._compiled_call_impl = None  # what nn.Module.compile set: the eager call again
