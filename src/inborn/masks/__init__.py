"""Supermasks: masks over frozen random weights (robust scratch tickets)."""

from inborn.masks.convert import (
    SupermaskConfig,
    compute_masks,
    fix_masks,
    mask_stats,
    masked_layers,
    reuse_masks,
    scores_frozen,
    supermask_config,
    to_supermask,
)
from inborn.masks.init import INITS
from inborn.masks.layers import MaskedConv2d, MaskedLayer, MaskedLinear
from inborn.masks.patterns import PATTERNS

__all__ = [
    "INITS", "PATTERNS", "MaskedConv2d", "MaskedLayer", "MaskedLinear", "SupermaskConfig", "compute_masks",
    "fix_masks", "mask_stats", "masked_layers", "reuse_masks", "scores_frozen", "supermask_config", "to_supermask",
]
