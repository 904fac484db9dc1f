"""Training: natural and adversarial (PGD, FGSM, FGSM-RS, free).

`TrainConfig` imports no torch (the command line builds its flags from it); `train` and
`resolve_config` (the one resolver of a run's settings) load on first use.
"""

from inborn.lazy import lazy_exports
from inborn.train.config import TrainConfig

__all__ = ["TrainConfig", "resolve_config", "train"]
__getattr__, __dir__ = lazy_exports(globals(), {"train": "inborn.train.loop", "resolve_config": "inborn.train.resolve"})
