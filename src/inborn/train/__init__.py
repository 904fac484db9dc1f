"""Training: natural and adversarial (PGD, FGSM, FGSM-RS, free).

`TrainConfig` imports no torch (the command line builds its flags from it); `train` loads on first use.
"""

from inborn.lazy import lazy_exports
from inborn.train.config import TrainConfig

__all__ = ["TrainConfig", "train"]
__getattr__, __dir__ = lazy_exports(globals(), {"train": "inborn.train.loop"})
