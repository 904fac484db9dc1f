"""inborn: adversarial robustness from a network's structure rather than its trained weights."""

__version__ = "0.1.0"

from inborn.api import evaluate, load  # noqa: E402
from inborn.models import create_model  # noqa: E402

__all__ = ["__version__", "create_model", "evaluate", "load"]
