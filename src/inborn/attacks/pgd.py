"""Projected gradient descent (Madry et al. 2018) and its relatives: CW-L-inf and EOT-PGD."""

from __future__ import annotations

import torch
import torch.nn as nn

from inborn.attacks.base import LOSSES, Attack, check_step_size, per_sample_loss
from inborn.errors import InbornError
from inborn.values import check_int

SHRINKS = ("buckets", "exact", "never")


class PGD(Attack):
    """PGD with random start, restarts and optional per-sample early stop.

    Each sample returns the best iterate it reached: a misclassified one first, then the
    highest loss. So with the same seed more steps are never weaker, and early stop (which
    stops updating a sample once it is misclassified) gives the same robust accuracy while
    spending no more forwards on samples that are already broken.
    """

    name = "pgd"
    iterative = True

    def __init__(
        self,
        eps: float,
        *,
        steps: int = 20,
        step_size: float | None = None,
        random_start: bool = True,
        early_stop: bool = False,
        loss: str = "ce",
        track_best: bool = True,
        **kw,
    ) -> None:
        super().__init__(eps, **kw)
        self.steps = check_int(steps, "steps", low=1)
        step_size = check_step_size(step_size)
        if loss not in LOSSES:
            raise InbornError(f"unknown attack loss {loss!r} (use {' or '.join(LOSSES)})")
        for flag, value in (("random_start", random_start), ("early_stop", early_stop), ("track_best", track_best)):
            if not isinstance(value, bool):
                raise InbornError(f"{flag} must be True or False, got {value!r}")
        # Default step ε/4 (PGD-20 at 8/255 takes steps of 2/255, as in the RST paper); the same
        # default as build_attack's, so an attack means one thing however it is built.
        self.step_size = float(step_size) if step_size is not None else self.eps / 4
        self.random_start = random_start
        self.early_stop = early_stop
        self.loss = loss
        # Training uses the plain last iterate (track_best=False): one forward fewer per batch.
        self.track_best = track_best or early_stop
        # How early stop shrinks the computed batch: None picks by device (see `shrinks`).
        self.shrink: str | None = None

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(eps={self.eps:.5g}, norm={self.norm}, steps={self.steps}, "
                f"step_size={self.step_size:.5g}, restarts={self.restarts})")

    def shrinks(self, device: torch.device) -> str:
        """How early stop drops finished samples from the computed batch on `device` (`shrink`).

        "exact" (CPU): compact to the samples still running at every step; there compute
        dominates, and this was the fastest of the three (docs/performance.md, measured by
        benchmarks/pgd_early_stop.py). "never" (CUDA): keep the batch whole and freeze finished
        samples, without the host sync per step that compaction needs. "buckets": compact only
        to the next smaller size of a fixed ladder (four per octave), finished samples frozen in
        the rows up to it, so that oneDNN meets a few batch shapes instead of one per step (a
        first pass at a new shape costs more than a repeated one); on CPU it came out slower
        than "exact", and is kept for that comparison.
        """
        if self.shrink is None:
            return "exact" if device.type == "cpu" else "never"
        if self.shrink not in SHRINKS:
            raise InbornError(f"unknown shrink {self.shrink!r} (use {', '.join(SHRINKS)} or None)")
        return self.shrink

    def perturb(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        x_adv = self.random_point(x) if self.random_start else x.clone()
        if not self.track_best:
            for _ in range(self.steps):
                grad, _ = self.input_grad(model, x_adv, y, self.loss)
                x_adv = self.project(self.step(x_adv, grad, self.step_size), x)
            return x_adv
        shrink = self.shrinks(x.device) if self.early_stop else "never"
        n = len(x)
        # The full-size results; the loop works on `rows` of them (all, until early stop shrinks it).
        best = x_adv.clone()
        best_fooled = torch.zeros(n, dtype=torch.bool, device=x.device)
        best_loss = torch.full((n,), float("-inf"), device=x.device)
        rows: torch.Tensor | None = None
        # Working copies of the computed rows: x_adv, its clean point, label, best-so-far and whether
        # the row still moves (early stop freezes a fooled row where it is).
        xw, x0, yw = x_adv, x, y
        bw, bfw, blw = best, best_fooled, best_loss
        running = torch.ones(n, dtype=torch.bool, device=x.device)

        for step in range(self.steps + 1):
            # The gradient's forward also scores the current iterate, so tracking is free.
            need_grad = step < self.steps
            if need_grad:
                grad, logits = self.input_grad(model, xw, yw, self.loss)
            else:
                with torch.no_grad():
                    logits = self.logits(model, xw)
            with torch.no_grad():
                loss = per_sample_loss(logits, yw, self.loss)
                fooled = logits.argmax(1).ne(yw)
                better = running & ((fooled & ~bfw) | ((fooled == bfw) & (loss > blw)))
                bw = torch.where(_rows(better, xw), xw, bw)
                blw = torch.where(better, loss, blw)
                bfw = bfw | (better & fooled)
                if not need_grad:
                    break
                if self.early_stop:
                    running = running & ~fooled
                    # Whether any row still runs costs a host sync on CUDA: there asked every 8 steps only.
                    if x.device.type == "cpu" or step % 8 == 7:
                        left = int(running.sum())
                        if left == 0:
                            break
                        size = len(xw) if shrink == "never" else left if shrink == "exact" else _bucket(left)
                        if size < len(xw):
                            # Back to full size, then the rows still running first, up to `size`.
                            best, best_fooled, best_loss = _put(best, rows, bw), _put(best_fooled, rows, bfw), \
                                _put(best_loss, rows, blw)
                            order = torch.cat([running.nonzero().squeeze(1), (~running).nonzero().squeeze(1)])
                            keep = order[:size]
                            rows = keep if rows is None else rows[keep]
                            xw, grad, running = xw[keep], grad[keep], running[keep]
                            x0, yw = x[rows], y[rows]
                            bw, bfw, blw = best[rows], best_fooled[rows], best_loss[rows]
                moved = self.project(self.step(xw, grad, self.step_size), x0)
                xw = torch.where(_rows(running, xw), moved, xw) if self.early_stop else moved
        if rows is None:
            return bw
        return _put(best, rows, bw)


def _rows(flags: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """Per-sample flags shaped to broadcast over a batch like `like`."""
    return flags.view(-1, *[1] * (like.dim() - 1))


def _put(full: torch.Tensor, rows: torch.Tensor | None, part: torch.Tensor) -> torch.Tensor:
    """`full` with `part` written at `rows` (all of it when `rows` is None), in place."""
    if rows is None:
        return part
    full[rows] = part
    return full


def _bucket(count: int) -> int:
    """The smallest size >= count of the ladder 4, 5, 6, 7, 8, 10, 12, 14, 16, 20, ... (four per
    octave: at most a quarter more rows than needed, few distinct batch sizes in all)."""
    if count <= 4:
        return count
    octave = 1 << (count.bit_length() - 3)  # count / octave in [4, 8): round up to a multiple of it
    return -(-count // octave) * octave


class CWLinf(PGD):
    """PGD on the Carlini-Wagner margin loss (the "CW-L∞" of Madry/Rice et al.)."""

    name = "cw"

    def __init__(self, eps: float, **kw) -> None:
        kw.setdefault("loss", "margin")
        super().__init__(eps, **kw)


class EOTPGD(PGD):
    """PGD whose gradient is averaged over `eot_samples` forwards of a randomised model."""

    name = "eot-pgd"

    def __init__(self, eps: float, *, eot_samples: int = 10, **kw) -> None:
        super().__init__(eps, eot_samples=eot_samples, **kw)
