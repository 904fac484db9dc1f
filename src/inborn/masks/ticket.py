"""What a ticket stores: scores (to continue the search) and bit-packed masks (to use it).

The frozen weights are not stored when they can be redrawn from their seed and init; a
SHA-256 of them is, so a ticket refuses to load if the redrawn weights differ (for example
under another torch version's random number generator).
"""

from __future__ import annotations

import hashlib
import json

import torch
import torch.nn as nn

from inborn.errors import InbornError
from inborn.masks.convert import current_masks, fix_masks, masked_layers
from inborn.masks.layers import MaskedLayer
from inborn.masks.packing import pack_mask, unpack_mask

MASK_PREFIX = "packed_mask::"


def frozen_weight_names(model: nn.Module) -> list[str]:
    """State-dict names of the random weights under the masks (masked layers and dense first/last)."""
    return [f"{name}.weight" for name, m in model.named_modules() if isinstance(m, nn.Conv2d | nn.Linear)]


def weights_digest(model: nn.Module) -> str:
    h = hashlib.sha256()
    state = model.state_dict()
    for name in frozen_weight_names(model):
        h.update(name.encode())
        h.update(state[name].detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def ticket_tensors(model: nn.Module, *, store_weights: bool) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """Tensors and metadata to save for a supermask model."""
    skip = set() if store_weights else set(frozen_weight_names(model))
    tensors = {k: v for k, v in model.state_dict().items() if k not in skip}
    names = {id(m): n for n, m in model.named_modules()}
    for layer, mask in zip(masked_layers(model), current_masks(model), strict=True):
        tensors[MASK_PREFIX + names[id(layer)]] = pack_mask(mask)
    meta = {"inborn_weights_digest": weights_digest(model), "inborn_weights_stored": json.dumps(store_weights)}
    return tensors, meta


def load_ticket_tensors(model: nn.Module, tensors: dict[str, torch.Tensor], meta: dict[str, str], source: str) -> None:
    """Load a ticket into a freshly converted model (its weights already redrawn from the seed)."""
    own = model.state_dict()
    try:
        stored_weights = bool(json.loads(meta.get("inborn_weights_stored", "false")))
    except ValueError as e:
        raise InbornError(f"ticket {source!r} has metadata that is not JSON (inborn_weights_stored)") from e
    frozen = set(frozen_weight_names(model))
    expected = set(own) if stored_weights else set(own) - frozen
    present = {k for k in tensors if not k.startswith(MASK_PREFIX)}
    names = {id(m): n for n, m in model.named_modules()}
    layers = masked_layers(model)
    mask_keys = {MASK_PREFIX + names[id(m)] for m in layers}
    bad = [k for k in expected if k not in present or tuple(tensors[k].shape) != tuple(own[k].shape)]
    if bad or (present - set(own)) or not mask_keys <= set(tensors):
        raise InbornError(f"ticket {source!r} does not fit this model (e.g. {(bad or sorted(present - set(own)))[:1]})")
    model.load_state_dict({k: tensors[k] for k in present}, strict=False)
    digest = meta.get("inborn_weights_digest")
    if digest and weights_digest(model) != digest:
        raise InbornError(f"the weights redrawn for ticket {source!r} differ from the ones it was found on "
                          "(another torch version or weight seed?)")
    fix_masks(model, [unpack_mask(tensors[MASK_PREFIX + names[id(m)]], m.weight.shape) for m in layers])


def is_supermask(model: nn.Module) -> bool:
    return any(isinstance(m, MaskedLayer) for m in model.modules())
