"""One resolver for a run's settings (inborn.train.resolve): a Python call and the command line make
the same run, the order of the layers holds, a NAS study's --train-opt reaches its ticket cells,
and a run directory written before the refactor still loads and resumes to the same figures."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml

from inborn.cli import build_parser, main
from inborn.cli.search import search_config
from inborn.errors import InbornError
from inborn.masks.config import SupermaskConfig
from inborn.store import ResultsDB, RunDir
from inborn.studies.nas import study_cells
from inborn.studies.nas_config import NasStudyConfig
from inborn.sweep.cells import CELL_YAML, write_cell_files
from inborn.train import TrainConfig, resolve_config, train
from inborn.train.recipes import recipe_defaults

FIXTURE = Path(__file__).parent / "fixtures" / "search-run-v0.1.0"
# The same settings, as Python keywords and as flags: a tiny PGD-AT run of fc on digits.
SETTINGS = {"data": "digits", "arch": "fc", "width": 0.25, "epochs": 1, "adv": "pgd", "eps": 0.1, "adv_steps": 1,
            "select_attack_steps": 1, "test_attack_steps": 1}
FLAGS = ["--data", "digits", "--arch", "fc", "--width", "0.25", "--epochs", "1", "--adv", "pgd", "--eps", "0.1",
         "--adv-steps", "1", "--select-attack-steps", "1", "--test-attack-steps", "1"]


def _config(run: Path) -> dict:
    return yaml.safe_load((run / "config.yaml").read_text())


def test_a_python_train_call_and_the_cli_write_the_same_config(tmp_path):
    cfg = TrainConfig(**SETTINGS)
    train(cfg, tmp_path / "python", db=ResultsDB(tmp_path / "db.sqlite"), progress=False)
    assert main(["train", *FLAGS, "--out", str(tmp_path / "cli"), "--db", str(tmp_path / "db.sqlite"),
                 "--quiet"]) == 0
    python, cli = _config(tmp_path / "python"), _config(tmp_path / "cli")
    assert python["config"] == cli["config"] and python["model"] == cli["model"]
    # The data set's recipe reached the Python call (it once got batch 128 and no ε warm-up).
    recipe = recipe_defaults("digits", "pgd")
    assert {k: python["config"][k] for k in recipe} == recipe
    assert recipe["batch_size"] != 128 and recipe["eps_warmup_epochs"] > 0
    # train() resolved a copy: the caller's config is as it was.
    assert cfg == TrainConfig(**SETTINGS) and cfg.batch_size is None and cfg.adv == "pgd"


def test_layers_resolve_in_order_defaults_recipe_inherited_yaml_explicit(tmp_path):
    assert resolve_config({"data": "digits"}).batch_size == recipe_defaults("digits", "none")["batch_size"]
    assert resolve_config({"data": "cifar10"}).batch_size == recipe_defaults("cifar10", "none")["batch_size"]
    cfg = resolve_config({"data": "digits", "lr": 0.3, "momentum": 0.5}, {"lr": 0.2})
    assert (cfg.lr, cfg.momentum, cfg.schedule) == (0.2, 0.5, recipe_defaults("digits", "none")["schedule"])
    # A search trains adversarially unless told otherwise; a ticket's keys merge layer by layer.
    cfg = resolve_config({"ticket": {"keep_ratio": "3/7", "pattern": "kernel"}}, {"ticket": {"weight_seed": 2}})
    assert cfg.kind == "search" and cfg.adv == "pgd"
    assert cfg.ticket == SupermaskConfig(keep_ratio=3 / 7, pattern="kernel", weight_seed=2)
    assert resolve_config({"eps": "8/255"}).eps == pytest.approx(8 / 255)
    # A fine-tuning run inherits its ticket's data and network below the layers given.
    ticket = RunDir(tmp_path / "ticket")
    ticket.write_config({"data": "digits", "arch": "fc", "width": 0.5, "eps": 0.2, "lr": 0.7},
                        {"arch": "fc", "supermask": {"keep_ratio": 0.2}}, kind="search")
    cfg = resolve_config({"finetune": {"ticket": str(ticket.path)}, "eps": 0.15})
    assert (cfg.data, cfg.arch, cfg.width, cfg.eps, cfg.adv) == ("digits", "fc", 0.5, 0.15, "pgd")
    assert cfg.lr == recipe_defaults("digits", "pgd")["lr"]  # only the ticket's data and network are inherited
    with pytest.raises(InbornError, match="fixes arch"):
        resolve_config({"finetune": {"ticket": str(ticket.path)}, "arch": "conv2"})
    with pytest.raises(InbornError, match="unknown training config keys: colour"):
        resolve_config({"colour": "red"})


def test_a_nas_studys_train_opt_reaches_its_ticket_cells(tmp_path):
    study = NasStudyConfig(data="digits", archs=["fc", "random:0"], ensemble=[], tickets=0.1,
                           train={"lr": 0.01, "batch_size": 16, "eps_warmup_epochs": 0.5})
    cells = study_cells(study, tmp_path / "study")
    searches = [c for c in cells if c.kind == "search"]
    assert len(searches) == 2
    for cell in searches:
        # Exactly as the cell's own process reads it: `inborn search --config cell.yaml`.
        write_cell_files(cell)
        args = build_parser().parse_args(["search", "--config", str(cell.out / CELL_YAML), "--out", str(cell.out)])
        cfg = search_config(args)
        assert (cfg.lr, cfg.batch_size, cfg.eps_warmup_epochs) == (0.01, 16, 0.5), cell.name
        assert cfg.adv == "pgd" and cfg.ticket.keep_ratio == 0.1
    for cell in cells:  # the training cells take it too
        assert resolve_config(cell.config).lr == 0.01


def test_a_run_written_before_the_refactor_resumes_to_the_uninterrupted_figures(tmp_path):
    run = tmp_path / "run"
    shutil.copytree(FIXTURE, run)
    cfg = TrainConfig.from_dict(_config(run)["config"])  # a partial ticket mapping, as 0.1.0 wrote it
    assert cfg.ticket == SupermaskConfig(keep_ratio=0.2, weight_seed=3)
    summary = train(None, run, resume=True, db=ResultsDB(tmp_path / "db.sqlite"), progress=False)
    # 0.1.0 tested cross-entropy PGD alone; a resumed run tests margin PGD beside it (its figure the
    # worst case over both), so PGD's own figure is the one to equal.
    expected = json.loads((FIXTURE / "expected.json").read_text())
    test = summary["test"]
    assert (test["n"], test["clean_acc"], test["per_attack"]["pgd-3"]) == \
        (expected["n"], expected["clean_acc"], expected["robust_acc"])
    assert test["attack"] == "pgd-3+cw-3" and test["robust_acc"] <= min(test["per_attack"].values())
    assert [h["epoch"] for h in RunDir(run).read_metrics()] == [0, 1]


def test_to_supermask_takes_the_tickets_config_as_its_keywords_did():
    import torch

    from inborn.masks import compute_masks, to_supermask
    from inborn.models import create_model

    def net():
        return create_model("conv2", num_classes=10, in_channels=1, image_size=16, width=0.25)

    config = SupermaskConfig(keep_ratio=0.3, pattern="kernel", weight_seed=4, score_seed=5)
    typed, keywords = to_supermask(net(), config), to_supermask(net(), 0.3, pattern="kernel", weight_seed=4,
                                                                 score_seed=5)
    assert typed.supermask == keywords.supermask == config
    for a, b in zip(compute_masks(typed), compute_masks(keywords), strict=True):
        assert torch.equal(a, b)
    with pytest.raises(InbornError, match="unknown ticket settings: sparsity"):
        to_supermask(net(), 0.3, sparsity=2)


def test_a_study_cell_written_with_the_recipe_in_its_config_is_still_the_same_cell(tmp_path):
    # Before the resolver, a NAS study wrote the data set's recipe into every cell's config: such a
    # directory is still this study's cell (it resolves to the same run), one with another lr is not.
    from inborn.sweep.cells import Cell, check_cell

    config = {"data": "digits", "arch": "fc", "epochs": 1, "adv": "none", "seed": 0, "width": 0.25}
    cell = Cell(name="fc", kind="train", config=config, out=tmp_path / "fc")
    cell.out.mkdir()
    old = {**cell.spec(), "config": {**recipe_defaults("digits", "none"), **config}}
    (cell.out / "cell.json").write_text(json.dumps(old))
    check_cell(cell)
    (cell.out / "cell.json").write_text(json.dumps({**old, "config": {**old["config"], "lr": 0.5}}))
    with pytest.raises(InbornError, match="other settings"):
        check_cell(cell)
