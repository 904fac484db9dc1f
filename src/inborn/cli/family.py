"""`inborn family`, `inborn transfer`, `inborn r2s`: ticket families and the Random RST Switch."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from inborn.analysis.r2s_config import R2SSettings, r2s_settings
from inborn.cli.common import add_trust_flag, count_arg, parse_ratio_list, seed_arg, throwaway
from inborn.cli.settings import add_setting_flags, given_settings
from inborn.errors import InbornError
from inborn.values import parse_eps, parse_names


def add_parsers(sub: argparse._SubParsersAction) -> None:
    from inborn.cli.search import add_search_arguments

    p = sub.add_parser("family", help="draw several tickets from one random weight tensor",
                       description="Search one ticket per keep ratio over the SAME random weights (one seed), "
                                   "or combine finished tickets with --from-tickets.")
    p.add_argument("--from-tickets", help="comma-separated ticket runs to combine instead of searching")
    add_search_arguments(p, keep_help="comma-separated keep ratios, e.g. 0.03,0.05,0.1,0.2,0.4")
    add_trust_flag(p)
    p.set_defaults(func=cmd_family)

    p = sub.add_parser("transfer", help="the k×k transferability matrix of a family")
    p.add_argument("family", help="a family directory made by inborn family")
    _eval_arguments(p)
    add_trust_flag(p)
    p.set_defaults(func=cmd_transfer)

    p = sub.add_parser("r2s", help="evaluate the Random RST Switch under every protocol")
    p.add_argument("family", help="a family directory made by inborn family")
    add_setting_flags(p, R2SSettings, show_defaults=True)  # one set of defaults with the studies
    p.add_argument("--baseline", help="a run (e.g. dense PGD-AT of the same architecture) to report beside")
    _where_arguments(p)
    add_trust_flag(p)
    p.set_defaults(func=cmd_r2s)


def _eval_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--steps", type=count_arg, default=20)
    p.add_argument("--n", type=count_arg, default=500, help="test images to use (default 500)")
    p.add_argument("--batch-size", type=count_arg, default=256)
    p.add_argument("--seed", type=seed_arg, default=0)
    _where_arguments(p)


def cmd_family(args: argparse.Namespace) -> int:
    from inborn.cli.train import config_layers
    from inborn.runs import build_family
    from inborn.store import ResultsDB, RunDir
    from inborn.store.guard import check_output
    from inborn.train.family import family_configs, member_dir, search_members
    from inborn.train.smoke import smoke_lines

    out = Path(args.out)
    # Everything checked before the first ticket is searched: the keep ratios and every member's
    # settings, the output (new, empty, or this family), the database.
    db = ResultsDB(args.db)
    db.check()
    if args.from_tickets:
        if getattr(args, "smoke", False):
            raise InbornError("--smoke searches the tickets: give --keep, not --from-tickets")
        check_output(out, "family", allow=("tickets",))
        family = build_family(parse_names(args.from_tickets), out)
    else:
        if not args.keep:
            raise InbornError("--keep is required: comma-separated keep ratios, e.g. --keep 0.05,0.1,0.2,0.4")
        configs = family_configs(config_layers(args), parse_ratio_list(args.keep))
        if configs[0].smoke:  # every ticket's search smoked, the family built, in a throwaway directory
            out, smoke_db = throwaway("family")
            db = ResultsDB(smoke_db)
            print(f"smoke: a throwaway family in {out}, not in --out")
        family = search_members(configs, out, db=db, progress=not args.quiet, log=print)
        for member in (member_dir(out, c.ticket.keep_ratio) for c in configs if c.smoke):
            for line in smoke_lines(json.loads((member / "summary.json").read_text())["smoke"]):
                print(f"{member.name}: {line}")
    family_doc = RunDir(out).read_config()
    db.upsert_run(out, kind="family", status="complete",
                  config={**family_doc["config"], "arch": family_doc["model"]["arch"]},
                  summary={"keep_ratios": family.keep_ratios, "members": family_doc["config"].get("members")})
    print(f"family of {len(family)} tickets over one weight tensor: keep ratios "
          f"{', '.join(f'{k:g}' for k in family.keep_ratios)} -> {out}")
    return 0


def _where_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--eps", help="ε in pixel units (default: the family's)")
    p.add_argument("--device", default="auto")
    p.add_argument("--quiet", action="store_true")
    p.add_argument("--db", help="results database (default: the family's, else runs/inborn.db or $INBORN_DB)")
    p.add_argument("--smoke", action="store_true", help="run on a few images (one repeat), print the time the whole "
                   "job would take here, and write nothing")


def _family_and_data(args: argparse.Namespace, n: int):
    """The family, its first `n` test images and validation images, its ε and its config."""
    from inborn.device import resolve_device
    from inborn.runs import load_family, load_run_data
    from inborn.runs.data import eval_heads
    from inborn.store import RunDir

    doc = RunDir(args.family).read_config()
    device = resolve_device(args.device)
    family = load_family(args.family, device)
    eps = parse_eps(args.eps) if args.eps is not None else doc["config"].get("eps")
    test, val = eval_heads(load_run_data(doc), n, device)
    return family, test, val, eps, doc


def cmd_transfer(args: argparse.Namespace) -> int:
    from inborn.analysis.family_report import transfer_result_rows, write_transfer_report
    from inborn.analysis.transfer import transfer_matrix
    from inborn.io import atomic_write_text
    from inborn.store import ResultsDB

    db = ResultsDB.for_runs(args.db, [args.family])
    db.check()  # before the work, as every command that records results
    family, (x, y), _, eps, doc = _family_and_data(args, args.n)
    if args.smoke:
        from inborn.train.smoke import projection_line

        done = min(len(x), 16)
        t0 = time.time()
        transfer_matrix(family, x[:done], y[:done], eps=eps, steps=args.steps, batch_size=args.batch_size,
                        seed=args.seed)
        print(projection_line(f"{len(family)}×{len(family)} transfer matrix on {len(x)} images (PGD-{args.steps})",
                              time.time() - t0, done, len(x)))
        return 0
    result = transfer_matrix(family, x, y, eps=eps, steps=args.steps, batch_size=args.batch_size, seed=args.seed,
                             progress=not args.quiet)
    out = Path(args.family)
    report = write_transfer_report(result, out, figure="transfer.png", context=_context(doc))
    atomic_write_text(out / "transfer.md", report["report"])
    db.add_results(transfer_result_rows(result, out, args.seed))
    print(report["main_table"])
    off = result["off_diagonal_mean"]
    print(f"diagonal (white-box) mean {result['diagonal_mean']:.4f}, "
          f"off-diagonal mean {'-' if off is None else f'{off:.4f}'}")
    print(f"saved: {out / 'transfer.json'}, {out / 'transfer.md'}, {out / 'transfer.png'}")
    return 0


def cmd_r2s(args: argparse.Namespace) -> int:
    import inborn
    from inborn.analysis.family_report import r2s_evaluation, r2s_result_rows, write_r2s_report
    from inborn.io import atomic_write_text
    from inborn.store import ResultsDB, RunDir

    settings = r2s_settings(**given_settings(args, R2SSettings))  # the studies' defaults too
    db = ResultsDB.for_runs(args.db, [args.family])
    db.check()
    family, test, val, eps, doc = _family_and_data(args, settings.n)
    if settings.probs is not None and len(settings.probs) != len(family):
        raise InbornError(f"--probs gives {len(settings.probs)} probabilities for a family of {len(family)} tickets")
    references = []
    if args.baseline:
        baseline_doc = RunDir(args.baseline).read_config()
        if baseline_doc["config"].get("data") != doc["config"].get("data"):
            raise InbornError(f"--baseline {args.baseline!r} was trained on {baseline_doc['config'].get('data')!r}, "
                              f"the family on {doc['config'].get('data')!r}: use a run on the same data set")
        references.append((f"baseline {Path(args.baseline).name}", inborn.load(args.baseline, device=test[0].device)))
    if args.smoke:  # one repeat on a few images, timed and projected to the settings' n and repeats
        from inborn.analysis.r2s import evaluate_r2s
        from inborn.train.smoke import projection_line

        done = min(len(test[0]), 16)
        t0 = time.time()
        evaluate_r2s(family, test[0][:done], test[1][:done], settings, eps=eps, repeats=1)
        print(projection_line(f"R2S evaluation ({', '.join(settings.protocols)}, {settings.repeats} repeats, "
                              f"{len(test[0])} images; the single tickets and baselines not counted)",
                              time.time() - t0, done, len(test[0]), repeats=settings.repeats))
        return 0
    result, rows = r2s_evaluation(family, test, val, eps=eps, settings=settings, references=references,
                                  progress=not args.quiet)
    out = Path(args.family)
    report = write_r2s_report(result, out, references=rows, figure="r2s.png", context=_context(doc),
                              title=f"Random RST Switch: {doc['model']['arch']} on {doc['config']['data']}",
                              extra_figures=("transfer.png",))
    atomic_write_text(out / "r2s.md", report["report"])
    db.add_results(r2s_result_rows(result, out, settings.seed))
    print(report["report"])
    print(f"saved: {out / 'r2s.json'}, {out / 'r2s.md'}, {out / 'r2s.png'}")
    return 0


def _context(doc: dict) -> str:
    return f"`{doc['model']['arch']}` on `{doc['config']['data']}`. "
