"""Training: natural and adversarial (PGD, FGSM, FGSM-RS, free)."""

from inborn.train.config import TrainConfig
from inborn.train.loop import build_model, train

__all__ = ["TrainConfig", "build_model", "train"]
