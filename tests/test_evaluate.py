"""Evaluation numbers: HRS, the worst case, and AutoAttack through pyautoattack."""

from __future__ import annotations

import pytest
import torch

import inborn
from inborn.errors import InbornError
from inborn.evaluation.metrics import harmonic_robustness_score


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


class _Killed(Exception):
    pass


def _count_batches(monkeypatch, die_at: int | None = None) -> list[int]:
    """Count the batches evaluated from now on; with `die_at`, the die_at-th one (once) raises
    _Killed, as a kill would mid-evaluation. Returns the list that grows by one per batch."""
    import inborn.evaluation.evaluate as ev

    real, calls, died = ev._evaluate_batch, [], []

    def counted(*args, **kwargs):
        calls.append(1)
        if len(calls) == die_at and not died:
            died.append(1)
            raise _Killed
        return real(*args, **kwargs)

    monkeypatch.setattr(ev, "_evaluate_batch", counted)
    return calls


def test_an_interrupted_evaluation_resumes_at_the_batch_and_equals_a_whole_one(digits_model, tmp_path, monkeypatch):
    model, x, y = digits_model
    kw = {"attacks": ["pgd", "fgsm"], "eps": [0.05, 0.1], "steps": 5, "batch_size": 16}  # 8 batches
    whole = inborn.evaluate(model, (x, y), **kw)
    journal = tmp_path / "eval.journal.json"
    calls = _count_batches(monkeypatch, die_at=4)
    with pytest.raises(_Killed):
        inborn.evaluate(model, (x, y), journal=journal, **kw)
    assert journal.exists()
    calls.clear()
    resumed = inborn.evaluate(model, (x, y), journal=journal, **kw)
    assert len(calls) == 8 - 3  # the three recorded batches are not attacked again
    assert resumed == whole
    assert not journal.exists()


def test_a_journal_of_another_model_or_other_settings_is_not_used(digits_model, tmp_path, monkeypatch):
    import copy

    import torch

    model, x, y = digits_model
    journal = tmp_path / "eval.journal.json"
    kw = {"attacks": ["pgd"], "eps": [0.05], "steps": 3, "batch_size": 32}  # 4 batches
    _count_batches(monkeypatch, die_at=3)
    with pytest.raises(_Killed):
        inborn.evaluate(model, (x, y), journal=journal, **kw)
    other = copy.deepcopy(model)
    with torch.no_grad():
        next(other.parameters()).add_(1e-3)
    calls = _count_batches(monkeypatch)
    inborn.evaluate(other, (x, y), journal=journal, **kw)
    assert len(calls) == 4  # nothing reused from the first model's journal
    journal.write_text("{ torn")  # a corrupt journal is ignored, not trusted
    calls.clear()
    assert inborn.evaluate(model, (x, y), journal=journal, **{**kw, "steps": 4})["n"] == 128
    assert len(calls) == 4


def test_the_saved_adversarial_points_give_the_evaluations_figures(digits_model):
    """evaluate(adversarial={}) (`inborn eval --save-adv`): per attack and ε, the points the attack
    returned and their images' indices; inside the ε-ball, and the model's accuracy on them is the
    reported robust accuracy."""
    from inborn.evaluation.evaluate import adversarial_key, evaluate

    model, x, y = digits_model
    points: dict = {}
    res = evaluate(model, (x[:64], y[:64]), attacks=["pgd", "fgsm"], eps=[0.05, 0.1], steps=3, batch_size=24,
                   adversarial=points)
    assert set(points) == {adversarial_key(a, e) for a in ("pgd", "fgsm") for e in (0.05, 0.1)}
    for r in res.results:
        got = points[adversarial_key(r.attack, r.eps)]
        x_adv, index = torch.cat(got["x_adv"]), torch.cat(got["index"])
        assert index.unique().numel() == len(index) and int(index.max()) < 64  # across the three batches
        assert (x_adv - x[index]).abs().max() <= r.eps + 1e-6 and x_adv.min() >= 0 and x_adv.max() <= 1
        with torch.no_grad():
            right = model(x_adv).argmax(1).eq(y[index]).sum().item()
        assert right == round(r.robust_acc * 64)
    with pytest.raises(InbornError, match="no journal"):
        evaluate(model, (x[:8], y[:8]), attacks=["pgd"], eps=[0.1], adversarial={}, journal="j.json")
