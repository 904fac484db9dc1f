"""Export a ticket as a plain model: the state dict of the ordinary dense network, with the
dropped weights set to zero, which loads into that architecture with plain PyTorch.

The report gives the ticket's real size: the non-zero parameters of the exported network (the
weights it computes with: kept weights, dense layers, BatchNorm scales; the masked-out weights and
the all-zero biases and shifts excluded), bytes as those values plus 1-bit position maps, and the
compression against the dense float32 model.
"""

from __future__ import annotations

import json
from typing import Any

import torch
import torch.nn as nn

from inborn.errors import InbornError
from inborn.masks.convert import masked_layers
from inborn.spec.build import build_model, plain_spec


def export_plain(ticket: nn.Module, spec: dict[str, Any]) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """(state dict of the plain network, size report). `ticket` is a loaded supermask model."""
    plain = build_model(plain_spec(spec)).to("cpu").eval()
    ticket = ticket.to("cpu").eval()
    own = ticket.state_dict()
    masked = {name: layer for name, layer in ticket.named_modules() if layer in set(masked_layers(ticket))}
    out: dict[str, torch.Tensor] = {}
    for key, value in plain.state_dict().items():
        module_name, _, leaf = key.rpartition(".")
        if module_name in masked and leaf == "weight":
            out[key] = (masked[module_name].weight * masked[module_name].current_mask()).detach().clone()
        elif key in own:
            out[key] = own[key].detach().clone()
        elif leaf == "bias":  # masked/frozen layers have no bias; non-affine BN shifts by 0
            out[key] = torch.zeros_like(value)
        elif leaf == "weight" and isinstance(plain.get_submodule(module_name), nn.modules.batchnorm._BatchNorm):
            out[key] = torch.ones_like(value)  # non-affine BN scales by 1
        else:
            raise InbornError(f"cannot export {key!r}: the ticket has no counterpart")
    plain.load_state_dict(out)
    _check_same_function(ticket, plain, spec)
    return {k: v.contiguous() for k, v in out.items()}, size_report(ticket, plain)


def size_report(ticket: nn.Module, plain: nn.Module) -> dict[str, Any]:
    """Sizes of `plain`, the exported network (its parameters hold the exported values).

    nonzero: its parameters that are not exactly zero. sparse_bytes: the float32 values of those,
    plus a 1-bit position map over every parameter tensor that mixes zeros and non-zeros (a
    masked weight); a tensor without zeros needs no map, an all-zero one (a bias the ticket does
    not have) is left out. Buffers (BatchNorm statistics, normalisation) are counted in neither,
    nor in `parameters` and dense_bytes.
    """
    layers = masked_layers(ticket)
    maskable = sum(layer.weight.numel() for layer in layers)
    kept = sum(int(layer.current_mask().sum()) for layer in layers)
    tensors = [p.detach() for p in plain.parameters()]
    params = sum(t.numel() for t in tensors)
    counts = [(int(t.count_nonzero()), t.numel()) for t in tensors]
    nonzero = sum(c for c, _ in counts)
    map_bits = sum(n for c, n in counts if 0 < c < n)
    dense_bytes = 4 * params
    sparse_bytes = 4 * nonzero + -(-map_bits // 8)
    ticket_bytes = -(-maskable // 8)  # given the weights' seed: the masks alone
    return {
        "parameters": params, "maskable": maskable, "kept": kept, "nonzero": nonzero,
        "keep_ratio": kept / max(maskable, 1), "dense_bytes": dense_bytes, "sparse_bytes": sparse_bytes,
        "compression": dense_bytes / sparse_bytes, "mask_bits_bytes": ticket_bytes,
    }


def _check_same_function(ticket: nn.Module, plain: nn.Module, spec: dict[str, Any]) -> None:
    """The export must compute what the ticket computes; refuse to write it otherwise."""
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(4, spec["in_channels"], spec["image_size"], spec["image_size"], generator=gen)
    with torch.no_grad():
        a, b = ticket(x), plain(x)
    if not torch.allclose(a, b, rtol=1e-4, atol=1e-4):
        raise InbornError(f"the exported model differs from the ticket (max |Δ| {float((a - b).abs().max()):.3g})")


def export_metadata(spec: dict[str, Any], report: dict[str, Any]) -> dict[str, str]:
    return {"inborn_model": json.dumps(plain_spec(spec), sort_keys=True), "inborn_export": json.dumps(report),
            "format": "plain state dict; dropped weights are zeros"}
