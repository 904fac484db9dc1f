"""`build_model(spec)`: the network a spec describes, a supermask network when it has a ticket."""

from __future__ import annotations

from typing import Any

import torch.nn as nn

from inborn.errors import InbornError
from inborn.masks import SupermaskConfig, to_supermask
from inborn.models import create_model
from inborn.spec.imported import build_imported, is_imported

# Keys a ticket adds to the spec of its plain network.
TICKET_KEYS = ("supermask", "weights")
# Keys every spec needs (a hand-edited config may lack one): a registered model, or an imported one.
BUILT_KEYS = ("arch", "num_classes", "in_channels", "image_size", "width", "affine_bn", "mean", "std")
IMPORTED_KEYS = ("arch", "source", "factory", "num_classes", "in_channels", "image_size", "mean", "std")


def missing_fields(spec: dict[str, Any]) -> list[str]:
    """The keys `spec` lacks to be built, in order (none: it can be)."""
    return [k for k in (IMPORTED_KEYS if is_imported(spec) else BUILT_KEYS) if k not in spec]


def build_model(spec: dict[str, Any], dense_weights: nn.Module | None = None) -> nn.Module:
    """The network of `spec`; a supermask network when the spec has one (over `dense_weights`'
    trained weights if given, else over weights redrawn from the spec's seed)."""
    missing = missing_fields(spec)
    if missing:
        raise InbornError(f"the model spec lacks {missing[0]!r} (model.{missing[0]} in its config.yaml)")
    if is_imported(spec):  # a user's own network (`inborn import`)
        model: nn.Module = build_imported(spec)
    else:
        model = create_model(
            spec["arch"], num_classes=spec["num_classes"], in_channels=spec["in_channels"],
            image_size=spec["image_size"], width=spec["width"], affine_bn=spec["affine_bn"],
            mean=spec["mean"], std=spec["std"], **spec.get("kwargs", {}),
        )
    if dense_weights is not None:
        model.load_state_dict(dense_weights.state_dict())
    if "supermask" in spec:
        ticket = SupermaskConfig.from_dict(spec["supermask"])
        to_supermask(model, ticket, reinit_weights=spec.get("weights", "seed") == "seed")
    return model


def plain_spec(spec: dict[str, Any]) -> dict[str, Any]:
    """The spec of the ordinary dense network under a ticket."""
    return {k: v for k, v in spec.items() if k not in TICKET_KEYS}
