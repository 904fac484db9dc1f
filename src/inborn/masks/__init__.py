"""Supermasks: masks over frozen random weights (robust scratch tickets).

`SupermaskConfig` imports no torch; the rest loads on first use.
"""

from inborn.lazy import lazy_exports
from inborn.masks.config import SupermaskConfig

_EXPORTS = {
    **dict.fromkeys(["compute_masks", "fix_masks", "mask_stats", "masked_layers", "reuse_masks", "scores_frozen",
                     "to_supermask"], "inborn.masks.convert"),
    "INITS": "inborn.masks.init",
    **dict.fromkeys(["MaskedConv2d", "MaskedLayer", "MaskedLinear"], "inborn.masks.layers"),
    "PATTERNS": "inborn.masks.patterns",
}
__all__ = ["SupermaskConfig", *_EXPORTS]
__getattr__, __dir__ = lazy_exports(globals(), _EXPORTS)
