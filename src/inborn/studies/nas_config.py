"""The settings of the architecture robustness study (`inborn nas`, the `nas` presets). No torch
here: the command line takes its defaults and help from these fields."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from inborn.settings import check_keys, check_values, from_mapping, setting
from inborn.values import SEED_MAX


@dataclass
class NasStudyConfig:
    data: str = setting("mnist5k", "data set name (see `inborn data`)")
    data_dir: str | None = setting(None, "directory holding the data set's files (local data sets)")
    archs: list[str] = setting(factory=lambda: ["resnet18", "vgg16_bn", "darts_v2", "pdarts", "random:0-2"],
                               help="comma-separated models; random:A-B stands for random:A ... random:B",
                               parse="names")
    # Architectures whose runs are ensembled (empty: no ensemble).
    ensemble: list[str] = setting(factory=lambda: ["random:0-2"], help="architectures to ensemble ('' for none)",
                                  parse="names")
    combine: str = setting("logits", "mean of the members' logits or log of their mean softmax",
                           choices=("logits", "softmax"))
    epochs: int = setting(5, "training epochs of every architecture", low=1)
    attacks: list[str] = setting(factory=lambda: ["fgsm", "rfgsm", "stepll", "pgd", "autoattack"],
                                 help="comma-separated attacks (see `inborn attacks`)", parse="names")
    # ε grid in pixel units; None: the data set's usual ε times 1/8, 1/4, 1/2 and 1.
    eps: list[float] | None = setting(None, "comma-separated ε grid in pixel units, e.g. 1/255,2/255,4/255,8/255 "
                                            "(default: the data set's ε times 1/8, 1/4, 1/2, 1)", parse="eps_list")
    steps: int = setting(20, "PGD steps", low=1)
    n: int = setting(500, "test images per attack", low=1)
    aa_n: int = setting(100, "test images for AutoAttack (the slow one)", low=1)
    # The ε at which AutoAttack runs (None: the whole grid). It is the slow attack, slowest at
    # small ε where many images survive APGD and reach FAB and Square.
    aa_eps: list[float] | None = setting(None, "comma-separated ε at which AutoAttack runs (default: the whole "
                                               "grid)", parse="eps_list")
    # A robust scratch ticket column: a PGD-searched mask at this keep ratio for every architecture.
    tickets: float | None = setting(None, "add a robust scratch ticket column at this keep ratio",
                                    parse="ratio", low=0, low_open=True, high=1)
    # Width multiplier of the hand-crafted networks, and options of the DARTS networks.
    width: float = setting(1.0, "width multiplier of the hand-crafted networks", low=0, low_open=True)
    nas_options: dict[str, Any] = setting(factory=dict, help="DARTS network option, e.g. init_channels=8, layers=5 "
                                                             "(repeatable)", flag="--nas-opt", parse="options")
    # Further training settings for every run (TrainConfig fields), e.g. lr, cutout, drop_path.
    train: dict[str, Any] = setting(factory=dict, help="training setting for every run, e.g. lr=0.05, cutout=8 "
                                                       "(repeatable)", flag="--train-opt", parse="options")
    # The NAS recipe's extras, applied to the DARTS networks only.
    nas_train: dict[str, Any] = setting(factory=dict, help="training setting for the DARTS networks only, e.g. "
                                                           "aux_weight=0.4, drop_path=0.2", flag="--nas-train-opt",
                                        parse="options")
    seed: int = setting(0, "seed of every run", low=0, high=SEED_MAX)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> NasStudyConfig:
        """From a mapping (YAML, a preset, the flags): ε written as `8/255` parsed, every value checked
        against its type and bounds."""
        check_keys(cls, d, "nas study")
        cfg = from_mapping(cls, d, "nas study")
        check_values(cfg)
        return cfg

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
