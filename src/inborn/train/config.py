"""The training configuration: every knob of a run, resolved and written to its directory."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any

from inborn.errors import InbornError

ADV_METHODS = ("none", "pgd", "fgsm", "fgsm-rs", "free")


@dataclass
class TrainConfig:
    data: str = "mnist5k"
    data_dir: str | None = None
    arch: str = "conv4"
    width: float = 1.0
    affine_bn: bool = True
    model_kwargs: dict[str, Any] = field(default_factory=dict)
    epochs: int = 10
    batch_size: int = 128
    lr: float = 0.1
    momentum: float = 0.9
    weight_decay: float = 5e-4
    nesterov: bool = False
    schedule: str = "multistep"
    milestones: list[int] | None = None
    grad_clip: float | None = None
    augment: bool = True
    # The NAS recipe (DARTS): cutout patch side in pixels (0: off), weight of the auxiliary
    # head's loss (0: no head), and the final drop-path probability, reached linearly.
    cutout: int = 0
    aux_weight: float = 0.0
    drop_path: float = 0.0
    # Adversarial training. ε and step sizes are in pixel units.
    adv: str = "none"
    eps: float | None = None
    adv_steps: int = 7
    adv_step_size: float | None = None
    free_replays: int = 4
    adv_mode: str = "train"
    eps_warmup_epochs: float = 0.0
    # Model selection on the validation split (never on test).
    val_fraction: float = 0.1
    select_attack_steps: int = 10
    test_attack_steps: int = 20
    # Also test every epoch and report the best test figure, labelled as the RST reference's
    # protocol (selection on test: optimistic, never used to choose the model).
    test_every_epoch: bool = False
    seed: int = 0
    device: str = "auto"
    amp: bool = True
    # Robust scratch tickets: when set, only a mask over frozen weights is learned. The keys
    # are `to_supermask`'s (keep_ratio, pattern, init, scope, dense_first, dense_last,
    # scale_fan, weight_seed). `from_run` searches on a trained run's weights instead.
    ticket: dict[str, Any] | None = None
    from_run: str | None = None
    # Training on a ticket's structure: {"ticket": RUN, "weights": inherit|reinit|dense,
    # "mask": ticket|random} (see inborn.train.finetune).
    finetune: dict[str, Any] | None = None

    @property
    def kind(self) -> str:
        if self.finetune is not None:
            return "finetune"
        return "search" if self.ticket is not None else "train"

    def validate(self) -> TrainConfig:
        if self.adv not in ADV_METHODS:
            raise InbornError(f"unknown adversarial method {self.adv!r}; known: {', '.join(ADV_METHODS)}")
        if self.eps is not None and self.eps < 0:
            raise InbornError(f"ε must be >= 0, got {self.eps}")
        if self.epochs < 1:
            raise InbornError(f"epochs must be >= 1, got {self.epochs}")
        if self.batch_size < 1:
            raise InbornError(f"batch size must be >= 1, got {self.batch_size}")
        if self.lr <= 0:
            raise InbornError(f"learning rate must be positive, got {self.lr}")
        if self.adv_mode not in ("train", "eval"):
            raise InbornError(f"adv_mode must be train or eval, got {self.adv_mode!r}")
        if self.cutout < 0:
            raise InbornError(f"cutout must be >= 0 pixels, got {self.cutout}")
        if self.aux_weight < 0:
            raise InbornError(f"auxiliary loss weight must be >= 0, got {self.aux_weight}")
        if not 0 <= self.drop_path < 1:
            raise InbornError(f"drop-path probability must be in [0, 1), got {self.drop_path}")
        if self.adv != "none" and self.adv_steps < 1:
            raise InbornError(f"adversarial steps must be >= 1, got {self.adv_steps}")
        return self

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrainConfig:
        known = {f.name for f in fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise InbornError(f"unknown training config keys: {', '.join(sorted(unknown))}")
        return cls(**d)
