"""The settings of the architecture robustness study (`inborn nas`, the `nas` presets). No torch
here: the command line takes its defaults and help from these fields."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any

from inborn.errors import InbornError


@dataclass
class NasStudyConfig:
    data: str = "mnist5k"
    data_dir: str | None = None
    archs: list[str] = field(default_factory=lambda: ["resnet18", "vgg16_bn", "darts_v2", "pdarts", "random:0-2"])
    # Architectures whose runs are ensembled (empty: no ensemble).
    ensemble: list[str] = field(default_factory=lambda: ["random:0-2"])
    combine: str = "logits"
    epochs: int = 5
    attacks: list[str] = field(default_factory=lambda: ["fgsm", "rfgsm", "stepll", "pgd", "autoattack"])
    # ε grid in pixel units; None: the data set's usual ε times 1/8, 1/4, 1/2 and 1.
    eps: list[float] | None = None
    steps: int = 20
    n: int = 500
    aa_n: int = 100
    # The ε at which AutoAttack runs (None: the whole grid). It is the slow attack, slowest at
    # small ε where many images survive APGD and reach FAB and Square.
    aa_eps: list[float] | None = None
    # A robust scratch ticket column: a PGD-searched mask at this keep ratio for every architecture.
    tickets: float | None = None
    # Width multiplier of the hand-crafted networks, and options of the DARTS networks.
    width: float = 1.0
    nas_options: dict[str, Any] = field(default_factory=dict)
    # Further training settings for every run (TrainConfig fields), e.g. lr, cutout, drop_path.
    train: dict[str, Any] = field(default_factory=dict)
    # The NAS recipe's extras, applied to the DARTS networks only.
    nas_train: dict[str, Any] = field(default_factory=dict)
    seed: int = 0

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> NasStudyConfig:
        unknown = set(d) - {f.name for f in fields(cls)}
        if unknown:
            raise InbornError(f"unknown nas study keys: {', '.join(sorted(unknown))}")
        return cls(**d)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
