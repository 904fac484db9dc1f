"""`inborn card RUN`: a RobustBench-style JSON model card from the run's AutoAttack evaluation."""

from __future__ import annotations

import argparse
import json
import math

from inborn.cli.common import add_trust_flag, real_arg


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("card", help="write a RobustBench model_info entry of a run (needs an AutoAttack eval)",
                       description="A RobustBench model_info entry (their fields: percent strings, ε as 8/255, "
                                   "forward passes, unreliable when partial), inborn's figures and provenance under "
                                   "`inborn`, from the run's AutoAttack evaluation on the full test split "
                                   "(`inborn eval RUN --attack autoattack`, or autoattack-rand for a randomised "
                                   "model).")
    p.add_argument("run_dir", help="a run directory (trained, imported, ticket, family, ensemble)")
    p.add_argument("--out", help="the card's file (default RUN/card.json)")
    p.add_argument("--name", help="the card's name: RobustBench's paper title (default: the run directory's name)")
    p.add_argument("--link", help="the paper's or project's address (RobustBench's `link`)")
    p.add_argument("--authors", help="the authors, comma-separated (RobustBench's `authors`)")
    p.add_argument("--venue", help="where it appeared, e.g. 'NeurIPS 2021' (RobustBench's `venue`)")
    p.add_argument("--reported", type=real_arg(0, 1), help="the AutoAttack accuracy the paper reports, for the card")
    p.add_argument("--partial", action="store_true",
                   help="write the card from an evaluation of part of the test split (marked partial, with n)")
    p.add_argument("--data-dir", help="override the data directory stored in the run")
    p.add_argument("--db", help="results database (default runs/inborn.db or $INBORN_DB)")
    add_trust_flag(p)
    p.set_defaults(func=cmd_card)


def cmd_card(args: argparse.Namespace) -> int:
    from pathlib import Path

    from inborn.analysis.card import model_card
    from inborn.errors import InbornError
    from inborn.io import atomic_write_json
    from inborn.store import ResultsDB
    from inborn.store.guard import check_output_file

    if args.reported is not None and not (math.isfinite(args.reported) and 0 <= args.reported <= 1):
        raise InbornError(f"--reported is an accuracy in [0, 1], got {args.reported}")
    own = Path(args.run_dir) / "card.json"
    out = Path(args.out) if args.out else own
    # The run's own card.json, or a file elsewhere: never another file of a run (its model, its
    # config) nor a file inborn did not write as a card (a user's own card.json included).
    check_output_file(out, "card", own=own)
    card = model_card(args.run_dir, db=ResultsDB.for_runs(args.db, [args.run_dir]), data_dir=args.data_dir,
                      partial=args.partial, reported=args.reported, name=args.name, link=args.link,
                      authors=args.authors, venue=args.venue)
    atomic_write_json(out, card)
    print(json.dumps(card, indent=2))
    print(f"saved: {out}")
    return 0
