"""A ticket family searched in one call: one ticket per keep ratio over ONE random weight tensor
(every member shares the settings, so the weight seed and network), each a search run in
`out/tickets/keep-K`, gathered into a family in `out`. `inborn family` is this function; a
finished member is reused and an interrupted one resumed, so a re-run picks up where it stopped.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from inborn.errors import InbornError
from inborn.masks.family import TicketFamily
from inborn.runs import build_family
from inborn.store import ResultsDB, RunDir
from inborn.store.guard import check_output
from inborn.train.config import TrainConfig
from inborn.train.loop import train
from inborn.train.resolve import Layer, resolve_config
from inborn.values import parse_ratio, refuse_close_ratios


def member_dir(out: str | Path, keep_ratio: float) -> Path:
    """Where the family in `out` keeps its ticket at `keep_ratio`."""
    return Path(out) / "tickets" / f"keep-{keep_ratio:g}"


def family_configs(settings: Layer | Sequence[Layer], keep_ratios: Sequence[float | str]) -> list[TrainConfig]:
    """Every member's resolved settings: `settings` (one layer or several, as `resolve_config`
    takes them) with the ticket's keep ratio set, each ratio in (0, 1] and given once."""
    if isinstance(keep_ratios, str | int | float):
        raise InbornError(f"keep_ratios must be a list of keep ratios, e.g. [0.05, 0.1], got {keep_ratios!r}")
    keeps = [parse_ratio(k) for k in keep_ratios]
    if not keeps:
        raise InbornError("a family needs at least one keep ratio")
    # A second ratio equal to another, within 1e-6 of it or alike at 6 digits (its directory's name,
    # member_dir) would never be searched: the first one's ticket would be reused for it.
    refuse_close_ratios(keeps, "keep ratio", list(keep_ratios))
    layers = list(settings) if isinstance(settings, list | tuple) else [settings]
    return [resolve_config(*layers, {"ticket": {"keep_ratio": k}}) for k in keeps]


def search_family(settings: Layer | Sequence[Layer], keep_ratios: Sequence[float | str], out: str | Path, *,
                  db: ResultsDB | None = None, progress: bool = True,
                  log: Callable[[str], Any] | None = None) -> TicketFamily:
    """Search one ticket per keep ratio with `settings` into `out/tickets/`, then build the family in
    `out`. Every member's settings and the output are checked before the first search starts."""
    return search_members(family_configs(settings, keep_ratios), out, db=db, progress=progress, log=log)


def search_members(configs: Sequence[TrainConfig], out: str | Path, *, db: ResultsDB | None = None,
                   progress: bool = True, log: Callable[[str], Any] | None = None) -> TicketFamily:
    """`search_family` for members already resolved (`family_configs`): the output is checked, each
    ticket searched, reused or resumed, and the family built in `out`."""
    check_output(out, "family", allow=("tickets",))  # never another run, e.g. one of its member tickets
    say = log or (lambda line: None)
    members = []
    for cfg in configs:
        keep = cfg.ticket.keep_ratio
        member = member_dir(out, keep)
        members.append(member)
        run = RunDir(member)
        if run.read_summary():
            say(f"ticket keep={keep:g}: complete, reused")
            continue
        say(f"ticket keep={keep:g}: searching into {member}")
        resume = run.file(RunDir.CHECKPOINT).exists()
        t = train(None if resume else cfg, member, resume=resume, db=db, progress=progress).test
        say(f"ticket keep={keep:g}: test ({t.n} images) clean {t.clean_acc:.4f} | {t.attack} {t.robust_acc:.4f}")
    return build_family(members, out)
