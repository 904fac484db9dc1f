"""Typed evaluation results and their dict view, the one column name, attacks' own verdicts
through the Attack base's hooks, and R2S's one set of settings."""

from __future__ import annotations

import copy
import inspect
import json
import pickle
import re
from dataclasses import fields

import pytest
import torch
import torch.nn as nn

import inborn.evaluation.evaluate as engine
from inborn.analysis.r2s import evaluate_r2s
from inborn.analysis.r2s_config import PROTOCOLS, R2SSettings
from inborn.attacks import ATTACKS, PGD, Attack, AttackReport, AutoAttack
from inborn.data import load_data
from inborn.errors import InbornError
from inborn.evaluation.evaluate import evaluate, predict, worst_case_over
from inborn.evaluation.journal import unpack_flags
from inborn.evaluation.results import AttackResult, Evaluation, WorstCase, evaluation_rows
from inborn.io import strict_json
from inborn.masks import to_supermask
from inborn.masks.family import TicketFamily, ticket_from_state
from inborn.masks.ticket import ticket_tensors
from inborn.models import create_model
from inborn.tables import SAMPLE_DIGITS, result_column

# The keys users see today, in their order (`inborn eval --json` prints them unsorted).
EVALUATION_KEYS = ["n", "clean_acc", "clean_acc_std", "results", "worst_case", "randomised", "repeats", "precision",
                   "seed", "warnings", "per_sample", "fingerprint"]
RESULT_KEYS = ["attack", "eps", "steps", "step_size", "restarts", "eot_samples", "robust_acc", "robust_acc_std", "hrs",
               "attack_repr"]
WORST_KEYS = ["eps", "attacks", "robust_acc", "robust_acc_std", "hrs"]


@pytest.fixture(scope="module")
def evaluation(digits_model):
    model, x, y = digits_model
    return evaluate(model, (x[:40], y[:40]), attacks=["fgsm", "pgd"], eps=[0.05, 0.1], steps=2, batch_size=16,
                    per_sample=True)


def test_an_evaluation_reads_as_the_dict_it_writes(evaluation):
    res = evaluation
    assert isinstance(res, Evaluation) and all(isinstance(r, AttackResult) for r in res.results)
    assert all(isinstance(w, WorstCase) for w in res.worst_case)
    assert list(res.to_dict()) == EVALUATION_KEYS and list(res) == EVALUATION_KEYS
    assert dict(res) == res.to_dict()
    assert [list(r) for r in res["results"]] == [RESULT_KEYS] * 4
    assert [list(w) for w in res["worst_case"]] == [WORST_KEYS] * 2
    # The attributes and the view say the same; a typed row equals its dict.
    assert res.clean_acc == res["clean_acc"] and res.n == res["n"] == 40
    for typed, plain in zip(res.results, res["results"], strict=True):
        assert typed == plain and typed.to_dict() == plain
        assert typed.robust_acc == typed["robust_acc"] == plain["robust_acc"]
        assert typed.get("warnings") is None and "warnings" not in typed
    # JSON: the same text as the dict's, and back again the same keys and values.
    assert strict_json(res, indent=2) == strict_json(res.to_dict(), indent=2)
    assert json.loads(json.dumps(res)) == res.to_dict()


def test_an_evaluation_is_annotated_but_its_own_keys_are_read_only(evaluation):
    res = copy.deepcopy(evaluation)
    assert res == evaluation and res.results[0].robust_acc == evaluation.results[0].robust_acc
    res.update({"run": "somewhere", "seconds": 1.5})  # what `inborn eval` adds before it writes eval.json
    res["split"] = "test"
    assert list(res)[-3:] == ["run", "seconds", "split"] and "run" not in res.to_dict()
    for key in ("n", "results", "fingerprint"):
        with pytest.raises(InbornError, match="read-only"):
            res[key] = 0
        with pytest.raises(InbornError, match="read-only"):
            res.update({key: 0})
        with pytest.raises(InbornError, match="read-only"):
            del res[key]
    with pytest.raises(AttributeError):
        res.n = 3  # type: ignore[misc]
    again = pickle.loads(pickle.dumps(res))
    assert again == res and again.to_dict() == res.to_dict() and again["run"] == "somewhere"
    # The database rows read the typed result and its JSON alike.
    assert evaluation_rows(res, "r", "test") == evaluation_rows(json.loads(json.dumps(res)), "r", "test")


def test_result_column_is_the_one_name_of_a_column(evaluation):
    e = 8 / 255
    assert result_column("pgd", e) == f"pgd@{e:.4g}" == "pgd@0.03137"
    assert result_column("pgd", e, metric="hrs") == f"hrs pgd@{e:.4g}"
    assert result_column("worst", 0.05) == "worst@0.05"
    assert result_column("pgd", e, digits=SAMPLE_DIGITS) == f"pgd@{e:.6g}"
    assert set(evaluation.per_sample) == {"clean", *(result_column(a, e, digits=SAMPLE_DIGITS)
                                                     for a in ("fgsm", "pgd") for e in (0.05, 0.1))}


def test_the_worst_case_over_evaluations_is_evaluates_own(digits_model, evaluation):
    model, x, y = digits_model
    for w in evaluation.worst_case:  # over one evaluation: exactly its own worst case
        assert worst_case_over([evaluation], w.eps).to_dict() == {**w.to_dict(), "n": evaluation.n}
    # Over an evaluation on fewer images: on the images both ran on.
    few = evaluate(model, (x[:24], y[:24]), attacks=["pgd"], eps=[0.1], steps=3, seed=1, per_sample=True)
    both = worst_case_over([evaluation, few], 0.1)
    assert both.n == 24 and both.attacks == ["fgsm", "pgd", "pgd"]
    flags = [unpack_flags(evaluation.per_sample[k])[:, :24] for k in ("clean", "fgsm@0.1", "pgd@0.1")]
    survived = flags[0] & flags[1] & flags[2] & unpack_flags(few.per_sample["pgd@0.1"])
    assert both.robust_acc == survived.float().mean().item()
    assert worst_case_over([evaluation, few], 0.3) is None
    with pytest.raises(InbornError, match="per_sample"):
        worst_case_over([evaluate(model, (x[:8], y[:8]), attacks=["fgsm"], eps=[0.1])], 0.1)


class _Verdict(Attack):
    """Returns the points unchanged, but judges every other point it is given as fooled, and reports."""

    name = "verdict"
    reports = True

    def __init__(self, eps: float, **kw) -> None:
        super().__init__(eps, **kw)
        self.batch_sizes: list[int] = []
        self.given = 0

    def set_batch_size(self, batch_size: int) -> bool:
        self.batch_sizes.append(batch_size)
        return False

    def perturb(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        self.given = len(x)
        return x.clone()

    def fooled(self) -> torch.Tensor | None:
        return torch.arange(self.given) % 2 == 0

    def report(self) -> AttackReport | None:
        return AttackReport(warnings=["judged"], robust_after={"half": self.given // 2})


def test_an_attacks_own_verdict_is_anded_in_with_no_case_for_autoattack(digits_model, monkeypatch):
    source = inspect.getsource(engine)
    # No case for one kind of attack (`isinstance(attack, ...)`); checking the `attacks` argument is fine.
    assert not re.search(r"isinstance\(attack\b", source) and not hasattr(engine, "AutoAttack")
    model, x, y = digits_model
    monkeypatch.setitem(ATTACKS, "verdict", (_Verdict, {}, "a test attack with a verdict of its own"))
    res = evaluate(model, (x[:40], y[:40]), attacks=["verdict"], eps=[0.1], batch_size=16)
    # Per batch the attacked points are the clean-correct ones; the verdict fools the even ones among them.
    clean = predict(model, x[:40], 16).eq(y[:40])
    expected = sum(int(c.sum()) // 2 for c in clean.split(16)) / 40
    row = res.results[0]
    assert res.clean_acc == clean.float().mean().item() > expected > 0  # unchanged points, lower accuracy
    assert row.robust_acc == pytest.approx(expected)
    assert row.warnings == ["judged"]
    assert row.robust_acc_after == {"half": sum(int(c.sum()) // 2 for c in clean.split(16)) / 40}
    assert list(res["results"][0])[-2:] == ["warnings", "robust_acc_after"]


def test_autoattack_tells_its_verdict_through_the_base_hooks():
    pgd, aa = PGD(0.1), AutoAttack(0.1)
    assert not pgd.set_batch_size(7) and pgd.fooled() is None and pgd.report() is None and not pgd.reports
    assert aa.set_batch_size(7) and aa.batch_size == 7 and aa.reports
    aa.last_fooled = torch.tensor([True, False])
    assert aa.fooled() is aa.last_fooled
    aa._given = 10
    aa.last_report = {"warnings": ["b", "a"], "robust_accuracy_after": {"apgd-ce": 0.5, "apgd-t": 0.3}}
    assert aa.report() == AttackReport(warnings=["a", "b"], robust_after={"apgd-ce": 5, "apgd-t": 3})


def _tiny_family() -> tuple[TicketFamily, torch.Tensor, torch.Tensor]:
    """Two untrained tickets over one weight tensor: enough to check that R2S computes the same."""
    splits = load_data("digits")
    info = splits.info

    def net(keep: float) -> nn.Module:
        torch.manual_seed(0)
        model = create_model("fc", num_classes=10, in_channels=1, image_size=info.image_size, width=0.25,
                             mean=info.mean, std=info.std)
        return to_supermask(model, keep, score_seed=int(keep * 10))

    tickets = []
    for keep in (0.3, 0.6):
        model = net(keep)
        tickets.append(ticket_from_state(f"keep-{keep}", keep, model, ticket_tensors(model, store_weights=False)[0]))
    x, y = splits.test.head(24).tensors()
    return TicketFamily(net(0.3), tickets).eval(), x, y


def test_r2s_settings_hold_the_defaults_and_equal_the_keyword_call():
    defaults = R2SSettings()
    assert (defaults.protocols, defaults.repeats, defaults.eot_samples, defaults.granularity, defaults.probs,
            defaults.steps, defaults.n, defaults.batch_size, defaults.seed) == (
        list(PROTOCOLS), 5, 10, "batch", None, 20, 500, 256, 0)
    assert all(f.metadata.get("help") for f in fields(R2SSettings))  # a command line can derive its flags
    family, x, y = _tiny_family()
    small = {"protocols": ["paper", "eot", "expectation"], "repeats": 2, "steps": 2, "eot_samples": 2,
             "batch_size": 10, "seed": 1}
    by_keyword = evaluate_r2s(family, x, y, eps=0.1, **small)
    assert evaluate_r2s(family, x, y, R2SSettings(**small), eps=0.1) == by_keyword
    assert evaluate_r2s(family, x, y, R2SSettings(repeats=2, seed=1), eps=0.1,
                        **{k: v for k, v in small.items() if k not in ("repeats", "seed")}) == by_keyword
    # The defaults are the old keyword call's: left out or written out, the same figures.
    old_defaults = {"repeats": 5, "eot_samples": 10, "granularity": "batch", "probs": None, "batch_size": 256,
                    "seed": 0}
    assert (evaluate_r2s(family, x, y, eps=0.1, protocols=["expectation"], steps=2)
            == evaluate_r2s(family, x, y, eps=0.1, protocols=["expectation"], steps=2, **old_defaults))


@pytest.mark.parametrize("overrides, message", [
    ({"repeats": 0}, "repeats"), ({"protocols": ["nosuch"]}, "unknown protocol"), ({"eot": 3}, "unknown r2s setting"),
])
def test_bad_r2s_settings_are_one_line(overrides, message):
    family, x, y = _tiny_family()
    with pytest.raises(InbornError, match=message):
        evaluate_r2s(family, x, y, eps=0.1, **overrides)
