"""Robustness evaluation: clean and robust accuracy per attack and ε, the per-sample worst case
over all attacks, and the harmonic robustness score. Always in eval() mode, in float32 unless
`amp` asks for bf16 autocast (on CUDA).

A model whose eval-mode output differs between two forwards of the same input (a Random RST
Switch, or any model with randomness) is evaluated so that one lucky draw cannot decide its
figure: no early stop and no best iterate (the last iterate is scored), input gradients averaged
over its randomness (EOT), and every classification repeated `repeats` times, reported as mean ±
std. It is found where attacks look, so randomness that shows only there cannot hide:
  - a model may declare it (`randomised = True`, as `RandomSwitch` does);
  - the probe runs forwards under several seeds, at the evaluation's batch size, on clean points
    and on random points of the ε-ball (off the data's pixel grid);
  - every batch a deterministic evaluation scores, clean and attacked (the attacks' own final
    iterates), is classified twice: if the two differ, the evaluation restarts as randomised and
    says so in its warnings.

The primitives here serve every experiment that attacks and scores a model (R2S's protocols
among them): `attack_batches` runs an attack over batches and keeps its own verdict, `classify`
scores points and ANDs that verdict in, `worst_case_over` combines evaluations. An attack's own
verdict, report and batching reach them through the `Attack` base's hooks, so no attack needs a
case of its own here.
"""

from __future__ import annotations

import contextlib
import dataclasses
import statistics
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn
from tqdm.auto import tqdm

from inborn import distributed
from inborn.attacks import ATTACKS, Attack, AttackReport, attack_norm, build_attack, is_iterative, model_mode
from inborn.data.base import TensorSplit
from inborn.device import autocast, compiled, exact_float32, resolve_device
from inborn.errors import InbornError, one_line
from inborn.evaluation.journal import EvalJournal, fingerprint, model_fingerprint, pack_flags, unpack_flags
from inborn.evaluation.metrics import harmonic_robustness_score
from inborn.evaluation.results import AttackResult, Evaluation, WorstCase
from inborn.models.fold import fold_batch_norm
from inborn.tables import SAMPLE_DIGITS, result_column
from inborn.values import EPS_MAX, check_int, check_seed, parse_eps_list, parse_real, refuse_duplicates

_BATCH_SEED = 1_000_003  # batch b's attacks (and a randomised model) draw their noise from seed + b * this
PROBE_FORWARDS = 4  # per seed and set of points: 24 forwards of one batch (every batch is classified twice too)
PROBE_SEEDS = (0, 1, 2)  # the probe's forwards run under each: a rare draw is not missed by one seed's luck
RANDOMNESS_TOL = 1e-4  # normalised logits further apart than this: two forwards differ
RANDOMISED_EOT = 10  # gradient samples per step for a randomised model, unless given
RANDOMISED_REPEATS = 5  # classifications of every point for a randomised model, unless given
STRONGER_ATTACKS = ("cw", "autoattack", "autoattack-rand")  # margin losses: they do not saturate
WEAK_PGD_GAP = 0.03  # a stronger attack this far (3 points) below cross-entropy PGD: PGD is not to be reported alone
WEAK_PGD_WARNING = ("{attack} leaves {robust:.3f} at ε={eps:.4g}, {gap:.1f} points below cross-entropy PGD's "
                    "{pgd:.3f}: PGD alone overstates this model. Likely cause: saturated softmax (large logits, as "
                    "in sparse tickets, give vanishing cross-entropy gradients; a margin loss does not saturate). "
                    "Report the worst case over the attacks")
RANDOMISED_WARNING = ("randomised model: its output differs between forwards of the same input, so early stop "
                      "and best-iterate tracking are off, gradients are averaged over {eot} forwards (EOT) and "
                      "every classification is repeated {repeats} times (mean ± std)")
FOUND_WARNING = ("randomness found during the evaluation (batch {batch}: two classifications of the same points "
                 "differed although the probe saw none); the evaluation restarted as randomised")

Data = TensorSplit | tuple[torch.Tensor, torch.Tensor]


@dataclass(frozen=True)
class EvalSettings:
    """Everything that changes an evaluation's figures (the journal and the results database
    key on it). `None` in `eot_samples`, `repeats` and `randomised` means: decided by the model."""

    attacks: Sequence[str] = ("pgd",)
    eps: Sequence[float] = (8 / 255,)
    steps: int = 20
    step_size: float | None = None  # None: ε/4
    restarts: int = 1
    n: int | None = None
    batch_size: int = 256
    seed: int = 0
    early_stop: bool = True
    eot_samples: int | None = None
    repeats: int | None = None
    amp: bool = False
    randomised: bool | None = None  # None: detect

    def validate(self) -> EvalSettings:
        """Every field checked as the CLI checks its flags (one-line InbornErrors naming the field);
        ε written as text (`"8/255"`) is read. Returns the settings (ε as numbers)."""
        attacks = self.attacks  # empty: clean accuracy only (model selection's clean pass)
        if isinstance(attacks, str) or not isinstance(attacks, Sequence):
            raise InbornError(f"attacks must be a list of attack names, e.g. ['pgd'], got {attacks!r}")
        for name in attacks:
            if not isinstance(name, str) or name not in ATTACKS:
                raise InbornError(f"unknown attack {name!r}; known: {', '.join(ATTACKS)}")
        refuse_duplicates(list(attacks), "attacks")
        if isinstance(self.eps, str) or not isinstance(self.eps, Sequence) or (attacks and not self.eps):
            raise InbornError(f"eps must be a non-empty list of ε values, e.g. [8/255], got {self.eps!r}")
        # An L-inf ε beyond 1 reaches every image; a radius of L2 attacks alone has no such bound.
        high = EPS_MAX if any(attack_norm(name) == "linf" for name in attacks) else None
        eps = parse_eps_list(self.eps, "eps", high=high) if self.eps else []
        out = self if not any(isinstance(e, str) for e in self.eps) else dataclasses.replace(self, eps=eps)
        if self.step_size is not None:
            parse_real(self.step_size, "step_size", low=0, low_open=True)
        for key in ("steps", "restarts", "batch_size", "n", "eot_samples", "repeats"):
            value = getattr(self, key)
            if value is not None or key in ("steps", "restarts", "batch_size"):
                check_int(value, key, low=1)
        check_seed(self.seed)
        for key in ("early_stop", "amp"):
            if not isinstance(getattr(self, key), bool):
                raise InbornError(f"{key} must be True or False, got {getattr(self, key)!r}")
        if self.randomised is not None and not isinstance(self.randomised, bool):
            raise InbornError(f"randomised must be True, False or None (detect), got {self.randomised!r}")
        return out

    def for_model(self, randomised: bool) -> EvalSettings:
        """The settings as they run on a model that is (or is not) randomised."""
        if not randomised:
            return dataclasses.replace(self, randomised=False, repeats=1, eot_samples=self.eot_samples)
        return dataclasses.replace(self, randomised=True, early_stop=False,
                                   eot_samples=self.eot_samples or RANDOMISED_EOT,
                                   repeats=self.repeats or RANDOMISED_REPEATS)

    @property
    def precision(self) -> str:
        return "bf16" if self.amp else "float32"


@torch.no_grad()
def logits(model: nn.Module, x: torch.Tensor, batch_size: int = 512, amp: bool = False) -> torch.Tensor:
    """The model's eval-mode output on x, in batches of `batch_size`, as float32."""
    with model_mode(model, "eval"):
        out = []
        for start in range(0, len(x), batch_size):
            xb = x[start : start + batch_size]
            with autocast(xb.device, amp):
                out.append(model(xb).float())
        return torch.cat(out) if out else torch.empty(0, 0, device=x.device)


def predict(model: nn.Module, x: torch.Tensor, batch_size: int = 512, amp: bool = False) -> torch.Tensor:
    if len(x) == 0:
        return torch.empty(0, dtype=torch.long, device=x.device)
    return logits(model, x, batch_size, amp).argmax(1)


def outputs_differ(a: torch.Tensor, b: torch.Tensor, tol: float = RANDOMNESS_TOL) -> bool:
    """Whether two outputs of the same points differ beyond rounding (each row scaled to norm 1)."""
    if a.numel() == 0:
        return False
    a, b = (o.flatten(1) / o.flatten(1).norm(dim=1).clamp_min(1e-10)[:, None] for o in (a, b))
    return bool((a - b).abs().max() > tol)


def classify(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, batch_size: int = 512, amp: bool = False,
             repeats: int = 1, fooled: torch.Tensor | None = None) -> torch.Tensor:
    """[repeats, n] correctness flags; each repeat is a fresh forward (a fresh draw of a randomised
    model). `fooled` is an attack's own verdict (`Attack.fooled()`): a point it fooled is wrong in
    every repeat, since a fresh draw cannot undo it, so a figure is never above the attack's own."""
    correct = torch.stack([predict(model, x, batch_size, amp).eq(y) for _ in range(repeats)])
    return correct if fooled is None else correct & ~fooled


def _judge(model: nn.Module, x: torch.Tensor, y: torch.Tensor, s: EvalSettings,
           fooled: torch.Tensor | None = None) -> tuple[torch.Tensor, bool]:
    """`classify` as the settings say, and whether a deterministic model's two classifications of
    the points (every deterministic evaluation makes two) differed: then it is not deterministic."""
    if s.randomised:
        return classify(model, x, y, batch_size=s.batch_size, amp=s.amp, repeats=s.repeats or 1, fooled=fooled), False
    first = logits(model, x, s.batch_size, s.amp)
    differed = outputs_differ(first, logits(model, x, s.batch_size, s.amp))
    correct = (first.argmax(1).eq(y) if len(x) else torch.zeros(0, dtype=torch.bool, device=y.device))[None]
    return (correct if fooled is None else correct & ~fooled), differed


def attack_batches(attack: Attack, model: nn.Module | Callable[[], nn.Module], x: torch.Tensor, y: torch.Tensor,
                   batch_size: int) -> tuple[torch.Tensor, torch.Tensor | None]:
    """`attack` on (x, y) in batches of `batch_size`: the adversarial points, and the attack's own
    verdict on them (`Attack.fooled()`; None when it gives none). The one attack object runs batch
    after batch, its noise running on (`evaluate` reseeds it per batch instead); an attack that
    batches itself (AutoAttack) gets every point in one call. `model` may be a function giving the
    model to attack, called once per batch, in order (say, a fresh draw of a ticket)."""
    target = (lambda: model) if isinstance(model, nn.Module) else model
    if attack.set_batch_size(batch_size):
        return attack(target(), x, y), attack.fooled()
    parts, verdicts = [], []
    for start in range(0, len(x), batch_size):
        parts.append(attack(target(), x[start : start + batch_size], y[start : start + batch_size]))
        verdicts.append(attack.fooled())
    fooled = None if not verdicts or any(v is None for v in verdicts) else torch.cat(verdicts)
    return torch.cat(parts), fooled


@torch.no_grad()
def is_randomised(model: nn.Module, x: torch.Tensor, forwards: int = 8, tol: float = RANDOMNESS_TOL, *,
                  eps: float = 0.0, seeds: Sequence[int] = PROBE_SEEDS) -> bool:
    """Whether the model declares randomness (`randomised = True`) or its eval-mode output changes
    between forwards of the same input (AutoAttack's check, made harder to slip past): `forwards`
    forwards of all of `x` at once (give it the evaluation's batch size), under each seed, of `x`
    and of random points of the ε-ball around it (uniform, so off the data's pixel grid)."""
    if getattr(model, "randomised", False):
        return True
    points = [x]
    if eps > 0:
        gen = torch.Generator().manual_seed(0)
        noise = torch.rand(x.shape, generator=gen).to(x.device) * 2 - 1
        points.append((x + eps * noise).clamp(0, 1))
    for seed in seeds:
        for p in points:
            with _seeded(True, seed, x.device):
                first = logits(model, p, len(p))
                if any(outputs_differ(first, logits(model, p, len(p)), tol) for _ in range(forwards - 1)):
                    return True
    return False


class _RandomnessFound(Exception):
    """Two classifications of the same points differed in a deterministic evaluation."""

    def __init__(self, batch: int) -> None:
        super().__init__(batch)
        self.batch = batch


def evaluate(model: nn.Module, data: Data, settings: EvalSettings | None = None, *,
             device: torch.device | str | None = None, progress: bool = False, journal: str | Path | None = None,
             split_over_ranks: bool = False, per_sample: bool = False, identify: bool = True,
             compile: bool = False, adversarial: dict[str, Any] | None = None, **overrides: Any) -> Evaluation:
    """Evaluate `model` (pixels in [0,1] in, logits out) on the first `n` examples of `data`.

    Settings come as one `EvalSettings` and/or as its fields by keyword (`attacks=["pgd"], eps=[0.3]`).
    A sample counts as robust to an attack only if it is classified correctly both clean and
    under attack. `worst_case` marks a sample robust at ε only if it survives every attack run.
    With `journal` (a file path) every finished batch is recorded there, and a later call with
    the same model and settings skips the batches it holds; the file is removed at the end.
    With `split_over_ranks`, every torchrun rank must call this, and each attacks its share of
    the batches (without it, under torchrun, the calling rank evaluates everything alone).
    `per_sample` adds every sample's flags (strings of 0/1) to the result. `identify=False` skips
    hashing the model (its `fingerprint` is then empty): for evaluations no row or journal keeps.
    `compile` runs the attacks on a torch.compile'd model (`inborn.device.compiled`: the caller's
    model is eager again afterwards); the figures are the eager ones up to float rounding.
    `adversarial`, a dict, receives per attack and ε (key `attack@eps`) the points each attack
    returned, `x_adv`, and the indices of their images in `data`, `index` (the images no clean
    classification got right are not attacked): an evaluation that runs every batch here, so
    neither a journal nor a torchrun split goes with it.
    The result is an `Evaluation` (attributes; `to_dict()` is the JSON `inborn eval` writes).
    """
    # The arguments checked as the CLI checks its flags: one-line InbornErrors, before any work.
    if settings is not None and not isinstance(settings, EvalSettings):
        raise InbornError(f"settings must be an EvalSettings, got {type(settings).__name__}")
    unknown = sorted(set(overrides) - {f.name for f in dataclasses.fields(EvalSettings)})
    if unknown:
        raise InbornError(f"evaluate takes no setting {unknown[0]!r}; known: "
                          f"{', '.join(f.name for f in dataclasses.fields(EvalSettings))}")
    s = dataclasses.replace(settings or EvalSettings(), **overrides).validate()
    check_module(model)
    data = check_data(data)
    device = _check_device(model, device)
    data = data.head(s.n) if not isinstance(data, tuple) else (data[0][: s.n], data[1][: s.n])
    size = len(data[0]) if isinstance(data, tuple) else len(data)
    if size == 0:
        raise InbornError("nothing to evaluate: the split is empty")
    labels = data[1] if isinstance(data, tuple) else data.labels
    check_model_output(model, _probe(data, 1, device), labels=labels)
    world, rank = (distributed.world_size(), distributed.rank()) if split_over_ranks else (1, 0)
    model_hash = model_fingerprint(model) if rank == 0 and (identify or journal is not None) else ""
    journal = journal if rank == 0 else None  # rank 0 alone reads and writes it; the others receive what it holds
    randomised = s.randomised
    if randomised is None:  # an interrupted evaluation that found randomness resumes as randomised
        randomised = len(EvalJournal(journal, _journal_key(model_hash, s.for_model(True), size))) > 0 or \
            is_randomised(model, _probe(data, s.batch_size, device), PROBE_FORWARDS, eps=max(s.eps, default=0.0))
        if world > 1:  # rank 0's journal may have decided it: every rank evaluates alike
            randomised = distributed.broadcast_object(randomised)
    if not isinstance(compile, bool):
        raise InbornError(f"compile must be True or False, got {compile!r}")
    if adversarial is not None and (not isinstance(adversarial, dict) or journal is not None or world > 1):
        raise InbornError("adversarial (a dict to fill) keeps the points of an evaluation that runs every batch "
                          "here: give no journal and no torchrun split with it")
    run = dict(device=device, progress=progress, journal=journal, world=world, rank=rank, per_sample=per_sample,
               model_hash=model_hash, size=size, compile=compile, adversarial=adversarial)
    try:
        return _evaluate_as(model, data, s.for_model(randomised), **run)
    except _RandomnessFound as found:
        if adversarial is not None:
            adversarial.clear()  # the points of the deterministic pass are not the randomised one's
        result = _evaluate_as(model, data, s.for_model(True), **run)
        return dataclasses.replace(result, warnings=[FOUND_WARNING.format(batch=found.batch), *result.warnings])


def check_module(model: Any, what: str = "model") -> nn.Module:
    """`model` is a torch module (pixels in [0,1] in, logits out)."""
    if not isinstance(model, nn.Module):
        raise InbornError(f"{what} must be a torch.nn.Module (pixels in [0,1] in, logits out), "
                          f"got {type(model).__name__}")
    return model


def check_data(data: Any) -> Data:
    """A TensorSplit, or an (x, y) pair: x float images (N, C, H, W) in [0, 1], y N integer labels."""
    if isinstance(data, TensorSplit):
        return data
    if not isinstance(data, tuple | list) or len(data) != 2:
        raise InbornError(f"data must be a TensorSplit or an (x, y) pair of tensors, got {type(data).__name__}")
    x, y = data
    if not isinstance(x, torch.Tensor) or not isinstance(y, torch.Tensor):
        raise InbornError(f"data must be an (x, y) pair of tensors, got ({type(x).__name__}, {type(y).__name__})")
    if x.dim() != 4 or not x.is_floating_point():
        raise InbornError(f"x must be float images of shape (N, C, H, W) in [0, 1], got {x.dtype} of shape "
                          f"{tuple(x.shape)}")
    if y.dim() != 1 or y.is_floating_point() or y.dtype == torch.bool or len(y) != len(x):
        raise InbornError(f"y must be {len(x)} integer labels, one per image, got {y.dtype} of shape {tuple(y.shape)}")
    if len(x) and (not torch.isfinite(x).all() or x.min() < 0 or x.max() > 1):
        raise InbornError("x must hold pixels in [0, 1] (the model normalises inside; ε is in the same units)")
    if len(y) and y.min() < 0:
        raise InbornError(f"y must hold class indices >= 0, got {int(y.min())}")
    return (x, y.long())


def _check_device(model: nn.Module, device: torch.device | str | None) -> torch.device:
    """The device given (`auto`, `cpu`, `cuda:N` or a torch.device), else the model's (cpu without parameters)."""
    if device is None:
        first = next(model.parameters(), None)
        return first.device if first is not None else torch.device("cpu")
    if isinstance(device, torch.device):
        return device
    if not isinstance(device, str):
        raise InbornError(f"device must be a name such as cpu or cuda:0, or a torch.device, got {device!r}")
    return resolve_device(device)


def check_model_output(model: nn.Module, x: torch.Tensor, *, num_classes: int | None = None,
                       labels: torch.Tensor | None = None) -> None:
    """One forward of one image before an evaluation (cheap): a model that cannot take the data's
    images, or whose output is not a row of class scores that fits the data set, is refused in one
    line naming its problem, never deep inside an attack or, worse, accepted. The forward runs in
    eval mode without gradients, and leaves the global random state as it found it (a randomised
    model draws from it; the evaluation seeds its own draws)."""
    shape = "×".join(str(d) for d in x.shape[1:])
    devices = [x.device] if x.device.type == "cuda" else []
    try:
        with torch.no_grad(), model_mode(model, "eval"), torch.random.fork_rng(devices=devices):
            out = model(x[:1])
    except Exception as e:  # whatever the model's own code raises: one line that names it
        raise InbornError(f"the model cannot take the data set's images ({shape}): {one_line(e)}") from e
    if not isinstance(out, torch.Tensor):
        raise InbornError(f"the model must return a tensor of logits (one row per image), got a {type(out).__name__}")
    if out.dim() != 2 or out.shape[0] != 1 or not out.is_floating_point():
        raise InbornError(f"the model must return logits of shape (images, classes); for 1 image it gives "
                          f"{out.dtype} of shape {tuple(out.shape)}")
    outputs = out.shape[1]
    if num_classes is not None and outputs != num_classes:
        raise InbornError(f"the model gives {outputs} outputs for a data set of {num_classes} classes")
    if labels is not None and len(labels) and int(labels.max()) >= outputs:
        raise InbornError(f"the model gives {outputs} outputs, but the data holds label {int(labels.max())}")


def _journal_key(model_hash: str, s: EvalSettings, size: int) -> str:
    return fingerprint(model_hash, {**dataclasses.asdict(s), "examples": size})


def _evaluate_as(model: nn.Module, data: Data, s: EvalSettings, *, device: torch.device | str,
                 progress: bool, journal: str | Path | None, world: int, rank: int, per_sample: bool,
                 model_hash: str, size: int, compile: bool = False,
                 adversarial: dict[str, Any] | None = None) -> Evaluation:
    """`evaluate` with the model's randomness decided (`s.randomised`). A deterministic evaluation
    raises `_RandomnessFound` on every rank when a batch's two classifications differ on any."""
    # The attacks run on a copy with BatchNorm folded into the convolutions (the same function up
    # to rounding, faster); every verdict is the model's own. A random model is attacked as it is.
    surrogate = model if s.randomised else fold_batch_norm(model)
    grid = _attack_grid(s)
    total = -(-size // s.batch_size)
    log = EvalJournal(journal, _journal_key(model_hash, s, size))
    if world > 1:
        log.batches = distributed.broadcast_object(log.batches)
    resumed = len(log)
    # Under torchrun the ranks take turns: in each round of `world` batches, rank r attacks the
    # r-th, and every rank gathers the round's records in batch order. Batches are seeded by
    # their index, so the result is the single-process one, and a resumed one the whole one.
    loaded = _batches(data, [b for b in range(resumed, total) if b % world == rank], s.batch_size, device)
    mine: dict[str, Any] | None = None
    # The attacks' many forwards and backwards compiled if asked; "float32" recorded means no TF32.
    with compiled(surrogate, compile), exact_float32(device, not s.amp):
        bar = tqdm(range(resumed, total), initial=resumed, total=total, unit="batch", leave=False,
                   desc=f"evaluating {len(grid)} attack×ε on {size} images", disable=not progress or rank != 0)
        for b in bar:
            if b % world == rank:
                keep = None if adversarial is None else (adversarial, b * s.batch_size)
                flags = _evaluate_batch(model, surrogate, grid, *next(loaded), s, s.seed + _BATCH_SEED * b,
                                        on_attack=bar.set_postfix_str if progress and rank == 0 else None,
                                        keep=keep)
                mine = {**flags, "batch": b}
            if b % world == world - 1 or b == total - 1:
                records = [r for r in (distributed.all_gather_object(mine) if world > 1 else [mine]) if r is not None]
                found = [r["batch"] for r in records if r.pop("randomness", False)]
                if found:  # every rank sees every record, so every rank restarts
                    raise _RandomnessFound(found[0])
                for record in records:
                    log.record(record)
                mine = None
    result = _summarise(log.batches, grid, s, per_sample, model_hash)
    log.close()
    return result


def _attack_grid(s: EvalSettings) -> list[tuple[float, str, Attack]]:
    return [(e, name, build_attack(name, e, steps=s.steps if is_iterative(name) else None, step_size=s.step_size,
                                   restarts=s.restarts, early_stop=s.early_stop, seed=s.seed, mode="eval",
                                   eot_samples=_eot(name, s), use_autocast=s.amp,
                                   **({"track_best": False} if s.randomised and is_iterative(name) else {})))
            for e in s.eps for name in s.attacks]


def _eot(name: str, s: EvalSettings) -> int | None:
    """EOT-PGD always averages (10 samples unless given); the other gradient attacks do on a
    randomised model. AutoAttack's `rand` version runs its own EOT."""
    if name == "eot-pgd":
        return s.eot_samples
    return s.eot_samples if s.randomised else None


def _evaluate_batch(model: nn.Module, surrogate: nn.Module, grid: list[tuple[float, str, Attack]], x: torch.Tensor,
                    y: torch.Tensor, s: EvalSettings, seed: int,
                    on_attack: Callable[[str], None] | None = None,
                    keep: tuple[dict[str, Any], int] | None = None) -> dict[str, Any]:
    """One batch under every (ε, attack) of the grid, as a journal record of [repeats, batch] flags.
    The attacks run on `surrogate` (the model, or its BatchNorm-folded copy); `model` judges."""
    with _seeded(bool(s.randomised), seed, x.device):
        clean, differed = _judge(model, x, y, s)
        record: dict[str, Any] = {"clean": clean.cpu(), "robust": [], "warnings": [], "after": [],
                                  "randomness": differed}
        for e, name, attack in grid:
            if on_attack is not None:  # the progress bar names the attack running now
                on_attack(f"{name}{f'-{attack.steps}' if getattr(attack, 'steps', 0) else ''} at ε={e:.4g}")
            attack.reseed(seed)  # a batch's noise does not depend on the batches before it
            points = None
            if keep is not None:
                points = (keep[0].setdefault(adversarial_key(name, e), {"x_adv": [], "index": []}), keep[1])
            flags, report, differed = _robust_flags(model, surrogate, attack, x, y, clean, s, points)
            record["randomness"] |= differed
            record["robust"].append(flags.cpu())
            # Only a batch the attack actually ran on has a fresh report; its counts add up over batches.
            record["warnings"].append(sorted(report.warnings) if report is not None else [])
            record["after"].append(dict(report.robust_after) if report is not None else {})
    return record


def adversarial_key(attack: str, eps: float) -> str:
    """The key of one attack and ε in `evaluate(adversarial=...)` and `inborn eval --save-adv`."""
    return f"{attack}@{eps:.6g}"


def _robust_flags(model: nn.Module, surrogate: nn.Module, attack: Attack, x: torch.Tensor, y: torch.Tensor,
                  clean: torch.Tensor, s: EvalSettings, points: tuple[dict[str, list], int] | None = None,
                  ) -> tuple[torch.Tensor, AttackReport | None, bool]:
    """[repeats, batch] correctness under attack, and clean in the same repeat, with the report of
    the attack's call (None when it was not called) and whether the two classifications of the
    attack's points differed (`_judge`). Samples that no clean repeat classifies correctly are not
    attacked. The attack's own verdict stands beside the model's."""
    idx = clean.any(0).nonzero().squeeze(1)
    if len(idx) == 0 or attack.eps == 0:
        return clean.clone(), None, False
    x_adv, fooled = attack_batches(attack, surrogate, x[idx], y[idx], s.batch_size)
    if points is not None:  # the attack's points, with their images' indices in the evaluated data
        points[0]["x_adv"].append(x_adv.detach().cpu())
        points[0]["index"].append((idx + points[1]).cpu())
    survived, differed = _judge(model, x_adv, y[idx], s, fooled)
    out = torch.zeros_like(clean)
    out[:, idx] = survived
    return out & clean, attack.report(), differed


def _summarise(batches: list[dict[str, Any]], grid: list[tuple[float, str, Attack]], s: EvalSettings,
               per_sample: bool, model_hash: str) -> Evaluation:
    clean = torch.cat([rec["clean"] for rec in batches], dim=1)
    clean_acc, clean_std = _mean_std(clean)
    rows: list[AttackResult] = []
    worst: list[WorstCase] = []
    flags: dict[str, Any] = {"clean": pack_flags(clean)} if per_sample else {}
    for e in s.eps:
        at_eps = []
        for i, (ge, name, attack) in enumerate(grid):
            if ge != e:
                continue
            correct = torch.cat([rec["robust"][i] for rec in batches], dim=1)
            at_eps.append(correct)
            if per_sample:
                flags[result_column(name, e, digits=SAMPLE_DIGITS)] = pack_flags(correct)
            rows.append(_result_row(name, e, attack, correct, clean_acc, batches, i, len(clean[0])))
        worst.append(_worst_case(e, list(s.attacks), clean, at_eps))
    warnings = [RANDOMISED_WARNING.format(eot=s.eot_samples, repeats=s.repeats)] if s.randomised else []
    return Evaluation(
        n=clean.shape[1], clean_acc=clean_acc, clean_acc_std=clean_std, results=rows, worst_case=worst,
        randomised=bool(s.randomised), repeats=s.repeats, precision=s.precision, seed=s.seed,
        warnings=warnings + weak_pgd_warnings(rows),
        per_sample=flags if per_sample else None, fingerprint=model_hash,
    )


def weak_pgd_warnings(results: Sequence[AttackResult]) -> list[str]:
    """A warning per stronger attack (margin PGD, AutoAttack) that leaves `WEAK_PGD_GAP` or more
    below cross-entropy PGD at the same ε: PGD's figure alone would overstate the model."""
    out = []
    for pgd in (r for r in results if r.attack == "pgd"):
        for other in results:
            gap = pgd.robust_acc - other.robust_acc
            if other.attack in STRONGER_ATTACKS and other.eps == pgd.eps and gap >= WEAK_PGD_GAP - 1e-9:
                out.append(WEAK_PGD_WARNING.format(attack=other.attack, robust=other.robust_acc, eps=pgd.eps,
                                                   gap=100 * gap, pgd=pgd.robust_acc))
    return out


def _result_row(name: str, e: float, attack: Attack, correct: torch.Tensor, clean_acc: float,
                batches: list[dict[str, Any]], i: int, n: int) -> AttackResult:
    robust, std = _mean_std(correct)
    reported: dict[str, Any] = {}
    if attack.reports:  # its warnings, and its per-sub-attack counts as shares of all n samples
        after: Counter = Counter()
        for rec in batches:
            after.update(rec["after"][i])
        reported = {"warnings": sorted({w for rec in batches for w in rec["warnings"][i]}),
                    "robust_acc_after": {sub: count / n for sub, count in after.items()}}
    return AttackResult(attack=name, eps=e, steps=getattr(attack, "steps", 0) if is_iterative(name) else 0,
                        step_size=getattr(attack, "step_size", None), restarts=attack.restarts,
                        eot_samples=attack.eot_samples, robust_acc=robust, robust_acc_std=std,
                        hrs=harmonic_robustness_score(clean_acc, robust), attack_repr=repr(attack), **reported)


def _worst_case(e: float, attacks: list[str], clean: torch.Tensor, correct: Sequence[torch.Tensor],
                counted: bool = False) -> WorstCase:
    """The one definition of the worst case: a point survives at ε if, in the same repeat, it is
    correct clean and under every attack, on the first n points all the flags cover (evaluations
    take the head of a split). `counted`: the WorstCase says that n (a worst case over several)."""
    n = min(f.shape[1] for f in (clean, *correct))
    survived = clean[:, :n].clone()
    for flags in correct:
        survived &= flags[:, :n]
    robust, std = _mean_std(survived)
    return WorstCase(eps=e, attacks=attacks, robust_acc=robust, robust_acc_std=std,
                     hrs=harmonic_robustness_score(_mean_std(clean[:, :n])[0], robust), n=n if counted else None)


def worst_case_over(evaluations: Sequence[Evaluation], eps: float) -> WorstCase | None:
    """The worst case at ε over several evaluations of one model on the head of one split (say the
    fast attacks on many images and AutoAttack on fewer): the points correct clean (as the first
    evaluation saw them) and under every attack any of them ran at ε, on the points all of those
    ran on (its `n`). None when none ran at ε. Needs their per-sample flags (`per_sample=True`)."""
    at_eps = [(ev, r) for ev in evaluations for r in ev.results if r.eps == eps]
    if not at_eps:
        return None
    if any(ev.per_sample is None for ev in evaluations):
        raise InbornError("a worst case over several evaluations needs their per-sample flags (per_sample=True)")
    clean = unpack_flags(evaluations[0].per_sample["clean"])  # type: ignore[index]
    correct = [unpack_flags(ev.per_sample[result_column(r.attack, eps, digits=SAMPLE_DIGITS)])  # type: ignore[index]
               for ev, r in at_eps]
    return _worst_case(eps, [r.attack for _, r in at_eps], clean, correct, counted=True)


def _mean_std(flags: torch.Tensor) -> tuple[float, float]:
    """Mean accuracy over [repeats, n] flags, and the spread of the per-repeat accuracies."""
    per_repeat = flags.float().mean(1).tolist()
    return statistics.fmean(per_repeat), statistics.pstdev(per_repeat)


@contextlib.contextmanager
def _seeded(active: bool, seed: int, device: torch.device) -> Iterator[None]:
    """The global RNG at `seed` inside (a randomised model draws from it), restored afterwards."""
    if not active:
        yield
        return
    devices = [device] if torch.device(device).type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        yield


def _probe(data: Data, batch_size: int, device: torch.device | str) -> torch.Tensor:
    """The probe's points: the first batch, at the evaluation's batch size."""
    if isinstance(data, tuple):
        return data[0][:batch_size].to(device)
    return data.head(batch_size).tensors(device)[0]


def _batches(data: Data, wanted: list[int], batch_size: int, device: torch.device | str,
             ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Batches number `wanted` (ascending), loaded on the device one at a time; the others are
    never read. Splits too large for memory are streamed (decoding ahead as usual)."""
    if isinstance(data, tuple):
        for b in wanted:
            rows = slice(b * batch_size, (b + 1) * batch_size)
            yield data[0][rows].to(device), data[1][rows].to(device)
        return
    if wanted:
        index = torch.cat([torch.arange(b * batch_size, min((b + 1) * batch_size, len(data))) for b in wanted])
        yield from data.subset(index).batches(batch_size, device=device)
