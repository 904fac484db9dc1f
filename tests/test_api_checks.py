"""The Python API checks its arguments as the command line checks its flags (issue 25, items 4-5).

One table per entry point: every bad argument is a one-line InbornError naming it, never a
traceback from deep inside, and never a silent wrong figure (a model with the wrong number of
classes). Then the numbers' domains and syntax on the command line: each bad flag gives exit
status 2 and exactly one stderr line `inborn: error: ...`, before any work.
"""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest
import torch
import torch.nn as nn

import inborn
from inborn.attacks import EOTPGD, FGSM, PGD, RFGSM, AutoAttack, CWLinf, StepLL, build_attack
from inborn.cli import main
from inborn.data import load_data
from inborn.errors import InbornError
from inborn.evaluation.evaluate import EvalSettings, check_model_output
from inborn.evaluation.evaluate import evaluate as evaluate_tensors
from inborn.masks import SupermaskConfig, to_supermask
from inborn.models import create_model
from inborn.train.family import family_configs
from inborn.values import SEED_MAX, parse_eps, parse_eps_list, parse_int, parse_real, refuse_close_ratios

PIXELS = 16 * 16  # digits: 1×16×16 images, 10 classes


class _Pair(nn.Module):
    """Returns a tuple, as some research code does (logits, features)."""

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        out = x.flatten(1)[:, :10]
        return out, out


class _Score(nn.Module):
    """One number per image, not a row of class scores."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mean((1, 2, 3))


class _Noisy(nn.Module):
    """A randomised model: draws from the global RNG at every forward."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(PIXELS, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x.flatten(1) + 0.01 * torch.randn_like(x.flatten(1)))


def _linear(classes: int = 10) -> nn.Module:
    return nn.Sequential(nn.Flatten(), nn.Linear(PIXELS, classes))


def _rgb() -> nn.Module:
    """A model for 3-channel images (the digits have 1)."""
    return nn.Sequential(nn.Conv2d(3, 2, 3, padding=1), nn.Flatten(), nn.Linear(2 * PIXELS, 10))


@pytest.fixture(scope="module")
def digits():
    x, y = load_data("digits").test.tensors()
    return x[:64], y[:64]


# -- values: the one home of number syntax and domains ---------------------------------------------
@pytest.mark.parametrize("call, expect", [
    (lambda: parse_eps("0_1"), "cannot read ε '0_1'"),
    (lambda: parse_eps(" 1e-1 "), "cannot read ε"),
    (lambda: parse_eps("infinity"), "ε must be a finite number"),
    (lambda: parse_eps("nan"), "ε must be a finite number"),
    (lambda: parse_eps("1e999"), "ε must be a finite number"),
    (lambda: parse_eps("٣"), "cannot read ε"),  # float() takes Unicode digits
    (lambda: parse_eps("1.5"), r"ε must be in \[0, 1\], got 1.5 \(ε is in pixel units.*8/255"),
    (lambda: parse_eps("-0.1"), "ε must be >= 0"),
    (lambda: parse_eps_list("0.1,1/10"), r"ε names one value twice \(0.1 and 1/10\)"),
    (lambda: parse_eps_list(",,"), "expected comma-separated ε values"),
    (lambda: parse_real("0_1", "lr"), "lr must be a plain number"),
    (lambda: parse_real("1/0", "lr"), "lr must be a number"),
    (lambda: parse_int("1_000", "seed"), "seed must be a whole number, got '1_000'"),
    (lambda: parse_int(" 7", "seed"), "seed must be a whole number"),
    (lambda: parse_int("1e3", "seed"), "seed must be a whole number"),
    (lambda: parse_int(str(2**63), "seed", low=0, high=SEED_MAX), r"seed must be in \[0, 4294967295\]"),
    (lambda: refuse_close_ratios([0.1, 0.1000001], "keep ratio", ["0.1", "0.1000001"]),
     "keep ratios 0.1 and 0.1000001 are too close"),
    (lambda: refuse_close_ratios([0.1234564, 0.1234561]), "too close"),  # one name at 6 digits: keep-0.123456
    (lambda: refuse_close_ratios([0.5, 0.5], "keep ratio", ["0.5", "1/2"]), r"one value twice \(0.5 and 1/2\)"),
])
def test_values_refuse(call, expect):
    with pytest.raises(InbornError, match=expect):
        call()


def test_values_accept_plain_syntax():
    assert parse_eps("8/255") == 8 / 255 and parse_eps(".5") == 0.5 and parse_eps("1e-3") == 1e-3
    assert parse_eps("2", high=None) == 2.0  # an L2 radius has no upper bound
    assert parse_eps_list("0.1, 0.2") == [0.1, 0.2]
    assert parse_int("-3", "x") == -3 and parse_int(str(SEED_MAX), "seed", low=0, high=SEED_MAX) == SEED_MAX
    refuse_close_ratios([0.1, 0.1001])  # 1e-4 apart and named apart: two tickets


# -- inborn.benchmark -------------------------------------------------------------------------------
@pytest.mark.parametrize("kwargs, expect", [
    ({"eps": float("nan")}, "eps must be a finite number"),
    ({"eps": -0.1}, "eps must be >= 0"),
    ({"eps": math.inf}, "eps must be a finite number"),
    ({"eps": 1.5}, r"eps must be in \[0, 1\].*pixel units"),
    ({"eps": "0_1"}, "cannot read eps '0_1'"),
    ({"eps": True}, "eps must be a number"),
    ({"n_examples": "20"}, "n_examples must be a whole number, got '20'"),
    ({"n_examples": 2.5}, "n_examples must be a whole number, got 2.5"),
    ({"n_examples": 0}, "n_examples must be >= 1"),
    ({"batch_size": 32.0}, "batch_size must be a whole number"),
    ({"dataset": None}, "dataset must be a data set's name"),
    ({"device": 0}, "device must be a name"),
    ({"data_dir": 3}, "data_dir must be a path"),
    ({"model": None}, r"model must be a torch.nn.Module or a sequence of them \(an ensemble\), got NoneType"),
    ({"model": "resnet18"}, "model must be a torch.nn.Module"),
    ({"model": []}, "model is an empty sequence"),
    ({"model": [_linear(), None]}, r"model\[1\] must be a torch.nn.Module"),
    ({"model": _rgb()}, r"the model cannot take the data set's images \(1×16×16\): RuntimeError: "),
    ({"model": _Pair()}, "the model must return a tensor of logits .* got a tuple"),
    ({"model": _linear(7)}, "the model gives 7 outputs for a data set of 10 classes"),
    ({"model": _linear(12)}, "the model gives 12 outputs for a data set of 10 classes"),
])
def test_benchmark_refuses(kwargs, expect):
    args = {"model": _linear(), "n_examples": 4, "dataset": "digits", **kwargs}
    with pytest.raises(InbornError, match=expect):
        inborn.benchmark(args.pop("model"), **args)


def test_benchmark_reads_eps_as_the_cli_does(monkeypatch):
    """`eps="8/255"` is read as on the command line; the evaluation gets the number."""
    seen = {}

    def fake(model, test, **kw):
        seen.update(kw)
        return SimpleNamespace(clean_acc=1.0, randomised=False, results=[SimpleNamespace(robust_acc=0.5)])

    monkeypatch.setattr("inborn.evaluation.benchmark.evaluate", fake)
    assert inborn.benchmark(_linear(), n_examples=4, dataset="digits", eps="8/255") == (1.0, 0.5)
    assert seen["eps"] == [8 / 255]


# -- inborn.evaluate and the evaluator's own evaluate -----------------------------------------------
@pytest.mark.parametrize("kwargs, expect", [
    ({"model": None}, "model must be a torch.nn.Module"),
    ({"split": "training"}, "unknown split 'training'"),
    ({"dataset": "nope"}, "unknown data set 'nope'"),
    ({"model": _linear(12)}, "the model gives 12 outputs for a data set of 10 classes"),
    ({"model": _rgb()}, r"cannot take the data set's images \(1×16×16\)"),
    ({"eps": "1.5"}, r"eps must be in \[0, 1\]"),
    ({"eps": [0.1, "1/10"]}, "eps names one value twice"),
    ({"attacks": ""}, "attacks names no attack"),
    ({"attacks": "pgd,pgd"}, "attacks names pgd twice"),
    ({"seed": 2**63}, r"seed must be in \[0, 4294967295\]"),
    ({"stepz": 3}, "evaluate takes no setting 'stepz'"),
])
def test_inborn_evaluate_refuses(kwargs, expect):
    args = {"model": _linear(), "dataset": "digits", "n": 4, "steps": 1, **kwargs}
    with pytest.raises(InbornError, match=expect):
        inborn.evaluate(args.pop("model"), args.pop("dataset"), **args)


def test_inborn_evaluate_reads_text_as_the_cli_does():
    result = inborn.evaluate(_linear(), "digits", attacks="pgd,fgsm", eps="8/255", n=4, steps=1)
    assert [(r.attack, r.eps) for r in result.results] == [("pgd", 8 / 255), ("fgsm", 8 / 255)]


@pytest.mark.parametrize("model, data, kwargs, expect", [
    (None, "xy", {}, "model must be a torch.nn.Module"),
    (_linear(), ("x",), {}, "data must be a TensorSplit or an"),
    (_linear(), "x*255", {}, r"x must hold pixels in \[0, 1\]"),
    (_linear(), "x-uint8", {}, "x must be float images"),
    (_linear(), "y-short", {}, "y must be 64 integer labels"),
    (_linear(), "xy", {"settings": "pgd"}, "settings must be an EvalSettings"),
    (_linear(), "xy", {"device": "gpu9"}, "unknown device 'gpu9'"),
    (_linear(7), "xy", {}, "the model gives 7 outputs, but the data holds label 9"),
    (_rgb(), "xy", {}, r"cannot take the data set's images \(1×16×16\): RuntimeError"),
    (_Pair(), "xy", {}, "got a tuple"),
    (_Score(), "xy", {}, r"logits of shape \(images, classes\); for 1 image it gives .* \(1,\)"),
])
def test_evaluate_refuses(digits, model, data, kwargs, expect):
    x, y = digits
    assert int(y.max()) == 9
    data = {"xy": (x, y), "x*255": (x * 255, y), "x-uint8": ((x * 255).to(torch.uint8), y),
            "y-short": (x, y[:10])}.get(data, data) if isinstance(data, str) else data
    with pytest.raises(InbornError, match=expect):
        evaluate_tensors(model, data, attacks=["fgsm"], eps=[0.1], **kwargs)


def test_the_model_check_leaves_the_random_state_alone(digits):
    """The one forward of the check must not shift a randomised model's seeded draws."""
    x, _ = digits
    model = _Noisy()
    state = torch.get_rng_state()
    check_model_output(model, x, num_classes=10)
    assert torch.equal(state, torch.get_rng_state())


@pytest.mark.parametrize("settings, expect", [
    ({"attacks": "pgd"}, "attacks must be a list of attack names"),
    ({"attacks": None}, "attacks must be a list of attack names"),
    ({"attacks": ["pgd", "pgd"]}, "attacks names pgd twice"),
    ({"attacks": ["pgd", None]}, "unknown attack None"),
    ({"eps": []}, "eps must be a non-empty list"),
    ({"eps": 0.1}, "eps must be a non-empty list"),
    ({"eps": [0.1, 0.1]}, "eps names 0.1 twice"),
    ({"eps": [1.5]}, r"eps must be in \[0, 1\]"),
    ({"eps": [float("nan")]}, "eps must be a finite number"),
    ({"eps": ["0_1"]}, "cannot read eps '0_1'"),
    ({"eps": [True]}, "eps must be a number"),
    ({"steps": 2.5}, "steps must be a whole number"),
    ({"batch_size": "256"}, "batch_size must be a whole number"),
    ({"n": 0}, "n must be >= 1"),
    ({"repeats": 1.0}, "repeats must be a whole number"),
    ({"step_size": 0}, "step_size must be > 0"),
    ({"step_size": math.inf}, "step_size must be a finite number"),
    ({"seed": -1}, r"seed must be in \[0, 4294967295\]"),
    ({"seed": SEED_MAX + 1}, r"seed must be in \[0, 4294967295\]"),
    ({"seed": 1.0}, "seed must be a whole number"),
    ({"early_stop": "yes"}, "early_stop must be True or False"),
    ({"randomised": "auto"}, "randomised must be True, False or None"),
])
def test_eval_settings_refuse(settings, expect):
    with pytest.raises(InbornError, match=expect):
        EvalSettings(**settings).validate()


def test_eval_settings_accept_text_l2_radii_and_a_clean_pass():
    assert EvalSettings(attacks=[], eps=[]).validate().eps == []  # clean accuracy only (model selection)
    assert EvalSettings(eps=["8/255"]).validate().eps == [8 / 255]
    assert EvalSettings(attacks=["pgd-l2"], eps=[2.0]).validate().eps == [2.0]  # L2: no bound at 1
    with pytest.raises(InbornError, match=r"eps must be in \[0, 1\]"):  # one L-inf attack bounds them all
        EvalSettings(attacks=["pgd-l2", "pgd"], eps=[2.0]).validate()


# -- inborn.load ------------------------------------------------------------------------------------
@pytest.mark.parametrize("kwargs, expect", [
    ({"run_dir": None}, "run_dir must be the path of a run directory"),
    ({"run_dir": ""}, "run_dir must be the path of a run directory"),
    ({"device": 0}, "device must be a name such as cpu"),
    ({"device": "gpu9"}, "unknown device 'gpu9'"),
    ({"trust_code": "yes"}, "trust_code must be True or False"),
])
def test_load_refuses(tmp_path, kwargs, expect):
    args = {"run_dir": tmp_path / "no-run", **kwargs}
    with pytest.raises(InbornError, match=expect):
        inborn.load(args.pop("run_dir"), **args)


# -- create_model -----------------------------------------------------------------------------------
@pytest.mark.parametrize("kwargs, expect", [
    ({"name": None}, "model name must be text"),
    ({"num_classes": "10"}, "num_classes must be a whole number"),
    ({"num_classes": 1}, "num_classes must be >= 2"),
    ({"num_classes": 2.5}, "num_classes must be a whole number"),
    ({"in_channels": 0}, "in_channels must be >= 1"),
    ({"image_size": 16.0}, "image_size must be a whole number"),
    ({"width": 0}, "width must be > 0"),
    ({"width": float("nan")}, "width must be a finite number"),
    ({"width": "0.5"}, "width must be a number"),  # text is the CLI's to read
    ({"width": 0.001}, r"width 0.001 leaves layer '0' of conv2 .* no channel .* use width > 0.00781"),
    ({"affine_bn": "no"}, "affine_bn must be True or False"),
    ({"mean": 0.5}, "mean must be 1 numbers, one per input channel"),
    ({"mean": (0.1, 0.2)}, "mean/std need 1 values"),
    ({"std": (0.0,)}, "std must be > 0"),
    ({"std": ("0.3",)}, "std must be a number, got '0.3'"),
])
def test_create_model_refuses(kwargs, expect):
    args = {"name": "conv2", "num_classes": 10, "in_channels": 1, "image_size": 16, "width": 0.25, **kwargs}
    with pytest.raises(InbornError, match=expect):
        create_model(args.pop("name"), **args)


def test_create_model_width_check_costs_no_random_draws():
    """Small widths are compared with the full model built on the meta device: same weights either way."""
    torch.manual_seed(0)
    a = create_model("conv2", in_channels=1, image_size=16, width=0.02)  # 64 × 0.02 = 1.28: one channel, fine
    torch.manual_seed(0)
    b = create_model("conv2", in_channels=1, image_size=16, width=0.02)
    after = torch.rand(1)
    torch.manual_seed(0)
    b = create_model("conv2", in_channels=1, image_size=16, width=0.02)
    assert torch.equal(after, torch.rand(1))
    assert all(torch.equal(p, q) for p, q in zip(a.state_dict().values(), b.state_dict().values(), strict=True))


# -- to_supermask -----------------------------------------------------------------------------------
@pytest.mark.parametrize("model, config, kwargs, expect", [
    (None, 0.5, {}, "model must be a torch.nn.Module"),
    ("conv2", True, {}, "config must be a SupermaskConfig or a keep ratio"),
    ("conv2", [0.5], {}, "config must be a SupermaskConfig or a keep ratio"),
    ("conv2", "abc", {}, "keep ratio"),
    ("conv2", 0.5, {"reinit_weights": 1}, "reinit_weights must be True or False"),
    ("conv2", 0.5, {"keep": 0.1}, "unknown ticket settings: keep"),
    ("conv2", SupermaskConfig(0.5), {"keep": 0.1}, "unknown ticket settings: keep"),
    ("conv2", 0.5, {"weight_seed": 2**63}, r"weight_seed must be in \[0, 4294967295\]"),
    ("conv2", 0.5, {"score_seed": -1}, r"score_seed must be in \[0, 4294967295\]"),
])
def test_to_supermask_refuses(model, config, kwargs, expect):
    if model == "conv2":
        model = create_model("conv2", in_channels=1, image_size=16, width=0.25)
    with pytest.raises(InbornError, match=expect):
        to_supermask(model, config, **kwargs)


def test_to_supermask_takes_settings_over_a_config():
    model = to_supermask(create_model("conv2", in_channels=1, image_size=16, width=0.25), SupermaskConfig(0.5),
                         keep_ratio="1/4")
    assert model.supermask.keep_ratio == 0.25


# -- the attacks --------------------------------------------------------------------------------------
@pytest.mark.parametrize("call, expect", [
    (lambda: PGD("8/255"), "ε must be a number, got '8/255'"),
    (lambda: PGD(1.5), r"ε must be in \[0, 1\] for an L-inf attack.*pixel units"),
    (lambda: PGD(float("nan")), "ε must be a finite number"),
    (lambda: PGD(None), "ε must be a number"),
    (lambda: PGD(0.1, steps=2.5), "steps must be a whole number"),
    (lambda: PGD(0.1, steps="10"), "steps must be a whole number"),
    (lambda: PGD(0.1, step_size=-0.01), "step_size must be >= 0"),
    (lambda: PGD(0.1, step_size=float("nan")), "step_size must be a finite number"),
    (lambda: PGD(0.1, loss="hinge"), "unknown attack loss 'hinge'"),
    (lambda: PGD(0.1, early_stop="no"), "early_stop must be True or False"),
    (lambda: PGD(0.1, restarts=0), "restarts must be >= 1"),
    (lambda: PGD(0.1, restarts=1.5), "restarts must be a whole number"),
    (lambda: PGD(0.1, seed=-1), r"seed must be in \[0, 4294967295\]"),
    (lambda: PGD(0.1, seed=2**63), r"seed must be in \[0, 4294967295\]"),
    (lambda: FGSM(0.1, norm="l3"), "unknown norm 'l3'"),
    (lambda: FGSM(0.1, mode="test"), "unknown attack mode 'test'"),
    (lambda: FGSM(0.1, eot_samples=0), "eot_samples must be >= 1"),
    (lambda: FGSM(0.1, use_autocast=1), "use_autocast must be True or False"),
    (lambda: RFGSM(0.1, alpha=0.2), r"alpha must be in \[0, 0.1\]"),
    (lambda: AutoAttack(0.1, batch_size=0), "batch_size must be >= 1"),
    (lambda: AutoAttack(0.1, batch_size=10.0), "batch_size must be a whole number"),
    (lambda: build_attack(None, 0.1), "unknown attack None"),
    (lambda: build_attack("pgd", 0.1, steps=0), "steps must be >= 1"),
    (lambda: build_attack("pgd", 0.1, stepz=10), "attack 'pgd' does not take 'stepz'"),
    (lambda: build_attack("fgsm-rs", 2.0), r"ε must be in \[0, 1\] for an L-inf attack"),
])
def test_attacks_refuse(call, expect):
    with pytest.raises(InbornError, match=expect):
        call()


def test_an_l2_attack_takes_a_radius_above_one():
    assert build_attack("pgd-l2", 2.0).eps == 2.0


# -- family_configs -----------------------------------------------------------------------------------
@pytest.mark.parametrize("keeps, expect", [
    ("0.1", "keep_ratios must be a list"),
    ([], "at least one keep ratio"),
    ([0.1, 0.1000001], "keep ratios 0.1 and 0.1000001 are too close"),
    (["0.5", "1/2"], r"keep ratio names one value twice \(0.5 and 1/2\)"),
])
def test_family_configs_refuse(keeps, expect):
    with pytest.raises(InbornError, match=expect):
        family_configs({"data": "digits", "arch": "conv2"}, keeps)


# -- the command line: one line, exit status 2, before any work ----------------------------------------
TINY = ["--data", "digits", "--arch", "conv2", "--width", "0.25", "--epochs", "1", "--quiet"]


@pytest.mark.parametrize("args, expect", [
    (["eval", "RUN", "--eps", "1.5"], r"ε must be in [0, 1], got 1.5 (ε is in pixel units"),
    (["eval", "RUN", "--eps", "0_1"], "cannot read ε '0_1'"),
    (["eval", "RUN", "--eps", "infinity"], "ε must be a finite number"),
    (["eval", "RUN", "--eps", ""], "expected comma-separated ε values"),
    (["eval", "RUN", "--eps", "0.1,1/10"], "ε names one value twice (0.1 and 1/10)"),
    (["eval", "RUN", "--attack", ""], "--attack names no attack"),
    (["eval", "RUN", "--attack", ","], "--attack names no attack"),
    (["eval", "RUN", "--attack", "pgd,cw,pgd"], "--attack names pgd twice"),
    (["eval", "RUN", "--seed", str(2**63)], "argument --seed: must be in [0, 4294967295]"),
    (["eval", "RUN", "--seed", "-1"], "argument --seed: must be in [0, 4294967295]"),
    (["eval", "RUN", "--steps", "1_0"], "argument --steps: must be a whole number, got '1_0'"),
    (["eval", "RUN", "--n", "2.5"], "argument --n/--num-examples: must be a whole number"),
    (["eval", "RUN", "--step-size", "0"], "--step-size must be > 0"),
    (["eval", "RUN", "--attack", "pgd-l2", "--eps", "2"], "does not exist"),  # L2: past the ε check
    (["family", "--keep", "0.1,0.1000001", *TINY], "keep ratios 0.1 and 0.1000001 are too close"),
    (["family", "--keep", "0.1,0.1", *TINY], "keep ratio names 0.1 twice"),
    (["family", "--keep", "0.5,1/2", *TINY], "keep ratio names one value twice (0.5 and 1/2)"),
    (["transfer", "RUN", "--seed", str(2**32)], "argument --seed: must be in [0, 4294967295]"),
    (["train", *TINY, "--seed", str(2**63)], "seed must be in [0, 4294967295]"),
    (["train", *TINY, "--eps", "1.5"], "ε must be in [0, 1]"),
    (["train", *TINY, "--lr", "0_1"], "lr must be a plain number"),
    (["train", *TINY, "--epochs", " 1"], "must be a whole number"),
    (["train", *TINY, "--test-attacks", "pgd,pgd"], "test_attacks names pgd twice"),
    (["train", *TINY[:4], "--width", "0.001"], "width 0.001 leaves layer '0' of conv2"),
])
def test_cli_refuses_in_one_line(tmp_path, capsys, args, expect):
    out = tmp_path / "out"
    args = [str(tmp_path / "no-run") if a == "RUN" else a for a in args]
    if args[0] in ("train", "family"):
        args += ["--out", str(out), "--db", str(tmp_path / "db.sqlite")]
    assert main(args) == 2
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("inborn: error:"), err
    assert expect in lines[0] and "Traceback" not in err, err
    assert not out.exists()


# -- every Python entry point has refusal cases --------------------------------------------------------
def _entry_points() -> set[str]:
    """The public callables a user reaches first: `inborn.*`, every attack, the supermask and data entries."""
    import inborn.attacks as attacks
    import inborn.data as data
    import inborn.masks as masks

    names = {f"inborn.{n}" for n in inborn.__all__ if n != "__version__"}
    names |= {f"inborn.attacks.{n}" for n in attacks.__all__
              if isinstance(getattr(attacks, n), type) and issubclass(getattr(attacks, n), attacks.Attack)
              and getattr(attacks, n) is not attacks.Attack}
    names |= {"inborn.attacks.build_attack", "inborn.masks.to_supermask", "inborn.data.load_data"}
    import inborn.defenses as defenses

    names |= {f"inborn.defenses.{n}" for n in defenses.__all__}
    assert callable(masks.to_supermask) and callable(data.load_data)
    return names


# One refusal per entry point; the tables above hold the rest. A new public entry point without a
# row here fails the test below, as a new command without cases fails test_bad_input's.
ENTRY_POINT_CASES = {
    "inborn.benchmark": lambda: inborn.benchmark(_linear(), dataset="digits", eps=-1.0, n_examples=4),
    "inborn.evaluate": lambda: inborn.evaluate(_linear(), dataset="digits", eps=["x"]),
    "inborn.load": lambda: inborn.load(None),
    "inborn.create_model": lambda: create_model("conv2", num_classes=1),
    "inborn.attacks.PGD": lambda: PGD(2.0),
    "inborn.attacks.EOTPGD": lambda: EOTPGD(0.1, eot_samples=0),
    "inborn.attacks.FGSM": lambda: FGSM(float("nan")),
    "inborn.attacks.RFGSM": lambda: RFGSM(0.1, alpha=0.5),
    "inborn.attacks.StepLL": lambda: StepLL(-0.1),
    "inborn.attacks.CWLinf": lambda: CWLinf(0.1, steps=0),
    "inborn.attacks.AutoAttack": lambda: AutoAttack(0.1, batch_size=0),
    "inborn.attacks.build_attack": lambda: build_attack("pgd", 0.1, stepz=1),
    "inborn.masks.to_supermask": lambda: to_supermask(None, 0.5),
    "inborn.data.load_data": lambda: load_data("digits", val_fraction=2),
    "inborn.defenses.RandomSwitch": lambda: __import__("inborn.defenses").defenses.RandomSwitch(None),
    "inborn.defenses.ExpectedTickets": lambda: __import__("inborn.defenses").defenses.ExpectedTickets([]),
    "inborn.defenses.SingleTicket": lambda: __import__("inborn.defenses").defenses.SingleTicket("fam", 0),
}


@pytest.fixture(scope="module")
def family():
    from inborn.masks import compute_masks, masked_layers
    from inborn.masks.family import TicketFamily, ticket_from_state
    from inborn.masks.packing import pack_mask
    from inborn.masks.ticket import MASK_PREFIX

    torch.manual_seed(0)
    model = to_supermask(_linear(), 0.5)
    names = {id(m): name for name, m in model.named_modules()}
    tensors = {MASK_PREFIX + names[id(layer)]: pack_mask(mask)
               for layer, mask in zip(masked_layers(model), compute_masks(model), strict=True)}
    return TicketFamily(model, [ticket_from_state(t, 0.5, model, tensors) for t in ("a", "b")])


@pytest.mark.parametrize("call, expect", [
    (lambda f: __import__("inborn.defenses").defenses.RandomSwitch(f, probs=[0.5, float("nan")]),
     "a switch probability must be a finite number"),
    (lambda f: __import__("inborn.defenses").defenses.RandomSwitch(f, probs=["x", 0.5]),
     "a switch probability must be a plain number"),
    (lambda f: __import__("inborn.defenses").defenses.RandomSwitch(f, probs=0.5), "probs must be a sequence"),
    (lambda f: __import__("inborn.defenses").defenses.RandomSwitch(f, probs=[0.7, 0.7]), "sum to 1"),
    (lambda f: __import__("inborn.defenses").defenses.SingleTicket(f, 2), r"index must be in \[0, 1\]"),
    (lambda f: __import__("inborn.defenses").defenses.ExpectedTickets(f, probs=[1.5, -0.5]),
     r"a switch probability must be in \[0, 1\]"),
])
def test_defenses_refuse(family, call, expect):
    with pytest.raises(InbornError, match=expect):
        call(family)


@pytest.mark.parametrize("entry", sorted(ENTRY_POINT_CASES))
def test_every_entry_point_refuses_a_bad_argument_in_a_clear_error(entry):
    with pytest.raises(InbornError):
        ENTRY_POINT_CASES[entry]()


def test_every_public_entry_point_has_a_refusal_case():
    missing = _entry_points() - set(ENTRY_POINT_CASES)
    assert not missing, f"entry points without a refusal case: {sorted(missing)}"


def test_an_unknown_setting_names_the_nearest_known_one():
    from inborn.settings import check_keys, from_mapping
    from inborn.train.config import TrainConfig

    with pytest.raises(InbornError, match="unknown training settings: epoch; did you mean 'epochs'"):
        from_mapping(TrainConfig, {"epoch": 3}, "training")
    with pytest.raises(InbornError, match="unknown config keys: lr_rate; did you mean 'lr'"):
        check_keys(TrainConfig, {"lr_rate": 0.1}, "config")


def test_a_grey_batch_is_refused_by_an_rgb_model_rather_than_broadcast():
    rgb = create_model("conv2", num_classes=10, in_channels=3, image_size=16, width=0.25)
    with pytest.raises(InbornError, match=r"takes images of 3 channels .* got a batch of shape \(2, 1, 16, 16\)"):
        rgb(torch.rand(2, 1, 16, 16))
    with pytest.raises(InbornError, match=r"the model cannot take the data set's images \(1×16×16\)"):
        inborn.benchmark(rgb, dataset="digits", eps=0.1, n_examples=4)
