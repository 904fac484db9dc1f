"""Attack behaviour: the ε-ball and the box, monotonicity in steps, closed forms."""

from __future__ import annotations

import pytest
import torch

from helpers import Linear
from inborn.attacks import ATTACKS, FGSM, PGD, StepLL, build_attack
from inborn.errors import InbornError
from inborn.evaluation.evaluate import predict

GRADIENT_ATTACKS = [n for n in ATTACKS if not n.startswith("autoattack")]


@pytest.mark.parametrize("name", GRADIENT_ATTACKS)
@pytest.mark.parametrize("eps", [0.0, 0.05, 0.3])
def test_adversarial_examples_stay_in_ball_and_box(digits_model, name, eps):
    model, x, y = digits_model
    attack = build_attack(name, eps, steps=3, seed=1)
    x_adv = attack(model, x, y)
    assert x_adv.shape == x.shape
    assert x_adv.min() >= 0 and x_adv.max() <= 1
    if attack.norm == "linf":
        assert (x_adv - x).abs().max() <= eps + 1e-6
    else:
        assert (x_adv - x).flatten(1).norm(dim=1).max() <= eps + 1e-5


def test_pgd_lowers_accuracy(digits_model):
    model, x, y = digits_model
    clean = predict(model, x).eq(y).float().mean()
    robust = predict(model, PGD(0.1, steps=10, step_size=0.025, seed=0)(model, x, y)).eq(y).float().mean()
    assert clean > 0.8
    assert robust < clean - 0.3


@pytest.mark.parametrize("early_stop", [False, True])
def test_more_pgd_steps_are_never_weaker(digits_model, early_stop):
    model, x, y = digits_model
    robust = []
    for steps in (1, 3, 10, 30):
        x_adv = PGD(0.05, steps=steps, step_size=0.01, seed=7, early_stop=early_stop)(model, x, y)
        robust.append(predict(model, x_adv).eq(y))
    for fewer, more in zip(robust, robust[1:], strict=False):
        # Every sample broken with fewer steps stays broken with more.
        assert not (more & ~fewer).any()
    assert robust[-1].sum() < robust[0].sum()


def test_early_stop_gives_the_same_robust_accuracy(digits_model):
    model, x, y = digits_model
    a = predict(model, PGD(0.05, steps=15, step_size=0.01, seed=3)(model, x, y)).eq(y)
    b = predict(model, PGD(0.05, steps=15, step_size=0.01, seed=3, early_stop=True)(model, x, y)).eq(y)
    assert torch.equal(a, b)


def test_fgsm_on_a_linear_model_matches_the_analytic_worst_case():
    torch.manual_seed(0)
    model = Linear(20, 2).eval()
    x = 0.4 + 0.2 * torch.rand(16, 20)  # far from the box edges, so clamping never binds
    y = torch.randint(0, 2, (16,))
    eps = 0.05
    x_adv = FGSM(eps)(model, x, y)
    w = model.fc.weight.detach()
    other = 1 - y
    margin = lambda z: (model(z).gather(1, y[:, None]) - model(z).gather(1, other[:, None])).squeeze(1)  # noqa: E731
    # For two classes the CE gradient's sign is the sign of (w_other - w_y): the L-inf worst case.
    expected_drop = eps * (w[y] - w[other]).abs().sum(1)
    torch.testing.assert_close(margin(x) - margin(x_adv), expected_drop, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(x_adv - x, eps * (w[other] - w[y]).sign())


def test_stepll_moves_towards_the_least_likely_class(digits_model):
    model, x, y = digits_model
    with torch.no_grad():
        logits = model(x)
        target = logits.argmin(1)
        before = torch.log_softmax(logits, 1).gather(1, target[:, None])
        after = torch.log_softmax(model(StepLL(0.05)(model, x, y)), 1).gather(1, target[:, None])
    assert (after > before).float().mean() > 0.95


def test_attack_restores_the_models_mode(digits_model):
    model, x, y = digits_model
    model.train()
    PGD(0.05, steps=2)(model, x[:8], y[:8])
    assert model.training
    model.eval()
    PGD(0.05, steps=2, mode="train")(model, x[:8], y[:8])
    assert not model.training


def test_attacks_take_no_gradient_to_parameters(digits_model):
    model, x, y = digits_model
    for p in model.parameters():
        p.grad = None
    PGD(0.05, steps=3)(model, x, y)
    assert all(p.grad is None for p in model.parameters())


def test_restarts_are_never_weaker(digits_model):
    model, x, y = digits_model
    one = predict(model, PGD(0.04, steps=2, step_size=0.01, seed=5)(model, x, y)).eq(y)
    three = predict(model, PGD(0.04, steps=2, step_size=0.01, seed=5, restarts=3)(model, x, y)).eq(y)
    assert not (three & ~one).any()


def test_cw_margin_attack_lowers_accuracy(digits_model):
    model, x, y = digits_model
    x_adv = build_attack("cw", 0.1, steps=10)(model, x, y)
    assert predict(model, x_adv).eq(y).float().mean() < predict(model, x).eq(y).float().mean() - 0.3


class _NoisyInput(torch.nn.Module):
    """A randomised defence: Gaussian noise on the input at every forward, in any mode."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, x):
        return self.model(x + 0.05 * torch.randn_like(x))


def test_eot_pgd_breaks_a_randomised_model(digits_model):
    model, x, y = digits_model
    noisy = _NoisyInput(model).eval()
    clean = predict(noisy, x).eq(y).float().mean()
    attack = build_attack("eot-pgd", 0.1, steps=5, eot_samples=4)
    robust = predict(noisy, attack(noisy, x, y)).eq(y).float().mean()
    assert robust < clean - 0.3


def test_bad_attack_arguments():
    with pytest.raises(InbornError, match="ε must be >= 0"):
        build_attack("pgd", -0.1)
    with pytest.raises(InbornError, match="unknown attack"):
        build_attack("nope", 0.1)
    with pytest.raises(InbornError, match="steps"):
        build_attack("pgd", 0.1, steps=0)


# -- per-sample early stop: how finished samples leave the computed batch ------------------------

def _channels_last_net() -> torch.nn.Module:
    """A small trained-looking conv net in channels-last, as inborn.load prepares a model on CPU."""
    from inborn.device import prepare_model

    torch.manual_seed(0)
    net = torch.nn.Sequential(
        torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.BatchNorm2d(8), torch.nn.ReLU(),
        torch.nn.Conv2d(8, 8, 3, padding=1), torch.nn.ReLU(), torch.nn.AdaptiveAvgPool2d(2),
        torch.nn.Flatten(), torch.nn.Linear(32, 10))
    return prepare_model(net, torch.device("cpu")).eval()


def _record_inputs(model: torch.nn.Module) -> tuple[list[torch.Tensor], object]:
    seen: list[torch.Tensor] = []
    handle = model.register_forward_pre_hook(lambda _m, args: seen.append(args[0].detach()))
    return seen, handle


@pytest.mark.parametrize("shrink", ["buckets", "exact", "never"])
def test_early_stop_keeps_every_robust_decision_whatever_the_shrink(digits_model, shrink):
    model, x, y = digits_model
    plain = PGD(0.05, steps=15, step_size=0.01, seed=3)
    early = PGD(0.05, steps=15, step_size=0.01, seed=3, early_stop=True)
    early.shrink = shrink
    a = predict(model, plain(model, x, y)).eq(y)
    seen, handle = _record_inputs(model)
    try:
        b = predict(model, early(model, x, y)).eq(y)
    finally:
        handle.remove()
    assert torch.equal(a, b)
    assert 0 < int(a.sum()) < len(a)  # some samples fooled, some not: early stop had work to do
    sizes = [len(t) for t in seen[:-1]]  # the last forward is predict's
    if shrink == "never":
        assert set(sizes) == {len(x)}
    else:
        assert min(sizes) < len(x)  # finished samples did leave the batch
    if shrink == "buckets":
        # Only sizes of the ladder (or the full batch): few distinct shapes for oneDNN to build.
        from inborn.attacks.pgd import _bucket

        assert all(s == len(x) or s == _bucket(s) for s in sizes)
        assert len(set(sizes)) < len(set(_sizes_exact(model, x, y)))


def _sizes_exact(model, x, y) -> list[int]:
    attack = PGD(0.05, steps=15, step_size=0.01, seed=3, early_stop=True)
    attack.shrink = "exact"
    seen, handle = _record_inputs(model)
    try:
        attack(model, x, y)
    finally:
        handle.remove()
    return [len(t) for t in seen]


@pytest.mark.parametrize("shrink", ["buckets", "exact", "never"])
def test_early_stop_returns_each_samples_best_iterate(shrink):
    """Fooled samples come back fooled, the others at their highest loss inside the ball; the
    points agree with the attack without early stop wherever that one was not fooled either."""
    model = _channels_last_net()
    torch.manual_seed(1)
    x, y = torch.rand(40, 3, 8, 8), torch.randint(0, 10, (40,))
    plain = PGD(0.1, steps=8, step_size=0.03, seed=5)(model, x, y)
    attack = PGD(0.1, steps=8, step_size=0.03, seed=5, early_stop=True)
    attack.shrink = shrink
    early = attack(model, x, y)
    fooled_plain, fooled_early = predict(model, plain).ne(y), predict(model, early).ne(y)
    assert torch.equal(fooled_plain, fooled_early)
    assert 0 < int(fooled_plain.sum()) < len(y)
    assert (early - x).abs().max() <= 0.1 + 1e-6 and early.min() >= 0 and early.max() <= 1
    torch.testing.assert_close(early[~fooled_plain], plain[~fooled_plain])


@pytest.mark.parametrize("shrink", ["buckets", "exact", "never"])
def test_channels_last_survives_compaction(shrink):
    """A channels-last batch reaches the model channels-last at every step, also after finished
    samples were dropped, and the examples come back in it (no layout conversion per step)."""
    model = _channels_last_net()
    torch.manual_seed(2)
    x = torch.rand(40, 3, 8, 8).contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, 10, (40,))
    attack = PGD(0.1, steps=8, step_size=0.03, seed=5, early_stop=True)
    attack.shrink = shrink
    seen, handle = _record_inputs(model)
    try:
        x_adv = attack(model, x, y)
    finally:
        handle.remove()
    assert len({len(t) for t in seen}) > 1 or shrink == "never"
    assert all(t.is_contiguous(memory_format=torch.channels_last) for t in seen)
    assert x_adv.is_contiguous(memory_format=torch.channels_last)


def test_shrink_defaults_by_device_and_refuses_unknown_values():
    attack = PGD(0.1, early_stop=True)
    assert attack.shrinks(torch.device("cpu")) == "exact"
    assert attack.shrinks(torch.device("cuda")) == "never"  # no per-step host sync on a GPU
    attack.shrink = "sometimes"
    with pytest.raises(InbornError, match="unknown shrink"):
        attack.shrinks(torch.device("cpu"))


def test_bucket_ladder_is_tight_and_short():
    from inborn.attacks.pgd import _bucket

    sizes = [_bucket(c) for c in range(1, 1025)]
    assert all(c <= s <= max(c, 1.25 * c) for c, s in zip(range(1, 1025), sizes, strict=True))
    assert all(_bucket(s) == s for s in sizes)  # a ladder size stays where it is
    assert len(set(sizes)) <= 4 + 4 * 8  # 1..4, then four per octave up to 1024
