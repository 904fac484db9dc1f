"""inborn: adversarial robustness from a network's structure rather than its trained weights.

The public names load on first use, so that `import inborn` (and `inborn --help`) does not
import torch.
"""

from inborn.lazy import lazy_exports

__version__ = "0.1.0"

_EXPORTS = {"benchmark": "inborn.evaluation.benchmark", "create_model": "inborn.models",
            "evaluate": "inborn.evaluation.api", "load": "inborn.runs.load"}
__all__ = ["__version__", *_EXPORTS]
__getattr__, __dir__ = lazy_exports(globals(), _EXPORTS)
