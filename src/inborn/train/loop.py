"""Natural and adversarial training of any zoo model, resumable at epoch boundaries.

Read top to bottom: resolve the settings, set up, (maybe) restore, then for each epoch train,
validate, select, checkpoint. Every epoch reseeds from (seed, epoch), so `--resume` replays
exactly. What differs between modes lives beside the loop: the network to start from
(`train/setup.py`, fine-tuning in `train/finetune.py`), selection and the final test
(`train/selection.py`), the resumable state (`train/checkpoint.py`), smoke runs (`train/smoke.py`).

Under torchrun (see docs/distributed.md) every rank draws the same global batches and trains on
its slice of each, in DistributedDataParallel; rank 0 alone validates, tests and writes.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import os
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F
from tqdm.auto import tqdm

from inborn import distributed
from inborn.attacks import Attack, build_attack
from inborn.data import DataSplits, cutout, load_data, random_crop_flip
from inborn.data.augment import augment_generator
from inborn.device import autocast, compile_model, prepare_model, resolve_device
from inborn.errors import InbornError
from inborn.evaluation.results import evaluation_rows
from inborn.masks import reuse_masks, scores_frozen
from inborn.runs import save_model
from inborn.seeding import deterministic, epoch_seed, seed_everything
from inborn.store import ResultsDB, RunDir
from inborn.store.guard import check_output
from inborn.train.checkpoint import check_resumable, restore_training_state, training_state
from inborn.train.config import TRAIN_KINDS, TrainConfig
from inborn.train.curves import write_curves
from inborn.train.resolve import resolve_config
from inborn.train.schedules import learning_rate
from inborn.train.selection import NO_VALIDATION, RunSummary, finish, robust_on_test, validate
from inborn.train.setup import initial_model
from inborn.train.smoke import projection, smoke_setup
from inborn.train.tensorboard import check_log, metrics_log


class NonFiniteLoss(InbornError):
    """The loss became NaN or infinite: training stops, the last good checkpoint stays."""


def training_attack(cfg: TrainConfig, eps: float) -> Attack | None:
    """The attack that makes training examples; `free` is handled inside the loop."""
    if cfg.adv in ("none", "free"):
        return None
    steps = cfg.adv_steps if cfg.adv == "pgd" else None
    attack = build_attack(cfg.adv, eps, steps=steps, step_size=cfg.adv_step_size, mode=cfg.adv_mode,
                          use_autocast=cfg.amp)
    if hasattr(attack, "track_best"):
        attack.track_best = False  # the plain last iterate, as PGD-AT does
    return attack


@dataclass
class _Trainer:
    """What every training step uses: the network (`net`, DDP-wrapped under torchrun; attacks and
    evaluation use the bare `model`), its optimiser and trained parameters, the settings, and the
    attack that makes the training examples (None for natural and free training)."""

    net: nn.Module
    model: nn.Module
    opt: torch.optim.Optimizer
    params: list[nn.Parameter]
    cfg: TrainConfig
    attack: Attack | None
    step_per_eps: float | None  # the attack's step as a multiple of ε, kept during the ε warm-up

    def set_lr(self, lr: float) -> None:
        for group in self.opt.param_groups:
            group["lr"] = lr

    def clip_and_step(self) -> None:
        if self.cfg.grad_clip:
            nn.utils.clip_grad_norm_(self.params, self.cfg.grad_clip)
        self.opt.step()


def schedule(cfg: TrainConfig, progress: float, eps: float) -> tuple[float, float]:
    """(learning rate, ε) after `progress` epochs (fractional): the lr schedule and the ε warm-up,
    pure functions of progress, so a resumed run gets exactly the values it would have had."""
    lr = learning_rate(cfg.schedule, cfg.lr, progress, cfg.epochs, cfg.milestones)
    warm = cfg.eps_warmup_epochs
    return lr, (eps * min(1.0, progress / warm) if warm > 0 else eps)


def train(
    cfg: TrainConfig | None,
    out: str | Path,
    *,
    resume: bool = False,
    db: ResultsDB | None = None,
    progress: bool = True,
) -> RunSummary:
    """Train a model as `cfg` says into the run directory `out`; returns the run's summary (what
    `summary.json` holds: `summary.test.robust_acc`, or as a dict, `summary["test"]["robust_acc"]`).

    `cfg` is resolved first (inborn.train.resolve: the data set's recipe fills what it leaves
    None), so a Python call makes the run the command line makes; the caller's object is never
    changed. With `resume=True` the run in `out` continues from its own config (`cfg` is None).
    """
    run = RunDir(out)
    if resume:
        cfg = _stored_config(run)
        check_output(run.path, cfg.kind)
    else:
        if cfg is None:
            raise InbornError("train needs a TrainConfig (or resume=True to continue the run in `out`)")
        cfg = resolve_config(cfg)
        check_output(run.path, cfg.kind)  # new, empty, or a run of this kind: never a user's files
        if run.file(RunDir.CHECKPOINT).exists() or run.file(RunDir.MODEL).exists():
            raise InbornError(f"{str(run.path)!r} already holds a run; resume it or choose another run directory")
    check_log(cfg.log)  # a missing tensorboard package fails before anything is written
    # One writer per run directory; under torchrun the other ranks never write, so only rank 0 locks.
    lock = run.lock() if os.environ.get("RANK", "0") == "0" else contextlib.nullcontext()
    # The data first: a missing data set must fail before the run directory is created.
    splits = load_data(cfg.data, cfg.data_dir, val_fraction=cfg.val_fraction, seed=cfg.seed)
    if cfg.eps is None:  # the data set's usual ε, written into the run's config
        cfg = dataclasses.replace(cfg, eps=splits.info.default_eps)
    if resume:
        check_resumable(run, lambda: initial_model(cfg, splits))
    with lock, deterministic(cfg.deterministic):
        return _train_recorded(run, cfg, splits, resume=resume, db=db or ResultsDB(), progress=progress)


def _stored_config(run: RunDir) -> TrainConfig:
    """The config of the training run in `run`, to resume it."""
    doc = run.read_config()
    if doc.get("kind") not in TRAIN_KINDS:
        raise InbornError(f"{str(run.path)!r} holds a {doc.get('kind')} run, which --resume cannot continue")
    try:
        cfg = TrainConfig.from_dict(doc["config"])
    except TypeError as e:
        raise InbornError(f"{str(run.file(RunDir.CONFIG))!r} is not a training config: {e}") from e
    return cfg.validate() if cfg.resolved else resolve_config(cfg)


def _train_recorded(run: RunDir, cfg: TrainConfig, splits: DataSplits, *, resume: bool, db: ResultsDB,
                    progress: bool) -> RunSummary:
    """`_train`, with the run's database row marked on the way out: `interrupted` (Ctrl-C, SIGTERM)
    or `failed` (any error), never left `running`. A SIGKILL cannot be caught: `inborn runs`
    repairs such a row when it next sees it (inborn.store.status)."""
    try:
        return _train(run, cfg, splits, resume=resume, db=db, progress=progress)
    except BaseException as e:
        if distributed.is_main() and run.file(RunDir.CONFIG).exists():
            status = "interrupted" if isinstance(e, KeyboardInterrupt | SystemExit) else "failed"
            with contextlib.suppress(Exception):
                db.mark_run(run.path, status, only_if="running")
        raise


def _train(run: RunDir, cfg: TrainConfig, splits: DataSplits, *, resume: bool, db: ResultsDB,
           progress: bool) -> RunSummary:
    device = distributed.init_from_env(resolve_device(cfg.device))
    main = distributed.is_main()
    progress = progress and main
    eps = cfg.eps
    smoke_full = None
    if cfg.smoke:  # a sliver of the data, timed (inborn.train.smoke)
        cfg, splits, smoke_full = smoke_setup(cfg, splits, device.type)
    eval_seconds = 0.0

    if len(splits.val) == 0 and main:
        warnings.warn(NO_VALIDATION, stacklevel=3)
    warm = cfg.eps_warmup_epochs or 0
    if main and cfg.adv != "none" and warm > cfg.epochs - 1:
        warnings.warn(f"the ε warm-up lasts {warm:g} epochs of {cfg.epochs}: the run reaches its full ε = {eps:.4g} "
                      + ("only in its last epoch" if warm <= cfg.epochs else "never")
                      + " (more --epochs, or a shorter --eps-warmup)", stacklevel=3)
    seed_everything(cfg.seed)
    model, spec = initial_model(cfg, splits)
    model = compile_model(prepare_model(model, device), cfg.compile)  # compiled in place: eager state-dict keys
    trainer = _trainer(cfg, model, eps)
    start_epoch, history, best = 0, [], {"epoch": -1, "score": float("-inf")}
    if resume and (ckpt := run.load_checkpoint()) is not None:
        tensors, state = ckpt
        try:
            restore_training_state(model, trainer.opt, tensors)
        except (RuntimeError, KeyError, ValueError) as e:
            raise InbornError(f"the checkpoint in {str(run.path)!r} does not fit the run's model ({spec.get('arch')}, "
                              f"width {spec.get('width')}): {str(e).strip().splitlines()[0][:160]}") from e
        start_epoch, history, best = state["epoch"] + 1, state["history"], state["best"]
    trainer.net = distributed.wrap(model, device)  # trains the weights; attacks and evaluation use `model`
    if main and (not resume or start_epoch == 0):
        run.write_config(cfg.to_dict(), spec, kind=cfg.kind, results_db=db.path)
    if main:
        db.upsert_run(run.path, kind=cfg.kind, status="running", config=cfg.to_dict())
    log = metrics_log(run.path, cfg.log) if main else None

    for epoch in range(start_epoch, cfg.epochs):
        record = _train_epoch(trainer, splits, epoch, eps, device, progress)
        if main:  # the other ranks wait at the barrier below
            t_val = time.time()
            record.update(validate(model, splits, cfg, eps))
            eval_seconds += time.time() - t_val
            if cfg.test_every_epoch:
                record["test_robust_acc"] = robust_on_test(model, splits, cfg)
            history.append(record)
            # Without a validation split nothing can be selected: the last epoch is kept.
            if record["select_on"] == "last_epoch" or record["select_score"] > best["score"]:
                best = {"epoch": epoch, "score": record["select_score"]}
                save_model(run, model, spec, extra={"epoch": epoch, "selected_on": record["select_on"]})
            run.save_checkpoint(training_state(model, trainer.opt), {"epoch": epoch, "history": history, "best": best})
            run.write_metrics(history)
            if log is not None:
                log.epoch(record)
            write_curves(run.path, history, best["epoch"], _curves_title(cfg, run))
            if progress:
                tqdm.write(_epoch_line(record, cfg.epochs))
        distributed.barrier()

    summary: RunSummary | None = None
    if main:
        t_test = time.time()
        summary, test_result = finish(run, cfg, spec, splits, best, history, device, progress)
        if smoke_full is not None:
            train_seconds = sum(h["seconds"] for h in history)
            summary.smoke = projection(smoke_full, splits, history, train_seconds + eval_seconds + time.time() - t_test)
            run.write_summary(summary.to_dict())
        db.upsert_run(run.path, kind=cfg.kind, status="complete", config=cfg.to_dict(), summary=summary.to_dict())
        db.add_results(evaluation_rows(test_result, run.path, "test"))
        if log is not None:
            t = summary.test
            log.test({"clean_acc": t.clean_acc, "robust_acc": t.robust_acc, "hrs": t.hrs}, cfg.epochs)
            log.close()
    return distributed.broadcast_object(summary)  # the same summary on every rank


def _trainer(cfg: TrainConfig, model: nn.Module, eps: float) -> _Trainer:
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay,
                          nesterov=cfg.nesterov)
    attack = training_attack(cfg, eps)
    step_per_eps = attack.step_size / eps if attack is not None and hasattr(attack, "step_size") and eps > 0 else None
    return _Trainer(model, model, opt, params, cfg, attack, step_per_eps)  # `net` is wrapped once restored


# How often the loss and accuracy are read back from the device (for the progress bar and the
# non-finite check): reading them every batch made the host wait for the device every batch.
REFRESH_SECONDS = 1.0


class _Totals:
    """The epoch's loss and accuracy, kept on the device until read: `add` per batch costs no host
    sync; `flush` reads every batch since the last flush in one, and stops the run at the first
    non-finite loss (named by its batch, as when each batch was read at once). The sums are the
    ones the per-batch reads made (each loss as a Python float × batch size, summed on the host),
    so the figures are unchanged."""

    def __init__(self, epoch: int) -> None:
        self.epoch, self.seen, self.loss_sum, self.correct = epoch, 0, 0.0, 0
        self.pending: list[tuple[int, torch.Tensor, int]] = []  # (batch, [loss, correct], size)
        self.last_flush = time.monotonic()

    def add(self, batch: int, loss: torch.Tensor, logits: torch.Tensor, y: torch.Tensor) -> None:
        correct = logits.argmax(1).eq(y).sum()
        self.pending.append((batch, torch.stack([loss.detach().double(), correct.double()]), len(y)))

    def due(self) -> bool:
        return time.monotonic() - self.last_flush >= REFRESH_SECONDS

    def flush(self) -> None:
        self.last_flush = time.monotonic()
        if not self.pending:
            return
        values = torch.stack([v for _, v, _ in self.pending]).tolist()  # the one host sync
        for (batch, _, n), (loss, correct) in zip(self.pending, values, strict=True):
            if not math.isfinite(loss):
                raise NonFiniteLoss(f"the training loss became {loss} at epoch {self.epoch + 1}, batch {batch + 1}; "
                                    "the run stopped, its last complete epoch is kept (lower --lr, or check ε and "
                                    "the data)")
            self.seen += n
            self.loss_sum += loss * n
            self.correct += int(correct)
        self.pending.clear()


def _train_epoch(t: _Trainer, splits: DataSplits, epoch: int, eps: float, device: torch.device,
                 progress: bool) -> dict[str, Any]:
    """One pass over the training split; every epoch reseeds from (seed, epoch), so resume replays it.

    Under torchrun each batch is augmented whole (the same random draws as one process), then
    each rank takes its slice of it. Nothing is read back from the device per batch: the loss
    and accuracy are read every REFRESH_SECONDS and at the end, and augmentation draws on the
    device from its own generator, seeded from (seed, epoch) like the data order.
    """
    cfg, info, world = t.cfg, splits.info, distributed.world_size()
    seed = epoch_seed(cfg.seed, epoch)
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)  # the data order
    aug_gen = augment_generator(seed, device)
    t.net.train()
    _set_drop_path(t.model, cfg.drop_path * epoch / cfg.epochs)
    t0, totals = time.time(), _Totals(epoch)
    iters = max(1, -(-len(splits.train) // cfg.batch_size))
    batches = splits.train.batches(cfg.batch_size, shuffle=True, generator=gen, device=device)
    bar = tqdm(batches, total=iters, desc=f"epoch {epoch + 1}/{cfg.epochs}", disable=not progress, leave=False)
    free_delta: torch.Tensor | None = None  # restarts each epoch, so that resume replays exactly
    batch_times: list[float] = []  # a smoke run's measurement
    for i, (x, y) in enumerate(bar):
        t_batch = time.time()
        lr, cur_eps = schedule(cfg, epoch + i / iters, eps)
        t.set_lr(lr)
        if cfg.augment:
            x = random_crop_flip(x, info.crop_padding, info.flip, generator=aug_gen)
        x = cutout(x, cfg.cutout, generator=aug_gen)
        if len(y) < world:  # a last global batch too small to give every rank a sample
            continue
        global_n = len(y)
        x, y = distributed.shard(x, y)
        # DDP averages the ranks' gradients; weighting each rank's mean loss by its share of
        # the batch makes that average the gradient of the global mean when shards differ by one.
        share = len(y) * world / global_n
        if cfg.adv == "free":
            loss, logits, free_delta = _free_step(t, x, y, cur_eps, share, free_delta)
        else:
            loss, logits = _pgd_step(t, x, y, cur_eps, share)
        totals.add(i, loss, logits, y)
        if totals.due() or cfg.smoke:  # a smoke run times each batch: it waits for the device's work
            totals.flush()
            if totals.seen:
                bar.set_postfix(loss=f"{totals.loss_sum / totals.seen:.3f}", acc=f"{totals.correct / totals.seen:.3f}")
        batch_times.append(time.time() - t_batch)
    totals.flush()
    sums = torch.tensor([totals.seen, totals.loss_sum, totals.correct], dtype=torch.float64, device=device)
    seen, loss_sum, correct = distributed.all_reduce_sum(sums).tolist()  # over all ranks
    record = {"epoch": epoch, "train_loss": loss_sum / seen, "train_acc": correct / seen,
              "lr": t.opt.param_groups[0]["lr"], "seconds": time.time() - t0}
    return {**record, "batch_seconds": batch_times} if cfg.smoke else record


def _pgd_step(t: _Trainer, x: torch.Tensor, y: torch.Tensor, eps: float,
              share: float) -> tuple[torch.Tensor, torch.Tensor]:
    """One step of PGD-AT (or FGSM / FGSM-RS training, or natural training when there is no
    attack): attack the batch at `eps`, then one gradient step on it. Returns (loss, logits)."""
    cfg, model = t.cfg, t.model
    # Masks (if any) are computed once per batch; the attack steps take no gradient to the
    # scores. Both are no-ops for an ordinary network.
    with reuse_masks(model):
        if t.attack is not None:
            _set_eps(t.attack, eps, t.step_per_eps)
            with scores_frozen(model):
                x = t.attack(model, x, y)
        with autocast(x.device, cfg.amp):
            logits = t.net(x).float()
        loss = F.cross_entropy(logits, y)
        if cfg.aux_weight > 0:
            loss = loss + cfg.aux_weight * F.cross_entropy(_aux_logits(model).float(), y)
        t.opt.zero_grad(set_to_none=True)
        (loss * share).backward()
    t.clip_and_step()
    return loss, logits


def _free_step(t: _Trainer, x: torch.Tensor, y: torch.Tensor, eps: float, share: float,
               delta: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Free adversarial training (Shafahi et al. 2019): replay the batch, one backward feeds
    both the weights and the perturbation, which carries over to the next batch.
    Returns (loss, logits, the perturbation to carry over)."""
    if delta is None or delta.shape[1:] != x.shape[1:]:
        delta = torch.zeros_like(x[:1]).expand_as(x).clone()
    if len(delta) < len(x):
        delta = torch.cat([delta, torch.zeros_like(x[: len(x) - len(delta)])])
    d = delta[: len(x)]
    for _ in range(t.cfg.free_replays):
        x_adv = (x + d).clamp(0, 1).requires_grad_(True)
        with reuse_masks(t.net), autocast(x.device, t.cfg.amp):
            logits = t.net(x_adv).float()
            loss = F.cross_entropy(logits, y)
            t.opt.zero_grad(set_to_none=True)
            (loss * share).backward()  # a positive weight leaves the sign step below unchanged
        d = (d + eps * x_adv.grad.sign()).clamp(-eps, eps).detach()
        t.clip_and_step()
    delta = delta.clone()
    delta[: len(x)] = d
    return loss.detach(), logits.detach(), delta


def _set_eps(attack: Attack, eps: float, step_per_eps: float | None) -> None:
    """Set ε (and the step in proportion) during the ε warm-up."""
    attack.eps = eps
    if step_per_eps is not None:
        attack.step_size = step_per_eps * eps


def _set_drop_path(model: nn.Module, prob: float) -> None:
    """DARTS's schedule: the drop-path probability grows linearly over the epochs."""
    for m in model.modules():
        if hasattr(m, "drop_path_prob"):
            m.drop_path_prob = prob


def _aux_logits(model: nn.Module) -> torch.Tensor:
    """The auxiliary head's logits of the last forward (networks keep them aside, so that
    attacks see the main logits only)."""
    for m in model.modules():
        if getattr(m, "aux_logits", None) is not None:
            return m.aux_logits
    raise InbornError("an auxiliary loss weight was given, but this model has no auxiliary head")


def _curves_title(cfg: TrainConfig, run: RunDir) -> str:
    adv = "natural" if cfg.adv == "none" else f"{cfg.adv} at ε={cfg.eps:.4g}"
    width = f" width {cfg.width:g}" if cfg.width != 1 else ""
    ticket = f", ticket keeping {cfg.ticket.keep_ratio:g}" if cfg.ticket is not None else ""
    over = " over trained weights" if cfg.ticket is not None and cfg.from_run else ""
    return f"{run.path.name}: {cfg.kind} run, {cfg.arch}{width} on {cfg.data} ({adv}){ticket}{over}"


def _epoch_line(r: dict[str, Any], epochs: int) -> str:
    parts = [f"epoch {r['epoch'] + 1}/{epochs}", f"loss {r['train_loss']:.3f}", f"train {r['train_acc']:.3f}"]
    if "val_clean_acc" in r:
        parts.append(f"val clean {r['val_clean_acc']:.3f}")
    if "val_robust_acc" in r:
        parts.append(f"val robust {r['val_robust_acc']:.3f}")
    parts.append(f"{r['seconds']:.0f}s")
    return " | ".join(parts)
