"""One source per setting: the flags of train, search and finetune are TrainConfig's (and the
ticket's, SupermaskConfig's) fields; a `--config` YAML sets every one of them, and only the flags
given explicitly override it."""

from __future__ import annotations

from dataclasses import fields

import pytest
import yaml

from inborn.cli import build_parser
from inborn.cli.finetune import finetune_config
from inborn.cli.search import search_config
from inborn.cli.train import resolve_config
from inborn.errors import InbornError
from inborn.masks.config import SupermaskConfig
from inborn.store import RunDir
from inborn.train.config import FinetuneConfig, TrainConfig

# A value unlike the default (and unlike every data set's recipe) for every TrainConfig field.
NON_DEFAULT = {
    "data": "digits", "data_dir": "/data/elsewhere", "arch": "conv2", "width": 0.25, "affine_bn": False,
    "model_kwargs": {"depth_hint": 3}, "epochs": 3, "batch_size": 16, "lr": 0.02, "momentum": 0.8,
    "weight_decay": 1e-3, "nesterov": True, "schedule": "cosine", "milestones": [1, 2], "grad_clip": 2.5,
    "augment": False, "cutout": 4, "aux_weight": 0.3, "drop_path": 0.1, "adv": "fgsm", "eps": 0.05,
    "adv_steps": 3, "adv_step_size": 0.01, "free_replays": 2, "adv_mode": "eval", "eps_warmup_epochs": 0.5,
    "val_fraction": 0.2, "select_attack_steps": 5, "test_attack_steps": 7, "test_attacks": ["cw"],
    "test_every_epoch": True, "seed": 9, "device": "cpu", "amp": False, "compile": True, "smoke": True,
    "log": "tensorboard", "deterministic": True,
}
TICKET = {"keep_ratio": 0.3, "pattern": "kernel", "init": "kaiming_normal", "scope": "global",
          "keep_count": "reference", "dense_first": True, "dense_last": True, "scale_fan": True, "weight_seed": 3,
          "score_seed": 4}


def _args(*argv: str):
    return build_parser().parse_args(list(argv))


def _yaml(tmp_path, doc) -> str:
    path = tmp_path / "cfg.yaml"
    path.write_text(yaml.safe_dump(doc))
    return str(path)


def test_every_training_setting_has_a_flag_or_is_a_mapping():
    flagged = {f.name for f in fields(TrainConfig) if f.metadata.get("cli", True)}
    assert set(NON_DEFAULT) | {"from_run"} == flagged  # the test's table covers every flag
    assert {f.name for f in fields(TrainConfig)} - flagged == {"ticket", "finetune"}
    assert all(f.metadata.get("help") for f in fields(TrainConfig))
    defaults = TrainConfig()
    assert all(getattr(defaults, k) != v for k, v in NON_DEFAULT.items())


def test_train_config_honours_every_yaml_key_and_a_flag_overrides_one(tmp_path):
    path = _yaml(tmp_path, NON_DEFAULT)
    cfg = resolve_config(_args("train", "--config", path, "--out", "x"))
    assert {k: getattr(cfg, k) for k in NON_DEFAULT} == NON_DEFAULT
    cfg = resolve_config(_args("train", "--config", path, "--out", "x", "--lr", "0.3", "--eps", "8/255",
                               "--model-opt", "extra=1"))
    assert cfg.lr == 0.3 and cfg.eps == pytest.approx(8 / 255)
    assert cfg.model_kwargs == {"depth_hint": 3, "extra": 1}  # a mapping merges key by key
    assert {k: getattr(cfg, k) for k in NON_DEFAULT if k not in ("lr", "eps", "model_kwargs")} == \
        {k: v for k, v in NON_DEFAULT.items() if k not in ("lr", "eps", "model_kwargs")}


def test_flags_not_given_leave_the_yaml_alone(tmp_path):
    # Boolean flags too: --no-augment absent must not reset a YAML's augment: false (nor set it).
    path = _yaml(tmp_path, {"augment": False, "affine_bn": False, "test_every_epoch": True})
    cfg = resolve_config(_args("train", "--config", path, "--out", "x"))
    assert (cfg.augment, cfg.affine_bn, cfg.test_every_epoch) == (False, False, True)
    cfg = resolve_config(_args("train", "--out", "x", "--no-augment"))
    assert (cfg.augment, cfg.affine_bn, cfg.test_every_epoch) == (False, True, False)


def test_search_config_honours_every_yaml_key_and_a_flag_overrides_one(tmp_path):
    # `inborn search --config` used to drop from_run and turn pattern: kernel into element.
    doc = {**NON_DEFAULT, "ticket": TICKET, "from_run": "runs/dense"}
    path = _yaml(tmp_path, doc)
    cfg = search_config(_args("search", "--config", path, "--out", "x"))
    assert cfg.ticket.to_dict() == TICKET and cfg.from_run == "runs/dense" and cfg.kind == "search"
    assert {k: getattr(cfg, k) for k in NON_DEFAULT} == NON_DEFAULT  # adv fgsm kept: pgd is only the default
    cfg = search_config(_args("search", "--config", path, "--out", "x", "--pattern", "filter", "--keep", "0.5"))
    assert cfg.ticket.to_dict() == {**TICKET, "pattern": "filter", "keep_ratio": 0.5}
    assert cfg.from_run == "runs/dense"


def test_search_defaults_to_pgd_and_writes_the_whole_ticket(tmp_path):
    cfg = search_config(_args("search", "--keep", "0.2", "--out", "x", "--data", "digits"))
    assert cfg.adv == "pgd"
    assert cfg.ticket.to_dict() == SupermaskConfig(keep_ratio=0.2).to_dict()
    with pytest.raises(InbornError, match="--keep is required"):
        search_config(_args("search", "--out", "x"))
    with pytest.raises(InbornError, match="unknown ticket settings: sparsity"):
        search_config(_args("search", "--config", _yaml(tmp_path, {"ticket": {"keep_ratio": 0.1, "sparsity": 2}}),
                            "--out", "x"))


def _ticket_run(tmp_path):
    run = RunDir(tmp_path / "ticket")
    run.write_config({"data": "digits", "arch": "fc", "width": 0.5, "eps": 0.2, "val_fraction": 0.15},
                     {"arch": "fc", "supermask": {"keep_ratio": 0.2}}, kind="search")
    return str(run.path)


def test_finetune_config_honours_every_yaml_key_and_a_flag_overrides_one(tmp_path):
    ticket = _ticket_run(tmp_path)
    finetune = {"ticket": ticket, "weights": "reinit", "mask": "random"}
    # The network and data are the ticket's (a different value is refused, see below); the rest the YAML sets.
    settings = {**NON_DEFAULT, "arch": "fc", "width": 0.5}
    path = _yaml(tmp_path, {**settings, "finetune": finetune})
    cfg = finetune_config(_args("finetune", "--config", path, "--out", "x"))
    assert cfg.finetune.to_dict() == finetune and cfg.kind == "finetune"
    assert {k: getattr(cfg, k) for k in settings} == settings  # the YAML beats the ticket's other settings
    cfg = finetune_config(_args("finetune", "--config", path, "--out", "x", "--weights", "dense", "--epochs", "1"))
    assert cfg.finetune.to_dict() == {**finetune, "weights": "dense"} and cfg.epochs == 1


def test_finetune_inherits_the_tickets_settings_below_the_yaml(tmp_path):
    ticket = _ticket_run(tmp_path)
    cfg = finetune_config(_args("finetune", ticket, "--out", "x"))
    assert (cfg.data, cfg.arch, cfg.width, cfg.eps, cfg.val_fraction, cfg.adv) == ("digits", "fc", 0.5, 0.2, 0.15,
                                                                                   "pgd")
    assert cfg.finetune.to_dict() == FinetuneConfig(ticket=ticket).to_dict()
    path = _yaml(tmp_path, {"val_fraction": 0.3})
    cfg = finetune_config(_args("finetune", ticket, "--config", path, "--out", "x", "--eps", "0.1"))
    assert (cfg.val_fraction, cfg.eps) == (0.3, 0.1)
    # What the ticket fixes (its network, its data) is never overridden, so never recorded falsely.
    for argv in (["--width", "1.0"], ["--arch", "conv2"], ["--data", "mnist5k"]):
        with pytest.raises(InbornError, match="fixes"):
            finetune_config(_args("finetune", ticket, "--out", "x", *argv))
    with pytest.raises(InbornError, match="name the ticket"):
        finetune_config(_args("finetune", "--out", "x"))


def test_nas_defaults_are_the_study_configs_and_the_yaml_is_read_first(tmp_path):
    from inborn.cli.nas import study_config
    from inborn.studies.nas_config import NasStudyConfig

    assert study_config(_args("nas", "--out", "x")) == NasStudyConfig()
    path = _yaml(tmp_path, {"archs": ["resnet18"], "eps": ["1/255", 0.5], "epochs": 2, "train": {"lr": 0.05}})
    cfg = study_config(_args("nas", "--out", "x", "--config", path, "--epochs", "3", "--ensemble", ""))
    assert (cfg.archs, cfg.eps, cfg.epochs, cfg.train, cfg.ensemble) == (["resnet18"], [1 / 255, 0.5], 3,
                                                                         {"lr": 0.05}, [])
