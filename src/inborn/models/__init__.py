"""The model zoo: `create_model(name, ...)` builds any registered model.

Every model takes pixels in [0, 1] and returns logits; its normalisation is its first layer.
"""

from __future__ import annotations

from collections.abc import Sequence

from inborn.errors import InbornError

# Importing the family modules registers them.
from inborn.models import darts, densenet, frankle, mobilenet_v2, preact_resnet, resnet, vgg, wide_resnet  # noqa: F401
from inborn.models.layers import Classifier, Normalize
from inborn.models.registry import (
    check_model_args,
    check_width,
    model_entry,
    model_names,
    model_patterns,
    register_model,
)

__all__ = ["Classifier", "Normalize", "create_model", "list_models", "model_names", "register_model"]


def create_model(
    name: str,
    *,
    num_classes: int = 10,
    in_channels: int = 3,
    width: float = 1.0,
    image_size: int = 32,
    affine_bn: bool = True,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
    **kwargs,
) -> Classifier:
    """Build a registered model with its normalisation inside.

    `mean`/`std` default to the identity (no normalisation); pass the data set's own.
    `affine_bn=False` makes every BatchNorm non-affine (no learnable scale or shift).
    """

    mean, std = check_model_args(name, num_classes=num_classes, in_channels=in_channels, width=width,
                                 image_size=image_size, affine_bn=affine_bn, mean=mean, std=std)
    entry = model_entry(name)
    mean = mean if mean is not None else (0.0,) * in_channels
    std = std if std is not None else (1.0,) * in_channels
    if len(mean) != in_channels or len(std) != in_channels:
        raise InbornError(f"mean/std need {in_channels} values, one per input channel")
    try:
        body = entry.fn(
            num_classes=num_classes, in_channels=in_channels, width=width,
            image_size=image_size, affine_bn=affine_bn, **kwargs,
        )
    except TypeError as e:
        if "unexpected keyword argument" not in str(e):
            raise
        raise InbornError(f"model {name!r} does not take the option(s) {', '.join(sorted(kwargs))}") from e
    check_width(lambda w: entry.fn(num_classes=num_classes, in_channels=in_channels, width=w,
                                   image_size=image_size, affine_bn=affine_bn, **kwargs), body, width, name)
    return Classifier(body, mean, std)


def list_models() -> list[tuple[str, str, str]]:
    """(name, family, summary) for every registered model, then the parametrised ones (`random:SEED`)."""
    rows = [(n, model_entry(n).family, model_entry(n).summary) for n in model_names()]
    return rows + [(p.name, p.family, p.summary) for p in model_patterns()]
