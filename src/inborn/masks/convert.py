"""`to_supermask`: turn any model into a supermask network over frozen random weights.

Every Conv2d and Linear becomes a masked layer (or, with dense_first / dense_last, stays a
dense layer with frozen random weights), every BatchNorm becomes non-affine. Nothing in the
model's own code changes, so every zoo model, DARTS networks included, gets tickets.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import torch
import torch.nn as nn

from inborn.errors import InbornError
from inborn.masks.config import SupermaskConfig, parse_nm
from inborn.masks.init import initial_scores, random_weight
from inborn.masks.layers import MaskedConv2d, MaskedLayer, MaskedLinear
from inborn.masks.patterns import kept_groups, top_k_mask
from inborn.values import check_seed


def classification_heads(layers: list[tuple[str, nn.Module]]) -> set[str]:
    """Names of the Linear layers whose rows are classes: the final one, and the last Linear of
    every auxiliary head (a module whose name contains `aux`, as DARTS's `auxiliary_head`)."""
    heads = {layers[-1][0]} if isinstance(layers[-1][1], nn.Linear) else set()
    last_in_aux: dict[str, str] = {}
    for name, layer in layers:
        parts = name.split(".")
        aux = next((".".join(parts[: i + 1]) for i, p in enumerate(parts[:-1]) if "aux" in p.lower()), None)
        if aux is not None and isinstance(layer, nn.Linear):
            last_in_aux[aux] = name
    return heads | set(last_in_aux.values())


def to_supermask(model: nn.Module, config: SupermaskConfig | float | None = None, *, reinit_weights: bool = True,
                 **settings: Any) -> nn.Module:
    """Convert `model` in place and return it.

    `config` is a SupermaskConfig, or a keep ratio, with (other) settings by keyword
    (`to_supermask(model, 0.05, pattern="kernel")`, `to_supermask(model, keep_ratio=0.05)`):
    keep_ratio: the fraction of weights KEPT in every masked layer (global scope: in total);
                keep_count says how a fraction becomes a count ("round", or the authors' "reference").
    pattern: element, row, kernel, filter, or N:M such as "2:4" (keep_ratio must be N/M); with
             filter, a final Linear classifier is masked element-wise (its rows are classes).
    init: how the frozen weights are drawn from `weight_seed` (signed_constant, kaiming_normal,
          kaiming_uniform, xavier_normal); `reinit_weights=False` keeps the model's own weights
          (robust trained tickets).
    """
    # The arguments checked as the CLI checks its flags: one-line InbornErrors naming them.
    if not isinstance(model, nn.Module):
        raise InbornError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if not isinstance(reinit_weights, bool):
        raise InbornError(f"reinit_weights must be True or False, got {reinit_weights!r}")
    if isinstance(config, bool) or not isinstance(config, SupermaskConfig | int | float | str | None):
        raise InbornError(f"config must be a SupermaskConfig or a keep ratio such as 0.05, got {config!r}")
    if not isinstance(config, SupermaskConfig):
        config = SupermaskConfig.from_dict({**({} if config is None else {"keep_ratio": config}), **settings})
    elif settings:
        config = SupermaskConfig.from_dict({**config.to_dict(), **settings})  # unknown keys named, text parsed
    cfg = config.validate()
    check_seed(cfg.weight_seed, "weight_seed")
    check_seed(cfg.score_seed, "score_seed")
    if cfg.scope == "global" and cfg.pattern != "element":  # checked where a model is built, as it was
        raise InbornError("global scope ranks single weights across layers: use pattern element")
    keep_ratio, pattern = cfg.keep_ratio, cfg.pattern

    layers = [(name, m) for name, m in model.named_modules() if type(m) in (nn.Conv2d, nn.Linear)]
    if not layers:
        raise InbornError("the model has no Conv2d or Linear layer to mask")
    dense = set()
    if cfg.dense_first:
        dense.add(layers[0][0])
    if cfg.dense_last:
        dense.add(layers[-1][0])
    weight_gen = torch.Generator().manual_seed(cfg.weight_seed)
    score_gen = torch.Generator().manual_seed(cfg.score_seed)
    nm = parse_nm(pattern)
    # A filter mask on a classifier would drop whole outputs: classes the network could never
    # predict. Classification heads are masked weight by weight (kept_groups' count, over single weights).
    heads = classification_heads(layers)
    for name, layer in layers:
        weight = (random_weight(layer.weight.shape, cfg.init, weight_gen, keep_ratio, cfg.scale_fan) if reinit_weights
                  else layer.weight.detach().cpu().clone())
        if name in dense:
            new: nn.Module = _dense_copy(layer, weight)
        else:
            if nm is not None and layer.weight.shape[1] % nm[1]:
                raise InbornError(f"{pattern} sparsity needs the input size of layer {name!r} "
                                  f"({layer.weight.shape[1]}) to be divisible by {nm[1]}; try --dense-first")
            layer_pattern = "element" if pattern == "filter" and name in heads else pattern
            new = _masked_copy(layer, weight, initial_scores(layer.weight.shape, score_gen), keep_ratio, layer_pattern,
                               cfg.keep_count)
            new.layer_name = name
        _set_module(model, name, new.to(layer.weight.device))
    for name, module in list(model.named_modules()):
        if isinstance(module, nn.BatchNorm2d | nn.BatchNorm1d) and module.affine:
            _set_module(model, name, _non_affine(module))
    model.supermask = cfg  # type: ignore[assignment]
    if cfg.scope == "global":
        model.register_forward_pre_hook(_global_masks_before)
        model.register_forward_hook(_global_masks_after)
    return model


def masked_layers(model: nn.Module) -> list[MaskedLayer]:
    return [m for m in model.modules() if isinstance(m, MaskedLayer)]


def compute_masks(model: nn.Module) -> list[torch.Tensor]:
    """Every masked layer's mask, computed once (global scope: one ranking over all layers)."""
    layers = masked_layers(model)
    cfg = getattr(model, "supermask", None)
    if cfg is not None and cfg.scope == "global":
        with torch.no_grad():
            flat = torch.cat([m.scores.abs().flatten() for m in layers])
            keep = top_k_mask(flat, kept_groups(flat.numel(), cfg.keep_ratio, cfg.keep_count))  # the rule, on the total
            out, start = [], 0
            for m in layers:
                out.append(keep[start : start + m.scores.numel()].view_as(m.scores))
                start += m.scores.numel()
            return out
    return [m.compute_mask() for m in layers]


@contextlib.contextmanager
def reuse_masks(model: nn.Module) -> Iterator[None]:
    """Compute each mask once and reuse it for every forward inside (the PGD steps of a batch)."""
    layers = masked_layers(model)
    if all(layer.mask_is_fixed for layer in layers):  # fixed masks need no recomputing
        yield
        return
    for layer, mask in zip(layers, compute_masks(model), strict=True):
        layer._batch_mask = mask
    try:
        yield
    finally:
        for layer in layers:
            layer._batch_mask = None


@contextlib.contextmanager
def scores_frozen(model: nn.Module) -> Iterator[None]:
    """No straight-through node and no gradient to the scores inside (the attack steps)."""
    layers = [m for m in masked_layers(model) if m.scores is not None and m.scores.requires_grad]
    for m in layers:
        m.scores.requires_grad_(False)
    try:
        yield
    finally:
        for m in layers:
            m.scores.requires_grad_(True)


def fix_masks(model: nn.Module, masks: list[torch.Tensor] | None = None) -> None:
    """Freeze the masks (from the scores, or given): later forwards ignore the scores."""
    layers = masked_layers(model)
    masks = compute_masks(model) if masks is None else masks
    if len(masks) != len(layers):
        raise InbornError(f"{len(masks)} masks given for {len(layers)} masked layers")
    for layer, mask in zip(layers, masks, strict=True):
        if mask.shape != layer.weight.shape:
            raise InbornError(f"a mask of shape {tuple(mask.shape)} does not fit layer {layer.layer_name!r}")
        layer.fixed_mask = mask.to(layer.weight.device, layer.weight.dtype)
        layer.packed_mask = None


def mask_stats(model: nn.Module) -> dict[str, Any]:
    """Kept weights per masked layer and in total."""
    per_layer, kept, total = {}, 0, 0
    for layer, mask in zip(masked_layers(model), current_masks(model), strict=True):
        k, n = int(mask.sum()), mask.numel()
        per_layer[layer.layer_name] = {"kept": k, "total": n}
        kept, total = kept + k, total + n
    return {"kept": kept, "total": total, "keep_ratio": kept / max(total, 1), "layers": per_layer}


def current_masks(model: nn.Module) -> list[torch.Tensor]:
    """The masks in use: the fixed ones if set, else those the scores give now."""
    layers = masked_layers(model)
    if all(m.mask_is_fixed for m in layers):
        return [m.current_mask() for m in layers]
    return compute_masks(model)


def _global_masks_before(model: nn.Module, args: Any) -> None:
    # Global top-k needs every layer's scores at once: rank them here, before the forward,
    # unless the masks are already fixed or set for this batch by `reuse_masks`.
    layers = masked_layers(model)
    if any(m.mask_is_fixed or m._batch_mask is not None for m in layers):
        return
    for layer, mask in zip(layers, compute_masks(model), strict=True):
        layer._batch_mask = mask
    model._global_masks_set = True  # type: ignore[assignment]


def _global_masks_after(model: nn.Module, args: Any, output: Any) -> None:
    if getattr(model, "_global_masks_set", False):
        for layer in masked_layers(model):
            layer._batch_mask = None
        model._global_masks_set = False  # type: ignore[assignment]


def _masked_copy(layer: nn.Module, weight: torch.Tensor, scores: torch.Tensor, keep_ratio: float,
                 pattern: str, keep_count: str = "round") -> MaskedLayer:
    if isinstance(layer, nn.Conv2d):
        new = MaskedConv2d(layer.in_channels, layer.out_channels, layer.kernel_size, stride=layer.stride,
                           padding=layer.padding, dilation=layer.dilation, groups=layer.groups, bias=False,
                           padding_mode=layer.padding_mode)
    else:
        new = MaskedLinear(layer.in_features, layer.out_features, bias=False)
    new.weight = nn.Parameter(weight, requires_grad=False)
    new.scores = nn.Parameter(scores)
    new._init_mask_state(keep_ratio, pattern, keep_count)
    return new


def _dense_copy(layer: nn.Module, weight: torch.Tensor) -> nn.Module:
    """A dense layer with frozen random weights and no bias (first or last layer)."""
    if isinstance(layer, nn.Conv2d):
        new = nn.Conv2d(layer.in_channels, layer.out_channels, layer.kernel_size, stride=layer.stride,
                        padding=layer.padding, dilation=layer.dilation, groups=layer.groups, bias=False,
                        padding_mode=layer.padding_mode)
    else:
        new = nn.Linear(layer.in_features, layer.out_features, bias=False)
    new.weight = nn.Parameter(weight, requires_grad=False)
    return new


def _non_affine(bn: nn.Module) -> nn.Module:
    new = type(bn)(bn.num_features, eps=bn.eps, momentum=bn.momentum, affine=False,
                   track_running_stats=bn.track_running_stats)
    if bn.track_running_stats:
        new.running_mean.copy_(bn.running_mean)
        new.running_var.copy_(bn.running_var)
        new.num_batches_tracked.copy_(bn.num_batches_tracked)
    return new.to(bn.running_mean.device if bn.running_mean is not None else "cpu")


def _set_module(root: nn.Module, name: str, module: nn.Module) -> None:
    parent_name, _, child = name.rpartition(".")
    parent = root.get_submodule(parent_name) if parent_name else root
    setattr(parent, child, module)
