"""Supermasks: masks over frozen random weights (robust scratch tickets).

`SupermaskConfig` imports no torch; the rest loads on first use.
"""

from inborn.lazy import lazy_exports
from inborn.masks.config import INITS, PATTERNS, SupermaskConfig

_EXPORTS = {
    **dict.fromkeys(["compute_masks", "fix_masks", "mask_stats", "masked_layers", "reuse_masks", "scores_frozen",
                     "to_supermask"], "inborn.masks.convert"),
    **dict.fromkeys(["MaskedConv2d", "MaskedLayer", "MaskedLinear"], "inborn.masks.layers"),
}
__all__ = ["INITS", "PATTERNS", "SupermaskConfig", *_EXPORTS]
__getattr__, __dir__ = lazy_exports(globals(), _EXPORTS)
