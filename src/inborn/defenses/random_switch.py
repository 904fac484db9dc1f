"""The Random RST Switch (Fu et al. 2021): a ticket drawn at random at every forward.

Also the two views of the family that an adaptive attacker uses: one fixed ticket
(`SingleTicket`, the paper's protocol attacks one drawn ticket) and the exact expectation
over the candidate set (`ExpectedTickets`, log of the probability-weighted mean softmax).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn as nn

from inborn.errors import InbornError
from inborn.masks.convert import masked_layers
from inborn.masks.family import TicketFamily
from inborn.values import check_int, parse_real


def _check_probs(probs: Sequence[float] | None, n: int) -> torch.Tensor:
    if probs is None:
        return torch.full((n,), 1.0 / n)
    if isinstance(probs, str | bytes) or not isinstance(probs, Sequence):
        raise InbornError(f"probs must be a sequence of probabilities, one per ticket, got {probs!r}")
    p = torch.tensor([parse_real(v, "a switch probability", low=0.0, high=1.0) for v in probs])
    if len(p) != n:
        raise InbornError(f"{len(p)} probabilities for {n} tickets")
    if (p < 0).any() or abs(float(p.sum()) - 1.0) > 1e-6:
        raise InbornError(f"switch probabilities must be non-negative and sum to 1, got sum {float(p.sum()):.6g}")
    return p


def _check_family(family: object) -> TicketFamily:
    """A ticket family of at least one ticket (`inborn.load(FAMILY)` or `inborn.runs.load_family`)."""
    if not isinstance(family, TicketFamily):
        raise InbornError(f"family must be a TicketFamily (inborn.runs.load_family), got {type(family).__name__}")
    if len(family) == 0:
        raise InbornError("the family holds no ticket")
    return family


class RandomSwitch(nn.Module):
    """Draws a ticket per batch or per sample at every forward (eval-mode BatchNorm).

    The forward never reads a tensor back to the host (on CUDA that would wait for the device at
    every forward): the draw is made on the input's device, and selection is by index ops. Batch-wise,
    the drawn ticket's masks and BatchNorm statistics are gathered from per-layer stacks of all the
    tickets' (one forward). Per sample, every ticket that can be drawn classifies the whole batch and
    each row takes its own ticket's logits: the same outputs as running each ticket on its rows, at
    up to len(family) times the compute.
    """

    # Declared, so that the evaluator never relies on its probe to see it: a skewed switch can draw
    # the same ticket at every probing forward and pass for a deterministic model.
    randomised = True

    def __init__(self, family: TicketFamily, granularity: str = "batch", probs: Sequence[float] | None = None,
                 generator: torch.Generator | None = None) -> None:
        super().__init__()
        _check_family(family)
        if granularity not in ("batch", "sample"):
            raise InbornError(f"granularity must be batch or sample, got {granularity!r}")
        self.family = family
        self.granularity = granularity
        probs_t = _check_probs(probs, len(family))
        self.register_buffer("probs", probs_t, persistent=False)
        self._drawable = [i for i, p in enumerate(probs_t.tolist()) if p > 0]  # host-side, once
        self.generator = generator
        self.last_choice: torch.Tensor | None = None
        self._probs_on: dict[torch.device, torch.Tensor] = {}
        self._generators: dict[torch.device, torch.Generator] = {}
        self._stacks: _Stacks | None = None

    def _generator(self, device: torch.device) -> torch.Generator | None:
        """The generator to draw on `device` with: the given one where it lives; elsewhere, one on
        `device` seeded once from it (a CPU draw, no device sync), so a seeded switch stays seeded."""
        gen = self.generator
        if gen is None or gen.device == device:
            return gen
        if device not in self._generators:
            seed = int(torch.randint(0, 2**62, (), generator=gen))
            self._generators[device] = torch.Generator(device=device).manual_seed(seed)
        return self._generators[device]

    def draw(self, n: int, device: torch.device | str | None = None) -> torch.Tensor:
        """`n` ticket indices drawn by the switch's probabilities, on `device` (default: the
        probabilities' device)."""
        device = self.probs.device if device is None else torch.device(device)
        if device.type == "cuda" and device.index is None:
            device = torch.device("cuda", torch.cuda.current_device())
        probs = self.probs if self.probs.device == device else self._probs_on.get(device)
        if probs is None:  # copied once per device, not at every forward
            probs = self._probs_on[device] = self.probs.to(device)
        return torch.multinomial(probs, n, replacement=True, generator=self._generator(device))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.granularity == "batch" or len(x) == 1:
            choice = self.draw(1, x.device)
            self._put_in_place(choice)
            self.last_choice = choice.expand(len(x))
            return self.family.model(x)
        choice = self.draw(len(x), x.device)
        self.last_choice = choice
        out: torch.Tensor | None = None
        for i in self._drawable:
            self.family.select(i)
            logits = self.family(x)
            out = logits if out is None else torch.where((choice == i)[:, None], logits, out)
        assert out is not None  # probabilities sum to 1, so some ticket can be drawn
        return out

    def _put_in_place(self, choice: torch.Tensor) -> None:
        """family.select for a ticket index held on the device: each masked layer gets that ticket's
        packed mask and each BatchNorm its statistics, gathered from the stacks of all tickets."""
        stacks = self._stacks_for(choice.device)
        for layer, stack in zip(stacks.layers, stacks.masks, strict=True):
            layer.fixed_mask = None
            layer.packed_mask = stack.index_select(0, choice)[0]
        for module, leaf, stack in stacks.buffers:
            setattr(module, leaf, stack.index_select(0, choice)[0])  # rebound, as select does
        self.family.active = None  # none of the family's own selections is in place now

    def _stacks_for(self, device: torch.device) -> _Stacks:
        """Per layer, every ticket's packed mask stacked (1 bit per weight per ticket, a copy of what
        the family holds), and per BatchNorm buffer every ticket's; built again when the family's
        tensors were replaced (family.to) or the input moved to another device."""
        tickets = self.family.tickets
        sources = [t.packed_masks for t in tickets] + [t.buffers for t in tickets]
        cached = self._stacks
        if cached is not None and cached.device == device and len(cached.sources) == len(sources) and all(
                a is b for a, b in zip(cached.sources, sources, strict=True)):
            return cached
        model = self.family.model
        masks = [torch.stack([t.packed_masks[j] for t in tickets]).to(device)
                 for j in range(len(tickets[0].packed_masks))]
        buffers = []
        for name in tickets[0].buffers:
            module_name, _, leaf = name.rpartition(".")
            stack = torch.stack([t.buffers[name] for t in tickets]).to(device)
            buffers.append((model.get_submodule(module_name), leaf, stack))
        self._stacks = _Stacks(device, sources, masked_layers(model), masks, buffers)
        return self._stacks


@dataclass
class _Stacks:
    device: torch.device
    sources: list[object]  # the tickets' own lists and dicts, to tell when they were replaced
    layers: list[nn.Module]
    masks: list[torch.Tensor]  # per masked layer: (tickets, packed bytes)
    buffers: list[tuple[nn.Module, str, torch.Tensor]]  # per BatchNorm buffer: module, name, (tickets, ...)


class SingleTicket(nn.Module):
    """One member of a family, as an ordinary deterministic model."""

    def __init__(self, family: TicketFamily, index: int) -> None:
        super().__init__()
        self.family = _check_family(family)
        self.index = check_int(index, "index", low=0, high=len(family) - 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.family.select(self.index)
        return self.family(x)


class ExpectedTickets(nn.Module):
    """log Σ_i p_i softmax(f_i(x)): cross-entropy on it is −log of the switch's expected
    probability of the true class, the exact objective of an attacker who knows the set."""

    def __init__(self, family: TicketFamily, probs: Sequence[float] | None = None) -> None:
        super().__init__()
        self.family = _check_family(family)
        self.register_buffer("log_probs", _check_probs(probs, len(family)).log(), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        parts = []
        for i in range(len(self.family)):
            self.family.select(i)
            parts.append(torch.log_softmax(self.family(x).float(), 1) + self.log_probs[i].to(x.device))
        return torch.logsumexp(torch.stack(parts), 0)
