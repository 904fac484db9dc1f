"""Rows of the results database, built in one place for every writer (train, eval, ensemble,
the studies), so that every row carries every setting that changes its number."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def result_row(run_path: str | Path, split: str, attack: str, eps: float, *, n: int, clean_acc: float,
               robust_acc: float, hrs: float, settings: dict[str, Any] | None = None,
               extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """One row. `settings` holds the identity fields (steps, step_size, restarts, eot_samples,
    repeats, seed, precision, fingerprint, randomised); what it lacks takes the database's default."""
    return {"run_path": run_path, "split": split, "attack": attack, "eps": eps, "n": n, "clean_acc": clean_acc,
            "robust_acc": robust_acc, "hrs": hrs, **(settings or {}), "extra": extra or {}}


def evaluation_rows(result: dict[str, Any], run_path: str | Path, split: str) -> list[dict[str, Any]]:
    """The rows of an `evaluate` result: one per attack and ε, and the worst case over several attacks."""
    common = {k: result.get(k) for k in ("repeats", "seed", "precision", "fingerprint", "randomised")}
    rows = []
    for r in result["results"]:
        settings = {**common, "steps": r["steps"], "step_size": r.get("step_size"), "restarts": r.get("restarts"),
                    "eot_samples": r.get("eot_samples")}
        extra = {"warnings": r.get("warnings", []), "robust_acc_std": r.get("robust_acc_std")}
        rows.append(result_row(run_path, split, r["attack"], r["eps"], n=result["n"], clean_acc=result["clean_acc"],
                               robust_acc=r["robust_acc"], hrs=r["hrs"], settings=settings, extra=extra))
    attacks = sorted({r["attack"] for r in result["results"]})
    if len(attacks) > 1:
        for w in result["worst_case"]:
            same_eps = [r for r in result["results"] if r["eps"] == w["eps"]]
            settings = {**common, "steps": max(r["steps"] for r in same_eps),
                        "restarts": max(r.get("restarts") or 1 for r in same_eps),
                        "eot_samples": max(r.get("eot_samples") or 1 for r in same_eps)}
            rows.append(result_row(run_path, split, "worst:" + "+".join(w["attacks"]), w["eps"], n=result["n"],
                                   clean_acc=result["clean_acc"], robust_acc=w["robust_acc"], hrs=w["hrs"],
                                   settings=settings, extra={"robust_acc_std": w.get("robust_acc_std")}))
    return rows
