"""Numbers that are never optimistic: randomised models, AutoAttack's verdict, selection on
validation, result identity in the database, precision, reported sizes."""

from __future__ import annotations

import json
import sqlite3

import pytest
import torch
import torch.nn as nn

from inborn.analysis.family_report import r2s_rows
from inborn.analysis.r2s import evaluate_r2s
from inborn.attacks import PGD, build_attack
from inborn.cli import main
from inborn.defenses import RandomSwitch
from inborn.evaluation.evaluate import evaluate, is_randomised
from inborn.runs import load_family
from inborn.store import ResultsDB

TINY = ["--data", "digits", "--arch", "conv2", "--width", "0.25", "--quiet"]


class _Noisy(nn.Module):
    """A classifier with Gaussian input noise even in eval mode: a randomised defence."""

    def __init__(self, model: nn.Module, sigma: float = 0.3) -> None:
        super().__init__()
        self.model, self.sigma = model, sigma

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x + self.sigma * torch.randn_like(x))


@pytest.fixture(scope="module")
def family(tmp_path_factory):
    root = tmp_path_factory.mktemp("trust")
    args = ["family", "--data", "digits", "--arch", "fc", "--width", "0.25", "--eps", "0.1", "--epochs", "1",
            "--adv-steps", "2", "--keep", "0.1,0.3,0.6", "--out", str(root / "fam"), "--db", str(root / "db"),
            "--quiet"]
    assert main(args) == 0
    return root / "fam", load_family(root / "fam")


def test_randomness_is_detected(digits_model, family):
    model, x, _ = digits_model
    assert not is_randomised(model, x[:16])
    assert is_randomised(_Noisy(model), x[:16])
    assert is_randomised(RandomSwitch(family[1]).eval(), x[:16])
    assert not evaluate(model, (x, x.new_zeros(len(x)).long()), attacks=[], eps=[])["randomised"]


def test_a_skewed_switch_is_evaluated_as_randomised_with_a_spread(digits_model, family):
    # Batch-wise at (0.9, 0.05, 0.05), the switch draws ticket 0 at all 8 forwards of the probe (seed
    # 0) and passed for deterministic: early stop, one draw. It declares itself now.
    _, x, y = digits_model
    switch = RandomSwitch(family[1], "batch", probs=[0.9, 0.05, 0.05]).eval()
    res = evaluate(switch, (x[:64], y[:64]), attacks=["pgd"], eps=[0.1], steps=3, repeats=8, eot_samples=2)
    assert res["randomised"] and res["repeats"] == 8 and "randomised model" in res["warnings"][0]


def test_a_randomised_model_gets_no_early_stop_and_is_not_above_eot(digits_model):
    model, x, y = digits_model
    noisy = _Noisy(model).eval()
    common = {"attacks": ["pgd"], "eps": [0.1], "steps": 5, "eot_samples": 4, "repeats": 3}
    fast = evaluate(noisy, (x[:64], y[:64]), early_stop=True, **common)
    slow = evaluate(noisy, (x[:64], y[:64]), early_stop=False, **common)
    eot = evaluate(noisy, (x[:64], y[:64]), **{**common, "attacks": ["eot-pgd"]})
    assert fast["randomised"] and fast["repeats"] == 3 and "randomised model" in fast["warnings"][0]
    assert fast["results"][0]["robust_acc"] == slow["results"][0]["robust_acc"]  # one draw decides nothing
    assert fast["results"][0]["robust_acc"] <= eot["results"][0]["robust_acc"] + 1e-9
    assert fast["results"][0]["eot_samples"] == 4
    # The attack did something, and the spread over repeats is reported.
    assert fast["results"][0]["robust_acc"] < fast["clean_acc"] - 0.05
    assert "robust_acc_std" in fast["results"][0]


def test_the_generic_evaluation_of_a_switch_is_not_above_r2s_adaptive_protocols(family):
    from inborn.data import load_data

    _, fam = family
    x, y = load_data("digits").test.head(64).tensors()
    switch = RandomSwitch(fam).eval()
    on = evaluate(switch, (x, y), attacks=["pgd"], eps=[0.1], steps=5, eot_samples=4, repeats=3, early_stop=True)
    off = evaluate(switch, (x, y), attacks=["pgd"], eps=[0.1], steps=5, eot_samples=4, repeats=3, early_stop=False)
    assert on["results"][0]["robust_acc"] == off["results"][0]["robust_acc"]
    r2s = evaluate_r2s(fam, x, y, eps=0.1, protocols=["eot"], repeats=3, steps=5, eot_samples=4)
    # r2s scores accuracy on the adversarial points; the generic path also asks for clean-correct.
    spread = 2 * r2s["protocols"]["eot"]["std"] + 0.03
    assert on["results"][0]["robust_acc"] <= r2s["protocols"]["eot"]["mean"] + spread


def test_autoattack_rand_is_never_above_autoattacks_own_figure(digits_model):
    pytest.importorskip("pyautoattack")
    model, x, y = digits_model
    noisy = _Noisy(model, sigma=0.5).eval()
    res = evaluate(noisy, (x[:24], y[:24]), attacks=["autoattack-rand"], eps=[0.15], repeats=3)
    row = res["results"][0]
    own = min(row["robust_acc_after"].values())  # AutoAttack's own robust accuracy after its last attack
    assert row["robust_acc"] <= own + 1 / 24


def test_the_best_single_ticket_is_the_validation_best():
    result = {"protocols": {"clean": {"mean": 0.9, "std": 0.0}, "eot": {"mean": 0.5, "std": 0.01}},
              "tickets": [{"keep_ratio": 0.1, "clean": 0.9, "robust": 0.70, "val_clean": 0.9, "val_robust": 0.50},
                          {"keep_ratio": 0.3, "clean": 0.9, "robust": 0.60, "val_clean": 0.9, "val_robust": 0.65}]}
    rows = r2s_rows(result, [])
    names = [r["model"] for r in rows]
    assert "best single ticket (keep 0.3, selected on validation)" in names
    chosen = rows[names.index("best single ticket (keep 0.3, selected on validation)")]
    assert chosen["robust"] == 0.60  # the test figure at the validation choice
    assert any("keep 0.1, selected on test: optimistic" in n for n in names)


def test_the_r2s_report_flags_a_weak_adaptive_attack_and_judges_the_switch():
    from inborn.analysis.family_report import r2s_verdict

    def result(eot: float, std: float = 0.01) -> dict:
        return {"n": 100, "cite": {"protocol": "eot", "mean": eot, "std": std},
                "protocols": {"clean": {"mean": 0.9, "std": 0.0}, "paper": {"mean": 0.50, "std": 0.01},
                              "eot": {"mean": eot, "std": std}},
                "tickets": [{"keep_ratio": 0.3, "clean": 0.9, "robust": 0.40, "val_clean": 0.9, "val_robust": 0.4}]}

    weak = result(0.60)
    said = r2s_verdict(weak, r2s_rows(weak, [{"model": "baseline dense", "robust": 0.45}]))
    assert "Check the attack budget" in said[0] and "`eot` leaves 60.00 %" in said[0]
    assert any("is above best single ticket (keep 0.3" in line for line in said)
    assert any("is above baseline dense (45.00 %)" in line for line in said)
    sound = result(0.41, std=0.02)  # below the paper protocol: no budget warning; within 2 std of the ticket
    said = r2s_verdict(sound, r2s_rows(sound, []))
    assert not any("attack budget" in line for line in said)
    assert any("is within the spread of best single ticket" in line for line in said)


def test_no_validation_split_selects_the_last_epoch(tmp_path):
    out = tmp_path / "run"
    with pytest.warns(UserWarning, match="no validation split"):
        assert main(["train", *TINY, "--epochs", "3", "--val-fraction", "0", "--out", str(out),
                     "--db", str(tmp_path / "db")]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["best_epoch"] == 2 and summary["selected_on"] == "last_epoch"
    assert "no selection" in summary["warning"]


def test_results_are_keyed_by_every_setting(tmp_path, capsys):
    run, db = tmp_path / "run", str(tmp_path / "db")
    assert main(["train", *TINY, "--epochs", "1", "--out", str(run), "--db", db]) == 0
    evaluate_cmd = ["eval", str(run), "--attack", "pgd", "--eps", "0.1", "--steps", "3", "--n", "32", "--db", db,
                    "--quiet"]

    def pgd_rows():
        return [r for r in ResultsDB(db).results(attack="pgd") if r["split"] == "test" and r["steps"] == 3]

    assert main(evaluate_cmd) == 0
    assert main([*evaluate_cmd, "--restarts", "2"]) == 0
    assert sorted(r["restarts"] for r in pgd_rows()) == [1, 2]
    assert main(evaluate_cmd) == 0  # the same measurement again replaces its row
    rows = pgd_rows()
    assert len(rows) == 2
    assert {r["precision"] for r in rows} == {"float32"} and all(len(r["fingerprint"]) == 64 for r in rows)
    assert {r["step_size"] for r in rows} == {0.025}
    capsys.readouterr()
    assert main(["runs", "--results", "--settings", "--db", db]) == 0
    assert "restarts" in capsys.readouterr().out


def test_a_database_of_the_previous_version_migrates_without_losing_a_row(tmp_path):
    path = tmp_path / "old.db"
    with sqlite3.connect(path) as c:
        c.executescript("""
            CREATE TABLE runs (path TEXT PRIMARY KEY, kind TEXT NOT NULL, data TEXT, arch TEXT, adv TEXT,
                eps REAL, seed INTEGER, status TEXT NOT NULL, created REAL NOT NULL, updated REAL NOT NULL,
                summary TEXT);
            CREATE TABLE results (run_path TEXT NOT NULL, split TEXT NOT NULL, attack TEXT NOT NULL,
                eps REAL NOT NULL, steps INTEGER NOT NULL DEFAULT 0, n INTEGER NOT NULL, clean_acc REAL NOT NULL,
                robust_acc REAL NOT NULL, hrs REAL NOT NULL, created REAL NOT NULL, extra TEXT,
                PRIMARY KEY (run_path, split, attack, eps, steps, n));
            INSERT INTO results VALUES ('/r', 'test', 'pgd', 0.3, 20, 100, 0.9, 0.5, 0.64, 1.0, '{}');
            INSERT INTO results VALUES ('/r', 'test', 'fgsm', 0.3, 0, 100, 0.9, 0.6, 0.72, 1.0, '{}');
        """)
    db = ResultsDB(path)
    old = db.results()
    assert [(r["attack"], r["robust_acc"], r["restarts"], r["precision"]) for r in old] == [
        ("pgd", 0.5, 1, "float32"), ("fgsm", 0.6, 1, "float32")]
    db.add_results([{"run_path": "/r", "split": "test", "attack": "pgd", "eps": 0.3, "steps": 20, "n": 100,
                     "restarts": 5, "clean_acc": 0.9, "robust_acc": 0.45, "hrs": 0.6}])
    assert len(ResultsDB(path).results(attack="pgd")) == 2


def test_evaluation_is_float32_unless_asked(digits_model):
    model, x, y = digits_model
    assert evaluate(model, (x[:8], y[:8]), attacks=["pgd"], eps=[0.1], steps=2)["precision"] == "float32"
    assert evaluate(model, (x[:8], y[:8]), attacks=["pgd"], eps=[0.1], steps=2, amp=True)["precision"] == "bf16"
    assert not build_attack("pgd", 0.1).use_autocast


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")
def test_cuda_evaluation_is_float32_by_default(digits_model):
    model, x, y = digits_model
    cuda = model.cuda()
    seen = []
    hook = cuda.register_forward_hook(lambda m, i, o: seen.append(o.dtype))
    try:
        res = evaluate(cuda, (x[:8].cuda(), y[:8].cuda()), attacks=["pgd"], eps=[0.1], steps=2)
    finally:
        hook.remove()
        model.cpu()
    assert res["precision"] == "float32" and set(seen) == {torch.float32}


def test_one_default_pgd_step_however_it_is_built():
    assert PGD(0.1, steps=7).step_size == build_attack("pgd", 0.1, steps=7).step_size == pytest.approx(0.025)


def test_darts_parameter_count_leaves_the_auxiliary_head_out():
    from inborn.analysis.flops import count_parameters
    from inborn.models import create_model

    model = create_model("darts_v2", num_classes=10, in_channels=3, image_size=32, auxiliary=True)
    assert count_parameters(model) == 3_349_342  # what DARTS prints for DARTS-V2 at C=36, 20 cells
    assert count_parameters(model, include_auxiliary=True) > 3_349_342


def test_filter_masks_keep_every_class_of_every_head():
    from inborn.masks import to_supermask
    from inborn.masks.convert import current_masks, masked_layers
    from inborn.models import create_model

    model = create_model("darts_v2", num_classes=10, in_channels=3, image_size=32, auxiliary=True,
                         init_channels=8, layers=5)
    to_supermask(model, keep_ratio=0.5, pattern="filter")
    heads = {layer.layer_name: mask for layer, mask in zip(masked_layers(model), current_masks(model), strict=True)
             if layer.layer_name.endswith("classifier")}
    assert set(heads) == {"body.classifier", "body.auxiliary_head.classifier"}
    for mask in heads.values():
        assert (mask.flatten(1).sum(1) > 0).all()  # no class row is cut whole


def test_the_nas_evaluation_cache_belongs_to_its_model(digits_model, tmp_path):
    from inborn.data import load_data
    from inborn.studies.nas import NasStudyConfig, evaluate_model

    model, _, _ = digits_model
    splits = load_data("digits")
    cfg = NasStudyConfig(data="digits", attacks=["fgsm", "pgd"], steps=2, n=32)
    cache = tmp_path / "eval.json"
    first = evaluate_model(model, splits, cfg, [0.1], cache, torch.device("cpu"))
    assert first["worst_case"][0]["robust_acc"] <= min(r["robust_acc"] for r in first["results"])
    key = json.loads(cache.read_text())["key"]
    assert evaluate_model(model, splits, cfg, [0.1], cache, torch.device("cpu")) == first  # the same model: cached
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(0.5)
    try:
        second = evaluate_model(model, splits, cfg, [0.1], cache, torch.device("cpu"))
    finally:
        with torch.no_grad():
            for p in model.parameters():
                p.mul_(2.0)
    stored = json.loads(cache.read_text())
    assert stored["key"] != key and stored["result"] == second  # another model: evaluated again


class _Gated(nn.Module):
    """A randomised model that hides its randomness from a simple probe: noise on its logits only
    where `gate(x, logits)` says so (a [batch] mask), and nothing declared."""

    def __init__(self, model: nn.Module, gate) -> None:
        super().__init__()
        self.model, self.gate = model, gate

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.model(x)
        noisy = self.gate(x, out)
        return out + 3.0 * torch.randn_like(out) * noisy[:, None]


def _off_grid(x, levels=255):  # the data's pixels are 8-bit: only a perturbed point is off that grid
    return ((x * levels - (x * levels).round()).abs().flatten(1).amax(1) > 1e-3).float()


def _margin(out):
    top = out.topk(2, dim=1).values
    return top[:, 0] - top[:, 1]


class _Undeclared(RandomSwitch):
    randomised = False  # the switch minus its declaration: only the probe and the evaluation can see it


GATES = {  # each a [batch] mask of the rows to randomise; `sure` is the least margin of the probe's points
    "input-gated (off the pixel grid)": lambda x, out, sure: _off_grid(x),
    "confidence-gated (less sure than the first 16)": lambda x, out, sure: (_margin(out) < sure).float(),
    "batch-size-gated (batches over 16)": lambda x, out, sure: torch.full((len(x),), float(len(x) > 16)),
    "rare (one forward in 10)": lambda x, out, sure: torch.full((len(x),), float(torch.rand(()) < 0.1)),
}


@pytest.mark.parametrize("name", [*GATES, "skewed switch (0.9, 0.05, 0.05), undeclared"])
def test_every_kind_of_hidden_randomness_is_flagged(digits_model, family, name):
    model, x, y = digits_model
    if name in GATES:
        with torch.no_grad():
            sure = float(_margin(model(x[:16])).min())
        hidden = _Gated(model, lambda z, out: GATES[name](z, out, sure)).eval()
    else:
        hidden = _Undeclared(family[1], "batch", probs=[0.9, 0.05, 0.05]).eval()
    # The old probe (8 forwards of the first 16 clean points under seed 0) sees none of them...
    with torch.random.fork_rng():
        torch.manual_seed(0)
        outs = [hidden(x[:16]) for _ in range(8)]
    assert all(torch.equal(outs[0], o) for o in outs[1:]), "the model must hide from the old probe"
    # ...and the evaluation flags every one: repeated classifications, a spread, no early stop.
    res = evaluate(hidden, (x[:64], y[:64]), attacks=["pgd"], eps=[0.1], steps=3, batch_size=32, repeats=4,
                   eot_samples=2)
    assert res.randomised and res.repeats == 4 and "randomised model" in " ".join(res.warnings)
    # The deterministic model under it is not flagged: the probe does not cry wolf.
    assert not evaluate(model, (x[:64], y[:64]), attacks=["pgd"], eps=[0.1], steps=3, batch_size=32).randomised


def test_randomness_found_mid_evaluation_restarts_it_as_randomised(digits_model):
    # Random only near the second batch's images (within 0.2 of one, in L-inf): the probe, on the
    # first batch and its ε-ball, cannot see it; the second batch's two classifications do.
    model, x, y = digits_model
    near = lambda z, out: ((z.flatten(1)[:, None] - x[32:64].flatten(1)[None]).abs().amax(2).amin(1) < 0.2).float()  # noqa: E731
    hidden = _Gated(model, near).eval()
    assert not is_randomised(hidden, x[:32], eps=0.1)
    res = evaluate(hidden, (x[:64], y[:64]), attacks=["pgd"], eps=[0.1], steps=3, batch_size=32, repeats=3)
    assert res.randomised and res.repeats == 3
    assert res.warnings[0].startswith("randomness found during the evaluation")


class _Saturated(nn.Module):
    """The model with its logits scaled up: the same predictions, a saturated softmax, so that
    cross-entropy gradients vanish where a margin loss's do not (what sparse tickets do)."""

    def __init__(self, model: nn.Module, scale: float = 1e4) -> None:
        super().__init__()
        self.model, self.scale = model, scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.scale * self.model(x)


def test_eval_warns_when_a_margin_attack_finds_points_cross_entropy_pgd_missed(digits_model, tmp_path):
    from inborn.evaluation.evaluate import weak_pgd_warnings
    from inborn.evaluation.results import evaluation_rows

    model, x, y = digits_model
    data = (x[:96], y[:96])
    res = evaluate(_Saturated(model), data, attacks=["pgd", "cw"], eps=[0.1], steps=10)
    pgd, cw = (r.robust_acc for r in res.results)
    assert pgd - cw >= 0.03  # the premise: cross-entropy PGD is blind here
    warning = next(w for w in res.warnings if w.startswith("cw leaves"))
    assert f"{100 * (pgd - cw):.1f} points below cross-entropy PGD" in warning and "saturated softmax" in warning
    # In the JSON and in every database row of the evaluation.
    assert warning in res.to_dict()["warnings"]
    assert all(warning in row["extra"]["evaluation_warnings"] for row in evaluation_rows(res, tmp_path, "test"))
    # The unscaled model: PGD and CW agree within 3 points, and nothing is said.
    plain = evaluate(model, data, attacks=["pgd", "cw"], eps=[0.1], steps=10)
    assert abs(plain.results[0].robust_acc - plain.results[1].robust_acc) < 0.03 and not plain.warnings
    # The rule itself: 3 points or more below PGD at the same ε, by a stronger attack only.
    rows = [r for r in res.results]
    assert len(weak_pgd_warnings(rows)) == 1 and weak_pgd_warnings(rows[:1]) == []
