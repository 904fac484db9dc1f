"""Model selection on the validation split (never on test), and the one test of the selected
checkpoint that a run's summary reports."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn as nn

from inborn.data import DataSplits
from inborn.evaluation.evaluate import evaluate
from inborn.masks import mask_stats, reuse_masks
from inborn.masks.ticket import is_supermask
from inborn.runs import load
from inborn.store import RunDir
from inborn.train.config import TrainConfig

NO_VALIDATION = "no validation split: no selection is possible, so the last epoch is the one tested"


def validate(model: nn.Module, splits: DataSplits, cfg: TrainConfig, eps: float) -> dict[str, Any]:
    """Validation figures and the score that selects the checkpoint (robust accuracy for
    adversarial runs, clean accuracy for natural ones). The test split is not touched."""
    if len(splits.val) == 0:
        return {"select_on": "last_epoch", "select_score": 0.0}
    if cfg.adv == "none":
        with reuse_masks(model):
            res = evaluate(model, splits.val, attacks=[], eps=[], identify=False)
        return {"val_clean_acc": res["clean_acc"], "select_on": "val_clean_acc", "select_score": res["clean_acc"]}
    with reuse_masks(model):
        res = evaluate(model, splits.val, attacks=["pgd"], eps=[eps], steps=cfg.select_attack_steps, seed=0,
                       identify=False)
    robust = res["results"][0]["robust_acc"]
    return {"val_clean_acc": res["clean_acc"], "val_robust_acc": robust,
            "select_on": f"val_pgd{cfg.select_attack_steps}_acc", "select_score": robust}


def robust_on_test(model: nn.Module, splits: DataSplits, cfg: TrainConfig) -> float:
    """Test robust accuracy of this epoch's model: the RST reference's protocol, reported only."""
    with reuse_masks(model):
        res = evaluate(model, splits.test, attacks=["pgd"], eps=[cfg.eps], steps=cfg.test_attack_steps, seed=0)
    return res["results"][0]["robust_acc"]


def finish(run: RunDir, cfg: TrainConfig, spec: dict[str, Any], splits: DataSplits, best: dict[str, Any],
           history: list[dict[str, Any]], device: torch.device, progress: bool,
           ) -> tuple[dict[str, Any], dict[str, Any]]:
    """Test the selected checkpoint once (PGD at the run's ε), write the summary; return it
    and the test evaluation."""
    model = load(run.path, device=device)
    res = evaluate(model, splits.test, attacks=["pgd"], eps=[cfg.eps], steps=cfg.test_attack_steps,
                   seed=0, progress=progress, journal=run.file("test.journal.json"))
    row = res["results"][0]
    summary = {
        "kind": cfg.kind, "arch": cfg.arch, "data": cfg.data, "adv": cfg.adv, "eps": cfg.eps,
        "epochs": cfg.epochs, "best_epoch": best["epoch"], "selected_on": history[-1]["select_on"],
        "test": {"n": res["n"], "clean_acc": res["clean_acc"], "attack": f"pgd-{cfg.test_attack_steps}",
                 "robust_acc": row["robust_acc"], "hrs": row["hrs"]},
        "train_seconds": sum(h["seconds"] for h in history),
    }
    if cfg.test_every_epoch:
        top = max(history, key=lambda h: h["test_robust_acc"])
        summary["reference_protocol"] = {
            "note": "best epoch chosen on TEST robust accuracy, as the RST reference did: optimistic",
            "epoch": top["epoch"], "robust_acc": top["test_robust_acc"],
        }
    if is_supermask(model):
        stats = mask_stats(model)
        summary["ticket"] = {**spec["supermask"], "kept": stats["kept"], "maskable": stats["total"]}
    if cfg.finetune is not None:
        summary["finetune"] = cfg.finetune.to_dict()
    if summary["selected_on"] == "last_epoch":
        summary["warning"] = NO_VALIDATION
    run.write_summary(summary)
    return summary, res
