"""Evaluation numbers: HRS, the worst case, and AutoAttack through pyautoattack."""

from __future__ import annotations

import pytest

import inborn
from inborn.analysis.metrics import harmonic_robustness_score


def test_hrs():
    assert harmonic_robustness_score(0.9, 0.6) == pytest.approx(2 * 0.9 * 0.6 / 1.5)
    assert harmonic_robustness_score(0.8, 0.8) == pytest.approx(0.8)
    assert harmonic_robustness_score(0.0, 0.0) == 0.0


def test_worst_case_is_per_sample_and_no_better_than_any_attack(digits_model):
    model, x, y = digits_model
    res = inborn.evaluate(model, (x, y), attacks=["fgsm", "pgd", "stepll"], eps=[0.03, 0.08], steps=5)
    for w in res["worst_case"]:
        rows = [r for r in res["results"] if r["eps"] == w["eps"]]
        assert w["robust_acc"] <= min(r["robust_acc"] for r in rows)
    assert all(r["robust_acc"] <= res["clean_acc"] for r in res["results"])


def test_autoattack_is_at_least_as_strong_as_pgd_and_reports_its_warnings(digits_model):
    model, x, y = digits_model
    res = inborn.evaluate(model, (x[:48], y[:48]), attacks=["pgd", "autoattack"], eps=[0.03], steps=10)
    pgd, aa = res["results"]
    assert aa["attack"] == "autoattack"
    assert aa["robust_acc"] <= pgd["robust_acc"]
    assert isinstance(aa["warnings"], list)
    assert "apgd-ce" in aa["robust_acc_after"]


def test_eval_takes_eot_samples(digits_model):
    model, x, y = digits_model
    res = inborn.evaluate(model, (x[:16], y[:16]), attacks=["eot-pgd"], eps=[0.05], steps=2, eot_samples=2)
    assert res["results"][0]["attack"] == "eot-pgd" and 0 <= res["results"][0]["robust_acc"] <= res["clean_acc"]
