"""The training configuration: every knob of a run, resolved and written to its directory.

Each field is one setting with its help text; `inborn train`, `search` and `finetune` build their
flags from these fields, and a YAML config or a sweep cell sets them by name. A field whose default
is None is filled when the config is resolved (`inborn.train.resolve`): from the data set's
recipe, the run's kind, or the data set itself (ε). No torch here.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from inborn.errors import InbornError
from inborn.masks.config import SupermaskConfig
from inborn.settings import check_keys, check_values, from_mapping, setting
from inborn.train.schedules import SCHEDULES
from inborn.train.tensorboard import LOGS
from inborn.values import EPS_MAX, SEED_MAX, refuse_duplicates

# The kinds of run the training loop makes (`inborn train`, `search`, `finetune`), any of which
# `--resume` continues and a sweep cell may be.
TRAIN_KINDS = ("train", "search", "finetune")
ADV_METHODS = ("none", "pgd", "fgsm", "fgsm-rs", "free")
ADV_MODES = ("train", "eval")
# The attacks a run's final test may run (torch-free names of `inborn.attacks.ATTACKS`): L-inf at the
# run's ε. The summary reports the worst case over those run.
TEST_ATTACKS = ("pgd", "cw", "eot-pgd", "autoattack")
WEIGHT_MODES = ("inherit", "reinit", "dense")
MASK_MODES = ("ticket", "random")


@dataclass
class FinetuneConfig:
    """Training on a ticket's structure: which weights start, and under which mask."""

    ticket: str | None = setting(None, "a run directory made by inborn search", cli=False)
    weights: str = setting("inherit", "the ticket's own random weights, fresh ones, or the whole network "
                                      "from the masked weights", choices=WEIGHT_MODES)
    mask: str = setting("ticket", "the ticket's mask, or a random one of the same size", choices=MASK_MODES)

    def validate(self) -> FinetuneConfig:
        check_values(self, "finetune.")  # weights and mask among their choices too
        if not self.ticket:
            raise InbornError("fine-tuning needs finetune.ticket: the run directory of a ticket")
        return self

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any] | FinetuneConfig) -> FinetuneConfig:
        if isinstance(d, dict):
            check_keys(cls, d, "finetune")
        return from_mapping(cls, d, "finetune")


@dataclass
class TrainConfig:
    data: str = setting("mnist5k", "data set name (see `inborn data`), default mnist5k")
    data_dir: str | None = setting(None, "directory holding the data set's files (local data sets)")
    arch: str = setting("conv4", "model name (see `inborn models`), default conv4")
    width: float = setting(1.0, "channel width multiplier, default 1.0", low=0, low_open=True)
    affine_bn: bool = setting(True, "non-affine BatchNorm (no learnable scale/shift)")
    model_kwargs: dict[str, Any] = setting(
        factory=dict, help="a model option, e.g. init_channels=8 or layers=5 for DARTS networks (repeatable)",
        flag="--model-opt", parse="options")
    epochs: int = setting(10, "training epochs", low=1)
    batch_size: int | None = setting(None, "batch size (default: the data set's recipe)", low=1)
    lr: float | None = setting(None, "learning rate (default: the data set's recipe)", low=0, low_open=True)
    momentum: float = setting(0.9, "SGD momentum", low=0)
    weight_decay: float = setting(5e-4, "SGD weight decay", low=0)
    nesterov: bool = setting(False, "Nesterov momentum")
    schedule: str | None = setting(None, "learning-rate schedule (default: the data set's recipe)",
                                   choices=SCHEDULES)
    milestones: list[int] | None = setting(None, "epochs at which multistep divides the lr by 10, e.g. 80,120",
                                           parse="int_list")
    grad_clip: float | None = setting(None, "clip the gradient norm to this value", low=0, low_open=True)
    augment: bool = setting(True, "no random crop / flip")
    # The NAS recipe (DARTS): cutout patch side in pixels (0: off), weight of the auxiliary
    # head's loss (0: no head), and the final drop-path probability, reached linearly.
    cutout: int = setting(0, "cutout patch side in pixels (NAS recipe; 0: off)", low=0)
    aux_weight: float = setting(0.0, "auxiliary head loss weight (NAS recipe, e.g. 0.4; 0: no head)", low=0)
    drop_path: float = setting(0.0, "final drop-path probability, reached linearly (NAS recipe)", low=0, high=1,
                               high_open=True)
    # Adversarial training. ε and step sizes are in pixel units.
    adv: str | None = setting(None, "adversarial training: none, pgd, fgsm, fgsm-rs, free (default none; pgd "
                                    "for search and finetune)")
    eps: float | None = setting(None, "ε in pixel units, e.g. 0.3 or 8/255 (default: the data set's usual ε)",
                                parse="eps", low=0, high=EPS_MAX)  # L-inf: ε = 1 reaches every image
    adv_steps: int = setting(7, "PGD steps for adv pgd (default 7)", low=1)
    adv_step_size: float | None = setting(None, "attack step in pixel units (default ε/4; 1.25ε for fgsm-rs)",
                                          parse="eps", low=0)
    free_replays: int = setting(4, "minibatch replays for adv free (default 4)", low=1)
    adv_mode: str = setting("train", "model mode while making training attacks", choices=ADV_MODES)
    eps_warmup_epochs: float | None = setting(None, "epochs over which ε ramps up linearly from 0 (default: the "
                                                    "data set's recipe)", flag="--eps-warmup", low=0)
    # Model selection on the validation split (never on test).
    val_fraction: float = setting(0.1, "share of train held out for model selection (0.1)", low=0, high=1,
                                  high_open=True)
    select_attack_steps: int = setting(10, "PGD steps of the validation attack that selects the checkpoint", low=1)
    test_attack_steps: int = setting(20, "steps of the final test's iterative attacks", low=1)
    # Cross-entropy PGD alone overstates sparse tickets (their softmax saturates); the margin loss
    # (CW) does not, so the summary's robust accuracy is the worst case over both by default.
    test_attacks: list[str] = setting(factory=lambda: ["pgd", "cw"], parse="names",
                                      help="attacks of the final test, e.g. pgd,cw (default): the summary's robust "
                                           f"accuracy is the worst case over them; known: {', '.join(TEST_ATTACKS)}")
    # Also test every epoch and report the best test figure, labelled as the RST reference's
    # protocol (selection on test: optimistic, never used to choose the model).
    test_every_epoch: bool = setting(False, "also report the best test robust accuracy over epochs (the RST "
                                            "reference's protocol, labelled as such; never used for selection)")
    seed: int = setting(0, "seed of the run (data order, validation split, attacks), in [0, 2**32-1]", low=0,
                        high=SEED_MAX)
    device: str = setting("auto", "auto, cpu, cuda or cuda:N")
    amp: bool = setting(True, "no bf16 autocast on CUDA")
    # Compiled in place (inborn.device.compile_model): the saved state dict is the eager model's.
    compile: bool = setting(False, "torch.compile the model for training, its attacks and evaluation (compiling "
                                   "takes a while at the start; float rounding differs from eager's, and training "
                                   "amplifies it)")
    log: str = setting("none", "also log every epoch's metrics to TensorBoard: event files in RUN/tensorboard "
                               "(`tensorboard --logdir RUN`; needs pip install 'inborn[tensorboard]')",
                       choices=LOGS)
    # PyTorch's deterministic algorithms (cuDNN's too, no benchmark autotuning): the same figures
    # on every run of one machine, at some cost in speed on CUDA.
    deterministic: bool = setting(False, "PyTorch's deterministic algorithms and cuDNN settings (recorded in the "
                                         "run's config): the same figures on every run, slower on CUDA")
    # A smoke run: every step of the real path on a sliver of the data, with the measured time
    # projected to the full run (inborn.train.smoke).
    smoke: bool = setting(False, "smoke run: 1 epoch of 2 batches and one evaluation batch, into a throwaway "
                                 "directory; prints the batch time and the projected time of a full epoch and run")
    # Robust scratch tickets: when set, only a mask over frozen weights is learned (a mapping of
    # SupermaskConfig's fields is taken too). `from_run` searches on a trained run's weights instead.
    ticket: SupermaskConfig | None = setting(None, "a ticket's settings (SupermaskConfig)", cli=False,
                                             nested=SupermaskConfig)
    from_run: str | None = setting(None, "search on this trained run's weights (a robust trained ticket)")
    # Training on a ticket's structure (see inborn.train.finetune).
    finetune: FinetuneConfig | None = setting(None, "fine-tuning settings (FinetuneConfig)", cli=False,
                                              nested=FinetuneConfig)

    def __post_init__(self) -> None:
        # Nested settings given as mappings (YAML, Python) become their dataclasses.
        if isinstance(self.ticket, dict):
            self.ticket = SupermaskConfig.from_dict(self.ticket)
        if isinstance(self.finetune, dict):
            self.finetune = FinetuneConfig.from_dict(self.finetune)

    @property
    def kind(self) -> str:
        return kind_of(self.ticket, self.finetune)

    def validate(self) -> TrainConfig:
        """Every setting's type, finiteness and range (from the fields' metadata), then the rules
        between settings; a config from flags, YAML, a preset or a sweep cell passes here."""
        check_values(self)  # bounds and choices live in the fields' metadata, checked once there
        for key in ("data", "arch"):
            if not getattr(self, key).strip():
                raise InbornError(f"{key} must name a {'data set' if key == 'data' else 'model'}, got ''")
        if self.adv is not None and self.adv not in ADV_METHODS:
            raise InbornError(f"unknown adversarial method {self.adv!r}; known: {', '.join(ADV_METHODS)}")
        if not self.test_attacks or any(a not in TEST_ATTACKS for a in self.test_attacks):
            raise InbornError(f"test_attacks must name one or more of {', '.join(TEST_ATTACKS)}, "
                              f"got {list(self.test_attacks)}")
        refuse_duplicates(list(self.test_attacks), "test_attacks")
        if self.ticket is not None:
            self.ticket.validate()
        if self.from_run and self.ticket is None:
            raise InbornError("from_run is the trained run a ticket is searched on: it needs ticket settings")
        if self.finetune is not None:
            self.finetune.validate()
        return self

    @property
    def resolved(self) -> bool:
        """Every setting the resolver fills is set (see inborn.train.resolve)."""
        return all(getattr(self, name) is not None for name in RESOLVED)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrainConfig:
        """From a mapping (YAML, a sweep cell, a run's config.yaml): ε as `8/255` parsed, nested
        settings typed; unknown keys are a one-line error."""
        if not isinstance(d, dict):
            raise InbornError(f"a training config must be a mapping of settings, got {type(d).__name__}")
        check_keys(cls, d, "training config")
        return from_mapping(cls, d, "training")


def kind_of(ticket: Any, finetune: Any) -> str:
    """The kind of run (one of TRAIN_KINDS) that these ticket and fine-tuning settings make."""
    return "finetune" if finetune is not None else "search" if ticket is not None else "train"


# The settings `inborn.train.resolve` fills when they are None.
RESOLVED = ("batch_size", "lr", "schedule", "eps_warmup_epochs", "adv")
