"""Model selection on the validation split (never on test), and the one test of the selected
checkpoint that a run's summary reports."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn as nn

from inborn.data import DataSplits
from inborn.evaluation.evaluate import evaluate
from inborn.evaluation.results import Evaluation, ResultView
from inborn.masks import mask_stats, reuse_masks, scores_frozen
from inborn.masks.ticket import is_supermask
from inborn.runs import load
from inborn.store import RunDir
from inborn.train.config import TrainConfig

NO_VALIDATION = "no validation split: no selection is possible, so the last epoch is the one tested"


@dataclass(frozen=True, eq=False)  # equality is the view's: the same dict, the same figures
class TestFigures(ResultView):
    """The one test of the selected checkpoint: clean accuracy, the robust accuracy of the worst
    case over the test attacks (`attack` names them, e.g. `pgd-20+cw-20`) and its HRS, and each
    attack's own robust accuracy (`per_attack`, keyed as `attack` names them)."""

    n: int
    clean_acc: float
    attack: str
    robust_acc: float
    hrs: float
    per_attack: dict[str, float] | None = None

    def to_dict(self) -> dict[str, Any]:
        out = super().to_dict()
        return out if self.per_attack is not None else {k: v for k, v in out.items() if k != "per_attack"}

    def robust_text(self, eps: float) -> str:
        """`pgd-20 at ε=0.1: 0.3310`, or the worst case with each attack's figure beside it."""
        each = self.per_attack or {}
        if len(each) < 2:
            return f"{self.attack} at ε={eps:.4g}: {self.robust_acc:.4f}"
        return (f"worst of {', '.join(each)} at ε={eps:.4g}: {self.robust_acc:.4f} ("
                + ", ".join(f"{k} {v:.4f}" for k, v in each.items()) + ")")


@dataclass(eq=False)
class RunSummary(ResultView):
    """What a training run reports (`summary.json`, the database's row, `train`'s return): `to_dict()`
    is the file's content, with the optional parts only where the run has them."""

    kind: str
    arch: str
    data: str
    adv: str
    eps: float
    epochs: int
    best_epoch: int
    selected_on: str
    test: TestFigures
    train_seconds: float
    reference_protocol: dict[str, Any] | None = None  # the RST reference's protocol: selected on test
    ticket: dict[str, Any] | None = None  # a ticket's settings and kept weights
    finetune: dict[str, Any] | None = None
    warning: str | None = None
    smoke: dict[str, Any] | None = None  # a smoke run's measured and projected times

    def to_dict(self) -> dict[str, Any]:
        out = super().to_dict()
        out["test"] = self.test.to_dict()
        return {k: v for k, v in out.items() if v is not None}


def validate(model: nn.Module, splits: DataSplits, cfg: TrainConfig, eps: float) -> dict[str, Any]:
    """Validation figures and the score that selects the checkpoint (robust accuracy for
    adversarial runs, clean accuracy for natural ones). The test split is not touched."""
    if len(splits.val) == 0:
        return {"select_on": "last_epoch", "select_score": 0.0}
    if cfg.adv == "none":
        with reuse_masks(model), scores_frozen(model):  # the product weight × mask reused by every forward
            res = evaluate(model, splits.val, attacks=[], eps=[], identify=False)
        return {"val_clean_acc": res["clean_acc"], "select_on": "val_clean_acc", "select_score": res["clean_acc"]}
    with reuse_masks(model), scores_frozen(model):  # the product weight × mask reused by every forward
        res = evaluate(model, splits.val, attacks=["pgd"], eps=[eps], steps=cfg.select_attack_steps, seed=0,
                       identify=False)
    robust = res["results"][0]["robust_acc"]
    return {"val_clean_acc": res["clean_acc"], "val_robust_acc": robust,
            "select_on": f"val_pgd{cfg.select_attack_steps}_acc", "select_score": robust}


def robust_on_test(model: nn.Module, splits: DataSplits, cfg: TrainConfig) -> float:
    """Test robust accuracy of this epoch's model: the RST reference's protocol, reported only."""
    with reuse_masks(model), scores_frozen(model):  # the product weight × mask reused by every forward
        res = evaluate(model, splits.test, attacks=["pgd"], eps=[cfg.eps], steps=cfg.test_attack_steps, seed=0)
    return res["results"][0]["robust_acc"]


def test_figures(res: Evaluation) -> TestFigures:
    """A run's test figures from its test evaluation (one ε): the worst case over its attacks."""
    labels = {r.attack: r.attack if r.attack == "autoattack" else f"{r.attack}-{r.steps}" for r in res.results}
    worst = res.worst_case[0]
    return TestFigures(res.n, res.clean_acc, "+".join(labels.values()), worst.robust_acc, worst.hrs,
                       {labels[r.attack]: r.robust_acc for r in res.results})


def finish(run: RunDir, cfg: TrainConfig, spec: dict[str, Any], splits: DataSplits, best: dict[str, Any],
           history: list[dict[str, Any]], device: torch.device, progress: bool,
           ) -> tuple[RunSummary, Evaluation]:
    """Test the selected checkpoint once (the test attacks at the run's ε), write the summary;
    return it and the test evaluation."""
    model = load(run.path, device=device)
    res = evaluate(model, splits.test, attacks=list(cfg.test_attacks), eps=[cfg.eps], steps=cfg.test_attack_steps,
                   seed=0, progress=progress, journal=run.file("test.journal.json"))
    test = test_figures(res)
    summary = RunSummary(cfg.kind, cfg.arch, cfg.data, cfg.adv, cfg.eps, cfg.epochs, best["epoch"],
                         history[-1]["select_on"], test, sum(h["seconds"] for h in history))
    if cfg.test_every_epoch:
        top = max(history, key=lambda h: h["test_robust_acc"])
        summary.reference_protocol = {
            "note": "best epoch chosen on TEST robust accuracy, as the RST reference did: optimistic",
            "epoch": top["epoch"], "robust_acc": top["test_robust_acc"],
        }
    if is_supermask(model):
        stats = mask_stats(model)
        # Over a trained run's weights (from_run) the init and weight seed describe nothing kept.
        weights = f"trained ({cfg.from_run})" if spec.get("weights") == "stored" else "random"
        summary.ticket = {**spec["supermask"], "kept": stats["kept"], "maskable": stats["total"], "weights": weights}
    if cfg.finetune is not None:
        summary.finetune = cfg.finetune.to_dict()
    if summary.selected_on == "last_epoch":
        summary.warning = NO_VALIDATION
    run.write_summary(summary.to_dict())
    return summary, res
