"""Natural and adversarial training of any zoo model, resumable at epoch boundaries.

Read top to bottom: set up, (maybe) restore, then for each epoch train, validate, select,
checkpoint. Every epoch reseeds from (seed, epoch), so `--resume` replays exactly.

Under torchrun (see docs/distributed.md) every rank draws the same global batches and trains on
its slice of each, in DistributedDataParallel; rank 0 alone validates, tests and writes.
"""

from __future__ import annotations

import contextlib
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
from inborn.device import autocast, prepare_model, resolve_device
from inborn.errors import InbornError
from inborn.evaluation.evaluate import evaluate
from inborn.evaluation.results import evaluation_rows
from inborn.masks import SupermaskConfig, mask_stats, reuse_masks, scores_frozen
from inborn.masks.ticket import is_supermask
from inborn.runs import load, save_model
from inborn.runs.imported import imported_source
from inborn.seeding import epoch_seed, seed_everything
from inborn.spec import build_model
from inborn.store import ResultsDB, RunDir
from inborn.store.guard import TRAIN_KINDS, check_output
from inborn.train.config import TrainConfig
from inborn.train.curves import write_curves
from inborn.train.finetune import finetune_start
from inborn.train.schedules import learning_rate
from inborn.train.smoke import projection, smoke_setup


class NonFiniteLoss(InbornError):
    """The loss became NaN or infinite: training stops, the last good checkpoint stays."""


NO_VALIDATION = "no validation split: no selection is possible, so the last epoch is the one tested"


def model_spec_for(cfg: TrainConfig, splits: DataSplits) -> dict[str, Any]:
    """Everything needed to rebuild this network, stored with every checkpoint."""
    info = splits.info
    spec = {
        "arch": cfg.arch, "num_classes": info.num_classes, "in_channels": info.in_channels,
        "image_size": info.image_size, "width": cfg.width, "affine_bn": cfg.affine_bn,
        "mean": list(info.mean), "std": list(info.std), "kwargs": dict(cfg.model_kwargs),
    }
    if cfg.aux_weight > 0:
        spec["kwargs"]["auxiliary"] = True
    if cfg.ticket is not None:
        spec["supermask"] = SupermaskConfig(**cfg.ticket).to_dict()
        # Random weights are redrawn from their seed; trained ones must be stored.
        spec["weights"] = "stored" if cfg.from_run else "seed"
    return spec


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
    cfg: TrainConfig,
    out: str | Path,
    *,
    resume: bool = False,
    db: ResultsDB | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Train a model as `cfg` says into the run directory `out`; returns the run's summary."""
    run = RunDir(out)
    if resume:
        doc = run.read_config()
        if doc.get("kind") not in TRAIN_KINDS:
            raise InbornError(f"{str(run.path)!r} holds a {doc.get('kind')} run, which --resume cannot continue")
        try:
            cfg = TrainConfig.from_dict(doc["config"])
        except TypeError as e:
            raise InbornError(f"{str(run.file(RunDir.CONFIG))!r} is not a training config: {e}") from e
        cfg.validate()
        check_output(run.path, cfg.kind)
    else:
        cfg.validate()
        check_output(run.path, cfg.kind)  # new, empty, or a run of this kind: never a user's files
        if run.file(RunDir.CHECKPOINT).exists() or run.file(RunDir.MODEL).exists():
            raise InbornError(f"{str(run.path)!r} already holds a run; resume it or choose another run directory")
    if cfg.ticket is not None:  # the ticket's names too, before the run directory exists
        check_ticket_names(cfg.ticket)
    # One writer per run directory; under torchrun the other ranks never write, so only rank 0 locks.
    lock = run.lock() if os.environ.get("RANK", "0") == "0" else contextlib.nullcontext()
    # The data first: a missing data set must fail before the run directory is created.
    splits = load_data(cfg.data, cfg.data_dir, val_fraction=cfg.val_fraction, seed=cfg.seed)
    if resume:
        _check_resumable(run, cfg, splits)
    with lock:
        return _train_recorded(run, cfg, splits, resume=resume, db=db or ResultsDB(), progress=progress)


def _check_resumable(run: RunDir, cfg: TrainConfig, splits: DataSplits) -> None:
    """A checkpoint to resume from must be inborn's and fit the run's model: checked from its
    header before the lock is taken, so a foreign or mismatched one changes no file."""
    found = run.checkpoint_shapes()
    if found is None:
        return
    shapes, _ = found
    model, spec = _initial_model(cfg, splits)
    own = {f"model.{k}": tuple(v.shape) for k, v in model.state_dict().items()}
    stored = {k: v for k, v in shapes.items() if k.startswith("model.")}
    if own != stored:
        bad = sorted(set(own) ^ set(stored)) or sorted(k for k in own if own[k] != stored[k])
        raise InbornError(f"the checkpoint in {str(run.path)!r} does not fit the run's model ({spec.get('arch')}, "
                          f"width {spec.get('width')}): e.g. {bad[0]}")


def check_ticket_names(ticket: dict[str, Any]) -> None:
    """A ticket's mask pattern and weight init are known names (a one-line error otherwise)."""
    from inborn.masks.init import INITS
    from inborn.masks.patterns import check_pattern

    check_pattern(str(ticket.get("pattern", "element")), ticket["keep_ratio"])
    if ticket.get("init", "signed_constant") not in INITS:
        raise InbornError(f"unknown weight init {ticket['init']!r}; known: {', '.join(INITS)}")


def _train_recorded(run: RunDir, cfg: TrainConfig, splits: DataSplits, *, resume: bool, db: ResultsDB,
                    progress: bool) -> dict[str, Any]:
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
           progress: bool) -> dict[str, Any]:
    device = distributed.init_from_env(resolve_device(cfg.device))
    main = distributed.is_main()
    progress = progress and main
    eps = splits.info.default_eps if cfg.eps is None else cfg.eps
    cfg.eps = eps
    smoke_full = None
    if cfg.smoke:  # a sliver of the data, timed (inborn.train.smoke)
        cfg, splits, smoke_full = smoke_setup(cfg, splits, device.type)
    eval_seconds = 0.0

    if len(splits.val) == 0 and main:
        warnings.warn(NO_VALIDATION, stacklevel=3)
    seed_everything(cfg.seed)
    model, spec = _initial_model(cfg, splits)
    model = prepare_model(model, device)
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
        run.write_config(cfg.to_dict(), spec, kind=cfg.kind)
    if main:
        db.upsert_run(run.path, kind=cfg.kind, status="running", config=cfg.to_dict())

    for epoch in range(start_epoch, cfg.epochs):
        record = _train_epoch(trainer, splits, epoch, eps, device, progress)
        if main:  # the other ranks wait at the barrier below
            t_val = time.time()
            record.update(validate(model, splits, cfg, eps))
            eval_seconds += time.time() - t_val
            if cfg.test_every_epoch:
                record["test_robust_acc"] = _test_robust(model, splits, cfg)
            history.append(record)
            # Without a validation split nothing can be selected: the last epoch is kept.
            if record["select_on"] == "last_epoch" or record["select_score"] > best["score"]:
                best = {"epoch": epoch, "score": record["select_score"]}
                save_model(run, model, spec, extra={"epoch": epoch, "selected_on": record["select_on"]})
            run.save_checkpoint(training_state(model, trainer.opt), {"epoch": epoch, "history": history, "best": best})
            run.write_metrics(history)
            write_curves(run.path, history, best["epoch"], _curves_title(cfg, run))
            if progress:
                tqdm.write(_epoch_line(record, cfg.epochs))
        distributed.barrier()

    summary: dict[str, Any] | None = None
    if main:
        t_test = time.time()
        summary, test_result = finish(run, cfg, spec, splits, best, history, device, progress)
        if smoke_full is not None:
            train_seconds = sum(h["seconds"] for h in history)
            summary["smoke"] = projection(smoke_full, splits, history,
                                          train_seconds + eval_seconds + time.time() - t_test)
            run.write_summary(summary)
        db.upsert_run(run.path, kind=cfg.kind, status="complete", config=cfg.to_dict(), summary=summary)
        db.add_results(evaluation_rows(test_result, run.path, "test"))
    return distributed.broadcast_object(summary)  # the same summary on every rank


def _initial_model(cfg: TrainConfig, splits: DataSplits) -> tuple[nn.Module, dict[str, Any]]:
    """The network to train and the spec it is saved under: a ticket's structure when fine-tuning,
    else the configured network (a supermask over random or, with from_run, trained weights)."""
    if cfg.finetune is not None:
        return finetune_start(cfg.finetune, cfg.seed)
    spec = imported_ticket_spec(cfg) or model_spec_for(cfg, splits)
    return build_model(spec, dense_weights=_trained_weights(cfg, spec)), spec


def imported_ticket_spec(cfg: TrainConfig) -> dict[str, Any] | None:
    """A robust trained ticket on an imported model: the import's network under the ticket's mask."""
    source = imported_source(cfg.from_run) if cfg.from_run and cfg.ticket is not None else None
    if source is None:
        return None
    return {**source, "supermask": SupermaskConfig(**cfg.ticket).to_dict(), "weights": "stored"}


def _trainer(cfg: TrainConfig, model: nn.Module, eps: float) -> _Trainer:
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay,
                          nesterov=cfg.nesterov)
    attack = training_attack(cfg, eps)
    step_per_eps = attack.step_size / eps if attack is not None and hasattr(attack, "step_size") and eps > 0 else None
    return _Trainer(model, model, opt, params, cfg, attack, step_per_eps)  # `net` is wrapped once restored


def _train_epoch(t: _Trainer, splits: DataSplits, epoch: int, eps: float, device: torch.device,
                 progress: bool) -> dict[str, Any]:
    """One pass over the training split; every epoch reseeds from (seed, epoch), so resume replays it.

    Under torchrun each batch is augmented whole (the same random draws as one process), then
    each rank takes its slice of it.
    """
    cfg, info, world = t.cfg, splits.info, distributed.world_size()
    seed = epoch_seed(cfg.seed, epoch)
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    t.net.train()
    _set_drop_path(t.model, cfg.drop_path * epoch / cfg.epochs)
    t0, seen, loss_sum, correct = time.time(), 0, 0.0, 0
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
            x = random_crop_flip(x, info.crop_padding, info.flip, generator=gen)
        x = cutout(x, cfg.cutout, generator=gen)
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
        seen += len(y)
        value = loss.item()
        if not math.isfinite(value):
            raise NonFiniteLoss(f"the training loss became {value} at epoch {epoch + 1}, batch {i + 1}; the run "
                                "stopped, its last complete epoch is kept (lower --lr, or check ε and the data)")
        loss_sum += value * len(y)
        correct += logits.argmax(1).eq(y).sum().item()
        bar.set_postfix(loss=f"{loss_sum / seen:.3f}", acc=f"{correct / seen:.3f}")
        batch_times.append(time.time() - t_batch)
    totals = torch.tensor([seen, loss_sum, correct], dtype=torch.float64, device=device)
    seen, loss_sum, correct = distributed.all_reduce_sum(totals).tolist()  # over all ranks
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


def _trained_weights(cfg: TrainConfig, spec: dict[str, Any]) -> nn.Module | None:
    """For a robust trained ticket: the trained run's model, which must be the same network."""
    if not cfg.from_run:
        return None
    doc = RunDir(cfg.from_run).read_config()
    if doc.get("kind") not in ("train", "imported") or "supermask" in doc["model"]:
        raise InbornError(f"from_run {cfg.from_run!r} is a {doc.get('kind')} run; it must be a trained dense network")
    source = doc["model"]
    keys = ("arch", "num_classes", "in_channels", "image_size", "width", "kwargs")
    if any(source.get(k) != spec.get(k) for k in keys):
        raise InbornError(f"from_run {cfg.from_run!r} holds {source.get('arch')!r} (width {source.get('width')}), "
                          f"not {spec['arch']!r} (width {spec.get('width')}) on this data: use the same architecture")
    return load(cfg.from_run)


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


def _test_robust(model: nn.Module, splits: DataSplits, cfg: TrainConfig) -> float:
    with reuse_masks(model):
        res = evaluate(model, splits.test, attacks=["pgd"], eps=[cfg.eps], steps=cfg.test_attack_steps, seed=0)
    return res["results"][0]["robust_acc"]


def finish(run: RunDir, cfg: TrainConfig, spec: dict[str, Any], splits: DataSplits, best: dict[str, Any],
           history: list[dict[str, Any]], device: torch.device, progress: bool,
           ) -> tuple[dict[str, Any], dict[str, Any]]:
    """Test the selected checkpoint once (PGD at the run's ε), write the summary; return it
    and the test evaluation."""
    from inborn.runs import load

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
        summary["finetune"] = dict(cfg.finetune)
    if summary["selected_on"] == "last_epoch":
        summary["warning"] = NO_VALIDATION
    run.write_summary(summary)
    return summary, res


def training_state(model: nn.Module, opt: torch.optim.Optimizer) -> dict[str, torch.Tensor]:
    """Weights and buffers plus SGD momentum, keyed by parameter name (safetensors, no pickle)."""
    tensors = {f"model.{k}": v for k, v in model.state_dict().items()}
    names = {id(p): n for n, p in model.named_parameters()}
    for group in opt.param_groups:
        for p in group["params"]:
            buf = opt.state.get(p, {}).get("momentum_buffer")
            if buf is not None:
                tensors[f"momentum.{names[id(p)]}"] = buf
    return tensors


def restore_training_state(model: nn.Module, opt: torch.optim.Optimizer, tensors: dict[str, torch.Tensor]) -> None:
    device = next(model.parameters()).device
    model.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model.")})
    params = dict(model.named_parameters())
    for key, buf in tensors.items():
        if key.startswith("momentum."):
            opt.state[params[key[9:]]]["momentum_buffer"] = buf.to(device)


def _curves_title(cfg: TrainConfig, run: RunDir) -> str:
    adv = "natural" if cfg.adv == "none" else f"{cfg.adv} at ε={cfg.eps:.4g}"
    return f"{run.path.name}: {cfg.kind} run, {cfg.arch} on {cfg.data} ({adv})"


def _epoch_line(r: dict[str, Any], epochs: int) -> str:
    parts = [f"epoch {r['epoch'] + 1}/{epochs}", f"loss {r['train_loss']:.3f}", f"train {r['train_acc']:.3f}"]
    if "val_clean_acc" in r:
        parts.append(f"val clean {r['val_clean_acc']:.3f}")
    if "val_robust_acc" in r:
        parts.append(f"val robust {r['val_robust_acc']:.3f}")
    parts.append(f"{r['seconds']:.0f}s")
    return " | ".join(parts)
